"""The README stays true: its install/run/test commands are the ones CI uses, and the sample
output it shows is what the command prints today."""
from __future__ import annotations

import re

from conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks():
    return re.findall(r"```\n(.*?)```", README, flags=re.S)


def test_quick_start_commands_are_install_run_test():
    install, run, test = _blocks()[0].strip().splitlines()
    assert install == 'pip install ".[test]"'
    assert run.startswith("gruinspect ")
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet ".[test]"' in ci
    assert test in ci.splitlines()


def test_shown_output_is_what_the_main_command_prints(monkeypatch):
    run = _blocks()[0].strip().splitlines()[1]
    shown = _blocks()[1]
    monkeypatch.chdir(ROOT)
    assert run_cli(*run.split()[1:]).stdout == shown
