#!/usr/bin/env python
"""Regenerate the sample checkpoints with TensorFlow itself.

    TF_USE_LEGACY_KERAS=1 python sample_checkpoints/make_samples.py [--only NAME ...] [--list]

The driver imports the generator modules listed in GENERATOR_MODULES (modules next to this file;
missing ones are skipped), each of which exposes ``GENERATORS = {name: generate}``. For every
selected sample it deletes and recreates ``sample_checkpoints/<name>/``, calls
``generate(folder)`` which writes the files and returns the manifest entry, checks the result
with ``tf.train.load_checkpoint`` against that entry, and finally merges the entries by name into
``sample_checkpoints/manifest.json`` (entries of samples not regenerated are kept).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

# Must be set before TensorFlow is imported (tf.compat.v1.nn.rnn_cell needs tf_keras).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
MAX_TOTAL_BYTES = 1024 * 1024

# Generator modules, in order. Add new ones here; absent modules are skipped.
GENERATOR_MODULES = ("samples_tf1", "samples_keras", "samples_tf2", "samples_onnx", "samples_tfjs", "samples_tflite",
                     "samples_torch", "samples_diff")


def load_generators() -> dict:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    generators = {}
    for module_name in GENERATOR_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        for name, fn in getattr(module, "GENERATORS", {}).items():
            if name in generators:
                raise SystemExit("duplicate sample name %r in %s" % (name, module_name))
            generators[name] = fn
    return generators


def expected_shapes(cell: dict) -> dict:
    """{checkpoint key: shape} implied by a manifest cell."""
    i, h = cell["input_size"], cell["units"]
    by_role = {
        "gates/kernel": [i + h, 2 * h],
        "gates/bias": [2 * h],
        "candidate/kernel": [i + h, h],
        "candidate/bias": [h],
        "candidate/input_projection/kernel": [i, h],
        "candidate/input_projection/bias": [h],
        "candidate/hidden_projection/kernel": [h, h],
        "candidate/hidden_projection/bias": [h],
    }
    return {key: by_role[role] for role, key in cell["tensors"].items()}


def verify_entry(entry: dict) -> None:
    """Load the written sample with TensorFlow and check it against its manifest entry."""
    if entry["format"] != "tf-checkpoint-v2":
        return  # other formats are checked by the generators that write them (e.g. samples_tf2)
    import numpy as np
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(HERE / entry["path"]))
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    listed = set(entry.get("other_tensors", ())) | set(entry.get("optimizer_slots", ()))
    for cell in entry["cells"]:
        for key, shape in expected_shapes(cell).items():
            assert key in shapes, "%s: missing %s" % (entry["name"], key)
            assert list(shapes[key]) == shape, (entry["name"], key, shapes[key], shape)
            assert dtypes[key].name == cell["dtype"], (entry["name"], key, dtypes[key])
            value = reader.get_tensor(key)
            assert value.shape == tuple(shape) and np.all(np.isfinite(value.astype(np.float64)))
            listed.add(key)
    assert listed == set(shapes), "%s: manifest lists %s, checkpoint has %s" % (
        entry["name"], sorted(listed), sorted(shapes))
    for key, info in entry.get("tensor_info", {}).items():
        assert dtypes[key].name == info["dtype"], (key, dtypes[key])
        assert list(shapes[key]) == info["shape"], (key, shapes[key])
        value = reader.get_tensor(key)
        if info["dtype"] == "string":
            assert [b.decode("utf-8") for b in value.reshape(-1).tolist()] == info["values"], key
        else:
            assert np.array_equal(value.astype(np.float64), np.array(info["values"], np.float64).reshape(info["shape"])), key


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="regenerate only these samples")
    parser.add_argument("--list", action="store_true", help="list the known samples and exit")
    args = parser.parse_args(argv)

    # TF1 APIs are deprecated; their warnings are noise here.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    generators = load_generators()
    if args.list:
        print("\n".join(generators))
        return 0
    names = args.only or list(generators)
    unknown = [n for n in names if n not in generators]
    if unknown:
        parser.error("unknown sample(s): %s (known: %s)" % (", ".join(unknown), ", ".join(generators)))

    entries = {}
    if MANIFEST.exists():
        for entry in json.loads(MANIFEST.read_text())["samples"]:
            entries[entry["name"]] = entry

    for name in names:
        folder = HERE / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        entry = generators[name](folder)
        assert entry["name"] == name, (entry["name"], name)
        verify_entry(entry)
        entries[name] = entry
        print("%-24s %6d bytes  %d cell(s)" % (name, folder_size(folder), len(entry["cells"])))

    import tensorflow as tf

    manifest = {
        "comment": "Written by make_samples.py; paths are relative to this folder.",
        "tensorflow": tf.__version__,
        "samples": [entries[n] for n in sorted(entries)],
    }
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    total = folder_size(HERE)
    print("total sample_checkpoints size: %d bytes" % total)
    if total > MAX_TOTAL_BYTES:
        print("WARNING: sample_checkpoints exceeds %d bytes" % MAX_TOTAL_BYTES, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
