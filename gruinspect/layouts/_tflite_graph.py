"""The operator-graph view the TFLite GRU recovery walks (gruinspect/layouts/tflite_gru.py).

Producers and consumers of each tensor of one subgraph, and what a tensor is in terms of the
FULLY_CONNECTED it comes from: a column band ``[start, stop)`` taken by SPLIT (``SplitOptions``
num_splits = the number of outputs), SPLIT_V (sizes, one of them -1) or STRIDED_SLICE (begin /
end / strides constants and ``StridedSliceOptions`` masks, tensorflow/lite/kernels/strided_slice.cc),
or a constant (a folded term).
"""
from __future__ import annotations

from typing import NamedTuple


class Graph:
    def __init__(self, model, sg) -> None:
        self.model, self.sg = model, sg
        self.producer: dict[int, object] = {}
        self.consumers: dict[int, list] = {}
        for op in sg.operators:
            for t in op.outputs:
                self.producer[t] = op
            for t in op.inputs:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(op)

    def const(self, t: int) -> bool:
        return t >= 0 and bool(self.model.data_of(self.sg.tensors[t])[1])

    def op(self, t: int, *kinds: str):
        op = self.producer.get(t)
        return op if op is not None and (not kinds or op.opcode in kinds) else None

    def uses(self, t: int, kind: str) -> list:
        return [op for op in self.consumers.get(t, []) if op.opcode == kind]

    def tensor(self, t: int):
        return self.sg.tensors[t]

    def shape(self, t: int) -> tuple[int, ...]:
        return tuple(self.sg.tensors[t].shape)

    def ints(self, store, t: int) -> list[int] | None:
        name = self.sg.tensors[t].store_name
        return [int(v) for v in store.read_raw(name).reshape(-1)] if name else None


class Term(NamedTuple):
    """A column band [start, stop) of one FULLY_CONNECTED output (or a folded constant)."""

    fc: object = None
    start: int = 0
    stop: int = 0
    const: int | None = None


def no_fused_activation(op) -> bool:
    from ..formats.tflite import option

    # AddOptions / MulOptions / SubOptions / FullyConnectedOptions field 0: fused_activation_function
    return option(op, 0, "b", 0) == 0


def fc_band(g: Graph, store, t: int) -> Term | None:
    """Which FC output columns tensor ``t`` is, or the constant it is."""
    from ..formats.tflite import option

    if g.const(t):
        return Term(const=t)
    op = g.producer.get(t)
    if op is None:
        return None
    if op.opcode == "FULLY_CONNECTED":
        width = g.shape(t)[-1]
        return Term(op, 0, width)
    if op.opcode in ("SPLIT", "SPLIT_V", "STRIDED_SLICE"):
        src = op.inputs[1] if op.opcode == "SPLIT" else op.inputs[0]
        fc = g.op(src, "FULLY_CONNECTED")
        if fc is None:
            return None
        total = g.shape(src)[-1]
        rank = len(g.shape(src))
        if op.opcode == "SPLIT":
            axis = g.ints(store, op.inputs[0])
            if axis is None or len(axis) != 1 or axis[0] % rank != rank - 1:
                return None
            n = len(op.outputs)
            k = op.outputs.index(t)
            return Term(fc, k * total // n, (k + 1) * total // n)
        if op.opcode == "SPLIT_V":
            sizes, axis = g.ints(store, op.inputs[1]), g.ints(store, op.inputs[2])
            if not sizes or axis is None or axis[0] % rank != rank - 1:
                return None
            if sizes.count(-1) == 1:  # SPLIT_V: one size of -1 takes what the others leave
                sizes[sizes.index(-1)] = total - sum(x for x in sizes if x != -1)
            if any(x < 0 for x in sizes) or sum(sizes) != total:
                return None
            k = op.outputs.index(t)
            return Term(fc, sum(sizes[:k]), sum(sizes[: k + 1]))
        begin, end, strides = (g.ints(store, i) for i in op.inputs[1:4])
        if not begin or not end or not strides or strides[-1] != 1 or len(begin) != rank:
            return None
        # StridedSliceOptions: 0 begin_mask, 1 end_mask, 2 ellipsis_mask, 3 new_axis_mask, 4 shrink_axis_mask
        bmask, emask = option(op, 0, "i", 0), option(op, 1, "i", 0)
        if option(op, 2, "i", 0) or option(op, 3, "i", 0) or option(op, 4, "i", 0):
            return None
        last = rank - 1
        a = 0 if bmask >> last & 1 else begin[-1] % total if begin[-1] < 0 else begin[-1]
        b = total if emask >> last & 1 else end[-1] % total if end[-1] < 0 else min(end[-1], total)
        return Term(fc, a, b)
    return None


def add_terms(g: Graph, t: int) -> list[int] | None:
    op = g.op(t, "ADD")
    if op is None or not no_fused_activation(op):
        return None
    return list(op.inputs[:2])


def other_input(op, t: int) -> int:
    a, b = op.inputs[:2]
    return b if a == t else a


def op_cone(g: Graph, t: int, stop: set[int]) -> list:
    """The operators computing ``t`` from the ``stop`` tensors and constants."""
    seen, out, todo = set(), [], [t]
    while todo:
        cur = todo.pop()
        if cur in stop or cur < 0 or g.const(cur):
            continue
        op = g.producer.get(cur)
        if op is None or op.index in seen:
            continue
        seen.add(op.index)
        out.append(op)
        todo += list(op.inputs)
    return out


def const_store_name(g: Graph, t: int) -> str | None:
    """The store name of a constant, looking through a DEQUANTIZE (float16 weights)."""
    if t < 0:
        return None
    deq = g.op(t, "DEQUANTIZE")
    if deq is not None:
        t = deq.inputs[0]
    return g.tensor(t).store_name if g.const(t) else None
