"""Identity similarity: cosine of L2-normalised face embeddings.

* ``curricularface-ir101``: the paper protocol (HyperInverter, pSp's scripts): CurricularFace IR-101 on 112x112
  aligned crops in [-1, 1]; weights ``CurricularFace_Backbone.pth`` from the user.
* ``arcface-ir-se50``: pSp's ID-loss network (IR-SE50 ArcFace, ``model_ir_se50.pth``), applied with pSp's crop
  of the 256 px image ([35:223, 32:220]) and adaptive average pooling to 112; differentiable.
* ``arcface-onnx``: an insightface ArcFace ``.onnx`` (optional extra ``inv-metrics[id]``); aligned crops.

Face detection and alignment (pSp's MTCNN, insightface's detector) are not part of this package: pass crops
that are already aligned, or an ``align`` function mapping [-1, 1] images to aligned 112x112 crops.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sg2_core.encoders import IRBackbone, ir_se

from .backbones import load_state
from .errors import MissingWeightsError, find_weights
from .images import check_images, to_rgb, to_uint8

ID_NETWORKS = ("curricularface-ir101", "arcface-ir-se50", "arcface-onnx")
CURRICULARFACE_FILE = "CurricularFace_Backbone.pth"
ARCFACE_IR_SE50_FILE = "model_ir_se50.pth"
PSP_CROP_SIZE = 256
PSP_CROP = (slice(35, 223), slice(32, 220))  # rows, columns of the 256 px image (pSp's IDLoss)
FACE_SIZE = 112


def curricularface_ir101(**kwargs) -> IRBackbone:
    """CurricularFace's IR-101 (pSp ``IR_101``): plain IR units, BatchNorm1d without affine."""
    return ir_se(101, mode="ir", dropout=0.4, affine=False, **kwargs)


def arcface_ir_se50(**kwargs) -> IRBackbone:
    """pSp's ArcFace (``Backbone(112, 50, drop_ratio=0.6, mode='ir_se')``)."""
    return ir_se(50, mode="ir_se", dropout=0.6, affine=True, **kwargs)


def psp_id_crop(x: torch.Tensor) -> torch.Tensor:
    """pSp's ID-loss preprocessing: pool to 256 if needed, crop the face region, adaptive-avg-pool to 112."""
    if x.shape[-2:] != (PSP_CROP_SIZE, PSP_CROP_SIZE):
        x = F.adaptive_avg_pool2d(x, PSP_CROP_SIZE)
    return F.adaptive_avg_pool2d(x[:, :, PSP_CROP[0], PSP_CROP[1]], FACE_SIZE)


class FaceEmbedder(nn.Module):
    """[-1, 1] images -> unit-norm embeddings [N, D] through ``preprocess`` (crop/align) and a face backbone."""

    def __init__(self, backbone: nn.Module, name: str, preprocess: Callable | None = None):
        super().__init__()
        self.backbone, self.name, self.preprocess = backbone, name, preprocess

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=(1, 3))
        x = to_rgb(x)
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.backbone(x)


class InsightFaceEmbedder(nn.Module):
    """insightface ArcFace ONNX on aligned crops; [-1, 1] RGB tensors in, unit-norm embeddings out (no grad)."""

    def __init__(self, onnx_path, preprocess: Callable | None = None):
        super().__init__()
        try:
            from insightface.model_zoo import get_model
        except ImportError as err:
            raise ImportError(
                "the arcface-onnx ID network needs insightface and onnxruntime: pip install 'inv-metrics[id]'"
            ) from err
        self.model = get_model(str(onnx_path), providers=["CPUExecutionProvider"])
        if self.model is None or not hasattr(self.model, "get_feat"):
            raise ValueError(f"{onnx_path} is not an insightface recognition (ArcFace) model")
        self.model.prepare(ctx_id=-1)
        self.name, self.preprocess = "arcface-onnx", preprocess

    def embed_bgr_uint8(self, crops) -> np.ndarray:
        """insightface's own call: a list of aligned uint8 BGR HxWx3 crops -> raw embeddings."""
        return self.model.get_feat(list(crops))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=(1, 3))
        x = to_rgb(x)
        if self.preprocess is not None:
            x = self.preprocess(x)
        bgr = to_uint8(x).flip(1).permute(0, 2, 3, 1).cpu().numpy()  # RGB NCHW -> BGR NHWC, what cv2 code passes
        emb = torch.from_numpy(self.embed_bgr_uint8(np.ascontiguousarray(bgr))).float().to(x.device)
        return F.normalize(emb, dim=1)


def load_id_network(
    name: str = "curricularface-ir101", *, weights=None, device=None, align: Callable | None = None
) -> nn.Module:
    """A frozen face embedder with ``.name``; ``weights`` is the checkpoint path (default: the torch hub cache).

    ``align`` (optional) maps [-1, 1] images to aligned 112x112 crops; without it the metric networks
    (``curricularface-ir101``, ``arcface-onnx``) expect aligned crops. ``arcface-ir-se50`` uses pSp's crop.
    """
    if name == "curricularface-ir101":
        path = find_weights(CURRICULARFACE_FILE, weights, hint="CurricularFace IR-101 backbone (the paper's ID metric)")
        module = FaceEmbedder(load_state(curricularface_ir101(), path, "CurricularFace IR-101"), name, align)
    elif name == "arcface-ir-se50":
        path = find_weights(ARCFACE_IR_SE50_FILE, weights, hint="pSp's IR-SE50 ArcFace (the ID loss network)")
        module = FaceEmbedder(load_state(arcface_ir_se50(), path, "IR-SE50 ArcFace"), name, align or psp_id_crop)
    elif name == "arcface-onnx":
        if weights is None:
            raise MissingWeightsError(
                "an insightface recognition .onnx (e.g. w600k_r50.onnx)", [], hint="pass weights=PATH"
            )
        path = find_weights(str(weights), weights)
        module = InsightFaceEmbedder(path, align)
    else:
        raise ValueError(f"unknown ID network {name!r}; choose from {ID_NETWORKS}")
    return module.to(device).eval().requires_grad_(False)


def id_similarity(x: torch.Tensor, y: torch.Tensor, network: nn.Module) -> torch.Tensor:
    """Per-image cosine [N] between the embeddings of ``x`` and ``y`` (1 = same identity)."""
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return (network(x) * network(y)).sum(dim=1)
