"""Differentiable augmentation for training on small datasets, with ADA's adaptive probability controller.

This is a simpler alternative to StyleGAN2-ADA's augmentation pipeline, not a reimplementation of it:
the operations are DiffAugment's (Zhao et al. 2020) -- xflip, integer translation, brightness, saturation,
contrast, cutout -- each applied per sample with probability ``p`` (ADA's idea), and ``p`` can be tuned
by ADA's controller (Karras et al. 2020) in ``AdaptiveAugment``. Unlike ADA there are no
fractional translations, scaling, rotations, colour-space rotations, hue changes or filtering, and no
analysis of which probabilities stay non-leaking for these ops: keep ``p`` moderate (ADA found its
pipeline non-leaking below p ~ 0.8) and watch generated samples for augmentations leaking into G (e.g.
cut-out squares or flipped text). Apply the same augmentation to real and fake images
before D, every time D sees them (including the R1 pass).

All randomness comes from the torch RNG: a ``torch.Generator`` passed in, or the global one, so a seeded
run is reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["OPS", "AdaptiveAugment", "DiffAugment", "augment"]

OPS = ("xflip", "translation", "brightness", "saturation", "contrast", "cutout")


def _rand(n: int, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` uniform numbers in [0, 1), drawn on the generator's device (or the images'), moved to the images'."""
    device = generator.device if generator is not None else images.device
    return torch.rand(n, generator=generator, device=device).to(images.device)


def _randint(low: int, high: int, n: int, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else images.device
    return torch.randint(low, high, (n,), generator=generator, device=device).to(images.device)


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def _translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, max_shift: int, padding: str) -> torch.Tensor:
    """Shift each image by integer (dy, dx) pixels (content moves down/right for positive values)."""
    n, c, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, mode="constant" if padding == "zeros" else "reflect")
    rows = (torch.arange(h, device=x.device) + max_shift).view(1, 1, h, 1) - dy.view(n, 1, 1, 1)
    cols = (torch.arange(w, device=x.device) + max_shift).view(1, 1, 1, w) - dx.view(n, 1, 1, 1)
    out = padded.gather(2, rows.expand(n, c, h, padded.shape[3]))  # gather keeps the gradient w.r.t. x
    return out.gather(3, cols.expand(n, c, h, w))


def augment(
    images: torch.Tensor,
    p,
    *,
    ops=OPS,
    translation: float = 1 / 8,
    padding: str = "zeros",
    brightness: float = 0.5,
    saturation: float = 1.0,
    contrast: float = 0.5,
    cutout: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augment float images ``[N, C, H, W]`` in [-1, 1]: each op in ``ops`` hits each sample with probability ``p``.

    - ``xflip``: mirror left-right.
    - ``translation``: integer shift up to ``translation * size`` pixels in x and y, the uncovered border
      filled by ``padding``: ``"zeros"`` (0, mid-grey in [-1, 1]) or ``"reflect"``.
    - ``brightness``: add U(-b, b) to the whole image.
    - ``saturation``: scale the deviation from the per-pixel channel mean by U(1 - s, 1 + s); a no-op for
      one-channel images.
    - ``contrast``: scale the deviation from the image mean by U(1 - c, 1 + c).
    - ``cutout``: zero a square of side ``cutout * size`` centred anywhere in the image (clipped at the borders).

    Differentiable w.r.t. ``images``; dtype, device and shape are kept. ``p == 0`` returns ``images`` itself
    and draws no random numbers.
    """
    if images.ndim != 4 or not torch.is_floating_point(images):
        raise ValueError(
            f"augment expects float images [N, C, H, W], got shape {tuple(images.shape)} and dtype {images.dtype}"
        )
    p_value = float(p)
    if not 0 <= p_value <= 1:
        raise ValueError(f"the augmentation probability p must be in [0, 1], got {p_value}")
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ValueError(f"unknown augmentation ops {unknown}; known: {list(OPS)}")
    if padding not in ("zeros", "reflect"):
        raise ValueError(f"padding must be 'zeros' or 'reflect', got {padding!r}")
    if p_value == 0 or images.shape[0] == 0:
        return images
    n, c, h, w = images.shape
    x = images

    def hit() -> torch.Tensor:  # which samples this op applies to
        return _rand(n, x, generator) < p_value

    for op in OPS:  # a fixed order, whatever the order of ``ops``
        if op not in ops:
            continue
        if op == "xflip":
            x = torch.where(_per_sample(hit()), x.flip(3), x)
        elif op == "translation":
            max_shift = int(min(h, w) * translation)
            if max_shift < 1:
                continue
            mask = hit().to(torch.long)
            dy = _randint(-max_shift, max_shift + 1, n, x, generator) * mask
            dx = _randint(-max_shift, max_shift + 1, n, x, generator) * mask
            x = _translate(x, dy, dx, max_shift, padding)
        elif op == "brightness":
            shift = (_rand(n, x, generator) * 2 - 1) * brightness * hit()
            x = x + _per_sample(shift).to(x.dtype)
        elif op == "saturation":
            if c == 1:
                continue
            factor = torch.where(hit(), 1 + (_rand(n, x, generator) * 2 - 1) * saturation, 1.0)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * _per_sample(factor).to(x.dtype) + mean
        elif op == "contrast":
            factor = torch.where(hit(), 1 + (_rand(n, x, generator) * 2 - 1) * contrast, 1.0)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * _per_sample(factor).to(x.dtype) + mean
        elif op == "cutout":
            size = max(1, int(round(min(h, w) * cutout)))
            mask = hit()
            cy, cx = _randint(0, h, n, x, generator), _randint(0, w, n, x, generator)
            y0, x0 = (cy - size // 2).view(n, 1, 1), (cx - size // 2).view(n, 1, 1)
            ys = torch.arange(h, device=x.device).view(1, h, 1)
            xs = torch.arange(w, device=x.device).view(1, 1, w)
            inside = (ys >= y0) & (ys < y0 + size) & (xs >= x0) & (xs < x0 + size) & mask.view(n, 1, 1)
            x = x * (~inside).unsqueeze(1).to(x.dtype)
    return x


class DiffAugment(torch.nn.Module):
    """``augment`` with its options stored: ``DiffAugment(ops=..., padding="reflect")(images, p, generator)``."""

    def __init__(
        self,
        ops=OPS,
        *,
        translation: float = 1 / 8,
        padding: str = "zeros",
        brightness: float = 0.5,
        saturation: float = 1.0,
        contrast: float = 0.5,
        cutout: float = 0.5,
    ):
        super().__init__()
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise ValueError(f"unknown augmentation ops {unknown}; known: {list(OPS)}")
        if padding not in ("zeros", "reflect"):
            raise ValueError(f"padding must be 'zeros' or 'reflect', got {padding!r}")
        self.ops = tuple(ops)
        self.options = dict(
            translation=translation,
            padding=padding,
            brightness=brightness,
            saturation=saturation,
            contrast=contrast,
            cutout=cutout,
        )

    def forward(self, images: torch.Tensor, p, generator: torch.Generator | None = None) -> torch.Tensor:
        return augment(images, p, ops=self.ops, generator=generator, **self.options)

    def extra_repr(self) -> str:
        return f"ops={self.ops}, " + ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class AdaptiveAugment(torch.nn.Module):
    """The augmentation pipeline plus ADA's controller of its probability ``p``.

    Call ``update(real_logits)`` after every D step: the signs of D's logits on reals are accumulated, and
    every ``interval`` steps ``r_t = mean(sign(logits))`` moves ``p`` by
    ``sign(r_t - target) * images / speed_images`` (``images`` = the reals seen in the interval, i.e.
    batch x interval), clamped to [0, 1]. ``target=None`` keeps ``p`` fixed at ``initial_p``.
    ``forward(images, generator=None)`` augments with the current ``p``. ``p``, ``rt`` (the last r_t, for
    logs) and the accumulators are buffers, so ``state_dict()`` resumes the controller exactly. Under
    ``torch.distributed`` the accumulators are summed over ranks before each adjustment.
    """

    def __init__(
        self,
        target: float | None = 0.6,
        speed_images: float = 500_000,
        interval: int = 4,
        initial_p: float = 0.0,
        **augment_options,
    ):
        super().__init__()
        if target is not None and not 0 <= target <= 1:
            raise ValueError(f"target must be in [0, 1] (or None for a fixed p), got {target}")
        if speed_images <= 0 or interval < 1:
            raise ValueError(f"need speed_images > 0 and interval >= 1, got {speed_images} and {interval}")
        if not 0 <= initial_p <= 1:
            raise ValueError(f"initial_p must be in [0, 1], got {initial_p}")
        self.target, self.speed_images, self.interval = target, float(speed_images), int(interval)
        self.pipe = DiffAugment(**augment_options)
        f64 = dict(dtype=torch.float64)
        self.register_buffer("p_tensor", torch.tensor(float(initial_p), **f64))
        self.register_buffer("rt", torch.tensor(float("nan"), **f64))
        self.register_buffer("sign_sum", torch.tensor(0.0, **f64))
        self.register_buffer("num_logits", torch.tensor(0.0, **f64))
        self.register_buffer("num_images", torch.tensor(0.0, **f64))
        self.register_buffer("num_steps", torch.tensor(0, dtype=torch.int64))

    @property
    def p(self) -> float:
        return float(self.p_tensor)

    @property
    def adaptive(self) -> bool:
        return self.target is not None

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.pipe(images, self.p, generator)

    @torch.no_grad()
    def update(self, real_logits: torch.Tensor) -> bool:
        """Record one D step's logits on real images; return True when ``p`` was adjusted."""
        if not self.adaptive:
            return False
        logits = real_logits.detach()
        if logits.ndim == 0 or logits.numel() == 0 or not torch.isfinite(logits).all():
            raise ValueError(f"update expects finite logits [N, ...] on real images, got shape {tuple(logits.shape)}")
        self.sign_sum += logits.sign().sum().to(self.sign_sum)
        self.num_logits += logits.numel()
        self.num_images += logits.shape[0]
        self.num_steps += 1
        if int(self.num_steps) < self.interval:
            return False
        stats = torch.stack([self.sign_sum, self.num_logits, self.num_images])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)
        sign_sum, num_logits, num_images = stats
        self.rt.copy_(sign_sum / num_logits)
        step = torch.sign(self.rt - self.target) * num_images / self.speed_images
        self.p_tensor.copy_((self.p_tensor + step).clamp(0, 1))
        for buffer in (self.sign_sum, self.num_logits, self.num_images, self.num_steps):
            buffer.zero_()
        return True

    def extra_repr(self) -> str:
        mode = (
            f"target={self.target}, speed_images={self.speed_images:g}, interval={self.interval}"
            if self.adaptive
            else "fixed"
        )
        return f"p={self.p:.4f}, {mode}"
