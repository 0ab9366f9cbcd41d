"""The method contract, end to end, on a tiny example method that uses every part of it.

``TinyEncoder`` is what a family writes: class-level metadata, ``invert(images, init)``, a learned network
saved in the native network format, per-sample weight offsets, a callback, a trainer for the train command.
"""

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from sg2_core import (
    WEIGHTS,
    Generator,
    GeneratorConfig,
    Inversion,
    Method,
    StepInfo,
    create_method,
    list_methods,
    load_networks,
    method_spec,
    register_method,
    register_network,
    save_networks,
)
from sg2_core.methods.registry import unregister_method
from sg2_core.nn.config import Serializable
from sg2_core.nn.offsets import check_offsets, from_scaled_units, layer_key, to_scaled_units
from sg2_core.testing import check_method
from sg2_core.training.cli import main as train_main


@dataclass(frozen=True)
class TinyConfig(Serializable):
    channels: int = 1
    resolution: int = 16
    num_ws: int = 8
    w_dim: int = 8


@register_network(config_class=TinyConfig)
class TinyNet(nn.Module):
    """Pooled pixels -> a W+ offset from w_avg, and a per-sample scale of the last toRGB weight."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.head = nn.Linear(config.channels * 16, config.num_ws * config.w_dim + 1)
        with torch.no_grad():  # the same untrained network every time (a trained one comes from a file)
            seeded = torch.Generator().manual_seed(0)
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=seeded) * 0.1)
            self.head.bias.zero_()

    def forward(self, x):
        out = self.head(nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))
        return out[:, :-1].reshape(len(x), self.config.num_ws, self.config.w_dim), out[:, -1]


def train(argv):
    """The trainer ``python -m <family>.train --method tiny-encoder`` would run (argv in, exit code out)."""
    train.calls.append(list(argv))
    return 0


train.calls = []


class TinyEncoder(Method):
    """A feed-forward W+ encoder with per-image toRGB offsets: the example of the contract."""

    name = "tiny-encoder"
    space = "w+"
    trainable = True
    trainer = f"{__name__}:train"
    demo_options = {}
    needs = ("generator", "own-weights")
    test_options = {}  # what check_method builds it with: its defaults are cheap

    def __init__(self, generator=None, *, weights=None, callback=None, device=None):
        super().__init__(generator, callback=callback, device=device)
        g = generator
        config = TinyConfig(g.img_channels, g.img_resolution, g.num_ws, g.w_dim)
        self.net = load_networks(weights)["encoder"] if weights else TinyNet(config).eval()
        self.net.to(self.device).requires_grad_(False)
        self.last_rgb = f"b{g.img_resolution}.torgb"

    def invert(self, images, init):
        with torch.no_grad():
            delta, scale = self.net(images)
            start = init.ws if init is not None else self.generator.mapping.w_avg.expand_as(delta)
            weight = self.generator.synthesis.layer(self.last_rgb).weight
            offsets = {self.last_rgb: 0.01 * torch.tanh(scale)[:, None, None, None, None] * weight}
            if init is not None and init.weight_offsets:
                offsets = {**init.weight_offsets, self.last_rgb: offsets[self.last_rgb]}
        self.report(StepInfo(0, 1, stage="forward"))
        return Inversion(start + 0.1 * delta, "w+", self.generator, offsets, {"scale": scale})


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    config = GeneratorConfig(
        resolution=16, img_channels=1, z_dim=8, w_dim=8, channel_base=64, channel_max=16, mapping_layers=2
    )
    return Generator(config).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def images(generator):
    with torch.no_grad():
        return generator(torch.randn(3, 8, generator=torch.Generator().manual_seed(1)), noise_mode="const").clamp(-1, 1)


@pytest.fixture
def registered():
    register_method("tiny-encoder")(TinyEncoder)
    yield
    unregister_method("tiny-encoder")


def test_the_example_keeps_the_contract(registered, generator, images):
    check_method("tiny-encoder", generator, images)


def test_a_bad_showcase_is_named(generator, images):
    class BadShowcase(TinyEncoder):
        name = "tiny-bad-showcase"

        def showcase(self, inversion, images=None):
            return {"first only": inversion.render()[:1]}

    register_method("tiny-bad-showcase")(BadShowcase)
    try:
        with pytest.raises(
            AssertionError,
            match=r"showcase row 'first only' must be images \[3, C, H, W\] under a "
            r"str label, got \[1, 1, 16, 16\]",
        ):
            check_method("tiny-bad-showcase", generator, images)
    finally:
        unregister_method("tiny-bad-showcase")


def test_check_method_needs_valid_test_options(generator, images):
    class Undeclared(TinyEncoder):
        name, test_options = "tiny-undeclared", None

    class Unknown(TinyEncoder):
        name, test_options, test_batch_tolerance = "tiny-unknown", {"steps": 2}, 1e-3

    register_method("tiny-undeclared")(Undeclared)
    register_method("tiny-unknown")(Unknown)
    try:
        with pytest.raises(AssertionError, match=r"'tiny-undeclared': declares no test_options: the cheap options"):
            check_method("tiny-undeclared", generator, images)
        with pytest.raises(
            AssertionError, match=r"test_options names options its constructor does not take: \['steps'\]"
        ):
            check_method("tiny-unknown", generator, images)
        spec = method_spec("tiny-unknown")
        assert (spec.test_options, spec.test_batch_tolerance) == ({"steps": 2}, 1e-3)
    finally:
        unregister_method("tiny-undeclared")
        unregister_method("tiny-unknown")


def test_metadata_is_read_without_building(registered):
    spec = method_spec("tiny-encoder")
    assert (spec.space, spec.trainable, spec.needs, spec.trainer) == (
        "w+",
        True,
        ("generator", "own-weights"),
        f"{__name__}:train",
    )
    assert spec.summary.startswith("A feed-forward W+ encoder")
    assert "tiny-encoder" in list_methods(space="w+", trainable=True, needs="own-weights")
    assert "tiny-encoder" not in list_methods(space="w")
    assert "tiny-encoder" not in list_methods(needs=["discriminator"])
    with pytest.raises(ValueError, match="space must be one of"):
        list_methods(space="z")
    with pytest.raises(ValueError, match="unknown weights"):
        list_methods(needs="gpu")
    assert set(WEIGHTS) >= set(spec.needs)


def test_invalid_declarations_are_named(generator):
    class Bad(TinyEncoder):
        space, trainer, input_condition = "s", None, "sketch"
        test_options, test_batch_tolerance = ["steps"], -1

    register_method("tiny-bad")(Bad)
    try:
        with pytest.raises(
            TypeError,
            match="space must be one of .* input_condition must be None or one of \\['edges', 'lowres'\\], got 'sketch'.* a trainable method names its trainer"
            ".* test_options must be a dict of option names .* test_batch_tolerance must be a number >= 0, got -1",
        ):
            method_spec("tiny-bad")
    finally:
        unregister_method("tiny-bad")


def test_init_callback_and_refusals(registered, generator, images):
    seen = []
    method = create_method("tiny-encoder", generator=generator, callback=seen.append)
    first = method(images)
    second = method(images, init=first)  # the way ReStyle iterates
    assert seen and isinstance(seen[0], StepInfo) and seen[0].stage == "forward"
    assert torch.allclose(second.ws - first.ws, first.ws - generator.mapping.w_avg, atol=1e-6)
    with pytest.raises(ValueError, match="init holds 3 samples but 2 images were given"):
        method(images[:2], init=first)
    other = Generator(generator.config)
    with pytest.raises(ValueError, match="init belongs to a different generator"):
        method(images, init=Inversion(first.latents, "w+", other))
    with pytest.raises(ValueError, match="callback must be callable"):
        create_method("tiny-encoder", generator=generator, callback=3)
    with pytest.raises(ValueError, match="needs generator=G"):
        TinyEncoder()


def test_the_learned_network_round_trips_through_the_native_format(registered, generator, images, tmp_path):
    method = create_method("tiny-encoder", generator=generator)
    path = save_networks(tmp_path / "tiny.safetensors", {"encoder": method.net}, extra={"steps": 5})
    loaded = load_networks(path)
    assert loaded.extra == {"steps": 5} and isinstance(loaded["encoder"], TinyNet)
    again = create_method("tiny-encoder", generator=generator, weights=path)
    assert torch.equal(again(images).latents, method(images).latents)
    with pytest.raises(FileExistsError, match="exists"):
        save_networks(path, {"encoder": method.net}, overwrite=False)
    with pytest.raises(TypeError, match="not registered with sg2_core.register_network"):
        save_networks(tmp_path / "x.safetensors", {"encoder": nn.Linear(2, 2)})


def test_the_train_command_dispatches_by_method_name(registered, capsys):
    package = __name__.split(".")[0]
    assert train_main(package, ["--method", "tiny-encoder", "--steps", "3"]) == 0
    assert train.calls[-1] == ["--steps", "3"]
    assert train_main(package, ["--list"]) == 0 and "tiny-encoder" in capsys.readouterr().out
    assert train_main(package, ["--steps", "4"]) == 0 and train.calls[-1] == ["--steps", "4"]  # its one trainer
    assert train_main(package, ["--method", "nope"]) == 2 and "not a trainable method" in capsys.readouterr().err


def test_inversion_file_round_trip_and_mismatched_generator(registered, generator, images, tmp_path):
    inv = create_method("tiny-encoder", generator=generator)(images)
    inv.extras["note"] = "hello"
    path = inv.save(tmp_path / "inv.safetensors")
    back = Inversion.load(path, generator)
    assert back.space == "w+" and torch.equal(back.latents, inv.latents) and back.extras["note"] == "hello"
    assert set(back.weight_offsets) == set(inv.weight_offsets)
    assert all(torch.equal(back.weight_offsets[k], v) for k, v in inv.weight_offsets.items())  # stored: exact
    # the renders are computations: tensors read from a file sit at other addresses and may take other kernels.
    # Each render is within 3.7 eps * max|image| of a float64 run (this CPU; AVX2- and SSE-capped kernels), so
    # two renders differ by < 7.4; 16x leaves 2x
    rendered = inv.render()
    bound = 16 * torch.finfo(torch.float32).eps * rendered.abs().max().item()
    torch.testing.assert_close(back.render(), rendered, rtol=0, atol=bound)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        inv.save(path)
    assert path.read_bytes() == before
    other_weights = Generator(generator.config)
    with pytest.raises(Exception, match="same config but other weights"):
        Inversion.load(path, other_weights)
    assert Inversion.load(path, other_weights, check_weights=False).space == "w+"
    network_file = save_networks(tmp_path / "net.safetensors", {"encoder": TinyNet(TinyConfig())})
    with pytest.raises(Exception, match="not an inversion file: .*format='sg2-toolkit'"):
        Inversion.load(network_file, generator)
    bigger = Generator(generator.config.replace(w_dim=16, z_dim=16))
    with pytest.raises(Exception, match="another config .*w_dim: file 8, generator 16"):
        Inversion.load(path, bigger)


def test_render_with_another_generator_of_the_same_architecture(registered, generator, images):
    inv = create_method("tiny-encoder", generator=generator)(images)
    tuned = Generator(generator.config).eval()
    tuned.load_state_dict(generator.state_dict())
    with torch.no_grad():
        tuned.synthesis.b16.torgb.bias.add_(0.5)
        assert torch.allclose(inv.render(generator=tuned), inv.render() + 0.5, atol=1e-5)
    with pytest.raises(ValueError, match="another synthesis architecture"):
        inv.render(generator=Generator(generator.config.replace(channel_max=8)))


def test_offsets_keys_check_and_units(generator):
    synthesis = generator.synthesis
    assert layer_key("synthesis.b8.conv0.weight") == layer_key("b8.conv0.weight") == layer_key("b8.conv0") == "b8.conv0"
    weight = synthesis.layer("b8.conv0").weight
    good = {"synthesis.b8.conv0.weight": torch.zeros(2, *weight.shape)}
    assert list(check_offsets(synthesis, good)) == ["b8.conv0"]
    with pytest.raises(ValueError, match=r"unknown layer 'b8.conv9'"):
        check_offsets(synthesis, {"b8.conv9": torch.zeros(2, *weight.shape)})
    with pytest.raises(ValueError, match=r"must have shape \[3, 8, 16, 3, 3\]"):
        check_offsets(synthesis, good, n=3)
    with pytest.raises(ValueError, match="NaN"):
        check_offsets(synthesis, {"b8.conv0": torch.full((2, *weight.shape), float("nan"))})
    # rosinality adds deltas to scale * weight, scale = 1 / sqrt(fan_in): the same image either way
    delta = torch.randn(2, 1, *weight.shape) * 0.01
    ours = from_scaled_units(synthesis, {"b8.conv0": delta})["b8.conv0"]
    fan_in = weight[0].numel()
    assert torch.allclose(ours, delta[:, 0] * fan_in**0.5)
    assert torch.allclose(to_scaled_units(synthesis, {"b8.conv0": ours})["b8.conv0"], delta[:, 0])
    # one layer under two spellings is refused, not resolved by order (the later one would be dropped silently)
    with pytest.raises(ValueError, match=r"layer 'b8.conv0' is given twice \(as 'synthesis.b8.conv0.weight' too\)"):
        from_scaled_units(synthesis, {"b8.conv0": delta, "synthesis.b8.conv0.weight": delta * 2})
    with pytest.raises(ValueError, match=r"unknown layer 'b8.conv9'"):
        from_scaled_units(synthesis, {"b8.conv9": delta})
    ws = generator.mapping.w_avg.expand(2, generator.num_ws, -1)
    scale = 1 / fan_in**0.5
    with torch.no_grad():
        rendered = synthesis(ws, noise_mode="const", weight_offsets={"b8.conv0": ours})
        # the rosinality way: the effective weight scale * w + delta, i.e. our weight + delta / scale
        manual = Generator(generator.config).eval()
        manual.load_state_dict(generator.state_dict())
        outs = []
        for i in range(2):
            manual.synthesis.b8.conv0.weight.copy_((scale * weight + delta[i, 0]) / scale)
            outs.append(manual.synthesis(ws[i : i + 1], noise_mode="const"))
    assert torch.allclose(rendered, torch.cat(outs), atol=1e-5)
