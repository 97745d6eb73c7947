"""Everything gruinspect writes goes through here: atomic output folders and files, sha256, manifests.

:class:`OutputFolder` is how ``split`` and ``convert`` write ``--out``: files go into a hidden
staging folder beside the target, and :meth:`OutputFolder.commit` renames it into place in one
atomic step. Until then the target is untouched; on any failure (an error, Ctrl-C, SIGTERM or
SIGHUP under the command line, see :mod:`gruinspect._signals`) the staging folder and the parents
made for it are removed.

* Without ``force`` the rename refuses to replace anything that appeared meanwhile (Linux
  ``renameat2(RENAME_NOREPLACE)``), so of two runs writing the same new folder exactly one wins
  and the other fails, whatever the timing.
* With ``force`` an existing folder is swapped out in the same step
  (``renameat2(RENAME_EXCHANGE)``) and deleted after: a reader sees the complete old folder or the
  complete new one, never a mix and never nothing.
* Where ``renameat2`` or its flags are missing (other systems, NFS) a portable fallback keeps the
  refusal: the name is claimed with ``mkdir`` first, and ``force`` sets the old folder aside
  (briefly absent) and puts it back if the rename fails.
* The staging folder ``.<name>.gruinspect-tmp-XXXXXXXX`` is locked (``flock``) while its run lives.
  A run killed outright (SIGKILL, a crash) leaves it behind; the next run writing beside it
  removes every one whose lock is free, and no run ever mistakes one for output.

Errors about the output name the user's path, never the staging folder.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass

from . import _rename, _signals
from .errors import InvalidFileError, OutputError, UsageError

MANIFEST = "manifest.json"
_STAGING = ".gruinspect-tmp-"  # between ".<name>" and mkdtemp's random suffix
_NEW = "new"  # the folder inside the staging folder that becomes the output


def sha256_file(path: str) -> str:
    """The sha256 of a file's bytes, as hex, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all: a temporary file beside it, then a rename.

    Missing parent folders are created (and removed again if the write fails).
    """
    folder = os.path.dirname(os.path.abspath(path))
    created: list[str] = []
    try:
        created = _make_parents(folder, path)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)[:100]}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                # mkstemp makes the file private (0600); the result gets what open() would give it
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
    except OSError as exc:
        _remove_parents(created)
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    except BaseException:
        _remove_parents(created)
        raise


def check_output_folder(out: str, force: bool, inputs: list[str]) -> None:
    """Refuse, before any work is done, what the final rename would refuse anyway."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise UsageError(f"Output path {out} exists and is not a folder.")
    if os.path.isdir(out) and os.listdir(out) and not force:
        raise UsageError(f"Output folder {out} is not empty; use --force to replace it.")
    real_out = os.path.realpath(out)
    for path in inputs:
        real = os.path.realpath(path)
        if real == real_out or real.startswith(real_out.rstrip(os.sep) + os.sep):
            raise UsageError(f"Refusing to write to {out}: it holds the input {path}.")


class OutputFolder:
    """A folder written under a staging name and renamed to ``out`` by :meth:`commit`.

    >>> with OutputFolder("blocks", force=True) as staging:   # doctest: +SKIP
    ...     write_files(staging.path)
    ...     staging.commit()

    Leaving the block without :meth:`commit` (an exception, or deciding not to write) removes
    everything it created. An :class:`OSError` about a file in the staging folder is raised as an
    :class:`~gruinspect.errors.OutputError` that names the path under ``out`` instead.
    """

    def __init__(self, out: str, *, force: bool = False):
        self.out = out
        self.force = force
        self.path = ""  # where to write, inside the staging folder
        self.committed = False
        self._target = _real_target(out)
        self._staging = ""
        self._lock: int | None = None
        self._created: list[str] = []

    def __enter__(self) -> OutputFolder:
        parent, base = os.path.split(self._target)
        try:
            for attempt in range(3):  # a parent removed by another run's cleanup meanwhile: make it again
                self._created += [f for f in _make_parents(parent, self.out) if f not in self._created]
                _reclaim_stale(parent, base)
                try:
                    self._staging, self._lock = _new_staging(parent, base)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
            self.path = os.path.join(self._staging, _NEW)
            os.mkdir(self.path)
        except BaseException as exc:
            self._cleanup()
            if isinstance(exc, OSError):
                raise OutputError(f"Cannot create {self.out}: {exc.strerror or exc}.") from exc
            raise
        return self

    def commit(self) -> None:
        """Rename the staging folder to ``out`` (replacing an existing folder only with ``force``)."""
        if self.committed:
            return
        with _signals.deferred():
            if self.force:
                _rename.replace(self.path, self._target, self.out)
            else:
                _rename.place(self.path, self._target, self.out)
            self.committed = True

    def __exit__(self, exc_type, exc, tb) -> bool:
        staging = self._staging
        self._cleanup()
        if isinstance(exc, OSError):
            mapped = self._mapped_error(exc, staging)
            if mapped is not None:
                raise mapped from exc
        return False

    def _cleanup(self) -> None:
        # After commit the staging folder holds at most the replaced old folder.
        if self._staging:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = ""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if not self.committed:
            _remove_parents(self._created)
            self._created = []

    def _mapped_error(self, exc: OSError, staging: str) -> OutputError | None:
        names = [n for n in (exc.filename, exc.filename2) if isinstance(n, str)]
        for name in names:
            if self.path and (name == self.path or name.startswith(self.path + os.sep)):
                rel = os.path.relpath(name, self.path)
                shown = self.out if rel == "." else os.path.join(self.out, rel)
                return OutputError(f"Cannot write {shown}: {exc.strerror or exc}.")
            if (staging and name.startswith(staging + os.sep)) or \
                    os.path.basename(name).startswith(f".{os.path.basename(self._target)[:100]}{_STAGING}"):
                return OutputError(f"Cannot write {self.out}: {exc.strerror or exc}.")
        if not names and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
            return OutputError(f"Cannot write {self.out}: {exc.strerror or exc}.")
        return None


def _real_target(out: str) -> str:
    """Where ``out`` is: an absolute path, through a symbolic link at ``out`` itself (the link stays)."""
    target = os.path.abspath(out)
    if os.path.islink(target):
        target = os.path.realpath(target)
    return target


def _make_parents(folder: str, shown: str) -> list[str]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        up = os.path.dirname(folder)
        if up == folder:
            break
        folder = up
    missing.reverse()
    for i, folder in enumerate(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not os.path.isdir(folder):
                _remove_parents(missing[:i])
                raise OutputError(f"Cannot create {shown}: {folder} exists and is not a folder.") from None
            missing[i] = ""  # another run made it: not ours to remove
        except OSError:
            _remove_parents(missing[:i])
            raise
    return [f for f in missing if f]


def _remove_parents(created: list[str]) -> None:
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            break  # not empty: another run writes there now


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# --------------------------------------------------------------------------- staging and locks

def _new_staging(parent: str, base: str) -> tuple[str, int | None]:
    """A fresh staging folder beside the target, and the file descriptor holding its lock."""
    while True:
        staging = tempfile.mkdtemp(prefix=f".{base[:100]}{_STAGING}", dir=parent)
        fd = _lock(staging, wait=True)
        if fd is None:
            return staging, None
        try:
            if os.path.samestat(os.stat(staging, follow_symlinks=False), os.fstat(fd)):
                return staging, fd
        except FileNotFoundError:
            pass
        os.close(fd)  # another run reclaimed it in the instant before the lock: make another


def _lock(path: str, *, wait: bool) -> int | None:
    """An open descriptor of the folder ``path`` holding an exclusive ``flock``, or None.

    None when the lock is taken (``wait`` False) or when the system or file system cannot lock.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        if wait:
            raise
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        return None
    return fd


def _reclaim_stale(parent: str, base: str) -> None:
    """Remove staging folders for the same target whose run has died (their lock is free)."""
    prefix = f".{base[:100]}{_STAGING}"
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        fd = _lock(entry.path, wait=False)
        if fd is None:
            continue  # alive, or a file system without locks: leave it
        try:
            if os.path.samestat(os.stat(entry.path, follow_symlinks=False), os.fstat(fd)):
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------ manifest

@dataclass
class Manifest:
    """A split folder's ``manifest.json``, parsed."""

    folder: str
    data: dict
    cells: dict[tuple[str, int], dict]  # (name, occurrence) -> entry

    def files(self) -> set[str]:
        """Every path the manifest names (the manifest included), normalised, relative to the folder."""
        out = {MANIFEST}
        for entry in self.cells.values():
            if isinstance(entry.get("file"), str):
                out.add(entry["file"])
            for rec in entry["arrays"]:
                if not isinstance(rec, dict):
                    continue
                for key in ("file", "alias_file"):
                    if isinstance(rec.get(key), str):
                        out.add(rec[key])
        return {os.path.normpath(p) for p in out}


def array_record(block, dtype: str, stored_dtype: str, *, file: str, sha256: str, member: str | None = None,
                 alias: str | None = None) -> dict:
    """The manifest entry of one written block (``alias``: the ``--names`` copy, a file or a member)."""
    record = {"gate": block.gate, "role": block.role, "shape": list(block.shape), "dtype": dtype,
              "code_name": block.code_name}
    if stored_dtype == "bfloat16":
        record["stored_dtype"] = "bfloat16"
    record["file"] = file
    if member is not None:
        record["member"] = member
    record["sha256"] = sha256
    if alias is not None:
        record["alias_member" if member is not None else "alias_file"] = alias
    record["source"] = block.source.to_json()
    return record


def write_manifest(folder: str, *, version: str, source: dict, fmt: str, cells: list[dict]) -> dict:
    """Write ``folder/manifest.json`` and return what was written."""
    manifest = {"gruinspect_version": version, "source": source, "format": fmt, "cells": cells}
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def read_manifest(folder: str) -> Manifest:
    """Parse ``folder/manifest.json`` as :func:`write_manifest` wrote it, checking its shape."""
    if not os.path.isdir(folder):
        raise UsageError(f"No such folder: {folder} (--exported must be a folder written by gruinspect split).")
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise InvalidFileError(f"Invalid export {folder}: it has no {MANIFEST}; "
                               f"--exported must be a folder written by gruinspect split.")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidFileError(f"Invalid manifest {path}: {exc}.") from exc
    except RecursionError:
        raise InvalidFileError(f"Invalid manifest {path}: its JSON is nested too deeply.") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arrays"), list)
            for c in data["cells"]):
        raise InvalidFileError(f"Invalid manifest {path}: it needs a \"cells\" list whose entries have a name "
                               f"and an \"arrays\" list.")
    cells: dict[tuple[str, int], dict] = {}
    seen: dict[str, int] = {}
    for entry in data["cells"]:
        n = seen.get(entry["name"], 0)
        seen[entry["name"]] = n + 1
        cells[(entry["name"], n)] = entry
    return Manifest(folder, data, cells)


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (os.umask sets as it reads,
    which would briefly loosen the files other threads create)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
