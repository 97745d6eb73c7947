"""Property tests of the low-level parsers: random bytes and random mutations of the real samples
only ever give a result or the project's own error, and valid inputs made by the test writers
round-trip exactly.

Covers ``formats/_wire.py`` (protobuf), ``formats/_table.py`` (SSTable, Snappy),
``formats/tf_bundle.py`` (entries, slices, strings, checksums) and ``formats/_tf_paths.py``.
"""
from __future__ import annotations

import shutil
import struct
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import badinput
from conftest import SAMPLES, manifest
from gruinspect.errors import ChecksumError, GruInspectError
from gruinspect.formats import _table, _tf_paths, _wire
from gruinspect.formats.tf_bundle import BundleStore, _Entry, _signed_num_increasing, slice_key

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TF_SAMPLES = [e["name"] for e in manifest() if e["format"] == "tf-checkpoint-v2"]
INDEXES = {name: (SAMPLES / name / "model.ckpt.index").read_bytes() for name in TF_SAMPLES}


# ------------------------------------------------------------------------------ mutations
def mutations(max_ops: int = 4):
    op = st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                   st.integers(0, 1 << 20), st.binary(min_size=1, max_size=8))
    return st.lists(op, min_size=1, max_size=max_ops)


def mutate(data: bytes, ops) -> bytes:
    """Apply (kind, position, payload) edits; positions wrap around the current length."""
    buf = bytearray(data)
    for kind, pos, payload in ops:
        n = len(buf)
        if kind == "insert":
            p = pos % (n + 1)
            buf[p:p] = payload
            continue
        if not n:
            continue
        p = pos % n
        if kind == "flip":
            buf[p] ^= 1 << (payload[0] % 8)
        elif kind == "set":
            buf[p:p + len(payload)] = payload
        elif kind == "delete":
            del buf[p:p + len(payload)]
        else:
            del buf[p:]
    return bytes(buf)


# --------------------------------------------------------------------------------- _wire
@FAST
@given(st.binary(max_size=200))
def test_wire_parse_random_bytes(data):
    try:
        fields = _wire.parse(data)
    except _wire.WireError:
        return
    for number, values in fields.items():
        assert number > 0 and all(isinstance(v, (int, bytes)) for v in values)
        for accessor in (_wire.get_int, _wire.get_bytes, _wire.get_str, _wire.get_messages, _wire.get_packed_varints):
            try:
                accessor(fields, number)
            except _wire.WireError:
                pass


@FAST
@given(st.binary(max_size=16), st.integers(0, 20))
def test_read_varint_random_bytes(data, pos):
    try:
        value, end = _wire.read_varint(data, pos)
    except _wire.WireError:
        return
    assert 0 <= value < 1 << 64 and pos < end <= len(data)


entry_dicts = st.fixed_dictionaries({
    "dtype": st.integers(0, 30),
    "dims": st.none() | st.lists(st.integers(0, 1 << 40), max_size=5),
    "shard_id": st.integers(-(1 << 31), 1 << 31),
    "offset": st.integers(-(1 << 63), (1 << 63) - 1),
    "size": st.integers(-(1 << 63), (1 << 63) - 1),
    "crc": st.none() | st.integers(0, 0xFFFFFFFF),
    "slices": st.lists(st.lists(st.tuples(st.integers(0, 1 << 40), st.none() | st.integers(0, 1 << 40)), max_size=3), max_size=3),
})


@FAST
@given(entry_dicts)
def test_bundle_entry_round_trip(e):
    """Any entry the writer can encode is decoded to the same numbers (int64 two's complement too)."""
    assert badinput.decode_entry(badinput.encode_entry(e)) == e
    fields = _wire.parse(badinput.encode_entry(e))
    if e["dims"] is None:
        with pytest.raises(_wire.WireError):
            _Entry(fields)
        return
    entry = _Entry(fields)
    assert (entry.shape, entry.offset, entry.size) == (tuple(e["dims"]), e["offset"], e["size"])


# --------------------------------------------------------------------------------- _table
@FAST
@given(st.binary(max_size=300), st.booleans())
def test_table_random_bytes(data, verify):
    try:
        rows = list(_table.iter_table(data, verify=verify))
    except _table.TableError:
        return
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in rows)


@FAST
@given(st.sampled_from(TF_SAMPLES), mutations(), st.booleans())
def test_table_mutated_real_indexes(name, ops, verify):
    """Without checksums the mutations reach the block and entry parsing itself."""
    data = mutate(INDEXES[name], ops)
    try:
        rows = list(_table.iter_table(data, verify=verify))
    except _table.TableError:
        return
    keys = [k for k, _ in rows]
    assert keys == sorted(set(keys))


@FAST
@given(st.dictionaries(st.binary(max_size=20), st.binary(max_size=40), max_size=40),
       st.integers(1, 300), st.integers(1, 20))
def test_table_round_trip(items, block_size, restart_interval):
    rows = sorted(items.items())
    data = badinput.write_table(rows, block_size=block_size, restart_interval=restart_interval)
    assert list(_table.iter_table(data)) == rows


@FAST
@given(st.binary(max_size=200))
def test_snappy_random_bytes(data):
    try:
        out = _table.snappy_decompress(data)
    except _table.TableError:
        return
    assert len(out) <= 64 * len(data) + 64


def _snappy_encode(data: bytes, copies) -> bytes:
    """A simple valid Snappy stream: literals, plus copies of earlier output where asked."""
    out = bytearray(badinput.varint(len(data)))
    pos = 0
    for at, length, back in copies:
        if not (pos < at < len(data)):
            continue
        chunk = data[pos:at]
        out += bytes([(len(chunk) - 1) << 2]) + chunk if len(chunk) <= 60 else \
            bytes([60 << 2, len(chunk) - 1]) + chunk if len(chunk) <= 256 else b""
        pos = at
        back = min(back, pos)
        length = min(length, len(data) - pos, 64)
        if back and length and data[pos:pos + length] == bytes(
                (data[pos - back:pos] * (length // back + 1))[:length]):
            out += bytes([2 | ((length - 1) << 2)]) + struct.pack("<H", back)
            pos += length
    chunk = data[pos:]
    while chunk:
        piece, chunk = chunk[:60], chunk[60:]
        out += bytes([(len(piece) - 1) << 2]) + piece
    return bytes(out)


@FAST
@given(st.binary(max_size=300).map(lambda b: b + b[: len(b) // 2] * 3),
       st.lists(st.tuples(st.integers(1, 600), st.integers(1, 64), st.integers(1, 300)), max_size=6))
def test_snappy_round_trip(data, copies):
    copies = sorted(copies)
    assume(all(len(data[:a]) <= 256 for a, _, _ in copies))
    encoded = _snappy_encode(data, copies)
    try:
        assert _table.snappy_decompress(encoded) == data
    except _table.TableError:  # the helper skipped a literal it could not encode
        assume(False)


# ------------------------------------------------------------------------------ bundles
@pytest.fixture(scope="module")
def work():
    folder = Path(tempfile.mkdtemp(prefix="gruinspect-prop-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _placed(work: Path, name: str) -> str:
    dst = work / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(SAMPLES / name, dst)
    return str(dst / "model.ckpt")


def _use(prefix: str, verify: bool = True):
    """Everything the commands do with a bundle; returns normally or raises GruInspectError."""
    from gruinspect.blocks import iter_blocks
    from gruinspect.layouts import find_cells

    with BundleStore(prefix, verify_checksums=verify) as store:
        for name in store.infos():
            store.read(name)
        for _ in iter_blocks(store, find_cells(store).cells):
            pass


@SLOW
@given(st.sampled_from(TF_SAMPLES), mutations())
def test_bundle_mutated_index_bytes(work, name, ops):
    prefix = _placed(work, name)
    Path(prefix + ".index").write_bytes(mutate(INDEXES[name], ops))
    try:
        _use(prefix)
    except GruInspectError:
        pass


@SLOW
@given(st.sampled_from(TF_SAMPLES), st.data(), st.booleans())
def test_bundle_mutated_entries(work, name, data, verify):
    """Entry values mutated, the table rebuilt with good checksums: the protobuf and the size,
    slice and dtype checks are what stand between the mutation and a crash."""
    prefix = _placed(work, name)
    rows = list(_table.iter_table(INDEXES[name]))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(rows) - 1))
        rows[i] = (rows[i][0], mutate(rows[i][1], data.draw(mutations(3))))
    Path(prefix + ".index").write_bytes(badinput.write_table(rows))
    try:
        _use(prefix, verify)
    except GruInspectError:
        pass


@SLOW
@given(st.sampled_from(TF_SAMPLES), st.data())
def test_bundle_entries_with_arbitrary_numbers(work, name, data):
    """Well-formed entries with any shape, offset, size, shard and slices: never a crash, and
    never an allocation beyond what the files hold (the checks run before allocating)."""
    prefix = _placed(work, name)
    rows = list(_table.iter_table(INDEXES[name]))
    i = data.draw(st.integers(1, len(rows) - 1))
    e = badinput.decode_entry(rows[i][1])
    e.update(data.draw(st.fixed_dictionaries({}, optional={
        "dims": st.lists(st.integers(0, 1 << 45), max_size=4),
        "dtype": st.integers(0, 30),
        "offset": st.integers(-8, 1 << 20),
        "size": st.integers(-8, 1 << 45),
        "shard_id": st.integers(-1, 3),
        "slices": st.lists(st.lists(st.tuples(st.integers(0, 12), st.none() | st.integers(0, 12)),
                                    min_size=1, max_size=2), max_size=3),
    })))
    rows[i] = (rows[i][0], badinput.encode_entry(e))
    Path(prefix + ".index").write_bytes(badinput.write_table(rows))
    held = sum(f.stat().st_size for f in Path(prefix).parent.iterdir())
    tracemalloc.start()
    try:
        _use(prefix)
    except GruInspectError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    # A claimed terabyte must be refused before it is allocated: what is allocated is bounded by
    # what the files hold (each tensor read whole, plus the parsing), never by the entry's numbers.
    assert peak < 4 * held + (4 << 20), f"allocated {peak} bytes for {held} bytes of files"


@SLOW
@given(st.sampled_from(TF_SAMPLES), mutations(), st.booleans())
def test_bundle_mutated_data(work, name, ops, verify):
    prefix = _placed(work, name)
    for shard in Path(prefix).parent.glob("model.ckpt.data-*"):
        shard.write_bytes(mutate(shard.read_bytes(), ops))
    try:
        _use(prefix, verify)
    except GruInspectError:
        pass


@SLOW
@given(st.sampled_from(TF_SAMPLES), st.data())
def test_bundle_single_bit_flip_in_tensor_data_is_a_checksum_error(work, name, data):
    prefix = _placed(work, name)
    with BundleStore(prefix) as store:
        spans = []
        for tensor, e in store._entries.items():
            pieces = [p for _, p in store._pieces(tensor, e)] if e.slices else [e]
            spans += [(tensor, store.shard_path(p.shard_id), p.offset, p.size) for p in pieces if p.size]
    tensor, shard, offset, size = data.draw(st.sampled_from(spans))
    bit = data.draw(st.integers(offset * 8, (offset + size) * 8 - 1))
    badinput.flip(Path(shard), bit)
    with BundleStore(prefix) as store, pytest.raises(ChecksumError):
        store.read(tensor)


@pytest.mark.parametrize("verify", [True, False])
def test_string_length_beyond_64_bits_is_an_error(work, verify):
    """Found by the fuzzer: a 70-bit length varint used to raise OverflowError."""
    from gruinspect.errors import InvalidFileError

    prefix = _placed(work, "dtypes_misc")
    with BundleStore(prefix) as store:
        e = store._entries["dtypes/string"]
        shard = store.shard_path(e.shard_id)
    badinput.overwrite(Path(shard), e.offset, b"\xff" * 9 + b"\x7f")
    with BundleStore(prefix, verify_checksums=verify) as store, \
            pytest.raises(ChecksumError if verify else InvalidFileError, match="dtypes/string"):
        store.read("dtypes/string")


# ---------------------------------------------------------- slice keys and state files
@FAST
@given(st.integers(-(1 << 62), 1 << 62), st.integers(-(1 << 62), 1 << 62))
def test_signed_num_increasing_keeps_order(a, b):
    """OrderedCode's promise, which slice keys rely on: byte order is numeric order."""
    ka, kb = _signed_num_increasing(a), _signed_num_increasing(b)
    assert (ka < kb) == (a < b) and (ka == kb) == (a == b)


@FAST
@given(st.text(max_size=30), st.lists(st.tuples(st.integers(0, 1 << 40), st.none() | st.integers(0, 1 << 40)), max_size=4))
def test_slice_keys_are_distinct_and_start_with_zero(name, extents):
    key = slice_key(name, extents)
    assert key[:1] == b"\x00"
    if extents:
        other = [(s + 1, l) for s, l in extents]
        assert slice_key(name, other) != key


@FAST
@given(st.text(max_size=60))
def test_state_unescape_never_raises(text):
    assert isinstance(_tf_paths._unescape(text), str)


@FAST
@given(st.binary(max_size=40))
def test_state_unescape_undoes_c_escaping(raw):
    escaped = "".join(chr(b) if 32 <= b < 127 and chr(b) not in '\\"' else f"\\{b:03o}" for b in raw)
    assert _tf_paths._unescape(escaped) == raw.decode("utf-8", "surrogateescape")


@FAST
@given(st.binary(max_size=200))
def test_state_file_random_bytes(work, content):
    folder = work / "state"
    folder.mkdir(exist_ok=True)
    (folder / "checkpoint").write_bytes(content)
    try:
        result = _tf_paths.bundle_prefix(str(folder))
    except GruInspectError:
        return
    assert result is None or isinstance(result, str)
