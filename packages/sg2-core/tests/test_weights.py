"""sg2_core.methods.weights: the one way a method's weights are resolved (weights= / allow_untrained / the demo
file), its one error, and the one identity of generators (generator_hash, is_demo_generator)."""

import copy
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from sg2_core import Generator, GeneratorConfig, Inversion, Method, demo
from sg2_core.methods import weights as weights_module
from sg2_core.methods.method import check_declaration
from sg2_core.methods.weights import MissingWeightsError, generator_hash, is_demo_generator, resolve_weights


class Toy(Method):
    """A method whose weights are one small linear layer; ``read`` records the paths it was given."""

    name = "toy"
    trainable, trainer = True, "toy_family.training:main"
    demo_weights = ("sg2_core", "fmnist32.safetensors")  # any file the sg2_core package really ships

    def __init__(self, generator=None, *, weights=None, allow_untrained=False, weights_seed=0, **options):
        super().__init__(generator)
        self.read_paths = []
        self.net = resolve_weights(
            self,
            weights,
            network_type=nn.Linear,
            read=self._read,
            untrained=lambda: nn.Linear(3, 2),
            accepts="a toy file or an nn.Linear",
            allow_untrained=allow_untrained,
            weights_seed=weights_seed,
            options=options,
        )

    def _read(self, path: Path) -> nn.Linear:
        self.read_paths.append(path)
        return nn.Linear(3, 2)


class ToyByOption(Toy):
    """Picks its shipped file by an option, as HyperInverter does by ``phase1``."""

    @classmethod
    def demo_weights_for(cls, variant=None, **options):
        return ("sg2_core", "fmnist32_test256.safetensors") if variant == "b" else cls.demo_weights


@pytest.fixture(scope="module")
def demo_g():
    return demo.load_generator()


@pytest.fixture(scope="module")
def other_g():
    """The demo's config with other (random) weights: not the demo generator."""
    torch.manual_seed(0)
    return Generator(demo.GENERATOR_CONFIG).eval()


def test_a_given_network_is_used_as_it_is(other_g):
    net = nn.Linear(3, 2)
    assert Toy(other_g, weights=net).net is net


def test_a_given_file_is_read_and_a_missing_one_is_named(other_g, tmp_path):
    (tmp_path / "w.bin").write_bytes(b"")
    method = Toy(other_g, weights=str(tmp_path / "w.bin"))
    assert method.read_paths == [tmp_path / "w.bin"]
    with pytest.raises(MissingWeightsError) as caught:
        Toy(other_g, weights=tmp_path / "absent.bin")
    message = str(caught.value)
    assert message == (
        f"toy: weights={str(tmp_path / 'absent.bin')!r}: no such file; pass weights= (a toy file or an nn.Linear, "
        "or the file that python -m toy_family.train --method toy writes) or allow_untrained=True for random "
        "weights (tests only)"
    )
    # one error type that the families' earlier except clauses (FileNotFoundError, ValueError) still catch
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, ValueError)


def test_weights_of_another_type_are_refused(other_g):
    with pytest.raises(ValueError, match=r"^toy: weights must be a checkpoint path or a Linear, got int$"):
        Toy(other_g, weights=3)


def test_untrained_weights_are_seeded_without_touching_the_callers_rng(demo_g):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b, c = (Toy(demo_g, allow_untrained=True, weights_seed=s).net for s in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    # allow_untrained wins over the demo file: an untrained baseline on the demo generator
    assert Toy(demo_g, allow_untrained=True).read_paths == []
    with pytest.raises(ValueError, match="toy: weights_seed must be an int, got 1.5"):
        Toy(demo_g, allow_untrained=True, weights_seed=1.5)
    with pytest.raises(ValueError, match="toy: allow_untrained must be True or False, got 'yes'"):
        Toy(demo_g, allow_untrained="yes")


def test_the_demo_generator_gets_the_declared_file(demo_g):
    method = Toy(demo_g)
    assert [p.name for p in method.read_paths] == ["fmnist32.safetensors"]
    assert [p.name for p in ToyByOption(demo_g, variant="b").read_paths] == ["fmnist32_test256.safetensors"]
    assert [p.name for p in ToyByOption(demo_g).read_paths] == ["fmnist32.safetensors"]


def test_a_declared_file_missing_from_the_installation_is_named(demo_g, monkeypatch):
    monkeypatch.setattr(Toy, "demo_weights", ("sg2_core", "absent.safetensors"))
    with pytest.raises(
        MissingWeightsError,
        match=r"^toy: the weights shipped for the demo generator, sg2_core/assets/absent.safetensors, are missing "
        r"from this installation \(expected at .*absent.safetensors\); reinstall sg2-core, or pass weights= ",
    ):
        Toy(demo_g)


def test_any_other_generator_gets_one_line_naming_the_option_the_file_and_the_command(other_g):
    with pytest.raises(MissingWeightsError) as caught:
        Toy(other_g)
    assert str(caught.value) == (
        "toy: no weights for this generator: pass weights= (a toy file or an nn.Linear, or the file that python -m "
        "toy_family.train --method toy writes) or allow_untrained=True for random weights (tests only); the shipped "
        "sg2_core/assets/fmnist32.safetensors is for sg2_core.demo's generator only"
    )
    untrainable = type("Fixed", (Toy,), {"trainable": False, "trainer": None, "demo_weights": None})
    with pytest.raises(MissingWeightsError) as caught:
        untrainable(other_g)
    assert str(caught.value) == (
        "toy: no weights for this generator: pass weights= (a toy file or an nn.Linear) or allow_untrained=True "
        "for random weights (tests only)"
    )


def test_generator_hash_is_the_identity_of_the_weights(demo_g, other_g):
    assert generator_hash(copy.deepcopy(demo_g)) == generator_hash(demo_g)
    assert generator_hash(other_g) != generator_hash(demo_g)
    nudged = copy.deepcopy(demo_g)
    with torch.no_grad():
        nudged.synthesis.b8.conv0.weight[0, 0, 0, 0] += 1e-6
    assert generator_hash(nudged) != generator_hash(demo_g)
    assert generator_hash(copy.deepcopy(demo_g).double()) != generator_hash(demo_g)  # another dtype: other weights


def test_is_demo_generator_compares_the_config_then_the_weights(demo_g, other_g, monkeypatch):
    assert is_demo_generator(demo_g) and is_demo_generator(copy.deepcopy(demo_g))
    assert not is_demo_generator(other_g)  # the demo's config, retrained: another generator
    small = Generator(GeneratorConfig(resolution=16, z_dim=8, w_dim=8, channel_base=64, channel_max=8))
    monkeypatch.setattr(weights_module, "generator_hash", lambda g: pytest.fail("hashed a generator of another config"))
    assert not is_demo_generator(small)


def test_inversion_files_record_the_same_identity(demo_g, tmp_path):
    from sg2_core.methods import inversion_file

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = inversion_file.weights_hash  # its name before sg2-core 0.7
    assert old is generator_hash and caught[0].category is DeprecationWarning
    path = Inversion(demo_g.mapping.w_avg[None], "w", demo_g).save(tmp_path / "inv.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["generator_hash"] == generator_hash(demo_g)


@pytest.mark.parametrize("bad", ["fmnist32.safetensors", ("sg2_core",), ("sg2_core", 3)])
def test_a_bad_declaration_is_refused(bad):
    cls = type("Bad", (Toy,), {"demo_weights": bad})
    assert any(p.startswith("demo_weights must be None or (package, file name)") for p in check_declaration(cls))
    assert not check_declaration(Toy)
