"""The FFHQ alignment recipe: eyes and mouth -> an oriented square (the quad) -> shrink, crop, pad with a
blurred reflection -> warp to the output size.

The steps and their constants are those of NVIDIA's FFHQ script (``recreate_aligned_images``) and pSp's
``align_face``; given the same landmarks the crop equals pSp's pixel for pixel (tests/data/faces). pSp warps
straight to 256 px (``align(..., size=256)``); FFHQ warps to 4096 and resizes to 1024
(``align(..., size=1024, transform_size=4096)``).

Coordinates are photo pixels with pixel centres at integers (dlib's landmarks). A quad is the crop's corners
in the photo, in the order top-left, bottom-left, bottom-right, top-right of the crop: the centre of crop
pixel ``(u, v)`` of an ``S``-pixel crop lies at ``q0 + (q3 - q0) (u + 0.5) / S + (q1 - q0) (v + 0.5) / S``
(``quad_matrix``). The quad alone describes the transform at any crop size, so it is what is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sg2_core.faces.detect import MAX_DRIFT, NoFaceError, detect_faces
from sg2_core.faces.photo import read_photo

# The landmark layouts accepted, and where the recipe's eyes and mouth corners are in them.
LANDMARK_LAYOUTS = {
    68: "dlib / iBUG 300-W: eyes = means of points 36-41 and 42-47, mouth corners = points 48 and 54",
    5: "MTCNN / RetinaFace / InsightFace: left eye, right eye, nose tip, left and right mouth corner",
}


def eyes_and_mouth(landmarks) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(eye_left, eye_right, mouth_left, mouth_right)`` (float64 ``[2]``, image left before right) of one
    face's ``[68, 2]`` or ``[5, 2]`` landmarks (``LANDMARK_LAYOUTS``). dlib's own 5-point model (eye corners
    and nose, no mouth) cannot feed the recipe: use its 68-point model."""
    points = np.asarray(landmarks.detach().cpu() if isinstance(landmarks, torch.Tensor) else landmarks, np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] not in LANDMARK_LAYOUTS:
        raise ValueError(
            f"landmarks must be [68, 2] or [5, 2] (x, y) points of one face, got shape {list(points.shape)}; "
            + "; ".join(f"{n} points: {layout}" for n, layout in LANDMARK_LAYOUTS.items())
        )
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or inf")
    if len(points) == 68:
        return points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[48], points[54]
    return points[0], points[1], points[3], points[4]


def face_quad(landmarks) -> np.ndarray:
    """The crop square ``[4, 2]`` (float64, photo pixels) that the recipe puts around one face."""
    return _square(landmarks)[0]


def _square(landmarks) -> tuple[np.ndarray, float]:
    """``(quad, side)``: the side as the recipe computes it (the later steps' sizes and rounding follow it)."""
    eye_left, eye_right, mouth_left, mouth_right = eyes_and_mouth(landmarks)
    eye_mid = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) * 0.5 - eye_mid
    if np.hypot(*eye_to_eye) == 0 and np.hypot(*eye_to_mouth) == 0:
        raise ValueError("landmarks are degenerate: the eyes and the mouth are at one point")
    # The square's x axis leans between the eye line and the eye-to-mouth line turned a quarter clockwise,
    # so a tilted head is levelled by both; its half-side is the larger of 2x the eye distance and 1.8x the
    # eye-to-mouth distance; its centre sits a tenth of the way from the eyes to the mouth.
    x = np.array([eye_to_eye[0] + eye_to_mouth[1], eye_to_eye[1] - eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    centre = eye_mid + eye_to_mouth * 0.1
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y]), np.hypot(*x) * 2


def quad_matrix(quad, width: int, height: int | None = None) -> torch.Tensor:
    """The 3x3 float64 matrix taking crop pixel ``(u, v, 1)`` of a ``width`` x ``height`` crop (pixel centres
    at integers) to photo pixel coordinates; its inverse takes the photo into the crop."""
    q = torch.as_tensor(np.asarray(quad, np.float64))
    height = width if height is None else height
    across, down = (q[3] - q[0]) / width, (q[1] - q[0]) / height
    matrix = torch.eye(3, dtype=torch.float64)
    matrix[:2, 0], matrix[:2, 1], matrix[:2, 2] = across, down, q[0] + 0.5 * (across + down)
    return matrix


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """One face cut out of a photo by the FFHQ recipe, and where it came from.

    ``image``: uint8 ``[3, S, S]`` (``sg2_core.images.to_float`` makes a method's input of it); ``quad``:
    float64 ``[4, 2]``, the crop's corners in the photo (the module docstring); ``landmarks``: float64
    ``[68 or 5, 2]`` in the photo, as detected or given; ``score`` and ``box``: dlib's detection score and
    box ``(left, top, right, bottom)``, None for given landmarks; ``name``: the photo's, for messages.
    """

    image: torch.Tensor
    quad: torch.Tensor
    landmarks: torch.Tensor
    score: float | None = None
    box: tuple[int, int, int, int] | None = None
    name: str = "the photo"

    @property
    def size(self) -> int:
        return self.image.shape[-1]

    @property
    def matrix(self) -> torch.Tensor:
        """3x3: this crop's pixel ``(u, v, 1)`` -> photo pixel coordinates (``quad_matrix``)."""
        return quad_matrix(self.quad, self.size)


def align(
    photo, landmarks, size: int = 256, transform_size: int | None = None, *, name: str | None = None
) -> AlignedFace:
    """One face of ``photo`` (a path, PIL image, uint8 array or tensor) cut out by the recipe from its
    ``landmarks`` (``[68, 2]`` or ``[5, 2]``), as an ``AlignedFace`` of ``size`` pixels. ``transform_size``
    (default ``size``) is the size the quad is warped to before a Lanczos resize to ``size``."""
    from PIL import Image

    transform_size = size if transform_size is None else transform_size
    if not (isinstance(size, int) and size > 0 and isinstance(transform_size, int) and transform_size >= size):
        raise ValueError(f"size must be a positive int and transform_size an int >= size, got {size}, {transform_size}")
    pixels, name = read_photo(photo, name)
    quad, side = _square(landmarks)
    image, local_quad = _crop_and_pad(Image.fromarray(pixels), quad.copy(), side, size)
    crop = image.transform(
        (transform_size, transform_size), Image.Transform.QUAD, (local_quad + 0.5).flatten(), Image.Resampling.BILINEAR
    )
    if size < transform_size:
        crop = crop.resize((size, size), Image.Resampling.LANCZOS)
    array = np.asarray(crop.convert("RGB"))
    return AlignedFace(
        image=torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))),
        quad=torch.from_numpy(quad),
        landmarks=torch.as_tensor(np.asarray(landmarks, np.float64)),
        name=name,
    )


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    return (
        int(np.floor(quad[:, 0].min())),
        int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())),
        int(np.ceil(quad[:, 1].max())),
    )


def _crop_and_pad(image, quad: np.ndarray, side: float, size: int):
    """The recipe's preparation before the warp: ``(image, quad in that image)``."""
    import scipy.ndimage
    from PIL import Image

    # Shrink a face much larger than the output by an integer factor first (a cheaper, sharper warp).
    shrink = int(np.floor(side / size * 0.5))
    if shrink > 1:
        width, height = image.size
        new_size = (int(np.rint(float(width) / shrink)), int(np.rint(float(height) / shrink)))
        image = image.resize(new_size, Image.Resampling.LANCZOS)
        quad, side = quad / shrink, side / shrink

    # Crop to the quad plus a border of a tenth of its side.
    border = max(int(np.rint(side * 0.1)), 3)
    left, top, right, bottom = _bounds(quad)
    width, height = image.size
    box = (max(left - border, 0), max(top - border, 0), min(right + border, width), min(bottom + border, height))
    if box[2] - box[0] < width or box[3] - box[1] < height:
        image = image.crop(box)
        quad = quad - box[:2]

    # Where the quad (plus border) leaves the photo, pad by at least 0.3 of its side with the photo's mirror
    # image, blurred more and faded more to the median colour the farther from the photo's edge.
    left, top, right, bottom = _bounds(quad)
    width, height = image.size
    pad = (
        max(border - left, 0),
        max(border - top, 0),
        max(right - width + border, 0),
        max(bottom - height + border, 0),
    )
    if max(pad) > border - 4:
        pad = np.maximum(pad, int(np.rint(side * 0.3)))
        pixels = np.pad(np.float32(image), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        height, width, _ = pixels.shape
        y, x, _ = np.ogrid[:height, :width, :1]
        # 0 on the photo's edge, 1 on the padding's outer edge, negative inside the photo
        depth = np.maximum(
            1.0 - np.minimum(np.float32(x) / pad[0], np.float32(width - 1 - x) / pad[2]),
            1.0 - np.minimum(np.float32(y) / pad[1], np.float32(height - 1 - y) / pad[3]),
        )
        sigma = side * 0.02
        pixels += (scipy.ndimage.gaussian_filter(pixels, [sigma, sigma, 0]) - pixels) * np.clip(depth * 3.0 + 1.0, 0, 1)
        pixels += (np.median(pixels, axis=(0, 1)) - pixels) * np.clip(depth, 0.0, 1.0)
        image = Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)), "RGB")
        quad = quad + pad[:2]
    return image, quad


def _choose(candidates: list, faces) -> list:
    """The faces asked for, of ``candidates`` sorted largest first: ``'all'``, ``'largest'`` or the ``N``
    largest."""
    if faces == "all":
        return candidates
    if faces == "largest":
        return candidates[:1]
    if isinstance(faces, int) and not isinstance(faces, bool) and faces >= 1:
        return candidates[:faces]
    raise ValueError(f"faces must be 'all', 'largest' or a number of faces >= 1 (the largest first), got {faces!r}")


def align_faces(
    photo,
    faces: str | int = "all",
    *,
    size: int = 256,
    transform_size: int | None = None,
    landmarks=None,
    landmarks_model=None,
    upsample: int = 1,
    min_score: float = 0.0,
    max_drift: float = MAX_DRIFT,
    name: str | None = None,
) -> list[AlignedFace]:
    """Every face of ``photo`` asked for (``faces``: ``'all'``, ``'largest'`` or the ``N`` largest), aligned by
    the recipe, largest first.

    The faces come from dlib (``detect_faces``: ``landmarks_model``, ``upsample``, ``min_score``, ``max_drift``)
    unless ``landmarks`` gives them: one face ``[68 | 5, 2]`` or several ``[N, 68 | 5, 2]`` (any detector's).
    A photo without a face raises ``NoFaceError`` naming it.
    """
    _choose([], faces)  # check it before any work
    pixels, name = read_photo(photo, name)
    if landmarks is not None:
        sets = _landmark_sets(landmarks)
        found = [(face_quad(points), points, None, None) for points in sets]
        if not found:
            raise NoFaceError(f"{name}: landmarks= holds no face")
    else:
        detected = detect_faces(
            pixels, landmarks_model=landmarks_model, upsample=upsample, min_score=min_score, max_drift=None
        )
        kept = [face for face in detected if face.drift <= max_drift]
        if not kept:
            dropped = (
                f"; {len(detected)} detection(s) dropped: their landmarks follow the box, not the image "
                f"(drift > {max_drift} eye distances), as on non-faces"
                if detected
                else ""
            )
            raise NoFaceError(
                f"{name}: no face found (dlib's detector at upsample={upsample}, min_score={min_score}{dropped}); "
                "give its landmarks (landmarks=) or invert the photo unaligned "
                "(sg2_core.images.load_images with fit='center-crop')"
            )
        found = [(face_quad(face.landmarks), face.landmarks, face.score, face.box) for face in kept]
    found.sort(key=lambda item: -np.hypot(*(item[0][3] - item[0][0])))
    aligned = []
    for _, points, score, box in _choose(found, faces):
        face = align(pixels, points, size, transform_size, name=name)
        aligned.append(AlignedFace(face.image, face.quad, face.landmarks, score, box, name))
    return aligned


def _landmark_sets(landmarks) -> list[np.ndarray]:
    if isinstance(landmarks, torch.Tensor):
        landmarks = landmarks.detach().cpu().numpy()
    if isinstance(landmarks, Sequence) and landmarks and np.ndim(landmarks[0]) == 2:
        return [np.asarray(points, np.float64) for points in landmarks]
    array = np.asarray(landmarks, np.float64)
    return [array] if array.ndim == 2 else list(array)


def stack_faces(aligned: Sequence[AlignedFace]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, quads)`` of aligned faces of one size: float ``[N, 3, S, S]`` in [-1, 1] (a method's input)
    and float64 ``[N, 4, 2]``, the transforms to keep (e.g. in ``Inversion.extras``) for ``paste_back``."""
    from sg2_core.images import to_float

    if not aligned:
        raise ValueError("no aligned faces to stack")
    sizes = sorted({face.size for face in aligned})
    if len(sizes) > 1:
        raise ValueError(f"aligned faces of one size can be stacked, got sizes {sizes}")
    return to_float(torch.stack([face.image for face in aligned])), torch.stack([face.quad for face in aligned])
