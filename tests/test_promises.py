"""Promises the README makes that no other test holds: exit 141 on a closed pipe, and `stats` streaming
a large tensor instead of holding it whole."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import badinput
from conftest import SAMPLES
from gruinspect.formats._crc import masked_crc32c


def test_a_closed_pipe_exits_141_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the first write fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "gruinspect", "list", str(SAMPLES / "tf1_multi_rnn"), "--all"],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert result.returncode == 141, result.stderr
    assert result.stderr == ""


def _write_bundle(prefix: str, tensors: dict[str, np.ndarray]) -> None:
    """A TF V2 bundle as BundleWriter lays it out: sorted keys, tensors back to back, crc32c each."""
    rows, offset = [(b"", badinput.encode_header())], 0
    with open(prefix + ".data-00000-of-00001", "wb") as data:
        for name in sorted(tensors):
            raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
            data.write(raw)
            entry = {"dtype": 1, "dims": list(tensors[name].shape), "shard_id": 0, "offset": offset,
                     "size": len(raw), "crc": masked_crc32c(raw), "slices": []}
            rows.append((name.encode(), badinput.encode_entry(entry)))
            offset += len(raw)
    with open(prefix + ".index", "wb") as index:
        index.write(badinput.write_table(rows))


def _peak_rss_mib(args: list[str]) -> float:
    """Peak resident memory of `gruinspect ARGS`, measured as the only child of a fresh interpreter."""
    probe = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
             "assert r.returncode == 0, r.stderr\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "gruinspect", *args],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return int(out.stdout) / 1024  # ru_maxrss is in KiB on Linux


def test_stats_streams_a_large_tensor_instead_of_holding_it(tmp_path):
    inputs, units = 1024, 3072
    gates = np.empty((inputs + units, 2 * units), np.float32)  # 96 MiB: larger than the bound below
    gates[:] = np.linspace(-1, 1, gates.shape[1], dtype=np.float32)
    prefix = str(tmp_path / "model.ckpt")
    _write_bundle(prefix, {
        "rnn/gru_cell/gates/kernel": gates,
        "rnn/gru_cell/gates/bias": np.ones(2 * units, np.float32),
        "rnn/gru_cell/candidate/kernel": gates[:, :units],
        "rnn/gru_cell/candidate/bias": np.zeros(units, np.float32),
    })
    listed = subprocess.run([sys.executable, "-m", "gruinspect", "list", prefix, "--json"], capture_output=True,
                            text=True, timeout=120)
    assert json.loads(listed.stdout)["cells"][0]["units"] == units  # the bundle is what GRUCell writes
    tensor_mib = gates.nbytes / 2**20
    peak = _peak_rss_mib(["stats", prefix, "--json"])
    # Holding the 96 MiB tensor whole (plus numpy and the interpreter, ~40 MiB) would exceed this.
    assert peak < tensor_mib, f"stats peaked at {peak:.0f} MiB on a {tensor_mib:.0f} MiB tensor"
