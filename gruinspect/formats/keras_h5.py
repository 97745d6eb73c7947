"""Keras 1 / Keras 2 / tf.keras HDF5 weight files (`model.save("m.h5")`, `save_weights("w.h5")`).

docs/keras-files.md; tf_keras `src/saving/legacy/hdf5_format.py` (`save_weights_to_hdf5_group`,
`load_weights_from_hdf5_group`, `load_attributes_from_hdf5_group`):

    /                      attrs keras_version, backend, model_config (JSON), training_config
    /model_weights         attrs layer_names (or chunks layer_names0, layer_names1...), keras_version
    /model_weights/<layer> attrs weight_names; dataset <layer>/<weight name> for each
    /optimizer_weights     optional

A weights-only file has the ``model_weights`` layout at the root and no ``model_config``. The
reader maps every dataset to a tensor named by its HDF5 path and, from ``layer_names`` /
``weight_names`` and the config (when present), records one :class:`LayerInfo` per layer that owns
weights, named by the user's layer path (``bidi/forward_gru``, ``inner_model/inner_gru``).

This reader claims every HDF5 file the Keras 3 reader left (it comes later in the registry), so a
non-Keras HDF5 file gets a one-line "Unsupported ... not Keras weights" error from here.
"""
from __future__ import annotations

import copy
import re

from ..errors import GruInspectError, InvalidFileError, UnsupportedError, UsageError
from ..store import LayerInfo
from . import _h5, _json, check_format
from ._guard import hang_guard

FORMAT_MODEL = "keras-h5"
FORMAT_WEIGHTS = "keras-h5-weights"
FORMATS = (FORMAT_MODEL, FORMAT_WEIGHTS)
HDF5 = "hdf5"  # what sniff says of an HDF5 file holding no Keras 1/2 weights (open refuses it)

CONTAINERS = ("Sequential", "Functional", "Model")
_CELL_COMPONENT = re.compile(r"(^|_)cell(_\d+)?$")


def sniff(path: str) -> str | None:
    """"keras-h5" (a whole model) or "keras-h5-weights" for a Keras 1/2 HDF5 file, "hdf5" for
    any other HDF5 file (claimed, so that opening it says what it is; the Keras 3 reader, tried
    first, takes Keras 3 ones), None for anything else."""
    if not _h5.is_hdf5(path):
        return None
    return _h5.probe(path, lambda f: keras_format(f) or HDF5, HDF5)  # damaged: open() says what is wrong


def keras_format(f) -> str | None:
    """FORMAT_MODEL when the open HDF5 file ``f`` holds a saved model, FORMAT_WEIGHTS for
    `save_weights` files, None when it holds no Keras 1/2 weights."""
    group = _h5.lookup(f, "model_weights", f.filename)
    if _h5.is_group(group) and _h5.has_name_list(group, "layer_names"):
        return FORMAT_MODEL
    return FORMAT_WEIGHTS if _h5.has_name_list(f, "layer_names") else None


def open(path: str, fmt: str | None = None) -> "KerasH5Store":  # noqa: A001 - the reader API is sniff()/open()
    """The Keras 1/2 weights of PATH. ``fmt`` (what :func:`sniff` found) is checked against the
    file's content; a file of another kind is refused."""
    if fmt is not None and fmt != HDF5:
        check_format(fmt, FORMATS, path)
    store = _open_native(path)
    if store is None:
        store = _open_h5py(path)
    if fmt not in (None, HDF5, store.format):
        store.close()
        raise UsageError(f"Cannot open {path} as {fmt}: it is a {store.format} file.")
    return store


def _open_native(path: str) -> "KerasH5Store | None":
    """The store built from the native parse of the metadata, or None when that parse declines or
    the file is damaged in any way (then h5py reads it and gives its error)."""
    root = _h5.native_root(path)
    if root is None:
        return None
    try:
        return KerasH5Store(path, root)
    except Exception:
        return None
    finally:
        _h5.native_close(root)  # data reads open the file with h5py (H5Store._dataset)


def _open_h5py(path: str) -> "KerasH5Store":
    with hang_guard(_h5.hang_message(path)):
        f = _h5.open_file(path, path)
        try:
            store = KerasH5Store(path, f)
        except GruInspectError:
            f.close()
            raise
        except Exception as exc:  # h5py surprises on malformed files
            f.close()
            raise _h5.h5_error(path, exc) from None
    return store


def keras_generation(version: str | None) -> str:
    """"keras1", "keras2" or "keras3" from a ``keras_version`` attribute (missing means Keras 1)."""
    if not version:
        return "keras1"
    major = version.strip().split(".")[0]
    return {"1": "keras1", "2": "keras2", "3": "keras3"}.get(major, "keras2")


def not_keras_message(path: str, f) -> str:
    """The one-line error for an HDF5 file that holds no Keras weights."""
    if "nb_layers" in f.attrs:
        return (f"Unsupported file {path}: it appears to be a Keras 0.x weights file (attribute nb_layers), "
                f"a layout gruinspect does not read.")
    if _h5.count_datasets(f) == 0:
        return f"Unsupported file {path}: it appears to be an HDF5 file with no datasets, so it holds no weights."
    return (f"Unsupported file {path}: it appears to be an HDF5 file that is not Keras weights "
            f"(no layer_names attribute; top-level entries: {_h5.top_level_summary(f)}).")


class KerasH5Store(_h5.H5Store):
    """A Keras 1/2 HDF5 file: tensors are datasets named by their HDF5 path."""

    def __init__(self, path: str, f) -> None:
        super().__init__()
        self.path = path
        self.note_file(path)
        index = self.add_file(f, path)
        self.format = keras_format(f) or ""
        if not self.format:
            raise UnsupportedError(not_keras_message(path, f))
        root = f["model_weights"] if self.format == FORMAT_MODEL else f
        version = _h5.attr_text(f, "keras_version") or _h5.attr_text(root, "keras_version")
        backend = _h5.attr_text(f, "backend") or _h5.attr_text(root, "backend")
        self.generation = keras_generation(version)
        self.metadata.update({"keras_version": version, "backend": backend, "keras_generation": self.generation})

        skipped = _h5.walk(f, lambda p, ds: self.add_dataset(p, index, p, ds))
        if skipped:
            self.metadata.setdefault("warnings", []).append(_h5.skipped_links_warning(path, skipped))
        if not self._infos:
            raise UnsupportedError(f"Unsupported file {path}: it is a Keras weights file with no weights in it.")
        self.config = self._model_config(f)
        self.metadata["has_config"] = self.config is not None
        self.layers = self._layers(root)

    # -- config ----------------------------------------------------------------------------
    def _model_config(self, f) -> dict | None:
        text = _h5.attr_text(f, "model_config") if self.format == FORMAT_MODEL else None
        if text is None:
            return None
        try:
            config = _json.loads(text, self.path, "its model_config attribute")
        except ValueError as exc:
            raise InvalidFileError(f"Invalid Keras file {self.path}: model_config is not JSON ({exc}).") from None
        return config if isinstance(config, dict) else None

    def _top_level_configs(self) -> dict[str, dict]:
        """{layer name: {"class_name", "config"}} for the model's own layers."""
        if self.config is None:
            return {}
        return {name: cfg for name, cfg in _layer_configs(self.config)}

    # -- layers ----------------------------------------------------------------------------
    def _layers(self, root) -> list[LayerInfo]:
        configs = self._top_level_configs()
        out: list[LayerInfo] = []
        where = self.path
        for layer_name in _h5.name_list(root, "layer_names", len(root), where) or []:
            group = _h5.lookup(root, layer_name, where)
            if not _h5.is_group(group):
                raise InvalidFileError(
                    f"Invalid Keras weights file {self.path}: layer {layer_name} is listed in layer_names "
                    f"but has no group.")
            weight_names = _h5.name_list(group, "weight_names", len(self._infos), where) or []
            weights = []
            prefix = group.name.strip("/") + "/"
            for wn in weight_names:
                if (prefix + wn) in self._entries:  # reached by the walk through hard links: already checked
                    weights.append((wn, prefix + wn))
                    continue
                ds = _h5.lookup(group, wn, where)
                if not _h5.is_dataset(ds):
                    raise InvalidFileError(
                        f"Invalid Keras weights file {self.path}: layer {layer_name} lists weight {wn}, "
                        f"which is not in the file.")
                weights.append((wn, ds.name.lstrip("/")))
            if not weights:
                continue
            out += self._leaves(layer_name, configs.get(layer_name), weights)
        return out

    def _leaves(self, layer_name: str, cfg: dict | None, weights: list[tuple[str, str]]) -> list[LayerInfo]:
        """One LayerInfo per weight-owning leaf layer of a top-level layer group."""
        extra = {"keras_generation": self.generation, "keras_version": self.metadata["keras_version"]}
        owners = [_owner(wn, layer_name) for wn, _ in weights]
        if cfg is not None:
            leaves = expand(cfg, "", self.generation)
            assigned = assign(leaves, owners, self.generation)
            if assigned is not None:
                out = []
                for (rel, cls, lcfg), idx in zip(leaves, assigned):
                    if idx:
                        name = f"{layer_name}/{rel}" if rel else layer_name
                        config = {**_keras1_aliases(lcfg), **lcfg, **extra}
                        out.append(LayerInfo(name, cls, config, [weights[i][1] for i in idx]))
                return out
        # No config (weights-only file) or one that does not fit: group by the weight names.
        groups: dict[str, list[int]] = {}
        for i, owner in enumerate(owners):
            groups.setdefault(owner, []).append(i)
        if len(groups) == 1:
            (owner,) = groups
            if re.fullmatch(re.escape(layer_name) + r"_\d+", owner):
                # TF uniquified the variable scope (`gru_1` -> `gru_1_1`): still the layer itself.
                groups = {"": groups[owner]}
        out = []
        for owner, idx in groups.items():
            name = f"{layer_name}/{owner}" if owner else layer_name
            hint = _class_hint([weights[i][0] for i in idx])
            config = {**extra, "class_name_source": "weight names" if hint else "unknown"}
            out.append(LayerInfo(name, hint, config, [weights[i][1] for i in idx]))
        return out


def _layer_configs(config: dict):
    """(name, layer config) for the layers of a model config (Keras 1/2 list or dict forms)."""
    inner = config.get("config")
    if isinstance(inner, list):  # Keras <= 2.2.2 Sequential and Keras 1: a bare list
        layers = inner
    elif isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        layers = inner["layers"]
    else:
        return
    for layer in layers:
        if isinstance(layer, dict) and isinstance(layer.get("config"), dict):
            name = layer["config"].get("name") or layer.get("name")
            if isinstance(name, str):
                yield name, layer


def expand(cfg: dict, rel: str, generation: str) -> list[tuple[str, str, dict]]:
    """The weight-owning leaves of a layer config, in weight order: ``(relative path, class, config)``.

    Bidirectional gives ``forward_<inner>`` then ``backward_<inner>``; TimeDistributed keeps the
    wrapper's own path; nested models give ``<inner layer name>`` paths.
    """
    cls = cfg.get("class_name") or ""
    config = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    join = lambda a, b: f"{a}/{b}" if a else b  # noqa: E731
    if cls == "Bidirectional" and isinstance(config.get("layer"), dict):
        fwd = copy.deepcopy(config["layer"])
        fwd_cfg = fwd.setdefault("config", {})
        inner = str(fwd_cfg.get("name", "layer"))
        fwd_name = inner if inner.startswith("forward_") else f"forward_{inner}"
        back = config.get("backward_layer")
        if isinstance(back, dict):
            bwd = copy.deepcopy(back)
            bwd_cfg = bwd.setdefault("config", {})
            bname = str(bwd_cfg.get("name", inner))
            bwd_name = bname if bname.startswith("backward_") else f"backward_{bname}"
        else:
            bwd = copy.deepcopy(fwd)
            bwd_cfg = bwd["config"]
            bwd_cfg["go_backwards"] = not bool(fwd_cfg.get("go_backwards", False))
            base = inner[len("forward_"):] if inner.startswith("forward_") else inner
            bwd_name = f"backward_{base}"
        out = []
        for sub, name, direction in ((fwd, fwd_name, "forward"), (bwd, bwd_name, "backward")):
            for path, c, lcfg in expand(sub, join(rel, name), generation):
                out.append((path, c, {**lcfg, "wrapper": "Bidirectional", "direction": direction,
                                      "merge_mode": config.get("merge_mode")}))
        return out
    if cls == "TimeDistributed" and isinstance(config.get("layer"), dict):
        return [(path, c, {**lcfg, "wrapper": "TimeDistributed"})
                for path, c, lcfg in expand(config["layer"], rel, generation)]
    if cls in CONTAINERS or isinstance(config.get("layers"), list) or isinstance(cfg.get("config"), list):
        out = []
        for name, layer in _layer_configs(cfg):
            if layer.get("class_name") == "InputLayer":
                continue
            out += expand(layer, join(rel, name), generation)
        return out
    return [(rel, cls, dict(config))]


def expected_weight_count(cls: str, config: dict, generation: str) -> int | None:
    """How many weights a leaf layer of this class saves, when that is known from its config."""
    bias = bool(config.get("use_bias", config.get("bias", True)))
    if cls in ("GRU", "GRUV1", "GRUV2"):
        if generation == "keras1":
            return 3 if config.get("consume_less") == "gpu" else 9
        return 3 if bias else 2
    if cls in ("LSTM", "LSTMV1", "LSTMV2"):
        if generation == "keras1":
            return 3 if config.get("consume_less") == "gpu" else 12
        return 3 if bias else 2
    if cls == "SimpleRNN":
        return 3 if bias else 2
    if cls in ("CuDNNGRU", "CuDNNLSTM"):
        return 3
    if cls in ("Dense", "Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "Conv1DTranspose"):
        return 2 if bias else 1
    if cls == "Embedding":
        return 1
    if cls in ("BatchNormalization",):
        return 2 + int(bool(config.get("scale", True))) + int(bool(config.get("center", True)))
    if cls == "LayerNormalization":
        return int(bool(config.get("scale", True))) + int(bool(config.get("center", True)))
    if cls in ("InputLayer", "Dropout", "Flatten", "Activation", "Reshape", "Permute", "RepeatVector",
               "Lambda", "Concatenate", "Add", "Multiply", "Average", "Maximum", "Minimum", "Masking",
               "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalMaxPooling1D",
               "GlobalAveragePooling1D", "SpatialDropout1D", "GaussianNoise", "GaussianDropout"):
        return 0
    return None


def _suffix_match(rel: str, owner: str) -> bool:
    return rel == owner or rel.endswith("/" + owner) or (owner == "" and rel == "")


def assign(leaves, owners: list[str], generation: str) -> list[list[int]] | None:
    """Which weights (indices) belong to which leaf, or None when it cannot be decided.

    First by name (a weight's owner path equals, or ends, a leaf's path), then by position using
    each leaf's expected weight count, then halves for Bidirectional.
    """
    n = len(owners)
    if len(leaves) == 1:
        return [list(range(n))]
    if not leaves:
        return None
    by_name: list[list[int]] = [[] for _ in leaves]
    ok = True
    for i, owner in enumerate(owners):
        hits = [k for k, (rel, _, _) in enumerate(leaves) if _suffix_match(rel, owner)]
        if len(hits) != 1:
            ok = False
            break
        by_name[hits[0]].append(i)
    if ok:
        return by_name
    counts = [expected_weight_count(cls, cfg, generation) for _, cls, cfg in leaves]
    if all(c is not None for c in counts) and sum(counts) == n:
        out, start = [], 0
        for c in counts:
            out.append(list(range(start, start + c)))
            start += c
        return out
    if len(leaves) == 2 and n % 2 == 0 and all(cfg.get("wrapper") == "Bidirectional" for _, _, cfg in leaves):
        return [list(range(n // 2)), list(range(n // 2, n))]
    return None


def _keras1_aliases(config: dict) -> dict:
    """Keras 2 names for Keras 1 config fields (output_dim -> units, inner_activation -> recurrent_activation)."""
    out = {}
    if "output_dim" in config:
        out["units"] = config["output_dim"]
    if "inner_activation" in config:
        out["recurrent_activation"] = config["inner_activation"]
    if "bias" in config and isinstance(config["bias"], bool):
        out["use_bias"] = config["bias"]
    return out


def _owner(weight_name: str, layer_name: str) -> str:
    """The layer path a weight name implies, relative to its top-level layer.

    ``bidi/forward_gru/gru_cell/kernel:0`` in group ``bidi`` -> ``forward_gru``;
    ``g1/gru_cell/kernel:0`` in ``g1`` -> ""; ``inner_gru/gru_cell/kernel:0`` in a nested model
    ``inner_model`` -> ``inner_gru``; Keras 1 ``gru_1_W_z:0`` -> "".
    """
    parts = [p for p in weight_name.split("/") if p][:-1]
    while parts and _CELL_COMPONENT.search(parts[-1]):
        parts.pop()
    if parts and parts[0] == layer_name:
        parts = parts[1:]
    return "/".join(parts)


def _class_hint(weight_names: list[str]) -> str:
    """A class name implied by weight names alone (``.../gru_cell/kernel:0`` -> GRU), or ""."""
    for wn in weight_names:
        parts = wn.split("/")
        if any(re.fullmatch(r"gru_cell(_\d+)?", p) for p in parts[:-1]):
            return "GRU"
    return ""

