"""Keras files stream: `stats` and `split` read a large HDF5 dataset by rows, never whole.

The files are written by Keras 3 itself (`model.save` of a `.keras` archive and of a legacy
`.h5` model, `model.save_weights` of a `.weights.h5`) with one recurrent kernel of 108 MiB; each
command runs as a real process whose peak resident memory must stay below that one tensor's
size, which holding it whole (plus numpy, h5py and the interpreter) would exceed. The streamed
results are compared with those of the same store read whole, so a stream that skipped or
misplaced rows fails too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from test_promises import _peak_rss_mib

INPUTS, UNITS = 256, 3072
TENSOR_MIB = UNITS * 3 * UNITS * 4 / 2**20  # the recurrent kernel, float32

_WRITE = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
folder, inputs, units = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
init = keras.initializers.RandomUniform(-0.5, 0.5, seed=1)
model = keras.Sequential([keras.Input((None, inputs)),
                          keras.layers.GRU(units, kernel_initializer=init, recurrent_initializer=init,
                                           bias_initializer=init)])
model.save(os.path.join(folder, "model.keras"))
model.save(os.path.join(folder, "model.h5"))
model.save_weights(os.path.join(folder, "model.weights.h5"))
"""


@pytest.fixture(scope="module")
def large_keras_files(tmp_path_factory):
    if not os.environ.get("CI"):
        pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("large_keras")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run([sys.executable, "-c", _WRITE, str(folder), str(INPUTS), str(UNITS)], check=True, env=env,
                   timeout=600, capture_output=True)
    return {name: str(folder / name) for name in ("model.keras", "model.h5", "model.weights.h5")}


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "model.weights.h5"])
def test_stats_and_split_of_a_large_keras_tensor_stream(large_keras_files, name, tmp_path):
    path = large_keras_files[name]
    listed = json.loads(subprocess.run([sys.executable, "-m", "gruinspect", "list", path, "--json"],
                                       capture_output=True, text=True, timeout=120, check=True).stdout)
    assert [(c["input_size"], c["units"]) for c in listed["cells"]] == [(INPUTS, UNITS)]
    peak = _peak_rss_mib(["stats", path, "--json"])
    assert peak < TENSOR_MIB, f"stats peaked at {peak:.0f} MiB on a {TENSOR_MIB:.0f} MiB tensor"
    out = tmp_path / "split"
    peak = _peak_rss_mib(["split", path, "--out", str(out)])
    assert peak < TENSOR_MIB, f"split peaked at {peak:.0f} MiB on a {TENSOR_MIB:.0f} MiB tensor"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["cells"]) == 1


def test_streamed_blocks_equal_the_tensor_read_whole(large_keras_files, tmp_path):
    from gruinspect.blocks import read_blocks
    from gruinspect.inventory import open_cells
    from gruinspect.splitting import split

    path = large_keras_files["model.h5"]
    out = tmp_path / "split"
    split(path, str(out))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    with open_cells(path) as (store, inventory):
        (cell,) = inventory.cells
        assert all(store.row_reader(t) is not None for t in cell.tensors.values())  # the stream is used
        blocks = read_blocks(store, cell)  # slices of the tensors read whole
    (entry,) = manifest["cells"]
    assert len(entry["arrays"]) == len(blocks)
    for array in entry["arrays"]:
        np.testing.assert_array_equal(np.load(out / array["file"]), blocks[(array["gate"], array["role"])])
