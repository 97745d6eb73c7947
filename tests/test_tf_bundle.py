"""The native V2 bundle reader against TensorFlow's own reader, bit for bit, and its details."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import sample_path, samples
from gruinspect.formats import open_store, tf_bundle
from gruinspect.formats._crc import crc32c, masked_crc32c
from gruinspect.formats._table import snappy_decompress

tf = pytest.importorskip("tensorflow")


@pytest.mark.parametrize("entry", samples(formats={"tf-checkpoint-v2"}))
def test_every_tensor_equals_tensorflow_reader(entry):
    path = sample_path(entry)
    reader = tf.train.load_checkpoint(path)
    expected_names = set(reader.get_variable_to_shape_map())
    with open_store(path) as store:
        assert store.format == "tf-checkpoint-v2"
        assert set(store.infos()) == expected_names
        for name, info in store.infos().items():
            ours = store.read(name)
            theirs = reader.get_tensor(name)
            assert info.shape == tuple(theirs.shape) == ours.shape, name
            if ours.dtype == object:
                assert ours.tolist() == np.asarray(theirs).tolist(), name
            else:
                # bit for bit: compare the raw bytes, so NaN payloads and -0.0 count too
                assert ours.dtype.itemsize == np.asarray(theirs).dtype.itemsize, name
                assert ours.tobytes() == np.ascontiguousarray(theirs).tobytes(), name


def test_dtypes_sample_covers_every_float_and_int_dtype():
    (entry,) = [e.values[0] for e in samples() if e.id == "dtypes_misc"]
    with open_store(sample_path(entry)) as store:
        dtypes = {i.dtype for i in store.infos().values()}
    assert {"float16", "bfloat16", "float32", "float64", "int32", "int64", "bool", "string"} <= dtypes


def test_sharded_bundle_reads_tensors_from_several_shards():
    (entry,) = [e.values[0] for e in samples() if e.id == "tf1_sharded"]
    with open_store(sample_path(entry)) as store:
        assert store.num_shards > 1
        shards = {store._entries[n].shard_id for n in store.infos()}
        assert len(shards) > 1


def test_partitioned_variable_is_assembled_from_slices():
    (entry,) = [e.values[0] for e in samples() if e.id == "tf1_partitioned"]
    with open_store(sample_path(entry)) as store:
        sliced = [n for n, e in store._entries.items() if e.slices]
        assert sliced, "the sample should hold a partitioned variable"
        assert store._slice_entries


@pytest.mark.parametrize("form", ["prefix", "index", "data", "folder"])
def test_path_forms(form):
    (entry,) = [e.values[0] for e in samples() if e.id == "tf1_gru_single"]
    prefix = sample_path(entry)
    path = {"prefix": prefix, "index": prefix + ".index", "data": prefix + ".data-00000-of-00001",
            "folder": prefix.rsplit("/", 1)[0]}[form]
    assert tf_bundle.bundle_prefix(path) == prefix
    assert tf_bundle.sniff(path) == "tf-checkpoint-v2"


def test_crc32c_and_mask_match_the_reference_values():
    assert crc32c(b"123456789") == 0xE3069283
    # docs/tf-checkpoints.md: int32 scalar 42 has masked crc 0xe0da979a
    assert masked_crc32c(np.int32(42).tobytes()) == 0xE0DA979A


def test_snappy_literal_and_overlapping_copy():
    # "abcabcabcabc": literal "abc" then a copy of length 9 at offset 3 (overlapping)
    data = bytes([12, 2 << 2, ord("a"), ord("b"), ord("c"), 1 | ((9 - 4) << 2), 3])
    assert snappy_decompress(data) == b"abcabcabcabc"
