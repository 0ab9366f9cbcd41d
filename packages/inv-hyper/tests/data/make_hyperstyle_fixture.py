"""Run the official HyperStyle code (yuval-alaluf/hyperstyle) to make this folder's ``hyperstyle_small.pt``,
``hyperstyle_io.pt`` and ``hyperstyle_official_layouts.json.gz`` (run once, by hand, in the workspace's environment,
which has torchvision; on the CPU):

    mkdir -p /tmp/ref/hyperstyle && git -C CHECKOUT archive HEAD models options configs utils | tar -x -C /tmp/ref/hyperstyle
    git -C CHECKOUT rev-parse HEAD > /tmp/ref/hyperstyle/COMMIT   # recorded with the outputs
    python make_hyperstyle_fixture.py /tmp/ref/hyperstyle

Nothing of the reference code is copied here; it is imported from the checkout. Its CUDA ops (``stylegan2/op``) are
replaced by the plain-PyTorch functions below (bias + leaky ReLU * sqrt 2; upsample by zero insertion, pad, FIR
filter, downsample), ``resnet34(pretrained=True)`` by torchvision's ``BasicBlock`` layers at reduced widths (nothing
is downloaded), the ``.cuda()`` calls of ``SharedWeightsHypernet`` are dropped, the trainer's missing
``model_paths["e4e_w_encoder"]`` default is given the ``faces_w_encoder`` path, and the width literals are
substituted in the module sources before they run (:data:`EDITS`; each must apply).

1. ``hyperstyle_official_layouts.json.gz``: the official modules at full size under ``torch.device("meta")``: the
   state-dict keys and shapes of ``hyperstyle_ffhq.pt`` (``hypernet.`` = ``SharedWeightsHyperNetResNet`` with the
   README's training options, ``decoder.`` = the 1024 px generator) and of the W encoder file
   ``faces_w_encoder.pt`` (pSp with ``WEncoder``: ``encoder.``, ``decoder.``), each with the trainer's options.
2. ``hyperstyle_small.pt``: an official-layout checkpoint (``state_dict`` without the W encoder, ``opts``,
   ``latent_avg``, as the coach's ``__get_save_dict`` writes it) of a reduced HyperStyle: a 128 px generator
   (style_dim 16, 2 mapping layers, 8 channels up to 64 px, 4 at 128), the ResNet34 backbone at widths 8/12/16/24,
   refinement codes of width 16 (the literal 512 of ``out_c`` and of the shared hypernet's ``z_dim``), inner widths
   8 (shared) and 12 (non-shared); ``layers_to_tune`` covers shared convs, non-shared convs (14, 15) and toRGBs
   (1, 7, 16). Seeded weights, rounded to float16 and stored as float16.
3. ``hyperstyle_io.pt``: the official ``utils/inference_utils.run_inversion`` (3 iterations, ``resize_outputs=False``)
   of that model on two 128 px targets (``x``, float16 values; the model reads them at 256 px through its own
   ``face_pool``, so the script hands it ``face_pool(x)``), whose W codes (``codes``) come from a stand-in W encoder
   that returns them; in float64 (stored as float32): the first iteration's deltas (``deltas_1``), the accumulated
   deltas after the last (``deltas``), keyed by official layer index, and the final 128 px render (``images``: every
   other pixel of what ``run_inversion`` returns, since it face-pools the last render to 256 px too); and
   ``f32_error``: the largest absolute difference of the same run in float32 from the float64 one, per output.
"""

import gzip
import importlib
import json
import math
import sys
import types
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

HERE = Path(__file__).resolve().parent
OWN = ("models", "options", "configs", "utils")
README_OPTS = [  # the README's training command for the faces domain
    "--dataset_type=ffhq_hypernet",
    "--encoder_type=SharedWeightsHyperNetResNet",
    "--n_iters_per_batch=5",
    "--output_size=1024",
    "--load_w_encoder",
    "--layers_to_tune=0,2,3,5,6,8,9,11,12,14,15,17,18,20,21,23,24",
]
SMALL = dict(
    size=128, style_dim=16, n_mlp=2, channels={4: 8, 8: 8, 16: 8, 32: 8, 64: 8, 128: 4},
    trunk=(8, 12, 16, 24), code=16, inner_shared=8, inner=12,
    layers_to_tune="0,1,2,3,5,6,7,8,9,11,12,14,15,16", iterations=3,
)  # fmt: skip
CHANNELS_SRC = """        self.channels = {
            4: 512,
            8: 512,
            16: 512,
            32: 512,
            64: 256 * channel_multiplier,
            128: 128 * channel_multiplier,
            256: 64 * channel_multiplier,
            512: 32 * channel_multiplier,
            1024: 16 * channel_multiplier,
        }"""


def edits(small: bool) -> dict:
    """module -> [(old, new, count)]: the source substitutions (the ``.cuda()`` ones always)."""
    out = {"models.hypernetworks.shared_weights_hypernet": [(".cuda()", "", 4)]}
    if not small:
        return out
    s = SMALL
    out["models.stylegan2.model"] = [(CHANNELS_SRC, f"        self.channels = {s['channels']}", 1)]
    out["models.hypernetworks.refinement_blocks"] = [("self.out_c = 512", f"self.out_c = {s['code']}", 3)]
    out["models.hypernetworks.hypernetwork"] = [
        ("nn.Conv2d(opts.input_nc, 64,", f"nn.Conv2d(opts.input_nc, {s['trunk'][0]},", 2),
        ("BatchNorm2d(64)", f"BatchNorm2d({s['trunk'][0]})", 2),
        ("PReLU(64)", f"PReLU({s['trunk'][0]})", 2),
        (
            "SharedWeightsHypernet(in_size=512, out_size=512, mode=None)",
            f"SharedWeightsHypernet(z_dim={s['code']}, in_size={s['channels'][4]}, out_size={s['channels'][4]}, "
            "mode=None)",
            2,
        ),
        ("n_channels=512, inner_c=128", f"n_channels={s['trunk'][-1]}, inner_c={s['inner_shared']}", 2),
        ("n_channels=512, inner_c=256", f"n_channels={s['trunk'][-1]}, inner_c={s['inner']}", 2),
    ]
    return out


# ---- the CUDA ops in plain PyTorch ---------------------------------------------------------------------------


def fused_leaky_relu(input, bias, negative_slope=0.2, scale=2**0.5):
    shape = [1, -1] + [1] * (input.ndim - 2)
    return F.leaky_relu(input + bias.view(shape), negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel, negative_slope=0.2, scale=2**0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, input):
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)


def upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
    n, c, h, w = input.shape
    x = input.reshape(n * c, 1, h, w)
    if up > 1:  # zero insertion
        z = x.new_zeros(n * c, 1, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    x = F.conv2d(x, torch.flip(kernel, [0, 1])[None, None].to(x))
    x = x[:, :, ::down, ::down]
    return x.reshape(n, c, x.shape[2], x.shape[3])


# ---- importing the checkout ----------------------------------------------------------------------------------


def use_repo(root: Path, small: bool) -> None:
    """Import the checkout afresh, with the op stand-ins and (``small``) the reduced sources."""
    for name in [n for n in sys.modules if n.split(".")[0] in OWN]:
        del sys.modules[name]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for sub in ("models.stylegan2.op", "models.stylegan2.op.fused_act", "models.stylegan2.op.upfirdn2d"):
        stub = types.ModuleType(sub)
        stub.__path__ = []
        stub.FusedLeakyReLU, stub.fused_leaky_relu, stub.upfirdn2d = FusedLeakyReLU, fused_leaky_relu, upfirdn2d
        sys.modules[sub] = stub
    for module, subs in edits(small).items():  # dependencies first: the dict's order
        path = root / (module.replace(".", "/") + ".py")
        src = path.read_text()
        for old, new, count in subs:
            if src.count(old) != count:
                raise SystemExit(f"{path}: {old!r} found {src.count(old)} times, expected {count}; another commit?")
            src = src.replace(old, new)
        parent, _, leaf = module.rpartition(".")
        importlib.import_module(parent)
        mod = types.ModuleType(module)
        mod.__file__ = str(path)
        sys.modules[module] = mod
        setattr(sys.modules[parent], leaf, mod)
        exec(compile(src, str(path), "exec"), mod.__dict__)
    if small:
        rb = importlib.import_module("models.hypernetworks.refinement_blocks")
        rb.PARAMETERS = small_parameters()
    hn = importlib.import_module("models.hypernetworks.hypernetwork")
    hn.resnet34 = small_resnet34 if small else (lambda pretrained=True: torchvision.models.resnet34(weights=None))


def small_parameters() -> dict:
    """The official ``PARAMETERS`` table ({layer index: [kernel, in, out]}) for the reduced generator."""
    ch, table = SMALL["channels"], {0: [3, 8, 8], 1: [1, 8, 3]}
    res = 8
    while res <= SMALL["size"]:
        i = 2 + 3 * (int(math.log2(res)) - 3)
        table[i] = [3, ch[res // 2], ch[res]]
        table[i + 1] = [3, ch[res], ch[res]]
        table[i + 2] = [1, ch[res], 3]
        res *= 2
    return table


def small_resnet34(pretrained=True):
    """resnet34's layer1..4 (3/4/6/3 BasicBlocks, 1x1-conv + BN downsample where the shape changes) at reduced
    widths."""
    net, inplanes = SimpleNamespace(), SMALL["trunk"][0]
    for i, (planes, count) in enumerate(zip(SMALL["trunk"], (3, 4, 6, 3))):
        blocks = []
        for j in range(count):
            stride = 2 if i > 0 and j == 0 else 1
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            blocks.append(BasicBlock(inplanes, planes, stride, down))
            inplanes = planes
        setattr(net, f"layer{i + 1}", nn.Sequential(*blocks))
    return net


def trainer_opts(argv) -> Namespace:
    # train_options reads model_paths["e4e_w_encoder"], which paths_config (at this commit) names 'faces_w_encoder'
    paths = importlib.import_module("configs.paths_config").model_paths
    paths.setdefault("e4e_w_encoder", paths["faces_w_encoder"])
    opts = importlib.import_module("options.train_options").TrainOptions().parser.parse_args(list(argv))
    opts.device = "cuda:0"  # the coach sets it before saving
    return opts


def plain(opts) -> dict:
    return {k: v for k, v in vars(opts).items() if v is None or isinstance(v, (bool, int, float, str, list))}


def n_outputs(size: int) -> int:
    return (int(math.log2(size)) - 2) * 3 + 2  # HyperStyle.set_hypernet's table (26 / 23 / 20)


def commit(root: Path) -> str:
    return (root / "COMMIT").read_text().strip() if (root / "COMMIT").exists() else "unknown"


# ---- 1. the full-size layouts --------------------------------------------------------------------------------


def layouts(root: Path) -> dict:
    use_repo(root, small=False)
    opts = trainer_opts(README_OPTS)
    opts.n_hypernet_outputs = n_outputs(opts.output_size)
    hn = importlib.import_module("models.hypernetworks.hypernetwork")
    model = importlib.import_module("models.stylegan2.model")
    w_encoder = importlib.import_module("models.encoders.w_encoder")
    with torch.device("meta"):
        hypernet = hn.SharedWeightsHyperNetResNet(opts)
        decoder = model.Generator(opts.output_size, 512, 8, channel_multiplier=2)
        encoder = w_encoder.WEncoder(50, "ir_se", opts)
        w_decoder = model.Generator(opts.output_size, 512, 8)  # pSp's decoder (channel_multiplier 2 by default)
    shapes = lambda prefix, m: {f"{prefix}.{k}": list(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    w_opts = dict(plain(opts), encoder_type="WEncoder", input_nc=3, dataset_type="ffhq_encode")
    return {
        "commit": commit(root),
        "hyperstyle_ffhq": {
            "state_dict": {**shapes("hypernet", hypernet), **shapes("decoder", decoder)},
            "opts": plain(opts),
            "latent_avg": [18, 512],
        },
        "faces_w_encoder": {
            "state_dict": {**shapes("encoder", encoder), **shapes("decoder", w_decoder)},
            "opts": w_opts,
            "latent_avg": [512],
        },
    }


# ---- 2./3. the reduced model and its run ---------------------------------------------------------------------


class GivenCodes(nn.Module):
    """Stands in for the W encoder: returns ``codes - latent_avg`` (the model adds ``latent_avg`` back)."""

    def __init__(self, offsets: torch.Tensor):
        super().__init__()
        self.register_buffer("offsets", offsets)

    def forward(self, x):
        return self.offsets.to(x.dtype)


def small_model(root: Path):
    use_repo(root, small=True)
    s = SMALL
    opts = trainer_opts(
        [
            "--encoder_type=SharedWeightsHyperNetResNet",
            f"--output_size={s['size']}",
            "--load_w_encoder",
            f"--layers_to_tune={s['layers_to_tune']}",
            f"--n_iters_per_batch={s['iterations']}",
            "--dataset_type=ffhq_encode",
        ]
    )
    opts.n_hypernet_outputs = n_outputs(s["size"])
    hyperstyle = importlib.import_module("models.hyperstyle")
    model = importlib.import_module("models.stylegan2.model")
    hn = importlib.import_module("models.hypernetworks.hypernetwork")
    torch.manual_seed(0)
    # HyperStyle.__init__ minus set_hypernet's size table (1024/512/256 only) and load_weights (files)
    net = hyperstyle.HyperStyle.__new__(hyperstyle.HyperStyle)
    nn.Module.__init__(net)
    net.set_opts(opts)
    net.n_styles = int(math.log2(s["size"])) * 2 - 2
    net.hypernet = hn.SharedWeightsHyperNetResNet(opts=opts)
    net.decoder = model.Generator(s["size"], s["style_dim"], s["n_mlp"], channel_multiplier=2)
    net.face_pool = nn.AdaptiveAvgPool2d((256, 256))
    randomise(net)
    with torch.no_grad():
        ws = net.decoder.style(torch.randn(4096, s["style_dim"]))
        net.latent_avg = ws.mean(0).half().float().repeat(net.n_styles, 1)
    return net, opts


def randomise(net) -> None:
    """Seeded weights at scales that give deltas of a few tenths, rounded to float16 (stored as such)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.is_floating_point():
                continue
            r = torch.randn(t.shape, generator=g)
            leaf = name.rsplit(".", 1)[-1]
            if name.startswith("decoder."):
                value = t if "kernel" in name else r  # rosinality's own init is N(0, 1) (biases 0: made nonzero)
                if leaf == "bias":
                    value = 0.1 * r + (1.0 if ".modulation." in name else 0.0)
                elif name.endswith("noise.weight"):  # noise strength (0 at rosinality's init)
                    value = 0.1 * r
            elif leaf == "running_mean":
                value = 0.1 * r
            elif leaf == "running_var":
                value = 1 + 0.2 * r.abs()
            elif t.ndim == 1 and "bn" in name or ".downsample.1." in name:
                value = (1.0 + 0.1 * r) if leaf == "weight" else 0.1 * r
            elif "relu" in name and t.ndim == 1:  # PReLU slope
                value = 0.25 + 0.05 * r
            elif leaf in ("w1", "w2"):  # the shared hypernet: input width as fan-in
                value = r / math.sqrt(t.shape[0]) * (0.006 if leaf == "w1" else 1.0)
            elif leaf in ("b1", "b2") or leaf == "bias":
                value = 0.02 * r
            elif name.endswith("linear.weight"):  # EqualLinear: unit variance, scaled at run time
                value = r
            else:
                value = r * math.sqrt(2 / max(1, t[0].numel()))
                if ".output." in name:  # the non-shared blocks' last conv: deltas of a few tenths
                    value = value * 0.005
            t.copy_(value.half().float())


def run(net, opts, x256, codes, dtype):
    utils = importlib.import_module("utils.inference_utils")
    net = net.to(dtype).eval()
    net.w_encoder = GivenCodes((codes - net.latent_avg[0]).to(dtype))
    net.latent_avg = net.latent_avg.to(dtype)
    run_opts = Namespace(**vars(opts), resize_outputs=False)
    with torch.no_grad():
        first = net.hypernet(
            torch.cat(
                [x256, net.face_pool(net.decoder([codes.to(dtype)], input_is_latent=True, randomize_noise=False)[0])], 1
            ).to(dtype)
        )
        images, latent, deltas, used_codes = utils.run_inversion(x256.to(dtype), net, run_opts)
    keep = lambda ds: {i: d for i, d in enumerate(ds) if d is not None}  # noqa: E731
    # run_inversion face-pools every iteration's render, the last one too: 128 -> 256 repeats each pixel 2x2
    assert torch.equal(images, net.face_pool(images[:, :, ::2, ::2]))
    return {"deltas_1": keep(first), "deltas": keep(deltas), "images": images[:, :, ::2, ::2], "codes": used_codes}


def main(root: Path) -> None:
    layout = layouts(root)
    with gzip.open(HERE / "hyperstyle_official_layouts.json.gz", "wt") as f:
        json.dump(layout, f)
    net, opts = small_model(root)
    n_styles = net.n_styles
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        w = net.decoder.style(torch.randn(4, SMALL["style_dim"], generator=g)).half().float()
        codes = w[:2, None].repeat(1, n_styles, 1)  # the W start: one w per image
        target = net.decoder([w[2:, None].repeat(1, n_styles, 1)], input_is_latent=True, randomize_noise=False)[0]
        x = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(-1, 1).half().float()
        x256 = net.face_pool(x)  # what the model reads: its face_pool of the 128 px target
    out64 = run(net, opts, x256.double(), codes.double(), torch.float64)
    out32 = run(net, opts, x256, codes, torch.float32)
    error = {
        "deltas_1": max((out32["deltas_1"][i] - out64["deltas_1"][i]).abs().max().item() for i in out64["deltas_1"]),
        "deltas": max((out32["deltas"][i] - out64["deltas"][i]).abs().max().item() for i in out64["deltas"]),
        "images": (out32["images"] - out64["images"]).abs().max().item(),
    }
    net = net.float()
    state = {k: v for k, v in net.state_dict().items() if "w_encoder" not in k}
    ckpt = {
        "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in state.items()},
        "opts": plain(opts),
        "latent_avg": net.latent_avg.float().half(),
        "global_step": 0,
        "best_val_loss": None,
    }
    torch.save(ckpt, HERE / "hyperstyle_small.pt")
    io = {
        "x": x.half(),
        "codes": codes.half(),
        "iterations": SMALL["iterations"],
        "deltas_1": {i: d.float() for i, d in out64["deltas_1"].items()},
        "deltas": {i: d.float() for i, d in out64["deltas"].items()},
        "images": out64["images"].float(),
        "f32_error": error,
        "commit": commit(root),
    }
    torch.save(io, HERE / "hyperstyle_io.pt")
    sizes = {i: round(d.abs().mean().item(), 3) for i, d in out64["deltas"].items()}
    print("mean |delta| per layer:", sizes, "\nfloat32 error:", error)
    print(
        "target vs W start vs final MSE:",
        ((x - net.decoder([codes], input_is_latent=True, randomize_noise=False)[0]) ** 2).mean().item(),
        ((x - out64["images"].float()) ** 2).mean().item(),
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
