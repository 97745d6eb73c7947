"""Compile and run the C that ``convert --to c`` wrote, or, without a compiler, its numpy transcription.

The proof builds in ``<folder>/.build`` (removed before the folder is renamed into place): the
written ``gru_weights.c`` and ``gru_step.c`` with the flags of :data:`FLAGS`, linked once into a
driver that runs any cell over sequences on stdin, and once into the written ``test_gru.c``.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import numpy as np

from ..maths import ACTIVATIONS

FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")
BUILD = ".build"
_CANDIDATES = ("cc", "gcc", "clang")


def compiler() -> list[str] | None:
    """The C compiler command: $CC when set, else the first of cc, gcc, clang on PATH."""
    env = os.environ.get("CC")
    if env:
        words = shlex.split(env)
        return words if words and shutil.which(words[0]) else None
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return [path]
    return None


def compiler_version(cc: list[str]) -> str:
    try:
        out = subprocess.run(cc + ["--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return os.path.basename(cc[0])
    first = out.splitlines()[0].strip() if out else ""
    return first or os.path.basename(cc[0])


class BuildError(RuntimeError):
    """The written C did not compile or a program failed; the message holds the compiler's first lines."""


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        text = (proc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise BuildError(f"{what} failed (exit {proc.returncode}): " + " | ".join(text[:6]))


class Build:
    """The compiled objects of one written folder, and the programs linked from them."""

    def __init__(self, folder: str, files: dict[str, str], cc: list[str], flags=FLAGS):
        self.folder = folder
        self.dir = os.path.join(folder, BUILD)
        self.cc = list(cc)
        self.flags = list(flags)
        os.makedirs(self.dir, exist_ok=True)
        self.objects = self.compile([os.path.join(folder, files[k]) for k in ("weights_c", "step_c")])
        self._programs: dict[str, str] = {}
        self.driver: str | None = None

    def compile(self, sources: list[str]) -> list[str]:
        """Object files of ``sources`` (one compiler run), in the build folder."""
        sources = [os.path.abspath(s) for s in sources]
        proc = subprocess.run(self.cc + self.flags + ["-I", os.path.abspath(self.folder), "-c"] + sources,
                              capture_output=True, timeout=600, cwd=self.dir)
        names = " ".join(os.path.basename(s) for s in sources)
        _check(proc, f"{' '.join([os.path.basename(self.cc[0])] + self.flags)} -c {names}")
        return [os.path.join(self.dir, os.path.basename(s)[:-2] + ".o") for s in sources]

    def program(self, name: str, source: str) -> str:
        if name not in self._programs:
            exe = os.path.join(self.dir, name)
            proc = subprocess.run(self.cc + self.flags + ["-I", self.folder, source] + self.objects
                                  + ["-o", exe, "-lm"], capture_output=True, timeout=600)
            _check(proc, f"linking {name}")
            self._programs[name] = exe
        return self._programs[name]

    def run_cell(self, driver: str, index: int, xs: np.ndarray, h0: np.ndarray) -> np.ndarray:
        """States [T, B, H] of cell ``index`` over ``xs`` [T, B, I] from ``h0`` [B, H], computed by the C step."""
        steps, batch, _ = xs.shape
        payload = b"".join(np.ascontiguousarray(h0[b], "<f4").tobytes()
                           + np.ascontiguousarray(xs[:, b], "<f4").tobytes() for b in range(batch))
        proc = subprocess.run([driver, str(index), str(steps), str(batch)], input=payload, capture_output=True,
                              timeout=600)
        _check(proc, "the proof driver")
        units = h0.shape[1]
        out = np.frombuffer(proc.stdout, "<f4")
        if out.size != steps * batch * units:
            raise BuildError(f"the proof driver wrote {out.size} values, expected {steps * batch * units}")
        return np.swapaxes(out.reshape(batch, steps, units), 0, 1).astype(np.float64)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


_GOLDEN_LINE = re.compile(r"^(\w+) max_abs_error (\S+) tolerance (\S+) (ok|FAIL)$")


def parse_golden(stdout: str) -> dict[str, dict]:
    """test_gru's lines ``<symbol> max_abs_error E tolerance T ok|FAIL`` as {symbol: {...}}."""
    out = {}
    for line in stdout.splitlines():
        m = _GOLDEN_LINE.match(line.strip())
        if m:
            error = float(m.group(2))
            out[m.group(1)] = {"max_abs_error": error if error >= 0 else None, "tolerance": float(m.group(3)),
                               "passed": m.group(4) == "ok"}
    return out


# ------------------------------------------------------------------------------ numpy transcription

_ARRAY = re.compile(r"^const (float|int8_t|int16_t) (\w+)((?:\[\d+\])+) = (\{.*?\});$", re.S | re.M)
_NUMPY = {"float": np.float32, "int8_t": np.int8, "int16_t": np.int16}


def read_c_arrays(text: str) -> dict[str, np.ndarray]:
    """Every ``const T name[..] = {...};`` of a written ``gru_weights.c``, with the values C reads."""
    out = {}
    for ctype, name, dims, body in _ARRAY.findall(text):
        shape = tuple(int(d) for d in re.findall(r"\d+", dims))
        tokens = re.findall(r"-?INFINITY|NAN|[-+0-9.eE]+f?", body)
        values = [float(t.rstrip("f").replace("INFINITY", "inf").replace("NAN", "nan")) for t in tokens]
        out[name] = np.array(values, dtype=np.float64).astype(_NUMPY[ctype]).reshape(shape)
    return out


def transcribe_step(arrays: dict[str, np.ndarray], cell: dict):
    """A float32 numpy function (x [B, I], h [B, H]) -> h' doing what the emitted C step does.

    ``cell`` is the cell's ``written_as`` record: its convention and each block's array symbols.
    """
    f32 = np.float32
    by_key = {(a["gate"], a["role"]): a for a in cell["arrays"]}
    bound = f32(cell.get("clip") or 0.0)
    act_r, act = (_bounded(ACTIVATIONS[cell[k]], bound) for k in ("recurrent_activation", "activation"))

    def mv(gate, role, v):
        a = by_key[(gate, role)]
        w = arrays[a["symbol"]].astype(f32)
        out = v.astype(f32) @ w.T
        if "scale_symbol" in a:
            out = out * arrays[a["scale_symbol"]].astype(f32)
        return out.astype(f32)

    def bias(gate, role):
        a = by_key.get((gate, role))
        return f32(0.0) if a is None else arrays[a["symbol"]].astype(f32)

    def step(x, h):
        x, h = x.astype(f32), h.astype(f32)
        r = act_r(mv("reset", "input_kernel", x) + bias("reset", "bias") + mv("reset", "recurrent_kernel", h)
                  + bias("reset", "recurrent_bias")).astype(f32)
        z = act_r(mv("update", "input_kernel", x) + bias("update", "bias") + mv("update", "recurrent_kernel", h)
                  + bias("update", "recurrent_bias")).astype(f32)
        c = mv("candidate", "input_kernel", x) + bias("candidate", "bias")
        if cell["reset_after"]:
            c = act(c + r * (mv("candidate", "recurrent_kernel", h) + bias("candidate", "recurrent_bias")))
        else:
            c = act(c + mv("candidate", "recurrent_kernel", r * h) + bias("candidate", "recurrent_bias"))
        c = c.astype(f32)
        return (z * h + (f32(1.0) - z) * c).astype(f32)

    return step


def _bounded(fn, bound):
    return fn if not bound else (lambda v: fn(np.clip(v, -bound, bound)))
