"""Run the official HFGI code (Tengfei-Wang/HFGI) small on the CPU to make this folder's ``hfgi_reference.pt`` (run
once, by hand, in the workspace's environment, outside the repository):

    mkdir -p /tmp/hfgi_fixture/ref
    git -C CHECKOUT_OF_HFGI archive HEAD models options configs utils | tar -x -C /tmp/hfgi_fixture/ref
    git -C CHECKOUT_OF_HFGI rev-parse HEAD > /tmp/hfgi_fixture/ref/COMMIT
    python make_hfgi_reference.py /tmp/hfgi_fixture/ref

Nothing of the reference code is copied here; it is imported from the checkout. Its CUDA ops
(``models.stylegan2.op``) are replaced by the plain-PyTorch stand-ins below (the same arithmetic: zero-insertion
upsampling, padding, a correlation with the flipped kernel, subsampling; bias, leaky ReLU 0.2, gain sqrt(2)).

What runs (``scripts/inference.py``'s steps after the e4e codes, which sg2-core's e4e fixtures cover):

    images0 = G([codes], None, input_is_latent=True, randomize_noise=False)
    res = x - bilinear256(clamp(images0, -1, 1))
    aligned = grid_align(cat(res, bilinear256(clamp(images0, -1, 1))))       # ADA, official widths
    scale, shift = residue(aligned)                                           # the consultation encoder
    images = G([codes], [scale, shift], input_is_latent=True, randomize_noise=False)

at reduced widths where the code has literals to substitute: the consultation heads' 512 channels become 32
(``EqualConv2d(64, 512, ...)``, ``EqualConv2d(512, 512, ...)``), and the generator is rosinality's at size 64 (its
64x64 block is the conditioned one, ``i == 7``) with style_dim 32, 2 mapping layers and its channel table's 512
entries at 32 (``64: 256 * channel_multiplier`` -> ``16 *``, multiplier 2: 32 channels). ADA is at its official
widths (its input must be 256 px: its interpolation sizes are literals). Weights: ``conftest.hfgi_formula_state``
(a formula, no stored weights; the blur kernels are the generator's own). ``x``: sample 0 of ``inputs.pt``'s ``x256``; ``codes``: seeded N(0, 1) ``[1, 10,
32]``, stored. Run in float32 and float64.

Stored (``torch.load(weights_only=True)``): ``codes``; ``shapes`` (the small networks' keys and shapes, prefixed as
in the checkpoint: ``grid_align.``, ``residue.``, ``decoder.``); per dtype (``_f32``, ``_f64``): ``images0`` and
``images`` ``[1, 3, 64, 64]``, ``aligned`` (every 4th pixel: ``[1, 3, 64, 64]``), ``scale`` and ``shift`` (every 4th
pixel: ``[1, 32, 16, 16]``); ``layouts``: the full-size ``residue.*`` and ``grid_align.*`` keys and shapes (built
under ``torch.device("meta")``); ``trainer_opts``: ``vars`` of the parsed default ``TrainOptions``; ``commit``.
"""

import importlib
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from conftest import hfgi_formula_state  # noqa: E402

from sg2_core.testing.fixture_packs import unsqueeze  # noqa: E402

SMALL_CONDITION = 32
N_STYLES = 10  # rosinality's n_latent at size 64


def fused_leaky_relu(x, bias, negative_slope=0.2, scale=2**0.5):
    return F.leaky_relu(x + bias.view(1, -1, *[1] * (x.ndim - 2)).to(x), negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel, negative_slope=0.2, scale=2**0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, x):
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    n, c, h, w = x.shape
    if up > 1:
        spread = x.new_zeros(n, c, h * up, w * up)
        spread[:, :, ::up, ::up] = x
        x = spread
    if min(pad) < 0:
        raise NotImplementedError("negative padding (the HFGI generator uses none)")
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = torch.flip(kernel, [0, 1]).to(x)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)[:, :, ::down, ::down]


def use_repo(root: Path) -> None:
    sys.path.insert(0, str(root))
    for name in ("models.stylegan2.op", "models.stylegan2.op.fused_act", "models.stylegan2.op.upfirdn2d"):
        stub = types.ModuleType(name)
        stub.__path__ = []
        stub.FusedLeakyReLU, stub.fused_leaky_relu, stub.upfirdn2d = FusedLeakyReLU, fused_leaky_relu, upfirdn2d
        sys.modules[name] = stub


def reduced(root: Path, module: str, edits: list[tuple[str, str]]) -> types.ModuleType:
    """``module``'s source with literals substituted (each edit must apply), run as a module of its own."""
    path = root / (module.replace(".", "/") + ".py")
    src = path.read_text()
    for old, new in edits:
        if old not in src:
            raise SystemExit(f"{path}: {old!r} not found; the checkout is not the expected commit")
        src = src.replace(old, new)
    mod = types.ModuleType(module + "_small")
    mod.__file__ = str(path)
    exec(compile(src, str(path), "exec"), mod.__dict__)
    return mod


def shapes_of(prefix: str, module: nn.Module) -> dict:
    return {f"{prefix}.{k}": list(v.shape) for k, v in module.state_dict().items()}


def main(root: Path) -> None:
    use_repo(root)
    encoders = importlib.import_module("models.encoders.psp_encoders")
    with torch.device("meta"):
        layouts = {
            **shapes_of("residue", encoders.ResidualEncoder()),
            **shapes_of("grid_align", encoders.ResidualAligner()),
        }
    from options.train_options import TrainOptions

    opts = {k: v for k, v in vars(TrainOptions().parser.parse_args([])).items() if not callable(v)}

    width = str(SMALL_CONDITION)
    small_encoders = reduced(
        root,
        "models.encoders.psp_encoders",
        [
            ("EqualConv2d(64, 512, 3", f"EqualConv2d(64, {width}, 3"),
            ("EqualConv2d(512, 512, 3", f"EqualConv2d({width}, {width}, 3"),
        ],
    )
    small_model = reduced(
        root,
        "models.stylegan2.model",
        [(f"{r}: 512,", f"{r}: {width},") for r in (4, 8, 16, 32)]
        + [("64: 256 * channel_multiplier", "64: 16 * channel_multiplier")],
    )
    torch.manual_seed(0)
    nets = {
        "grid_align": encoders.ResidualAligner(),
        "residue": small_encoders.ResidualEncoder(),
        "decoder": small_model.Generator(64, SMALL_CONDITION, 2, channel_multiplier=2),
    }
    shapes = {k: v for prefix, net in nets.items() for k, v in shapes_of(prefix, net).items()}
    state = hfgi_formula_state(shapes)
    for prefix, net in nets.items():
        own = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        net.load_state_dict({**net.state_dict(), **own})  # the blur kernels stay the generator's own
        net.eval()

    raw = torch.load(HERE / "inputs.pt", weights_only=True)
    x = unsqueeze(raw["x256_0_f16_lzma"], (1, 3, 256, 256)).float()
    codes = torch.randn(1, N_STYLES, SMALL_CONDITION, generator=torch.Generator().manual_seed(24))
    out = {
        "codes": codes,
        "shapes": shapes,
        "layouts": layouts,
        "trainer_opts": opts,
        "commit": (root / "COMMIT").read_text().strip(),
    }
    for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        g, align, residue = (nets[k].to(dtype) for k in ("decoder", "grid_align", "residue"))
        with torch.no_grad():
            c, xd = codes.to(dtype), x.to(dtype)
            images0, _ = g([c], None, input_is_latent=True, randomize_noise=False)
            low = F.interpolate(torch.clamp(images0, -1.0, 1.0), size=(256, 256), mode="bilinear")
            aligned = align(torch.cat((xd - low, low), 1))
            scale, shift = residue(aligned)
            images, _ = g([c], [scale, shift], input_is_latent=True, randomize_noise=False)
        out.update(
            {
                f"images0_{tag}": images0,
                f"aligned_{tag}": aligned[:, :, ::4, ::4].contiguous(),
                f"scale_{tag}": scale[:, :, ::4, ::4].contiguous(),
                f"shift_{tag}": shift[:, :, ::4, ::4].contiguous(),
                f"images_{tag}": images,
            }
        )
        change = (images - images0).abs().max().item()
        print(
            f"{tag}: |images - images0| max {change:.3g}; |scale| max {scale.abs().max():.3g}, |shift| max {shift.abs().max():.3g}"
        )
    for name in ("images0", "aligned", "scale", "shift", "images"):
        ref = out[f"{name}_f64"]
        err = (out[f"{name}_f32"].double() - ref).abs().max().item() / ref.abs().max().item()
        print(f"{name}: reference float32 error {err / torch.finfo(torch.float32).eps:.1f} eps * max|value|")
    torch.save(out, HERE / "hfgi_reference.pt")
    print(f"wrote {HERE / 'hfgi_reference.pt'} ({(HERE / 'hfgi_reference.pt').stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]).resolve())
