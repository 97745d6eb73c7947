"""Renames that never replace what they must not: a folder placed at a new name, or swapped with the old.

Linux has ``renameat2`` (``RENAME_NOREPLACE``: fail if the target exists; ``RENAME_EXCHANGE``:
swap two paths in one step; see renameat2(2)). Python's :func:`os.rename` offers neither, so it is
called through ctypes (glibc >= 2.28 exports it; older ones through ``syscall``). Where it or its
flags are missing (other systems; file systems such as NFS answer EINVAL) the portable fallbacks
keep the refusal, at the price of a brief moment when the target is an empty folder or absent.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform

from .errors import OutputError, UsageError

_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100
_SYSCALL_RENAMEAT2 = {"x86_64": 316, "amd64": 316, "aarch64": 276, "arm64": 276, "riscv64": 276}
_renameat2_fn = None


def _renameat2_function():
    global _renameat2_fn
    if _renameat2_fn is None:
        _renameat2_fn = False
        if platform.system() == "Linux":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            except OSError:
                libc = None
            if libc is not None and hasattr(libc, "renameat2"):  # glibc >= 2.28
                _renameat2_fn = libc.renameat2
            elif libc is not None and platform.machine().lower() in _SYSCALL_RENAMEAT2:
                number = _SYSCALL_RENAMEAT2[platform.machine().lower()]
                _renameat2_fn = lambda *args: libc.syscall(number, *args)  # noqa: E731
    return _renameat2_fn or None


def _renameat2(src: str, dst: str, flags: int) -> bool:
    """``renameat2(src, dst, flags)``: True when done, False when this system or file system lacks it."""
    fn = _renameat2_function()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), ctypes.c_uint(flags)) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), src, None, dst)


def _refused(shown: str) -> UsageError:
    return UsageError(f"Output folder {shown} is not empty (another run may have written it meanwhile); "
                      f"use --force to replace it.")


def place(new: str, target: str, shown: str) -> None:
    """Rename ``new`` to ``target``, which must be absent or an empty folder; never replace anything else."""
    try:
        os.rmdir(target)  # an empty folder the user made: ours to replace; anything in it: refused below
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise _refused(shown) from None
        raise
    try:
        if _renameat2(new, target, _RENAME_NOREPLACE):
            return
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise _refused(shown) from None
        raise
    _place_portably(new, target, shown)


def _place_portably(new: str, target: str, shown: str) -> None:
    if os.name == "nt":  # os.rename never replaces there
        try:
            os.rename(new, target)
        except FileExistsError:
            raise _refused(shown) from None
        return
    try:
        os.mkdir(target)  # claims the name: of two runs, one mkdir fails
    except FileExistsError:
        raise _refused(shown) from None
    try:
        os.rename(new, target)  # replaces only the empty folder just made
    except OSError as exc:
        try:
            os.rmdir(target)
        except OSError:
            pass
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise _refused(shown) from None
        raise


def replace(new: str, target: str, shown: str) -> None:
    """Put ``new`` at ``target`` in one step, replacing what is there; the old one stays in the staging folder."""
    for _ in range(3):  # the target appearing or vanishing meanwhile: try the other way
        if os.path.lexists(target):
            try:
                if _renameat2(new, target, _RENAME_EXCHANGE):
                    return
            except FileNotFoundError:
                continue
            _replace_portably(new, target)
            return
        try:
            if _renameat2(new, target, _RENAME_NOREPLACE):
                return
        except FileExistsError:
            continue
        try:
            _place_portably(new, target, shown)
            return
        except UsageError:
            continue
    raise OutputError(f"Cannot write {shown}: it keeps changing while being replaced.")


def _replace_portably(new: str, target: str) -> None:
    aside = new + ".old"  # inside the locked staging folder, so it is removed with it
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
