"""sg2_core.faces: the FFHQ recipe against pSp's ``align_face``, detection on a real photo, paste-back.

The photo is scikit-image's astronaut; tests/data/faces/README.md says how the fixture was made. Tests
that detect need dlib and its 68-point landmark model; without them they skip, except under CI=true, where
they fail like any other missing requirement. Alignment from given landmarks and paste-back need neither.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sg2_core import faces
from sg2_core.testing.requirements import unavailable

DATA = Path(__file__).parent / "data" / "faces"
FIXTURE = json.loads((DATA / "astronaut_face.json").read_text())
LANDMARKS = np.array(FIXTURE["landmarks"], np.float64)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    try:
        import skimage.data
    except ImportError:
        unavailable("scikit-image is not installed (sg2-core's test extra)")
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def detector_ready():
    try:
        import dlib  # noqa: F401
    except ImportError:
        unavailable("dlib is not installed: pip install 'sg2-core[faces]'")
    try:
        faces.landmarks_model_path()
    except faces.LandmarkModelError as error:
        unavailable(str(error))


def case_inputs(case: dict, photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixture case's photo and landmarks (the expressions its README names)."""
    names = {"photo": photo, "landmarks": LANDMARKS}
    return eval(case["photo"], names), eval(case["landmarks"], names)


def pixels_of(face: faces.AlignedFace) -> np.ndarray:
    return face.image.permute(1, 2, 0).numpy()


def crop_coords(quad, shape) -> np.ndarray:
    """(s, t) in [0, 1]^2 across the crop for every photo pixel: [H, W, 2]."""
    q = np.asarray(quad, np.float64)
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return (np.stack([xs, ys], -1) - q[0]) @ np.linalg.inv(np.stack([q[3] - q[0], q[1] - q[0]], 1)).T


def edge_distance(quad, shape) -> np.ndarray:
    """Each photo pixel's distance to the crop's nearest edge, in crop sides (negative outside)."""
    st = crop_coords(quad, shape)
    return np.minimum(st, 1 - st).min(-1)


# --- the recipe against the reference -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE["cases"]))
def test_align_equals_psp_align_face(name, photo):
    """Bit-equal to pSp's crop (measured: max abs difference 0 in every case): the plain crop, the padded one
    (the face leaves the photo) and the shrunk one (a 3072 px photo)."""
    case = FIXTURE["cases"][name]
    image, landmarks = case_inputs(case, photo)
    face = faces.align(image, landmarks, size=256)
    reference = np.asarray(Image.open(DATA / case["aligned"]))
    assert face.image.shape == (3, 256, 256) and face.image.dtype == torch.uint8
    assert np.abs(pixels_of(face).astype(int) - reference).max() == 0
    # float64 quads in pixels (< 1e4): the two computations differ by float64 rounding (~1e-12); 1e-9 px is far above it
    np.testing.assert_allclose(face.quad.numpy(), case["quad"], rtol=0, atol=1e-9)


def test_every_photo_form_gives_the_same_crop(photo, tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(path)
    expected = faces.align(photo, LANDMARKS).image
    for form in (path, str(path), Image.fromarray(photo), torch.from_numpy(photo).permute(2, 0, 1)):
        assert torch.equal(faces.align(form, LANDMARKS).image, expected)
    assert faces.align(path, LANDMARKS).name == str(path)


def test_five_points_give_the_68_point_crop(photo):
    eye_left, eye_right, mouth_left, mouth_right = faces.eyes_and_mouth(LANDMARKS)
    five = np.stack([eye_left, eye_right, LANDMARKS[30], mouth_left, mouth_right])
    assert torch.equal(faces.align(photo, five).image, faces.align(photo, LANDMARKS).image)
    assert torch.equal(faces.align(photo, torch.from_numpy(five)).quad, faces.align(photo, LANDMARKS).quad)


def test_sizes_and_the_transform(photo):
    ffhq = faces.align(photo, LANDMARKS, size=512, transform_size=2048)  # as FFHQ: warp 4x larger, resize
    small = faces.align(photo, LANDMARKS, size=64)
    assert ffhq.image.shape == (3, 512, 512) and small.image.shape == (3, 64, 64)
    assert torch.equal(ffhq.quad, small.quad)  # the transform does not depend on the size
    for face in (ffhq, small):
        s = face.size
        corners = torch.tensor([[-0.5, -0.5, 1], [-0.5, s - 0.5, 1], [s - 0.5, s - 0.5, 1], [s - 0.5, -0.5, 1]])
        mapped = (face.matrix @ corners.to(torch.float64).T).T[:, :2]
        # float64 quads in pixels (< 1e4): the two computations differ by float64 rounding (~1e-12); 1e-9 px is far above it
        torch.testing.assert_close(mapped, face.quad, rtol=0, atol=1e-9)
    # the 64 px crop is the 512 px one, resampled (measured: mean abs difference 3.2)
    big = torch.nn.functional.interpolate(ffhq.image[None].double(), size=64, mode="area")[0]
    assert (big - small.image.double()).abs().mean() < 4


def test_bad_landmarks_and_options_are_refused(photo):
    with pytest.raises(ValueError, match=r"\[68, 2\] or \[5, 2\].*got shape \[10, 2\]"):
        faces.align(photo, np.zeros((10, 2)))
    with pytest.raises(ValueError, match="NaN"):
        faces.align(photo, np.full((68, 2), np.nan))
    with pytest.raises(ValueError, match="degenerate"):
        faces.align(photo, np.ones((68, 2)))
    with pytest.raises(ValueError, match="transform_size an int >= size"):
        faces.align(photo, LANDMARKS, size=256, transform_size=128)
    with pytest.raises(ValueError, match="faces must be 'all', 'largest' or a number"):
        faces.align_faces(photo, faces="first", landmarks=LANDMARKS)
    with pytest.raises(ValueError, match="uint8"):
        faces.align(photo.astype(np.float32), LANDMARKS)


def test_given_landmarks_of_several_faces_largest_first(photo):
    small = LANDMARKS * 0.5 + [300, 300]
    found = faces.align_faces(photo, landmarks=[small, LANDMARKS])
    assert [f.quad.tolist() for f in found] == [faces.face_quad(LANDMARKS).tolist(), faces.face_quad(small).tolist()]
    assert found[0].score is None and found[0].box is None
    assert len(faces.align_faces(photo, "largest", landmarks=np.stack([small, LANDMARKS]))) == 1
    assert len(faces.align_faces(photo, 2, landmarks=[small, LANDMARKS])) == 2
    images, quads = faces.stack_faces(found)
    assert (
        images.shape == (2, 3, 256, 256) and images.dtype == torch.float32 and -1 <= images.min() <= images.max() <= 1
    )
    assert quads.shape == (2, 4, 2) and quads.dtype == torch.float64


# --- detection ------------------------------------------------------------------------------------------------


def test_detection_drops_the_mission_patch_and_keeps_the_face(photo, detector_ready):
    """dlib fires on the face (score 1.16) and on the patch on her sleeve (0.12; pSp's script aligns the
    patch, its last detection). The face's landmarks hold (drift 0.016 eye distances); the patch's follow
    the box (0.37)."""
    every = faces.detect_faces(photo, max_drift=None)
    assert len(every) == 2
    face, patch = sorted(every, key=lambda d: d.box[1])
    assert face.box == tuple(FIXTURE["detection"]["box_ltrb"]) and patch.box[1] > 300
    assert face.drift < faces.MAX_DRIFT / 2 and patch.drift > 2 * faces.MAX_DRIFT
    np.testing.assert_array_equal(face.landmarks, LANDMARKS)
    kept = faces.detect_faces(photo)
    assert [d.box for d in kept] == [face.box]
    [aligned] = faces.align_faces(photo)
    assert aligned.box == face.box and aligned.score == pytest.approx(FIXTURE["detection"]["score"])
    reference = np.asarray(Image.open(DATA / FIXTURE["cases"]["astronaut"]["aligned"]))
    assert np.array_equal(pixels_of(aligned), reference)


def test_several_faces_in_one_photo(photo, detector_ready):
    smaller = np.asarray(Image.fromarray(photo).resize((384, 384), Image.Resampling.LANCZOS))
    group = np.concatenate([photo, np.pad(smaller, ((0, 128), (0, 0), (0, 0)))], axis=1)
    found = faces.align_faces(group, size=128)
    assert len(found) == 2 and all(f.image.shape == (3, 128, 128) for f in found)
    assert found[0].box == tuple(FIXTURE["detection"]["box_ltrb"])  # the larger face first
    assert found[1].box[0] > 512  # the smaller one, on the right
    assert [f.box for f in faces.align_faces(group, "largest")] == [found[0].box]
    assert [f.box for f in faces.align_faces(group, 1)] == [found[0].box]


def test_a_photo_without_a_face_is_one_clear_error(photo, tmp_path, detector_ready):
    empty = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(empty)
    with pytest.raises(faces.NoFaceError, match=r"wall\.png: no face found .*landmarks=.*fit='center-crop'"):
        faces.align_faces(empty)
    sleeve = tmp_path / "sleeve.png"
    Image.fromarray(photo[300:460, 90:260]).save(sleeve)  # the mission patch alone
    with pytest.raises(faces.NoFaceError, match=r"sleeve\.png: .*1 detection\(s\) dropped"):
        faces.align_faces(sleeve)


def test_a_missing_landmark_model_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(faces.detect, "DEBIAN_MODEL", tmp_path / "none.dat")
    monkeypatch.delenv(faces.LANDMARKS_ENV, raising=False)
    with pytest.raises(faces.LandmarkModelError, match="apt-get install libdlib-data.*dlib.net.*landmarks_model="):
        faces.landmarks_model_path()
    monkeypatch.setenv(faces.LANDMARKS_ENV, str(tmp_path / "gone.dat"))
    with pytest.raises(faces.LandmarkModelError, match=r"gone\.dat \(from SG2_DLIB_LANDMARKS\) does not exist"):
        faces.landmarks_model_path()
    model = tmp_path / "model.dat"
    model.write_bytes(b"")
    assert faces.landmarks_model_path(model) == model


def test_importing_sg2_core_imports_no_dlib():
    code = "import sys, sg2_core, sg2_core.faces; assert 'dlib' not in sys.modules and 'scipy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- paste-back -----------------------------------------------------------------------------------------------


def test_paste_back_leaves_the_photo_outside_the_faces_untouched(photo):
    small = LANDMARKS * 0.5 + [300, 300]
    found = faces.align_faces(photo, landmarks=[LANDMARKS, small], size=256)
    rendered = [torch.rand(3, 1024, 1024) * 2 - 1, torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)]
    out = faces.paste_back(photo, rendered, found)
    assert out.shape == (3, 512, 512) and out.dtype == torch.uint8
    outside = np.all([edge_distance(face.quad, photo.shape) <= 0 for face in found], axis=0)
    assert outside.mean() > 0.7
    assert np.array_equal(out.permute(1, 2, 0).numpy()[outside], photo[outside])
    changed = (out.permute(1, 2, 0).numpy() != photo).any(-1)
    assert changed[edge_distance(found[0].quad, photo.shape) > 0.1].mean() > 0.9


@pytest.mark.parametrize("size", [256, 1024])
def test_pasting_back_the_crop_gives_the_photo_back(photo, size):
    """Inside the face (more than a feather from the crop's edge) the photo comes back up to the detail
    that two bilinear resamplings lose: mean abs difference 3.56 (uint8) on the astronaut, 0.72 (max 6) on
    the astronaut blurred by sigma 1.5 px."""
    import scipy.ndimage

    blurred = np.rint(scipy.ndimage.gaussian_filter(photo.astype(np.float64), [1.5, 1.5, 0])).astype(np.uint8)
    for image, mean_tol, max_tol in ((photo, 4.0, None), (blurred, 1.0, 8)):
        face = faces.align(image, LANDMARKS, size=size)
        out = faces.paste_back(image, face.image[None], [face]).permute(1, 2, 0).numpy()
        core = edge_distance(face.quad, image.shape) >= 0.1
        diff = np.abs(out.astype(int) - image)[core]
        assert diff.mean() <= mean_tol
        assert max_tol is None or diff.max() <= max_tol


def test_paste_back_feathers_the_edge():
    """White pasted on black: the mask rises by at most 1.5 / (feather x side) per pixel (smoothstep's
    steepest slope), so no seam; feather=0 is a hard edge."""
    black = np.zeros((300, 300, 3), np.uint8)
    quad = torch.tensor([[50.0, 40.0], [40.0, 240.0], [240.0, 250.0], [250.0, 50.0]])  # a tilted square, side 201
    white = torch.full((1, 3, 128, 128), 255, dtype=torch.uint8)
    side = float((quad[3] - quad[0]).norm())
    for feather in (0.1, 0.25):
        out = faces.paste_back(black, white, quad[None], feather=feather)[0].double()
        steepest = max((out[1:] - out[:-1]).abs().max(), (out[:, 1:] - out[:, :-1]).abs().max())
        assert steepest <= 255 * 1.5 * np.sqrt(2) / (feather * side) + 1
        core = torch.from_numpy(edge_distance(quad, black.shape) >= feather)
        assert (out[core] == 255).all()
    hard = faces.paste_back(black, white, quad[None], feather=0)[0].double()
    assert (hard[1:] - hard[:-1]).abs().max() == 255


def test_transforms_survive_an_inversion_file_and_json(photo, tmp_path):
    from sg2_core import Generator, GeneratorConfig, Inversion

    small = LANDMARKS * 0.5 + [300, 300]
    found = faces.align_faces(photo, landmarks=[LANDMARKS, small], size=64)
    images, quads = faces.stack_faces(found)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=8, channel_base=64, channel_max=8, mapping_layers=1))
    latents = torch.zeros(2, G.num_ws, G.w_dim)
    Inversion(latents, "w+", G, extras={"face_quad": quads}).save(tmp_path / "inv.safetensors")
    loaded = Inversion.load(tmp_path / "inv.safetensors", G)
    assert torch.equal(loaded.extras["face_quad"], quads) and loaded.extras["face_quad"].dtype == torch.float64
    expected = faces.paste_back(photo, images, found)
    assert torch.equal(faces.paste_back(photo, images, loaded.extras["face_quad"]), expected)
    assert torch.equal(faces.paste_back(photo, images, json.loads(json.dumps(quads.tolist()))), expected)
    assert torch.equal(
        faces.paste_back(photo, images[1:], loaded[1].extras["face_quad"]),
        faces.paste_back(photo, images[1:], found[1:]),
    )


def test_paste_back_refuses_bad_input(photo):
    face = faces.align(photo, LANDMARKS, size=32)
    with pytest.raises(ValueError, match=r"2 image\(s\) for 1 face\(s\)"):
        faces.paste_back(photo, face.image[None].repeat(2, 1, 1, 1), [face])
    with pytest.raises(ValueError, match=r"quads \[N, 4, 2\].*got shape \[4, 2\]"):
        faces.paste_back(photo, face.image[None], face.quad)
    with pytest.raises(ValueError, match=r"\[N, 3, h, w\].*\[1, 32, 32\]"):
        faces.paste_back(photo, face.image[None, :1], [face])
    with pytest.raises(ValueError, match=r"feather must be in \[0, 0.5\]"):
        faces.paste_back(photo, face.image[None], [face], feather=0.7)


def test_a_missing_requirement_skips_here_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="^no dlib$"):
        unavailable("no dlib")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^no dlib \(CI=true: the requirement must be installed\)$"):
        unavailable("no dlib")
