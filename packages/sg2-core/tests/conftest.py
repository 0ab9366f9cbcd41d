from pathlib import Path

import pytest
import torch

from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.generator import Generator
from sg2_core.nn.layers import use_impl

DATA = Path(__file__).parent / "data"

# The fixtures' architecture (shared/fixtures/sg2/README.md): channels {4: 96, 8: 96, 16: 64, 32: 32}.
G32 = GeneratorConfig(z_dim=64, w_dim=64, resolution=32, channel_base=1024, channel_max=96)
D32 = DiscriminatorConfig(resolution=32, channel_base=1024, channel_max=96)


@pytest.fixture
def exact_path():
    """The exact convolution path, ``sg2_core.use_impl("ref")``: NVIDIA's order of operations with no NNPACK,
    Winograd or per-image loop, so the comparison with the references does not depend on the CPU. The fast
    paths are tested against it in test_networks.py."""
    with use_impl("ref"):
        yield


@pytest.fixture(scope="session")
def io32():
    return torch.load(DATA / "g32_io.pt", weights_only=True)


@pytest.fixture
def g32():
    G = Generator(G32).eval()
    G.load_state_dict(torch.load(DATA / "g32_nvidia_state.pt", weights_only=True))
    return G


@pytest.fixture
def d32():
    D = Discriminator(D32).eval()
    D.load_state_dict(torch.load(DATA / "d32_nvidia_state.pt", weights_only=True))
    return D


# ------------------------------------------------------------------------------------------------
# Checkpoint tests: a writer of NVIDIA StyleGAN2-ADA network pickles, in their exact format
# (shared/fixtures/sg2/README.md, "NVIDIA network pickle format"), built from our networks. No NVIDIA
# code is involved: stand-ins for torch_utils.persistence / dnnlib.util live in sys.modules only while
# pickling, so that pickle records the same global names NVIDIA's snapshots do.

import contextlib  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from collections import OrderedDict  # noqa: E402

import numpy as np  # noqa: E402


def module_src_payload(marker) -> str:
    """A stand-in for ``training/networks.py`` that leaves ``marker`` behind if anyone executes it."""
    return (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('module_src was executed')\n"
        + "# stand-in for training/networks.py\n" * 50
    )


@contextlib.contextmanager
def fake_nvidia_modules():
    """Yield ``(reconstruct, EasyDict)`` registered as torch_utils.persistence / dnnlib.util while inside."""
    names = ["torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"]
    saved = {n: sys.modules.get(n) for n in names}
    mods = {n: types.ModuleType(n) for n in names}

    def _reconstruct_persistent_obj(meta):  # only its name is pickled
        raise AssertionError("never called")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    easy_dict = type("EasyDict", (dict,), {"__module__": "dnnlib.util", "__qualname__": "EasyDict"})
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    mods["dnnlib.util"].EasyDict = easy_dict
    mods["torch_utils"].persistence = mods["torch_utils.persistence"]
    mods["dnnlib"].util = mods["dnnlib.util"]
    sys.modules.update(mods)
    try:
        yield _reconstruct_persistent_obj, easy_dict
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


class Reduce:
    """Pickles as ``fn(*args)`` (how persistent objects, and malicious payloads, are stored)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _easy(value, easy_dict):
    if isinstance(value, dict):
        return easy_dict({k: _easy(v, easy_dict) for k, v in value.items()})
    return value


def _persistent(module, init_kwargs, src, reconstruct, easy_dict, overrides=None):
    state = {
        "training": False,
        "_parameters": OrderedDict(module._parameters),
        "_buffers": OrderedDict(module._buffers),
        "_non_persistent_buffers_set": set(),
        "_backward_pre_hooks": OrderedDict(),
        "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(),
        "_forward_hooks_with_kwargs": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(
            (name, None if child is None else _persistent(child, {}, src, reconstruct, easy_dict))
            for name, child in module._modules.items()
        ),
        "_init_args": (),
        "_init_kwargs": _easy(init_kwargs, easy_dict),
    }
    for name, value in vars(module).items():  # own attributes; gains become numpy.float64 as in NVIDIA's nets
        if not name.startswith("_") and name != "training" and isinstance(value, (int, float, str, type(None))):
            state[name] = np.float64(value) if isinstance(value, float) else value
    state.update(overrides or {})
    meta = {"type": "class", "version": 6, "module_src": src, "class_name": type(module).__name__, "state": state}
    return Reduce(reconstruct, meta)


def write_nvidia_pickle(
    path, G=None, D=None, G_ema=None, *, marker, protocol=4, g_kwargs=None, d_kwargs=None, extra=None
):
    """Write a snapshot dict ``{G, D, G_ema, training_set_kwargs, augment_pipe}`` like NVIDIA's training loop.

    ``g_kwargs`` / ``d_kwargs``: the top-level constructor kwargs (NVIDIA's), default from the configs.
    ``extra``: more top-level entries (e.g. a malicious ``Reduce``).
    """
    from sg2_core.checkpoints.nvidia import discriminator_config_to_nvidia, generator_config_to_nvidia

    src = module_src_payload(marker)
    with fake_nvidia_modules() as (reconstruct, easy_dict):
        snapshot = {
            "training_set_kwargs": easy_dict(
                class_name="training.dataset.ImageFolderDataset",
                path="~/datasets/tiny.zip",
                use_labels=False,
                max_size=16,
                xflip=False,
                resolution=32,
            )
        }
        for name, net, kwargs, default in (
            ("G", G, g_kwargs, generator_config_to_nvidia),
            ("D", D, d_kwargs, discriminator_config_to_nvidia),
            ("G_ema", G_ema, g_kwargs, generator_config_to_nvidia),
        ):
            snapshot[name] = (
                None
                if net is None
                else _persistent(
                    net, kwargs if kwargs is not None else default(net.config), src, reconstruct, easy_dict
                )
            )
        pipe = torch.nn.Module()
        pipe.register_buffer("p", torch.tensor(0.125))
        pipe.register_buffer("Hz_geom", torch.linspace(-1, 1, 12))
        pipe.register_buffer("Hz_fbank", torch.arange(48.0).reshape(4, 12))
        aug_src = "open('augment.py was executed', 'w')\n"
        snapshot["augment_pipe"] = _persistent(
            pipe, {"xflip": 1, "rotate90": 1, "xint": 1, "scale": 1}, aug_src, reconstruct, easy_dict
        )
        snapshot["augment_pipe"].args[0]["class_name"] = "AugmentPipe"
        snapshot.update(extra or {})
        with open(path, "wb") as f:
            pickle.dump(snapshot, f, protocol=protocol)
    return path


@pytest.fixture
def nvidia_tools():
    """The NVIDIA-pickle writer and its helpers (see ``write_nvidia_pickle``)."""
    return types.SimpleNamespace(
        write=write_nvidia_pickle, Reduce=Reduce, fake_modules=fake_nvidia_modules, payload=module_src_payload
    )


@pytest.fixture
def nvidia_pkl(tmp_path, g32, d32):
    """``(path, marker)``: a snapshot of the fixture networks (G_ema = G), and the file that executing its
    ``module_src`` would create."""
    import copy

    marker = tmp_path / "module_src_was_executed"
    path = write_nvidia_pickle(tmp_path / "network-snapshot-000000.pkl", g32, d32, copy.deepcopy(g32), marker=marker)
    return path, marker
