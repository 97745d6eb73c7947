"""Helpers shared by the layout modules: optimizer slots, scopes, and the TF [x; h] kernel cut."""
from __future__ import annotations

import re

from ..cell import Block, stacked_blocks, vector_blocks
from ..store import TensorInfo

# TF1 slot optimizers name slots `<var>/<Optimizer>[_N]`; TF2 object graphs use `.OPTIMIZER_SLOT`.
_SLOT = re.compile(
    r"/(Adam|Adam_\d+|AdamW|Momentum|RMSProp|RMSProp_\d+|Adagrad|Adadelta|Adadelta_\d+|Ftrl|Ftrl_\d+|"
    r"ProximalAdagrad|Nadam|Nadam_\d+|Adamax|Adamax_\d+|ExponentialMovingAverage|Lamb|Lamb_\d+)$"
)


def is_optimizer_slot(name: str) -> bool:
    """Whether a tensor is optimizer state rather than a model weight."""
    return (".OPTIMIZER_SLOT" in name or name.startswith(("optimizer/", "optimizer_weights/"))
            or "/optimizer/" in name  # TF2 key paths through a model's optimizer: `model/optimizer/iter`
            # PyTorch checkpoints: `optimizer.state.0.exp_avg`, Lightning `optimizer_states.0.state.0.exp_avg`
            or name.startswith(("optimizer.", "optimizer_states."))
            or bool(_SLOT.search(name)))


def weights(store, claimed: set[str]) -> dict[str, TensorInfo]:
    """The store's tensors that are model weights and not yet claimed by another cell."""
    return {n: i for n, i in store.infos().items() if n not in claimed and not is_optimizer_slot(n)}


def join(scope: str, leaf: str) -> str:
    return f"{scope}/{leaf}" if scope else leaf


def scopes_with(names, leaf: str) -> list[str]:
    """Scopes S (possibly "") such that `S/leaf` is one of ``names``, in name order."""
    out = []
    for name in names:
        if name == leaf:
            out.append("")
        elif name.endswith("/" + leaf):
            out.append(name[: -len(leaf) - 1])
    return sorted(out)


TF_GATES = ("reset", "update")  # gates/kernel columns: r then u (GRUCell.call, rnn_cell_impl.py)


def tf_gate_blocks(kernel: str, bias: str | None, input_size: int, units: int) -> list[Block]:
    """Blocks of TF's fused gate kernel [I+H, 2H] (x rows above h rows; r columns, then u)."""
    rows = [("input_kernel", 0, input_size), ("recurrent_kernel", input_size, input_size + units)]
    blocks = stacked_blocks(kernel, gates=TF_GATES, units=units, rows=rows)
    if bias is not None:
        blocks += vector_blocks(bias, gates=TF_GATES, units=units, role="bias")
    return blocks


def shape_problem(scope: str, what: str, tensors: dict[str, TensorInfo], expected: dict[str, tuple]) -> str | None:
    """A sentence explaining the first tensor whose shape breaks the layout, or None."""
    for role, shape in expected.items():
        info = tensors.get(role)
        if info is not None and tuple(info.shape) != tuple(shape):
            return (
                f"{scope or '(root)'} looks like a {what} but {role} {info.name} has shape "
                f"{list(info.shape)}, where {list(shape)} was expected"
            )
    return None


def common_dtype(scope: str, tensors: dict[str, TensorInfo]) -> tuple[str | None, str | None]:
    """(dtype, None) when every tensor shares one float dtype, else (None, problem sentence)."""
    dtypes = {i.dtype for i in tensors.values()}
    if len(dtypes) != 1:
        return None, f"{scope or '(root)'} mixes dtypes {sorted(dtypes)} across its tensors"
    (dtype,) = dtypes
    if dtype not in ("float16", "bfloat16", "float32", "float64"):
        return None, f"{scope or '(root)'} has GRU-like names but dtype {dtype}"
    return dtype, None
