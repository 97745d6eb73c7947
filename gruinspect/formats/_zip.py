"""Zip members named twice.

A zip's central directory may list two members of one name; Python's ``zipfile`` (and so Keras,
``saving_lib.load_model``) silently takes the last. :func:`unique_members` keeps one per name:
identical copies are read with a warning, copies that differ are refused, since the archive then
means two things depending on who reads it.
"""
from __future__ import annotations

from ..errors import InvalidFileError
from . import _limits

_BLOCK = 1 << 20


def unique_members(zf, path: str, metadata: dict, kind: str) -> dict:
    """{name: ZipInfo} of ``zf``; records duplicates in ``metadata`` ("duplicate_members", and a
    line in "warnings"). ``kind`` names the archive in messages ("Keras archive"). Comparing
    copies inflates them, so the expansion limits apply to each copy first."""
    infos: dict = {}
    twice: list[str] = []
    for info in zf.infolist():
        first = infos.get(info.filename)
        if first is not None:
            if info.filename not in twice:
                twice.append(info.filename)
            for copy in (first, info):
                _limits.check_expansion(copy.file_size, copy.compress_size,
                                        f"Unsupported {kind} {path}: member {info.filename} (present twice)")
            if not _same(zf, first, info, path):
                raise InvalidFileError(
                    f"Invalid {kind} {path}: it holds member {info.filename} twice, with different contents.")
        infos[info.filename] = info
    if twice:
        metadata["duplicate_members"] = twice
        metadata.setdefault("warnings", []).append(
            f"{path} holds {', '.join(twice)} twice, with identical contents; one copy is read.")
    return infos


def _same(zf, a, b, path: str) -> bool:
    if (a.file_size, a.CRC) != (b.file_size, b.CRC) or (a.flag_bits | b.flag_bits) & 0x1:
        return False
    try:  # equal sizes and CRCs are easy to forge: compare the bytes, a block at a time
        with zf.open(a) as fa, zf.open(b) as fb:
            while True:
                ca, cb = fa.read(_BLOCK), fb.read(_BLOCK)
                if ca != cb:
                    return False
                if not ca:
                    return True
    except Exception as exc:  # zipfile raises BadZipFile, zlib.error, EOFError, NotImplementedError...
        raise InvalidFileError(f"Invalid zip archive {path}: member {a.filename}: {exc}.") from None
