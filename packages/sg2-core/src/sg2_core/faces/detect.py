"""Faces and their 68 landmarks with dlib: the HOG frontal detector and the shape predictor FFHQ was made with.

dlib is imported on first use (``pip install 'sg2-core[faces]'`` brings its prebuilt wheel, ``dlib-bin``).
The landmark model file (``shape_predictor_68_face_landmarks.dat``, 95 MB) is never downloaded: it comes
from ``landmarks_model=``, else ``$SG2_DLIB_LANDMARKS``, else Debian's ``libdlib-data`` package.

Detectors fire on non-faces too (on scikit-image's astronaut, dlib's fires on the mission patch on her
sleeve). A detection is kept when its score reaches ``min_score`` and its landmarks hold on to the image:
moving the box by 5% (left, right, up, down, 5% larger, 5% smaller) and fitting again must move the
landmarks by at most ``max_drift`` eye distances (the median over those six moves of the points' RMS
displacement). On a face the predictor finds the same eyes, nose and mouth from any nearby start; on a
non-face it has nothing to hold on to and its points follow the box.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sg2_core.faces.photo import read_photo

LANDMARKS_ENV = "SG2_DLIB_LANDMARKS"
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
DEBIAN_MODEL = Path("/usr/share/dlib") / MODEL_FILE  # apt-get install libdlib-data
MAX_DRIFT = 0.07  # eye distances; the README's "Faces" section gives the measurements behind it
_BOX_MOVES = ((0.05, 0, 1), (-0.05, 0, 1), (0, 0.05, 1), (0, -0.05, 1), (0, 0, 1.05), (0, 0, 0.95))

HOW_TO_GET_MODEL = (
    f"install it (Debian/Ubuntu: apt-get install libdlib-data, which puts it at {DEBIAN_MODEL}), or download "
    f"{MODEL_FILE}.bz2 from dlib.net, unpack it and pass landmarks_model=FILE (or set {LANDMARKS_ENV}=FILE)"
)


class LandmarkModelError(FileNotFoundError):
    """dlib's 68-point landmark model file is missing; the message says how to get it."""


class NoFaceError(ValueError):
    """A photo in which no face was found (or none was given); the message names the photo and how to go on."""


def landmarks_model_path(landmarks_model=None) -> Path:
    """The landmark model file: ``landmarks_model``, else ``$SG2_DLIB_LANDMARKS``, else Debian's."""
    for path, origin in ((landmarks_model, "landmarks_model="), (os.environ.get(LANDMARKS_ENV), LANDMARKS_ENV)):
        if path:
            if not Path(path).is_file():
                raise LandmarkModelError(
                    f"dlib's landmark model {path} (from {origin}) does not exist; {HOW_TO_GET_MODEL}"
                )
            return Path(path)
    if DEBIAN_MODEL.is_file():
        return DEBIAN_MODEL
    raise LandmarkModelError(f"dlib's 68-point landmark model ({MODEL_FILE}) was not found; {HOW_TO_GET_MODEL}")


def import_dlib():
    try:
        import dlib
    except ImportError:
        raise ImportError(
            "face detection needs dlib: pip install 'sg2-core[faces]' (dlib-bin, a prebuilt wheel, no compiler); "
            "or give the landmarks yourself (landmarks=)"
        ) from None
    return dlib


@functools.cache
def _detector():
    return import_dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=2)
def _predictor(path: str):
    return import_dlib().shape_predictor(path)


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One detection: ``box`` ``(left, top, right, bottom)``, dlib's ``score``, the 68 ``landmarks`` (float64
    ``[68, 2]``, photo pixels) and their ``drift`` under a moved box (eye distances; the module docstring)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray
    drift: float


def detect_faces(
    photo,
    *,
    landmarks_model=None,
    upsample: int = 1,
    min_score: float = 0.0,
    max_drift: float | None = MAX_DRIFT,
    name: str | None = None,
) -> list[DetectedFace]:
    """The faces of ``photo`` (a path, PIL image, uint8 array or tensor) that dlib finds, with their landmarks,
    in the detector's order. ``upsample``: how often the detector doubles the photo (finds smaller faces,
    slower); ``min_score``: its threshold; ``max_drift``: the landmarks' plausibility test (None keeps every
    detection). An empty list when there is none."""
    pixels, _ = read_photo(photo, name)
    predictor = _predictor(str(landmarks_model_path(landmarks_model)))
    dlib = import_dlib()
    boxes, scores, _ = _detector().run(pixels, upsample, min_score)
    faces = []
    for box, score in zip(boxes, scores):
        landmarks = _fit(predictor, pixels, box)
        drift = _drift(dlib, predictor, pixels, box, landmarks)
        if max_drift is None or drift <= max_drift:
            faces.append(
                DetectedFace((box.left(), box.top(), box.right(), box.bottom()), float(score), landmarks, drift)
            )
    return faces


def _fit(predictor, pixels: np.ndarray, box) -> np.ndarray:
    return np.array([[p.x, p.y] for p in predictor(pixels, box).parts()], np.float64)


def _drift(dlib, predictor, pixels: np.ndarray, box, landmarks: np.ndarray) -> float:
    eye_distance = np.hypot(*(landmarks[42:48].mean(axis=0) - landmarks[36:42].mean(axis=0)))
    if eye_distance == 0:
        return float("inf")
    width, height = box.width(), box.height()
    centre_x, centre_y = (box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2
    moves = []
    for dx, dy, scale in _BOX_MOVES:
        x, y = centre_x + dx * width, centre_y + dy * height
        half_w, half_h = width * scale / 2, height * scale / 2
        moved = dlib.rectangle(round(x - half_w), round(y - half_h), round(x + half_w), round(y + half_h))
        moves.append(np.sqrt(((_fit(predictor, pixels, moved) - landmarks) ** 2).sum(axis=1).mean()))
    return float(np.median(moves) / eye_distance)
