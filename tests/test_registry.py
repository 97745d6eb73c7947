"""The registries stay whole: every layout, reader and convert target has all its parts.

A layout without equations, an oracle (or a stated reason), a sample or a verdict row; a reader
without a sample or a bad-input generator; a convert target missing from ``--to``'s help: each is
a failure here, not a check that quietly reports SKIPPED elsewhere. The checks are functions so
that deliberately broken entries can show they fail.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import badinput
from conftest import SAMPLES, run_cli
from gruinspect import formats, layouts
from gruinspect.convert import TARGETS, target_module
from gruinspect.layouts.spec import ConventionRow, LayoutSpec, Oracle, Ref

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))["samples"]
# Formats whose bad inputs come from the generic HDF5 and zip corpus (tests/badinput.py hdf5_cases,
# zip_cases) rather than a generator of their own.
GENERIC_CORPUS = {"keras-h5", "keras-h5-weights", "keras3-archive", "keras3-folder", "keras3-weights-h5",
                  "keras3-weights-sharded"}


def layout_problems(spec: LayoutSpec) -> list[str]:
    """Every part a layout spec lacks, as sentences (empty when it is whole)."""
    problems = []
    for part in ("find_cells", "equations"):
        ref = getattr(spec, part)
        try:
            if not callable(ref.resolve()):
                problems.append(f"{part} {ref.path} is not callable")
        except (ImportError, AttributeError, ValueError) as exc:
            problems.append(f"{part} {ref.path} does not resolve: {exc}")
    if not spec.equations_source.strip():
        problems.append("no equations_source")
    if spec.oracle is not None:
        for ref in filter(None, (spec.oracle.run, spec.oracle.needs_for)):
            try:
                ref.resolve()
            except (ImportError, AttributeError, ValueError) as exc:
                problems.append(f"oracle {ref.path} does not resolve: {exc}")
    elif not (spec.no_oracle_reason or "").strip():
        problems.append("neither an oracle nor a reason why there is none")
    if not spec.conventions:
        problems.append("no convention row for the convert verdict table")
    if not spec.samples:
        problems.append("no sample")
    for name in spec.samples:
        entry = next((e for e in MANIFEST if e["name"] == name), None)
        if entry is None:
            problems.append(f"sample {name} is not in sample_checkpoints/manifest.json")
        elif spec.name not in {c["layout"] for c in entry["cells"]}:
            problems.append(f"sample {name} holds no {spec.name} cell")
    for name, pair in spec.transforms.items():
        for ref in pair:
            try:
                ref.resolve()
            except (ImportError, AttributeError, ValueError) as exc:
                problems.append(f"transform {name} {ref.path} does not resolve: {exc}")
    return problems


@pytest.mark.parametrize("spec", layouts.specs(), ids=lambda s: s.name)
def test_every_layout_is_whole(spec):
    assert layout_problems(spec) == []


def test_layout_names_are_unique_and_every_sample_layout_is_registered():
    names = [s.name for s in layouts.specs()]
    assert len(names) == len(set(names))
    in_samples = {c["layout"] for e in MANIFEST for c in e["cells"]}
    assert in_samples <= set(names), in_samples - set(names)


def _whole():
    return layouts.spec_for("tf-gru-cell")


@pytest.mark.parametrize("change, expected", [
    ({"equations": Ref("gruinspect.layouts.tf_gru_cell:no_such_function")}, "equations"),
    ({"find_cells": Ref("gruinspect.layouts.no_such_module:find_cells")}, "find_cells"),
    ({"conventions": ()}, "convention row"),
    ({"samples": ()}, "no sample"),
    ({"samples": ("no_gru",)}, "holds no tf-gru-cell cell"),
    ({"samples": ("not_a_sample",)}, "not in sample_checkpoints"),
    ({"oracle": Oracle(Ref("gruinspect.oracle.tf1:nothing_here"), needs=())}, "oracle"),
    ({"equations_source": " "}, "equations_source"),
])
def test_an_incomplete_layout_entry_fails(change, expected):
    broken = _whole().replace(**change)
    problems = layout_problems(broken)
    assert any(expected in p for p in problems), problems


def test_a_layout_without_oracle_must_say_why():
    with pytest.raises(ValueError, match="oracle"):
        _whole().replace(oracle=None)
    _whole().replace(oracle=None, no_oracle_reason="the framework cell needs a GPU")


def reader_problems(module) -> list[str]:
    problems = []
    for attr in ("FORMATS", "sniff", "open"):
        if not hasattr(module, attr):
            problems.append(f"no {attr}")
    for fmt in getattr(module, "FORMATS", ()):
        if not any(e["format"] == fmt for e in MANIFEST):
            problems.append(f"format {fmt} has no sample")
        if fmt not in badinput.GENERATORS and fmt not in GENERIC_CORPUS:
            problems.append(f"format {fmt} has no bad-input generator")
    return problems


@pytest.mark.parametrize("name", formats.READERS)
def test_every_reader_is_whole(name):
    assert reader_problems(formats._reader(name)) == []


def test_an_incomplete_reader_entry_fails():
    class Reader:
        FORMATS = ("made-up-format",)

        @staticmethod
        def sniff(path):
            return None

    problems = reader_problems(Reader)
    assert "no open" in problems
    assert "format made-up-format has no sample" in problems
    assert "format made-up-format has no bad-input generator" in problems


def test_every_convert_target_is_offered_and_whole():
    help_text = run_cli("convert", "--help").stdout
    for target in TARGETS:
        assert target in help_text, target
        module = target_module(target)
        for attr in ("CAPS", "check_dependencies", "layer_notes", "write", "implementation", "run"):
            assert hasattr(module, attr), (target, attr)


def _layout_literals() -> set[str]:
    return {s.name for s in layouts.specs()}


def test_no_layout_name_is_compared_outside_layouts():
    """What a convention means lives in its layout module: code elsewhere asks the spec."""
    names = _layout_literals()
    offenders = []
    for path in sorted((ROOT / "gruinspect").rglob("*.py")):
        if "layouts" in path.relative_to(ROOT / "gruinspect").parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for operand in [node.left, *node.comparators]:
                    if isinstance(operand, ast.Constant) and operand.value in names:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} compares with {operand.value!r}")
    assert offenders == []


def test_convention_rows_are_what_the_readme_table_shows():
    from gruinspect.convert import conventions

    rows = [row for spec in layouts.specs() for row in spec.conventions]
    assert all(isinstance(r, ConventionRow) for r in rows)
    seen_in = "; ".join(s for _, s in conventions())
    for row in rows:
        assert row.seen_in in seen_in
