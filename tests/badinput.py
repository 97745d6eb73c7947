"""A corpus of bad inputs, generated from the real samples in sample_checkpoints/ (no kept binaries).

Each case says how to build one bad input in an empty folder and what gruinspect must do with it:

- ``ERROR``: every command exits 2 with one line naming the file;
- ``ON_READ``: the damage is in tensor bytes, so `list` (which reads no data) may succeed, and
  `stats` / `split` exit 2 (with ``checksum=True``: a "Checksum mismatch" line);
- ``OK``: a valid but hostile file (names with ``..``, ``/``, non-UTF-8 bytes...): every command
  exits 0 and `split` writes only inside its output folder;
- ``ANY``: blind mutations whose result depends on where they land: exit 0 or 2, never a crash.

Generators are registered per manifest ``format`` in :data:`GENERATORS`; a format without its own
generator gets the generic one chosen by the file's magic bytes (HDF5, zip, anything else), so a
new reader is covered as soon as its sample is in the manifest and can get its own cases with one
decorated function. Path-level cases (missing path, empty folder, FIFO, output folder...) are in
the ``paths`` group.

    >>> from badinput import cases
    >>> len(cases()) > 100
    True
"""
from __future__ import annotations

import functools
import json
import os
import random
import shutil
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gruinspect.formats import _wire
from gruinspect.formats._crc import masked_crc32c
from gruinspect.formats._table import FOOTER_SIZE, TABLE_MAGIC, _handle, block_entries, iter_table, read_block
from gruinspect.formats.tf_bundle import slice_key

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_checkpoints"

ERROR, ON_READ, OK, ANY = "error", "error-on-read", "ok", "any"
COMMANDS = ("list", "stats", "split")


@dataclass(frozen=True)
class Case:
    """One bad input: ``build(folder)`` writes it under an empty folder and returns the PATH to pass."""

    case_id: str
    description: str
    build: Callable[[Path], Path]
    format: str
    expect: str = ERROR
    checksum: bool = False  # stats/split must report a checksum mismatch
    huge: bool = False  # the file claims far more bytes than it holds: memory is measured
    commands: tuple = COMMANDS
    out_exists: bool = False  # split's output folder exists and is not empty before the run
    out_in_file: bool = False  # split's output folder would be inside a regular file
    names: str | None = None  # text the error line must contain (default: the case's folder)
    why: str = ""  # with expect=ANY: why both exit 0 and exit 2 are right for this input

    def __iter__(self):  # (case_id, description, path-builder), as the generators are described
        return iter((self.case_id, self.description, self.build))


# ---------------------------------------------------------------------------------- samples
# Samples that get every variation; the others (same code paths) get a lighter set. The first
# sample of each format is always full, so a new format is covered in depth from its first sample.
FULL = {"tf1_gru_single", "tf1_partitioned", "tf1_sharded", "dtypes_misc", "cudnn_compatible"}


@dataclass(frozen=True)
class Sample:
    entry: dict = field(hash=False, compare=False)
    name: str = ""
    full: bool = True

    @property
    def format(self) -> str:
        return self.entry["format"]

    @property
    def path(self) -> Path:
        return SAMPLES / self.entry["path"]

    @property
    def cells(self) -> list:
        return self.entry.get("cells", [])

    def files(self) -> list[Path]:
        """The sample's own files, relative to SAMPLES."""
        p = self.path
        if p.is_file():
            return [p.relative_to(SAMPLES)]
        if p.is_dir():
            return [f.relative_to(SAMPLES) for f in sorted(p.rglob("*")) if f.is_file()]
        out = [f.relative_to(SAMPLES) for f in sorted(p.parent.iterdir())
               if f.is_file() and f.name.startswith((p.name + ".", p.name + "-"))]
        state = p.parent / "checkpoint"
        if state.is_file():
            out.append(state.relative_to(SAMPLES))
        return out

    def place(self, dst: Path) -> Path:
        """Copy the sample under ``dst`` (same relative layout); return its PATH there."""
        for rel in self.files():
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SAMPLES / rel, target)
        return dst / self.entry["path"]

    def on_copy(self, mutate):
        """A builder: place the sample, then ``mutate(placed_root)``; return the sample's PATH."""
        def build(dst: Path) -> Path:
            path = self.place(dst)
            mutate(dst)
            return path
        return build


def manifest_samples() -> list[Sample]:
    with open(SAMPLES / "manifest.json", encoding="utf-8") as f:
        entries = json.load(f)["samples"]
    out, formats = [], set()
    for e in entries:
        sample = Sample(e, e["name"])
        if not sample.files():
            continue
        out.append(Sample(e, e["name"], e["name"] in FULL or e["format"] not in formats))
        formats.add(e["format"])
    return out


# ------------------------------------------------------------------ file mutation helpers
def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def flip(path: Path, bit: int) -> None:
    """Flip one bit (bit index over the whole file, little-endian within a byte)."""
    with open(path, "r+b") as f:
        f.seek(bit // 8)
        byte = f.read(1)[0]
        f.seek(bit // 8)
        f.write(bytes([byte ^ (1 << (bit % 8))]))


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset if offset >= 0 else os.path.getsize(path) + offset)
        f.write(data)


# ------------------------------------------------------------- protobuf and table writers
def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values take ten bytes, as protobuf writes them
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def pb_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def pb_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<I", value & 0xFFFFFFFF)


def decode_entry(value: bytes) -> dict:
    """A BundleEntryProto as a plain dict (docs/tf-checkpoints.md, Tensor entries)."""
    f = _wire.parse(value)
    shape = _wire.get_message(f, 2)
    return {
        "dtype": _wire.get_int(f, 1),
        "dims": None if _wire.get_int(shape, 3) else [_wire.get_int(d, 1) for d in _wire.get_messages(shape, 2)],
        "shard_id": _wire.get_int(f, 3),
        "offset": _wire.get_int(f, 4),
        "size": _wire.get_int(f, 5),
        "crc": _wire.get_int(f, 6, None, signed=False),
        "slices": [[(_wire.get_int(e, 1), _wire.get_int(e, 2) if 2 in e else None) for e in _wire.get_messages(s, 1)]
                   for s in _wire.get_messages(f, 7)],
    }


def encode_entry(e: dict) -> bytes:
    """The inverse of :func:`decode_entry` (zero fields omitted, as proto3 writes them)."""
    if e["dims"] is None:
        shape = pb_varint(3, 1)
    else:
        shape = b"".join(pb_bytes(2, pb_varint(1, d) if d else b"") for d in e["dims"])
    out = (pb_varint(1, e["dtype"]) if e["dtype"] else b"") + pb_bytes(2, shape)
    for number, key in ((3, "shard_id"), (4, "offset"), (5, "size")):
        if e[key]:
            out += pb_varint(number, e[key])
    if e["crc"] is not None:
        out += pb_fixed32(6, e["crc"])
    for extents in e["slices"]:
        body = b""
        for start, length in extents:
            ext = (pb_varint(1, start) if start else b"") + (pb_varint(2, length) if length is not None else b"")
            body += pb_bytes(1, ext)
        out += pb_bytes(7, body)
    return out


def encode_header(num_shards: int = 1, big_endian: bool = False, producer: int = 1) -> bytes:
    return pb_varint(1, num_shards) + (pb_varint(2, 1) if big_endian else b"") + pb_bytes(3, pb_varint(1, producer))


def _block(rows: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    out = bytearray()
    restarts = []
    previous = b""
    for i, (key, value) in enumerate(rows):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            lo, hi = 0, min(len(key), len(previous))  # longest common prefix, by slice comparisons
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if key[:mid] == previous[:mid] else (lo, mid - 1)
            shared = lo
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    for r in restarts or [0]:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts or [0]))
    return bytes(out)


def write_table(rows: list[tuple[bytes, bytes]], *, block_size: int = 262144, restart_interval: int = 16) -> bytes:
    """A LevelDB table as TF's TableBuilder writes it (docs/tf-checkpoints.md, the table container), rows in the given order.

    ``block_size`` small gives many data blocks; the index keys are the last key of each block.
    """
    out = bytearray()

    def put(contents: bytes) -> tuple[int, int]:
        handle = (len(out), len(contents))
        out.extend(contents + b"\x00" + struct.pack("<I", masked_crc32c(contents + b"\x00")))
        return handle

    index_rows = []
    pending: list = []
    size = 0
    for key, value in rows:
        pending.append((key, value))
        size += len(key) + len(value) + 3
        if size >= block_size:
            offset, length = put(_block(pending, restart_interval))
            index_rows.append((pending[-1][0], varint(offset) + varint(length)))
            pending, size = [], 0
    if pending or not index_rows:
        offset, length = put(_block(pending, restart_interval))
        index_rows.append((pending[-1][0] if pending else b"", varint(offset) + varint(length)))
    meta = put(_block([], 1))
    index = put(_block(index_rows, 1))
    footer = varint(meta[0]) + varint(meta[1]) + varint(index[0]) + varint(index[1])
    out += footer.ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(out)


def _key_bomb(header_row: tuple[bytes, bytes], prefix_len: int = 65536, count: int = 65536) -> bytes:
    """A table of ~6 bytes per entry whose keys, spelled out, are ``count`` x ``prefix_len`` bytes.

    Written directly in prefix-compressed form (the keys themselves are never built): the header
    entry, one key of ``prefix_len`` bytes, then keys sharing all of it plus a 2-byte suffix.
    """
    key0, value0 = header_row
    body = bytearray(varint(0) + varint(len(key0)) + varint(len(value0)) + key0 + value0)
    body += varint(0) + varint(prefix_len + 2) + varint(0) + b"k" * prefix_len + b"\x00\x00"
    for i in range(1, count):
        body += varint(prefix_len) + varint(2) + varint(0) + struct.pack(">H", i)
    contents = bytes(body + struct.pack("<II", 0, 1))  # one restart point, at 0
    out = bytearray()

    def put(block: bytes) -> tuple[int, int]:
        handle = (len(out), len(block))
        out.extend(block + b"\x00" + struct.pack("<I", masked_crc32c(block + b"\x00")))
        return handle

    data = put(contents)
    meta = put(_block([], 1))
    index = put(_block([(b"l", varint(data[0]) + varint(data[1]))], 1))
    footer = varint(meta[0]) + varint(meta[1]) + varint(index[0]) + varint(index[1])
    return bytes(out + footer.ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC))


def table_regions(data: bytes) -> list[tuple[str, int, int]]:
    """``(label, start, stop)`` of every block, trailer and footer part of a valid table."""
    n = len(data)
    footer = data[n - FOOTER_SIZE:]
    meta_off, meta_size, pos = _handle(footer, 0)
    index_off, index_size, pos = _handle(footer, pos)
    regions = []
    for i, (_, handle) in enumerate(block_entries(read_block(data, index_off, index_size))):
        off, size, _ = _handle(handle, 0)
        regions += [(f"data block {i}", off, off + size), (f"data block {i} trailer", off + size, off + size + 5)]
    regions += [("metaindex block", meta_off, meta_off + meta_size),
                ("metaindex trailer", meta_off + meta_size, meta_off + meta_size + 5),
                ("index block", index_off, index_off + index_size),
                ("index trailer", index_off + index_size, index_off + index_size + 5),
                ("footer handles", n - FOOTER_SIZE, n - FOOTER_SIZE + pos),
                ("footer padding", n - FOOTER_SIZE + pos, n - 8),
                ("footer magic", n - 8, n)]
    return regions


# ------------------------------------------------------------------------- registration
GENERATORS: dict[str, Callable[[Sample], Iterator[Case]]] = {}


def generator(*formats: str):
    """Register a generator of cases for samples of the given manifest formats."""
    def register(fn):
        for fmt in formats:
            GENERATORS[fmt] = fn
        return fn
    return register


def _magic(sample: Sample) -> bytes:
    p = sample.path
    if p.is_file():
        with open(p, "rb") as f:
            return f.read(8)
    return b""


def cases_for(sample: Sample) -> list[Case]:
    gen = GENERATORS.get(sample.format)
    if gen is None:
        magic = _magic(sample)
        gen = hdf5_cases if magic.startswith(b"\x89HDF") else zip_cases if magic.startswith(b"PK") else file_cases
    return list(gen(sample))


def cases(formats=None) -> list[Case]:
    """Every case: for each sample in the manifest, then the path-level ones (format ``paths``)."""
    out = []
    for sample in manifest_samples():
        if formats is None or sample.format in formats:
            out += cases_for(sample)
    if formats is None or "paths" in formats:
        out += list(path_cases())
    ids = [c.case_id for c in out]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return out


def _spread(n: int, count: int) -> list[int]:
    """About ``count`` offsets spread over 0..n-1 (always 0, 1 and n-1)."""
    if n <= 0:
        return []
    return sorted({0, min(1, n - 1), n - 1} | {n * i // count for i in range(count)})


# -------------------------------------------------------------------------- TF V2 bundle
@dataclass
class BundleFacts:
    """What the generator needs to know of a valid bundle: its table, entries and byte ranges."""

    rel_prefix: str  # the prefix relative to the sample's placed root
    index: bytes
    rows: list  # [(key, value)] in table order, header first
    entries: dict  # key -> decoded entry (not the header)
    shards: dict  # shard_id -> (file name, size)
    cell_keys: set  # keys (full names and slice keys) whose bytes the cells read
    cell_scopes: list  # cell names
    num_shards: int


@functools.lru_cache(maxsize=None)
def bundle_facts(prefix: str, rel_prefix: str, open_path: str) -> BundleFacts:
    from gruinspect.inventory import open_cells

    index = Path(prefix + ".index").read_bytes()
    rows = list(iter_table(index))
    header = _wire.parse(rows[0][1])
    num_shards = _wire.get_int(header, 1)
    entries = {k: decode_entry(v) for k, v in rows[1:]}
    shards = {}
    for i in range(num_shards):
        name = f"{os.path.basename(prefix)}.data-{i:05d}-of-{num_shards:05d}"
        shards[i] = (name, os.path.getsize(os.path.join(os.path.dirname(prefix), name)))
    with open_cells(open_path) as (store, inventory):
        keys = getattr(store, "checkpoint_keys", {})  # object checkpoints: exposed name -> key
        cell_names = {keys.get(t, t) for c in inventory.cells for t in c.tensors.values()}
        scopes = [c.name for c in inventory.cells]
    cell_keys = set()
    for key, e in entries.items():
        if key[:1] != b"\x00" and key.decode("utf-8", "replace") in cell_names:
            cell_keys.add(key)
            for extents in e["slices"]:
                cell_keys.add(slice_key(key.decode(), extents))
    return BundleFacts(rel_prefix, index, rows, entries, shards, cell_keys, scopes, num_shards)


def _rebuilt(rows, **kw) -> bytes:
    return write_table(list(rows), **kw)


def bundle_cases(sample: Sample, *, prefix: Path | None = None, fmt: str | None = None) -> Iterator[Case]:
    """Cases for a V2 bundle; ``prefix`` names the bundle inside the sample (SavedModel variables)."""
    prefix = prefix or sample.path
    rel_prefix = os.path.relpath(prefix, SAMPLES)
    facts = bundle_facts(str(prefix), rel_prefix, str(sample.path))
    fmt = fmt or sample.format
    sid = sample.name
    index_rel = rel_prefix + ".index"
    rng = random.Random(f"bundle-{sid}")

    def case(suffix, description, build, **kw):
        return Case(f"{fmt}/{sid}/{suffix}", description, build, fmt, **kw)

    on_copy = sample.on_copy

    def with_index(data: bytes):
        return on_copy(lambda dst: (dst / index_rel).write_bytes(data))

    def with_rows(rows, **kw):
        return with_index(_rebuilt(rows, **kw))

    full = sample.full
    yield from table_cases(case, on_copy, index_rel, facts.index, full=full)
    data0 = facts.shards[0][0]
    yield case("index-is-data", "the index holds the data shard's bytes",
               on_copy(lambda dst: shutil.copyfile(dst / os.path.dirname(rel_prefix) / data0, dst / index_rel)))

    # -- a valid index rebuilt with tiny blocks: readable, and truncated at each block boundary
    rows = facts.rows
    multi = _rebuilt(rows, block_size=48, restart_interval=2)
    yield case("index-multiblock-valid", "index rebuilt with many small blocks (still valid)", with_index(multi), expect=OK)
    for k in sorted({s for _, s, _ in table_regions(multi)} | {e for _, _, e in table_regions(multi)} - {len(multi)}) if full else ():
        yield case(f"index-multiblock-truncated-{k}", f"multi-block index truncated to {k} of {len(multi)} bytes",
                   with_index(multi[:k]))

    if full:
        yield case("index-key-bomb", "a table whose prefix-compressed keys spell 4 GiB",
                   on_copy(lambda dst: (dst / index_rel).write_bytes(_key_bomb(rows[0]))), huge=True)

    # -- data shards: truncated at tensor boundaries, flipped inside the cells' tensors, missing
    for shard_id, (shard_name, size) in facts.shards.items():
        shard_rel = os.path.join(os.path.dirname(rel_prefix), shard_name)
        ends = {e["offset"] for e in facts.entries.values() if e["size"] and e["shard_id"] == shard_id}
        ends |= {e["offset"] + e["size"] for e in facts.entries.values() if e["size"] and e["shard_id"] == shard_id}
        last = max((e["offset"] + e["size"] for e in facts.entries.values()
                    if e["size"] and e["shard_id"] == shard_id), default=0)
        if not full:
            ends = set(sorted(ends)[:4])
        for k in sorted((ends | (set(_spread(size, 6)) if full else {0})) - {size}):
            yield case(f"shard{shard_id}-truncated-{k}", f"data shard {shard_id} truncated to {k} of {size} bytes",
                       on_copy(lambda dst, p=shard_rel, k=k: truncate(dst / p, k)),
                       expect=ERROR if k < last else OK)
        yield case(f"shard{shard_id}-missing", f"data shard {shard_name} deleted",
                   on_copy(lambda dst, p=shard_rel: os.remove(dst / p)))
        yield case(f"shard{shard_id}-folder", f"data shard {shard_name} replaced by a folder",
                   on_copy(lambda dst, p=shard_rel: (os.remove(dst / p), os.mkdir(dst / p))))
        yield case(f"shard{shard_id}-fifo", f"data shard {shard_name} replaced by a named pipe (must not hang)",
                   on_copy(lambda dst, p=shard_rel: (os.remove(dst / p), os.mkfifo(dst / p))))
        yield case(f"shard{shard_id}-trailing-bytes", "data shard with extra bytes after the last tensor (TF ignores them)",
                   on_copy(lambda dst, p=shard_rel, size=size: overwrite(dst / p, size, b"\x00junk")), expect=OK)
        if shard_id == 0:
            yield case("shard-names-other-count", "data shard renamed to -of-00009 (the header says otherwise)",
                       on_copy(lambda dst, p=shard_rel: os.rename(
                           dst / p, dst / p.replace(f"-of-{facts.num_shards:05d}", "-of-00009"))))
        for key in sorted(facts.cell_keys):
            e = facts.entries[key]
            if e["slices"] or not e["size"] or e["shard_id"] != shard_id:
                continue
            start, stop = e["offset"], e["offset"] + e["size"]
            for off in sorted({start, stop - 1, rng.randrange(start, stop)}) if full else [rng.randrange(start, stop)]:
                bit = off * 8 + rng.randrange(8)
                yield case(f"shard{shard_id}-flip-{bit}",
                           f"bit {bit} of data shard {shard_id} flipped (tensor {key.decode('utf-8', 'backslashreplace')})",
                           on_copy(lambda dst, p=shard_rel, bit=bit: flip(dst / p, bit)), expect=ON_READ, checksum=True)

    # -- entries garbled at the protobuf level (table rebuilt with good checksums)
    def replace_row(key, value):
        return [(k, value if k == key else v) for k, v in rows]

    def edit(key, **changes):
        e = dict(facts.entries[key])
        e.update(changes)
        return replace_row(key, encode_entry(e))

    yield case("header-garbage", "header entry is not a protobuf", with_rows(replace_row(b"", b"\xff" * 11)))
    yield case("header-missing", "the header entry is missing", with_rows(rows[1:]))
    yield case("header-zero-shards", "header says 0 shards", with_rows(replace_row(b"", encode_header(0))))
    yield case("header-2g-shards", "header says 2**31-1 shards", with_rows(replace_row(b"", encode_header(2**31 - 1))))
    yield case("header-other-shards", f"header says {facts.num_shards + 1} shards",
               with_rows(replace_row(b"", encode_header(facts.num_shards + 1))))
    header = rows[0][1]
    for k in range(len(header)) if full else ():
        yield case(f"header-cut-{k}", f"header entry cut to {k} bytes", with_rows(replace_row(b"", header[:k])), expect=ANY,
                   why="a prefix of the header proto can still parse: its proto3 fields then take their defaults")
    yield case("duplicate-row", "an entry appears twice", with_rows(rows[:2] + rows[1:]))
    if len(rows) > 2:
        yield case("rows-swapped", "two entries out of key order", with_rows([rows[0], rows[2], rows[1]] + rows[3:]))
    yield case("second-empty-key", "a second entry with the empty key", with_rows([rows[0], (b"", rows[1][1])] + rows[1:]))

    plain = [k for k in sorted(facts.cell_keys) if k[:1] != b"\x00" and not facts.entries[k]["slices"]]
    others = [k for k in facts.entries if k not in facts.cell_keys and k[:1] != b"\x00" and facts.entries[k]["size"]]
    targets = plain[:1] + (others[:1] if full else [])
    for key in targets:
        e = facts.entries[key]
        tag = key.decode("utf-8", "backslashreplace").replace("/", "_")
        value = dict(rows)[key]
        big = 1 << 40
        variants = [
            ("garbage", "its entry is 11 bytes of 0xff", replace_row(key, b"\xff" * 11), ERROR, False),
            ("wire-type-7", "its entry has wire type 7", replace_row(key, b"\x0f"), ERROR, False),
            ("length-past-end", "its shape field claims bytes past the entry", replace_row(key, b"\x12\x7f\x12"), ERROR, False),
            ("dtype-as-bytes", "its dtype is length-delimited", replace_row(key, pb_bytes(1, b"x") + value[2:]), ERROR, False),
            ("unknown-rank", "its shape has unknown rank", edit(key, dims=None), ERROR, False),
            ("negative-dim", "its shape has a negative dimension", edit(key, dims=[-3] + (e["dims"] or [])[1:]), ERROR, False),
            ("dtype-invalid", "its dtype is DT_INVALID (0)", edit(key, dtype=0), ERROR, False),
            ("dtype-other-size", "its dtype has another item size than its bytes",
             edit(key, dtype=1 if e["dtype"] in (2, 9, 18, 8, 23) else 2), ERROR, False),
            ("shape-tb", "its shape claims terabytes", edit(key, dims=[1 << 20, 1 << 21]), ERROR, True),
            ("shape-size-tb", "its shape and size claim 4 TiB", edit(key, dims=[1 << 20, 1 << 20], dtype=1, size=1 << 42), ERROR, True),
            ("size-tb", "its size claims a terabyte", edit(key, size=big), ERROR, True),
            ("offset-at-end", "its offset is the end of the shard",
             edit(key, offset=facts.shards[e["shard_id"]][1]), ERROR, False),
            ("offset-huge", "its offset is 2**62", edit(key, offset=1 << 62), ERROR, False),
            ("offset-negative", "its offset is -8", edit(key, offset=-8), ERROR, False),
            ("size-negative", "its size is -4", edit(key, size=-4), ERROR, False),
            ("shard-out-of-range", "it is in shard 7", edit(key, shard_id=7), ERROR, False),
            ("shard-negative", "it is in shard -1", edit(key, shard_id=-1), ERROR, False),
        ]
        if key in facts.cell_keys:
            variants += [
                ("crc-wrong", "its crc32c is off by one bit", edit(key, crc=(e["crc"] or 0) ^ 1), ON_READ, False),
                ("crc-missing", "its crc32c field is absent", edit(key, crc=None), ON_READ, False),
            ]
        for name, what, new_rows, expect, huge in variants:
            yield case(f"entry-{name}-{tag}", f"tensor {key.decode('utf-8', 'backslashreplace')}: {what}",
                       with_rows(new_rows), expect=expect, huge=huge,
                       checksum=name.startswith("crc"))
        for k in range(len(value)) if key in facts.cell_keys and full else ():
            yield case(f"entry-cut-{k}-{tag}", f"entry of {key.decode('utf-8', 'backslashreplace')} cut to {k} bytes",
                       with_rows(replace_row(key, value[:k])), expect=ANY,
                       why="a cut entry proto may still parse, its missing fields at their defaults; a reader "
                           "then either finds the entry inconsistent (exit 2) or never needs its data (exit 0)")

    # -- partitioned variables (docs/tf-checkpoints.md)
    sliced = [k for k in sorted(facts.entries) if facts.entries[k]["slices"]]
    for key in sliced[:2]:
        e = facts.entries[key]
        name = key.decode()
        tag = name.replace("/", "_")
        exts = e["slices"]
        first, second = exts[0], exts[1] if len(exts) > 1 else None

        def slice_row(extents):
            return slice_key(name, extents)

        yield case(f"slice-out-of-range-{tag}", "a slice extends past its dimension",
                   with_rows(edit(key, slices=[[(s, (l or 0) + 100) for s, l in first]] + exts[1:])))
        yield case(f"slice-rank-{tag}", "a slice has the wrong rank", with_rows(edit(key, slices=[first[:-1] or [(0, 1), (0, 1)]] + exts[1:])))
        yield case(f"slice-missing-{tag}", "a slice entry is missing",
                   with_rows([r for r in rows if r[0] != slice_row(first)]))
        yield case(f"slice-twice-{tag}", "the first slice listed twice (for a halved tensor the volume adds up)",
                   with_rows(edit(key, slices=[first, first])))
        yield case(f"slices-tb-{tag}", "the full entry's shape claims terabytes",
                   with_rows(edit(key, dims=[1 << 40] + e["dims"][1:])), huge=True)
        piece = facts.entries[slice_row(first)]
        yield case(f"slice-shape-{tag}", "a slice entry's shape does not match its extent",
                   with_rows(sorted(replace_row(slice_row(first), encode_entry(dict(piece, dims=[1] * len(piece["dims"]), size=4))))))
        yield case(f"slice-dtype-{tag}", "a slice entry's dtype differs from the tensor's",
                   with_rows(replace_row(slice_row(first), encode_entry(dict(piece, dtype=3)))))
        yield case(f"slice-flip-{tag}", "bit flipped in a slice's data",
                   on_copy(lambda dst, p=piece: flip(dst / os.path.dirname(rel_prefix) / facts.shards[p["shard_id"]][0],
                                                      (p["offset"] + p["size"] // 2) * 8 + 3)),
                   expect=ON_READ, checksum=True)
        if second is not None and len(first) >= 1 and first[0][1] and first[0][1] > 1:
            # shift the second slice so the two overlap by one row; the volume still adds up
            shifted = [(second[0][0] - 1, second[0][1])] + second[1:]
            new_rows = [(slice_row(shifted) if k == slice_row(second) else k, v) for k, v in edit(key, slices=[first, shifted])]
            yield case(f"slices-overlap-{tag}", "two slices overlap, leaving rows unwritten",
                       with_rows(sorted(new_rows)), expect=ON_READ)

    # -- string tensors
    strings = [k for k, e in facts.entries.items() if e["dtype"] == 7 and e["size"] and k[:1] != b"\x00"]
    for key in strings:
        e = facts.entries[key]
        if e["size"] < 10:
            continue
        tag = key.decode().replace("/", "_")
        shard_file = os.path.join(os.path.dirname(rel_prefix), facts.shards[e["shard_id"]][0])
        # the object graph is read when the checkpoint is opened; other strings only if a cell needs them
        yield case(f"string-length-over-64-bits-{tag}", f"string tensor {key.decode()}: its first length is a 70-bit varint",
                   on_copy(lambda dst, p=shard_file, off=e["offset"]: overwrite(dst / p, off, b"\xff" * 9 + b"\x7f")),
                   expect=ERROR if key == b"_CHECKPOINTABLE_OBJECT_GRAPH" else ANY,
                   why="only the object graph is read on open; another string tensor is read only when a "
                       "command needs it")
        if key == b"_CHECKPOINTABLE_OBJECT_GRAPH":
            bit = (e["offset"] + e["size"] // 2) * 8 + 5
            yield case("object-graph-flip", "bit flipped in the middle of the object graph",
                       on_copy(lambda dst, p=shard_file, bit=bit: flip(dst / p, bit)), expect=ERROR)
    for key in strings[:1]:
        tag = key.decode().replace("/", "_")
        yield case(f"string-shape-tb-{tag}", "a string tensor claims 2**40 elements", with_rows(edit(key, dims=[1 << 40])), huge=True)
        yield case(f"string-size-past-{tag}", "a string tensor's size runs past the shard",
                   with_rows(edit(key, size=facts.shards[facts.entries[key]["shard_id"]][1])))

    # -- hostile names: valid files, split must stay inside --out
    if full and facts.cell_scopes and not sliced and any(k.startswith(facts.cell_scopes[0].encode() + b"/") for k in plain):
        scope = facts.cell_scopes[0].encode()
        hostile = {
            "dotdot": b"../../escape",
            "absolute": b"/tmp/gruinspect-escape",
            "non-utf8": b"\xff\xfe/cell",
            "newline": b"line\nbreak",
            "escape-seq": b"\x1b[31mred",
            "dots": b"..",
            "root": b"",
            "long": b"x" * 300,
            "backslash": b"..\\..\\win",
        }
        for label, new in hostile.items():
            def renamed(new=new):
                out = []
                for k, v in rows:
                    if k.startswith(scope + b"/"):
                        k = (new + k[len(scope):]) if new else k[len(scope) + 1:]
                    out.append((k, v))
                return sorted(out)
            yield case(f"name-{label}", f"cell scope {scope.decode()} renamed to {new!r}", with_rows(renamed()), expect=OK)
        # a name with a newline and a non-UTF-8 byte, and damaged data: the error stays one line
        e = facts.entries[next(k for k in plain if k.startswith(scope + b"/"))]
        renamed_rows = sorted(((b"bad\n\xff/" + k if k.startswith(scope + b"/") else k), v) for k, v in rows)
        shard_file = os.path.join(os.path.dirname(rel_prefix), facts.shards[e["shard_id"]][0])
        yield case("name-newline-flip", "a cell named with a newline and a non-UTF-8 byte, with a bit flipped in its data",
                   on_copy(lambda dst: ((dst / index_rel).write_bytes(_rebuilt(renamed_rows)),
                                        flip(dst / shard_file, e["offset"] * 8 + 1))),
                   expect=ON_READ, checksum=True)
        if len(facts.cell_scopes) > 1:
            second_scope = facts.cell_scopes[1].encode()
            def colliding():
                out = []
                for k, v in rows:
                    if k.startswith(scope + b"/"):
                        k = b"a/b" + k[len(scope):]
                    elif k.startswith(second_scope + b"/"):
                        k = b"A__b" + k[len(second_scope):]
                    out.append((k, v))
                return sorted(out)
            yield case("name-collision", "two cell scopes that map to the same folder name (a/b, A__b)",
                       with_rows(colliding()), expect=OK)


def _same_handles(data: bytes, bit: int) -> tuple[bool, bool]:
    """Whether flipping ``bit`` leaves the footer's metaindex and index handles decoding the same."""
    def handles(buf):
        footer = buf[len(buf) - FOOTER_SIZE:]
        try:
            a, b, pos = _handle(footer, 0)
            c, d, _ = _handle(footer, pos)
        except _wire.WireError:
            return None, None
        return (a, b), (c, d)

    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    before, after = handles(data), handles(bytes(changed))
    return before[0] == after[0], before[1] == after[1]


def table_cases(case, on_copy, rel: str, data: bytes, *, data_blocks: str = ERROR,
                data_checksum: bool = False, prefix: str = "index", full: bool = True,
                metaindex: str = ERROR) -> Iterator[Case]:
    """Truncations at every block boundary and bit flips in every block of one table file.

    ``data_blocks`` is what a flip in a data block must give (a V1 file keeps tensor bytes there);
    ``metaindex`` what a flip in the (always empty) metaindex block or its handle must give.
    """
    n = len(data)
    regions = table_regions(data)
    rng = random.Random(f"table-{rel}")
    boundaries = {s for _, s, _ in regions} | {e for _, _, e in regions}
    spread = set(_spread(n, 12)) if full else set()
    for k in sorted((boundaries | spread | {n - 8, n - FOOTER_SIZE}) - {n}):
        yield case(f"{prefix}-truncated-{k}", f"{rel} truncated to {k} of {n} bytes",
                   on_copy(lambda dst, k=k: truncate(dst / rel, k)))
    for label, start, stop in regions:
        if stop <= start:
            continue
        if label == "footer padding":
            # unread padding (TF ignores it too): harmless, must stay readable
            bit = rng.randrange(start * 8, stop * 8)
            yield case(f"{prefix}-flip-padding-{bit}", f"bit flip in the footer's zero padding of {rel}",
                       on_copy(lambda dst, bit=bit: flip(dst / rel, bit)), expect=OK)
            continue
        if full:
            offsets = range(start, stop) if stop - start <= 8 else sorted({start, stop - 1} | set(rng.sample(range(start, stop), 4)))
        else:
            offsets = [rng.randrange(start, stop)]
        in_data = label.startswith("data block")
        for off in offsets:
            bit = off * 8 + rng.randrange(8)
            expect = data_blocks if in_data else metaindex if label.startswith("metaindex") else ERROR
            where = label
            if label == "footer handles":
                same_meta, same_index = _same_handles(data, bit)
                if same_meta and same_index:
                    expect = OK  # a continuation bit that swallows a zero padding byte: the same numbers
                elif same_index:
                    expect, where = metaindex, "footer metaindex handle"
            yield case(f"{prefix}-flip-{where.replace(' ', '-')}-{bit}", f"bit {bit} of {rel} flipped ({where})",
                       on_copy(lambda dst, bit=bit: flip(dst / rel, bit)),
                       expect=expect, checksum=data_checksum and in_data)
    yield case(f"{prefix}-wrong-magic", f"the footer magic of {rel} is zeroed",
               on_copy(lambda dst: overwrite(dst / rel, -8, b"\x00" * 8)))
    yield case(f"{prefix}-zip-magic", f"the footer magic of {rel} replaced by zip bytes",
               on_copy(lambda dst: overwrite(dst / rel, -8, b"PK\x05\x06\x00\x00\x00\x00")))
    yield case(f"{prefix}-zeros", f"{rel} is all zero bytes", on_copy(lambda dst: (dst / rel).write_bytes(bytes(n))))
    yield case(f"{prefix}-empty", f"{rel} is empty", on_copy(lambda dst: (dst / rel).write_bytes(b"")))


@generator("tf-checkpoint-v2", "tf-object-checkpoint")
def tf_checkpoint_v2_cases(sample: Sample) -> Iterator[Case]:
    yield from bundle_cases(sample)


@generator("tf-saved-model")
def tf_saved_model_cases(sample: Sample) -> Iterator[Case]:
    """The variables bundle gets every bundle case; saved_model.pb the generic file cases."""
    yield from bundle_cases(sample, prefix=sample.path / "variables" / "variables")
    yield from file_cases(sample, target=sample.path.relative_to(SAMPLES) / "saved_model.pb")


@generator("tf-checkpoint-v1")
def tf_checkpoint_v1_cases(sample: Sample) -> Iterator[Case]:
    """Each V1 shard is one table holding the tensor bytes in its data blocks (docs/tf-checkpoints.md, V1 checkpoints)."""
    fmt = sample.format

    def case(suffix, description, build, **kw):
        return Case(f"{fmt}/{sample.name}/{suffix}", description, build, fmt, **kw)

    on_copy = sample.on_copy

    shards = [f for f in sample.files() if f.name != "checkpoint"]
    for i, rel in enumerate(shards):
        data = (SAMPLES / rel).read_bytes()
        yield from table_cases(case, on_copy, str(rel), data, data_blocks=ON_READ, prefix=f"file{i}", full=sample.full)
        if len(shards) > 1:
            yield case(f"file{i}-missing", f"shard {rel} deleted", on_copy(lambda dst, rel=rel: os.remove(dst / rel)))


# ------------------------------------------------------------------ frozen GraphDef (.pb)
def pb_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """A message as ``[(field, wire type, value)]`` in order (bytes for wire types 1, 2 and 5)."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _wire.read_varint(buf, pos)
        number, wt = key >> 3, key & 7
        if wt == 0:
            value, pos = _wire.read_varint(buf, pos)
        elif wt == 2:
            n, pos = _wire.read_varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        else:
            width = 8 if wt == 1 else 4
            value, pos = buf[pos:pos + width], pos + width
        out.append((number, wt, value))
    return out


def pb_join(fields) -> bytes:
    out = b""
    for number, wt, value in fields:
        out += varint(number << 3 | wt)
        out += varint(value) if wt == 0 else (varint(len(value)) + value if wt == 2 else value)
    return out


def _edit_const(graph: bytes, node_name: bytes, edit_tensor) -> bytes:
    """The GraphDef with ``edit_tensor(fields)`` applied to the TensorProto of Const ``node_name``.

    GraphDef{node = 1: NodeDef{name = 1, op = 2, attr = 5: {key = 1, value = 2: AttrValue{tensor = 8}}}}.
    """
    def attr_value(av):
        return pb_join([(n, w, pb_join(edit_tensor(pb_fields(v))) if n == 8 else v) for n, w, v in pb_fields(av)])

    def attr(entry):
        fields = pb_fields(entry)
        if (1, 2, b"value") not in fields:
            return entry
        return pb_join([(n, w, attr_value(v) if n == 2 else v) for n, w, v in fields])

    def node(nd):
        fields = pb_fields(nd)
        if (1, 2, node_name) not in fields:
            return nd
        return pb_join([(n, w, attr(v) if n == 5 else v) for n, w, v in fields])

    return pb_join([(n, w, node(v) if n == 1 else v) for n, w, v in pb_fields(graph)])


@generator("tf-frozen-graph")
def tf_frozen_graph_cases(sample: Sample) -> Iterator[Case]:
    """Truncations and flips (no checksums: any outcome but a crash), plus a Const claiming terabytes."""
    yield from file_cases(sample)
    fmt, graph = sample.format, sample.path.read_bytes()
    kernels = []
    for _, _, nd in pb_fields(graph):
        fields = pb_fields(nd)
        name = next((v for n, _, v in fields if n == 1), b"")
        if (2, 2, b"Const") in fields and name.endswith(b"kernel"):
            kernels.append(name)

    def grow_rows(tensor, keep_content=True):
        """dims [rows, cols] -> [rows + 2**26, cols]: a consistent GRU with a 2**26-wide input."""
        out = []
        for n, w, v in tensor:
            if n == 2:
                dims = [_wire.get_int(_wire.parse(d), 1) for d in _wire.parse(v).get(2, [])]
                dims[0] += 1 << 26
                v = pb_join([(2, 2, pb_varint(1, d)) for d in dims])
            if n != 4 or keep_content:
                out.append((n, w, v))
        return out

    for label, keep in (("rows-huge", True), ("rows-huge-no-content", False)):
        data = graph
        for name in kernels:
            data = _edit_const(data, name, lambda t, keep=keep: grow_rows(t, keep))
        yield Case(f"{fmt}/{sample.name}/{label}",
                   f"every GRU kernel Const claims 2**26 more rows ({'content kept' if keep else 'no content'})",
                   lambda dst, data=data: (sample.place(dst), (dst / sample.entry["path"]).write_bytes(data),
                                           dst / sample.entry["path"])[-1],
                   fmt, expect=ON_READ, huge=True)


@generator("onnx")
def onnx_cases(sample: Sample) -> Iterator[Case]:
    """ONNX models: truncations and flips (protobuf has no checksum), external data that leaves the
    folder, is missing or too short, and tensors whose dims claim far more than the file holds."""
    import onnx

    fmt, folder = sample.format, sample.path.parent
    size = sample.path.stat().st_size
    rng = random.Random(f"onnx-{sample.name}")

    def placed(mutate):
        """Copy the sample's whole folder (external data files too), then mutate the model file."""
        def build(dst: Path) -> Path:
            shutil.copytree(folder, dst / folder.name)
            path = dst / sample.entry["path"]
            mutate(path)
            return path
        return build

    def edited(edit):
        def mutate(path: Path) -> None:
            model = onnx.load(str(path), load_external_data=False)
            edit(model)
            path.write_bytes(model.SerializeToString())
        return placed(mutate)

    for k in _spread(size, 12 if sample.full else 5):
        yield Case(f"{fmt}/{sample.name}/truncated-{k}", f"{sample.entry['path']} truncated to {k} of {size} bytes",
                   placed(lambda p, k=k: truncate(p, k)), fmt, expect=ANY,
                   why="a protobuf cut at a field boundary is a shorter well-formed message (a graph without its "
                       "last nodes), cut inside a field it is an error")
    for bit in sorted(rng.sample(range(size * 8), min(16 if sample.full else 6, size * 8))):
        yield Case(f"{fmt}/{sample.name}/flip-{bit}", f"bit {bit} of {sample.entry['path']} flipped",
                   placed(lambda p, bit=bit: flip(p, bit)), fmt, expect=ANY,
                   why="ONNX has no checksum: a flipped bit can leave a valid model (a changed value or name)")
    yield Case(f"{fmt}/{sample.name}/zeroed", "the model overwritten with zeros",
               placed(lambda p: p.write_bytes(bytes(size))), fmt, expect=ERROR)

    def tensors(model):
        out = list(model.graph.initializer)
        for node in model.graph.node:
            out += [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    out += list(a.g.initializer)
        return out

    def huge_dims(model):
        t = max(tensors(model), key=lambda t: len(t.dims))
        t.dims[0] = 1 << 40

    yield Case(f"{fmt}/{sample.name}/dims-huge", "the largest tensor claims 2**40 rows", edited(huge_dims), fmt,
               expect=ERROR, huge=True)

    def tensor_attribute_without_tensor(model):  # a fuzzing find: an attribute typed TENSOR holding none
        attr = next(a for n in model.graph.node for a in n.attribute if a.type != onnx.AttributeProto.GRAPH)
        for name in ("f", "i", "s", "t", "floats", "ints", "strings"):
            attr.ClearField(name)
        attr.type = onnx.AttributeProto.TENSOR

    yield Case(f"{fmt}/{sample.name}/attribute-tensor-missing", "a node attribute typed TENSOR holds no tensor",
               edited(tensor_attribute_without_tensor), fmt, expect=ERROR)
    external = [t for t in tensors(onnx.load(str(sample.path), load_external_data=False))
                if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return

    def set_entry(key, value):
        def edit(model):
            for t in tensors(model):
                for e in t.external_data:
                    if e.key == key:
                        e.value = value
        return edit

    for label, key, value in (("absolute", "location", "/etc/passwd"), ("parent", "location", "../weights.bin"),
                              ("missing", "location", "no-such.bin"), ("length-huge", "length", str(1 << 40)),
                              ("offset-past-end", "offset", str(1 << 30))):
        yield Case(f"{fmt}/{sample.name}/external-{label}", f"external data {key} set to {value}",
                   edited(set_entry(key, value)), fmt, expect=ERROR, huge=label == "length-huge")
    data_file = external[0].external_data[0].value if external[0].external_data[0].key == "location" else None
    if data_file:
        yield Case(f"{fmt}/{sample.name}/external-file-truncated", f"{data_file} cut in half",
                   placed(lambda p: truncate(p.parent / data_file, (p.parent / data_file).stat().st_size // 2)),
                   fmt, expect=ERROR)


# ------------------------------------------------- generic generators for other formats
def file_cases(sample: Sample, *, truncation: str = ANY, target: Path | None = None) -> Iterator[Case]:
    """Truncations and bit flips of a single-file sample whose format has no generator of its own."""
    p = sample.path
    if target is not None:
        pass
    elif not p.is_file():  # a folder format without a generator: truncate and flip its largest file
        files = [f for f in sample.files() if (SAMPLES / f).is_file()]
        if not files:
            return
        target = max(files, key=lambda f: (SAMPLES / f).stat().st_size)
    else:
        target = p.relative_to(SAMPLES)
    size = (SAMPLES / target).stat().st_size
    rng = random.Random(f"file-{sample.name}")
    fmt = sample.format

    def on_copy(mutate):
        return sample.on_copy(lambda dst: mutate(dst / target))

    for k in _spread(size, 16 if sample.full else 6):
        if k < size:
            yield Case(f"{fmt}/{sample.name}/{target.name}-truncated-{k}", f"{target} truncated to {k} of {size} bytes",
                       on_copy(lambda f, k=k: truncate(f, k)), fmt, expect=truncation,
                       why="a format without a generator of its own: a cut past everything its reader needs "
                           "(trailing free space or padding) leaves a readable file, an earlier cut must be refused")
    for bit in sorted(rng.sample(range(size * 8), min(24 if sample.full else 8, size * 8))):
        yield Case(f"{fmt}/{sample.name}/{target.name}-flip-{bit}", f"bit {bit} of {target} flipped",
                   on_copy(lambda f, bit=bit: flip(f, bit)), fmt, expect=ANY,
                   why="this format has no checksum: a flipped bit can land in a byte no reader looks at "
                       "(padding, free space) or leave a value that is still valid")
    yield Case(f"{fmt}/{sample.name}/{target.name}-zeroed", f"{target} overwritten with zeros",
               on_copy(lambda f: f.write_bytes(bytes(size))), fmt, expect=ERROR)
    yield Case(f"{fmt}/{sample.name}/{target.name}-empty", f"{target} emptied", on_copy(lambda f: f.write_bytes(b"")), fmt, expect=ERROR)


def hdf5_cases(sample: Sample) -> Iterator[Case]:
    """Keras HDF5 weights (`.h5`, `.weights.h5`): truncation, flips, missing attributes, huge shapes."""
    yield from file_cases(sample, truncation=ERROR)
    fmt = sample.format
    if not sample.path.is_file():
        return
    import h5py

    with h5py.File(sample.path, "r") as f:
        root_attrs = list(f.attrs)
        groups = []
        f.visit(lambda name: groups.append(name) if isinstance(f[name], h5py.Group) and f[name].attrs else None)
        group_attrs = [(g, a) for g in groups for a in f[g].attrs]
        datasets = []
        f.visit(lambda name: datasets.append((name, f[name].shape, str(f[name].dtype)))
                if isinstance(f[name], h5py.Dataset) else None)

    def with_h5(mutate):
        def build(dst):
            path = sample.place(dst)
            with h5py.File(path, "r+") as f:
                mutate(f)
            return path
        return build

    for attr in root_attrs:
        yield Case(f"{fmt}/{sample.name}/no-root-attr-{attr}", f"root attribute {attr} deleted",
                   with_h5(lambda f, a=attr: f.attrs.__delitem__(a)), fmt,
                   expect=ERROR if attr == "layer_names" else ANY,
                   why="root attributes other than layer_names only describe the writer (keras_version, "
                       "backend, model_config): without them the weights still read")
    for group, attr in group_attrs:
        yield Case(f"{fmt}/{sample.name}/no-attr-{group.replace('/', '_')}-{attr}", f"attribute {attr} of {group} deleted",
                   with_h5(lambda f, g=group, a=attr: f[g].attrs.__delitem__(a)), fmt,
                   expect=ERROR if attr == "layer_names" else ANY,
                   why="a group without weight_names is a layer without weights, which is valid")
        yield Case(f"{fmt}/{sample.name}/int-attr-{group.replace('/', '_')}-{attr}", f"attribute {attr} of {group} made an int",
                   with_h5(lambda f, g=group, a=attr: f[g].attrs.__setitem__(a, 7)), fmt, expect=ANY,
                   why="an attribute no command needs may hold anything; one that is needed must be refused")
    yield from hdf5_link_cases(sample, with_h5, [name for name, _, _ in datasets[:2]])
    if fmt in ("keras-h5", "keras-h5-weights"):
        for attr in ("weight_names", "layer_names"):
            yield Case(f"{fmt}/{sample.name}/million-{attr}",
                       f"one {attr} attribute (not split in chunks) lists 10**6 names, in dense attribute storage",
                       functools.partial(_million_names, sample, attr), fmt, huge=True)
    for name, shape, dtype in datasets[:4]:
        if len(shape) < 1 or dtype not in ("float16", "float32", "float64"):
            continue

        def huge(f, name=name, shape=shape, dtype=dtype):
            del f[name]
            big = ((1 << 28),) + tuple(shape[1:])  # chunked, never written: the file stays small
            f.create_dataset(name, shape=big, dtype=dtype, chunks=(1,) + tuple(shape[1:]) if shape[1:] else (1024,))
        yield Case(f"{fmt}/{sample.name}/dataset-huge-{name.replace('/', '_')}",
                   f"dataset {name} replaced by an unwritten one claiming {1 << 28} rows", with_h5(huge), fmt,
                   expect=ANY, huge=True,
                   why="listing reads metadata only and the dataset may belong to no cell; what the case "
                       "proves is the memory bound, measured for every command")


def _copy_h5(src, dst) -> None:
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for key, obj in src.items():
        if hasattr(obj, "keys"):
            _copy_h5(obj, dst.create_group(key))
        else:
            dst.create_dataset(key, data=obj[()])


def _million_names(sample: Sample, attr: str, dst: Path) -> Path:
    """The sample rewritten with the newest HDF5 object headers, whose attributes may exceed
    64 KiB (dense storage), and one ``attr`` of 10**6 names: ~7 MB that must be refused by count."""
    import h5py
    import numpy as np

    path = dst / sample.path.name
    with h5py.File(sample.path, "r") as src, h5py.File(path, "w", libver="latest") as f:
        _copy_h5(src, f)
        root = f["model_weights"] if "model_weights" in f else f
        group = root if attr == "layer_names" else next(
            root[n] for n in root if len(root[n].attrs.get("weight_names", [])))
        for key in [k for k in group.attrs if k.rstrip("0123456789") == attr]:  # the list, or its chunks
            del group.attrs[key]
        group.attrs.create(attr, np.array([b"w%d" % i for i in range(1_000_000)]))
    return path


def hdf5_link_cases(sample: Sample, with_h5, names: list[str]) -> Iterator[Case]:
    """Weights moved behind soft and external links (to a FIFO, to a valid copy), and groups
    hard-linked into a DAG of 2^40 paths or a cycle: never another file opened, never a hang."""
    import h5py
    import numpy as np

    fmt = sample.format

    def linked(name, kind):
        def mutate(f):
            folder = os.path.dirname(f.filename)
            other = os.path.join(folder, "other.h5")
            if kind == "fifo":
                os.mkfifo(other)
            elif kind == "file":
                with h5py.File(other, "w") as o:
                    o.create_dataset(name, data=np.asarray(f[name]))
            f.move(name, name + "_moved")
            f[name] = h5py.SoftLink("/" + name + "_moved") if kind == "soft" else h5py.ExternalLink(other, "/" + name)
        return mutate

    for name in names:
        for kind in ("soft", "fifo", "file"):
            yield Case(f"{fmt}/{sample.name}/link-{kind}-{name.replace('/', '_')}",
                       f"dataset {name} replaced by a {'soft link' if kind == 'soft' else 'external link to a ' + kind}",
                       with_h5(linked(name, kind)), fmt, expect=ANY,
                       why="Keras 1/2 lookups refuse the link; Keras 3's walk skips it with a warning, and "
                           "the file may still hold other cells")

    def dag(f):
        level = f.create_group("dag0")
        level.create_dataset("leaf", data=np.zeros(2, np.float32))
        for i in range(1, 41):
            up = f.create_group(f"dag{i}")
            up["a"], up["b"] = level, level
            level = up

    def cycle(f):
        g = f.create_group("cycle")
        g["root"], g["self"] = f["/"], g

    yield Case(f"{fmt}/{sample.name}/hardlink-dag", "groups hard-linked as a DAG of 2^40 paths", with_h5(dag), fmt,
               expect=ANY, why="the extra groups hold no cell: the file's cells still read, in linear time")
    yield Case(f"{fmt}/{sample.name}/hardlink-cycle", "a group hard-linked to the root and to itself",
               with_h5(cycle), fmt, expect=ANY, why="a cycle holds no cell: the file's cells still read")


def zip_cases(sample: Sample) -> Iterator[Case]:
    """Keras 3 `.keras` archives: truncation, flips, members missing or renamed."""
    yield from file_cases(sample, truncation=ERROR)
    fmt = sample.format
    if not sample.path.is_file():
        return
    with zipfile.ZipFile(sample.path) as zf:
        members = zf.namelist()

    def rezip(keep: Callable[[str], str | None]):
        def build(dst):
            path = sample.place(dst)
            with zipfile.ZipFile(SAMPLES / sample.entry["path"]) as src, zipfile.ZipFile(path, "w") as out:
                for info in src.infolist():
                    new = keep(info.filename)
                    if new is not None:
                        out.writestr(new, src.read(info))
            return path
        return build

    for member in members:
        yield Case(f"{fmt}/{sample.name}/no-member-{member.replace('/', '_')}", f"archive member {member} removed",
                   rezip(lambda m, gone=member: None if m == gone else m), fmt,
                   expect=ANY if member == "metadata.json" else ERROR,
                   why="metadata.json only names the Keras version: the weights and config stand without it")
    yield Case(f"{fmt}/{sample.name}/members-dotdot", "every archive member renamed to ../NAME",
               rezip(lambda m: "../" + m), fmt, expect=ERROR)

    def twice(member, differ):
        def build(dst):
            import warnings

            path = sample.place(dst)
            with zipfile.ZipFile(SAMPLES / sample.entry["path"]) as src, zipfile.ZipFile(path, "a") as out:
                data = src.read(member)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # zipfile's "Duplicate name" is the point
                    out.writestr(member, data[:-1] + bytes([data[-1] ^ 0x20]) if differ else data)
            return path
        return build

    for member in [m for m in members if m in ("config.json", "model.weights.h5")]:
        yield Case(f"{fmt}/{sample.name}/member-twice-different-{member}",
                   f"a second, different {member} appended to the archive", twice(member, True), fmt, expect=ERROR)
        yield Case(f"{fmt}/{sample.name}/member-twice-same-{member}",
                   f"an identical second {member} appended to the archive", twice(member, False), fmt, expect=OK)


# ------------------------------------------------------------------------- path cases
@functools.lru_cache(maxsize=None)
def _bomb_bytes() -> bytes:
    """A `.keras`-named zip whose weights member inflates 64 MiB of zeros from ~64 KiB."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.0"}))
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        zf.writestr("model.weights.h5", bytes(64 << 20))
    return buf.getvalue()


def _lying_zip() -> bytes:
    """A zip whose central directory says its weights member is 1 TiB uncompressed."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(100))
    data = bytearray(buf.getvalue())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:  # the central-directory record of the weights member: uncompressed size at +24
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + name_len] == b"model.weights.h5":
            struct.pack_into("<I", data, pos + 24, 0xFFFFFFF0)
        pos = data.find(b"PK\x01\x02", pos + 4)
    return bytes(data)


def path_cases() -> Iterator[Case]:
    """Inputs that are wrong as paths: missing, empty, folders, pipes, text, other formats; output folders."""
    fmt = "paths"
    base = next((s for s in manifest_samples() if s.name == "tf1_gru_single"), None)

    def c(suffix, description, build, **kw):
        return Case(f"{fmt}/{suffix}", description, build, fmt, **kw)

    def write(name: str, data: bytes):
        def build(dst):
            (dst / name).write_bytes(data)
            return dst / name
        return build

    yield c("missing", "a path that does not exist", lambda dst: dst / "nope.ckpt")
    yield c("missing-in-missing-folder", "a path under a folder that does not exist", lambda dst: dst / "no" / "such" / "model.ckpt")
    yield c("empty-folder", "an empty folder", lambda dst: dst)
    yield c("folder-of-junk", "a folder with no checkpoint in it",
            lambda dst: ((dst / "notes.txt").write_text("hello"), (dst / "w.bin").write_bytes(os.urandom(64)), dst)[-1])
    yield c("empty-file", "an empty file", write("model.ckpt", b""))
    yield c("text-file", "a text file", write("model.txt", b"this is not a checkpoint\n"))
    yield c("random-bytes", "random bytes", write("model.bin", random.Random(1).randbytes(4096)))
    yield c("npy-file", "a numpy .npy file", write("w.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }" + b" " * 52 + b"\n" + bytes(12)))
    yield c("pickle-file", "a Python pickle named .pt", write("w.pt", b"\x80\x02}q\x00."))
    yield c("fifo", "a named pipe (must not hang)", lambda dst: (os.mkfifo(dst / "pipe.ckpt"), dst / "pipe.ckpt")[1])
    yield c("fifo-index", "a folder whose only .index is a named pipe",
            lambda dst: (os.mkfifo(dst / "model.ckpt.index"), dst)[1])
    yield c("index-is-folder", "a folder whose model.ckpt.index is a folder",
            lambda dst: ((dst / "model.ckpt.index").mkdir(), dst)[1])
    yield c("zip-not-keras", "a .keras zip without Keras contents", lambda dst: _zip(dst / "model.keras", {"hello.txt": b"hi"}))
    yield c("zip-empty", "an empty zip named .keras", lambda dst: _zip(dst / "model.keras", {}))
    yield c("zip-bomb", "a .keras zip whose weights member inflates 1000:1", write("bomb.keras", _bomb_bytes()), huge=True)
    yield c("zip-lying-size", "a .keras zip whose directory claims a 4 GiB weights member", write("lie.keras", _lying_zip()), huge=True)
    yield c("zip-dotdot", "a .keras zip with members named ../config.json and /abs/model.weights.h5",
            lambda dst: _zip(dst / "model.keras", {"../config.json": b"{}", "/abs/model.weights.h5": b"\x89HDF\r\n\x1a\n"}))
    yield c("hdf5-not-keras", "an HDF5 file with no Keras attributes", _plain_hdf5)
    if base is None:
        return

    def on_base(mutate, ret=None):
        def build(dst):
            path = base.place(dst)
            mutate(dst, path)
            return ret(dst, path) if ret else path
        return build

    folder = lambda dst, path: path.parent  # noqa: E731
    yield c("state-garbled", "the `checkpoint` state file is binary junk",
            on_base(lambda dst, p: (p.parent / "checkpoint").write_bytes(b"\x00\xff" * 50), folder))
    yield c("state-names-missing", "the `checkpoint` state file names a prefix that does not exist",
            on_base(lambda dst, p: (p.parent / "checkpoint").write_text('model_checkpoint_path: "gone.ckpt"\n'), folder))
    yield c("state-bad-escape", "the `checkpoint` state file has a broken \\x escape",
            on_base(lambda dst, p: (p.parent / "checkpoint").write_text('model_checkpoint_path: "model\\x"\n'), folder))
    yield c("state-nul", "the `checkpoint` state file names a path with a NUL byte (\\000)",
            on_base(lambda dst, p: (p.parent / "checkpoint").write_text('model_checkpoint_path: "model\\000.ckpt"\n'), folder))
    yield c("state-outside", "the `checkpoint` state file names ../../etc/passwd",
            on_base(lambda dst, p: (p.parent / "checkpoint").write_text('model_checkpoint_path: "../../../../../../etc/passwd"\n'), folder))
    yield c("two-checkpoints", "a folder with two checkpoints and no state file",
            on_base(lambda dst, p: ((p.parent / "checkpoint").unlink(), shutil.copyfile(str(p) + ".index", p.parent / "other.ckpt.index")), folder))
    yield c("prefix-without-index", "the prefix of a bundle whose .index was deleted",
            on_base(lambda dst, p: os.remove(str(p) + ".index")))
    if os.geteuid() != 0:  # root reads anything
        yield c("unreadable-index", "the .index cannot be read (mode 000)",
                on_base(lambda dst, p: os.chmod(str(p) + ".index", 0)))
    yield c("out-not-empty", "split --out names a folder that exists and holds a file",
            lambda dst: base.place(dst), commands=("split",), out_exists=True, names="out")
    yield c("out-is-file", "split --out names an existing file", lambda dst: base.place(dst),
            commands=("split",), out_in_file=True, names="out")


def _zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _plain_hdf5(dst: Path) -> Path:
    import h5py
    import numpy as np

    with h5py.File(dst / "model.h5", "w") as f:
        f["x"] = np.zeros(3, np.float32)
    return dst / "model.h5"


import badinput_torch  # noqa: E402,F401 - registers the PyTorch and safetensors generators
import badinput_web  # noqa: E402,F401 - registers the TensorFlow.js and TFLite generators
