"""Rendered faces back into the photo they were aligned from, through the inverse of each face's transform.

Each face is warped into the photo (bilinear; first resized with antialiasing to about its size there, so a
1024 px rendering of a 200 px face does not alias) and blended with a mask that is 1 inside the crop and
falls smoothly to 0 over its outer ``feather`` (a fraction of the crop's side), so no seam shows. Pixels whose
centres lie outside every quad are the photo's own, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sg2_core.faces.align import AlignedFace
from sg2_core.faces.photo import read_photo


def paste_back(photo, images, faces, *, feather: float = 0.1, name: str | None = None) -> torch.Tensor:
    """The photo with ``images`` pasted in where ``faces`` were cut out; uint8 ``[3, H, W]``
    (``sg2_core.images.save_image`` writes it).

    ``photo``: what the faces were aligned from (a path, PIL image, uint8 array or tensor). ``images``: one
    rendering per face, any size: ``[N, 3, h, w]`` (or a list of ``[3, h, w]``), float in [-1, 1] (what
    ``Inversion.render`` gives) or uint8 (``AlignedFace.image``). ``faces``: the ``AlignedFace`` list, or their
    quads ``[N, 4, 2]`` as a tensor, an array or nested lists (as saved in ``Inversion.extras`` or JSON).
    Faces are pasted in order, a later one over an earlier one. A quad whose centre lies outside the photo was
    cut from another photo: a ``ValueError`` says so.
    """
    if not 0 <= feather <= 0.5:
        raise ValueError(f"feather must be in [0, 0.5] (a fraction of the crop's side), got {feather}")
    pixels, name = read_photo(photo, name)
    quads = _quads(faces)
    renders = _renders(images)
    if len(renders) != len(quads):
        raise ValueError(f"{name}: {len(renders)} image(s) for {len(quads)} face(s): give one image per face")
    height, width = pixels.shape[:2]
    for i, quad in enumerate(quads):
        x, y = quad.mean(dim=0).tolist()  # a point of the face, whatever the crop's padding
        if not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
            raise ValueError(
                f"{name}: face {i}'s quad is centred at ({x:.1f}, {y:.1f}), outside the photo ({width}x{height} "
                "pixels): it was cut from another photo"
            )
    out = torch.from_numpy(pixels).to(torch.float64).permute(2, 0, 1)
    for render, quad in zip(renders, quads):
        _paste_one(out, render, quad, feather)
    return out.round().clamp(0, 255).to(torch.uint8)


def _quads(faces) -> torch.Tensor:
    if isinstance(faces, Sequence) and faces and all(isinstance(face, AlignedFace) for face in faces):
        return torch.stack([face.quad for face in faces]).to(torch.float64)
    if isinstance(faces, torch.Tensor):
        quads = faces.detach().cpu().to(torch.float64)
    else:
        quads = torch.as_tensor(np.asarray(faces, np.float64))
    if quads.ndim != 3 or quads.shape[1:] != (4, 2) or not torch.isfinite(quads).all():
        raise ValueError(
            f"faces must be AlignedFace objects or finite quads [N, 4, 2] (AlignedFace.quad), got shape "
            f"{list(quads.shape)}"
        )
    return quads


def _renders(images) -> list[torch.Tensor]:
    """Each image as float64 ``[3, h, w]`` in [0, 255]."""
    items = list(images) if not isinstance(images, torch.Tensor) or images.ndim == 4 else [images]
    renders = []
    for image in items:
        if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
            what = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"images must be [N, 3, h, w] or a list of [3, h, w] tensors, got an image {what}")
        image = image.detach().cpu()
        if image.dtype == torch.uint8:
            renders.append(image.to(torch.float64))
        elif image.is_floating_point():
            renders.append((image.to(torch.float64) + 1) * 127.5)
        else:
            raise ValueError(f"images must be float in [-1, 1] or uint8, got {image.dtype}")
    return renders


def _paste_one(out: torch.Tensor, render: torch.Tensor, quad: torch.Tensor, feather: float) -> None:
    _, height, width = out.shape
    left, top = (quad.min(dim=0).values.floor().clamp(min=0)).long().tolist()
    right, bottom = quad.max(dim=0).values.ceil().long().tolist()
    right, bottom = min(right, width - 1), min(bottom, height - 1)
    if left > right or top > bottom:
        return  # the face lies outside the photo
    # (s, t) in [0, 1]^2 across the crop for every photo pixel of the quad's bounding box
    across, down = quad[3] - quad[0], quad[1] - quad[0]
    to_crop = torch.linalg.inv(torch.stack([across, down], dim=1))
    ys, xs = torch.meshgrid(
        torch.arange(top, bottom + 1, dtype=torch.float64),
        torch.arange(left, right + 1, dtype=torch.float64),
        indexing="ij",
    )
    st = (torch.stack([xs, ys], dim=-1) - quad[0]) @ to_crop.T
    edge = torch.minimum(st, 1 - st).amin(dim=-1)  # distance to the crop's nearest edge, in crop sides
    if feather > 0:
        ramp = (edge / feather).clamp(0, 1)
        mask = ramp * ramp * (3 - 2 * ramp)
    else:
        mask = (edge > 0).to(torch.float64)
    # about one rendered pixel per photo pixel before the bilinear warp
    side = max(across.norm().item(), down.norm().item())
    target = max(1, int(np.ceil(side)))
    if max(render.shape[1:]) > target:
        render = F.interpolate(
            render[None], size=(target, target), mode="bicubic", antialias=True, align_corners=False
        )[0]
    grid = (st * 2 - 1)[None].to(render.dtype)
    face = F.grid_sample(render[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    region = out[:, top : bottom + 1, left : right + 1]
    inside = mask > 0
    region[:, inside] += (mask * (face - region))[:, inside]
