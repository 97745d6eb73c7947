"""`report` and `stats --health` on the bad-input corpus (tests/badinput.py), a few cases per format.

Broken files end with one line and exit 2 and leave no report behind; valid but hostile files
(names with ``..``, newlines, markup, non-UTF-8 bytes) give a page that opens in Chromium without
errors; blind mutations end with exit 0 or 2, never a traceback.
"""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import badinput
from badinput import ANY, ERROR, OK, ON_READ
from test_report import PAGE_FACTS, browser  # noqa: F401  (the module's Chromium fixture)


def _selection() -> list:
    """Per format: the first case of each expectation, and every hostile-name case of one sample."""
    seen = set()
    out = []
    for case in badinput.cases():
        key = (case.format, case.expect)
        hostile = case.expect == OK and "/name-" in case.case_id and case.case_id.startswith(
            "tf-checkpoint-v2/tf1_gru_single/")
        if key in seen and not hostile:
            continue
        seen.add(key)
        out.append(pytest.param(case, id=case.case_id))
    return out


CASES = _selection()


def _run(*args):
    from gruinspect.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], prog_name="gruinspect", catch_exceptions=False)


def _one_error_line(result) -> str:
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gruinspect: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("case", CASES)
def test_report_and_health_on_bad_input(case, tmp_path, request):
    root = tmp_path / "in"
    root.mkdir()
    path = case.build(root)
    out = tmp_path / "out" / "report.html"
    expect = ERROR if case.expect == ON_READ else case.expect
    report = _run("report", path, "--out", out)
    health = _run("stats", path, "--health", "--json")
    for result in (report, health):
        wanted = {ANY: (0, 2), ERROR: (2,), OK: (0,)}[expect]
        assert result.exit_code in wanted, f"{case.case_id}: exit {result.exit_code}\n{result.stderr}"
        if result.exit_code:
            _one_error_line(result)
    if report.exit_code != 0:
        assert not (tmp_path / "out").exists(), "a failed report left files behind"
        return
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html
    assert set(re.findall(r'(?:src|href)="([^"]*)"', html)) <= {f"#cell-{i}" for i in range(1, 100)}
    if expect == OK:
        chromium = request.getfixturevalue("browser")
        visit, _ = chromium.open(str(out), evaluate=PAGE_FACTS)
        assert visit.problems == []
