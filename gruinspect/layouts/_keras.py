"""What the three Keras GRU layouts share: finding candidate layers or scopes, configs, activations.

A candidate comes either from ``store.layers`` (Keras files: the reader says which weights belong
to which user layer, with its class and config) or, when the store has no layer records (TF2
object checkpoints and SavedModels of Keras models), from names and shapes alone: a scope holding
``kernel`` [I, 3H] and ``recurrent_kernel`` [H, 3H], optionally ``bias`` [3H], [2, 3H] or [6H].
Readers that fill ``store.layers`` give each :class:`~gruinspect.store.LayerInfo` the user's
layer path as ``name``, the Keras ``class_name``, the layer ``config`` (plus ``keras_generation``
"keras1" | "keras2" | "keras3" and ``keras_version``) and ``weights`` = store tensor names in the
layer's weight order.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from ..store import TensorInfo
from ._common import is_optimizer_slot, join, scopes_with

# Keras kernel/recurrent_kernel/bias columns: k = 0 update (z), 1 reset (r), 2 candidate (h)
# (keras/src/layers/rnn/gru.py GRUCell.call: x_z, x_r, x_h = split(matrix_x, 3)).
KERAS_GATES = ("update", "reset", "candidate")
KERAS1_ROLES = ("W_z", "U_z", "b_z", "W_r", "U_r", "b_r", "W_h", "U_h", "b_h")  # Keras 1 GRU.build order
GRU_CLASSES = ("GRU", "GRUV1", "GRUV2", "UnifiedGRU")
CUDNN_CLASSES = ("CuDNNGRU",)
LAYOUT = "keras-gru"
CUDNN_LAYOUT = "keras-cudnn-gru"
KERAS1_LAYOUT = "keras1-gru"

_KERAS1_NAME = re.compile(r"(?:^|[/_])([WUb])_([zrh])(?::\d+)?$")
_CELL_SUFFIX = re.compile(r"/(gru_cell(_\d+)?|cell)$")
_ROLE_LEAVES = {"kernel": "kernel", "recurrent_kernel": "recurrent_kernel", "bias": "bias"}


class Candidate(NamedTuple):
    """A layer or scope that may be a Keras GRU, with its tensors by layout role."""

    name: str
    layout: str
    tensors: dict[str, TensorInfo]
    class_name: str = ""
    config: dict = {}  # never mutated: a NamedTuple default is shared
    has_config: bool = False
    from_layer: bool = True
    problem: str | None = None  # set when the layer claims to be this layout but cannot be one


# --------------------------------------------------------------------------- candidates


def find_cells_by(layout: str, build, store, claimed: set[str], problems: list[str]) -> list:
    """The cells ``build(candidate, store, problems)`` makes from the candidates of ``layout``."""
    cells = (build(cand, store, problems) for cand in candidates(store, claimed, layout, problems))
    return [cell for cell in cells if cell is not None]


def candidates(store, claimed: set[str], layout: str, problems: list[str]) -> list[Candidate]:
    """The not yet claimed layers (or scopes, when the store has no layers) that look like ``layout``.

    Layers whose class says ``layout`` but whose weights cannot be one are reported in ``problems``.
    """
    infos = store.infos()
    layers = list(getattr(store, "layers", None) or [])
    found = [_from_layer(layer, infos) for layer in layers
             if not any(w in claimed or w not in infos for w in layer.weights)]
    # Tensors no layer record covers (all of them when the store has no records) by names and shapes.
    covered = claimed | {w for layer in layers for w in layer.weights}
    found += _from_names(store, infos, covered)
    out = []
    for cand in found:
        if cand is None or cand.layout != layout:
            continue
        if cand.problem:
            problems.append(cand.problem)
        else:
            out.append(cand)
    return out


def _effective_class(layer) -> tuple[str, dict]:
    """(class, config) with RNN(GRUCell(...)) seen as the GRU it is."""
    cls = layer.class_name or ""
    config = dict(layer.config or {})
    if cls == "RNN" and isinstance(config.get("cell"), dict):
        cell = config["cell"]
        if cell.get("class_name") == "GRUCell" and isinstance(cell.get("config"), dict):
            merged = {**cell["config"], **{k: v for k, v in config.items() if k != "cell"}}
            merged["cell_name"] = cell["config"].get("name")
            return "GRU", merged
    return cls, config


def _from_layer(layer, infos: dict[str, TensorInfo]) -> Candidate | None:
    cls, config = _effective_class(layer)
    weights = [infos[w] for w in layer.weights]
    generation = config.get("keras_generation") or "keras2"
    has_config = any(k in config for k in ("units", "output_dim"))
    if cls in GRU_CLASSES:
        if generation == "keras1" and len(weights) == 9:
            return Candidate(layer.name, KERAS1_LAYOUT, _keras1_roles(weights), cls, config, has_config)
        if len(weights) in (2, 3):
            return Candidate(layer.name, LAYOUT, _keras_roles(weights), cls, config, has_config)
        return Candidate(layer.name, LAYOUT, {}, cls, config, has_config,
                         problem=f"{layer.name} is a Keras {cls} layer but has {len(weights)} weights, "
                                 f"not kernel, recurrent_kernel and bias")
    if cls in CUDNN_CLASSES:
        if len(weights) == 3:
            return Candidate(layer.name, CUDNN_LAYOUT, _keras_roles(weights), cls, config, has_config)
        return Candidate(layer.name, CUDNN_LAYOUT, {}, cls, config, has_config,
                         problem=f"{layer.name} is a Keras {cls} layer but has {len(weights)} weights, "
                                 f"not kernel, recurrent_kernel and bias")
    if cls and cls != "GRUCell":
        return None  # a known non-GRU layer (LSTM, Dense, ...)
    # Unknown class (weights-only file): names and shapes decide.
    if len(weights) == 9:
        roles = _keras1_roles(weights, by_name_only=True)
        if roles is not None:
            return Candidate(layer.name, KERAS1_LAYOUT, roles, cls, config, has_config)
        return None
    if len(weights) in (2, 3):
        roles = _keras_roles(weights)
        fit = gru_shapes(roles)
        if fit is None:
            return None
        layout = CUDNN_LAYOUT if fit[2] == "cudnn" else LAYOUT
        return Candidate(layer.name, layout, roles, cls, config, has_config)
    return None


def _keras_roles(weights: list[TensorInfo]) -> dict[str, TensorInfo]:
    return dict(zip(("kernel", "recurrent_kernel", "bias"), weights))


def _keras1_roles(weights: list[TensorInfo], *, by_name_only: bool = False) -> dict[str, TensorInfo] | None:
    by_name: dict[str, TensorInfo] = {}
    for info in weights:
        m = _KERAS1_NAME.search(info.name)
        if m:
            by_name.setdefault(f"{m.group(1)}_{m.group(2)}", info)
    if len(by_name) == 9:
        return {role: by_name[role] for role in KERAS1_ROLES}
    if by_name_only:
        return None
    return dict(zip(KERAS1_ROLES, weights))


def _from_names(store, infos: dict[str, TensorInfo], claimed: set[str]) -> list[Candidate]:
    usable = {n: i for n, i in infos.items() if n not in claimed and not is_optimizer_slot(n)}
    out = []
    for scope in scopes_with(usable, "recurrent_kernel"):
        tensors = {role: usable.get(join(scope, leaf)) for role, leaf in _ROLE_LEAVES.items()}
        tensors = {r: i for r, i in tensors.items() if i is not None}
        if "kernel" not in tensors:
            continue
        fit = gru_shapes(tensors)
        if fit is None:
            continue  # an LSTM, SimpleRNN or something else with these leaf names
        layout = CUDNN_LAYOUT if fit[2] == "cudnn" else LAYOUT
        name = _CELL_SUFFIX.sub("", scope) or scope or "(root)"
        out.append(Candidate(name, layout, tensors, from_layer=False))
    return out


def gru_shapes(tensors: dict[str, TensorInfo]) -> tuple[int, int, str] | None:
    """(input_size, units, bias kind) when kernel/recurrent_kernel/bias have Keras GRU shapes.

    bias kind: "none", "single" [3H], "double" [2, 3H] or "cudnn" [6H]. An LSTM ([H, 4H]) or a
    SimpleRNN ([H, H]) recurrent kernel does not fit.
    """
    k, rk, b = tensors.get("kernel"), tensors.get("recurrent_kernel"), tensors.get("bias")
    if k is None or rk is None or len(k.shape) != 2 or len(rk.shape) != 2:
        return None
    units = rk.shape[0]
    if units <= 0 or rk.shape[1] != 3 * units or k.shape[1] != 3 * units or k.shape[0] <= 0:
        return None
    if b is None:
        return k.shape[0], units, "none"
    if tuple(b.shape) == (3 * units,):
        return k.shape[0], units, "single"
    if tuple(b.shape) == (2, 3 * units):
        return k.shape[0], units, "double"
    if tuple(b.shape) == (6 * units,):
        return k.shape[0], units, "cudnn"
    return None


# --------------------------------------------------------------------------- configs


def activation_name(value) -> str | None:
    """The activation's name from a config value: "tanh", {"config": "tanh", ...}, None."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        name = value
    elif isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, str):
            name = inner
        elif isinstance(inner, dict) and isinstance(inner.get("name"), str):
            name = inner["name"]
        else:
            name = str(value.get("class_name") or "")
    else:
        return None
    name = name.rsplit(".", 1)[-1].strip()
    return name or None


def canonical_activation(value, generation: str) -> str | None:
    """A canonical gruinspect activation name; hard_sigmoid depends on the Keras generation (docs/keras-files.md, Activations)."""
    name = activation_name(value)
    if name is None:
        return None
    lowered = name.lower()
    if lowered == "hard_sigmoid":
        return "hard_sigmoid_keras3" if generation == "keras3" else "hard_sigmoid_keras2"
    if lowered in ("sigmoid", "tanh", "relu", "linear", "softsign", "softplus", "elu", "selu", "swish",
                   "silu", "exponential"):
        return lowered
    return name


def _version_tuple(version: str | None) -> tuple[int, ...]:
    nums = re.findall(r"\d+", version or "")
    return tuple(int(n) for n in nums[:2]) or (0,)


def default_reset_after(generation: str, version: str | None) -> bool:
    """GRU's reset_after default for a Keras generation (docs/keras-files.md, Activations)."""
    if generation == "keras3":
        return True
    if generation == "keras1":
        return False
    # tf.keras (versions "2.x.y-tf", and 2.4+) defaults to True; multi-backend Keras 2.0-2.3 to False.
    return bool(version) and (version.endswith("-tf") or _version_tuple(version) >= (2, 4))


def default_recurrent_activation(generation: str, version: str | None) -> str:
    if generation == "keras3":
        return "sigmoid"
    if generation == "keras1":
        return "hard_sigmoid"
    # Keras 2.3.0 switched the default to sigmoid; tf.keras 2.x (reset_after=True era) uses sigmoid.
    if default_reset_after(generation, version) or _version_tuple(version) >= (2, 3):
        return "sigmoid"
    return "hard_sigmoid"


def describe_config(cand: Candidate, store) -> tuple[str | None, str | None, str]:
    """(activation, recurrent_activation, config_source) for a candidate."""
    config = cand.config
    generation = config.get("keras_generation") or "keras2"
    if not cand.has_config:
        if cand.from_layer and getattr(store, "metadata", {}).get("has_config") is False:
            return None, None, "unknown (weights-only file)"
        return None, None, "unknown (no layer config in the file)"
    act = config.get("activation", "tanh")
    ract = config.get("recurrent_activation", config.get("inner_activation"))
    if ract is None:
        ract = default_recurrent_activation(generation, config.get("keras_version"))
    return canonical_activation(act, generation), canonical_activation(ract, generation), "file"


def cell_config(cand: Candidate, **extra) -> dict:
    """The small per-cell config dict shown by `list` (what the file says, not initializers)."""
    config = cand.config
    out = {
        "class_name": cand.class_name or None,
        "keras_generation": config.get("keras_generation"),
        "keras_version": config.get("keras_version"),
    }
    for key in ("use_bias", "go_backwards", "return_sequences", "consume_less", "wrapper", "direction"):
        if config.get(key) is not None:
            out[key] = config[key]
    out.update(extra)
    return out


def config_units(config: dict) -> int | None:
    units = config.get("units", config.get("output_dim"))
    return units if isinstance(units, int) else None


def keras_generation_of(cell) -> str:
    """"keras1", "keras2" or "keras3": the Keras that wrote a cell (its file's version when it says,
    else Keras 1 for the nine-array layout and Keras 2 otherwise, whose GRUCell tf-keras runs)."""
    from ..formats.keras_h5 import keras_generation

    config = cell.config or {}
    generation = config.get("keras_generation")
    if isinstance(generation, str) and generation.startswith("keras"):
        return generation
    if config.get("keras_version"):
        return keras_generation(str(config["keras_version"]))
    return "keras1" if cell.layout == KERAS1_LAYOUT else "keras2"
