"""The reader contract every module in ``gruinspect.formats.READERS`` keeps.

``sniff(path)`` names the format it found, ``open(path, fmt)`` returns a store that keeps that
name, ``detect`` reports it; readers never fork (the hang guard is a hook only the CLI installs).
"""
from __future__ import annotations

import contextlib
import re
import subprocess
import sys

import pytest

from conftest import ROOT, sample_path, samples
from gruinspect.errors import GruInspectError, UsageError
from gruinspect.formats import READERS, _guard, _reader, detect, open_store, tf_bundle


@pytest.mark.parametrize("name", READERS)
def test_every_reader_declares_its_formats_and_the_two_functions(name):
    reader = _reader(name)
    assert isinstance(getattr(reader, "FORMATS", None), tuple) and reader.FORMATS, (
        f"reader {name} must declare FORMATS, the tuple of format names its sniff returns (CONTRIBUTING.md)")
    assert all(isinstance(f, str) and f for f in reader.FORMATS)
    assert callable(reader.sniff) and callable(reader.open)


def test_no_two_readers_share_a_format_name():
    names = [f for name in READERS for f in getattr(_reader(name), "FORMATS", ())]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("entry", samples())
def test_sniff_names_the_format_that_open_keeps(entry):
    path = sample_path(entry)
    reader, fmt = detect(path)
    assert fmt == entry["format"]
    assert fmt in reader.FORMATS
    assert reader.sniff(path) == fmt
    with open_store(path) as store:
        assert store.format == fmt
    with reader.open(path) as store:  # without the sniffed name, open finds the same one
        assert store.format == fmt


def test_every_format_of_the_samples_is_covered_by_a_reader():
    declared = {f for name in READERS for f in getattr(_reader(name), "FORMATS", ())}
    assert {e.values[0]["format"] for e in samples()} <= declared


def test_an_object_checkpoint_can_be_opened_by_its_raw_keys():
    (entry,) = [e.values[0] for e in samples(formats=["tf-object-checkpoint"])][:1]
    path = sample_path(entry)
    with tf_bundle.open(path, "tf-checkpoint-v2") as raw, open_store(path) as named:
        assert type(raw) is tf_bundle.BundleStore and raw.checkpoint_keys == {}
        assert named.format == "tf-object-checkpoint" and named.checkpoint_keys
        # every renamed tensor holds the bytes of the key it names
        exposed, key = next(iter(named.checkpoint_keys.items()))
        assert key in raw.infos() and exposed not in raw.infos()
        assert (named.read(exposed) == raw.read(key)).all()


def test_bundle_stores_do_not_share_their_key_maps():
    objects = [e.values[0] for e in samples(formats=["tf-object-checkpoint"])]
    plain = [e.values[0] for e in samples(formats=["tf-checkpoint-v2"])]
    with open_store(sample_path(objects[0])) as a, open_store(sample_path(plain[0])) as b:
        assert a.checkpoint_keys and b.checkpoint_keys == {}
        assert a.checkpoint_keys is not b.checkpoint_keys


def test_open_refuses_a_format_the_reader_does_not_write():
    path = sample_path(samples(formats=["tf-checkpoint-v2"])[0].values[0])
    with pytest.raises(UsageError, match="Unknown format 'keras-h5'"):
        tf_bundle.open(path, "keras-h5")
    keras = [e.values[0] for e in samples(formats=["keras-h5"])][0]
    from gruinspect.formats import keras_h5

    with pytest.raises(GruInspectError, match="it is a keras-h5 file"):
        keras_h5.open(sample_path(keras), "keras-h5-weights")


def test_hdf5_readers_enter_the_installed_hang_guard_and_nothing_else():
    entered: list[str] = []

    @contextlib.contextmanager
    def guard(message):
        entered.append(message)
        yield

    keras = [e.values[0] for e in samples(formats=["keras-h5", "keras3-weights-h5"])]
    previous = _guard.set_hang_guard(guard)
    try:
        for entry in keras:
            with open_store(sample_path(entry)) as store:  # metadata parsed natively: h5py opens
                store.read(next(iter(store.infos())))      # the file at the first data read
    finally:
        assert _guard.set_hang_guard(previous) is guard
    assert entered and all("did not finish reading its metadata" in m for m in entered)
    entered.clear()
    with open_store(sample_path(keras[0])):  # no guard installed: a no-op, nothing recorded
        pass
    assert not entered


def test_library_reads_never_load_the_forking_supervisor():
    paths = [sample_path(e.values[0]) for e in samples()]
    code = (
        "import sys\n"
        "from gruinspect.formats import open_store\n"
        f"for p in {paths!r}:\n"
        "    with open_store(p) as s:\n"
        "        s.infos()\n"
        "assert 'gruinspect._supervisor' not in sys.modules, 'a reader imported the supervisor'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_readers_import_no_supervisor_in_their_source():
    imports = re.compile(r"^\s*(from|import)\s.*_supervisor", re.M)
    for path in (ROOT / "gruinspect" / "formats").glob("*.py"):
        assert not imports.search(path.read_text(encoding="utf-8")), path
