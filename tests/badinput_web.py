"""Bad-input cases for TensorFlow.js layers models and TFLite models (see badinput.py).

Registered with :func:`badinput.generator`; imported at the end of badinput.py.
"""
from __future__ import annotations

import json
import os
import random
import struct
from collections.abc import Iterator
from pathlib import Path

from badinput import ANY, ERROR, OK, SAMPLES, Case, Sample, _spread, file_cases, flip, generator, truncate
from gruinspect.formats import _flatbuffer as fb


# ------------------------------------------------------------------------------ TensorFlow.js
@generator("tfjs-layers-model")
def tfjs_cases(sample: Sample) -> Iterator[Case]:
    fmt = sample.format
    folder = sample.path.relative_to(SAMPLES)
    model_json = folder / "model.json"
    yield from file_cases(sample, truncation=ERROR, target=model_json)
    manifest = json.loads((SAMPLES / model_json).read_text())
    shards = [p for g in manifest["weightsManifest"] for p in g["paths"]]

    def case(suffix, description, build, **kw):
        return Case(f"{fmt}/{sample.name}/{suffix}", description, build, fmt, **kw)

    def on_json(edit):
        def mutate(dst: Path) -> None:
            m = json.loads((dst / model_json).read_text())
            edit(m)
            (dst / model_json).write_text(json.dumps(m))
        return sample.on_copy(mutate)

    rng = random.Random(f"tfjs-{sample.name}")
    for shard in shards:
        rel = folder / shard
        size = (SAMPLES / rel).stat().st_size
        yield case(f"{shard}-missing", f"shard {shard} deleted", sample.on_copy(lambda d, r=rel: os.remove(d / r)))
        yield case(f"{shard}-short", f"shard {shard} one byte short",
                   sample.on_copy(lambda d, r=rel, s=size: truncate(d / r, s - 1)))
        yield case(f"{shard}-long", f"shard {shard} with one byte appended",
                   sample.on_copy(lambda d, r=rel: (d / r).write_bytes((d / r).read_bytes() + b"\0")))
        bit = rng.randrange(size * 8)
        yield case(f"{shard}-flip-{bit}", f"bit {bit} of shard {shard} flipped (weight bytes have no checksum)",
                   sample.on_copy(lambda d, r=rel, b=bit: flip(d / r, b)), expect=OK)
    first = lambda m: m["weightsManifest"][0]["weights"][0]  # noqa: E731
    edits = [
        ("huge-shape", "the first weight claims [2**20, 2**20] elements",
         lambda m: first(m).update(shape=[1 << 20, 1 << 20]), ERROR, True),
        ("negative-shape", "the first weight has a negative dimension", lambda m: first(m).update(shape=[-1, 3]),
         ERROR, False),
        ("shape-not-list", "the first weight's shape is a string", lambda m: first(m).update(shape="3x4"), ERROR,
         False),
        ("escaping-path", "a shard path leaves the model's folder",
         lambda m: m["weightsManifest"][0].update(paths=["../../" + shards[0]]), ERROR, False),
        ("absolute-path", "a shard path is absolute",
         lambda m: m["weightsManifest"][0].update(paths=["/etc/passwd"]), ERROR, False),
        ("no-manifest", "weightsManifest removed", lambda m: m.pop("weightsManifest"), ERROR, False),
        ("manifest-not-list", "weightsManifest is an object", lambda m: m.update(weightsManifest={}), ERROR, False),
        ("duplicate-name", "two weights with one name",
         lambda m: m["weightsManifest"][0]["weights"][1].update(name=first(m)["name"]), ERROR, False),
        ("bad-dtype", "a weight of dtype complex128", lambda m: first(m).update(dtype="complex128"), ERROR, False),
        ("string-dtype", "a weight of dtype string", lambda m: first(m).update(dtype="string"), ERROR, False),
        ("dtype-not-name", "a weight's dtype is a list (found by mutation)",
         lambda m: first(m).update(dtype=["float32"]), ERROR, False),
        ("quantization-dtype-not-name", "a quantization dtype that is a list (found by mutation)",
         lambda m: first(m).update(quantization={"dtype": [1], "scale": 1, "min": 0}), ERROR, False),
        ("bad-quantization", "a weight quantized as int4",
         lambda m: first(m).update(quantization={"dtype": "int4", "scale": 1, "min": 0}), ERROR, False),
        ("graph-model", "format says graph-model", lambda m: m.update(format="graph-model"), ERROR, False),
        ("topology-garbage", "modelTopology is a list (the GRUs are then found by weight names)",
         lambda m: m.update(modelTopology=[1, 2]), OK, False),
        ("hostile-name", "a weight named with '..' and a newline (names are data, never paths)",
         lambda m: first(m).update(name="../evil\nname/kernel"), OK, False),
    ]
    for suffix, description, edit, expect, huge in edits:
        yield case(suffix, description, on_json(edit), expect=expect, huge=huge)


# ------------------------------------------------------------------------------ TFLite
def _tables(data: bytes):
    root = fb.root(data, b"TFL3")
    subgraphs = root.tables(2)
    tensors = [t for sg in subgraphs for t in sg.tables(0)]
    ops = [op for sg in subgraphs for op in sg.tables(3)]
    return root, tensors, ops


def _patch(rel: Path, pos: int, fmt: str, value):
    def mutate(dst: Path) -> None:
        data = bytearray((dst / rel).read_bytes())
        struct.pack_into(fmt, data, pos, value)
        (dst / rel).write_bytes(bytes(data))
    return mutate


@generator("tflite")
def tflite_cases(sample: Sample) -> Iterator[Case]:
    fmt = sample.format
    rel = sample.path.relative_to(SAMPLES)
    data = sample.path.read_bytes()
    size = len(data)
    rng = random.Random(f"tflite-{sample.name}")

    def case(suffix, description, build, **kw):
        return Case(f"{fmt}/{sample.name}/{suffix}", description, build, fmt, **kw)

    for k in sorted(set(_spread(size, 16 if sample.full else 6)) | {8, 12, size - 1}):
        if 0 < k < size - 1:
            yield case(f"truncated-{k}", f"{rel} truncated to {k} of {size} bytes",
                       sample.on_copy(lambda d, k=k: truncate(d / rel, k)), expect=ERROR)
    yield case(f"truncated-{size - 1}", f"{rel} without its last byte",
               sample.on_copy(lambda d: truncate(d / rel, size - 1)), expect=ANY,
               why="the last byte of a FlatBuffer can be the NUL after a string or alignment padding, which no "
                   "reader needs; when it holds data the file must be refused")
    for bit in sorted(rng.sample(range(size * 8), 24 if sample.full else 8)):
        yield case(f"flip-{bit}", f"bit {bit} of {rel} flipped", sample.on_copy(lambda d, b=bit: flip(d / rel, b)),
                   expect=ANY, why="a FlatBuffer has no checksum: a flipped bit may land in weight bytes, padding or "
                                   "a field that is still valid")
    yield case("zeroed", f"{rel} overwritten with zeros", sample.on_copy(lambda d: (d / rel).write_bytes(bytes(size))))
    yield case("root-past-end", "the root table offset points past the end",
               sample.on_copy(_patch(rel, 0, "<I", size + 100)))
    root, tensors, ops = _tables(data)
    buffers = root.tables(4)

    def has_data(t) -> bool:
        span = buffers[t.scalar(2, "I", 0)].vector_span(0, 1)
        return bool(span and span[1] > 4)

    const = next(t for t in tensors if t.vector_span(0, 4) and t.vector_span(0, 4)[1] >= 1 and t._field(2)
                 and has_data(t))
    start, _ = const.vector_span(0, 4)
    yield case("huge-shape", "a constant tensor claims 2**30 rows (its buffer holds far fewer bytes)",
               sample.on_copy(_patch(rel, start, "<i", 1 << 30)), huge=True)
    yield case("negative-shape", "a constant tensor has a dimension of -7",
               sample.on_copy(_patch(rel, start, "<i", -7)))
    yield case("buffer-index", "a tensor names buffer 2**31",
               sample.on_copy(_patch(rel, const._field(2), "<I", 1 << 31)))
    op = next((o for o in ops if o._field(0)), None)
    if op is not None:
        yield case("opcode-index", "an operator uses operator code 9999",
                   sample.on_copy(_patch(rel, op._field(0), "<I", 9999)))
    op_in = next(o for o in ops if o.vector_span(1, 4) and o.vector_span(1, 4)[1])
    yield case("operator-input", "an operator reads tensor 2**30",
               sample.on_copy(_patch(rel, op_in.vector_span(1, 4)[0], "<i", 1 << 30)))
    yield case("identifier", "file identifier TFL3 replaced by TFL2",
               sample.on_copy(lambda d: _patch(rel, 4, "4s", b"TFL2")(d)))
    yield from _options_cases(case, sample, rel, data, ops)


def _options_cases(case, sample: Sample, rel: Path, data: bytes, ops) -> Iterator[Case]:
    """A damaged builtin_options table (Operator field 3: its union type, field 4: its offset)."""
    from gruinspect.formats.tflite import OPTIONS_TYPES

    types = {t for t, _ in OPTIONS_TYPES.values()}
    op = next((o for o in ops if o.has(4) and o.scalar(3, "B", 0) in types), None)
    if op is None:  # a model of custom operators only (its options are custom_options)
        return
    size = len(data)
    where, table = op._field(4), op.table(4)
    kind = op.scalar(3, "B", 0)
    yield case("options-past-end", "an operator's builtin_options offset points past the end of the file",
               sample.on_copy(_patch(rel, where, "<I", size + 64 - where)))
    yield case("options-at-last-bytes", "an operator's builtin_options offset points at the file's last 2 bytes",
               sample.on_copy(_patch(rel, where, "<I", size - 2 - where)))
    yield case("options-vtable-before-start", "the options table's vtable offset points before the file",
               sample.on_copy(_patch(rel, table.pos, "<i", table.pos + 1000)))
    yield case("options-vtable-past-end", "the options table's vtable offset points past the end",
               sample.on_copy(_patch(rel, table.pos, "<i", table.pos - size - 1000)))
    if table._vt_size > 4:
        yield case("options-field-outside", "a field offset in the options table's vtable is 65535, outside the table",
                   sample.on_copy(_patch(rel, table._vt + 4, "<H", 0xFFFF)))
        yield case("options-table-size", "the options table's vtable says the table holds 0 bytes",
                   sample.on_copy(_patch(rel, table._vt + 2, "<H", 0)))
    if op._field(3):
        for wrong in (0, (kind + 1) % 256, 255):
            yield case(f"options-type-{wrong}", f"an operator's options union type {kind} replaced by {wrong}",
                       sample.on_copy(_patch(rel, op._field(3), "<B", wrong)))
