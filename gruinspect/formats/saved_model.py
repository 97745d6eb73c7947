"""TensorFlow SavedModel folders: `saved_model.pb` + `variables/variables.{index,data-*}`.

docs/tf2-objects.md. The weights are a V2 bundle (read as an object checkpoint when it has an object
graph, ``_object_graph.ObjectCheckpointStore``, else by its keys); this
reader adds names and layers from the two protobufs next to it, walked without copying:

    saved_model.pb: SavedModel { meta_graphs = 2: MetaGraphDef { meta_info_def = 1 {tags = 4,
        tensorflow_version = 5}, ..., object_graph_def = 7: SavedObjectGraph { nodes = 1:
        SavedObject { children = 1: {node_id = 1, local_name = 2}, user_object = 4:
        {identifier = 1, metadata = 3}, variable = 7: SavedVariable { name = 6 } } } } }
    keras_metadata.pb (tf_keras `model.save(dir)`): SavedMetadata { nodes = 1: { node_id = 2,
        node_path = 3, identifier = 4, metadata = 5 (JSON: name, class_name, config) } }

SavedObjectGraph node ids are the checkpoint object graph's node ids, so a variable's
``SavedVariable.name`` (e.g. `bidi/backward_bgru/gru_cell/kernel`) names the bundle key of the
same node. Keras layer records come from `keras_metadata.pb`, or from the SavedUserObject
metadata where older tf.keras kept the same JSON. A TF1 SavedModel (no object graph) keeps its
variables' TF1 names.
"""
from __future__ import annotations

import builtins
import os

from ..errors import InvalidFileError
from ..store import LayerInfo
from . import _json, _object_graph, _tensor_proto, _wire, check_format
from ._object_graph import ObjectCheckpointStore

FORMAT = "tf-saved-model"
FORMATS = (FORMAT,)
_PROTO = "saved_model.pb"
_TEXT = "saved_model.pbtxt"
_KERAS = "keras_metadata.pb"


def folder_of(path: str) -> str | None:
    """The SavedModel folder PATH names (the folder, or its `saved_model.pb[txt]`), else None."""
    if os.path.isdir(path):
        folder = path
    elif os.path.basename(path) in (_PROTO, _TEXT) and os.path.isfile(path):
        folder = os.path.dirname(path) or "."
    else:
        return None
    if not os.path.isfile(os.path.join(folder, "variables", "variables.index")):
        return None
    proto = os.path.join(folder, _PROTO)
    if os.path.isfile(proto):
        try:
            with builtins.open(proto, "rb") as f:
                first = f.read(1)
        except OSError:
            return None
        # field 1 (schema version, varint) or field 2 (meta_graphs) comes first
        return folder if first in (b"\x08", b"\x12") else None
    return folder if os.path.isfile(os.path.join(folder, _TEXT)) else None


def sniff(path: str) -> str | None:
    """"tf-saved-model" when PATH is a SavedModel with a variables bundle, else None."""
    return FORMAT if folder_of(path) else None


def open(path: str, fmt: str | None = None) -> "SavedModelStore":  # noqa: A001 - the reader API
    folder = folder_of(path)
    if folder is None:
        raise InvalidFileError(f"Invalid SavedModel {path}: no saved_model.pb with a variables bundle found.")
    check_format(fmt or FORMAT, FORMATS, path)
    return SavedModelStore(folder)


class _SavedObject:
    __slots__ = ("children", "variable_name", "identifier", "metadata")

    def __init__(self):
        self.children: list[tuple[int, str]] = []
        self.variable_name = ""
        self.identifier = ""
        self.metadata = ""


class SavedModelStore(ObjectCheckpointStore):
    """The variables of a SavedModel, named by SavedVariable.name, with Keras layers when known."""

    format = FORMAT
    _graph_optional = True  # a TF1 SavedModel's bundle keeps its variables' TF1 names

    def __init__(self, folder: str):
        super().__init__(os.path.join(folder, "variables", "variables"))
        self.path = folder
        self.folder = folder
        try:
            nodes = self._saved_objects()
            checkpoint_nodes = self.object_graph
            if checkpoint_nodes is not None and nodes:
                self._name_variables(nodes, checkpoint_nodes)
            self.layers = self._keras_layers(nodes, checkpoint_nodes)
        except BaseException:
            self.close()
            raise

    # -- saved_model.pb --------------------------------------------------------------------
    def _saved_objects(self) -> list[_SavedObject]:
        proto = os.path.join(self.folder, _PROTO)
        if not os.path.isfile(proto):
            self.metadata["saved_model_note"] = (
                f"{_TEXT} is not parsed; variables are named by the checkpoint's own names."
            )
            return []
        try:
            self.note_file(proto)
            data = _tensor_proto.map_file(proto)
        except OSError as exc:
            raise InvalidFileError(f"Cannot read {proto}: {exc.strerror}.") from None
        nodes: list[_SavedObject] = []
        try:
            for field, wire_type, meta_graph in _tensor_proto.fields(data):
                if field != 2 or wire_type != 2:
                    continue
                found = self._meta_graph(meta_graph, nodes)
                if found:
                    break
        except _wire.WireError as exc:
            raise InvalidFileError(f"Invalid SavedModel {proto}: {exc}.") from None
        return nodes

    def _meta_graph(self, view, nodes: list[_SavedObject]) -> bool:
        graph = None
        for field, wire_type, value in _tensor_proto.fields(view):
            if field == 1 and wire_type == 2:
                tags = []
                for f, w, v in _tensor_proto.fields(value):
                    if f == 4 and w == 2:
                        tags.append(_tensor_proto.text(v))
                    elif f == 5 and w == 2:
                        self.metadata["tensorflow_version"] = _tensor_proto.text(v)
                self.metadata["saved_model_tags"] = tags
            elif field == 7 and wire_type == 2:
                graph = value
        if graph is None:
            return False
        for field, wire_type, value in _tensor_proto.fields(graph):
            if field != 1 or wire_type != 2:
                continue
            obj = _SavedObject()
            for f, w, v in _tensor_proto.fields(value):
                if w != 2:
                    continue
                if f == 1:
                    ref = {ff: vv for ff, _, vv in _tensor_proto.fields(v)}
                    child = ref.get(1, 0)
                    obj.children.append((child if isinstance(child, int) else 0,
                                         _tensor_proto.text(ref.get(2, b""))))
                elif f == 4:
                    for ff, ww, vv in _tensor_proto.fields(v):
                        if ff == 1 and ww == 2:
                            obj.identifier = _tensor_proto.text(vv)
                        elif ff == 3 and ww == 2:
                            obj.metadata = _tensor_proto.text(vv)
                elif f == 7:
                    for ff, ww, vv in _tensor_proto.fields(v):
                        if ff == 6 and ww == 2:
                            obj.variable_name = _tensor_proto.text(vv)
            nodes.append(obj)
        return True

    def _name_variables(self, nodes: list[_SavedObject], checkpoint_nodes) -> None:
        """Re-name the bundle's tensors by SavedVariable.name, if the two graphs line up."""
        holders = _object_graph.variable_nodes(checkpoint_nodes)
        overrides = {i: n.variable_name for i, n in enumerate(nodes) if n.variable_name}
        if any(i not in holders for i in overrides):
            self.metadata["saved_model_note"] = (
                f"The object graph of {os.path.join(self.folder, _PROTO)} does not line up with the "
                "checkpoint's; variables are named by the checkpoint's full names."
            )
            return
        self.name_by_graph(overrides)

    # -- Keras layers ----------------------------------------------------------------------
    def _keras_layers(self, nodes: list[_SavedObject], checkpoint_nodes) -> list[LayerInfo]:
        """Layer records shaped like the Keras file readers' (``layouts/_keras.py``): one per
        layer that owns weights, named by its user path (`inner_model/inner_gru`,
        `bidi/forward_bgru`), an RNN's cell merged into it, wrapper facts in the config."""
        records = self._keras_metadata()
        if records is None:  # older tf.keras kept the same JSON in SavedUserObject.metadata
            records = [(i, "", n.identifier, n.metadata) for i, n in enumerate(nodes)
                       if n.identifier.startswith("_tf_keras_") and n.metadata]
        if not records:
            return []
        children = ([n.children for n in nodes] if nodes
                    else [o.children for o in checkpoint_nodes] if checkpoint_nodes else [])
        paths = _node_paths(children)
        layers: dict[int, dict] = {}
        problems = 0
        for node_id, node_path, identifier, text in records:
            if not identifier.startswith("_tf_keras_") or identifier == "_tf_keras_metric":
                continue
            try:
                meta = _json.loads(text, self.path, f"the Keras metadata of object {node_id}")
            except ValueError:
                meta = None
            if not isinstance(meta, dict):
                problems += 1
                continue
            path = node_path or paths.get(node_id)
            if path:
                layers[node_id] = {"path": path.split("."), "meta": meta}
        if problems:
            self.metadata["keras_metadata_problem"] = f"{problems} Keras layer record(s) could not be decoded."
        version = next((r["meta"]["keras_version"] for r in layers.values()
                        if isinstance(r["meta"].get("keras_version"), str)), None)
        if version:
            self.metadata.setdefault("keras_version", version)
        by_path = {tuple(r["path"]): node_id for node_id, r in layers.items()}
        for node_id, record in layers.items():
            parts = record["path"]
            parent = next((by_path[tuple(parts[:n])] for n in range(len(parts) - 1, 0, -1)
                           if tuple(parts[:n]) in by_path), None)
            record["parent"] = parent
            cls = str(record["meta"].get("class_name") or "")
            # a cell inside an RNN layer: its variables are the layer's own
            record["merged"] = parent is not None and cls.endswith("Cell")
        exposed = self._exposed_names(checkpoint_nodes)
        optimizers = ({i for i, o in enumerate(checkpoint_nodes) if _object_graph.is_optimizer(o)}
                      if checkpoint_nodes else set())
        owners = {i for i, r in layers.items() if not r["merged"]}
        order = _preorder(children)  # the model's layer order (records come outer layers first)
        out = []
        for node_id, record in sorted(layers.items(), key=lambda item: order.get(item[0], len(order))):
            if record["merged"]:
                continue
            weights = _weights_below(node_id, children, exposed, optimizers | (owners - {node_id}))
            if not weights:
                continue
            meta = record["meta"]
            config = meta.get("config")
            config = dict(config) if isinstance(config, dict) else {"layers": config} if config else {}
            config.update(self._wrapper(record, layers))
            config["keras_generation"] = "keras2"
            if version:
                config["keras_version"] = version
            out.append(LayerInfo(self._layer_path(node_id, layers), str(meta.get("class_name") or ""),
                                 config, weights))
        return out

    @staticmethod
    def _wrapper(record: dict, layers: dict) -> dict:
        parent = layers.get(record["parent"]) if record["parent"] is not None else None
        if parent is None:
            return {}
        cls = parent["meta"].get("class_name")
        if cls == "Bidirectional" or record["path"][-1] in ("forward_layer", "backward_layer"):
            direction = "backward" if record["path"][-1] == "backward_layer" else "forward"
            merge = (parent["meta"].get("config") or {}).get("merge_mode") if isinstance(
                parent["meta"].get("config"), dict) else None
            return {"wrapper": cls or "Bidirectional", "direction": direction, "merge_mode": merge}
        if cls == "TimeDistributed":
            return {"wrapper": "TimeDistributed"}
        return {}

    @staticmethod
    def _layer_path(node_id: int, layers: dict) -> str:
        """The user's layer path: the names of the enclosing layers below the root model.
        TimeDistributed keeps the wrapper's own path (as the Keras file readers do)."""
        parts = []
        current = node_id
        while current is not None:
            record = layers[current]
            parent = record["parent"]
            if parent is None:  # the root model (or a top-level record) is not part of the path
                if len(record["path"]) > 1:
                    parts.append(str(record["meta"].get("name") or record["path"][-1]))
                break
            if layers[parent]["meta"].get("class_name") != "TimeDistributed":
                parts.append(str(record["meta"].get("name") or record["path"][-1]))
            current = parent
        return "/".join(reversed(parts)) or str(layers[node_id]["meta"].get("name") or node_id)

    def _keras_metadata(self) -> list[tuple[int, str, str, str]] | None:
        path = os.path.join(self.folder, _KERAS)
        if not os.path.isfile(path):
            return None
        try:
            self.note_file(path)
            data = _tensor_proto.map_file(path)
        except OSError as exc:
            raise InvalidFileError(f"Cannot read {path}: {exc.strerror}.") from None
        records = []
        try:
            for field, wire_type, value in _tensor_proto.fields(data):
                if field != 1 or wire_type != 2:
                    continue
                node_id, node_path, identifier, text = 0, "", "", ""
                for f, w, v in _tensor_proto.fields(value):
                    if f == 2 and w == 0:
                        node_id = v
                    elif f == 3 and w == 2:
                        node_path = _tensor_proto.text(v)
                    elif f == 4 and w == 2:
                        identifier = _tensor_proto.text(v)
                    elif f == 5 and w == 2:
                        text = _tensor_proto.text(v)
                records.append((node_id, node_path, identifier, text))
        except _wire.WireError as exc:
            raise InvalidFileError(f"Invalid Keras metadata {path}: {exc}.") from None
        return records

    def _exposed_names(self, checkpoint_nodes) -> dict[int, str]:
        """``{node id: exposed tensor name}`` of the variables in the bundle."""
        if not checkpoint_nodes:
            return {}
        by_key = {key: name for name, key in self.checkpoint_keys.items()}
        infos = self.infos()
        out = {}
        for node_id, key in _object_graph.variable_nodes(checkpoint_nodes).items():
            name = by_key.get(key, key)
            if name in infos:
                out[node_id] = name
        return out


def _node_paths(children: list) -> dict[int, str]:
    """`root.a.b` paths of every node along its first breadth-first path (as node_path)."""
    paths = {0: "root"} if children else {}
    queue = [0] if children else []
    for node in queue:
        for child, name in children[node] if node < len(children) else ():
            if child not in paths:
                paths[child] = f"{paths[node]}.{name}"
                queue.append(child)
    return paths


def _preorder(children: list) -> dict[int, int]:
    """Each node's position in a depth-first walk from the root (child order)."""
    order: dict[int, int] = {}
    stack = [0] if children else []
    while stack:
        node = stack.pop()
        if node in order:
            continue
        order[node] = len(order)
        if node < len(children):
            stack.extend(child for child, _ in reversed(children[node]) if child not in order)
    return order


def _weights_below(root: int, children: list, exposed: dict[int, str], stop: set[int]) -> list[str]:
    """Variables under ``root`` in depth-first child order (creation order for Keras layers),
    not descending into the nodes in ``stop`` (optimizers, other layers)."""
    out: list[str] = []
    seen = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        if node in exposed:
            out.append(exposed[node])
        if node >= len(children):
            continue
        for child, _ in reversed(children[node]):
            if child not in seen and child not in stop:
                seen.add(child)
                stack.append(child)
    return out
