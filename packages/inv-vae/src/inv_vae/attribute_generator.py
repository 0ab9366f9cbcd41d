"""AgileGAN's attribute-aware generator: a copy of a StyleGAN2 generator whose low-resolution synthesis blocks are
split into one path per attribute class (female / male in the paper; clothing groups on the demo).

The mapping network, the 4x4 block and the high-resolution blocks are shared; the split blocks (8-64 px at full
size, :func:`default_split`) exist once per path, each starting as a copy of the source generator's. Every sample
takes the path of its attribute, so the generator is exactly the source one while all paths hold its weights.

Each path is also available as a plain ``sg2_core.Generator`` sharing these modules (:meth:`path`), so an
inversion renders with it as ``inversion.render(generator=ag.path('B'))``. Every block keeps its own constant
noise buffer: constant noise follows the block's resolution at any output size (the reference's shared loop
restarted at the 8x8 buffers and crashed above 64 px).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sg2_core import Generator, GeneratorConfig, register_network
from sg2_core.checkpoints.base import skeleton
from sg2_core.nn.config import Serializable

__all__ = ["AttributeGenerator", "AttributeGeneratorConfig", "default_split"]

FULL_SIZE_SPLIT = (8, 16, 32, 64)  # the reference's log2 resolutions 3..6


def default_split(resolution: int) -> tuple[int, ...]:
    """8-64 px, below the output resolution (at 32 px: 8 and 16, the output block stays shared)."""
    return tuple(r for r in FULL_SIZE_SPLIT if r < resolution)


@dataclass(frozen=True)
class AttributeGeneratorConfig(Serializable):
    generator: GeneratorConfig = GeneratorConfig()
    attributes: tuple[str, ...] = ("A", "B")  # one path per attribute class, in index order
    split: tuple[int, ...] | None = None  # block resolutions with one block per path; None: default_split

    def __post_init__(self):
        if isinstance(self.generator, dict):
            object.__setattr__(self, "generator", GeneratorConfig.from_dict(self.generator))
        object.__setattr__(self, "attributes", tuple(self.attributes))
        split = default_split(self.generator.resolution) if self.split is None else tuple(self.split)
        object.__setattr__(self, "split", split)
        names = self.attributes
        if len(names) < 1 or not all(isinstance(a, str) and a for a in names) or len(set(names)) != len(names):
            raise ValueError(f"attributes must be distinct non-empty names, got {list(names)}")
        blocks = self.generator.block_resolutions
        bad = [r for r in split if r not in blocks or r == 4]
        if bad or len(set(split)) != len(split):
            raise ValueError(
                f"split must list distinct block resolutions above 4 of the generator {list(blocks)}, got {list(split)}"
            )

    @classmethod
    def from_dict(cls, data: dict):
        unknown = sorted(set(data) - {"generator", "attributes", "split"})
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}")
        split = data.get("split")
        return cls(
            GeneratorConfig.from_dict(data.get("generator", {})),
            tuple(data.get("attributes", ("A", "B"))),
            None if split is None else tuple(split),
        )


@register_network(config_class=AttributeGeneratorConfig)
class AttributeGenerator(nn.Module):
    """``forward(z, attributes, ...)`` like ``Generator.forward``; :meth:`synthesize` takes W+ codes.

    ``attributes``: per sample, an attribute index or name (a ``[N]`` integer tensor, or a sequence).
    Keys: ``mapping.*``, ``shared.b{res}.*`` and ``paths.{i}.b{res}.*`` (the block names of sg2-core)."""

    def __init__(self, config: AttributeGeneratorConfig | None = None, **kwargs):
        super().__init__()
        config = config if config is not None else AttributeGeneratorConfig(**kwargs)
        self.config = config
        source = Generator(config.generator)
        self.z_dim, self.w_dim, self.num_ws = source.z_dim, source.w_dim, source.num_ws
        self.img_resolution, self.img_channels = source.img_resolution, source.img_channels
        self.mapping = source.mapping
        blocks = {f"b{r}": getattr(source.synthesis, f"b{r}") for r in config.generator.block_resolutions}
        split = {f"b{r}" for r in config.split}
        self.shared = nn.ModuleDict({k: b for k, b in blocks.items() if k not in split})
        self.paths = nn.ModuleList(
            nn.ModuleDict({k: copy.deepcopy(blocks[k]) for k in blocks if k in split}) for _ in config.attributes
        )
        self._views = [self._view(i) for i in range(len(config.attributes))]  # not submodules: no second copy

    def _view(self, index: int) -> Generator:
        """A Generator made of the shared modules and path ``index``'s blocks (no tensors of its own)."""
        g = skeleton(self.config.generator)  # uninitialised and cheap: every module is replaced below
        g.mapping = self.mapping
        for name in self.shared:
            setattr(g.synthesis, name, self.shared[name])
        for name, block in self.paths[index].items():
            setattr(g.synthesis, name, block)
        return g.train(self.training)

    @classmethod
    def from_generator(
        cls, generator: Generator, attributes: Sequence[str] = ("A", "B"), split: Sequence[int] | None = None
    ) -> AttributeGenerator:
        """A copy of ``generator`` (never changed or shared) with its ``split`` blocks copied into every path."""
        config = AttributeGeneratorConfig(generator.config, tuple(attributes), None if split is None else tuple(split))
        net = skeleton(config, cls)
        state = {f"mapping.{k}": v for k, v in generator.mapping.state_dict().items()}
        for key, value in generator.synthesis.state_dict().items():
            block, _, rest = key.partition(".")
            if int(block[1:]) in config.split:
                state.update({f"paths.{i}.{block}.{rest}": value for i in range(len(config.attributes))})
            else:
                state[f"shared.{block}.{rest}"] = value
        net.load_state_dict(state, strict=True)  # copies the values
        device = next(generator.parameters()).device
        trainable = any(p.requires_grad for p in generator.parameters())
        return net.to(device).train(generator.training).requires_grad_(trainable)

    def train(self, mode: bool = True):
        super().train(mode)
        for view in getattr(self, "_views", []):
            view.training = view.synthesis.training = mode
        return self

    def attribute_index(self, attribute) -> int:
        """The path index of an attribute given by index or name."""
        names = self.config.attributes
        if isinstance(attribute, str):
            if attribute not in names:
                raise ValueError(f"unknown attribute {attribute!r}; this generator's attributes are {list(names)}")
            return names.index(attribute)
        if isinstance(attribute, bool) or not isinstance(attribute, int) or not 0 <= attribute < len(names):
            raise ValueError(
                f"unknown attribute index {attribute!r}; this generator has {len(names)} paths, indices "
                f"0..{len(names) - 1} ({list(names)})"
            )
        return attribute

    def path(self, attribute) -> Generator:
        """Path ``attribute`` (index or name) as a plain Generator sharing this generator's modules."""
        return self._views[self.attribute_index(attribute)]

    def attribute_indices(self, attributes, n: int, device=None) -> torch.Tensor:
        """``[n]`` path indices from one name/index for all samples, one per sample, or a 1-d integer tensor."""
        if isinstance(attributes, torch.Tensor):
            if attributes.is_floating_point() or attributes.is_complex() or attributes.ndim != 1:
                raise ValueError(
                    f"attributes must be a 1-d integer tensor, got {attributes.dtype} {list(attributes.shape)}"
                )
            attributes = attributes.tolist()
        elif isinstance(attributes, (int, str)):
            attributes = [attributes] * n
        attributes = list(attributes)
        if len(attributes) != n:
            raise ValueError(
                f"attributes must give one attribute per sample ({n}) or one for all, got {len(attributes)}"
            )
        return torch.tensor([self.attribute_index(a) for a in attributes], dtype=torch.long, device=device)

    def synthesize(
        self,
        ws: torch.Tensor,
        attributes,
        noise_mode: str = "random",
        noise=None,
        weight_offsets=None,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        """Render W+ ``ws [N, num_ws, w_dim]``, each sample with its attribute's path (the other arguments as
        ``SynthesisNetwork.forward``; per-sample noise maps and offsets follow their samples)."""
        n = ws.shape[0]
        index = self.attribute_indices(attributes, n, ws.device)
        out = None
        for p in index.unique().tolist():
            rows = (index == p).nonzero().squeeze(1)

            def take(t, rows=rows):  # a [N, 1, r, r] noise map follows its samples; [1, ...] and [r, r] are shared
                return t[rows] if isinstance(t, torch.Tensor) and t.ndim == 4 and t.shape[0] == n else t

            part_noise = (
                {k: take(v) for k, v in noise.items()}
                if isinstance(noise, dict)
                else [take(v) for v in noise]
                if noise is not None
                else None
            )
            part_offsets = {k: v[rows] for k, v in weight_offsets.items()} if weight_offsets else None
            img = self._views[p].synthesis(
                ws[rows], noise_mode=noise_mode, noise=part_noise, weight_offsets=part_offsets, **synthesis_kwargs
            )
            if out is None:
                out = img.new_empty(n, *img.shape[1:])
            out[rows] = img
        return out

    def forward(
        self,
        z: torch.Tensor,
        attributes,
        truncation_psi=1.0,
        truncation_cutoff=None,
        noise_mode: str = "random",
        **synthesis_kwargs,
    ) -> torch.Tensor:
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesize(ws, attributes, noise_mode=noise_mode, **synthesis_kwargs)
