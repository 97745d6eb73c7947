"""The command contracts of docs/contracts.md, exercised in-process with exact exit codes."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import ROOT, run_cli, sample_path, samples
from gruinspect.blocks import read_blocks
from gruinspect.inventory import open_cells

SINGLE = next(p.values[0] for p in samples() if p.id == "tf1_gru_single")
MULTI = next(p.values[0] for p in samples() if p.id == "tf1_multi_rnn")


def test_list_json_contract():
    data = json.loads(run_cli("list", sample_path(MULTI), "--json").stdout)
    assert data["source"] == {"path": sample_path(MULTI), "format": "tf-checkpoint-v2",
                              "files": [os.path.realpath(sample_path(MULTI) + ".index")]}  # list reads no data file
    assert [c["name"] for c in data["cells"]] == [c["name"] for c in MULTI["cells"]]
    for cell, expected in zip(data["cells"], MULTI["cells"]):
        for key in ("layout", "input_size", "units", "reset_after", "dtype"):
            assert cell[key] == expected[key]
        assert cell["parameters"] == sum(np.prod(t["shape"]) for t in cell["tensors"].values())


def test_list_all_includes_other_tensors():
    data = json.loads(run_cli("list", sample_path(SINGLE), "--all", "--json").stdout)
    by_name = {t["name"]: t for t in data["tensors"]}
    assert by_name["global_step"]["cell"] is None
    assert by_name["rnn/gru_cell/gates/kernel"]["cell"] == "rnn/gru_cell"
    assert by_name["rnn/gru_cell/gates/kernel/Adam"]["optimizer_slot"] is True
    text = run_cli("list", sample_path(SINGLE), "--all").stdout
    assert "global_step" in text and "rnn/gru_cell" in text


def test_list_text_is_plain_in_a_pipe_and_names_slices_with_long():
    out = run_cli("list", sample_path(SINGLE), "--long").stdout
    assert "\x1b[" not in out  # no terminal colours when not a terminal
    assert "rnn/gru_cell/gates/kernel[0:3, 0:4]" in out  # W_r
    assert "rnn/gru_cell/gates/kernel[3:7, 4:8]" in out  # U_z
    assert out.strip().splitlines()[-1].startswith("1 GRU cell (96 parameters), 3 other tensors and 8 optimizer slots")


def test_zero_cells_is_not_an_error():
    entry = next(p.values[0] for p in samples() if p.id == "no_gru")
    data = json.loads(run_cli("list", sample_path(entry), "--json").stdout)
    assert data["cells"] == []


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_split_writes_blocks_and_manifest(tmp_path):
    out = tmp_path / "blocks"
    run_cli("split", sample_path(MULTI), "--out", out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["format"] == "tf-checkpoint-v2"
    assert len(manifest["cells"]) == 2
    with open_cells(sample_path(MULTI)) as (store, inventory):
        for cell, entry in zip(inventory.cells, manifest["cells"]):
            assert entry["name"] == cell.name
            blocks = read_blocks(store, cell)
            assert len(entry["arrays"]) == 9
            for array in entry["arrays"]:
                path = out / array["file"]
                assert _sha(path) == array["sha256"]
                values = np.load(path)
                assert list(values.shape) == array["shape"] and str(values.dtype) == array["dtype"]
                np.testing.assert_array_equal(values, blocks[(array["gate"], array["role"])])
                assert array["source"]["tensor"] in cell.tensors.values()
                assert array["source"]["slice"].startswith("[")
    names = {os.path.basename(a["file"]) for a in manifest["cells"][0]["arrays"]}
    assert "reset_input_kernel.npy" in names and "candidate_bias.npy" in names


def test_split_refuses_a_non_empty_folder_and_force_replaces_it(tmp_path):
    out = tmp_path / "blocks"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = run_cli("split", sample_path(SINGLE), "--out", out, exit_code=2)
    assert "not empty" in result.stderr and "--force" in result.stderr
    assert (out / "mine.txt").read_text() == "keep me"
    run_cli("split", sample_path(SINGLE), "--out", out, "--force")
    assert not (out / "mine.txt").exists() and (out / "manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["blocks"]  # no temporary folders left


def test_split_never_deletes_its_input(tmp_path):
    folder = os.path.dirname(sample_path(SINGLE))
    result = run_cli("split", sample_path(SINGLE), "--out", folder, "--force", exit_code=2)
    assert "holds the input" in result.stderr
    assert os.path.exists(sample_path(SINGLE) + ".index")


def test_split_cell_glob_names_and_npz(tmp_path):
    out = tmp_path / "one"
    run_cli("split", sample_path(MULTI), "--out", out, "--cell", "*cell_1*", "--names", "--format", "npz")
    manifest = json.loads((out / "manifest.json").read_text())
    (cell,) = manifest["cells"]
    assert cell["name"] == "rnn/multi_rnn_cell/cell_1/gru_cell"
    with zipfile.ZipFile(out / cell["file"]) as zf:
        members = set(zf.namelist())
        assert {"W_r.npy", "U_z.npy", "b_h.npy", "reset_input_kernel.npy"} <= members
        for array in cell["arrays"]:
            data = zf.read(array["member"])
            assert hashlib.sha256(data).hexdigest() == array["sha256"]
    with np.load(out / cell["file"]) as npz:
        assert npz["W_r"].shape == (5, 3)


def test_split_unknown_cell_glob_is_a_usage_error(tmp_path):
    result = run_cli("split", sample_path(MULTI), "--out", tmp_path / "x", "--cell", "nope*", exit_code=2)
    assert "No cell matches" in result.stderr
    assert not (tmp_path / "x").exists()


def test_stats_json_contract():
    data = json.loads(run_cli("stats", sample_path(SINGLE), "--json").stdout)
    (cell,) = data["cells"]
    assert len(cell["blocks"]) == 9
    with open_cells(sample_path(SINGLE)) as (store, inventory):
        blocks = read_blocks(store, inventory.cells[0])
    for b in cell["blocks"]:
        values = blocks[(b["gate"], b["role"])].astype(np.float64)
        assert b["shape"] == list(values.shape)
        assert b["mean"] == pytest.approx(values.mean())
        assert b["std"] == pytest.approx(values.std())
        assert b["min"] == values.min() and b["max"] == values.max()
        assert b["l2_norm"] == pytest.approx(np.linalg.norm(values))
        assert b["zero_fraction"] == pytest.approx(np.mean(values == 0))
        assert b["nan_count"] == 0 and b["inf_count"] == 0


def test_stats_counts_nan_and_inf():
    from gruinspect.stats import block_stats

    s = block_stats("reset", "bias", np.array([1.0, np.nan, np.inf, 0.0, 3.0], np.float32), "float32")
    assert (s.nan_count, s.inf_count) == (1, 1)
    assert s.mean == pytest.approx(4 / 3) and s.zero_fraction == pytest.approx(0.2)


def test_missing_path_is_one_line_exit_2(tmp_path):
    result = run_cli("list", tmp_path / "nope", exit_code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gruinspect: error:") and "nope" in lines[0]


def test_every_command_has_help():
    from gruinspect.cli import _COMMANDS

    out = run_cli("--help").stdout
    for name in _COMMANDS:
        assert name in out
        help_text = run_cli(name, "--help").stdout
        assert "--json" in help_text and "--traceback" in help_text and len(help_text) > 200


def test_version():
    import gruinspect

    assert gruinspect.__version__ in run_cli("--version").stdout


def test_list_split_stats_never_import_tensorflow_and_list_reads_no_data(tmp_path):
    code = f"""
import sys
from gruinspect.cli import main
from gruinspect.formats import tf_bundle
reads = []
orig = tf_bundle.BundleStore._read_bytes_into
tf_bundle.BundleStore._read_bytes_into = lambda self, *a, **k: (reads.append(a[0]), orig(self, *a, **k))[1]
for args in (["list", {sample_path(MULTI)!r}, "--all"], ["list", {sample_path(MULTI)!r}, "--json"]):
    try:
        main(args)
    except SystemExit as e:
        assert e.code in (0, None), e.code
assert reads == [], reads
for args in (["stats", {sample_path(MULTI)!r}], ["split", {sample_path(MULTI)!r}, "--out", {str(tmp_path / "o")!r}]):
    try:
        main(args)
    except SystemExit as e:
        assert e.code in (0, None), e.code
assert reads, "stats and split read tensors"
bad = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "h5py")]
assert not bad, bad
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "gruinspect", "list", sample_path(SINGLE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "rnn/gru_cell" in result.stdout


@pytest.mark.parametrize("args, words", [
    (["list", "--bogus", "x"], "No such option '--bogus'"),
    (["frobnicate"], "No such command 'frobnicate'."),
    (["split", "x"], "Missing option '--out'"),
    (["convert", "x", "--to", "nowhere", "--out", "y"], "Invalid value for '--to'"),
])
def test_usage_errors_are_one_line_with_the_help_hint(args, words):
    result = run_cli(*args, exit_code=2)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gruinspect: error: ") and words in lines[0]
    assert "--help'" in lines[0] and result.stdout == ""


def test_an_unreadable_path_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "secret.ckpt.index"
    path.write_bytes(b"x" * 64)
    path.chmod(0)
    if os.geteuid() == 0:  # root reads everything: make the file unreadable to this process instead
        import builtins

        real_open = builtins.open

        def guarded(file, *args, **kwargs):
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded)
    result = run_cli("list", path, exit_code=2)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gruinspect: error: ") and str(path) in lines[0], result.stderr


def _console(*args, env=None):
    """The installed console script's function (gruinspect.cli.entry) in a child process, as a user runs it."""
    return subprocess.run([sys.executable, "-c", "import sys; from gruinspect.cli import entry; "
                                                 "sys.argv[0] = 'gruinspect'; entry()", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_plain_list_through_the_console_script_is_the_click_command_byte_for_byte(tmp_path):
    """`gruinspect list PATH...` with no option runs without importing click; everything it prints
    and its exit code are the click command's (forced with `--`), for every sample at once, one
    sample, a missing path and a file that is not a checkpoint."""
    bad = tmp_path / "notes.txt"
    bad.write_text("not a checkpoint\n")
    every = [sample_path(e.values[0]) for e in samples()]
    for paths in (every, every[:1], [every[0], tmp_path / "missing", bad], [bad]):
        quick, slow = _console("list", *paths), _console("list", "--", *paths)
        assert (quick.returncode, quick.stdout, quick.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert quick.returncode == 2 and quick.stderr.count("\n") == 1


def test_plain_list_imports_no_click_and_options_still_go_to_click():
    probe = ("import sys; from gruinspect.cli import entry\n"
             "sys.argv = ['gruinspect', *sys.argv[1:]]\n"
             "try:\n    entry()\nexcept SystemExit as exc:\n    code = exc.code\n"
             "print('CLICK' if 'click' in sys.modules else 'NO-CLICK', code, file=sys.stderr)\n")
    path = sample_path(samples()[0].values[0])
    for args, expected in ((["list", path], "NO-CLICK 0"), (["list", path, "--json"], "CLICK 0"),
                           (["list", "--help"], "CLICK 0"), (["stats", path], "CLICK 0")):
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT,
                             timeout=120)
        assert out.stderr.strip().splitlines()[-1] == expected, (args, out.stderr)
