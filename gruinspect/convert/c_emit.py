"""The text of the C99 files ``convert --to c`` writes (see :mod:`gruinspect.convert.c`).

Every value is printed so that a C compiler reads back the same bits: float32 values with 9
significant digits (always enough to name one float32: the decimal is far closer to the value than
half a float32 ulp, so the compiler's correctly rounded parse gives it back), float64 golden outputs
with Python's shortest round-trip repr. Only the helpers a file uses are
emitted, so ``-Wall -Wextra -Werror`` sees no unused static function.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ._code import equations_text

# The activations in C99 (libm only), matching gruinspect.maths.ACTIVATIONS term for term.
C_ACTIVATIONS = {
    "sigmoid": "return 1.0f / (1.0f + expf(-v));",
    "tanh": "return tanhf(v);",
    # Keras 1/2 and tf.keras (tf_keras src/backend.py hard_sigmoid): clip(0.2x + 0.5, 0, 1)
    "hard_sigmoid_keras2": "v = 0.2f * v + 0.5f;\n    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);",
    # Keras 3 (keras src/ops/nn.py hard_sigmoid, relu6(x + 3) / 6): clip(x / 6 + 0.5, 0, 1)
    "hard_sigmoid_keras3": "v = v / 6.0f + 0.5f;\n    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);",
    "relu": "return v > 0.0f ? v : 0.0f;",
    "linear": "return v;",
    "softsign": "return v / (1.0f + fabsf(v));",
    "softplus": "return v > 0.0f ? v + log1pf(expf(-v)) : log1pf(expf(v));",
    "elu": "return v > 0.0f ? v : expm1f(v);",
    "selu": "return 1.0507009873554805f * (v > 0.0f ? v : 1.6732632423543772f * expm1f(v));",
    "swish": "return v / (1.0f + expf(-v));",
    "silu": "return v / (1.0f + expf(-v));",
    # Keras' gelu default is the exact erf form.
    "gelu": "return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));",
    "exponential": "return expf(v);",
}

C_TYPES = {"float32": "float", "int8": "int8_t", "int16": "int16_t"}


@dataclass
class CArray:
    """One block as a C array: kernels [units][inputs] (row j feeds unit j), biases [units]."""

    gate: str
    role: str
    name: str  # W_r, U_z, b_h, b_hn...
    symbol: str
    values: np.ndarray  # float32, or the integers of a quantized kernel
    dtype: str  # float32, int8, int16
    source: str
    orientation: str
    scale: np.ndarray | None = None  # float32: [1] per tensor or [units] per row
    scale_symbol: str | None = None
    saturated: int = 0

    def to_json(self) -> dict:
        out = {"gate": self.gate, "role": self.role, "name": self.name, "symbol": self.symbol,
               "shape": list(self.values.shape), "dtype": self.dtype, "orientation": self.orientation,
               "source": self.source}
        if self.scale is not None:
            out.update(scale_symbol=self.scale_symbol, saturated=self.saturated,
                       scale=[float(s) for s in self.scale] if self.scale.size > 1 else float(self.scale[0]))
        return out


@dataclass
class CCell:
    name: str
    layout: str
    symbol: str
    input_size: int
    units: int
    reset_after: bool
    recurrent_activation: str
    activation: str
    direction: str
    arrays: dict  # (gate, role) -> CArray
    golden_xs: np.ndarray = field(default=None)  # [B, T, I] float32, in the order the cell reads it
    golden_h0: np.ndarray = field(default=None)  # [B, H]
    golden_out: np.ndarray = field(default=None)  # [B, T, H] float64
    tolerance: float = 1e-5
    clip: float = 0.0  # bound on every activation's input (ONNX clip), 0 for none

    def act(self, name: str, value: str) -> str:
        inner = f"gru_clip({value}, {c_float(self.clip)})" if self.clip else value
        return f"gru_{name}({inner})"

    @property
    def upper(self) -> str:
        return self.symbol.upper()


def comment(text: str) -> str:
    """Text safe inside a C comment: ASCII, no comment terminator."""
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("*/", "* /")


def _non_finite(v: float) -> str | None:
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    return None


def c_float(v) -> str:
    """A float32 value (given as a Python float or numpy scalar) as a C literal that reads back bit-exact."""
    v = float(v)
    special = _non_finite(v)
    if special:
        return special
    text = "%.9g" % v
    return (text if "." in text or "e" in text else text + ".0") + "f"


def c_double(v) -> str:
    v = float(v)
    return _non_finite(v) or repr(v)


def initializer(values: np.ndarray, fmt, indent: str = "    ", per_line: int = 8) -> str:
    """A C brace initializer for an n-d array, one innermost row per line (wrapped every ``per_line``)."""
    if values.ndim == 1:
        items = [fmt(v) for v in values.tolist()]  # Python scalars: formatting numpy ones is slow
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)] or [""]
        if len(lines) == 1:
            return "{" + lines[0] + "}"
        return "{\n" + ",\n".join(indent + "    " + line for line in lines) + "\n" + indent + "}"
    inner = [initializer(v, fmt, indent + "    ", per_line) for v in values]
    return "{\n" + ",\n".join(indent + "    " + s for s in inner) + "\n" + indent + "}"


def _dims(shape) -> str:
    return "".join(f"[{n}]" for n in shape)


def _needs_math(values) -> bool:
    return not np.all(np.isfinite(values))


def _header(title: str) -> list[str]:
    return [f"/* {title}", f" * Written by gruinspect {__version__} (gruinspect convert --to c).", " */"]


def weights_h(cells: list[CCell], guard: str) -> str:
    lines = _header("GRU weights: one const array per cell and block.") + [
        f"#ifndef {guard}", f"#define {guard}", ""]
    if any(a.dtype != "float32" for c in cells for a in c.arrays.values()):
        lines += ["#include <stdint.h>", ""]
    lines += ["/* Kernels are stored [units][inputs]: row j holds the weights into unit j, the transpose",
              " * of the x @ W blocks gruinspect names, so out[j] = b[j] + sum_i W[j][i] * in[i]. */", ""]
    for c in cells:
        lines.append(f"/* cell {comment(c.name)} ({c.layout}): input_size {c.input_size}, units {c.units} */")
        for a in c.arrays.values():
            what = f"{a.gate} gate, {a.role.replace('_', ' ')} {a.name}"
            lines.append(f"/* {what}: {' x '.join(map(str, a.values.shape))} {a.orientation}, "
                         f"from {comment(a.source)} */")
            lines.append(f"extern const {C_TYPES[a.dtype]} {a.symbol}{_dims(a.values.shape)};")
            if a.scale is not None:
                per = "per row" if a.scale.size > 1 else "per tensor"
                lines.append(f"/* scale of {a.symbol} ({per}): W[j][i] = {a.symbol}[j][i] * "
                             f"{a.scale_symbol}[{'j' if a.scale.size > 1 else '0'}] */")
                lines.append(f"extern const float {a.scale_symbol}[{a.scale.size}];")
        lines.append("")
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def weights_c(cells: list[CCell], header: str) -> str:
    lines = _header("GRU weights (float32 literals with 9 significant digits: they read back bit-exact).")
    if any(_needs_math(a.values) for c in cells for a in c.arrays.values() if a.dtype == "float32"):
        lines.append("#include <math.h>")
    lines += [f'#include "{header}"', ""]
    for c in cells:
        lines.append(f"/* cell {comment(c.name)} */")
        for a in c.arrays.values():
            fmt = c_float if a.dtype == "float32" else str
            lines.append(f"const {C_TYPES[a.dtype]} {a.symbol}{_dims(a.values.shape)} = "
                         f"{initializer(a.values, fmt, '')};")
            if a.scale is not None:
                lines.append(f"const float {a.scale_symbol}[{a.scale.size}] = {initializer(a.scale, c_float, '')};")
        lines.append("")
    return "\n".join(lines)


def step_h(cells: list[CCell], guard: str, quantized: str | None) -> str:
    lines = _header("One reference step per GRU cell: h_out = cell(x, h).") + [
        f"#ifndef {guard}", f"#define {guard}", "",
        "/* x holds INPUT_SIZE floats, h and h_out UNITS floats; h_out may be the same array as h.",
        " * The step allocates nothing and writes no global; it works in float32 (C99 + libm)."]
    if quantized:
        lines.append(f" * Kernels are {quantized}: each dot product is accumulated in float32 over the integer "
                     "weights and multiplied by the scale (dequantized on the fly).")
    lines += [" */", ""]
    for c in cells:
        present = {k for k in c.arrays}
        lines.append(f"/* {comment(c.name)} ({c.layout}), {'reset after' if c.reset_after else 'reset before'}, "
                     f"{c.recurrent_activation} / {c.activation}:")
        for eq in equations_text(c.reset_after, c.recurrent_activation, c.activation, present, c.clip):
            lines.append(f" *   {eq}")
        if c.direction == "backward":
            lines.append(" * It is the backward direction of its layer: run it from the last input to the first.")
        lines.append(" */")
        lines.append(f"#define {c.upper}_INPUT_SIZE {c.input_size}")
        lines.append(f"#define {c.upper}_UNITS {c.units}")
        lines.append(f"void {c.symbol}_step(const float *x, const float *h, float *h_out);")
        lines.append("")
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


_MV = """\
/* out[j] (+)= sum_i w[j * cols + i] * v[i] */
static void gru_mv(float *out, const float *w, const float *v, int rows, int cols, int accumulate)
{
    int j, i;
    for (j = 0; j < rows; ++j) {
        float acc = 0.0f;
        for (i = 0; i < cols; ++i)
            acc += w[j * cols + i] * v[i];
        out[j] = accumulate ? out[j] + acc : acc;
    }
}
"""

_MVQ = """\
/* out[j] (+)= scale[j or 0] * sum_i w[j * cols + i] * v[i], the sum in float32 */
static void gru_mv_{t}(float *out, const {ctype} *w, const float *scale, int per_row, const float *v,
                       int rows, int cols, int accumulate)
{{
    int j, i;
    for (j = 0; j < rows; ++j) {{
        float acc = 0.0f;
        for (i = 0; i < cols; ++i)
            acc += (float)w[j * cols + i] * v[i];
        acc *= scale[per_row ? j : 0];
        out[j] = accumulate ? out[j] + acc : acc;
    }}
}}
"""

_ADD = """\
static void gru_add(float *out, const float *b, int n)
{
    int j;
    for (j = 0; j < n; ++j)
        out[j] += b[j];
}
"""


def _mv_call(a, out: str, vec: str, rows: int, cols: int, accumulate: int) -> str:
    if a.scale is None:
        return f"gru_mv({out}, &{a.symbol}[0][0], {vec}, {rows}, {cols}, {accumulate});"
    per_row = 1 if a.scale.size > 1 else 0
    return (f"gru_mv_{a.dtype}({out}, &{a.symbol}[0][0], {a.scale_symbol}, {per_row}, {vec}, {rows}, {cols}, "
            f"{accumulate});")


def _step_body(c: CCell) -> list[str]:
    H, I = c.units, c.input_size
    arr = c.arrays
    lines = [f"void {c.symbol}_step(const float *x, const float *h, float *h_out)", "{",
             f"    float r[{H}], z[{H}], c[{H}], {'hc' if c.reset_after else 'rh'}[{H}];", "    int j;", ""]

    def add(key, out):
        if key in arr:
            lines.append(f"    gru_add({out}, {arr[key].symbol}, {H});")

    for gate, out in (("reset", "r"), ("update", "z")):
        lines.append(f"    {_mv_call(arr[(gate, 'input_kernel')], out, 'x', H, I, 0)}")
        add((gate, "bias"), out)
        lines.append(f"    {_mv_call(arr[(gate, 'recurrent_kernel')], out, 'h', H, H, 1)}")
        add((gate, "recurrent_bias"), out)
        lines.append(f"    for (j = 0; j < {H}; ++j)")
        lines.append(f"        {out}[j] = {c.act(c.recurrent_activation, f'{out}[j]')};")
        lines.append("")
    lines.append(f"    {_mv_call(arr[('candidate', 'input_kernel')], 'c', 'x', H, I, 0)}")
    add(("candidate", "bias"), "c")
    if c.reset_after:
        lines.append("    /* reset after the matmul: r * (h U_h + b_hn) */")
        lines.append(f"    {_mv_call(arr[('candidate', 'recurrent_kernel')], 'hc', 'h', H, H, 0)}")
        add(("candidate", "recurrent_bias"), "hc")
        lines.append(f"    for (j = 0; j < {H}; ++j)")
        lines.append(f"        c[j] = {c.act(c.activation, 'c[j] + r[j] * hc[j]')};")
    else:
        lines.append("    /* reset before the matmul: (r * h) U_h */")
        lines.append(f"    for (j = 0; j < {H}; ++j)")
        lines.append("        rh[j] = r[j] * h[j];")
        lines.append(f"    {_mv_call(arr[('candidate', 'recurrent_kernel')], 'c', 'rh', H, H, 1)}")
        add(("candidate", "recurrent_bias"), "c")
        lines.append(f"    for (j = 0; j < {H}; ++j)")
        lines.append(f"        c[j] = {c.act(c.activation, 'c[j]')};")
    lines += ["", "    /* every read of h is done: h_out may be h */",
              f"    for (j = 0; j < {H}; ++j)", "        h_out[j] = z[j] * h[j] + (1.0f - z[j]) * c[j];", "}", ""]
    return lines


def step_c(cells: list[CCell], step_header: str, weights_header: str) -> str:
    lines = _header("The GRU step of each cell, in that cell's own convention.")
    lines += ["#include <math.h>", "#include <stddef.h>", "", f'#include "{step_header}"',
              f'#include "{weights_header}"', ""]
    kinds = {a.dtype if a.scale is not None else "float32" for c in cells for a in c.arrays.values()
             if a.role.endswith("kernel")}
    if "float32" in kinds:
        lines.append(_MV)
    for t in ("int8", "int16"):
        if t in kinds:
            lines.append(_MVQ.format(t=t, ctype=C_TYPES[t]))
    if any(a.role.endswith("bias") for c in cells for a in c.arrays.values()):
        lines.append(_ADD)
    if any(c.clip for c in cells):
        lines += ["/* ONNX GRU clip: bounds an activation's input to [-bound, bound] */",
                  "static float gru_clip(float v, float bound)", "{",
                  "    return v < -bound ? -bound : (v > bound ? bound : v);", "}", ""]
    used = []
    for c in cells:
        for name in (c.recurrent_activation, c.activation):
            if name not in used:
                used.append(name)
    for name in used:
        lines += [f"static float gru_{name}(float v)", "{", f"    {C_ACTIVATIONS[name]}", "}", ""]
    for c in cells:
        lines += _step_body(c)
    return "\n".join(lines)


def golden_h(cells: list[CCell], guard: str, note: str) -> str:
    steps, batch = cells[0].golden_xs.shape[1], cells[0].golden_xs.shape[0]
    lines = _header("Golden sequences for test_gru.c.")
    lines += [f"/* {note} */", f"#ifndef {guard}", f"#define {guard}", "",
              f"#define GRU_GOLDEN_STEPS {steps}", f"#define GRU_GOLDEN_BATCH {batch}",
              f"#define GRU_GOLDEN_MAX_UNITS {max(c.units for c in cells)}", ""]
    if any(_needs_math(c.golden_out) for c in cells):
        lines.insert(3, "#include <math.h>")
    for c in cells:
        order = "last input first (backward cell)" if c.direction == "backward" else "first input first"
        lines.append(f"/* {comment(c.name)}: inputs [batch][step][input] in the order the cell reads them "
                     f"({order}), initial states [batch][unit], float64 reference states [batch][step][unit] */")
        lines.append(f"static const float {c.symbol}_golden_x{_dims(c.golden_xs.shape)} = "
                     f"{initializer(c.golden_xs, c_float, '')};")
        lines.append(f"static const float {c.symbol}_golden_h0{_dims(c.golden_h0.shape)} = "
                     f"{initializer(c.golden_h0, c_float, '')};")
        lines.append(f"static const double {c.symbol}_golden_out{_dims(c.golden_out.shape)} = "
                     f"{initializer(c.golden_out, c_double, '', 4)};")
        lines.append(f"static const double {c.symbol}_golden_tolerance = {c_double(c.tolerance)};")
        lines.append("")
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


_TEST_MAIN = """\
typedef void (*gru_step_fn)(const float *x, const float *h, float *h_out);

/* Runs one cell over every golden sequence; prints its max abs error; returns 1 when within tolerance. */
static int gru_check(const char *symbol, gru_step_fn step, int input_size, int units, const float *xs,
                     const float *h0, const double *expected, double tolerance)
{
    float h[GRU_GOLDEN_MAX_UNITS], h_next[GRU_GOLDEN_MAX_UNITS];
    double worst = 0.0;
    int b, t, j, finite = 1;
    for (b = 0; b < GRU_GOLDEN_BATCH; ++b) {
        memcpy(h, h0 + b * units, sizeof(float) * (size_t)units);
        for (t = 0; t < GRU_GOLDEN_STEPS; ++t) {
            const double *want = expected + ((size_t)b * GRU_GOLDEN_STEPS + (size_t)t) * (size_t)units;
            step(xs + ((size_t)b * GRU_GOLDEN_STEPS + (size_t)t) * (size_t)input_size, h, h_next);
            for (j = 0; j < units; ++j) {
                double d = fabs((double)h_next[j] - want[j]);
                if (!(d == d) || d > 1e300)
                    finite = 0;
                else if (d > worst)
                    worst = d;
            }
            memcpy(h, h_next, sizeof(float) * (size_t)units);
        }
    }
    printf("%s max_abs_error %.9g tolerance %.9g %s\\n", symbol, finite ? worst : -1.0, tolerance,
           finite && worst <= tolerance ? "ok" : "FAIL");
    return finite && worst <= tolerance;
}
"""


def test_c(cells: list[CCell], step_header: str, golden_header: str) -> str:
    lines = _header("Runs every cell over the golden sequences; exit 0 when all are within tolerance.")
    lines += ["#include <math.h>", "#include <stdio.h>", "#include <string.h>", "",
              f'#include "{step_header}"', f'#include "{golden_header}"', "", _TEST_MAIN,
              "int main(void)", "{", "    int ok = 1;"]
    for c in cells:
        lines.append(f'    ok &= gru_check("{c.symbol}", {c.symbol}_step, {c.upper}_INPUT_SIZE, {c.upper}_UNITS,')
        lines.append(f"                    &{c.symbol}_golden_x[0][0][0], &{c.symbol}_golden_h0[0][0],")
        lines.append(f"                    &{c.symbol}_golden_out[0][0][0], {c.symbol}_golden_tolerance);")
    lines += ["    return ok ? 0 : 1;", "}", ""]
    return "\n".join(lines)


DRIVER = """\
/* Proof driver (not written to the output): runs cell argv[1] over stdin's sequences. */
#include <stdio.h>
#include <stdlib.h>
#include "{step_header}"

typedef void (*gru_step_fn)(const float *x, const float *h, float *h_out);
static const gru_step_fn steps[] = {{ {steps} }};
static const int inputs[] = {{ {inputs} }};
static const int units[] = {{ {units} }};

int main(int argc, char **argv)
{{
    int cell, n_steps, batch, b, t, ok = 1;
    float *x, *h, *next;
    if (argc != 4)
        return 2;
    cell = atoi(argv[1]);
    n_steps = atoi(argv[2]);
    batch = atoi(argv[3]);
    x = malloc(sizeof(float) * (size_t)inputs[cell]);
    h = malloc(sizeof(float) * (size_t)units[cell]);
    next = malloc(sizeof(float) * (size_t)units[cell]);
    if (!x || !h || !next)
        return 3;
    /* stdin: per batch row, the initial state, then each step's input; stdout: each step's state */
    for (b = 0; b < batch && ok; ++b) {{
        ok = fread(h, sizeof(float), (size_t)units[cell], stdin) == (size_t)units[cell];
        for (t = 0; t < n_steps && ok; ++t) {{
            ok = fread(x, sizeof(float), (size_t)inputs[cell], stdin) == (size_t)inputs[cell];
            if (!ok)
                break;
            steps[cell](x, h, next);
            fwrite(next, sizeof(float), (size_t)units[cell], stdout);
            {{ float *swap = h; h = next; next = swap; }}
        }}
    }}
    free(x);
    free(h);
    free(next);
    return ok ? 0 : 4;
}}
"""


def driver_c(cells: list[CCell], step_header: str) -> str:
    return DRIVER.format(step_header=step_header, steps=", ".join(f"{c.symbol}_step" for c in cells),
                         inputs=", ".join(str(c.input_size) for c in cells),
                         units=", ".join(str(c.units) for c in cells))
