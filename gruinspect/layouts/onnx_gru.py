"""ONNX ``GRU`` nodes: each direction of each node is one cell.

onnx/onnx ``onnx/defs/rnn/defs.cc`` (GRU; docs/Operators.md#GRU). Inputs X, W, R, B,
sequence_lens, initial_h; per direction d (0 forward, 1 backward of a bidirectional node)::

    W [D, 3H, I]   rows k*H:(k+1)*H for k = 0 update (z), 1 reset (r), 2 candidate (h); W·x orientation
    R [D, 3H, H]   same row order
    B [D, 6H]      Wb_z, Wb_r, Wb_h, then Rb_z, Rb_r, Rb_h

    linear_before_reset = 0:  h~ = g(X W_h^T + (r * H) R_h^T + Rb_h + Wb_h)
    linear_before_reset = 1:  h~ = g(X W_h^T + r * (H R_h^T + Rb_h) + Wb_h)

So ``reset_after`` = linear_before_reset, and both bias sets are kept (``bias`` = Wb,
``recurrent_bias`` = Rb) even when linear_before_reset = 0: then Rb_h is added outside the reset
product, which the canonical step does for a reset-before cell with a recurrent bias. Blocks are
``W[d, k*H:(k+1)*H, :]`` transposed to ``x @ W`` orientation. Activations come from the node
(``activations`` with ``activation_alpha`` / ``activation_beta``); ``clip``, ``layout`` and
``sequence_lens`` are recorded in the cell's config. W, R and B are found through ``Identity``
nodes and in ``Constant`` nodes; a GRU whose weights are computed or fed as graph inputs is
explained in ``problems``.
"""
from __future__ import annotations

from ..cell import Block, BlockSource, GruCell
from ._common import common_dtype
from ._onnx import TAKES, canonical, parse_activations
from .spec import Activations, ConventionRow, LayoutSpec, Oracle, Ref

LAYOUT = "onnx-gru"
ONNX_GATES = ("update", "reset", "candidate")  # z | r | h (defs.cc)
TRANSFORM = "onnx_transposed"


def gru_nodes(store):
    """``(graph, node)`` for every ONNX GRU node of every graph of an ONNX store."""
    graph = getattr(store, "graph", None)
    if store.format != "onnx" or graph is None:
        return
    for g in graph.walk():
        for node in g.nodes:
            if node.op_type == "GRU" and node.domain in ("", "ai.onnx"):
                yield g, node


def _float32_text(value: float) -> str:
    """The shortest text that reads back as the same float32 ("0.2", not "0.200000003")."""
    import struct

    stored = struct.pack("<f", value)
    for digits in range(6, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == stored:
            return text
    return repr(value)


def _label(params: tuple) -> str:
    """"HardSigmoid(alpha=0.2, beta=0.5)", "Tanh": an activation as the node states it."""
    fn, a, b = params
    takes = TAKES[fn][0]
    args = ", ".join(f"{k}={_float32_text(v)}" for k, v in (("alpha", a), ("beta", b)) if k in takes)
    return f"{fn}({args})" if args else fn


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    cells = []
    infos = store.infos() if store.format == "onnx" else {}
    for graph, node in gru_nodes(store):
        where = f"GRU node {graph.path}{node.label}"
        inputs = node.inputs + [""] * (6 - len(node.inputs))
        names = {}
        for role, value in (("W", inputs[1]), ("R", inputs[2]), ("B", inputs[3])):
            if not value:
                continue
            resolved = graph.resolve(value)
            if resolved is None:
                problems.append(f"{where} takes {role} from {value}, which is computed or a graph input, "
                                f"not a stored tensor")
                break
            names[role] = resolved
        else:
            if "W" not in names or "R" not in names:
                problems.append(f"{where} has no W or R input")
                continue
            if claimed & set(names.values()):
                continue  # another layout's cell already holds these tensors
            cells += _cells(graph, node, where, {r: infos[n] for r, n in names.items()}, inputs, problems)
    return cells


# GRU attributes and the Python type each must have (defs.cc: ints, floats, strings, lists).
_ATTRIBUTE_TYPES = {"hidden_size": int, "direction": str, "linear_before_reset": int, "activations": list,
                    "activation_alpha": list, "activation_beta": list, "clip": float, "layout": int}


def _cells(graph, node, where, t, inputs, problems) -> list[GruCell]:
    attrs = node.attributes
    for key, kind in _ATTRIBUTE_TYPES.items():
        value = attrs.get(key)
        if value is not None and not isinstance(value, kind) and not (kind is float and isinstance(value, int)):
            problems.append(f"{where} has a malformed {key} attribute ({value!r})")
            return []
    W, R, B = t["W"], t["R"], t.get("B")
    if len(W.shape) != 3 or len(R.shape) != 3 or R.shape[1] != 3 * R.shape[2] or W.shape[:2] != R.shape[:2]:
        problems.append(f"{where} has W {list(W.shape)} and R {list(R.shape)}, not [D, 3H, I] and [D, 3H, H]")
        return []
    D, _, I = W.shape
    H = R.shape[2]
    direction = attrs.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional") or D != (2 if direction == "bidirectional" else 1):
        problems.append(f"{where} has direction {direction!r} but W holds {D} direction(s)")
        return []
    if attrs.get("hidden_size", H) != H:
        problems.append(f"{where} has hidden_size={attrs['hidden_size']} but R is {list(R.shape)}")
        return []
    if B is not None and tuple(B.shape) != (D, 6 * H):
        problems.append(f"{where} has B {list(B.shape)}, where [{D}, {6 * H}] was expected")
        return []
    dtype, problem = common_dtype(where, t)
    if problem:
        problems.append(problem)
        return []
    try:
        acts = parse_activations([str(a) for a in attrs.get("activations", [])], attrs.get("activation_alpha", []),
                                 attrs.get("activation_beta", []), D)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return []
    lbr = bool(attrs.get("linear_before_reset", 0))
    clip = float(attrs.get("clip", 0.0) or 0.0)
    dirs = ["forward", "backward"] if D == 2 else ["backward" if direction == "reverse" else "forward"]
    out = []
    for d, dir_name in enumerate(dirs):
        (f, g) = acts[d]
        rec, cand = canonical(*f), canonical(*g)
        notes = []
        if rec is None or cand is None:
            notes.append(f"activations {_label(f)} / {_label(g)} have no canonical equal in gruinspect")
        if clip:
            notes.append(f"clip={clip:g}: every activation's input is bounded to [-{clip:g}, {clip:g}]")
        if inputs[4]:
            notes.append(f"sequence_lens comes from {inputs[4]}: each sequence may stop early (recorded, not stored)")
        blocks = _blocks(W.name, R.name, B.name if B is not None else None, d, I, H)
        regions = {W.name: ((d, d + 1), (0, 3 * H), (0, I)), R.name: ((d, d + 1), (0, 3 * H), (0, H))}
        tensors = {"W": W.name, "R": R.name}
        if B is not None:
            regions[B.name] = ((d, d + 1), (0, 6 * H))
            tensors["B"] = B.name
        config = {
            "node": node.name, "graph": graph.path.rstrip("/"), "direction": direction, "direction_index": d,
            "go_backwards": dir_name == "backward", "linear_before_reset": int(lbr),
            "activations": [_label(f), _label(g)],
            "activation_functions": [list(f), list(g)], "clip": clip, "layout": int(attrs.get("layout", 0)),
            "sequence_lens": inputs[4] or None, "initial_h": inputs[5] or None, "hidden_size": H,
            "use_bias": B is not None,
        }
        out.append(GruCell(
            name=f"{graph.path}{node.label}/{dir_name}", layout=LAYOUT, input_size=I, units=H, reset_after=lbr,
            dtype=dtype, tensors=tensors, shapes={i.name: tuple(i.shape) for i in t.values()}, blocks=blocks,
            activation=cand or config["activations"][1], recurrent_activation=rec or config["activations"][0],
            config_source="node attributes", config=config, notes=notes, regions=regions))
    return out


def _blocks(W: str, R: str, B: str | None, d: int, I: int, H: int) -> list[Block]:
    out = []
    for k, gate in enumerate(ONNX_GATES):
        rows = (k * H, (k + 1) * H)
        out.append(Block(gate, "input_kernel", (I, H), BlockSource(W, ((d, d + 1), rows, (0, I)), TRANSFORM)))
        out.append(Block(gate, "recurrent_kernel", (H, H), BlockSource(R, ((d, d + 1), rows, (0, H)), TRANSFORM)))
        if B is not None:
            out.append(Block(gate, "bias", (H,), BlockSource(B, ((d, d + 1), rows))))
            out.append(Block(gate, "recurrent_bias", (H,), BlockSource(B, ((d, d + 1), (3 * H + rows[0], 3 * H + rows[1])))))
    return out


def transposed(part, block):
    """W[d, rows, :] ([1, H, I]) -> the block in x @ W orientation ([I, H])."""
    return part.reshape(block.shape[::-1]).T


def transposed_inverse(values, stored_shape):
    import numpy as np

    return np.ascontiguousarray(values.T).reshape(stored_shape)


def equations(cell, t, xs, h0, acts):
    """The ONNX GRU equations on this direction's W[d], R[d], B[d] (maths/onnx.py)."""
    from ..maths.onnx import gru

    d = cell.config["direction_index"]
    # An attribute is float32; where it names a canonical function (HardSigmoid alpha 0.2 or 1/6)
    # the canonical constant is meant, and the float64 reference uses it exactly.
    f, g = (_exact(tuple(a)) for a in cell.config["activation_functions"])
    B = t["B"][d] if "B" in t else None
    return gru(t["W"][d], t["R"][d], B, xs, h0, linear_before_reset=cell.reset_after, f=f, g=g,
               clip=cell.config.get("clip", 0.0))


def _exact(params: tuple) -> tuple:
    from ._onnx import FROM_CANONICAL

    name = canonical(*params)
    if name is None:
        return params
    _, a, b = FROM_CANONICAL[name]
    return (params[0], params[1] if a is None else a, params[2] if b is None else b)


SPEC = LayoutSpec(
    name=LAYOUT,
    title="ONNX GRU node (one cell per direction)",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="onnx/onnx onnx/defs/rnn/defs.cc (GRU), docs/Operators.md#GRU",
    oracle=Oracle(Ref("gruinspect.oracle.onnxruntime:gru_node_oracle"), needs=("onnx", "onnxruntime"),
                  install="pip install 'gruinspect[onnx]'"),
    default_activations=Activations("tanh", "sigmoid"),
    conventions=(
        ConventionRow(False, "sigmoid", "tanh", "two",
                      "ONNX GRU linear_before_reset=0 (the ONNX default): candidate recurrent bias outside r"),
        ConventionRow(False, "hard_sigmoid_keras2", "tanh", "two", "ONNX GRU linear_before_reset=0, HardSigmoid(0.2, 0.5)"),
    ),
    samples=("onnx_torch_bigru", "onnx_keras_converted", "onnx_helper_lbr0_external", "onnx_helper_scan_clip"),
    transforms={TRANSFORM: (Ref(f"{__name__}:transposed"), Ref(f"{__name__}:transposed_inverse"))},
)
