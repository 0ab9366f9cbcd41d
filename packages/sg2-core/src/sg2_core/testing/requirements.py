"""Optional requirements in the packages' tests: skipped on a developer's machine, a failure under CI=true."""

from __future__ import annotations

import os


def unavailable(reason: str):
    """Skip the calling test for ``reason``; under CI=true fail instead (CI installs every requirement)."""
    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: the requirement must be installed)")
    pytest.skip(reason)


def require_face_detection() -> None:
    """dlib, its 68-point landmark model and scikit-image (the astronaut photo), or :func:`unavailable`."""
    from sg2_core import faces

    try:
        import dlib  # noqa: F401
        import skimage.data  # noqa: F401

        faces.landmarks_model_path()
    except (ImportError, faces.LandmarkModelError) as error:
        unavailable(f"face detection needs dlib, its landmark model and scikit-image: {error}")
