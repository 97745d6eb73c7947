"""blocks.stream_blocks, which `split` writes through: each streamed tensor is read once, its
checksum computed from those same bytes, every block handed exactly its values.

The values are compared with TensorFlow's own reader (tf.train.load_checkpoint) cut by the
cell's block index, and with gruinspect's whole-tensor path (iter_blocks).
"""
from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from conftest import ROOT

from gruinspect.blocks import iter_blocks, stream_blocks
from gruinspect.errors import ChecksumError
from gruinspect.listing import open_cells

TF1 = ROOT / "sample_checkpoints" / "tf1_multi_rnn" / "model.ckpt"
KERAS_H5 = ROOT / "sample_checkpoints" / "tfkeras_full_h5" / "model.h5"


class Collect:
    """A sink that keeps what it is given and how; finish() returns the block's values."""

    def __init__(self, block, dtype, log):
        self.block, self.dtype, self.pieces, self.log = block, dtype, [], log
        self.finished = self.aborted = False

    def write(self, piece):
        assert piece.dtype == self.dtype and piece.ndim == len(self.block.shape)
        self.pieces.append(np.array(piece))  # a copy: the piece is valid only during the call

    def finish(self):
        self.finished = True
        return np.concatenate(self.pieces) if self.pieces else np.empty(self.block.shape, self.dtype)

    def abort(self):
        self.aborted = True


def collect(path, **kw):
    log = []
    with open_cells(str(path)) as (store, inventory):
        def open_sink(cell, block, dtype):
            log.append(Collect(block, dtype, log))
            return log[-1]

        results = stream_blocks(store, inventory.cells, open_sink, **kw)
        expected = [[values for c, _, values in iter_blocks(store, [cell])] for cell in inventory.cells]
        infos = store.infos()
        tensors = {b.source.tensor for cell in inventory.cells for b in cell.blocks}
        return results, expected, log, store, inventory, sum(infos[t].nbytes for t in tensors)


@pytest.mark.parametrize("threads", [1, 2])
def test_every_block_gets_its_values_once_from_one_read_of_each_tensor(threads):
    with open_cells(str(TF1)) as (store, inventory):
        infos = store.infos()
        tensors = {b.source.tensor for cell in inventory.cells for b in cell.blocks}
        assert all(store.row_reader(t) is not None for t in tensors)  # the streamed path is what runs
        sinks = []

        def open_sink(cell, block, dtype):
            sinks.append(Collect(block, dtype, sinks))
            return sinks[-1]

        results = stream_blocks(store, inventory.cells, open_sink, threads=threads)
        # one read of every stored tensor: no second pass per block, none for the checksum
        assert store.bytes_read == sum(infos[t].nbytes for t in tensors)
        cells = inventory.cells
    assert len(sinks) == sum(len(c.blocks) for c in cells) and all(s.finished and not s.aborted for s in sinks)
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(TF1))
    for cell, values in zip(cells, results):
        # results come back in iter_blocks order: per stored tensor, then block
        order = [b for t in dict.fromkeys(b.source.tensor for b in cell.blocks) for b in cell.blocks
                 if b.source.tensor == t]
        assert len(values) == len(order)
        for block, got in zip(order, values):
            stored = reader.get_tensor(block.source.tensor)
            want = stored[tuple(slice(a, b) for a, b in block.source.index)]
            np.testing.assert_array_equal(got, want, err_msg=f"{cell.name} {block.gate} {block.role}")


def test_a_tensor_read_whole_gives_the_same_blocks_as_iter_blocks():
    # HDF5 datasets stream through h5py; no checksum of their own beyond the reads
    results, expected, log, store, _, _ = collect(KERAS_H5, threads=2)
    assert len(results) == len(expected)
    for got, want in zip(results, expected):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_corrupted_streamed_tensor_fails_its_checksum_and_aborts_its_sinks(tmp_path):
    copy = tmp_path / "ckpt"
    shutil.copytree(TF1.parent, copy)
    data = copy / "model.ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    with open_cells(str(copy / "model.ckpt")) as (store, inventory):
        cell = inventory.cells[0]
        kernel = cell.block("reset", "input_kernel").source.tensor
        entry = store._entries[store.checkpoint_keys.get(kernel, kernel)]
    raw[entry.offset + entry.size - 1] ^= 0x01  # the very last byte: caught only if every byte is checked
    data.write_bytes(bytes(raw))
    sinks = []

    def open_sink(cell, block, dtype):
        sinks.append(Collect(block, dtype, sinks))
        return sinks[-1]

    with open_cells(str(copy / "model.ckpt")) as (store, inventory):
        with pytest.raises(ChecksumError, match=f"Checksum mismatch in .* for tensor {kernel}"):
            stream_blocks(store, [inventory.cells[0]], open_sink, threads=1)
    kernel_sinks = [s for s in sinks if s.block.source.tensor == kernel]
    assert kernel_sinks and all(s.aborted and not s.finished for s in kernel_sinks)


def test_split_hashes_exactly_the_bytes_it_wrote(tmp_path):
    from gruinspect.splitting import split

    result = split(str(TF1), str(tmp_path / "out"))
    records = [r for c in result.manifest["cells"] for r in c["arrays"]]
    assert records
    for record in records:
        path = tmp_path / "out" / record["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"], record["file"]
        values = np.load(path)
        assert list(values.shape) == record["shape"] and os.path.getsize(path) > values.nbytes


@pytest.mark.parametrize("shape", [(3, 5), (64, 256), (130, 517), (1000, 3), (2, 70000)])
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_a_transposed_block_is_written_in_c_order_tile_by_tile(shape, dtype):
    from gruinspect.splitting import _c_order_bytes

    stored = np.arange(np.prod(shape) * 3, dtype=dtype).reshape(shape[1] * 3, shape[0])
    for piece in (stored[shape[1]:2 * shape[1]].T, stored[::3].T, stored[:, 1:][: shape[1]].T):
        got = b"".join(bytes(m) for m in _c_order_bytes((piece,), piece.dtype))
        assert got == np.ascontiguousarray(piece).tobytes(), (shape, dtype, piece.strides)
    cast = b"".join(bytes(m) for m in _c_order_bytes((stored.T,), np.dtype("float64")))
    assert cast == np.ascontiguousarray(stored.T, dtype="float64").tobytes()
