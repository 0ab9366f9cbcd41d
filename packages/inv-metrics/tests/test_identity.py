"""IR / IR-SE backbones, pSp's ID preprocessing and loss, CurricularFace IR-101, insightface ArcFace."""

import importlib.util

import numpy as np
import pytest
import torch

from inv_metrics import MissingWeightsError, id_similarity, load_id_network
from inv_metrics.backbones import ir_se
from inv_metrics.identity import FaceEmbedder, psp_id_crop
from inv_metrics.losses import IDLoss

REDUCED = dict(widths=(16, 32, 48, 64), embedding_size=32)  # the encoders fixture's reduced IR-SE50


@pytest.fixture(scope="module")
def arc(data_dir):
    return torch.load(data_dir / "arcface_ir_se50_small.pt", weights_only=True)


@pytest.fixture(scope="module")
def arcface_file(arc, tmp_path_factory):
    path = tmp_path_factory.mktemp("arcface") / "model_ir_se50_reduced.pth"
    torch.save(arc["state_dict"], path)  # float16 values; loading casts to float32
    return path


def _reduced_arcface(path):
    from inv_metrics.backbones import load_state
    from inv_metrics.identity import arcface_ir_se50

    return load_state(arcface_ir_se50(**REDUCED), path, "reduced IR-SE50").eval()


def test_ir_se50_embeddings_match_psp(arc, arcface_file):
    net = _reduced_arcface(arcface_file)
    torch.testing.assert_close(net(arc["x112"].float()), arc["emb_x112"], atol=1e-5, rtol=0)


def test_psp_crop_and_id_loss(arc, arcface_file):
    x, y = arc["x256_0"].float(), arc["y256_0"].float()
    torch.testing.assert_close(psp_id_crop(x)[0], arc["preproc_x256_sample0"], atol=1e-6, rtol=0)
    embed = FaceEmbedder(_reduced_arcface(arcface_file), "arcface-ir-se50", psp_id_crop)
    torch.testing.assert_close(embed(x), arc["emb_x256_preproc"][:1], atol=1e-5, rtol=0)
    loss = IDLoss(embed)
    y_hat = y.clone().requires_grad_()
    value = loss(y_hat, x)
    assert value.item() == pytest.approx(1 - arc["cos_sample0"], abs=1e-5)
    value.backward()
    assert y_hat.grad.abs().sum() > 0
    assert id_similarity(x, y, embed).item() == pytest.approx(arc["cos_sample0"], abs=1e-5)


def test_load_id_network_from_file(arcface_file, tmp_path):
    with pytest.raises(ValueError, match="does not fit IR-SE50"):  # full-size network, reduced weights
        load_id_network("arcface-ir-se50", weights=arcface_file)
    with pytest.raises(MissingWeightsError, match="CurricularFace_Backbone.pth"):
        load_id_network("curricularface-ir101", weights=tmp_path / "CurricularFace_Backbone.pth")


def test_curricularface_ir101_layout():
    with torch.device("meta"):  # full size, no memory or time spent on values
        net = ir_se(101, mode="ir", affine=False)
    keys = net.state_dict()
    assert len(net.body) == 49 and "body.48.res_layer.4.weight" in keys
    assert not any(".res_layer.5." in k for k in keys)  # plain IR: no squeeze-excitation
    assert "output_layer.4.weight" not in keys  # BatchNorm1d without affine (pSp IR_101)
    assert keys["output_layer.3.weight"].shape == (512, 512 * 7 * 7)


def test_curricularface_from_hub_cache(tmp_path, monkeypatch):
    import inv_metrics.identity as identity

    small = dict(widths=(16, 32, 48, 64), embedding_size=32)
    build = identity.curricularface_ir101
    monkeypatch.setattr(identity, "curricularface_ir101", lambda: build(**small))  # same code path, small widths
    torch.manual_seed(0)
    net = build(**small)
    for module in net.modules():  # non-trivial BN statistics, so eval mode matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 1.5)
    ckpt = tmp_path / "hub" / "checkpoints" / "CurricularFace_Backbone.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(net.state_dict(), ckpt)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    metric = load_id_network("curricularface-ir101")
    assert metric.name == "curricularface-ir101"
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    emb = metric(x)
    torch.testing.assert_close(emb, net.eval()(x))
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(id_similarity(x, x, metric), torch.ones(2))
    with pytest.raises(ValueError, match="112x112"):
        metric(torch.zeros(1, 3, 256, 256))


def test_trunk_taps_for_encoders():
    trunk = ir_se(50, "ir_se", embedding_size=None, widths=(16, 32, 48, 64))
    c1, c2, c3 = trunk.forward_features(torch.zeros(1, 3, 64, 64), taps=(6, 20, 23))
    assert (c1.shape[1:], c2.shape[1:], c3.shape[1:]) == ((32, 16, 16), (48, 8, 8), (64, 4, 4))
    with pytest.raises(ValueError, match="num_layers"):
        ir_se(34)


@pytest.mark.skipif(importlib.util.find_spec("insightface") is None, reason="insightface not installed")
def test_insightface_arcface_tiny(data_dir, tmp_path):
    ref = torch.load(data_dir / "id_arcface_tiny.pt", weights_only=True)
    onnx_path = tmp_path / "tiny.onnx"
    onnx_path.write_bytes(ref["onnx_bytes"].numpy().tobytes())
    net = load_id_network("arcface-onnx", weights=onnx_path)
    assert net.name == "arcface-onnx"
    bgr = ref["aligned_bgr_u8"].numpy()
    np.testing.assert_allclose(net.embed_bgr_uint8(list(bgr)), ref["embeddings"].numpy(), atol=1e-5)
    rgb = torch.from_numpy(bgr[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
    emb = net(rgb)
    for (i, j), cos in zip(ref["pairs"].tolist(), ref["cosine_sims"].tolist()):
        assert (emb[i] @ emb[j]).item() == pytest.approx(cos, abs=1e-5)
