"""Builds the checkpoint fixtures of this folder with the reference repositories' own code (see README.md).

Run outside the test suite, once per codebase, with the repository checked out beside this script
(HERE / "NVlabs+stylegan2-ada-pytorch", "NVlabs+stylegan3", "rosinality+stylegan2-pytorch", ...,
"yuval-alaluf+restyle-encoder"):

    python make_checkpoint_fixtures.py ada OUT_DIR   # NVlabs/stylegan2-ada-pytorch d72cc7d
    python make_checkpoint_fixtures.py sg3 OUT_DIR   # NVlabs/stylegan3 c233a91
    python make_checkpoint_fixtures.py ros OUT_DIR   # rosinality/stylegan2-pytorch bef283a
    python make_checkpoint_fixtures.py psp OUT_DIR   # eladrich/pixel2style2pixel 5cfff38
    python make_checkpoint_fixtures.py e4e OUT_DIR   # omertov/encoder4editing 99ea505
    python make_checkpoint_fixtures.py restyle OUT_DIR   # yuval-alaluf/restyle-encoder 5e80276

Then reference_outputs_16.pt = the refs_*.pt merged, with EasyDicts as plain dicts.
"""

import copy
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
RES, ZDIM = 16, 32
torch.set_num_threads(1)


def stub(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


class _Decorators:  # click: every decorator factory returns the identity
    def __getattr__(self, name):
        if name in ("ClickException", "BadParameter"):
            return Exception
        if name == "ParamType":
            return object
        return lambda *a, **k: lambda f: f


sys.modules["click"] = _Decorators()
stub("psutil")
from packaging.version import parse as _parse_version  # noqa: E402

stub("pkg_resources", parse_version=_parse_version)
stub("lmdb")


def image_folder(folder: Path, n=8, channels=3):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (RES, RES, channels), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return str(folder)


def nvidia_snapshot(G_kwargs, D_kwargs, common, path, *, seed, raise_bias=True, summary_pass=True, nan_w_avg=False):
    """Construct, as training_loop.py does, then snapshot and pickle.dump exactly as it does."""
    import dnnlib
    from torch_utils import misc

    torch.manual_seed(seed)
    G = dnnlib.util.construct_class_by_name(**G_kwargs, **common).train().requires_grad_(False)
    D = dnnlib.util.construct_class_by_name(**D_kwargs, **common).train().requires_grad_(False)
    if raise_bias:  # make conv_clamp (256) active somewhere: one layer's outputs exceed it
        G.synthesis.b8.conv0.bias.add_(400)
        D.b8.conv0.bias.add_(400)
    # w_avg as training leaves it: mapping passes in training mode (they update it), G_ema copies G's buffers
    kw = {"update_emas": True} if "update_emas" in G.mapping.forward.__code__.co_varnames else {}
    for _ in range(4):
        G.mapping(torch.randn(8, G.z_dim), torch.zeros(8, G.c_dim), **kw)
    G_ema = copy.deepcopy(G).eval()
    if summary_pass:  # training_loop.py's summary pass (rank 0), on torch.empty inputs, in training mode
        z = torch.empty([4, G.z_dim])
        c = torch.empty([4, G.c_dim])
        img = misc.print_module_summary(G, [z, c])
        misc.print_module_summary(D, [img, c])
    if nan_w_avg:  # what that summary pass leaves in w_avg on some CPUs (torch.empty inputs): NaN
        G.mapping.w_avg.fill_(float("nan"))
        G_ema.mapping.w_avg.fill_(float("nan"))
    snapshot = dict(
        G=G,
        D=D,
        G_ema=G_ema,
        augment_pipe=None,
        training_set_kwargs=dict(
            class_name="training.dataset.ImageFolderDataset",
            path="tiny",
            use_labels=False,
            max_size=8,
            xflip=False,
            resolution=RES,
        ),
    )
    for key, value in snapshot.items():
        if isinstance(value, torch.nn.Module):
            snapshot[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
    with open(path, "wb") as f:
        pickle.dump(snapshot, f)
    return snapshot


def reference_outputs(snap, *, sg3=False):
    """The repository's own outputs (float32: force_fp32) for fixed z and images."""
    G, D = snap["G_ema"], snap["D"]
    g = torch.Generator().manual_seed(123)
    z = torch.randn(2, G.z_dim, generator=g)
    c = torch.zeros(2, G.c_dim)
    reals = torch.rand(8, G.img_channels, RES, RES, generator=g) * 2 - 1
    out = {"z": z, "reals": reals}
    with torch.no_grad():
        out["ws"] = G.mapping(z, c)
        out["img_const"] = G(z, c, noise_mode="const", force_fp32=True)
        if torch.isfinite(G.mapping.w_avg).all():
            out["img_trunc"] = G(z, c, truncation_psi=0.7, noise_mode="const", force_fp32=True)
        out["img_none"] = G.synthesis(out["ws"], noise_mode="none", force_fp32=True)
        if not sg3:
            out["d_logits"] = D(reals, torch.zeros(8, 0), force_fp32=True)
    out["w_avg"] = G.mapping.w_avg.clone()
    return out


def ada(out: Path):
    sys.path.insert(0, str(HERE / "NVlabs+stylegan2-ada-pytorch"))
    import train  # its setup_training_loop_kwargs: the real --cfg settings

    data = image_folder(out / "_data")
    refs = {}
    for cfg in ("auto", "paper256", "stylegan2"):
        desc, args = train.setup_training_loop_kwargs(gpus=1, data=data, cfg=cfg, metrics=[])
        G_kwargs, D_kwargs = args.G_kwargs, args.D_kwargs
        # smaller: channel_base / 64, channel_max / 32, z = w = 32; everything else as --cfg sets it
        for kw in (G_kwargs.synthesis_kwargs, D_kwargs):
            kw.channel_base //= 64
            kw.channel_max //= 32
        G_kwargs.z_dim = G_kwargs.w_dim = ZDIM
        common = dict(c_dim=0, img_resolution=RES, img_channels=3)
        name = f"ada_{cfg}_{RES}.pkl"
        snap = nvidia_snapshot(G_kwargs, D_kwargs, common, out / name, seed=1, nan_w_avg=cfg == "paper256")
        refs[name] = reference_outputs(snap)
        refs[name]["G_kwargs"], refs[name]["D_kwargs"] = dict(G_kwargs), dict(D_kwargs)
        print(
            name,
            desc,
            {k: v.shape for k, v in refs[name].items() if torch.is_tensor(v)},
            "w_avg finite:",
            torch.isfinite(snap["G"].mapping.w_avg).all().item(),
        )
    # conditional (c_dim > 0): only to check the refusal
    _, args = train.setup_training_loop_kwargs(gpus=1, data=data, cfg="auto", metrics=[])
    args.G_kwargs.synthesis_kwargs.channel_base //= 64
    args.G_kwargs.synthesis_kwargs.channel_max //= 32
    args.D_kwargs.channel_base //= 64
    args.D_kwargs.channel_max //= 32
    args.G_kwargs.z_dim = args.G_kwargs.w_dim = ZDIM
    nvidia_snapshot(
        args.G_kwargs,
        args.D_kwargs,
        dict(c_dim=4, img_resolution=RES, img_channels=3),
        out / f"ada_auto_cond_{RES}.pkl",
        seed=2,
        raise_bias=False,
        summary_pass=False,
    )
    return refs


def sg3(out: Path):
    sys.path.insert(0, str(HERE / "NVlabs+stylegan3"))
    import train

    data = image_folder(out / "_data")
    captured = {}
    train.launch_training = lambda c, desc, outdir, dry_run: captured.update(c=c, desc=desc)
    refs = {}
    for cfg in ("stylegan2", "stylegan3-t", "stylegan3-r"):
        # train.py's defaults for the options it requires or reads (click would fill them in)
        train.main(
            outdir=str(out / "_runs"),
            cfg=cfg,
            data=data,
            gpus=1,
            batch=4,
            gamma=1.0,
            cond=False,
            mirror=False,
            aug="noaug",
            resume=None,
            freezed=0,
            p=0.2,
            target=0.6,
            batch_gpu=None,
            cbase=32768,
            cmax=512,
            glr=None,
            dlr=0.002,
            map_depth=None,
            mbstd_group=4,
            desc=None,
            metrics=[],
            kimg=25000,
            tick=4,
            snap=50,
            seed=0,
            fp32=False,
            nobench=False,
            workers=3,
            dry_run=True,
        )
        c = captured["c"]
        # smaller: channel_base / 64, channel_max / 32, z = w = 32
        shrink = 4 if cfg != "stylegan2" else 1  # the StyleGAN3 files only have to be refused: smaller still
        for kw in (c.G_kwargs, c.D_kwargs):
            kw.channel_base //= 64 * shrink
            kw.channel_max //= 32 * shrink
        c.G_kwargs.z_dim = c.G_kwargs.w_dim = ZDIM
        common = dict(c_dim=0, img_resolution=RES, img_channels=3)
        name = f"sg3_{cfg}_{RES}.pkl"
        is_sg3 = cfg != "stylegan2"
        snap = nvidia_snapshot(
            c.G_kwargs, c.D_kwargs, common, out / name, seed=3, raise_bias=not is_sg3, summary_pass=False
        )
        if not is_sg3:
            refs[name] = reference_outputs(snap)
            refs[name]["G_kwargs"], refs[name]["D_kwargs"] = dict(c.G_kwargs), dict(c.D_kwargs)
        print(name, captured["desc"], dict(c.G_kwargs))
    return refs


def ros(out: Path):
    """train.py's own train() for one iteration on the CPU; it saves checkpoint/000000.pt at i = 0."""
    src = HERE / "rosinality+stylegan2-pytorch"
    work = out / "_ros"
    work.mkdir(parents=True, exist_ok=True)
    # the one change (as in shared/fixtures/sg2): a small channel table in model.py
    model = (src / "model.py").read_text()
    table = "{\n            4: 512,\n            8: 512,\n            16: 512,\n"
    assert model.count(table) == 2
    model = model.replace(table, "{\n            4: 16,\n            8: 16,\n            16: 8,\n")
    (work / "model.py").write_text(model)
    import torch.utils.cpp_extension as cpp

    cpp.load = lambda *a, **k: types.SimpleNamespace()  # op/ would compile CUDA kernels at import; CPU paths used
    sys.path[:0] = [str(work), str(src)]
    os.chdir(work)
    (work / "checkpoint").mkdir(exist_ok=True)
    (work / "sample").mkdir(exist_ok=True)
    import argparse

    import train
    from model import Discriminator, Generator
    from torch import optim

    # the Namespace train.py's parser makes with its defaults (train.py path --size 16 --batch 4 --iter 1)
    args = argparse.Namespace(
        path="tiny.lmdb",
        arch="stylegan2",
        iter=1,
        batch=4,
        n_sample=4,
        size=RES,
        r1=10.0,
        path_regularize=2.0,
        path_batch_shrink=2,
        d_reg_every=16,
        g_reg_every=4,
        mixing=0.9,
        ckpt=None,
        lr=0.002,
        channel_multiplier=2,
        wandb=False,
        local_rank=0,
        augment=False,
        augment_p=0.0,
        ada_target=0.6,
        ada_length=500000,
        ada_every=256,
    )
    args.distributed = False
    args.latent, args.n_mlp, args.start_iter = ZDIM, 8, 0  # train.py: 512, 8, 0
    torch.manual_seed(4)
    generator = Generator(args.size, args.latent, args.n_mlp, channel_multiplier=args.channel_multiplier)
    discriminator = Discriminator(args.size, channel_multiplier=args.channel_multiplier)
    g_ema = Generator(args.size, args.latent, args.n_mlp, channel_multiplier=args.channel_multiplier)
    g_ema.eval()
    train.accumulate(g_ema, generator, 0)
    g_reg_ratio = args.g_reg_every / (args.g_reg_every + 1)
    d_reg_ratio = args.d_reg_every / (args.d_reg_every + 1)
    g_optim = optim.Adam(generator.parameters(), lr=args.lr * g_reg_ratio, betas=(0**g_reg_ratio, 0.99**g_reg_ratio))
    d_optim = optim.Adam(
        discriminator.parameters(), lr=args.lr * d_reg_ratio, betas=(0**d_reg_ratio, 0.99**d_reg_ratio)
    )
    reals = torch.rand(8, 3, RES, RES, generator=torch.Generator().manual_seed(5)) * 2 - 1
    loader = torch.utils.data.DataLoader(list(reals), batch_size=args.batch, drop_last=True)
    train.utils = types.SimpleNamespace(save_image=lambda *a, **k: None)  # the sample grid (old torchvision API)
    train.train(args, loader, generator, discriminator, g_optim, d_optim, g_ema, "cpu")
    ckpt_path = work / "checkpoint" / "000000.pt"
    name = f"ros_train_{RES}.pt"
    (out / name).write_bytes(ckpt_path.read_bytes())
    ckpt = torch.load(out / name, weights_only=False)
    g_ema.load_state_dict(ckpt["g_ema"])
    discriminator.load_state_dict(ckpt["d"])
    g = torch.Generator().manual_seed(123)
    z = torch.randn(2, args.latent, generator=g)
    d_in = torch.rand(8, 3, RES, RES, generator=g) * 2 - 1
    with torch.no_grad():
        img, _ = g_ema([z], randomize_noise=False)
        img_trunc, _ = g_ema([z], randomize_noise=False, truncation=0.7, truncation_latent=g_ema.mean_latent(4096))
        logits = discriminator(d_in)
    return {name: {"z": z, "img_const": img, "reals": d_in, "d_logits": logits, "keys": sorted(ckpt)}}


def _psp_op_standin():
    """Pure-torch stand-ins for pSp's models/stylegan2/op (its CUDA-only fused_act and upfirdn2d), registered
    as that module so pSp's model.py imports them instead of compiling CUDA kernels. Same semantics:
    leaky ReLU(x + bias) * sqrt(2) with the bias on dim 1, and upsample (zero insertion) / pad (negative crops) /
    FIR filter / downsample per channel."""
    import torch.nn.functional as F

    def fused_leaky_relu(input, bias, negative_slope=0.2, scale=2**0.5):
        shape = [1, -1] + [1] * (input.ndim - 2)
        return F.leaky_relu(input + bias.view(shape), negative_slope) * scale

    class FusedLeakyReLU(torch.nn.Module):
        def __init__(self, channel, negative_slope=0.2, scale=2**0.5):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(channel))
            self.negative_slope, self.scale = negative_slope, scale

        def forward(self, input):
            return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)

    def upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
        n, c, h, w = input.shape
        x = input.reshape(n * c, 1, h, w)
        if up > 1:  # zero insertion: each sample followed by up - 1 zeros, in both directions
            y = x.new_zeros(n * c, 1, h, up, w, up)
            y[:, :, :, 0, :, 0] = x
            x = y.view(n * c, 1, h * up, w * up)
        p0, p1 = pad
        x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
        k = torch.flip(kernel, [0, 1]).view(1, 1, *kernel.shape).to(x.dtype)  # a true convolution
        x = F.conv2d(x, k)[:, :, ::down, ::down]
        return x.reshape(n, c, x.shape[2], x.shape[3])

    stub("models.stylegan2.op", FusedLeakyReLU=FusedLeakyReLU, fused_leaky_relu=fused_leaky_relu, upfirdn2d=upfirdn2d)


def psp(out: Path):
    return _psp_family(out, "eladrich+pixel2style2pixel", "psp", "--output_size")


def e4e(out: Path):
    return _psp_family(out, "omertov+encoder4editing", "e4e", "--stylegan_size")


def restyle(out: Path):
    # ReStyle's pSp variant: models/psp.py imports both encoder modules and utils/model_utils.py; its encoder
    # reads opts.input_nc (6: image + current reconstruction) and its coach is training/coach_restyle_psp.py
    return _psp_family(
        out,
        "yuval-alaluf+restyle-encoder",
        "restyle",
        "--output_size",
        extra_files=(
            "models/encoders/fpn_encoders.py",
            "models/encoders/restyle_psp_encoders.py",
            "models/encoders/map2style.py",
            "utils/__init__.py",
            "utils/model_utils.py",
        ),
        coach_file="training/coach_restyle_psp.py",
    )


def _psp_family(
    out: Path,
    repo: str,
    tag: str,
    size_option: str,
    extra_files=("models/encoders/psp_encoders.py",),
    coach_file="training/coach.py",
):
    """pSp's (or e4e's, ReStyle's) own construction (models/psp.py, starting from a StyleGAN checkpoint as its
    training does) and its coach's save dict (``coach_file``'s ``__get_save_dict``: state_dict, opts, latent_avg),
    small, on the CPU."""
    import ast

    src = HERE / repo
    work = out / f"_{tag}"
    # a copy of the models/configs/options packages, with the one change: a small channel table in model.py
    for rel in (
        "models/__init__.py",
        "models/psp.py",
        "models/encoders/__init__.py",
        "models/encoders/helpers.py",
        "models/encoders/model_irse.py",
        "models/stylegan2/__init__.py",
        "models/stylegan2/model.py",
        "configs/__init__.py",
        "configs/paths_config.py",
        "options/__init__.py",
        "options/train_options.py",
    ) + tuple(extra_files):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text((src / rel).read_text())
    model = (work / "models/stylegan2/model.py").read_text()
    table = "{\n            4: 512,\n            8: 512,\n            16: 512,\n"
    assert model.count(table) == 2
    model = model.replace(table, "{\n            4: 16,\n            8: 16,\n            16: 8,\n")
    (work / "models/stylegan2/model.py").write_text(model)
    sys.path.insert(0, str(work))
    stub("matplotlib", use=lambda *a, **k: None)
    import models.stylegan2  # noqa: F401 - the parent package, before its op stand-in

    _psp_op_standin()
    import models.psp as psp_module
    from models.stylegan2.model import Generator
    from options.train_options import TrainOptions

    # pSp builds Generator(output_size, 512, 8), e4e (stylegan_size, 512, 8, channel_multiplier=2); smaller:
    # style_dim 32 (n_mlp 8, channel_multiplier 2 as they use)
    psp_module.Generator = lambda size, style_dim, n_mlp, **kw: Generator(size, ZDIM, n_mlp, **kw)
    n_styles = 2 * int(np.log2(RES)) - 2

    class TinyEncoder(torch.nn.Module):  # stands in for the IR-SE50 encoder (not the part tested)
        def __init__(self, n_styles, input_nc=None):
            super().__init__()
            self.n_styles = self.style_count = n_styles  # style_count: e4e's name
            if input_nc is not None:  # ReStyle widens the IR-SE50 input conv `input_layer.0` to input_nc channels
                self.input_layer = torch.nn.Sequential(torch.nn.Conv2d(input_nc, 3, 1, bias=False))
            self.linear = torch.nn.Linear(3 * 4 * 4, n_styles * ZDIM)

        def forward(self, x):
            if hasattr(self, "input_layer"):
                x = self.input_layer(x)
            x = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
            return self.linear(x).view(-1, self.n_styles, ZDIM)

    psp_module.pSp.set_encoder = lambda self: TinyEncoder(n_styles, self.opts.input_nc if tag == "restyle" else None)
    # the pretrained StyleGAN pSp starts from (a rosinality checkpoint: g_ema + latent_avg), random weights
    torch.manual_seed(6)
    g_ema = Generator(RES, ZDIM, 8).eval()
    with torch.no_grad():
        for name, p in g_ema.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.2)  # non-zero biases, so that they are checked
        latent_avg = g_ema.mean_latent(4096)[0]
    torch.save({"g_ema": g_ema.state_dict(), "latent_avg": latent_avg}, work / "stylegan.pt")
    torch.save(TinyEncoder(n_styles, 3 if tag == "restyle" else None).state_dict(), work / "encoder.pt")  # RGB
    psp_module.model_paths["ir_se50"] = str(work / "encoder.pt")
    # train.py's options: its parser's defaults plus what pSp's training command line sets
    opts = TrainOptions().parser.parse_args(
        [
            "--exp_dir",
            str(work / "exp"),
            size_option,
            str(RES),
            "--start_from_latent_avg",
            "--stylegan_weights",
            str(work / "stylegan.pt"),
        ]
    )
    opts.device = "cpu"  # train.py leaves it to the coach ('cuda:0')
    net = psp_module.pSp(opts).eval()
    # the coach's own save-dict method, compiled from training/coach.py (importing coach.py needs its training
    # stack: tensorboard, the losses' weights, datasets)
    tree = ast.parse((src / coach_file).read_text())
    coach = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Coach")
    method = next(n for n in coach.body if isinstance(n, ast.FunctionDef) and n.name == "__get_save_dict")
    method.name = "get_save_dict"
    ns = {}
    exec(compile(ast.Module(body=[method], type_ignores=[]), str(src / coach_file), "exec"), ns)
    save_dict = ns["get_save_dict"](types.SimpleNamespace(net=net, opts=opts))
    name = f"{tag}_{RES}.pt"
    torch.save(save_dict, out / name)  # as the coach's checkpoint_me does
    g = torch.Generator().manual_seed(123)
    z = torch.randn(2, ZDIM, generator=g)
    codes = net.latent_avg + 0.5 * torch.randn(2, n_styles, ZDIM, generator=g)  # W+ codes
    with torch.no_grad():
        img_z, _ = net.decoder([z], randomize_noise=False)
        img_wplus, _ = net.decoder([codes], input_is_latent=True, randomize_noise=False)
    print(name, sorted(save_dict), (out / name).stat().st_size)
    return {
        name: {
            "z": z,
            "img_const": img_z,
            "ws": codes,
            "img_wplus": img_wplus,
            "latent_avg": save_dict["latent_avg"].clone(),
            "keys": sorted(save_dict),
        }
    }


if __name__ == "__main__":
    which, out = sys.argv[1], Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    refs = {"ada": ada, "sg3": sg3, "ros": ros, "psp": psp, "e4e": e4e, "restyle": restyle}[which](out)
    torch.save(refs, out / f"refs_{which}.pt")
