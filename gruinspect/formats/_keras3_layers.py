"""The object tree of a Keras 3 weights file turned into layer records (``LayerInfo``).

Keras 3 saves each object's variables under ``<path>/vars/0, 1, ...`` and its children under
attribute keys (keras `src/saving/saving_lib.py` ``_save_state``, ``_save_container_state``); a
container's children are keyed ``to_snake_case(class name)`` made unique by a counter. With the
archive's config.json the keys are matched back to the configured layers, in model order.
"""
from __future__ import annotations

import json
import re

from ..store import LayerInfo

# Children of these keys are objects keyed by class; the key itself is not a layer.
_CONTAINER_KEYS = ("layers", "_layer_checkpoint_dependencies", "cells")
_ROOT_SKIP = ("optimizer", "compile_metrics", "_compile_metrics", "metrics", "loss", "_loss_tracker")
_KNOWN_KEYS = {
    "gru": "GRU", "lstm": "LSTM", "simple_rnn": "SimpleRNN", "dense": "Dense", "rnn": "RNN",
    "bidirectional": "Bidirectional", "time_distributed": "TimeDistributed", "embedding": "Embedding",
    "gru_cell": "GRUCell", "lstm_cell": "LSTMCell", "conv1d": "Conv1D", "conv2d": "Conv2D",
}


def to_snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: the key Keras 3 files use for a layer class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _natural(key: str):
    m = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
    base, num = m.group(1), m.group(2)
    return (key.startswith("_"), base, int(num) if num else -1, key)


class Tree:
    """The union of the group/dataset paths of one or more HDF5 files (shards)."""

    def __init__(self) -> None:
        self.children: dict[str, list[str]] = {}
        self.datasets: set[str] = set()
        self.names: dict[str, str] = {}  # vars group path -> attribute "name"

    def add(self, path: str, dataset: bool = False) -> None:
        parts = path.split("/")
        for i, key in enumerate(parts):
            parent = "/".join(parts[:i])
            kids = self.children.setdefault(parent, [])
            if key not in kids:
                kids.append(key)
        if dataset:
            self.datasets.add(path)

    def kids(self, path: str) -> list[str]:
        return self.children.get(path, [])


def _join(a: str, b: str) -> str:
    return f"{a}/{b}" if a else b


def _cfg_config(cfg) -> dict:
    return cfg["config"] if isinstance(cfg, dict) and isinstance(cfg.get("config"), dict) else {}


class Builder:
    """Walks the object tree (with config.json when there is one) into LayerInfo records."""

    def __init__(self, tree: Tree, root_cfg: dict | None, generation: str, version: str | None):
        self.tree = tree
        self.root_cfg = root_cfg
        self.extra = {"keras_generation": generation, "keras_version": version}
        self.out: list[LayerInfo] = []

    def layers(self) -> list[LayerInfo]:
        self.visit("", "", self.root_cfg, [], root=True)
        return self.out

    def vars_of(self, gpath: str) -> list[str]:
        vpath = _join(gpath, "vars")
        keys = sorted(self.tree.kids(vpath), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
        return [_join(vpath, k) for k in keys if _join(vpath, k) in self.tree.datasets]

    def visit(self, gpath: str, key: str, cfg, parts: list[str], *, root: bool = False, wrap: dict | None = None):
        tree = self.tree
        if key in _CONTAINER_KEYS or key.startswith("container"):
            for ckey, ccfg in self.container_children(gpath, cfg):
                self.visit(_join(gpath, ckey), ckey, ccfg, parts)
            return
        config = _cfg_config(cfg)
        name = tree.names.get(_join(gpath, "vars")) or config.get("name") or key
        if key == "forward_layer" and not name.startswith("forward_"):
            name = f"forward_{name}"
        if key == "backward_layer" and not name.startswith("backward_"):
            name = f"backward_{name}"
        my_parts = parts if root else parts + [name]
        kids = [k for k in tree.kids(gpath) if k != "vars"]
        weights = self.vars_of(gpath)
        cell_kids: list[str] = []
        if "cell" in kids:  # an RNN layer: its cell's variables are the layer's own
            weights += self.vars_of(_join(gpath, "cell"))
            cell_kids = [k for k in tree.kids(_join(gpath, "cell")) if k != "vars"]
        if weights:
            cls = cfg.get("class_name") if isinstance(cfg, dict) and cfg.get("class_name") else self.class_from_key(key)
            info_cfg = {**config, **(wrap or {}), **self.extra}
            if not isinstance(cfg, dict):
                info_cfg["class_name_source"] = "file key" if cls else "unknown"
            self.out.append(LayerInfo("/".join(my_parts) or name, cls, info_cfg, weights))
        for ckey in cell_kids:  # StackedRNNCells and other cells with children
            self.visit(_join(_join(gpath, "cell"), ckey), ckey, None, my_parts)
        for ckey, ccfg, cwrap in self.object_children(kids, cfg):
            if root and ckey in _ROOT_SKIP:
                continue
            self.visit(_join(gpath, ckey), ckey, ccfg, my_parts, wrap=cwrap)

    def object_children(self, kids: list[str], cfg):
        """(key, config, wrapper info) for an object's attribute children, forward before backward."""
        config = _cfg_config(cfg)
        cls = cfg.get("class_name") if isinstance(cfg, dict) else None
        order = sorted((k for k in kids if k != "cell"),
                       key=lambda k: (k.startswith("_"), k != "forward_layer", k != "backward_layer"))
        for key in order:
            if key in _CONTAINER_KEYS:
                yield key, cfg, None
            elif key == "forward_layer":
                yield key, config.get("layer"), {"wrapper": cls or "Bidirectional", "direction": "forward",
                                                 "merge_mode": config.get("merge_mode")}
            elif key == "backward_layer":
                yield key, self.backward_config(config), {"wrapper": cls or "Bidirectional", "direction": "backward",
                                                          "merge_mode": config.get("merge_mode")}
            elif key == "layer":
                yield key, config.get("layer"), {"wrapper": cls} if cls else None
            else:
                yield key, None, None

    @staticmethod
    def backward_config(config: dict):
        back = config.get("backward_layer")
        if isinstance(back, dict):
            return back
        fwd = config.get("layer")
        if not isinstance(fwd, dict):
            return None
        derived = json.loads(json.dumps(fwd))
        inner = derived.setdefault("config", {})
        inner["go_backwards"] = not bool(inner.get("go_backwards", False))
        name = str(inner.get("name", "layer"))
        inner["name"] = "backward_" + (name[len("forward_"):] if name.startswith("forward_") else name)
        return derived

    def container_children(self, gpath: str, cfg):
        """(key, layer config) for a list container, in model order when config.json says it."""
        kids = self.tree.kids(gpath)
        mapping: dict[str, dict] = {}
        config = _cfg_config(cfg)
        if isinstance(config.get("layers"), list):
            sequential = cfg.get("class_name") == "Sequential"
            used: dict[str, int] = {}
            for layer in config["layers"]:
                if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
                    continue
                if sequential and layer["class_name"] == "InputLayer":
                    continue
                base = to_snake_case(layer["class_name"])
                if base in used:
                    used[base] += 1
                    key = f"{base}_{used[base]}"
                else:
                    used[base] = 0
                    key = base
                mapping[key] = layer
        done = set()
        for key, layer in mapping.items():
            if key in kids:
                done.add(key)
                yield key, layer
        for key in sorted((k for k in kids if k not in done), key=_natural):
            yield key, None

    @staticmethod
    def class_from_key(key: str) -> str:
        base = re.sub(r"_\d+$", "", key)
        return _KNOWN_KEYS.get(base, "")
