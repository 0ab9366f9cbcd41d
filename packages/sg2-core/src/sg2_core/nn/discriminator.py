"""The StyleGAN2 residual discriminator with minibatch standard deviation (NVIDIA's names)."""

from __future__ import annotations

import math

import torch
from torch import nn

from sg2_core.nn.config import DiscriminatorConfig
from sg2_core.nn.generator import _check_shape
from sg2_core.nn.layers import Conv2dLayer, FullyConnectedLayer
from sg2_kernels import setup_filter


class DiscriminatorBlock(nn.Module):
    """fromRGB (first block only), conv0, downsampling conv1, and a downsampling 1x1 skip; (main + skip) / sqrt 2."""

    def __init__(self, in_channels, tmp_channels, out_channels, img_channels, resample_filter, conv_clamp):
        super().__init__()
        conv = dict(resample_filter=resample_filter, conv_clamp=conv_clamp)
        # unused by the residual architecture, kept so the state dict matches NVIDIA's key for key
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", **conv)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", **conv)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, **conv)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2, **conv)

    def forward(self, x, img):
        if img is not None:
            x = self.fromrgb(img)
        skip = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return skip.add_(x)


class MinibatchStdLayer(nn.Module):
    """Append the mean (over features and pixels) of the per-group standard deviation as extra channels."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(f"the batch size ({n}) must be a multiple of the minibatch-std group size ({g})")
        f = self.num_channels
        # samples i and j share a group when i = j (mod n / g), as in the references
        y = x.reshape(g, -1, f, c // f, h, w)
        # NVIDIA's order of operations, not y.var(unbiased=False): the two round differently, and R1's
        # second-order parameter gradients amplify it (on a 64 px network, 1.5e-4 relative to NVIDIA with
        # var(), 2.3e-6 with this)
        y = ((y - y.mean(dim=0)).square().mean(dim=0) + 1e-8).sqrt()  # [n/g, f, c/f, h, w]
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, channels, config: DiscriminatorConfig):
        super().__init__()
        self.mbstd = MinibatchStdLayer(config.mbstd_group_size, config.mbstd_num_channels)
        self.conv = Conv2dLayer(
            channels + config.mbstd_num_channels,
            channels,
            3,
            activation="lrelu",
            conv_clamp=config.conv_clamp,
            resample_filter=config.resample_filter,
        )
        self.fc = FullyConnectedLayer(channels * 16, channels, activation="lrelu")
        self.out = FullyConnectedLayer(channels, 1)

    def forward(self, x):
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    """image [N, C, R, R] -> logits [N, 1]."""

    def __init__(self, config: DiscriminatorConfig | None = None, **overrides):
        super().__init__()
        config = config or DiscriminatorConfig()
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        self.img_resolution, self.img_channels = config.resolution, config.img_channels
        self.block_resolutions = [2**k for k in range(int(math.log2(config.resolution)), 2, -1)]
        for res in self.block_resolutions:
            in_channels = 0 if res == config.resolution else config.channels(res)
            block = DiscriminatorBlock(
                in_channels,
                config.channels(res),
                config.channels(res // 2),
                config.img_channels,
                config.resample_filter,
                config.conv_clamp,
            )
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(config.channels(4), config)

    def forward(self, img, return_features=False):
        r = self.img_resolution
        _check_shape("img", img, [None, self.img_channels, r, r])
        x, features = None, {}
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img if x is None else None)
            if return_features:
                features[f"b{res}"] = x
        logits = self.b4(x)
        return (logits, features) if return_features else logits
