"""Coverage-guided fuzzing of gruinspect's readers with atheris (run by hand; not part of CI).

Every target feeds the fuzzer's bytes to one reader and accepts a result or gruinspect's own
errors; any other exception, a hang (-timeout) or a memory blow-up (-rss_limit_mb) is a finding,
saved by libFuzzer as ``crash-*`` / ``timeout-*`` / ``oom-*`` in the working folder.

    pip install atheris            # Python 3.11 wheels exist; not a test dependency
    python tests/fuzz/fuzz_readers.py --target bundle-entries -max_total_time=600 -timeout=10 \\
        -rss_limit_mb=2048 fuzz-corpus/bundle-entries
    python tests/fuzz/fuzz_readers.py --list

The corpus folder is seeded from sample_checkpoints/ when empty. Re-run one finding with
``python tests/fuzz/fuzz_readers.py --target T crash-...``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_checkpoints"
sys.path.insert(0, str(ROOT / "tests"))

with atheris.instrument_imports(include=["gruinspect"]):
    import gruinspect.blocks
    import gruinspect.export
    import gruinspect.formats
    import gruinspect.formats._json  # noqa: F401
    import gruinspect.inventory
    import gruinspect.layouts
    import gruinspect.stats
    from gruinspect.errors import GruInspectError
    from gruinspect.formats import _h5, _table, _tf_paths, _wire, open_store
    import gruinspect.formats._h5meta  # noqa: F401
    from gruinspect.formats._crc import crc32c, mask
    import gruinspect.formats.pytorch  # noqa: F401 - readers imported lazily elsewhere get coverage too
    import gruinspect.formats.safetensors  # noqa: F401
    import gruinspect.formats.tflite  # noqa: F401
    import gruinspect.layouts.tflite_gru  # noqa: F401
    import gruinspect.layouts.pytorch_gru  # noqa: F401
    import gruinspect.output
    import gruinspect.splitting
    import gruinspect.verify

import badinput  # noqa: E402  (the corpus helpers: table writer, entry encoder)

WORK = Path(tempfile.mkdtemp(prefix="gruinspect-fuzz-"))


def _consume(store) -> None:
    """What the commands do with a store: infos, every tensor, the cells and their blocks."""
    for name in list(store.infos()):
        store.read(name)
    discovery = gruinspect.layouts.find_cells(store)
    for _ in gruinspect.blocks.iter_blocks(store, discovery.cells):
        pass


def _open_and_consume(path: str) -> None:
    try:
        with open_store(path) as store:
            _consume(store)
    except GruInspectError:
        pass


# ----------------------------------------------------------------------------- low level
def target_wire(data: bytes) -> None:
    try:
        fields = _wire.parse(data)
        for number in fields:
            _wire.get_int(fields, number)
            _wire.get_bytes(fields, number)
            _wire.get_str(fields, number)
            _wire.get_messages(fields, number)
            _wire.get_packed_varints(fields, number)
    except _wire.WireError:
        pass


def target_table(data: bytes) -> None:
    verify = bool(data[:1]) and data[0] & 1
    try:
        for _ in _table.iter_table(data[1:], verify=verify):
            pass
    except _table.TableError:
        pass


def target_snappy(data: bytes) -> None:
    try:
        _table.snappy_decompress(data)
    except _table.TableError:
        pass


# -------------------------------------------------------------------------- TF bundles
def _bundle_copy(sample: str) -> str:
    """A private copy of a sample bundle (made once); returns its prefix."""
    dst = WORK / sample
    if not dst.exists():
        shutil.copytree(SAMPLES / sample, dst)
    return str(dst / "model.ckpt")


def target_bundle_index(data: bytes) -> None:
    """The fuzzer's bytes as the .index of a real bundle (its data shard stays valid)."""
    prefix = _bundle_copy("tf1_gru_single")
    Path(prefix + ".index").write_bytes(data)
    _open_and_consume(prefix)


_ENTRY_SAMPLES = ["tf1_gru_single", "tf1_partitioned", "dtypes_misc", "tf1_sharded"]


def target_bundle_entries(data: bytes) -> None:
    """A valid table (good checksums) whose entry values come from the fuzzer."""
    fdp = atheris.FuzzedDataProvider(data)
    sample = _ENTRY_SAMPLES[fdp.ConsumeIntInRange(0, len(_ENTRY_SAMPLES) - 1)]
    prefix = _bundle_copy(sample)
    original = SAMPLES / sample / "model.ckpt.index"
    rows = list(_table.iter_table(original.read_bytes()))
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        i = fdp.ConsumeIntInRange(0, len(rows) - 1)
        rows[i] = (rows[i][0], fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64)))
    if fdp.ConsumeBool():  # sometimes rename a key as well
        i = fdp.ConsumeIntInRange(1, len(rows) - 1)
        rows[i] = (fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)), rows[i][1])
        rows = [rows[0]] + sorted(rows[1:])
    Path(prefix + ".index").write_bytes(badinput.write_table(rows, block_size=fdp.ConsumeIntInRange(16, 4096)))
    _open_and_consume(prefix)


def target_bundle_strings(data: bytes) -> None:
    """The fuzzer's bytes as the stored bytes of a string tensor, checksums off and on."""
    prefix = _bundle_copy("dtypes_misc")
    from gruinspect.formats.tf_bundle import BundleStore

    shard = Path(prefix + ".data-00000-of-00001")
    rows = list(_table.iter_table((SAMPLES / "dtypes_misc" / "model.ckpt.index").read_bytes()))
    original = (SAMPLES / "dtypes_misc" / "model.ckpt.data-00000-of-00001").read_bytes()
    fdp = atheris.FuzzedDataProvider(data)
    count = fdp.ConsumeIntInRange(0, 8)
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    shard.write_bytes(original + payload)
    out = []
    for key, value in rows:
        if key == b"dtypes/string":
            e = badinput.decode_entry(value)
            e.update(offset=len(original), size=len(payload), dims=[count], crc=mask(crc32c(payload)))
            value = badinput.encode_entry(e)
        out.append((key, value))
    Path(prefix + ".index").write_bytes(badinput.write_table(out))
    for verify in (False, True):
        try:
            with BundleStore(prefix, verify_checksums=verify) as store:
                store.read("dtypes/string")
        except GruInspectError:
            pass


def target_state(data: bytes) -> None:
    """The fuzzer's bytes as a folder's `checkpoint` state file."""
    prefix = _bundle_copy("tf1_gru_single")
    Path(prefix).parent.joinpath("checkpoint").write_bytes(data)
    try:
        _tf_paths.bundle_prefix(str(Path(prefix).parent))
    except GruInspectError:
        pass


def _object_graph_sample() -> str | None:
    for name in ("tf2_keras3_checkpoint", "tf2_tf_keras_checkpoint"):
        if (SAMPLES / name).is_dir():
            return name
    return None


def target_object_graph(data: bytes) -> None:
    """The fuzzer's bytes as the _CHECKPOINTABLE_OBJECT_GRAPH of a TF2 checkpoint (valid crc)."""
    sample = _object_graph_sample()
    if sample is None:
        return
    dst = WORK / sample
    if not dst.exists():
        shutil.copytree(SAMPLES / sample, dst)
    index = next((SAMPLES / sample).glob("*.index"))
    prefix = str(dst / index.name[: -len(".index")])
    shard = Path(prefix + ".data-00000-of-00001")
    original = (SAMPLES / sample / shard.name).read_bytes()
    # DT_STRING scalar (docs/tf-checkpoints.md): varint length, masked crc of the length, the bytes
    length = badinput.varint(len(data))
    crc = crc32c(struct.pack("<I", len(data)) if len(data) < 1 << 32 else struct.pack("<Q", len(data)))
    check = struct.pack("<I", mask(crc))
    crc = crc32c(data, crc32c(check, crc))
    blob = length + check + data
    shard.write_bytes(original + blob)
    rows = []
    for key, value in _table.iter_table(index.read_bytes()):
        if key == b"_CHECKPOINTABLE_OBJECT_GRAPH":
            e = badinput.decode_entry(value)
            e.update(offset=len(original), size=len(blob), crc=mask(crc))
            value = badinput.encode_entry(e)
        rows.append((key, value))
    Path(prefix + ".index").write_bytes(badinput.write_table(rows))
    _open_and_consume(prefix)


# ---------------------------------------------------------------------- other formats
def _file_target(sample: str, member: str):
    """The fuzzer's bytes as one file of a sample (its other files stay valid), opened as the
    manifest says the sample is opened."""
    entry = next((e.entry for e in badinput.manifest_samples() if e.name == sample), None)

    def target(data: bytes) -> None:
        if entry is None:
            return
        if not (WORK / sample).exists():
            shutil.copytree(SAMPLES / sample, WORK / sample)
        (WORK / sample / member).write_bytes(data)
        _open_and_consume(str(WORK / entry["path"]))

    target.seed = SAMPLES / sample / member
    return target


def target_torch_pickle(data: bytes) -> None:
    """The fuzzer's bytes as the data.pkl of a PyTorch zip whose storages are those of a real
    sample: the restricted unpickler, the object walk and the storage checks."""
    path = WORK / "pickle.pt"
    with zipfile.ZipFile(SAMPLES / "torch_zip_bigru" / "model.pt") as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, data if info.filename.endswith("/data.pkl") else src.read(info))
    _open_and_consume(str(path))


def _torch_pickle_seed() -> bytes:
    with zipfile.ZipFile(SAMPLES / "torch_zip_bigru" / "model.pt") as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


target_torch_pickle.seed_bytes = _torch_pickle_seed


def target_any_file(data: bytes) -> None:
    """Any bytes under a name every reader might claim: all of detect()'s sniffers run."""
    fdp = atheris.FuzzedDataProvider(data)
    suffix = [".h5", ".keras", ".weights.h5", ".pb", ".ckpt", ".index", ""][fdp.ConsumeIntInRange(0, 6)]
    path = WORK / f"any{suffix}"
    for stale in WORK.glob("any*"):
        if stale.is_file():
            stale.unlink()
    path.write_bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))
    _open_and_consume(str(path))


def target_json(data: bytes) -> None:
    """The bounded-depth JSON decoder every reader uses: a value, ValueError or our own error."""
    try:
        gruinspect.formats._json.loads(data, "fuzz.json")
    except (GruInspectError, ValueError):
        pass


def target_h5meta(data: bytes) -> None:
    """The fuzzer's bytes as an HDF5 file for the native metadata parser alone (no h5py): a whole
    walk with every attribute and dataset, or NotNative; never another exception, hang or blow-up."""
    path = WORK / "h5meta.h5"
    path.write_bytes(data)
    try:
        root = gruinspect.formats._h5meta.open_root(str(path))
    except gruinspect.formats._h5meta.NotNative:
        return
    try:
        _h5.walk(root, lambda p, ds: (ds.shape, _h5.dataset_dtype(ds), dict(ds.attrs)),
                 lambda p, g: (len(g), dict(g.attrs)))
    except gruinspect.formats._h5meta.NotNative:
        pass
    finally:
        root.file.close()


target_h5meta.seed = SAMPLES / "tfkeras_full_h5" / "model.h5"


def target_keras_duplicates(data: bytes) -> None:
    """A real .keras archive plus a second copy of one member (chosen by the first byte) whose
    contents come from the fuzzer: identical copies read, different ones refused."""
    path = WORK / "duplicate.keras"
    with zipfile.ZipFile(SAMPLES / "keras3_archive" / "model.keras") as src:
        infos = src.infolist()
        twin = infos[data[0] % len(infos)] if data else infos[0]
        with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as out:
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
            for info in infos:
                out.writestr(info, src.read(info))
            out.writestr(twin.filename, data[1:] if data[1:] else src.read(twin))
    _open_and_consume(str(path))


def _tflite_options_spots() -> tuple[bytes, list[tuple[int, int]]]:
    """The tflite_while model and, per operator with builtin options, (union type byte, table vtable)."""
    from gruinspect.formats import _flatbuffer as fb

    data = (SAMPLES / "tflite_while" / "model.tflite").read_bytes()
    root = fb.root(data, b"TFL3")
    spots = [(op._field(3), op.table(4)._vt) for sg in root.tables(2) for op in sg.tables(3)
             if op.has(4) and op._field(3)]
    return data, spots


def target_tflite_options(data: bytes) -> None:
    """A real TFLite model whose one operator (chosen by the first byte) gets the union type of the
    second byte and the fuzzer's bytes over its options table's vtable and table."""
    model, spots = _tflite_options_spots()
    if not data or not spots:
        return
    type_at, vt = spots[data[0] % len(spots)]
    buf = bytearray(model)
    if len(data) > 1:
        buf[type_at] = data[1]
    patch = data[2:66]
    buf[vt:vt + len(patch)] = patch[: len(buf) - vt]
    path = WORK / "options.tflite"
    path.write_bytes(bytes(buf))
    _open_and_consume(str(path))


target_tflite_options.seed_bytes = lambda: b"\x00\x5d"  # WhileOptions, table untouched


def _split_folder() -> Path:
    """A real split of a bundled sample in WORK (made once), whose manifest the target replaces."""
    folder = WORK / "split"
    if not folder.exists():
        gruinspect.splitting.split(str(SAMPLES / "tf1_gru_single" / "model.ckpt"), str(folder))
    return folder


def target_export_manifest(data: bytes) -> None:
    """The fuzzer's bytes as the manifest.json of a real split, read and checked as `verify --exported`."""
    folder = _split_folder()
    (folder / gruinspect.output.MANIFEST).write_bytes(data)
    try:
        gruinspect.verify.verify(str(SAMPLES / "tf1_gru_single" / "model.ckpt"), exported=str(folder),
                                 oracle="numpy", steps=1, batch=1)
    except GruInspectError:
        pass


target_export_manifest.seed_bytes = lambda: (_split_folder() / gruinspect.output.MANIFEST).read_bytes()


TARGETS = {
    "wire": target_wire,
    "table": target_table,
    "snappy": target_snappy,
    "bundle-index": target_bundle_index,
    "bundle-entries": target_bundle_entries,
    "bundle-strings": target_bundle_strings,
    "state": target_state,
    "object-graph": target_object_graph,
    "v1": _file_target("tf1_v1_checkpoint", "model.ckpt"),
    "saved-model-pb": _file_target("tf2_keras3_export", "saved_model.pb"),
    "frozen-graph": _file_target("tf1_frozen_graph", "frozen.pb"),
    "keras-h5": _file_target("tfkeras_full_h5", "model.h5"),
    "keras-weights-h5": _file_target("keras3_weights_h5", "model.weights.h5"),
    "keras-archive": _file_target("keras3_archive", "model.keras"),
    "keras-sharded-json": _file_target("keras3_sharded", "model.weights.json"),
    "pytorch-zip": _file_target("torch_zip_bigru", "model.pt"),
    "pytorch-legacy": _file_target("torch_legacy", "model.pth"),
    "pytorch-pickle": target_torch_pickle,
    "torchscript": _file_target("torch_script", "scripted.pt"),
    "safetensors": _file_target("torch_bf16_safetensors", "model.safetensors"),
    "tfjs-model-json": _file_target("tfjs_quantized", "model.json"),
    "tfjs-shard": _file_target("tfjs_quantized", "group1-shard1of1.bin"),
    "tflite": _file_target("tflite_int8", "model.tflite"),
    "tflite-while": _file_target("tflite_while", "model.tflite"),
    "tflite-options": target_tflite_options,
    "onnx": _file_target("onnx_torch_bigru", "model.onnx"),
    "onnx-external": _file_target("onnx_helper_lbr0_external", "model.onnx"),
    "onnx-external-data": _file_target("onnx_helper_lbr0_external", "weights.bin"),
    "onnx-loop": _file_target("onnx_tf2onnx_loop", "model.onnx"),
    "any-file": target_any_file,
    "export-manifest": target_export_manifest,
    "json": target_json,
    "keras-config-json": _file_target("keras3_folder_bf16", "config.json"),
    "keras-duplicate-member": target_keras_duplicates,
    "h5meta": target_h5meta,
}


def seeds(target: str) -> list[bytes]:
    """Starting inputs for a target, from the samples."""
    indexes = [p.read_bytes() for p in sorted(SAMPLES.glob("*/model.ckpt.index"))]
    if target in ("table", "bundle-index"):
        return [b"\x00" + i for i in indexes] if target == "table" else indexes
    if target == "wire":
        return [v for i in indexes[:4] for _, v in _table.iter_table(i)]
    if target == "state":
        return [(SAMPLES / "tf1_gru_single" / "checkpoint").read_bytes()]
    if hasattr(TARGETS[target], "seed_bytes"):
        return [TARGETS[target].seed_bytes()]
    seed = getattr(TARGETS[target], "seed", None)
    if seed is not None and seed.exists():
        return [seed.read_bytes()]
    if target == "any-file":
        return [b"\x00" + p.read_bytes() for p in sorted(SAMPLES.glob("*/*.h5"))[:3]] + [b"\x01" + b"PK\x05\x06" + bytes(18)]
    return [bytes(16)]


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--target", choices=sorted(TARGETS), default="bundle-entries")
    parser.add_argument("--list", action="store_true")
    args, rest = parser.parse_known_args()
    if args.list:
        print("\n".join(sorted(TARGETS)))
        return
    corpus = [a for a in rest if not a.startswith("-") and os.path.isdir(a)]
    for folder in corpus:
        if not os.listdir(folder):
            for i, seed in enumerate(seeds(args.target)):
                Path(folder, f"seed-{i}").write_bytes(seed)
    atheris.Setup([sys.argv[0]] + rest, TARGETS[args.target])
    try:
        atheris.Fuzz()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
