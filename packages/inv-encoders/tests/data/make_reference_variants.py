"""Run the official pSp, e4e, ReStyle and HyperInverter code to make this folder's ``encoder_types.json.gz`` and
``reference_variants.pt`` (run once, by hand, in the workspace's environment, which has torchvision):

    for r in psp:eladrich/pixel2style2pixel e4e:omertov/encoder4editing restyle:yuval-alaluf/restyle-encoder \\
             hyper:VinAIResearch/HyperInverter; do  # checkouts at the commits of README.md
        mkdir -p /tmp/ref/${r%%:*} && git -C CHECKOUT_OF_${r#*:} archive HEAD models options configs utils \\
            | tar -x -C /tmp/ref/${r%%:*}
        git -C CHECKOUT_OF_${r#*:} rev-parse HEAD > /tmp/ref/${r%%:*}/COMMIT  # recorded with the outputs
    done
    python make_reference_variants.py /tmp/ref/psp /tmp/ref/e4e /tmp/ref/restyle /tmp/ref/hyper

Nothing of the reference code is copied here; it is imported from the checkouts. Their CUDA-op modules
(``stylegan2/op``, never called by the encoders) and HyperInverter's StyleGAN2-ADA module are replaced by empty
stand-ins so that the modules import; ``resnet34(pretrained=True)`` is replaced by torchvision's own
``resnet34(weights=None)`` (nothing is downloaded) or, for the reduced runs, by the same ``BasicBlock`` layers at
reduced widths.

1. ``encoder_types.json.gz``: for every ``encoder_type`` that each repository's ``set_encoder`` accepts, that
   function itself is called (on a stand-in ``self`` with the trainer's default options) under
   ``torch.device("meta")`` at full size: the class it builds and the key names and shapes of its state dict,
   which are the ``encoder.*`` keys its trainer saves; plus each trainer's default options (``vars`` of its
   parsed ``TrainOptions``, which the trainers save as ``opts``).
2. ``reference_variants.pt``: the encoders that sg2-core's fixtures do not cover, built by their ``set_encoder``
   at the reduced "config R" widths of ``shared/fixtures/encoders`` (trunk 16/32/48/64, pyramid 64, style width 32,
   10 styles: output size 64) by substituting those integer literals in the module source before it runs, with
   the weights of ``conftest.formula_state`` (no stored weights), run in float32 and float64 on sample 0 of
   ``inputs.pt`` (6 channels: ``x256`` and ``y256``): their key names and shapes and their outputs.
"""

import gzip
import importlib
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from conftest import formula_state  # noqa: E402

from sg2_core.testing.fixture_packs import unsqueeze  # noqa: E402

OWN = ("models", "options", "configs", "utils")
USED: set = set()  # the checkouts put on sys.path so far
SMALL = dict(trunk=(16, 32, 48, 64), pyramid=64, style=32, output_size=64)


def use_repo(root: Path) -> None:
    """Import from ``root`` from now on (the four repositories share the package names)."""
    for name in [n for n in sys.modules if n.split(".")[0] in OWN]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p not in USED]
    USED.add(str(root))
    sys.path.insert(0, str(root))
    for op in root.glob("models/**/stylegan2/op"):
        name = ".".join(op.relative_to(root).parts)
        for sub in (name, f"{name}.fused_act", f"{name}.upfirdn2d"):
            stub = types.ModuleType(sub)
            stub.__path__ = []
            stub.FusedLeakyReLU, stub.fused_leaky_relu, stub.upfirdn2d = nn.Identity, None, None
            sys.modules[sub] = stub
    ada = types.ModuleType("models.stylegan2_ada")
    ada.Generator = None
    sys.modules["models.stylegan2_ada"] = ada


def small_resnet34(pretrained=True, widths=SMALL["trunk"]):
    """What the encoders take from torchvision's resnet34: layer1..4, here with torchvision's BasicBlock at
    reduced widths (resnet34's _make_layer: 3/4/6/3 blocks, a 1x1-conv + BN downsample where the shape changes)."""
    net, inplanes = SimpleNamespace(), widths[0]
    for i, (planes, count) in enumerate(zip(widths, (3, 4, 6, 3))):
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


def full_resnet34(pretrained=True):
    return torchvision.models.resnet34(weights=None)


def patch_resnet(resnet34):
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] == "models" and hasattr(mod, "resnet34"):
            mod.resnet34 = resnet34


def reduced(root: Path, module: str, edits: list[tuple[str, str]]) -> None:
    """Run ``module``'s source with integer literals substituted (each edit must apply) in its place."""
    path = root / (module.replace(".", "/") + ".py")
    src = path.read_text()
    for old, new in edits:
        if old not in src:
            raise SystemExit(f"{path}: {old!r} not found; the checkout is not the expected commit")
        src = src.replace(old, new)
    parent, _, leaf = module.rpartition(".")
    importlib.import_module(parent)
    mod = types.ModuleType(module)
    mod.__file__ = str(path)
    sys.modules[module] = mod
    setattr(sys.modules[parent], leaf, mod)
    exec(compile(src, str(path), "exec"), mod.__dict__)


def trainer_opts(module: str, cls: str, argv=()) -> SimpleNamespace:
    options = getattr(importlib.import_module(module), cls)()
    opts = options.parser.parse_args(list(argv))
    opts.device = "cuda:0"  # the coaches set it before saving
    return opts


def build(framework: str, cls: str, opts: SimpleNamespace, n_styles: int):
    """Their ``set_encoder`` on a stand-in ``self`` (what their model's __init__ has set by then)."""
    model = getattr(importlib.import_module(framework), cls)
    if hasattr(opts, "output_size"):
        opts.n_styles = n_styles  # pSp's and HyperInverter's __init__ store it in opts
    return model.set_encoder(SimpleNamespace(opts=opts, n_styles=n_styles))


def shapes_of(module: nn.Module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def plain(opts: SimpleNamespace) -> dict:
    return {k: v for k, v in vars(opts).items() if v is None or isinstance(v, (bool, int, float, str, list))}


# (repository, trainer options, model module and class whose set_encoder runs, its encoder types, argv)
FRAMEWORKS = [
    ("psp", ("options.train_options", "TrainOptions"), ("models.psp", "pSp"), [
        "GradualStyleEncoder", "BackboneEncoderUsingLastLayerIntoW", "BackboneEncoderUsingLastLayerIntoWPlus"]),
    ("e4e", ("options.train_options", "TrainOptions"), ("models.psp", "pSp"), [
        "GradualStyleEncoder", "Encoder4Editing", "SingleStyleCodeEncoder"]),
    ("restyle", ("options.train_options", "TrainOptions"), ("models.psp", "pSp"), [
        "GradualStyleEncoder", "ResNetGradualStyleEncoder", "BackboneEncoder", "ResNetBackboneEncoder"]),
    ("restyle", ("options.e4e_train_options", "e4eTrainOptions"), ("models.e4e", "e4e"), [
        "ProgressiveBackboneEncoder", "ResNetProgressiveBackboneEncoder"]),
    # HyperInverter's pSp (its phase-I W encoders; its ResNetGradualStyleEncoder names a class that
    # models/encoders/fpn_encoders.py does not define, so that branch cannot run) and its copies of e4e and ReStyle
    ("hyper", ("options.train_options", "TrainOptions"), ("models.psp.model", "pSp"), [
        "GradualStyleEncoder", "BackboneEncoderUsingLastLayerIntoW", "ResNetEncoderUsingLastLayerIntoW"]),
    ("hyper", None, ("models.e4e.psp", "pSp"), ["GradualStyleEncoder", "Encoder4Editing"]),
    ("hyper", None, ("models.restyle.psp", "pSp"), [
        "GradualStyleEncoder", "ResNetGradualStyleEncoder", "BackboneEncoder", "ResNetBackboneEncoder"]),
    ("hyper", None, ("models.restyle.e4e", "e4e"), ["ProgressiveBackboneEncoder", "ResNetProgressiveBackboneEncoder"]),
]  # fmt: skip


def commit(root: Path) -> str:
    """The commit the checkout was made from: ``git rev-parse HEAD > ROOT/COMMIT`` beside the archive's files."""
    return (root / "COMMIT").read_text().strip() if (root / "COMMIT").exists() else "unknown"


def layouts(roots: dict) -> dict:
    out = {"trainer_opts": {}, "types": []}
    for repo, options, (framework, cls), names in FRAMEWORKS:
        use_repo(roots[repo])
        patch_resnet(full_resnet34)
        if options is not None:
            opts = trainer_opts(*options)
            out["trainer_opts"][f"{repo}:{options[0]}"] = plain(opts)
        for name in names:
            base = trainer_opts(*options) if options is not None else SimpleNamespace(output_size=1024)
            base.encoder_type = name
            if not hasattr(base, "input_nc"):
                base.input_nc = 3
            if repo == "restyle" or framework.startswith("models.restyle"):
                base.input_nc = 6
            size = getattr(base, "output_size", None) or getattr(base, "stylegan_size", 1024)
            base.stylegan_size = getattr(base, "stylegan_size", size)
            importlib.import_module(framework)
            patch_resnet(full_resnet34)
            with torch.device("meta"):
                encoder = build(framework, cls, base, 2 * (size.bit_length() - 1) - 2)
            keys = shapes_of(encoder)
            out["types"].append(
                dict(
                    repo=repo,
                    set_encoder=f"{framework}.{cls}.set_encoder",
                    trainer=None if options is None else f"{repo}:{options[0]}",
                    encoder_type=name,
                    cls=type(encoder).__name__,
                    input_nc=base.input_nc,
                    keys=keys,
                    n_parameters=sum(p.numel() for p in encoder.parameters()),
                )
            )
            print(f"{repo:8s} {framework:20s} {name:40s} -> {type(encoder).__name__} ({len(keys)} keys)")
    return out


S = SMALL
IR_SE = [
    ("get_block(in_channel=64, depth=64, num_units=3)", "get_block(in_channel=16, depth=16, num_units=3)"),
    ("get_block(in_channel=64, depth=128, num_units=4)", "get_block(in_channel=16, depth=32, num_units=4)"),
    ("get_block(in_channel=128, depth=256, num_units=14)", "get_block(in_channel=32, depth=48, num_units=14)"),
    ("get_block(in_channel=256, depth=512, num_units=3)", "get_block(in_channel=48, depth=64, num_units=3)"),
]
RESNET_STEM = [("BatchNorm2d(64)", "BatchNorm2d(16)"), ("PReLU(64)", "PReLU(16)")]
STYLES = [("GradualStyleBlock(512, 512, ", "GradualStyleBlock(64, 32, ")]
RUNS = [
    # name, repo, trainer options, framework, edits {module: [(old, new)]}, encoder types run on the same weights
    ("restyle_ResNetGradualStyleEncoder", "restyle", ("options.train_options", "TrainOptions"), ("models.psp", "pSp"),
     {"models.encoders.fpn_encoders": [("nn.Conv2d(opts.input_nc, 64, kernel_size=7", "nn.Conv2d(opts.input_nc, 16, kernel_size=7"),
                                       *RESNET_STEM, *STYLES,
                                       ("nn.Conv2d(256, 512, kernel_size=1", "nn.Conv2d(48, 64, kernel_size=1"),
                                       ("nn.Conv2d(128, 512, kernel_size=1", "nn.Conv2d(32, 64, kernel_size=1")]},
     ["ResNetGradualStyleEncoder"]),
    ("restyle_ResNetBackboneEncoder", "restyle", ("options.train_options", "TrainOptions"), None,
     {"models.encoders.restyle_psp_encoders": [("nn.Conv2d(opts.input_nc, 64, kernel_size=7", "nn.Conv2d(opts.input_nc, 16, kernel_size=7"), *RESNET_STEM, *STYLES],
      "models.encoders.restyle_e4e_encoders": [("nn.Conv2d(opts.input_nc, 64, kernel_size=7", "nn.Conv2d(opts.input_nc, 16, kernel_size=7"), *RESNET_STEM, *STYLES]},
     ["ResNetBackboneEncoder", "ResNetProgressiveBackboneEncoder"]),
    ("hyper_ResNetEncoderUsingLastLayerIntoW", "hyper", ("options.train_options", "TrainOptions"), ("models.psp.model", "pSp"),
     {"models.encoders.fpn_encoders": [("nn.Conv2d(3, 64, kernel_size=7", "nn.Conv2d(3, 16, kernel_size=7"), *RESNET_STEM,
                                       ("self.linear = EqualLinear(512, 512, lr_mul=1)", "self.linear = EqualLinear(64, 32, lr_mul=1)"),
                                       ("x = x.view(-1, 512)", "x = x.view(-1, 64)")]},
     ["ResNetEncoderUsingLastLayerIntoW"]),
    ("psp_BackboneEncoderUsingLastLayerIntoWPlus", "psp", ("options.train_options", "TrainOptions"), ("models.psp", "pSp"),
     {"models.encoders.helpers": IR_SE,
      "models.encoders.psp_encoders": [("Conv2d(opts.input_nc, 64, (3, 3), 1, 1, bias=False)", "Conv2d(opts.input_nc, 16, (3, 3), 1, 1, bias=False)"),
                                       ("BatchNorm2d(64),", "BatchNorm2d(16),"), ("PReLU(64)", "PReLU(16)"),
                                       ("Sequential(BatchNorm2d(512),", "Sequential(BatchNorm2d(64),"),
                                       ("Linear(512 * 7 * 7, 512)", "Linear(64 * 7 * 7, 32)"),
                                       ("EqualLinear(512, 512 * self.n_styles, lr_mul=1)", "EqualLinear(32, 32 * self.n_styles, lr_mul=1)"),
                                       ("x.view(-1, self.n_styles, 512)", "x.view(-1, self.n_styles, 32)")]},
     ["BackboneEncoderUsingLastLayerIntoWPlus"]),
    ("e4e_SingleStyleCodeEncoder", "e4e", ("options.train_options", "TrainOptions"), ("models.psp", "pSp"),
     {"models.encoders.helpers": IR_SE,
      "models.encoders.psp_encoders": [("Conv2d(3, 64, (3, 3), 1, 1, bias=False)", "Conv2d(3, 16, (3, 3), 1, 1, bias=False)"),
                                       ("BatchNorm2d(64),", "BatchNorm2d(16),"), ("PReLU(64)", "PReLU(16)"),
                                       ("self.linear = EqualLinear(512, 512, lr_mul=1)", "self.linear = EqualLinear(64, 32, lr_mul=1)"),
                                       ("x = x.view(-1, 512)", "x = x.view(-1, 64)")]},
     ["SingleStyleCodeEncoder"]),
]  # fmt: skip
FRAMEWORK_OF = {
    "ResNetBackboneEncoder": ("models.psp", "pSp"),
    "ResNetProgressiveBackboneEncoder": ("models.e4e", "e4e"),
}


def reference_runs(roots: dict) -> dict:
    raw = torch.load(HERE / "inputs.pt", weights_only=True)
    x = unsqueeze(raw["x256_0_f16_lzma"], (1, 3, 256, 256))
    y = unsqueeze(raw["y256_0_f16_lzma"], (1, 3, 256, 256))
    out = {}
    for name, repo, options, framework, edits, types_ in RUNS:
        use_repo(roots[repo])
        for module, subs in edits.items():
            reduced(roots[repo], module, [(a.replace("\n", ""), b) for a, b in subs])
        patch_resnet(small_resnet34)
        state, entry = None, {"repo": repo, "commit": commit(roots[repo]), "outputs": {}}
        for encoder_type in types_:
            opts = trainer_opts(*options, ["--encoder_type", encoder_type, "--output_size", str(S["output_size"])]
                                if "output_size" in vars(trainer_opts(*options)) else
                                ["--encoder_type", encoder_type, "--stylegan_size", str(S["output_size"])])  # fmt: skip
            fw = framework or FRAMEWORK_OF[encoder_type]
            importlib.import_module(fw[0])
            patch_resnet(small_resnet34)
            torch.manual_seed(0)
            encoder = build(*fw, opts, 10)
            shapes = shapes_of(encoder)
            if state is None:
                state = formula_state({k: tuple(v) for k, v in shapes.items()})
                entry.update(keys=shapes, opts=plain(opts), cls=type(encoder).__name__)
            encoder.load_state_dict(state, strict=True)
            encoder.eval()
            inp = torch.cat([x, y], 1) if opts.__dict__.get("input_nc", 3) == 6 else x
            runs = {}
            with torch.no_grad():
                runs[""] = encoder(inp)
                runs["_f64"] = encoder.double()(inp.double())
                if hasattr(encoder, "set_progressive_stage"):
                    stages = importlib.import_module(type(encoder).__module__).ProgressiveStage
                    encoder.set_progressive_stage(stages.WTraining)
                    runs["_stage0_f64"] = encoder(inp.double())
                    runs["_stage0"] = encoder.float()(inp)
            for suffix, value in runs.items():
                entry["outputs"][f"{encoder_type}{suffix}"] = value.clone()
            print(f"{name}: {encoder_type} -> {type(encoder).__name__} {tuple(runs[''].shape)}")
        out[name] = entry
    return out


def main() -> None:
    roots = dict(zip(("psp", "e4e", "restyle", "hyper"), map(Path, sys.argv[1:5])))
    if len(roots) != 4:
        raise SystemExit(__doc__)
    table = layouts(roots)
    text = json.dumps(table, separators=(",", ":"), sort_keys=True).encode("utf-8")
    (HERE / "encoder_types.json.gz").write_bytes(gzip.compress(text, compresslevel=9, mtime=0))  # reproducible
    torch.save(reference_runs(roots), HERE / "reference_variants.pt")


if __name__ == "__main__":
    main()
