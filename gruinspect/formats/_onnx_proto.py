"""The parts of ``onnx.proto`` gruinspect reads, walked with the shared field walker.

Field numbers from onnx/onnx ``onnx/onnx.proto`` (IR version 10)::

    ModelProto     ir_version 1, producer_name 2, producer_version 3, domain 4, model_version 5,
                   doc_string 6, graph 7, opset_import 8, metadata_props 14, training_info 20,
                   functions 25, configuration 26
    OperatorSetId  domain 1, version 2
    GraphProto     node 1, name 2, initializer 5, doc_string 10, input 11, output 12,
                   value_info 13, quantization_annotation 14, sparse_initializer 15
    NodeProto      input 1, output 2, name 3, op_type 4, attribute 5, doc_string 6, domain 7
    AttributeProto name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, strings 9, tensors 10,
                   graphs 11, type 20
    ValueInfoProto name 1
    TensorProto    dims 1, data_type 2, segment 3, float_data 4, int32_data 5, string_data 6,
                   int64_data 7, name 8, raw_data 9, double_data 10, uint64_data 11,
                   external_data 13 (StringStringEntryProto key 1, value 2), data_location 14

Nothing here copies tensor bytes: a TensorProto's values stay a ``memoryview`` slice of the
file until the store reads them. numpy is not imported (``gruinspect list`` never needs it).
"""
from __future__ import annotations

import struct

from ._wire import WireError, iter_fields, read_varint

# TensorProto.DataType -> gruinspect dtype name (onnx.proto `enum DataType`).
DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
    16: "bfloat16", 17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4_e2m1",
}
# dtype -> (typed field holding its values when there is no raw_data, bytes per element in raw_data)
# (onnx.proto comments on float_data, int32_data, int64_data, double_data, uint64_data).
TYPED_FIELD = {
    "float32": (4, 4), "complex64": (4, 8), "int32": (5, 4), "int16": (5, 2), "int8": (5, 1), "uint16": (5, 2),
    "uint8": (5, 1), "bool": (5, 1), "float16": (5, 2), "bfloat16": (5, 2), "int64": (7, 8),
    "float64": (10, 8), "complex128": (10, 16), "uint32": (11, 4), "uint64": (11, 8),
}

# AttributeProto.type (onnx.proto `enum AttributeType`)
_FLOAT, _INT, _STRING, _TENSOR, _GRAPH, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 4, 5, 6, 7, 8


def text(value) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("a name is not valid UTF-8 text") from None


def varints(value) -> list[int]:
    """A repeated int64 field value (packed run or one varint), sign-extended."""
    if isinstance(value, int):
        out = [value]
    else:
        out, pos = [], 0
        while pos < len(value):
            v, pos = read_varint(value, pos)
            out.append(v)
    return [v - (1 << 64) if v >= 1 << 63 else v for v in out]


# Plain classes, not dataclasses: `list` imports this module, and a dataclass compiles its
# methods at import time (see gruinspect/store.py).
class TensorRef:
    """One TensorProto: name, dtype, shape and where its values are, none of them read.

    ``raw`` is raw_data; ``typed`` the (wire_type, value) runs of the typed field; ``external``
    the external_data entries when data_location = EXTERNAL."""

    __slots__ = ("name", "dtype", "shape", "raw", "typed", "external", "segmented")

    def __init__(self, name: str, dtype: str, shape: tuple[int, ...], raw: memoryview | None = None,
                 typed: list | None = None, external: dict[str, str] | None = None, segmented: bool = False):
        self.name, self.dtype, self.shape, self.raw = name, dtype, shape, raw
        self.typed = [] if typed is None else typed
        self.external, self.segmented = external, segmented

    def __repr__(self) -> str:
        return f"TensorRef({self.name!r}, {self.dtype}, {list(self.shape)})"


def tensor_ref(view, *, what: str) -> TensorRef:
    dims: list[int] = []
    enum, name, raw, external, location, segmented = 0, "", None, {}, 0, False
    typed: dict[int, list] = {}
    for f, w, v in iter_fields(view):
        if f == 1:
            dims += varints(v)
        elif f == 2 and w == 0:
            enum = v
        elif f == 3:
            segmented = True
        elif f == 8 and w == 2:
            name = text(v)
        elif f == 9 and w == 2:
            raw = v
        elif f == 13 and w == 2:
            key, value = "", ""
            for ef, ew, ev in iter_fields(v):
                if ef == 1 and ew == 2:
                    key = text(ev)
                elif ef == 2 and ew == 2:
                    value = text(ev)
            external[key] = value
        elif f == 14 and w == 0:
            location = v
        elif f in (4, 5, 6, 7, 10, 11):
            typed.setdefault(f, []).append((w, v))
    label = name or what
    if enum not in DTYPES:
        raise WireError(f"tensor {label} has data type {enum}, which is not an ONNX type")
    if any(d < 0 for d in dims):
        raise WireError(f"tensor {label} has a negative dimension in {dims}")
    dtype = DTYPES[enum]
    runs = typed.get(TYPED_FIELD.get(dtype, (6, 0))[0], [])
    if location not in (0, 1):
        raise WireError(f"tensor {label} has data_location {location}")
    return TensorRef(name, dtype, tuple(dims), raw, runs, external if location == 1 else None, segmented)


class Node:
    """One NodeProto; ``attributes`` hold numbers, strings and lists, ``tensors`` and ``graphs``
    the attributes that are a TensorProto or a body graph."""

    __slots__ = ("name", "op_type", "domain", "inputs", "outputs", "attributes", "tensors", "graphs")

    def __init__(self, name: str, op_type: str, domain: str, inputs: list[str], outputs: list[str]):
        self.name, self.op_type, self.domain, self.inputs, self.outputs = name, op_type, domain, inputs, outputs
        self.attributes: dict = {}
        self.tensors: dict[str, TensorRef] = {}
        self.graphs: dict[str, Graph] = {}

    def __repr__(self) -> str:
        return f"Node({self.label!r}, {self.op_type})"

    @property
    def label(self) -> str:
        """The node's name, else its first output, for messages and cell names."""
        return self.name or next((o for o in self.outputs if o), "") or self.op_type


class Graph:
    """One GraphProto; ``path`` is "" for the main graph, else ``<node label>/<attribute>`` chains.
    ``constants`` maps value names to store tensor names (initializers and Constant outputs)."""

    __slots__ = ("name", "path", "nodes", "initializers", "inputs", "outputs", "sparse_initializers", "parent",
                 "constants", "_producers")

    def __init__(self, name: str, path: str, parent: Graph | None = None):
        self.name, self.path, self.parent = name, path, parent
        self.nodes: list[Node] = []
        self.initializers: list[TensorRef] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.sparse_initializers = 0
        self.constants: dict[str, str] = {}
        self._producers: dict | None = None

    def __repr__(self) -> str:
        return f"Graph({self.path or self.name!r}, {len(self.nodes)} nodes)"

    def walk(self):
        """This graph and every body graph below it, outermost first."""
        yield self
        for node in self.nodes:
            for sub in node.graphs.values():
                yield from sub.walk()

    def producer(self, value: str) -> Node | None:
        if self._producers is None:
            self._producers = {o: n for n in self.nodes for o in n.outputs if o}
        return self._producers.get(value)

    def resolve(self, value: str) -> str | None:
        """The store tensor a value is, through ``Identity`` nodes and outer scopes, or None."""
        graph: Graph | None = self
        seen = set()
        while graph is not None and value and value not in seen:
            seen.add(value)
            if value in graph.constants:
                return graph.constants[value]
            node = graph.producer(value)
            if node is not None:
                if node.op_type == "Identity" and node.domain in ("", "ai.onnx") and node.inputs:
                    value = node.inputs[0]
                    continue
                return None
            if value in graph.inputs:
                return None  # a graph input (or a loop-carried value): not stored
            graph = graph.parent
        return None


def attribute(view, node_label: str, path: str, parse_graph) -> tuple[str, str, object]:
    """``(name, kind, value)`` of one AttributeProto; kind is "value", "tensor" or "graph"."""
    name, atype = "", 0
    floats: list[float] = []
    ints: list[int] = []
    strings: list[str] = []
    f_val = i_val = s_val = t_val = g_val = None
    for f, w, v in iter_fields(view):
        if f == 1 and w == 2:
            name = text(v)
        elif f == 20 and w == 0:
            atype = v
        elif f == 2 and w == 5:
            f_val = struct.unpack("<f", v.to_bytes(4, "little"))[0]
        elif f == 3 and w == 0:
            i_val = varints(v)[0]
        elif f == 4 and w == 2:
            s_val = bytes(v)
        elif f == 5 and w == 2:
            t_val = v
        elif f == 6 and w == 2:
            g_val = v
        elif f == 7:
            if w == 2:
                if len(v) % 4:
                    raise WireError(f"attribute {name} of node {node_label} has a partial float")
                floats += list(struct.unpack(f"<{len(v) // 4}f", v))
            elif w == 5:
                floats.append(struct.unpack("<f", v.to_bytes(4, "little"))[0])
        elif f == 8:
            ints += varints(v)
        elif f == 9 and w == 2:
            strings.append(bytes(v).decode("utf-8", "replace"))
    if atype == _TENSOR or (not atype and t_val is not None):
        if t_val is None:
            raise WireError(f"attribute {name} of node {node_label} has no tensor")
        return name, "tensor", tensor_ref(t_val, what=f"{node_label}.{name}")
    if atype == _GRAPH or (not atype and g_val is not None):
        if g_val is None:
            raise WireError(f"attribute {name} of node {node_label} has no graph")
        return name, "graph", parse_graph(g_val, f"{path}{node_label}/{name}")
    value = {_FLOAT: f_val, _INT: i_val, _STRING: s_val, _FLOATS: floats, _INTS: ints, _STRINGS: strings}.get(atype)
    if not atype:  # IR version 1 files have no type field
        value = next((x for x in (f_val, i_val, s_val) if x is not None), floats or ints or strings)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return name, "value", value


def node(view, path: str, parse_graph) -> Node:
    inputs, outputs, raw_attrs = [], [], []
    name = op_type = domain = ""
    for f, w, v in iter_fields(view):
        if w != 2:
            continue
        if f == 1:
            inputs.append(text(v))
        elif f == 2:
            outputs.append(text(v))
        elif f == 3:
            name = text(v)
        elif f == 4:
            op_type = text(v)
        elif f == 7:
            domain = text(v)
        elif f == 5:
            raw_attrs.append(v)
    out = Node(name, op_type, domain, inputs, outputs)
    for raw in raw_attrs:
        key, kind, value = attribute(raw, out.label, path, parse_graph)
        if kind == "tensor":
            out.tensors[key] = value
        elif kind == "graph":
            out.graphs[key] = value
        else:
            out.attributes[key] = value
    return out


def value_name(view) -> str:
    for f, w, v in iter_fields(view):
        if f == 1 and w == 2:
            return text(v)
    return ""


def graph(view, path: str, parent: Graph | None = None, depth: int = 0) -> Graph:
    """Decode one GraphProto (its body graphs too, up to a sane nesting depth)."""
    if depth > 64:
        raise WireError("graphs are nested more than 64 deep")
    g = Graph("", path, parent=parent)

    def sub(raw, sub_path):
        return graph(raw, sub_path + "/", g, depth + 1)

    for f, w, v in iter_fields(view):
        if w != 2:
            continue
        if f == 1:
            g.nodes.append(node(v, path, sub))
        elif f == 2:
            g.name = text(v)
        elif f == 5:
            g.initializers.append(tensor_ref(v, what=f"initializer {len(g.initializers)}"))
        elif f == 11:
            g.inputs.append(value_name(v))
        elif f == 12:
            g.outputs.append(value_name(v))
        elif f == 15:
            g.sparse_initializers += 1
    for n in g.nodes:
        for sub_graph in n.graphs.values():
            sub_graph.parent = g
    return g


class Model:
    """A ModelProto's header fields and main graph."""

    __slots__ = ("ir_version", "producer_name", "producer_version", "opsets", "graph")

    def __init__(self) -> None:
        self.ir_version, self.producer_name, self.producer_version = 0, "", ""
        self.opsets: dict[str, int] = {}
        self.graph: Graph | None = None


# ModelProto fields and the wire type each must have (2 = length-delimited, 0 = varint).
MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def model(view) -> Model:
    m = Model()
    graph_view = None
    for f, w, v in iter_fields(view):
        if MODEL_FIELDS.get(f, w) != w:
            raise WireError(f"ModelProto field {f} has wire type {w}")
        if f == 1:
            m.ir_version = v
        elif f == 2:
            m.producer_name = text(v)
        elif f == 3:
            m.producer_version = text(v)
        elif f == 7:
            graph_view = v
        elif f == 8:
            domain, version = "", 0
            for of, ow, ov in iter_fields(v):
                if of == 1 and ow == 2:
                    domain = text(ov)
                elif of == 2 and ow == 0:
                    version = ov
            m.opsets[domain or "ai.onnx"] = version
    if graph_view is None:
        raise WireError("the model has no graph")
    m.graph = graph(graph_view, "")
    return m
