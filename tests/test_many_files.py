"""Several PATHs in one run: list, stats and verify give one result per file, the worst exit code.

The per-file results are compared with what the same command prints for that file alone (whose
JSON is the docs/contracts.md contract, checked against the framework's own readers elsewhere), so a
multi-file run that dropped, reordered or changed a file's result fails here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, run_cli, sample_path, samples

BY_ID = {p.id: p.values[0] for p in samples()}
TF1 = sample_path(BY_ID["tf1_gru_single"])
KERAS = sample_path(BY_ID["keras3_archive"])
EMPTY = sample_path(BY_ID["no_gru"])


def _alone(*args):
    return json.loads(run_cli(*args).stdout)


def test_one_path_prints_its_result_alone_as_before():
    data = _alone("list", TF1, "--json")
    assert "files" not in data and data["source"]["path"] == TF1
    data = _alone("stats", TF1, "--json")
    assert "files" not in data and data["cells"]


def test_list_many_is_one_document_with_each_files_own_result(tmp_path):
    missing = str(tmp_path / "missing.ckpt")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    result = run_cli("list", TF1, missing, KERAS, str(garbage), "--all", "--json", exit_code=2)
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 2
    assert [f["path"] for f in doc["files"]] == [TF1, missing, KERAS, str(garbage)]
    assert doc["files"][0] == {"path": TF1, "exit_code": 0, "result": _alone("list", TF1, "--all", "--json")}
    assert doc["files"][2] == {"path": KERAS, "exit_code": 0, "result": _alone("list", KERAS, "--all", "--json")}
    for bad in (doc["files"][1], doc["files"][3]):
        assert bad["exit_code"] == 2 and "result" not in bad and "\n" not in bad["error"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and errors[0].startswith(f"gruinspect: error: {missing}: ")
    assert errors[1].startswith(f"gruinspect: error: {garbage}: ")


def test_jsonl_is_one_entry_per_line_in_path_order():
    lines = run_cli("stats", KERAS, TF1, "--jsonl").stdout.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["path"] for e in entries] == [KERAS, TF1]
    assert entries[1]["result"] == _alone("stats", TF1, "--json")
    # one PATH with --jsonl is one line too
    (only,) = run_cli("list", TF1, "--jsonl").stdout.splitlines()
    assert json.loads(only) == {"path": TF1, "exit_code": 0, "result": _alone("list", TF1, "--json")}


def test_text_output_names_every_file_and_goes_on_after_a_bad_one(tmp_path):
    missing = str(tmp_path / "missing")
    result = run_cli("list", missing, TF1, exit_code=2)
    assert f"== {TF1}" in result.stdout and "1 GRU cell (96 parameters)" in result.stdout
    assert result.stderr.count("gruinspect: error:") == 1


def _gruinspect(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "gruinspect", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


def test_verify_many_with_jobs_in_worker_processes_gives_the_worst_exit_code(tmp_path):
    missing = str(tmp_path / "missing")
    args = ["verify", TF1, EMPTY, KERAS, "--oracle", "numpy", "--json"]
    alone = {p: json.loads(_gruinspect("verify", p, "--oracle", "numpy", "--json").stdout) for p in (TF1, KERAS)}
    parallel = _gruinspect(*args, "--jobs", "2")
    assert parallel.returncode == 1, parallel.stderr  # no GRU cell in EMPTY: exit 1, the worst here
    doc = json.loads(parallel.stdout)
    assert [f["exit_code"] for f in doc["files"]] == [0, 1, 0] and doc["exit_code"] == 1
    assert doc["files"][0]["result"] == alone[TF1] and doc["files"][2]["result"] == alone[KERAS]
    sequential = _gruinspect(*args)
    assert json.loads(sequential.stdout) == doc
    with_missing = _gruinspect("verify", TF1, missing, "--oracle", "numpy", "--jobs", "2", "--jsonl")
    assert with_missing.returncode == 2
    entries = [json.loads(line) for line in with_missing.stdout.splitlines()]
    assert [e["exit_code"] for e in entries] == [0, 2] and entries[0]["result"]["cells"]
    assert with_missing.stderr.count("gruinspect: error:") == 1


def test_verify_options_for_one_path_refuse_several(tmp_path):
    result = run_cli("verify", TF1, KERAS, "--exported", str(tmp_path), exit_code=2)
    assert "--exported takes a single PATH" in result.stderr
