"""Keras ``GRU`` (Keras 2, tf.keras, tf-keras, Keras 3; Keras 1 with ``consume_less='gpu'``).

docs/conventions.md (Keras GRU). Sources: keras `src/layers/rnn/gru.py` (``GRUCell.build`` / ``GRUCell.call``),
tf_keras `src/layers/rnn/gru.py`:

    kernel            [I, 3H]    columns k*H:(k+1)*H for k = 0 update (z), 1 reset (r), 2 candidate (h)
    recurrent_kernel  [H, 3H]    same column order
    bias              [3H]       reset_after=False (one bias per gate)
                      [2, 3H]    reset_after=True: row 0 input bias, row 1 recurrent bias

    z = act_r(x K_z + b_z + h U_z [+ rb_z]);  r likewise
    reset_after=False: h~ = act(x K_h + b_h + (r * h) U_h)
    reset_after=True:  h~ = act(x K_h + b_h + r * (h U_h + rb_h))
    h' = z * h + (1 - z) * h~

``reset_after`` comes from the layer config, else from the bias rank. Activations come from the
config (``hard_sigmoid`` is Keras 2's clip(0.2x + 0.5) before Keras 3 and clip(x/6 + 0.5) from
Keras 3 on); weights-only files and bare TF2 checkpoints do not say, and the cell reports None.
Without a layer record (TF2 object checkpoints, SavedModels) a cell is found by names and shapes:
a scope with ``kernel`` [I, 3H], ``recurrent_kernel`` [H, 3H] and optionally ``bias``.
"""
from __future__ import annotations

from ..cell import GruCell, stacked_blocks, vector_blocks
from ._common import common_dtype
from .spec import ConventionRow, LayoutSpec, Oracle, Ref
from ._keras import (KERAS_GATES, LAYOUT, Candidate, cell_config, config_units, default_reset_after,
                     describe_config, find_cells_by, gru_shapes)


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    return find_cells_by(LAYOUT, build, store, claimed, problems)


def keras_blocks(kernel: str, recurrent: str, bias: str | None, bias_rows: int, input_size: int, units: int,
                 transform: str | None = None):
    """Blocks of Keras' kernel / recurrent_kernel / bias (gate k at columns k*H:(k+1)*H)."""
    blocks = stacked_blocks(kernel, gates=KERAS_GATES, units=units, rows=[("input_kernel", 0, input_size)])
    blocks += stacked_blocks(recurrent, gates=KERAS_GATES, units=units, rows=[("recurrent_kernel", 0, units)])
    if bias is not None:
        if bias_rows == 2:
            blocks += vector_blocks(bias, gates=KERAS_GATES, units=units, role="bias", row=0)
            blocks += vector_blocks(bias, gates=KERAS_GATES, units=units, role="recurrent_bias", row=1)
        else:
            blocks += vector_blocks(bias, gates=KERAS_GATES, units=units, role="bias")
    return blocks


def _shape_problem(cand: Candidate) -> str:
    shapes = ", ".join(f"{role} {list(info.shape)}" for role, info in cand.tensors.items())
    return (f"{cand.name} looks like a Keras GRU but its weights have shapes {shapes}, not kernel "
            f"[input_size, 3 * units], recurrent_kernel [units, 3 * units] and bias [3 * units] or [2, 3 * units]")


def build(cand: Candidate, store, problems: list[str]) -> GruCell | None:
    fit = gru_shapes(cand.tensors)
    if fit is None or fit[2] == "cudnn":
        problems.append(_shape_problem(cand))
        return None
    input_size, units, bias_kind = fit
    config = cand.config
    generation = config.get("keras_generation") or "keras2"
    notes: list[str] = []
    want_units = config_units(config) if cand.has_config else None
    if want_units is not None and want_units != units:
        problems.append(f"{cand.name} is a Keras GRU with units={want_units} in its config but its recurrent "
                        f"kernel is [{units}, {3 * units}]")
        return None
    if "use_bias" in config and bool(config["use_bias"]) != (bias_kind != "none"):
        problems.append(f"{cand.name} is a Keras GRU with use_bias={config['use_bias']} in its config "
                        f"but {'has no' if bias_kind == 'none' else 'has a'} bias tensor")
        return None
    if generation == "keras1" and cand.has_config:
        reset_after, source = False, "Keras 1 GRU"
    elif cand.has_config and "reset_after" in config:
        reset_after, source = bool(config["reset_after"]), "config"
    elif bias_kind != "none":
        reset_after, source = bias_kind == "double", "bias shape"
    else:
        reset_after = default_reset_after(generation, config.get("keras_version")) if cand.from_layer else True
        source = "assumed"
        notes.append(f"reset_after cannot be seen in a GRU without bias and no config; assumed {reset_after} "
                     f"(the default of this Keras version)")
    if bias_kind != "none" and reset_after != (bias_kind == "double"):
        problems.append(f"{cand.name} is a Keras GRU with reset_after={reset_after} but its bias has shape "
                        f"{list(cand.tensors['bias'].shape)}")
        return None
    if reset_after and config.get("runtime") == "tfjs":
        # tfjs-layers src/layers/recurrent.ts, GRUCell constructor: "GRUCell does not support reset_after
        # parameter set to true."
        notes.append("the TensorFlow.js runtime cannot run this GRU: tfjs-layers' GRUCell refuses reset_after=True, "
                     "so tf.loadLayersModel fails on this model (its weights are still read and verified here)")
    dtype, dtype_problem = common_dtype(cand.name, cand.tensors)
    if dtype_problem:
        problems.append(dtype_problem)
        return None
    activation, recurrent_activation, config_source = describe_config(cand, store)
    bias = cand.tensors.get("bias")
    blocks = keras_blocks(cand.tensors["kernel"].name, cand.tensors["recurrent_kernel"].name,
                          bias.name if bias is not None else None, 2 if bias_kind == "double" else 1,
                          input_size, units)
    return GruCell(
        name=cand.name, layout=LAYOUT, input_size=input_size, units=units, reset_after=reset_after, dtype=dtype,
        tensors={role: info.name for role, info in cand.tensors.items()},
        shapes={info.name: tuple(info.shape) for info in cand.tensors.values()},
        blocks=blocks, activation=activation, recurrent_activation=recurrent_activation,
        config_source=config_source,
        config=cell_config(cand, use_bias=bias is not None, reset_after_source=source),
        notes=notes,
    )


def equations(cell, t, xs, h0, acts):
    """Keras GRUCell's equations on kernel, recurrent_kernel and bias as stored."""
    from ..maths.keras import gru

    return gru(t["kernel"], t["recurrent_kernel"], t.get("bias"), xs, h0, reset_after=cell.reset_after,
               activation_name=acts.activation, recurrent_activation_name=acts.recurrent_activation)


SPEC = LayoutSpec(
    name=LAYOUT,
    title="Keras GRU (Keras 2, tf.keras, tf-keras, Keras 3)",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="keras src/layers/rnn/gru.py GRUCell.call; tf_keras src/layers/rnn/gru.py",
    oracle=Oracle(Ref("gruinspect.oracle.keras:keras_gru_oracle"), needs=("tensorflow", "tf_keras"),
                  needs_for=Ref("gruinspect.oracle.keras:keras_gru_needs")),
    conventions=(
        ConventionRow(False, "sigmoid", "tanh", "one", "Keras GRU(reset_after=False) since Keras 2.3"),
        ConventionRow(False, "sigmoid", "tanh", "none", "Keras GRU(reset_after=False, use_bias=False)"),
        ConventionRow(True, "sigmoid", "tanh", "two", "Keras GRU(reset_after=True): tf.keras 2.x, Keras 3"),
        ConventionRow(True, "sigmoid", "tanh", "none", "Keras GRU(reset_after=True, use_bias=False)"),
        ConventionRow(True, "hard_sigmoid_keras2", "tanh", "two",
                      "tf.keras / Keras 2 GRU(reset_after=True, hard_sigmoid)"),
        ConventionRow(True, "hard_sigmoid_keras3", "tanh", "two", "Keras 3 GRU(recurrent_activation='hard_sigmoid')"),
        ConventionRow(True, "sigmoid", "relu", "two", "Keras GRU(activation='relu')"),
        ConventionRow(False, "sigmoid", "relu", "one", "Keras GRU(reset_after=False, activation='relu')"),
        ConventionRow(True, "sigmoid", "swish", "two", "Keras GRU(activation='swish')"),
        ConventionRow(True, None, None, "two", "weights-only Keras files and TF2 checkpoints (reset_after=True)"),
        ConventionRow(False, None, None, "one", "weights-only Keras files and TF2 checkpoints (reset_after=False)"),
    ),
    samples=("tfkeras_full_h5", "tfkeras_weights_h5", "keras3_archive", "keras3_folder_bf16", "keras3_sharded",
             "keras3_weights_h5", "tf2_keras3_checkpoint", "tf2_keras3_export", "tf2_tf_keras_checkpoint",
             "tf2_tf_keras_saved_model"),
)
