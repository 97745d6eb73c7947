#!/usr/bin/env python
"""The PyTorch benchmark input and its torch baselines (run by ``run.py`` in their own processes).

    python benchmarks/torch_inputs.py write DIR --size full|small|tiny
    python benchmarks/torch_inputs.py torch-list MODEL.pt
    python benchmarks/torch_inputs.py torch-stats MODEL.pt

``write`` saves with ``torch.save`` the state_dict of ``gru = nn.GRU(units, units, num_layers=4)``
(weight_ih and weight_hh [3 * units, units] float32 per layer: 100 MB per layer at 2048 units,
so about 400 MB in all, largest tensor 48 MiB) into ``DIR/model.pt``, and ``DIR/info.json``.
``torch-list`` is what a user writes to see the names and shapes: ``torch.load(weights_only=True)``
(which reads every storage) and a walk over the keys. ``torch-stats`` adds numpy statistics of
every gate block, as ``gruinspect stats`` prints them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

SIZES = {"full": 2048, "small": 512, "tiny": 16}
LAYERS = 4


def write(folder: str, size: str) -> dict:
    import torch

    units = SIZES[size]
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    with torch.no_grad():
        model = torch.nn.Module()
        model.gru = torch.nn.GRU(units, units, num_layers=LAYERS)
    path = os.path.join(folder, "model.pt")
    torch.save(model.state_dict(), path)
    info = {"size": size, "path": path, "bytes": os.path.getsize(path), "units": units, "layers": LAYERS,
            "largest_tensor_bytes": 3 * units * units * 4}
    with open(os.path.join(folder, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f)
    return info


def torch_list(path: str, stats: bool = False) -> None:
    import torch

    state = torch.load(path, weights_only=True, map_location="cpu")
    for name, tensor in state.items():
        print(name, list(tensor.shape), tensor.dtype)
        if stats and tensor.ndim and tensor.shape[0] % 3 == 0:
            import numpy as np

            for block in np.split(tensor.numpy(), 3):
                b = block.astype(np.float64)
                print(b.mean(), b.std(), b.min(), b.max(), np.sqrt((b * b).sum()), (b == 0).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("folder")
    w.add_argument("--size", choices=sorted(SIZES), default="full")
    for name in ("torch-list", "torch-stats"):
        sub.add_parser(name).add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.folder, args.size)
    else:
        torch_list(args.path, stats=args.command == "torch-stats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
