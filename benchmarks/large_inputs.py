#!/usr/bin/env python
"""Inputs whose largest tensor is about 400 MB, written by Keras 3 and TensorFlow themselves.

    python benchmarks/large_inputs.py write FOLDER --size full|small|tiny

One Keras 3 model, ``Sequential([Input((None, 64)), GRU(UNITS)])`` (UNITS 5800 at full size: the
recurrent kernel is 5800 x 17400 float32, 404 MB), saved three ways: ``model.save("model.h5")``
(the HDF5 model format), ``model.save("model.keras")`` (the zip archive) and
``tf.train.Checkpoint(model=model).write("ckpt/model")`` (a TF2 object-graph checkpoint, a V2
bundle). ``stats`` and ``split`` of each must stream that kernel, not hold it. Writes
FOLDER/info.json for run.py. The TF1 checkpoint with a 400 MB tensor is ``large_tf1.py``'s (tf_keras
and Keras 3 never share a process); :func:`with_tf1` adds it to the same groups.
"""
from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

UNITS = {"full": 5800, "small": 1450, "tiny": 16}
INPUTS = 64


def write(folder: str, size: str) -> None:
    os.environ.pop("TF_USE_LEGACY_KERAS", None)  # Keras 3, before TensorFlow is imported
    import keras
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    units = UNITS[size]
    init = keras.initializers.RandomUniform(-0.1, 0.1, seed=5)
    model = keras.Sequential([keras.Input((None, INPUTS)),
                              keras.layers.GRU(units, kernel_initializer=init, recurrent_initializer=init,
                                               bias_initializer=init)])
    paths = {"h5": os.path.join(folder, "model.h5"), "keras": os.path.join(folder, "model.keras"),
             "ckpt": os.path.join(folder, "ckpt", "model")}
    model.save(paths["h5"])
    model.save(paths["keras"])
    tf.train.Checkpoint(model=model).write(paths["ckpt"])
    info = {"size": size, "units": units, "inputs": INPUTS, "path": paths["h5"], "paths": paths,
            "largest_tensor_bytes": units * 3 * units * 4,
            "bytes": {k: os.path.getsize(p) if k != "ckpt" else os.path.getsize(p + ".data-00000-of-00001")
                      for k, p in paths.items()}}
    with open(os.path.join(folder, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)


# ------------------------------------------------------------------ run.py's groups and targets

BOUND_MIB = 150
KINDS = (("h5", "MODEL.h5 (Keras HDF5)"), ("keras", "MODEL.keras (Keras 3 archive)"),
         ("ckpt", "CKPT (TF2 checkpoint)"), ("tf1", "PREFIX (TF1 checkpoint)"))


def with_tf1(large: dict, tf1: dict | None) -> dict:
    """The Keras/TF2 inputs' info plus the TF1 checkpoint of benchmarks/large_tf1.py, when written."""
    large = dict(large, paths=dict(large["paths"]))
    large["largest"] = {k: large["largest_tensor_bytes"] for k in large["paths"]}
    if tf1:
        large["paths"]["tf1"] = tf1["path"]
        large["largest"]["tf1"] = tf1["largest_tensor_bytes"]
        large["tf1"] = tf1
    return large


def _kinds(large: dict) -> list[tuple[str, str]]:
    return [(k, label) for k, label in KINDS if k in large["paths"]]


def groups(large: dict, gi: list[str], gi_label: str, env: dict, out: str, Command, remover) -> list[tuple]:
    """(key, title, commands, reference, subject) of the stats-large and split-large groups."""
    mb = " / ".join(dict.fromkeys(f"{v / 1e6:.3g}" for v in sorted(large["largest"].values())))
    stats = [Command(k, f"{gi_label} stats {label}", gi + ["stats", large["paths"][k]], env=env)
             for k, label in _kinds(large)]
    split = [Command(k, f"{gi_label} split {label} --out OUT", gi + ["split", large["paths"][k], "--out",
                                                                     out + "/split"],
                     env=env, prepare=remover(out + "/split")) for k, label in _kinds(large)]
    split.append(Command("cp", "cp MODEL.h5 OUT (the same bytes)", ["cp", large["paths"]["h5"], out + "/cp.h5"],
                         env=env, prepare=remover(out + "/cp.h5")))
    return [("stats-large", f"stats: largest tensor {mb} MB", stats, "h5", "h5"),
            ("split-large", f"split: largest tensor {mb} MB", split, "cp", "h5")]


def targets(by_key: dict, large: dict, add) -> None:
    for key in ("stats-large", "split-large"):
        group = by_key.get(key)
        if not group:
            continue
        for kind, label in _kinds(large):
            mb = large["largest"][kind] / 1e6
            cmd = next((c for c in group["commands"] if c.key == kind and c.ok), None)
            add(f"`{key.split('-')[0]}` of {label.split(' ', 1)[1][1:-1]} with a {mb:.3g} MB tensor: peak memory",
                cmd and cmd.peak_mib(), "{:.0f} MiB", lambda v: v <= BOUND_MIB, f"<= {BOUND_MIB} MiB")


def main(writer=write, sizes=UNITS, description=__doc__) -> None:
    """``SCRIPT write FOLDER --size SIZE``: the command line of this module and of large_tf1.py."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("action", choices=["write"])
    parser.add_argument("folder")
    parser.add_argument("--size", choices=sorted(sizes), default="full")
    args = parser.parse_args()
    writer(args.folder, args.size)


if __name__ == "__main__":
    main()
