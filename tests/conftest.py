"""Shared test helpers: the sample manifest and an in-process CLI runner that checks exit codes."""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_checkpoints"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# In CI every framework and oracle the suite uses is installed by .ci/run: a missing one is a
# broken install, which must fail the run instead of skipping its tests (a green run that tested
# nothing). Outside CI a developer without, say, torch still gets the rest of the suite.
STRICT = os.environ.get("CI", "").lower() == "true"
_importorskip = pytest.importorskip


def _strict_importorskip(modname, minversion=None, reason=None, **kwargs):
    if not STRICT:
        return _importorskip(modname, minversion=minversion, reason=reason, **kwargs)
    return importlib.import_module(modname)  # ImportError: the test errors, CI fails


pytest.importorskip = _strict_importorskip


def require_or_skip(reason: str):
    """Skip with ``reason`` outside CI; in CI, fail: what the test needs must be installed there."""
    if STRICT:
        pytest.fail(f"{reason} (CI=true: .ci/run must install it)")
    pytest.skip(reason)


def manifest() -> list[dict]:
    with open(SAMPLES / "manifest.json", encoding="utf-8") as f:
        return json.load(f)["samples"]


def samples(*, formats=None, layouts=None, with_cells=None) -> list:
    """Manifest entries as pytest params (id = sample name), filtered by format and cell layouts."""
    out = []
    for entry in manifest():
        if formats and entry["format"] not in formats:
            continue
        entry_layouts = {c["layout"] for c in entry["cells"]}
        if layouts and not entry_layouts & set(layouts):
            continue
        if with_cells is not None and bool(entry["cells"]) != with_cells:
            continue
        out.append(pytest.param(entry, id=entry["name"]))
    return out


def sample_path(entry: dict) -> str:
    return str(SAMPLES / entry["path"])


def run_cli(*args, exit_code: int = 0):
    """Run `gruinspect ARGS` in-process; fail with its output if the exit code is not ``exit_code``."""
    from gruinspect.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], prog_name="gruinspect", catch_exceptions=False)
    assert result.exit_code == exit_code, (
        f"gruinspect {' '.join(map(str, args))} exited {result.exit_code}, expected {exit_code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


@pytest.fixture
def cli():
    return run_cli


BAD_INPUTS: dict[str, int] = {}  # format -> bad inputs tried, filled by test_bad_input.py


def pytest_terminal_summary(terminalreporter):
    if BAD_INPUTS:
        terminalreporter.section("bad inputs tried")
        for fmt, count in sorted(BAD_INPUTS.items()):
            terminalreporter.write_line(f"{fmt}: {count}")
        terminalreporter.write_line(f"total: {sum(BAD_INPUTS.values())}")
