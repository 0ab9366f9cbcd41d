"""python -m sg2_core.invert --align --paste-back: aligned crops, the faces' transforms in the inversion file,
paste_back from that file later, pasted photos untouched outside the faces, the grid, the manifest.

The photos are scikit-image's astronaut and a photo of two faces (her and her mirror image), on the demo
generator (grey 32 px) with a method that renders a different face per crop. Detection needs dlib and its
landmark model; without them the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sg2_core import Inversion, Method, demo, faces, register_method
from sg2_core.images import convert_channels, fit_image, read_image, to_uint8
from sg2_core.invert import main
from sg2_core.methods.registry import unregister_method
from sg2_core.testing.requirements import require_face_detection

RES = 32
LANDMARKS = np.array(
    json.loads((Path(__file__).parent / "data" / "faces" / "astronaut_face.json").read_text())["landmarks"]
)


class FaceToy(Method):
    """w_avg moved by the crop's mean: a different rendering per face, no optimisation."""

    name, space = "test-face-toy", "w"

    def invert(self, images, init):
        w = self.generator.mapping.w_avg + images.mean(dim=(1, 2, 3))[:, None]
        return Inversion(w, "w", self.generator)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(out, photos)``: one run over astronaut.png (one face) and pair.png (two), batches of 2, one edit."""
    require_face_detection()
    import skimage.data

    root = tmp_path_factory.mktemp("align")
    astronaut = skimage.data.astronaut()
    photos = {"astronaut.png": astronaut, "pair.png": np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)}
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(root / name)
    register_method(FaceToy.name)(FaceToy)
    try:
        argv = [str(root / name) for name in photos]
        argv += ["--align", "--paste-back", "--grey", "--method", FaceToy.name, "--edit", "sefa:0:3"]
        assert main([*argv, "--batch-size", "2", "--device", "cpu", "--no-progress", "--out", str(root / "out")]) == 0
    finally:
        unregister_method(FaceToy.name)
    return root / "out", photos


FACES = ["0000_astronaut_face0.png", "0001_pair_face0.png", "0001_pair_face1.png"]
PHOTOS = ["0000_astronaut.png", "0001_pair.png"]


def _rgb(path) -> torch.Tensor:
    return convert_channels(read_image(path), 3)


def test_writes_aligned_crops_reconstructions_edits_and_pasted_photos(run):
    out, photos = run
    for folder in ("aligned", "reconstructions", "edits/sefa0_+3"):
        assert sorted(p.name for p in (out / folder).iterdir()) == FACES, folder
    for folder in ("pasted/reconstructions", "pasted/edits/sefa0_+3"):
        assert sorted(p.name for p in (out / folder).iterdir()) == PHOTOS, folder
    # the crop is the FFHQ recipe's at the method's input size, from the landmarks dlib finds
    expected = faces.align(photos["astronaut.png"], LANDMARKS, size=RES).image
    assert torch.equal(read_image(out / "aligned" / FACES[0]), expected)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(m["photo"], m["face"], m["aligned"]) for m in manifest["images"]] == [
        (0, 0, f"aligned/{FACES[0]}"),
        (1, 0, f"aligned/{FACES[1]}"),
        (1, 1, f"aligned/{FACES[2]}"),
    ]
    assert [(m["faces"], m["pasted"]) for m in manifest["photos"]] == [
        ([0], ["pasted/reconstructions/0000_astronaut.png", "pasted/edits/sefa0_+3/0000_astronaut.png"]),
        ([1, 2], ["pasted/reconstructions/0001_pair.png", "pasted/edits/sefa0_+3/0001_pair.png"]),
    ]


def test_the_inversion_file_keeps_each_faces_photo_and_transform(run):
    out, photos = run
    inv = Inversion.load(out / "inversion.safetensors", demo.load_generator())
    assert inv.extras["face_photo"].tolist() == [0, 1, 1] and inv.extras["face_index"].tolist() == [0, 0, 1]
    assert [Path(name).name for name in inv.extras["face_photos"]] == list(photos)
    quads = inv.extras["face_quad"]
    assert quads.dtype == torch.float64 and quads.shape == (3, 4, 2)
    # float64 quads in pixels (< 1e4): the two computations differ by float64 rounding (~1e-12); 1e-9 px is far above it
    torch.testing.assert_close(quads[0], torch.from_numpy(faces.face_quad(LANDMARKS)), rtol=0, atol=1e-9)
    centres = quads[1:].mean(dim=1)[:, 0].sort().values  # the pair: her face left, its mirror image right
    assert centres[0] < 512 < centres[1]


def test_paste_back_from_the_saved_inversion_gives_the_pasted_photos(run):
    """What a user does later with the file alone: render (and edit), then paste each photo's faces back."""
    from sg2_core import sefa

    out, photos = run
    G = demo.load_generator()
    inv = Inversion.load(out / "inversion.safetensors", G)
    with torch.no_grad():
        renders = {"reconstructions": inv.render(), "edits/sefa0_+3": inv.edit(sefa(G)[0], 3.0).render()}
    for p, (name, photo) in enumerate(photos.items()):
        mine = inv[inv.extras["face_photo"] == p]
        for folder, rendered in renders.items():
            images = convert_channels(to_uint8(rendered[inv.extras["face_photo"] == p]), 3)  # a grey generator
            pasted = faces.paste_back(photo, images, mine.extras["face_quad"])
            saved = read_image(out / "pasted" / folder / PHOTOS[p])
            # the run rendered in batches of 2, this in one batch of 3: equal within uint8 rounding
            assert (pasted.int() - saved.int()).abs().max() <= 1, (name, folder)


def test_pasted_photos_keep_their_size_and_every_pixel_outside_the_faces(run):
    out, photos = run
    inv = Inversion.load(out / "inversion.safetensors", demo.load_generator())
    for p, photo in enumerate(photos.values()):
        pasted = read_image(out / "pasted" / "reconstructions" / PHOTOS[p]).permute(1, 2, 0).numpy()
        assert pasted.shape == photo.shape
        quads = inv.extras["face_quad"][inv.extras["face_photo"] == p].numpy()
        outside = np.ones(photo.shape[:2], bool)
        ys, xs = np.mgrid[: photo.shape[0], : photo.shape[1]]
        for q in quads:  # (s, t) across each crop: inside when both are in [0, 1]
            st = (np.stack([xs, ys], -1) - q[0]) @ np.linalg.inv(np.stack([q[3] - q[0], q[1] - q[0]], 1)).T
            outside &= ~((st >= 0) & (st <= 1)).all(-1)
        assert np.array_equal(pasted[outside], photo[outside])
        assert not np.array_equal(pasted[~outside], photo[~outside])  # and every face of the photo pasted


def test_the_grid_shows_photo_aligned_reconstruction_edit_and_pasted(run):
    out, photos = run
    grid = read_image(out / "grid.png")
    assert grid.shape == (3, 3 * RES, 6 * RES)  # a row per face
    for i, (photo_file, face_file) in enumerate(zip([PHOTOS[0], PHOTOS[1], PHOTOS[1]], FACES)):
        row = grid[:, i * RES : (i + 1) * RES]
        photo = torch.from_numpy(photos[photo_file.split("_", 1)[1]]).permute(2, 0, 1)
        expected = [
            fit_image(photo, RES, "pad"),
            fit_image(read_image(out / "aligned" / face_file), RES, "resize"),
            _rgb(out / "reconstructions" / face_file),
            _rgb(out / "edits" / "sefa0_+3" / face_file),
            fit_image(read_image(out / "pasted" / "reconstructions" / photo_file), RES, "pad"),
            fit_image(read_image(out / "pasted" / "edits" / "sefa0_+3" / photo_file), RES, "pad"),
        ]
        for c, cell in enumerate(expected):
            assert torch.equal(row[:, :, c * RES : (c + 1) * RES], cell), (i, c)
