"""Makes this folder's fixture by running pSp's ``align_face`` (outside the repository) on scikit-image's astronaut.

Usage (README.md beside this file): ``python make_fixture.py REFERENCE_SCRIPT MODEL OUT_DIR``, with
REFERENCE_SCRIPT pSp's ``scripts/align_all_parallel.py`` and MODEL dlib's ``shape_predictor_68_face_landmarks.dat``.
"""

import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import dlib
import numpy as np
import PIL
import PIL.Image
import scipy
import skimage
import skimage.data


def load_reference(path: str):
    PIL.Image.ANTIALIAS = PIL.Image.LANCZOS  # the reference's name for Lanczos, gone since Pillow 10
    # The script reads a model path from pSp's configs at import time; only its command line uses it.
    sys.modules["configs"] = types.ModuleType("configs")
    sys.modules["configs.paths_config"] = paths = types.ModuleType("configs.paths_config")
    paths.model_paths = {"shape_predictor": None}
    spec = importlib.util.spec_from_file_location("align_all_parallel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record_steps(reference, calls: dict) -> None:
    """Record the reference's shrink, crop, pad and warp, to recover its quad in photo coordinates."""
    image_class = PIL.Image.Image
    crop, transform, resize, pad = image_class.crop, image_class.transform, image_class.resize, np.pad

    def recording(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] = (args, kwargs)
            return fn(*args, **kwargs)

        return wrapper

    image_class.crop = recording("crop", crop)
    image_class.transform = recording("transform", transform)
    image_class.resize = recording("resize", resize)  # the reference resizes only to shrink (256 -> 256: no resize)
    reference.np = types.SimpleNamespace(**{**vars(np), "pad": recording("pad", pad)})


def main(reference_script: str, model: str, out: str) -> None:
    out = Path(out)
    reference = load_reference(reference_script)
    photo = skimage.data.astronaut()
    boxes, scores, _ = dlib.get_frontal_face_detector().run(photo, 1, 0.0)
    best = int(np.argmax(scores))  # the face; the other detection is the mission patch
    box = boxes[best]
    landmarks = np.array([[p.x, p.y] for p in dlib.shape_predictor(model)(photo, box).parts()])

    # The plain photo (crop only), its lower right part (the quad leaves the photo: padding), and the photo
    # enlarged 6x by pixel repetition (the shrink step).
    cases = {
        "astronaut": ("photo", "landmarks"),
        "astronaut_edge": ("photo[60:, 150:]", "landmarks - [150, 60]"),
        "astronaut_x6": ("photo.repeat(6, 0).repeat(6, 1)", "landmarks * 6 + 2.5"),
    }
    record = {
        "photo": "skimage.data.astronaut()",
        "detection": {
            "box_ltrb": [box.left(), box.top(), box.right(), box.bottom()],
            "score": float(scores[best]),
            "upsample": 1,
        },
        "landmarks": landmarks.tolist(),
        "versions": {
            "dlib": dlib.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "Pillow": PIL.__version__,
            "scikit-image": skimage.__version__,
        },
        "cases": {},
    }
    for name, (photo_expr, landmarks_expr) in cases.items():
        names = {"photo": photo, "landmarks": landmarks}
        image, points = eval(photo_expr, names), eval(landmarks_expr, names)
        source = out / f"{name}_photo.png"
        PIL.Image.fromarray(np.ascontiguousarray(image)).save(source)
        reference.get_landmark = lambda filepath, predictor, points=points: points.copy()  # the SAME landmarks
        calls = {}
        record_steps(reference, calls)
        aligned = reference.align_face(str(source), None)
        source.unlink()
        aligned.convert("RGB").save(out / f"{name}_aligned_256.png")
        quad = np.reshape(calls["transform"][0][3], (4, 2)) - 0.5
        if "pad" in calls:
            widths = calls["pad"][0][1]
            quad -= [widths[1][0], widths[0][0]]
        if "crop" in calls:
            quad += calls["crop"][0][1][:2]
        if "resize" in calls:
            quad *= image.shape[1] / calls["resize"][0][1][0]
        record["cases"][name] = {
            "photo": photo_expr,
            "landmarks": landmarks_expr,
            "aligned": f"{name}_aligned_256.png",
            "quad": quad.tolist(),
            "steps": sorted(calls),
        }
    text = json.dumps(record, indent=1)
    text = re.sub(r"\[\s+([-0-9.e]+),\s+([-0-9.e]+)\s+\]", r"[\1, \2]", text)  # one line per point
    (out / "astronaut_face.json").write_text(text + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
