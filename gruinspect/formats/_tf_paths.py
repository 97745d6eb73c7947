"""Turning what a user types into a TensorFlow checkpoint prefix.

PATH may be a prefix (`dir/model.ckpt`), its `.index` or `.data-*` file, or a folder holding a
`checkpoint` state file (docs/tf-checkpoints.md; the latest checkpoint is used) or exactly one bundle.
"""
from __future__ import annotations

import os
import re

from ..errors import InvalidFileError, UsageError

_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STATE_LINE = re.compile(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"\s*$', re.M)


_C_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.S)
_SIMPLE = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"a": b"\a", b"b": b"\b", b"f": b"\f", b"v": b"\v"}


def _unescape(text: str) -> str:
    """Undo the C escapes of a text-format string (non-ASCII bytes come as octal: ``\\303\\251``)."""
    def one(m: re.Match) -> bytes:
        octal, hexa, char = m.groups()
        if octal:
            return bytes([int(octal, 8) & 0xFF])
        if hexa:
            return bytes([int(hexa, 16)])
        return _SIMPLE.get(char, char)

    raw = _C_ESCAPE.sub(one, text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def latest_from_state(folder: str) -> str | None:
    """The prefix named by `folder/checkpoint`, or None when there is no state file."""
    state = os.path.join(folder, "checkpoint")
    if not os.path.isfile(state):
        return None
    try:
        with open(state, "rb") as f:
            text = f.read(1 << 20).decode("utf-8", "replace")
    except OSError as exc:
        raise InvalidFileError(f"Cannot read checkpoint state file {state}: {exc.strerror}.") from None
    match = _STATE_LINE.search(text)
    if not match:
        raise InvalidFileError(f"Invalid checkpoint state file {state}: it has no model_checkpoint_path.")
    named = _unescape(match.group(1))
    if "\x00" in named:  # no file system path holds one; os and glob calls would raise on it
        raise InvalidFileError(f"Invalid checkpoint state file {state}: the path it names contains a NUL byte.")
    prefix = named if os.path.isabs(named) else os.path.join(folder, named)
    # TF1 Saver wrote absolute paths; a moved folder still holds the files under the same name.
    if os.path.isabs(named) and not _exists_as_checkpoint(prefix):
        prefix = os.path.join(folder, os.path.basename(named))
    if not _exists_as_checkpoint(prefix):
        raise InvalidFileError(
            f"Invalid checkpoint state file {state}: it names {named}, which does not exist."
        )
    return prefix


def noting_state_file(path: str, store):
    """``store``, with PATH's `checkpoint` state file recorded as read when PATH is a folder that
    has one (it chose the checkpoint: :func:`latest_from_state`)."""
    state = os.path.join(path, "checkpoint")
    if os.path.isdir(path) and os.path.isfile(state):
        store.note_file(state)
    return store


def _exists_as_checkpoint(prefix: str) -> bool:
    # V2 `.index`, a V1 single file, or V1 shards `P-00000-of-00002` (docs/tf-checkpoints.md)
    return os.path.isfile(prefix + ".index") or os.path.isfile(prefix) or bool(v1_shards(prefix))


def v1_shards(prefix: str) -> list[str]:
    """The shard files `P-SSSSS-of-NNNNN` of a sharded V1 checkpoint, in shard order."""
    import glob

    return sorted(glob.glob(glob.escape(prefix) + "-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]"))


def bundle_prefix(path: str) -> str | None:
    """The V2 bundle prefix that PATH stands for, or None when PATH names no bundle."""
    if os.path.isdir(path):
        prefix = latest_from_state(path)
        if prefix is not None:
            return prefix if os.path.isfile(prefix + ".index") else None
        indexes = sorted(n for n in os.listdir(path)
                         if n.endswith(".index") and os.path.isfile(os.path.join(path, n)))
        if len(indexes) > 1:
            raise UsageError(
                f"Folder {path} holds {len(indexes)} checkpoints and no `checkpoint` state file; "
                f"name one of them, for example {os.path.join(path, indexes[-1][:-6])}."
            )
        return os.path.join(path, indexes[0][:-6]) if indexes else None
    if path.endswith(".index") and os.path.isfile(path):
        return path[: -len(".index")]
    match = _DATA_SUFFIX.search(path)
    if match and os.path.isfile(path):
        return path[: match.start()]
    if os.path.isfile(path + ".index"):
        return path
    return None
