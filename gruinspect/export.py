"""`split`: write every block as a plain array file plus a manifest, atomically.

Output goes to a temporary folder beside the target and is renamed into place only when every
file and the manifest are written, so a failure leaves nothing behind and an existing folder is
replaced only with ``force``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass

import numpy as np

from . import __version__
from .blocks import iter_blocks, select_cells
from .errors import UsageError
from .inventory import open_cells

FORMATS = ("npy", "npz")
MANIFEST = "manifest.json"


class _HashingWriter:
    """A write-only file wrapper that hashes what passes through it."""

    def __init__(self, f):
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data) -> int:
        self.sha256.update(data)
        return self._f.write(data)


def safe_name(cell_name: str) -> str:
    """A single path component from a scope: no separators, no `..`, nothing hidden, ASCII only."""
    parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in cell_name.split("/") if p]
    name = "__".join(p.strip(".") or "_" for p in parts) or "cell"
    return name[:150]


def unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        key = name.lower()  # case-insensitive file systems
        seen[key] = seen.get(key, 0) + 1
        out.append(name if seen[key] == 1 else f"{name}-{seen[key]}")
    return out


def check_output_folder(out: str, force: bool, inputs: list[str]) -> None:
    """Refuse what must not happen before any work is done."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"Output path {out} exists and is not a folder.")
    if os.path.isdir(out) and os.listdir(out) and not force:
        raise UsageError(f"Output folder {out} is not empty; use --force to replace it.")
    real_out = os.path.realpath(out)
    for path in inputs:
        real = os.path.realpath(path)
        if real == real_out or real.startswith(real_out.rstrip(os.sep) + os.sep):
            raise UsageError(f"Refusing to write to {out}: it holds the input {path}.")


def _as_written(values: np.ndarray, dtype: str) -> np.ndarray:
    # bfloat16 is not a numpy dtype other tools read; float32 holds every bfloat16 exactly.
    return values.astype(np.float32) if dtype == "bfloat16" else values


@dataclass
class SplitResult:
    out: str
    manifest: dict

    @property
    def files(self) -> int:
        return sum(len(c["arrays"]) for c in self.manifest["cells"])


def split(path: str, out: str, *, patterns=None, fmt: str = "npy", names: bool = False,
          force: bool = False, progress=None) -> SplitResult:
    """Write each selected cell's blocks under ``out`` and return the manifest written.

    ``progress(done_blocks, total_blocks)`` is called as blocks are written, when given.
    """
    if fmt not in FORMATS:
        raise UsageError(f"Unsupported output format {fmt!r}; use one of {', '.join(FORMATS)}.")
    check_output_folder(out, force, [path])
    with open_cells(path) as (store, inventory):
        cells = select_cells(inventory.cells, patterns)
        parent = os.path.dirname(os.path.abspath(out))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out))}.tmp-", dir=parent)
        try:
            manifest = _write_all(store, inventory, cells, tmp, fmt, names, progress)
            _replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return SplitResult(out, manifest)


def _write_all(store, inventory, cells, tmp, fmt, names, progress) -> dict:
    slugs = unique_names([safe_name(c.name) for c in cells])
    entries = {}
    zips = {}
    total = sum(len(c.blocks) for c in cells)
    done = 0
    for slug, cell in zip(slugs, cells):
        entry = cell.summary()
        entry["arrays"] = []
        entries[id(cell)] = (slug, entry)
        if fmt == "npy":
            os.mkdir(os.path.join(tmp, slug))
        else:
            entry["file"] = f"{slug}.npz"
            zips[id(cell)] = zipfile.ZipFile(os.path.join(tmp, entry["file"]), "w", zipfile.ZIP_STORED)
    try:
        for cell, block, values in iter_blocks(store, cells):
            slug, entry = entries[id(cell)]
            values = _as_written(values, cell.dtype)
            record = {"gate": block.gate, "role": block.role, "shape": list(block.shape),
                      "dtype": str(values.dtype), "code_name": block.code_name}
            if cell.dtype == "bfloat16":
                record["stored_dtype"] = "bfloat16"
            targets = [f"{block.key}.npy"] + ([f"{block.code_name}.npy"] if names else [])
            if fmt == "npy":
                record["file"] = f"{slug}/{targets[0]}"
                record["sha256"] = _write_npy(os.path.join(tmp, slug, targets[0]), values)
                for alias in targets[1:]:
                    _link_or_copy(os.path.join(tmp, slug, targets[0]), os.path.join(tmp, slug, alias))
                    record["alias_file"] = f"{slug}/{alias}"
            else:
                zf = zips[id(cell)]
                record["file"] = entry["file"]
                record["member"] = targets[0]
                for member in targets:
                    with zf.open(member, "w", force_zip64=True) as f:
                        writer = _HashingWriter(f)
                        np.lib.format.write_array(writer, values, allow_pickle=False)
                    if member != targets[0]:
                        record["alias_member"] = member
                    else:
                        record["sha256"] = writer.sha256.hexdigest()
            record["source"] = block.source.to_json()
            entry["arrays"].append(record)
            done += 1
            if progress:
                progress(done, total)
    finally:
        for zf in zips.values():
            zf.close()
    manifest = {
        "gruinspect_version": __version__,
        "source": inventory.source,
        "format": fmt,
        "cells": [entries[id(c)][1] for c in cells],
    }
    with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def _write_npy(path: str, values: np.ndarray) -> str:
    with open(path, "wb") as f:
        writer = _HashingWriter(f)
        np.lib.format.write_array(writer, values, allow_pickle=False)
    return writer.sha256.hexdigest()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _replace(tmp: str, out: str) -> None:
    """Move ``tmp`` to ``out``; an existing ``out`` is set aside first and removed only after."""
    if not os.path.exists(out):
        os.rename(tmp, out)
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out))}.old-",
                           dir=os.path.dirname(os.path.abspath(out)))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
