"""The documentation inside the repository stays whole and true to the code.

Comments cite ``docs/`` pages or framework sources (never design notes the repository does not
ship); every page and anchor a link names exists; every reader format and every GRU convention
is described in ``docs/``; the files CONTRIBUTING.md sends a contributor to exist.
"""
from __future__ import annotations

import re

import pytest

from conftest import ROOT
from gruinspect import formats, layouts

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
LINKED = PAGES + [ROOT / "CONTRIBUTING.md", ROOT / "README.md"]
SOURCES = sorted(p for folder in ("gruinspect", "tests", "benchmarks", "sample_checkpoints")
                 for p in (ROOT / folder).rglob("*.py"))


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page) -> set[str]:
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)}


def test_the_docs_folder_has_its_pages():
    names = {p.name for p in PAGES}
    assert {"README.md", "conventions.md", "tf-checkpoints.md", "tf2-objects.md", "keras-files.md",
            "contracts.md"} <= names
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not list {page.name}"


def test_no_comment_cites_design_notes_users_do_not_have():
    stale = re.compile(r"FORMATS\.md|DESIGN\.md|STYLE\.md|§\s?\d")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in SOURCES
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if stale.search(line)]
    assert offenders == []


def test_every_cited_docs_page_exists():
    cited = set()
    for path in SOURCES + LINKED:
        # our pages are lower case (an ONNX comment cites onnx's own docs/Operators.md)
        cited |= set(re.findall(r"docs/([a-z0-9-]+\.md|README\.md)", path.read_text(encoding="utf-8")))
    missing = sorted(name for name in cited if not (DOCS / name).is_file())
    assert cited and missing == []


@pytest.mark.parametrize("page", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(dest), f"{page.name} links to {target}: no such heading in {dest.name}"


def test_every_reader_format_is_documented():
    text = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
    names = [f for name in formats.READERS for f in getattr(formats._reader(name), "FORMATS", ())]
    assert names and [f for f in names if f"`{f}`" not in text] == []


def test_every_gru_convention_is_documented():
    text = (DOCS / "conventions.md").read_text(encoding="utf-8")
    assert [s.name for s in layouts.specs() if f"`{s.name}`" not in text] == []


def test_the_files_contributing_names_exist():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    worked_example = text[text.index("### Worked example"):text.index("## Adding a command")]
    paths = set(re.findall(r"`((?:gruinspect|tests|sample_checkpoints|benchmarks|docs)/[\w./-]+)`",
                           text.replace(worked_example, "")))
    assert paths and sorted(p for p in paths if not (ROOT / p).exists()) == []
