"""``--align`` and ``--paste-back`` of ``python -m sg2_core.invert``: photos in, one sample per face out, and
each photo again with its faces pasted back.

The faces come from ``sg2_core.faces`` (dlib, the FFHQ recipe). Each keeps its photo, its place among that
photo's faces and its quad; the inversion file stores them per sample (``face_extras``), so photo ``p``'s faces
go back in later from the file alone: ``faces = inv[inv.extras["face_photo"] == p]``, then
``paste_back(photo, <their renderings>, faces.extras["face_quad"])``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sg2_core.errors import UsageError
from sg2_core.images import BATCH_SUFFIXES, ImageLoadError, image_files, read_batch, to_uint8

FACES_CHOICES = ("all", "largest")


@dataclass(frozen=True, eq=False)
class Face:
    """One aligned face of the run: ``photo`` indexes the run's photos, ``index`` is its place among that
    photo's faces (largest first), ``image`` the uint8 ``[3, S, S]`` crop, ``quad`` its float64 ``[4, 2]``
    corners in the photo."""

    photo: int
    index: int
    image: torch.Tensor
    quad: torch.Tensor


def parse_faces(text: str) -> str | int:
    """``--faces``: ``all``, ``largest`` or a number N >= 1 (the N largest)."""
    if text in FACES_CHOICES:
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected all, largest or a number of faces >= 1, got {text!r}")
    return count


def read_photos(paths) -> list[tuple[str, np.ndarray]]:
    """``[(name, uint8 [H, W, 3])]``: files as viewers show them (EXIF-upright, RGB), batch entries
    (``file[i]``) as stored."""
    from sg2_core.faces import read_photo

    photos = []
    try:
        for path in image_files(paths):
            if path.suffix.lower() in BATCH_SUFFIXES:
                for i, image in enumerate(read_batch(path)):
                    image = image if image.dtype == torch.uint8 else to_uint8(image)
                    pixels, name = read_photo(image, f"{path}[{i}]")
                    photos.append((name, pixels))
            else:
                pixels, name = read_photo(path)
                photos.append((name, pixels))
    except ImageLoadError as error:
        raise UsageError(str(error)) from None
    return photos


def landmarks_model(path: str | None) -> Path:
    """dlib's 68-point landmark model (``--landmarks``, else ``$SG2_DLIB_LANDMARKS``, else Debian's), and dlib
    itself, checked before any photo is read."""
    from sg2_core.faces import detect

    try:
        detect.import_dlib()
    except ImportError:
        raise UsageError("--align needs dlib: pip install 'sg2-core[faces]' (dlib-bin, a prebuilt wheel)") from None
    try:
        return detect.landmarks_model_path(path)
    except detect.LandmarkModelError:
        env = os.environ.get(detect.LANDMARKS_ENV)
        where = (
            f"--landmarks {path}: no such file"
            if path
            else f"${detect.LANDMARKS_ENV}={env}: no such file"
            if env
            else f"dlib's 68-point landmark model ({detect.MODEL_FILE}) is not installed"
        )
        raise UsageError(
            f"{where}; --align needs it: apt-get install libdlib-data (Debian/Ubuntu, puts it at "
            f"{detect.DEBIAN_MODEL}), or download {detect.MODEL_FILE}.bz2 from dlib.net, unpack it and pass "
            "--landmarks FILE"
        ) from None


def align_photos(photos, faces: str | int, size: int, model: Path) -> list[Face]:
    """Every face asked for of every photo, photo after photo; a photo without one is refused, naming it."""
    from sg2_core.faces import NoFaceError, align_faces

    aligned = []
    for p, (name, pixels) in enumerate(photos):
        try:
            found = align_faces(pixels, faces, size=size, landmarks_model=model, name=name)
        except NoFaceError:
            raise UsageError(
                f"{name}: no face found; invert it without --align (add --fit center-crop for a photo of another "
                "size), or leave it out"
            ) from None
        aligned += [Face(p, k, face.image, face.quad) for k, face in enumerate(found)]
    return aligned


def face_file(photo_file: str, face: Face) -> str:
    """``NNNN_<photo>_face<k>.png``: a face's PNGs are named after its photo's and its place there."""
    return f"{Path(photo_file).stem}_face{face.index}.png"


def face_extras(faces: list[Face], photo_names: list[str]) -> dict:
    """What the inversion file keeps of a batch's faces, per sample: ``face_photo`` (an index into
    ``face_photos``, the run's photos), ``face_index`` and ``face_quad`` (``AlignedFace.quad``)."""
    return {
        "face_photo": torch.tensor([face.photo for face in faces]),
        "face_index": torch.tensor([face.index for face in faces]),
        "face_quad": torch.stack([face.quad for face in faces]).to(torch.float64),
        "face_photos": list(photo_names),
    }


def write_pasted(out: Path, folders: list[str], photos, photo_files: list[str], face_files: list[str], extras: dict):
    """``out/pasted/<folder>/<photo file>``: each photo with its faces' PNGs from ``out/<folder>`` (the
    reconstructions, each edit) pasted back where the quads in ``extras`` (the inversion's) cut them out."""
    from sg2_core.faces import paste_back
    from sg2_core.images import convert_channels, read_image, save_image

    for p, ((name, pixels), photo_file) in enumerate(zip(photos, photo_files)):
        samples = (extras["face_photo"] == p).nonzero().flatten().tolist()
        quads = extras["face_quad"][samples]
        for folder in folders:
            renders = [convert_channels(read_image(out / folder / face_files[i]), 3) for i in samples]  # grey: as RGB
            save_image(paste_back(pixels, renders, quads, name=name), out / "pasted" / folder / photo_file)
