"""Bad-input cases for PyTorch (zip, legacy, TorchScript) and safetensors samples (see badinput.py).

Registered with :func:`badinput.generator`; imported at the end of badinput.py.
"""
from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

from badinput import ANY, ERROR, SAMPLES, Case, Sample, file_cases, generator

_WRITER_ONLY = ("version", ".format_version", ".storage_alignment", "byteorder", ".data/serialization_id")


def _rezip(sample: Sample, edit):
    """A builder: the sample's zip rewritten member by member; ``edit(name, data)`` returns
    (name, data, compress_type) or None to drop the member."""
    def build(dst: Path) -> Path:
        path = sample.place(dst)
        with zipfile.ZipFile(SAMPLES / sample.entry["path"]) as src, zipfile.ZipFile(path, "w") as out:
            for info in src.infolist():
                new = edit(info.filename, src.read(info))
                if new is not None:
                    name, data, compress = new
                    out.writestr(zipfile.ZipInfo(name), data, compress_type=compress)
        return path
    return build


def _pid(key: str, numel: int) -> bytes:
    return (b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX" + struct.pack("<I", len(key)) + key.encode()
            + b"X\x03\x00\x00\x00cpu\x8a\x08" + struct.pack("<q", numel) + b"tQ")


def _tensor(key: str, numel: int, size: tuple, stride: tuple) -> bytes:
    """A ``torch._utils._rebuild_tensor_v2`` call as torch.save writes it (protocol 2)."""
    def ints(values):
        return b"(" + b"".join(b"\x8a\x08" + struct.pack("<q", v) for v in values) + b"t"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + _pid(key, numel) + b"K\x00" + ints(size) + ints(stride)
            + b"\x89ccollections\nOrderedDict\n)Rt" + b"R")


def _state_dict(*items: tuple[str, bytes]) -> bytes:
    body = b"".join(b"X" + struct.pack("<I", len(k)) + k.encode() + v for k, v in items)
    return b"\x80\x02}(" + body + b"u."


def _deep(depth: int) -> bytes:
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


@generator("pytorch-zip", "torchscript")
def pytorch_zip_cases(sample: Sample) -> Iterator[Case]:
    yield from file_cases(sample, truncation=ERROR)
    fmt, name = sample.format, sample.name
    with zipfile.ZipFile(sample.path) as zf:
        members = zf.namelist()
    pkl = next(m for m in members if m.endswith("/data.pkl") and m.count("/") == 1)
    prefix = pkl[: -len("data.pkl")]
    storages = [m for m in members if m.startswith(prefix + "data/")]
    stored = ZIP_STORED = zipfile.ZIP_STORED

    def c(case_id, description, build, **kw):
        return Case(f"{fmt}/{name}/{case_id}", description, build, fmt, **kw)

    for member in members if sample.full else [pkl, storages[0]] + [m for m in members if "code/" in m][:1]:
        writer_only = member[len(prefix):] in _WRITER_ONLY or member.startswith(prefix + "code/") \
            or member.endswith(("constants.pkl", ".debug_pkl"))
        yield c(f"no-member-{member.replace('/', '_')}", f"archive member {member} removed",
                _rezip(sample, lambda m, d, gone=member: None if m == gone else (m, d, stored)),
                expect=ANY if writer_only else ERROR,
                why="this member only describes the writer (version, alignment, ids) or holds TorchScript code "
                    "gruinspect never runs; the weights stand without it")
    with zipfile.ZipFile(sample.path) as zf:
        pkl_size = zf.getinfo(pkl).file_size
    cuts = {1, 2, pkl_size // 3, pkl_size // 2, pkl_size - 2, pkl_size - 1} if sample.full else {pkl_size // 2}
    for cut in sorted(cuts):
        yield c(f"data-pkl-cut-{cut}", f"{pkl} cut to {cut} of {pkl_size} bytes",
                _rezip(sample, lambda m, d, cut=cut: (m, d[:cut] if m == pkl else d, stored)))
    yield c("storage-short", f"storage {storages[0]} one byte short",
            _rezip(sample, lambda m, d: (m, d[:-1] if m == storages[0] else d, stored)))
    if not sample.full:  # the same code paths as the full sample of this format
        return
    yield c("storage-deflated", "every storage member compressed (torch.save stores them)",
            _rezip(sample, lambda m, d: (m, d, zipfile.ZIP_DEFLATED if m in storages else ZIP_STORED)))
    yield c("byteorder-bad", "byteorder says 'middle'",
            _rezip(sample, lambda m, d: (m, b"middle" if m == prefix + "byteorder" else d, stored)))
    yield c("data-pkl-plain-junk", f"{pkl} replaced by bytes that are no pickle",
            _rezip(sample, lambda m, d: (m, b"\x80\x02\xff\xfe junk" if m == pkl else d, stored)))
    yield c("data-pkl-os-system", f"{pkl} replaced by a pickle that calls os.system",
            _rezip(sample, lambda m, d: (m, b"\x80\x02cos\nsystem\n(X\x04\x00\x00\x00truetR." if m == pkl else d, stored)))
    yield c("data-pkl-deep", f"{pkl} replaced by a list nested 100000 deep",
            _rezip(sample, lambda m, d: (m, _deep(100_000) if m == pkl else d, stored)))
    big = _state_dict(("gru.weight_ih_l0", _tensor(storages[0][len(prefix) + 5:], 1 << 40, (1 << 20, 1 << 20), (1 << 20, 1))))
    yield c("tensor-claims-terabytes", "a tensor of 2^40 floats in a storage member of a few bytes",
            _rezip(sample, lambda m, d: (m, big if m == pkl else d, stored)), huge=True)
    past = _state_dict(("gru.weight_ih_l0", _tensor(storages[0][len(prefix) + 5:], 4, (2, 4), (4, 1))))
    yield c("view-past-storage", "a tensor whose size and stride reach past its storage",
            _rezip(sample, lambda m, d: (m, past if m == pkl else d, stored)))
    missing = _state_dict(("gru.weight_ih_l0", _tensor("no-such-key", 4, (4,), (1,))))
    yield c("storage-missing", "a tensor naming a storage the archive does not hold",
            _rezip(sample, lambda m, d: (m, missing if m == pkl else d, stored)))
    negative = _state_dict(("w", _tensor(storages[0][len(prefix) + 5:], 4, (-1, 4), (4, 1))))
    yield c("size-negative", "a tensor of size [-1, 4]", _rezip(sample, lambda m, d: (m, negative if m == pkl else d, stored)))
    memo = b"\x80\x02]r" + struct.pack("<I", 671311998) + b"."  # found by the fuzz harness
    yield c("pickle-memo-index", "a pickle whose LONG_BINPUT names memo slot 671311998 (a 5 GB memo table)",
            _rezip(sample, lambda m, d: (m, memo if m == pkl else d, stored)), huge=True)
    huge_bytes = b"\x80\x02B" + struct.pack("<I", 0xFFFFFFF0) + b"xx."
    yield c("pickle-bytes-claim", "a pickle whose BINBYTES claims 4 GiB it does not hold",
            _rezip(sample, lambda m, d: (m, huge_bytes if m == pkl else d, stored)), huge=True)


def _replaced(sample: Sample, case_id: str, description: str, new_bytes: bytes, **kw) -> Case:
    """A case whose file is the sample's, its bytes replaced by ``new_bytes``."""
    def build(dst: Path) -> Path:
        path = sample.place(dst)
        path.write_bytes(new_bytes)
        return path
    return Case(f"{sample.format}/{sample.name}/{case_id}", description, build, sample.format, **kw)


@generator("pytorch-legacy")
def pytorch_legacy_cases(sample: Sample) -> Iterator[Case]:
    yield from file_cases(sample, truncation=ERROR)
    fmt, name = sample.format, sample.name
    data = sample.path.read_bytes()
    head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001))

    def c(case_id, description, new_bytes, **kw):
        return _replaced(sample, case_id, description, new_bytes, **kw)

    yield c("protocol-bad", "protocol version 1002", data.replace(pickle.dumps(1001, protocol=2),
                                                                  pickle.dumps(1002, protocol=2), 1))
    rest = head + pickle.dumps({"little_endian": True}, protocol=2)
    yield c("object-os-system", "the object pickle calls os.system",
            rest + b"\x80\x02cos\nsystem\n(X\x04\x00\x00\x00truetR." + pickle.dumps([], protocol=2))
    big = _state_dict(("w", _tensor("0", 1 << 40, (1 << 20, 1 << 20), (1 << 20, 1))))
    yield c("storage-claims-terabytes", "a storage of 2^40 floats and no bytes for it",
            rest + big + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 1 << 40), huge=True)
    small = _state_dict(("w", _tensor("0", 4, (4,), (1,))))
    yield c("storage-count-wrong", "a storage whose element count disagrees with the object",
            rest + small + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 5) + bytes(20))
    yield c("storage-key-unknown", "the key list names a storage the object never uses",
            rest + small + pickle.dumps(["0", "9"], protocol=2) + struct.pack("<q", 4) + bytes(16))
    yield c("keys-not-a-list", "the key list is a string",
            rest + small + pickle.dumps("0", protocol=2) + struct.pack("<q", 4) + bytes(16))


def _safetensors(header: dict, data: bytes, *, length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


@generator("safetensors")
def safetensors_cases(sample: Sample) -> Iterator[Case]:
    yield from file_cases(sample, truncation=ERROR)
    fmt, name = sample.format, sample.name
    raw = sample.path.read_bytes()
    n = struct.unpack_from("<Q", raw)[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    first = next(k for k in header if k != "__metadata__")

    def c(case_id, description, new_bytes, **kw):
        return _replaced(sample, case_id, description, new_bytes, **kw)

    def edited(**changes):
        h = json.loads(json.dumps(header))
        h[first].update(changes)
        return _safetensors(h, data)

    yield c("header-length-huge", "the header length claims 2^40 bytes", struct.pack("<Q", 1 << 40) + raw[8:], huge=True)
    yield c("header-length-short", "the header length one byte short", struct.pack("<Q", n - 1) + raw[8:])
    yield c("header-not-json", "the header is not JSON", _safetensors({}, b"")[:8] + b"{not json}" + data)
    yield c("header-list", "the header is a JSON list", struct.pack("<Q", 2) + b"[]" + data)
    yield c("dtype-unknown", f"tensor {first} has dtype F7", edited(dtype="F7"))
    yield c("shape-mismatch", f"tensor {first}'s shape needs more bytes than its offsets give",
            edited(shape=[s + 1 for s in header[first]["shape"]]))
    yield c("shape-huge", f"tensor {first} claims shape [2^31, 2^31]", edited(shape=[1 << 31, 1 << 31]), huge=True)
    yield c("offsets-reversed", f"tensor {first}'s offsets run backwards",
            edited(data_offsets=header[first]["data_offsets"][::-1]))
    yield c("offsets-past-end", f"tensor {first} ends past the file",
            edited(data_offsets=[0, len(data) + 8]))
    yield c("trailing-bytes", "bytes after the last tensor", raw + b"\x00" * 8)
    h = json.loads(json.dumps(header))
    h["__metadata__"] = {"format": 5}
    yield c("metadata-not-strings", "__metadata__ holds a number", _safetensors(h, data))
    h = {k: v for k, v in header.items() if k != first}
    yield c("hole", f"tensor {first} dropped from the header, leaving a hole in the data", _safetensors(h, data),
            expect=ERROR)
