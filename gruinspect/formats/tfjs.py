"""TensorFlow.js layers models: ``model.json`` (or the folder holding it) plus its weight shards.

Written by the ``tensorflowjs`` converter (``tensorflowjs/converters/keras_h5_conversion.py``,
``write_weights.py``) or by tfjs-layers' ``model.save``::

    {"format": "layers-model", "generatedBy": "keras v2.21.0", "convertedBy": "TensorFlow.js Converter v4.22.0",
     "modelTopology": {"keras_version", "backend", "model_config": <the Keras model config>},
     "weightsManifest": [{"paths": ["group1-shard1of2.bin", ...],
                          "weights": [{"name", "shape", "dtype", "quantization"?: {"dtype", "scale", "min"}}]}]}

tfjs-layers' own ``model.save`` puts the model config itself in ``modelTopology``. In each group
the shard files, concatenated in ``paths`` order, hold the weights back to back in manifest order
(``write_weights._stack_group_bytes``), each ``numel * itemsize`` bytes of its stored dtype,
little-endian. Quantized weights are decoded as tfjs-core does (``src/io/io_utils.ts``
``decodeWeights``, and ``tensorflowjs/quantization.py`` ``dequantize_weights``): uint8 / uint16
``q * scale + min`` computed in double precision and stored as float32 (affine, ``min`` is the
value of q = 0); float16 widened to float32. So ``read`` returns what the tfjs runtime holds, and
``infos`` reports the decoded dtype; ``metadata["quantization"]`` keeps each weight's stored form.

The topology is a Keras config, so the reader records one :class:`LayerInfo` per weight-owning
leaf layer exactly as the Keras HDF5 reader does (Bidirectional halves, nested models,
TimeDistributed), and the Keras layouts find the GRUs. Weights are matched to layers by name:
the converter writes groups in HDF5 name order, not layer order, and tfjs loads by name too.
"""
from __future__ import annotations

import builtins
import os
import re

from .._paths import is_within
from ..errors import InvalidFileError, UnsupportedError
from ..store import LayerInfo, TensorInfo, TensorStore
from . import _json, check_format
from .keras_h5 import _class_hint, _keras1_aliases, _layer_configs, expand, keras_generation

FORMAT = "tfjs-layers-model"
FORMATS = (FORMAT,)
MODEL_JSON = "model.json"
MAX_JSON_BYTES = 256 << 20
_SNIFF_BYTES = 4096

# Stored dtypes tfjs writes for layers-model weights (tfjs-core src/types.ts DataType), little-endian.
_DTYPES = {"float32": ("<f4", "float32"), "int32": ("<i4", "int32"), "bool": ("|u1", "bool")}
_QUANTIZED = {"uint8": "<u1", "uint16": "<u2", "float16": "<f2"}
_CELL = re.compile(r"^(gru_cell|lstm_cell|simple_rnn_cell|cell)(_\d+)?$")


def _json_path(path: str) -> str:
    return os.path.join(path, MODEL_JSON) if os.path.isdir(path) else path


def sniff(path: str):
    """"tfjs-layers-model" for a tfjs model.json (a graph model too, which :func:`open` refuses by name)."""
    target = _json_path(path)
    if not os.path.isfile(target):
        return None
    try:
        with builtins.open(target, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return None
    if not head.lstrip().startswith(b"{"):
        return None
    if any(key in head for key in (b'"layers-model"', b'"graph-model"', b'"modelTopology"', b'"weightsManifest"')):
        return FORMAT
    return None


def open(path: str, fmt: str | None = None) -> TfjsStore:  # noqa: A001 - the reader API is sniff()/open()
    check_format(fmt or sniff(path), FORMATS, path)
    return TfjsStore(path)


def _invalid(path: str, what: str) -> InvalidFileError:
    return InvalidFileError(f"Invalid TensorFlow.js model {path}: {what}.")


class _Weight:
    __slots__ = ("info", "group", "offset", "nbytes", "stored", "quantization", "original")

    def __init__(self, info, group, offset, nbytes, stored, quantization, original):
        self.info, self.group, self.offset, self.nbytes = info, group, offset, nbytes
        self.stored, self.quantization, self.original = stored, quantization, original


class TfjsStore(TensorStore):
    """The weights of a tfjs layers model, decoded as the tfjs runtime decodes them."""

    format = FORMAT

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.json_path = _json_path(path)
        self.folder = os.path.dirname(os.path.abspath(self.json_path))
        model = self._load_json()
        if model.get("format") == "graph-model":
            raise UnsupportedError(
                f"Unsupported file {path}: it is a TensorFlow.js graph model (converted from a SavedModel or "
                f"frozen graph), whose GRUs are TensorFlow ops, not Keras layers; gruinspect reads tfjs layers models.")
        manifest = model.get("weightsManifest")
        if not isinstance(manifest, list):
            raise _invalid(path, "weightsManifest is missing or not a list")
        self._weights: dict[str, _Weight] = {}
        self._groups: list[list[tuple[str, int]]] = []  # per group: (shard path, size)
        quantization: dict[str, dict] = {}
        for gi, group in enumerate(manifest):
            self._add_group(gi, group, quantization)
        self._infos = {name: w.info for name, w in self._weights.items()}
        topology = model.get("modelTopology")
        config, version, backend = _topology(topology, self.json_path)
        self.generation = keras_generation(version) if version else "keras2"
        self.metadata.update({
            "format": model.get("format", "layers-model"), "generated_by": model.get("generatedBy"),
            "converted_by": model.get("convertedBy"), "keras_version": version, "backend": backend,
            "keras_generation": self.generation, "has_config": config is not None, "quantization": quantization,
            "runtime": "tfjs",
        })
        self.layers = self._layers(config)
        self._files: dict[str, object] = {}

    # -- the manifest ----------------------------------------------------------------------
    def _load_json(self) -> dict:
        try:
            size = os.path.getsize(self.json_path)
            if size > MAX_JSON_BYTES:
                raise _invalid(self.path, f"{MODEL_JSON} is {size} bytes, more than a model description can be")
            self.note_file(self.json_path)
            with builtins.open(self.json_path, "rb") as f:
                text = f.read()
        except OSError as exc:
            raise InvalidFileError(f"Cannot read {self.json_path}: {exc.strerror}.") from None
        try:
            model = _json.loads(text.decode("utf-8"), self.json_path)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _invalid(self.path, f"{MODEL_JSON} is not JSON ({exc})") from None
        if not isinstance(model, dict):
            raise _invalid(self.path, f"{MODEL_JSON} is not a JSON object")
        return model

    def _add_group(self, gi: int, group, quantization: dict) -> None:
        where = f"weightsManifest group {gi + 1}"
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list) \
                or not isinstance(group.get("weights"), list):
            raise _invalid(self.path, f"{where} has no paths and weights lists")
        shards = []
        for rel in group["paths"]:
            shards.append(self._shard(rel, where))
        offset = 0
        for wi, spec in enumerate(group["weights"]):
            name, info, nbytes, stored, quant, original = self._weight(spec, f"{where} weight {wi + 1}")
            if name in self._weights:
                raise _invalid(self.path, f"weight {name} is listed twice")
            self._weights[name] = _Weight(info, gi, offset, nbytes, stored, quant, original)
            if quant is not None:
                quantization[name] = dict(quant)
            offset += nbytes
        have = sum(size for _, size in shards)
        if have != offset:
            listed = ", ".join(os.path.basename(p) for p, _ in shards) or "no shard files"
            if have < offset:
                raise _invalid(self.path, f"the shards of {where} ({listed}) hold {have} bytes but its weights need "
                                          f"{offset}; a shard is truncated or missing")
            raise _invalid(self.path, f"the shards of {where} ({listed}) hold {have} bytes but its weights need only "
                                      f"{offset}; the manifest does not describe these shards")
        self._groups.append(shards)

    def _shard(self, rel, where: str) -> tuple[str, int]:
        if not isinstance(rel, str) or not rel or "\x00" in rel:
            raise _invalid(self.path, f"{where} lists a shard path that is not a file name: {rel!r}")
        # tfjs resolves shard paths relative to model.json; anything escaping its folder is refused.
        full = os.path.normpath(os.path.join(self.folder, rel))
        if os.path.isabs(rel) or not is_within(self.folder, full):
            raise _invalid(self.path, f"{where} lists shard {rel}, which is outside the model's folder")
        if not os.path.isfile(full):
            raise _invalid(self.path, f"shard file {rel} listed in {where} is missing")
        return full, os.path.getsize(full)

    def _weight(self, spec, where: str):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise _invalid(self.path, f"{where} has no name")
        name = spec["name"]
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40
                                                  for d in shape):
            raise _invalid(self.path, f"weight {name} has shape {shape!r}, not a list of sizes")
        dtype = spec.get("dtype", "float32")
        if not isinstance(dtype, str):
            raise _invalid(self.path, f"weight {name} has dtype {dtype!r}")
        if dtype == "string":
            raise UnsupportedError(f"Unsupported file {self.path}: weight {name} is a string tensor, whose "
                                   f"length-prefixed encoding gruinspect does not read.")
        if dtype not in _DTYPES:
            raise _invalid(self.path, f"weight {name} has dtype {dtype!r}")
        quant = spec.get("quantization")
        numel = 1
        for d in shape:
            numel *= d
        if quant is None:
            stored, decoded = _DTYPES[dtype]
            itemsize = int(stored[-1])
        else:
            qdtype = quant.get("dtype") if isinstance(quant, dict) else None
            if not isinstance(qdtype, str) or qdtype not in _QUANTIZED:
                raise _invalid(self.path, f"weight {name} has quantization {quant!r}; tfjs knows uint8, uint16, float16")
            numeric = [isinstance(quant.get(k), (int, float)) and not isinstance(quant.get(k), bool)
                       for k in ("scale", "min")]
            if qdtype != "float16" and not all(numeric):
                raise _invalid(self.path, f"weight {name} is {qdtype}-quantized without a numeric scale and min")
            if dtype == "bool" or (qdtype == "float16" and dtype != "float32"):
                raise _invalid(self.path, f"weight {name} of dtype {dtype} cannot be {qdtype}-quantized")
            stored, decoded = _QUANTIZED[qdtype], dtype
            itemsize = int(stored[-1])
        return name, TensorInfo(name, tuple(shape), decoded), numel * itemsize, stored, quant, dtype

    # -- layers ----------------------------------------------------------------------------
    def _layers(self, config: dict | None) -> list[LayerInfo]:
        by_owner: dict[str, list[str]] = {}
        for name in self._weights:
            by_owner.setdefault(_owner(name), []).append(name)
        extra = {"keras_generation": self.generation, "keras_version": self.metadata["keras_version"],
                 "runtime": "tfjs"}
        out: list[LayerInfo] = []
        if config is not None:
            for layer_name, cfg in _layer_configs(config):
                for rel, cls, lcfg in expand(cfg, "", self.generation):
                    path = f"{layer_name}/{rel}" if rel else layer_name
                    owner = _match(path, rel, by_owner)
                    if owner is None:
                        continue
                    weights = by_owner.pop(owner)
                    out.append(LayerInfo(path, cls, {**_keras1_aliases(lcfg), **lcfg, **extra}, weights))
        for owner, weights in by_owner.items():  # no config, or weights no layer of it claims
            hint = _class_hint(weights)
            config = {**extra, "class_name_source": "weight names" if hint else "unknown"}
            out.append(LayerInfo(owner or "(root)", hint, config, weights))
        return out

    # -- data ------------------------------------------------------------------------------
    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    def _bytes(self, w: _Weight) -> bytes:
        out = bytearray()
        pos = w.offset
        end = w.offset + w.nbytes
        start = 0
        for shard, size in self._groups[w.group]:
            stop = start + size
            if pos < stop and end > start:
                a, b = max(pos, start) - start, min(end, stop) - start
                f = self._files.get(shard)
                if f is None:
                    try:
                        f = self._files[shard] = builtins.open(shard, "rb")
                        self.note_file(shard)
                    except OSError as exc:
                        raise InvalidFileError(f"Cannot read shard {shard}: {exc.strerror}.") from None
                f.seek(a)
                chunk = f.read(b - a)
                if len(chunk) != b - a:
                    raise InvalidFileError(f"Unexpected end of file in shard {shard} reading {w.info.name}; "
                                           f"the file may be truncated.")
                out += chunk
            start = stop
        if len(out) != w.nbytes:
            raise InvalidFileError(f"Unexpected end of the shards of {self.json_path} reading {w.info.name}; "
                                   f"a shard may be truncated.")
        self.bytes_read += len(out)
        return bytes(out)

    def read(self, name: str):
        import numpy as np

        w = self._weights[name]
        raw = np.frombuffer(self._bytes(w), dtype=np.dtype(w.stored)).reshape(w.info.shape)
        q = w.quantization
        if q is None:
            return raw.astype(w.info.dtype)  # native-endian copy
        if q["dtype"] == "float16":
            return raw.astype(np.float32)
        # tfjs-core decodeWeights: values[i] = v * scale + min in JS doubles, stored in a Float32Array.
        values = raw.astype(np.float64) * float(q["scale"]) + float(q["min"])
        if w.original == "int32":
            return np.round(values).astype(np.int32)
        return values.astype(np.float32)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _topology(topology, where: str) -> tuple[dict | None, str | None, str | None]:
    """(model config, keras_version, backend) from ``modelTopology`` in either of its two forms."""
    if not isinstance(topology, dict):
        return None, None, None
    version = topology.get("keras_version")
    backend = topology.get("backend")
    config = topology.get("model_config", topology if "class_name" in topology else None)
    if isinstance(config, str):  # some converters wrote the config as a JSON string
        try:
            config = _json.loads(config, where, "its model_config string")
        except ValueError:
            config = None
    if not isinstance(config, dict):
        config = None
    return config, version if isinstance(version, str) else None, backend if isinstance(backend, str) else None


def _owner(weight_name: str) -> str:
    """The layer path a tfjs weight name implies: ``bidi/forward_gru/gru_cell/kernel`` -> ``bidi/forward_gru``."""
    parts = [p for p in weight_name.split("/") if p][:-1]
    while parts and _CELL.match(parts[-1]):
        parts.pop()
    return "/".join(parts)


def _match(path: str, rel: str, by_owner: dict[str, list[str]]) -> str | None:
    """The owner key whose weights belong to the leaf layer at ``path`` (``rel`` inside its top layer).

    The converter names a nested model's weights by the inner layer alone (``inner_gru/...``, not
    ``inner_model/inner_gru/...``), so a suffix of the path also matches when it is unique.
    """
    if path in by_owner:
        return path
    parts = path.split("/")
    for k in range(1, len(parts)):
        tail = "/".join(parts[k:])
        if tail in by_owner:
            return tail
    return None
