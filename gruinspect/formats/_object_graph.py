"""Naming the variables of TF2 object-based checkpoints by their own names (docs/tf2-objects.md).

A TF2 checkpoint keys a variable by the first path from the root object,
`layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE` (tf_keras) or even
`optimizer/_trainable_variables/3/.ATTRIBUTES/VARIABLE_VALUE` (Keras 3), which says nothing about
the user's layers. The bundle also holds the object graph itself, a serialized
TrackableObjectGraph in the DT_STRING scalar `_CHECKPOINTABLE_OBJECT_GRAPH`
(TF `core/protobuf/trackable_object_graph.proto`):

    TrackableObjectGraph { nodes = 1: TrackableObject }
    TrackableObject { children = 1: ObjectReference{node_id = 1, local_name = 2},
                      attributes = 2: SerializedTensor{name = 1, full_name = 2, checkpoint_key = 3},
                      slot_variables = 3: {original_variable_node_id = 1, slot_name = 2,
                                           slot_variable_node_id = 3} }

``SerializedTensor.full_name`` is the variable's own name, e.g. `bidi/forward_bgru/gru_cell/kernel`.
:class:`ObjectCheckpointStore` exposes model variables under it. Optimizer state keeps its key path
(minus `/.ATTRIBUTES/VARIABLE_VALUE`), so slot names keep `.OPTIMIZER_SLOT` and Keras
optimizer variables keep their `optimizer/...` prefix, which ``layouts._common.is_optimizer_slot``
recognises; a Keras 3 optimizer's `adam/..._momentum` full names would not be.

Cost: opening such a bundle reads one tensor's data, the (small) object graph string; this is
the only data `list` reads for these checkpoints.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from ..errors import InvalidFileError
from . import _wire
from .tf_bundle import OBJECT_FORMAT as FORMAT
from .tf_bundle import OBJECT_GRAPH_KEY, BundleStore

VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"

# Children through which an optimizer reaches the model's own variables (Keras 3 optimizers
# track the variables they train under `_trainable_variables`).
_MODEL_EDGES_FROM_OPTIMIZER = {"_trainable_variables"}
# A child with one of these names marks an optimizer: `iter` (tf_keras OptimizerV2),
# `_iterations` (Keras 3).
_OPTIMIZER_CHILDREN = {"iter", "_iterations"}
_OUTPUT_SUFFIX = re.compile(r":\d+$")
# Keras 3 `model.export()` saves each weight twice: the Keras variables under `variables/N` and
# the tf.Variables its endpoints capture under `_all_variables/N` (keras
# `export/saved_model_export_archive.py`, `_filter_and_track_resources`), with the same names.
_MIRROR_EDGES = frozenset({"_all_variables"})


@dataclass
class TrackableObject:
    children: list[tuple[int, str]] = field(default_factory=list)
    # (name, full_name, checkpoint_key)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)
    # (original_variable_node_id, slot_name, slot_variable_node_id)
    slot_variables: list[tuple[int, str, int]] = field(default_factory=list)


def parse_object_graph(raw: bytes) -> list[TrackableObject]:
    """Decode a serialized TrackableObjectGraph; raises ``_wire.WireError`` when malformed."""
    nodes = []
    for node in _wire.get_messages(_wire.parse(raw), 1):
        obj = TrackableObject()
        for ref in _wire.get_messages(node, 1):
            obj.children.append((_wire.get_int(ref, 1), _wire.get_str(ref, 2)))
        for attr in _wire.get_messages(node, 2):
            obj.attributes.append((_wire.get_str(attr, 1), _wire.get_str(attr, 2), _wire.get_str(attr, 3)))
        for slot in _wire.get_messages(node, 3):
            obj.slot_variables.append((_wire.get_int(slot, 1), _wire.get_str(slot, 2), _wire.get_int(slot, 3)))
        nodes.append(obj)
    for obj in nodes:
        for child, _ in obj.children:
            if not 0 <= child < len(nodes):
                raise _wire.WireError(f"a child refers to node {child} of {len(nodes)}")
    return nodes


def is_optimizer(obj: TrackableObject) -> bool:
    return bool(obj.slot_variables) or any(name in _OPTIMIZER_CHILDREN for _, name in obj.children)


def model_nodes(nodes: list[TrackableObject], root: int = 0, skip: frozenset = frozenset()) -> set[int]:
    """Nodes reachable from the root without going into an optimizer's own state (nor through
    edges named in ``skip``)."""
    if not nodes:
        return set()
    seen = {root}
    queue = deque([root])
    while queue:
        obj = nodes[queue.popleft()]
        optimizer = is_optimizer(obj)
        for child, name in obj.children:
            if child in seen or name in skip or (optimizer and name not in _MODEL_EDGES_FROM_OPTIMIZER):
                continue
            seen.add(child)
            queue.append(child)
    return seen


def key_path(key: str) -> str:
    """The readable part of a checkpoint key: the object path without the attribute suffix."""
    return key[: -len(VALUE_SUFFIX)] if key.endswith(VALUE_SUFFIX) else key


def clean_name(name: str) -> str:
    """A variable name without TF's `:0` output suffix."""
    return _OUTPUT_SUFFIX.sub("", name)


def tensor_names(nodes: list[TrackableObject], keys, overrides: dict[int, str] | None = None) -> dict[str, str]:
    """``{checkpoint key: exposed name}`` for every key in ``keys`` (order kept).

    Model variables get ``overrides[node]`` (SavedModel's SavedVariable.name) or their
    full_name; optimizer state and variables whose name is missing or shared fall back to the
    key path (except that Keras 3 export mirrors under `_all_variables` yield the name to the
    primary copy). Keys that are not variable values keep their key. Names are unique.
    """
    keys = list(keys)
    present = set(keys)
    overrides = overrides or {}
    owned = model_nodes(nodes)
    primary = model_nodes(nodes, skip=_MIRROR_EDGES)
    wanted: dict[str, str] = {}
    holders: dict[str, list[tuple[str, bool]]] = {}  # name -> [(key, is primary)]
    for node_id, obj in enumerate(nodes):
        for attr_name, full_name, key in obj.attributes:
            if key not in present or attr_name != "VARIABLE_VALUE":
                continue
            name = ""
            if node_id in owned:
                name = clean_name(overrides.get(node_id) or full_name)
            wanted[key] = name
            holders.setdefault(name, []).append((key, node_id in primary))
    # A shared name stays with its one primary holder when the others are only mirrors.
    keeps = {}
    for name, held in holders.items():
        firsts = [key for key, is_primary in held if is_primary]
        if name and (len(held) == 1 or len(firsts) == 1):
            keeps[name] = held[0][0] if len(held) == 1 else firsts[0]
    names = {}
    for key in keys:
        if key in wanted:
            name = wanted[key]
            names[key] = name if keeps.get(name) == key else key_path(key)
        else:
            names[key] = key
    return _revert_clashes(names)


def _revert_clashes(names: dict[str, str]) -> dict[str, str]:
    """A chosen name may still equal another tensor's key or key path; such names revert to
    their (unique) keys until nothing collides. A revert can make a new clash (a rename chain:
    a's name is b's key, b's name is c's key...), so the clashes form a worklist: each key
    reverts at most once, linear in the number of keys however long the chains."""
    users: dict[str, list[str]] = {}
    for key, name in names.items():
        users.setdefault(name, []).append(key)
    pending = [name for name, keys in users.items() if len(keys) > 1]
    while pending:
        name = pending.pop()
        keys = users[name]
        if len(keys) < 2:
            continue
        users[name] = [k for k in keys if k == name]  # a key named by itself never moves
        for key in keys:
            if key != name:
                names[key] = key
                users.setdefault(key, []).append(key)
                if len(users[key]) == 2:
                    pending.append(key)
    return names


def variable_nodes(nodes: list[TrackableObject]) -> dict[int, str]:
    """``{node id: checkpoint key}`` of every node holding a variable value."""
    out = {}
    for node_id, obj in enumerate(nodes):
        for attr_name, _, key in obj.attributes:
            if attr_name == "VARIABLE_VALUE":
                out[node_id] = key
    return out


class ObjectCheckpointStore(BundleStore):
    """A TF2 object-based checkpoint: a V2 bundle whose tensors are exposed under their
    variables' own names (see the module docstring), read from the object graph it holds.

    ``object_graph`` holds the parsed nodes; ``checkpoint_keys`` and
    ``metadata["checkpoint_keys"]`` map each renamed tensor to its checkpoint key. A graph that
    cannot be decoded, or is missing, is an :class:`InvalidFileError`.
    """

    format = FORMAT
    # SavedModel variables may come from a TF1 SavedModel, whose bundle has no object graph.
    _graph_optional = False

    def __init__(self, prefix: str, *, verify_checksums: bool = True):
        super().__init__(prefix, verify_checksums=verify_checksums)
        self.object_graph: list[TrackableObject] | None = None
        try:
            if OBJECT_GRAPH_KEY in self._entries:
                self.object_graph = self._parse_graph()  # reads that one small string tensor
                self.name_by_graph()
            elif not self._graph_optional:
                raise InvalidFileError(f"Invalid TF2 object checkpoint {prefix}: it holds no object graph "
                                       f"({OBJECT_GRAPH_KEY}).")
        except BaseException:
            self.close()
            raise

    def _parse_graph(self) -> list[TrackableObject]:
        # A damaged graph is a damaged file: say so rather than quietly losing the layer names.
        raw = self.read_key(OBJECT_GRAPH_KEY)
        try:
            return parse_object_graph(bytes(raw.reshape(-1)[0]))
        except (_wire.WireError, IndexError, TypeError) as exc:
            raise InvalidFileError(f"Invalid object graph in {self.path}: {exc}.") from None

    def name_by_graph(self, overrides: dict[int, str] | None = None) -> None:
        """Expose the tensors by the object graph: ``overrides[node]`` (a SavedModel's
        SavedVariable.name) or the variable's full_name (:func:`tensor_names`)."""
        self._expose(tensor_names(self.object_graph or [], self._entries, overrides))
