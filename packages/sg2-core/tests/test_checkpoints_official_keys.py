"""Full-size official architectures: our networks (NVIDIA names) and our rosinality exporter produce exactly
the keys, shapes and parameter/buffer split that the references have (tests/data/keys_official.json)."""

import json
import re
from pathlib import Path

import pytest
import torch

from sg2_core.checkpoints import rosinality
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.generator import Generator

OFFICIAL = json.loads((Path(__file__).parent / "data" / "keys_official.json").read_text())

CONFIGS = {
    "nvidia_G_1024": GeneratorConfig(),
    "nvidia_D_1024": DiscriminatorConfig(),
    "nvidia_G_256_auto": GeneratorConfig(resolution=256, channel_base=16384, mapping_layers=2),
    "nvidia_G_256_paper256": GeneratorConfig(resolution=256, channel_base=16384, mapping_layers=8),
    "nvidia_D_256": DiscriminatorConfig(resolution=256, channel_base=16384),
    "rosinality_G_1024": GeneratorConfig(),
    "rosinality_D_1024": DiscriminatorConfig(),
    "rosinality_G_256": GeneratorConfig(resolution=256, channel_base=32768),
    "rosinality_D_256": DiscriminatorConfig(resolution=256, channel_base=32768),
}


def build_on_meta(config):
    """The network on the meta device (shapes only, no memory or time)."""
    cls = Generator if isinstance(config, GeneratorConfig) else Discriminator
    with torch.device("meta"):
        net = cls(config)
    assert all(t.is_meta for t in net.state_dict().values())
    return net


def official(entry):
    return {key: (tuple(shape), kind) for key, shape, kind in OFFICIAL[entry]["keys"]}


def test_every_entry_is_covered():
    assert set(CONFIGS) == set(OFFICIAL) - {"_note"}


@pytest.mark.parametrize("entry", [e for e in CONFIGS if e.startswith("nvidia_")])
def test_nvidia_keys(entry):
    net = build_on_meta(CONFIGS[entry])
    params = {k for k, _ in net.named_parameters()}
    ours = {k: (tuple(v.shape), "param" if k in params else "buffer") for k, v in net.state_dict().items()}
    expected = official(entry)
    assert sorted(set(ours) ^ set(expected)) == []
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}
    assert len(ours) == OFFICIAL[entry]["num_keys"]
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL[entry]["num_params"]


@pytest.mark.parametrize("entry", [e for e in CONFIGS if e.startswith("rosinality_")])
def test_rosinality_export_keys(entry):
    config = CONFIGS[entry]
    net = build_on_meta(config)
    if isinstance(config, GeneratorConfig):
        exported = rosinality.generator_to_rosinality(net.state_dict(), config)
    else:
        exported = rosinality.discriminator_to_rosinality(net.state_dict(), config)
    # rosinality's buffers: the blur / upsample kernels and the constant noise maps
    buffers = {k for k in exported if k.endswith(".kernel") or re.fullmatch(r"noises\.noise_\d+", k)}
    ours = {k: (tuple(v.shape), "buffer" if k in buffers else "param") for k, v in exported.items()}
    expected = official(entry)
    assert sorted(set(ours) ^ set(expected)) == []
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}
    num_params = sum(v.numel() for k, v in exported.items() if k not in buffers)
    assert num_params == OFFICIAL[entry]["num_params"]
