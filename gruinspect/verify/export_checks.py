"""``verify --exported DIR``: the folder ``gruinspect split`` wrote, checked file by file and by the maths.

``export-files``: every block of the cell is in the manifest, its file is present, its sha256,
dtype, shape and source slice match. ``export-blocks``: each exported array equals the source
slice exactly (bfloat16 after its lossless float32 conversion). ``export-step``: the explicit step
computed from the exported files matches the framework cell (or, when no framework cell ran, the
layout's equations).
"""
from __future__ import annotations

import hashlib
import os
import time
import zipfile

import numpy as np

from .. import maths
from .._paths import is_within
from ..cell import GruCell
from ..errors import GruInspectError
from ..layouts import spec_for
from ..maths import tolerance
from ..oracle import OracleRun
from ..output import Manifest, sha256_file
from ..store import numpy_dtype
from .checks import _numeric_check
from .report import FAILED, PASSED, SKIPPED, Check


def _export_file_checks(manifest: Manifest, source_keys: list[tuple[str, int]]) -> list[Check]:
    """File-level export checks: manifest cells that PATH does not hold, and files nobody listed."""
    checks = []
    known = set(source_keys)
    unknown = [name if n == 0 else f"{name} (#{n + 1})" for name, n in manifest.cells if (name, n) not in known]
    if unknown:
        checks.append(Check("export-cells", FAILED,
                            f"the manifest lists cell{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}, "
                            f"which the source does not hold", failures=[f"{n}: not in the source" for n in unknown]))
    else:
        n = len(manifest.cells)
        checks.append(Check("export-cells", PASSED, f"every manifest cell is in the source ({n} cell"
                                                    f"{'s' if n != 1 else ''})"))
    referenced = manifest.files()
    extra = []
    for root, dirs, files in os.walk(manifest.folder):
        dirs.sort()
        for name in sorted(files):
            rel = os.path.normpath(os.path.relpath(os.path.join(root, name), manifest.folder))
            if rel not in referenced:
                extra.append(rel.replace(os.sep, "/"))
    if extra:
        checks.append(Check("export-extra-files", FAILED,
                            f"{len(extra)} file{'s' if len(extra) > 1 else ''} not in the manifest: "
                            f"{', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}",
                            failures=[f"extra file {p}" for p in extra]))
    else:
        checks.append(Check("export-extra-files", PASSED, "no file outside the manifest"))
    return checks


def _safe_join(folder: str, rel: str) -> str | None:
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
        return None
    return os.path.join(folder, rel)


def links_out_of(manifest: Manifest) -> list[str]:
    """One warning per file of the export (manifest included) that a symbolic link, of the file
    or of a folder on its way, puts outside the export folder: such a file is still read."""
    out = []
    for rel in sorted(manifest.files()):
        path = _safe_join(manifest.folder, rel)
        if path is None or not os.path.lexists(path):
            continue
        if not is_within(manifest.folder, path):
            real = os.path.realpath(path)
            out.append(f"{manifest.folder}: {rel} leads outside the export folder (a symbolic link to {real}); "
                       f"it was read from there.")
    return out


def _load_exported(folder: str, rec: dict) -> tuple[bytes | None, np.ndarray | None, str | None]:
    """(raw bytes, array, problem) for one manifest record."""
    path = _safe_join(folder, rec.get("file"))
    if path is None:
        return None, None, f"its file {rec.get('file')!r} is not a path inside the export"
    member = rec.get("member")
    try:
        if member is not None:
            if not os.path.isfile(path):
                return None, None, f"{rec['file']} is missing"
            with zipfile.ZipFile(path) as zf:
                try:
                    raw = zf.read(member)
                except KeyError:
                    return None, None, f"{rec['file']} has no member {member}"
        else:
            if not os.path.isfile(path):
                return None, None, f"{rec['file']} is missing"
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, zipfile.BadZipFile) as exc:
        return None, None, f"{rec['file']} cannot be read: {exc}"
    import io

    try:
        array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # any malformed .npy
        return raw, None, f"{_where(rec)} is not a readable .npy array: {exc}"
    return raw, array, None


def _where(rec: dict) -> str:
    return f"{rec.get('file')}:{rec['member']}" if rec.get("member") else str(rec.get("file"))


def _written_dtype(cell: GruCell) -> np.dtype:
    # export._as_written: bfloat16 blocks are written as float32 (lossless).
    return np.dtype(np.float32) if cell.dtype == "bfloat16" else numpy_dtype(cell.dtype)


def _export_cell_checks(cell: GruCell, blocks, manifest: Manifest, entry: dict | None, acts, xs64, h064, t64,
                        framework_run: OracleRun | None, atol, rtol) -> list[Check]:
    if entry is None:
        msg = "not in the export (split with --cell?)"
        return [Check(name, SKIPPED, msg) for name in ("export-files", "export-blocks", "export-step")]
    start = time.perf_counter()
    file_failures: list[str] = []
    for key in ("layout", "input_size", "units", "reset_after", "dtype"):
        if key in entry and entry[key] != getattr(cell, key):
            file_failures.append(f"the manifest says {key} {entry[key]!r}, the source cell has {getattr(cell, key)!r}")
    expected_dtype = _written_dtype(cell)
    records: dict[tuple[str, str], dict] = {}
    for rec in entry["arrays"]:
        if not isinstance(rec, dict) or not isinstance(rec.get("gate"), str) or not isinstance(rec.get("role"), str):
            file_failures.append(f"the manifest has a malformed array entry: {rec!r:.80}")
            continue
        key = (rec["gate"], rec["role"])
        if cell.block(*key) is None:
            file_failures.append(f"the manifest lists {key[0]} {key[1]}, which the cell does not have")
        elif key in records:
            file_failures.append(f"the manifest lists {key[0]} {key[1]} twice")
        else:
            records[key] = rec

    loaded: dict[tuple[str, str], np.ndarray] = {}
    for block in cell.blocks:
        key = (block.gate, block.role)
        label = f"{block.gate} {block.role} ({block.code_name})"
        rec = records.get(key)
        if rec is None:
            file_failures.append(f"{label} is not in the manifest")
            continue
        raw, array, problem = _load_exported(manifest.folder, rec)
        if problem:
            file_failures.append(f"{label}: {problem}")
        if raw is not None and rec.get("sha256") != hashlib.sha256(raw).hexdigest():
            file_failures.append(f"{label}: the sha256 of {_where(rec)} does not match the manifest "
                                 f"(the file changed after split)")
        if rec.get("alias_file"):
            alias = _safe_join(manifest.folder, rec["alias_file"])
            if alias is None or not os.path.isfile(alias):
                file_failures.append(f"{label}: its alias file {rec['alias_file']} is missing")
            elif raw is not None and sha256_file(alias) != hashlib.sha256(raw).hexdigest():
                file_failures.append(f"{label}: its alias file {rec['alias_file']} differs from {rec['file']}")
        if rec.get("dtype") != str(expected_dtype):
            file_failures.append(f"{label}: the manifest says dtype {rec.get('dtype')}, expected {expected_dtype} "
                                 f"for a {cell.dtype} cell")
        if list(rec.get("shape") or []) != list(block.shape):
            file_failures.append(f"{label}: the manifest says shape {rec.get('shape')}, expected {list(block.shape)}")
        source = rec.get("source") or {}
        if source != block.source.to_json():
            file_failures.append(f"{label}: the manifest says it came from {_describe_source(source)}, the source "
                                 f"cell has {block.source.describe()}")
        if array is None:
            continue
        if array.dtype != expected_dtype:
            file_failures.append(f"{label}: {_where(rec)} holds {array.dtype}, expected {expected_dtype}")
        if tuple(array.shape) != tuple(block.shape):
            file_failures.append(f"{label}: {_where(rec)} has shape {list(array.shape)}, expected {list(block.shape)}")
            continue
        loaded[key] = array

    n_files = len(cell.blocks)
    files_check = Check("export-files", FAILED if file_failures else PASSED,
                        (file_failures[0] + (f" (and {len(file_failures) - 1} more)" if len(file_failures) > 1 else ""))
                        if file_failures else f"{n_files} block files present; sha256, dtype, shape and source "
                                              f"match the manifest", failures=file_failures)
    files_check.seconds = time.perf_counter() - start

    start = time.perf_counter()
    blocks_check = _export_blocks_check(cell, blocks, loaded, records, expected_dtype)
    blocks_check.seconds = time.perf_counter() - start
    start = time.perf_counter()
    step_check = _export_step_check(cell, loaded, acts, xs64, h064, t64, framework_run, atol, rtol)
    step_check.seconds = time.perf_counter() - start
    return [files_check, blocks_check, step_check]


def _describe_source(source) -> str:
    if not isinstance(source, dict):
        return repr(source)
    text = f"{source.get('tensor')}{source.get('slice', '')}"
    return f"{text} ({source['transform']})" if source.get("transform") else text


def _export_blocks_check(cell: GruCell, blocks, loaded, records, expected_dtype) -> Check:
    written = {key: np.ascontiguousarray(values.astype(expected_dtype)) for key, values in blocks.items()}
    by_bytes = {}
    for key, values in written.items():
        by_bytes.setdefault((values.shape, values.tobytes()), []).append(key)
    failures = []
    for block in cell.blocks:
        key = (block.gate, block.role)
        if key not in loaded:
            continue
        mine = written[key]
        theirs = np.ascontiguousarray(loaded[key].astype(expected_dtype))
        if theirs.tobytes() == mine.tobytes():
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(theirs.astype(np.float64) - mine.astype(np.float64))
        differ = int(np.count_nonzero(~((theirs == mine) | (np.isnan(theirs) & np.isnan(mine)))))
        sentence = (f"{block.gate} {block.role} ({block.code_name}, {_where(records[key])}) differs from "
                    f"{block.source.describe()} in {differ} of {mine.size} values (max abs diff "
                    f"{float(np.nanmax(diff)) if diff.size else 0.0:.3g})")
        others = [k for k in by_bytes.get((theirs.shape, theirs.tobytes()), []) if k != key]
        if others:
            sentence += f"; it holds the values of {' / '.join(f'{g} {r}' for g, r in others)} (gates swapped?)"
        failures.append(sentence)
    missing = [k for k in blocks if k not in loaded]
    if failures:
        return Check("export-blocks", FAILED, failures[0] + (f" (and {len(failures) - 1} more)"
                                                               if len(failures) > 1 else ""), failures=failures)
    if missing:
        names = ", ".join(f"{g} {r}" for g, r in missing)
        return Check("export-blocks", FAILED, f"{names} could not be compared: missing or unreadable (see export-files)",
                     failures=[f"{g} {r}: missing or unreadable" for g, r in missing])
    return Check("export-blocks", PASSED, f"all {len(loaded)} exported blocks equal their source slices bit for bit")


def _export_step_check(cell: GruCell, loaded, acts, xs64, h064, t64, framework_run, atol, rtol) -> Check:
    missing = [f"{b.gate} {b.role}" for b in cell.blocks if (b.gate, b.role) not in loaded]
    if missing:
        return Check("export-step", FAILED, f"cannot run the step from the exported files: {', '.join(missing)} "
                                            f"missing or unreadable")
    try:
        from_files = maths.run(loaded, xs64, h064, reset_after=cell.reset_after, activation_name=acts[0],
                             recurrent_activation_name=acts[1], clip=cell.config.get("clip") or 0.0)
    except GruInspectError as exc:
        return Check("export-step", FAILED, f"the explicit GRU cannot run: {exc}")
    if framework_run is not None:
        a, r = tolerance(framework_run.compute_dtype, atol, rtol)
        return _numeric_check("export-step", from_files, framework_run.hs,
                              what="the per-gate GRU from the exported files", oracle=framework_run.description,
                              compute_dtype=framework_run.compute_dtype, atol=a, rtol=r)
    spec = spec_for(cell.layout)
    a, r = tolerance("float64", atol, rtol)
    return _numeric_check("export-step", from_files, spec.equations(cell, t64, xs64, h064, acts),
                          what="the per-gate GRU from the exported files",
                          oracle=f"the {spec.title} equations on the fused tensors (no framework cell ran)",
                          compute_dtype="float64", atol=a, rtol=r)

