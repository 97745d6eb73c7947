"""`list` reads names and shapes only, for every reader: no tensor data is read for any sample.

Every store class's ``read`` and ``row_reader`` (and h5py's dataset reads, where Keras files keep
their weights) are hooked; ``list`` on each sample must not reach them. The same hooks must see
``stats`` read data of the same sample, so each hook is shown to be on that reader's read path.
"""
from __future__ import annotations

import importlib

import pytest

from conftest import manifest, run_cli, sample_path
from gruinspect import formats
from gruinspect.store import TensorStore


def _store_classes() -> list[type]:
    for name in formats.READERS:
        importlib.import_module(f"gruinspect.formats.{name}")
    out, todo = [], [TensorStore]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo += cls.__subclasses__()
    return out


@pytest.fixture
def data_reads(monkeypatch):
    """A list that records every tensor-data read any reader makes while the test runs."""
    reads: list[str] = []

    def hook(cls, attr):
        original = cls.__dict__[attr]

        def wrapped(self, *args, **kwargs):
            reads.append(f"{cls.__name__}.{attr}({args[0] if args else ''})")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, attr, wrapped)

    for cls in _store_classes():
        for attr in ("read", "row_reader"):
            if attr in cls.__dict__:
                hook(cls, attr)
    h5py = pytest.importorskip("h5py")
    for attr in ("__getitem__", "read_direct"):
        original = getattr(h5py.Dataset, attr)

        def wrapped(self, *args, _original=original, _attr=attr, **kwargs):
            reads.append(f"h5py.Dataset.{_attr}({self.name})")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(h5py.Dataset, attr, wrapped)
    return reads


SAMPLES = [pytest.param(e, id=e["name"]) for e in manifest() if e["cells"]]


@pytest.mark.parametrize("entry", SAMPLES)
def test_list_reads_no_tensor_data(entry, data_reads):
    run_cli("list", sample_path(entry), "--long", "--all")
    run_cli("list", sample_path(entry), "--json")
    assert data_reads == [], f"list read tensor data: {data_reads[:5]}"
    run_cli("stats", sample_path(entry), "--json")
    assert data_reads, "the hooks saw no read by stats either: they are not on this reader's read path"
