"""Store a native network file's weights as float16 (how the shipped demo encoders are made from a training
run's output): ``python halve_weights.py RUN/final.safetensors OUT.safetensors NAME[,NAME...]``.
The networks load back as float32 (``load_networks`` casts to each network's dtype); ``extra`` is kept."""

import sys

import torch

from sg2_core import load_networks, save_networks

if __name__ == "__main__":
    source, target, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    loaded = load_networks(source)
    save_networks(target, {name: loaded[name] for name in names}, extra=loaded.extra, dtype=torch.float16)
