import gzip
import json
import math
import zlib
from pathlib import Path

import pytest
import torch

from sg2_core.testing.fixture_packs import unpack_state as unpack
from sg2_core.testing.fixture_packs import unsqueeze

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    # The test networks are tiny: on a shared 2-core machine, thread hand-offs cost more than the maths.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _load(name):
    return torch.load(DATA / name, weights_only=True)


def formula_state(shapes: dict) -> dict:
    """Weights without a random generator, the same on every machine, for the reference runs of
    ``data/make_reference_variants.py`` (which imports this): per key, the sine of the golden-angle sequence with a
    phase from the key's CRC32, scaled by what the tensor is (BN statistics and affine, PReLU, convs and ``Linear``
    by 1/sqrt(fan-in), EqualLinear unscaled, as it scales itself). float64 values, returned as float32."""
    state = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.zeros((), dtype=torch.int64)
            continue
        phase = zlib.crc32(name.encode()) / 2**32 * 2 * math.pi
        t = torch.sin(torch.arange(math.prod(shape), dtype=torch.float64) * 2.399963229728653 + phase).reshape(shape)
        module, leaf = name.rsplit(".", 1)
        batch_norm = f"{module}.running_mean" in shapes
        if leaf == "running_mean":
            value = 0.1 * t
        elif leaf == "running_var":
            value = 0.75 + 0.25 * t
        elif leaf == "bias":
            value = 0.1 * t
        elif len(shape) == 1:  # BN scale or PReLU slope
            value = (1.0 if batch_norm else 0.25) + 0.1 * t
        elif name.endswith("linear.weight"):  # EqualLinear: unit variance, scaled at run time
            value = t * math.sqrt(2)
        else:
            value = t * math.sqrt(2 / math.prod(shape[1:]))
        state[name] = value.float()
    return state


def hfgi_formula_state(shapes: dict) -> dict:
    """:func:`formula_state` for HFGI's networks (``data/make_hfgi_reference.py``): the tensors that rosinality's
    layers store unscaled and scale at run time (the generator's weights, noise maps and constant, the consultation
    heads' EqualConv2d weights) get unit-scale values ``t * sqrt(2)``, so the modulated layers and the conditions
    they make are of order one. The generator's blur and upsampling kernels (``*.kernel``) are left out: they are the
    networks' own constants, not weights."""
    state = {k: v for k, v in formula_state(shapes).items() if not k.endswith(".kernel")}
    for name, shape in shapes.items():
        if name not in state:
            continue
        generator = name.startswith("decoder.") and len(shape) >= 2 and not name.endswith("bias")
        head = name.startswith("residue.condition_") and name.endswith("weight")
        if generator or head:
            state[name] = state[name] * math.sqrt(math.prod(shape[1:]))
    return state


@pytest.fixture(scope="session")
def hfgi_formula():
    """:func:`hfgi_formula_state`, for the same reason as :func:`formula`."""
    return hfgi_formula_state


@pytest.fixture(scope="session")
def formula():
    """:func:`formula_state` (the test modules cannot import conftest: pytest runs in importlib mode)."""
    return formula_state


@pytest.fixture(scope="session")
def inputs():
    raw = _load("inputs.pt")
    return {
        "x256": unsqueeze(raw["x256_0_f16_lzma"], (1, 3, 256, 256)),
        "y256": unsqueeze(raw["y256_0_f16_lzma"], (1, 3, 256, 256)),
        "disc_codes": raw["disc_codes"].float(),
    }


@pytest.fixture(scope="session")
def psp_data():
    raw = _load("psp_fpn.pt")
    return raw | {"state_dict": unpack(raw["weights"])}


@pytest.fixture(scope="session")
def restyle_data():
    raw = _load("restyle.pt")
    return raw | {"state_dict": unpack(raw["weights"])}


@pytest.fixture(scope="session")
def disc_data():
    raw = _load("e4e_disc.pt")
    return raw | {"state_dict": {k: v.float() for k, v in raw["state_dict"].items()}}


@pytest.fixture(scope="session")
def layouts():
    with gzip.open(DATA / "layouts_official.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def generator():
    """A tiny generator: 32 px, w_dim 32, 8 W+ entries."""
    from sg2_core import Generator, GeneratorConfig

    torch.manual_seed(0)
    config = GeneratorConfig(resolution=32, z_dim=32, w_dim=32, channel_base=256, channel_max=32, mapping_layers=2)
    return Generator(config).eval().requires_grad_(False)
