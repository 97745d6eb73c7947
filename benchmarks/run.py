#!/usr/bin/env python
"""gruinspect against TensorFlow's own checkpoint tools: time and peak memory, as whole processes.

    python benchmarks/run.py                      # full size (~400 MB files), 5 runs, writes RESULTS.md
    python benchmarks/run.py --size tiny --runs 1 --warmup 0 --out /tmp/r.md   # smoke test

1. Writes the inputs with TensorFlow (``generate.py``, in its own process) into the work folder
   (default ``/tmp/gruinspect-bench``; reused while its ``info.json`` says the same size): a TF1
   checkpoint of 4 stacked ``GRUCell(2048)`` plus 200 small dense variables, and a tf_keras HDF5
   model of 4 stacked ``GRU(2048)``, both about 400 MB at full size.
2. For each group (list, stats, split; on the checkpoint and on the HDF5 file) runs every command
   once to warm the page cache (``--warmup``), then ``--runs`` rounds that run the group's
   commands one after the other, alternating, so that slow drift of the machine hits all alike.
   Each run is a whole process, started by a small wrapper process that times it (wall clock,
   from spawn to exit) and reads its peak resident set size from ``wait4``'s rusage. Output files
   of ``split``/``cp`` are deleted (and ``sync`` run) between runs, untimed.
3. Writes a Markdown report (``--out``, default ``benchmarks/RESULTS.md``): the machine, every
   command's median/min/max time and peak memory, and the targets of issue 5 as ratios of
   medians measured in this same run. Raw numbers go to ``WORK/results.json``.

A gruinspect command that cannot read an input yet (e.g. a format whose reader has not landed)
is reported as "not yet supported" instead of stopping the run. Exit status: 0 when the report is
written (targets met or not), 1 on a usage or generation failure; ``--check`` makes unmet targets
exit 1 too.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

import large_inputs
import many_files

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MIB = 1024 * 1024

# Runs in a fresh, small Python process per measured run: spawns the command, waits for exactly
# that child with wait4 and prints its wall time and rusage. The wrapper exists because a
# child's ru_maxrss starts at the peak RSS of the process it was spawned from (Linux copies the
# parent's high-water mark at exec), so spawning from this driver would inflate every number.
_WRAPPER = r"""
import json, os, sys, time
spec = json.loads(sys.argv[1])
null = os.open(os.devnull, os.O_RDWR)
err = os.open(spec["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, err, 2)]
t0 = time.perf_counter()
pid = os.posix_spawn(spec["argv"][0], spec["argv"], spec["env"], file_actions=actions)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "maxrss_kib": ru.ru_maxrss, "user": ru.ru_utime, "sys": ru.ru_stime,
                  "exit": os.waitstatus_to_exitcode(status)}))
"""


class Command:
    """One measured command line. ``prepare`` runs (untimed) before each run."""

    def __init__(self, key, label, argv, *, env=None, prepare=None, unsupported=None):
        self.key = key
        self.label = label
        self.argv = [shutil.which(argv[0]) or argv[0]] + list(argv[1:])
        self.env = env
        self.prepare = prepare
        self.unsupported = unsupported  # a reason string: listed in the report, never run
        self.runs: list[dict] = []
        self.error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.unsupported and not self.error and bool(self.runs)

    def median(self, field="wall") -> float:
        return statistics.median(r[field] for r in self.runs)

    def peak_mib(self) -> float:
        return max(r["maxrss_kib"] for r in self.runs) / 1024


def measure(cmd: Command, work: str) -> dict:
    """Run ``cmd`` once in a wrapper process; returns the wrapper's record."""
    if cmd.prepare:
        cmd.prepare()
    errfile = os.path.join(work, "stderr.txt")
    spec = {"argv": cmd.argv, "env": cmd.env, "stderr": errfile}
    out = subprocess.run([sys.executable, "-I", "-S", "-c", _WRAPPER, json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    record = json.loads(out.stdout)
    if record["exit"] != 0:
        with open(errfile, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        record["stderr"] = lines[-1] if lines else ""
    return record


# ------------------------------------------------------------------------------- environment


def child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # An installed package runs from byte code: let the children write theirs (outside the
    # repository) instead of compiling gruinspect's source again in every timed run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", os.path.join(tempfile.gettempdir(), "gruinspect-bench-pycache"))
    env.update(extra)
    return env


def gruinspect_argv() -> tuple[list[str], str]:
    """The installed ``gruinspect`` script next to this Python, else ``python -m gruinspect``."""
    script = os.path.join(os.path.dirname(sys.executable), "gruinspect")
    if os.access(script, os.X_OK):
        return [script], "gruinspect"
    return [sys.executable, "-m", "gruinspect"], "python -m gruinspect"


def machine() -> dict:
    info = {"python": platform.python_version(), "kernel": platform.release(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info.setdefault("cpu", platform.processor() or "unknown")
    return info


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def filesystem(path: str) -> str:
    try:
        out = subprocess.run(["df", "-T", path], capture_output=True, text=True, check=True).stdout.splitlines()
        return out[-1].split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def git_version() -> str:
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "gruinspect"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict:
    out = subprocess.run([sys.executable, "-c", "import gruinspect, numpy, crc32c; "
                          "print(gruinspect.__version__, numpy.__version__)"], capture_output=True, text=True)
    parts = out.stdout.split()
    return {"gruinspect": parts[0] if parts else "?", "numpy": parts[1] if len(parts) > 1 else "?"}


# ------------------------------------------------------------------------------------ inputs


def ensure_inputs(work: str, size: str, regenerate: bool) -> dict:
    info_path = os.path.join(work, "info.json")
    if not regenerate and os.path.exists(info_path):
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
        if info.get("size") == size and os.path.exists(info["tf1"]["data_file"]) and os.path.exists(
                info["keras_h5"]["path"]):
            return info
    for sub in ("tf1", "keras"):
        shutil.rmtree(os.path.join(work, sub), ignore_errors=True)
    print(f"writing the {size} inputs into {work} with TensorFlow...", file=sys.stderr)
    subprocess.run([sys.executable, os.path.join(HERE, "generate.py"), "--work", work, "--size", size],
                   env=child_env(), check=True, stdout=subprocess.DEVNULL)
    with open(info_path, encoding="utf-8") as f:
        return json.load(f)


def ensure_written(folder: str, size: str, regenerate: bool, script: str, what: str) -> dict:
    """An input that ``script write FOLDER --size SIZE`` writes with its ``info.json``, reused while the size matches."""
    info_path = os.path.join(folder, "info.json")
    if not regenerate and os.path.exists(info_path):
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
        if info.get("size") == size and os.path.exists(info["path"]):
            return info
    print(f"writing the {size} {what} into {folder}...", file=sys.stderr)
    subprocess.run([sys.executable, os.path.join(HERE, script), "write", folder, "--size", size],
                   env=child_env(), check=True, stdout=subprocess.DEVNULL)
    with open(info_path, encoding="utf-8") as f:
        return json.load(f)


def ensure_onnx(work: str, size: str, regenerate: bool) -> dict:
    """The ONNX input (benchmarks/onnx_inputs.py, written with onnx.helper)."""
    return ensure_written(os.path.join(work, "onnx"), size, regenerate, "onnx_inputs.py", "ONNX input with onnx.helper")


def remover(*paths):
    def prepare():
        for p in paths:
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.unlink(p)
        os.sync()  # no earlier run's dirty pages left to be written back during this one
    return prepare


# ------------------------------------------------------------------------------------ groups


def build_groups(info: dict, work: str, only: set[str]) -> list[dict]:
    gi, gi_label = gruinspect_argv()
    py = sys.executable
    env = child_env()
    base = os.path.join(HERE, "baselines.py")
    out = os.path.join(work, "out")
    groups = []
    tf1 = info["tf1"]
    prefix = tf1["prefix"]
    cell0 = tf1["cells"][0]
    h5 = info["keras_h5"]["path"]
    h5_unsupported = probe_unsupported(gi + ["list", h5], env)

    def g(key, title, commands, reference, subject, **extra):
        if key.split("-")[0] in only or key in only:
            groups.append({"key": key, "title": title, "commands": commands, "reference": reference,
                           "subject": subject, **extra})

    g("list-tf1", "list: TF1 checkpoint", [
        Command("gruinspect", f"{gi_label} list PREFIX", gi + ["list", prefix], env=env),
        Command("numpy", "python -c \"import numpy\" (the floor)", [py, "-c", "import numpy"], env=env),
        Command("tf", "tf.train.list_variables(PREFIX)", [py, base, "tf-list", prefix], env=env),
        Command("inspect", "python -m tensorflow.python.tools.inspect_checkpoint --file_name=PREFIX",
                [py, "-m", "tensorflow.python.tools.inspect_checkpoint", f"--file_name={prefix}"], env=env),
    ], reference="tf", subject="gruinspect")
    g("stats-tf1", "stats: TF1 checkpoint", [
        Command("gruinspect", f"{gi_label} stats PREFIX", gi + ["stats", prefix], env=env),
        Command("tf", "tf.train.load_checkpoint + numpy statistics of every GRU block",
                [py, base, "tf-stats", prefix, str(cell0["input_size"]), str(cell0["units"])], env=env),
    ], reference="tf", subject="gruinspect")
    g("split-tf1", "split: TF1 checkpoint", [
        Command("gruinspect", f"{gi_label} split PREFIX --out OUT", gi + ["split", prefix, "--out", out + "/split"],
                env=env, prepare=remover(out + "/split")),
        Command("cp", "cp PREFIX.data-00000-of-00001 OUT (the same bytes)", ["cp", tf1["data_file"], out + "/cp.data"],
                env=env, prepare=remover(out + "/cp.data")),
        Command("sha256", "SHA-256 of the data file with hashlib, one thread (the manifest's hashing alone)",
                [py, base, "sha256", tf1["data_file"]], env=env),
    ], reference="cp", subject="gruinspect")
    g("list-keras", "list: Keras HDF5 model", [
        Command("gruinspect", f"{gi_label} list MODEL.h5", gi + ["list", h5], env=env, unsupported=h5_unsupported),
        Command("numpy", "python -c \"import numpy\" (the floor)", [py, "-c", "import numpy"], env=env),
        Command("h5py", "h5py: visit every dataset", [py, base, "h5py-list", h5], env=env),
        Command("tf", "tf_keras load_model(MODEL.h5) + model.weights", [py, base, "keras-list", h5], env=env),
    ], reference="tf", subject="gruinspect")
    g("stats-keras", "stats: Keras HDF5 model", [
        Command("gruinspect", f"{gi_label} stats MODEL.h5", gi + ["stats", h5], env=env, unsupported=h5_unsupported),
        Command("tf", "tf_keras load_model + numpy statistics of every GRU block", [py, base, "keras-stats", h5],
                env=env),
    ], reference="tf", subject="gruinspect")
    g("split-keras", "split: Keras HDF5 model", [
        Command("gruinspect", f"{gi_label} split MODEL.h5 --out OUT", gi + ["split", h5, "--out", out + "/split"],
                env=env, prepare=remover(out + "/split"), unsupported=h5_unsupported),
        Command("cp", "cp MODEL.h5 OUT (the same bytes)", ["cp", h5, out + "/cp.h5"], env=env,
                prepare=remover(out + "/cp.h5")),
    ], reference="cp", subject="gruinspect")
    if "onnx" in info:
        model = info["onnx"]["path"]
        g("list-onnx", "list: ONNX model", [
            Command("gruinspect", f"{gi_label} list MODEL.onnx", gi + ["list", model], env=env),
            Command("numpy", "python -c \"import numpy\" (the floor)", [py, "-c", "import numpy"], env=env),
            Command("onnx", "onnx.load(MODEL.onnx) + its initializers' names and shapes",
                    [py, os.path.join(HERE, "onnx_inputs.py"), "onnx-load", model], env=env),
        ], reference="onnx", subject="gruinspect")
    if "torch" in info:
        pt, tscript = info["torch"]["path"], os.path.join(HERE, "torch_inputs.py")
        g("list-torch", "list: PyTorch state_dict (torch.save zip)", [
            Command("gruinspect", f"{gi_label} list MODEL.pt", gi + ["list", pt], env=env),
            Command("numpy", "python -c \"import numpy\" (the floor)", [py, "-c", "import numpy"], env=env),
            Command("torch", "torch.load(MODEL.pt, weights_only=True) + its keys and shapes",
                    [py, tscript, "torch-list", pt], env=env),
        ], reference="torch", subject="gruinspect")
        g("stats-torch", "stats: PyTorch state_dict", [
            Command("gruinspect", f"{gi_label} stats MODEL.pt", gi + ["stats", pt], env=env),
            Command("torch", "torch.load(weights_only=True) + numpy statistics of every gate block",
                    [py, tscript, "torch-stats", pt], env=env),
        ], reference="torch", subject="gruinspect")
        g("split-torch", "split: PyTorch state_dict", [
            Command("gruinspect", f"{gi_label} split MODEL.pt --out OUT", gi + ["split", pt, "--out", out + "/split"],
                    env=env, prepare=remover(out + "/split")),
            Command("cp", "cp MODEL.pt OUT (the same bytes)", ["cp", pt, out + "/cp.pt"], env=env,
                    prepare=remover(out + "/cp.pt")),
        ], reference="cp", subject="gruinspect")
    if "large" in info:
        for key, title, commands, reference, subject in large_inputs.groups(info["large"], gi, gi_label, env, out,
                                                                             Command, remover):
            g(key, title, commands, reference=reference, subject=subject)
    if "many" in info:
        g("list-many", f"list: {info['many']['count']} small TF1 checkpoints",
          many_files.commands(info["many"], gi, gi_label, py, base, env, Command), reference="tf-each",
          subject="gruinspect")
    os.makedirs(out, exist_ok=True)
    return groups


def probe_unsupported(argv: list[str], env: dict) -> str | None:
    """None when gruinspect reads the file; else the reason, for the report."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {proc.returncode}"


def run_group(group: dict, runs: int, warmup: int, work: str) -> None:
    commands = [c for c in group["commands"] if not c.unsupported]
    for round_ in range(warmup + runs):
        for cmd in commands:
            if cmd.error:
                continue
            record = measure(cmd, work)
            if record["exit"] != 0:
                cmd.error = f"exit status {record['exit']}: {record.get('stderr', '')}"
                continue
            if round_ >= warmup:
                cmd.runs.append(record)
        done = max(0, round_ - warmup + 1)
        print(f"  {group['key']}: round {round_ + 1}/{warmup + runs}" + (" (warm-up)" if round_ < warmup else "")
              + (f" gruinspect median so far {group['commands'][0].median():.3f}s" if done and
                 group["commands"][0].ok else ""), file=sys.stderr)


# ----------------------------------------------------------------------------------- targets


def ratio(group: dict, num_key: str, den_key: str) -> float | None:
    cmds = {c.key: c for c in group["commands"]}
    num, den = cmds.get(num_key), cmds.get(den_key)
    if not (num and den and num.ok and den.ok):
        return None
    return num.median() / den.median()


def targets(groups: dict, info: dict) -> list[dict]:
    """The issue's targets, each with the measured value and whether it is met."""
    largest = info["tf1"]["largest_tensor_bytes"] / MIB
    rows = []

    def cmd(gkey, ckey):
        group = groups.get(gkey)
        if not group:
            return None
        return next((c for c in group["commands"] if c.key == ckey and c.ok), None)

    def add(text, value, fmt, ok, required):
        rows.append({"target": text, "value": None if value is None else fmt.format(value), "required": required,
                     "met": None if value is None else bool(ok(value))})

    lst = groups.get("list-tf1")
    if lst:
        add("`list` speed-up over `tf.train.list_variables`", ratio(lst, "tf", "gruinspect"), "{:.1f}x",
            lambda v: v >= 10, ">= 10x")
        add("`list` time / bare `import numpy` time", ratio(lst, "gruinspect", "numpy"), "{:.2f}x",
            lambda v: v <= 1.5, "<= 1.5x")
        c = cmd("list-tf1", "gruinspect")
        add("`list` peak memory", c and c.peak_mib(), "{:.0f} MiB", lambda v: v < 100, "< 100 MiB")
    lo = groups.get("list-onnx")
    if lo:
        add("`list` of the ONNX model: speed-up over `onnx.load`", ratio(lo, "onnx", "gruinspect"), "{:.1f}x",
            lambda v: v >= 10, ">= 10x")
        add("`list` of the ONNX model / bare `import numpy` time", ratio(lo, "gruinspect", "numpy"), "{:.2f}x",
            lambda v: v <= 1.5, "<= 1.5x")
    if groups.get("list-torch"):
        torch_largest = info["torch"]["largest_tensor_bytes"] / MIB
        add("`list` of the PyTorch file: speed-up over `torch.load(weights_only=True)`",
            ratio(groups["list-torch"], "torch", "gruinspect"), "{:.1f}x", lambda v: v >= 10, ">= 10x")
        for key in ("stats-torch", "split-torch"):
            c = cmd(key, "gruinspect")
            add(f"`{key.split('-')[0]}` of the PyTorch file: peak memory", c and c.peak_mib(), "{:.0f} MiB",
                lambda v, t=torch_largest: v < t + 100, f"< largest tensor + 100 MiB = {torch_largest + 100:.0f} MiB")
    if groups.get("list-many"):
        many = info["many"]
        by_gi, by_tf = many_files.speedups(groups["list-many"], many)
        add(f"{many['count']} files in one `list` run: speed-up over {many['count']} separate `gruinspect list` runs",
            by_gi, "{:.1f}x", lambda v: v >= 5, ">= 5x")
        add(f"{many['count']} files in one `list` run: speed-up over {many['count']} `tf.train.list_variables` runs",
            by_tf, "{:.1f}x", lambda v: v >= 20, ">= 20x")
    if "large" in info:
        large_inputs.targets(groups, info["large"], add)
    st = groups.get("stats-tf1")
    if st:
        add("`stats` speed-up over TF load + numpy", ratio(st, "tf", "gruinspect"), "{:.1f}x", lambda v: v >= 4,
            ">= 4x")
        c = cmd("stats-tf1", "gruinspect")
        add("`stats` peak memory", c and c.peak_mib(), "{:.0f} MiB", lambda v: v < largest + 100,
            f"< largest tensor + 100 MiB = {largest + 100:.0f} MiB")
    sp = groups.get("split-tf1")
    if sp:
        add("`split` time / `cp` of the data file", ratio(sp, "gruinspect", "cp"), "{:.2f}x", lambda v: v <= 1.5,
            "<= 1.5x")
        c = cmd("split-tf1", "gruinspect")
        add("`split` peak memory", c and c.peak_mib(), "{:.0f} MiB", lambda v: v < largest + 100,
            f"< largest tensor + 100 MiB = {largest + 100:.0f} MiB")
    return rows


# ------------------------------------------------------------------------------------ report


def split_floor_note(groups: list[dict], meta: dict) -> list[str]:
    """What the measurements themselves say about a target, for the report."""
    out = []
    split = next((g for g in groups if g["key"] == "split-tf1"), None)
    if split:
        cmds = {c.key: c for c in split["commands"]}
        gi, cp, sha = cmds.get("gruinspect"), cmds.get("cp"), cmds.get("sha256")
        if gi and cp and sha and gi.ok and cp.ok and sha.ok:
            cores = meta["machine"]["cores"] or 1
            floor = sha.median() / cores
            out += ["", f"`split` must also write the SHA-256 of every byte it writes into the manifest "
                    f"(docs/contracts.md). Hashing the data file alone takes {sha.median():.3f} s on one core "
                    f"({sha.median() / cp.median():.2f}x `cp`); even spread perfectly over the {cores} cores it "
                    f"would be {floor:.3f} s ({floor / cp.median():.2f}x `cp`) before a byte is read or written, "
                    f"and writing the same bytes is all `cp` does. `split` here: "
                    f"{gi.median() / cp.median():.2f}x `cp`, {gi.median() / sha.median():.2f}x the hashing alone."]
    return out


def fmt_load(load: list) -> str:
    return " / ".join("?" if x is None else f"{x:.2f}" for x in load)


def mib(nbytes: float) -> str:
    return f"{nbytes / MIB:.0f} MiB" if nbytes >= MIB else f"{nbytes / MIB:.3f} MiB"


def report(groups: list[dict], rows: list[dict], info: dict, meta: dict, args) -> str:
    m = meta["machine"]
    tf1, h5 = info["tf1"], info["keras_h5"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{' '.join(['python benchmarks/run.py'] + meta['argv'])}` on {meta['date']}.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m.get('memory_gib', '?')} GiB; Linux {m['kernel']}",
        f"- Work folder file system: {meta['filesystem']}",
        f"- Load average (1 min) when the run started: {fmt_load(meta['load'][:1])}"
        + (" -- other work was running; the ratios are less reliable than on an idle machine"
           if meta["load"][0] is not None and meta["load"][0] > 0.5 else " (idle)")
        + f"; when it ended: {fmt_load(meta['load'][1:])} (this run's own processes included)",
        f"- Python {m['python']}, numpy {meta['versions']['numpy']}, TensorFlow {info['versions']['tensorflow']}"
        + (f", tf_keras {info['versions']['tf_keras']}" if "tf_keras" in info["versions"] else ""),
        f"- gruinspect {meta['versions']['gruinspect']} (git {meta['git']})",
        "",
        "## Inputs",
        "",
        f"- TF1 checkpoint (`{args.size}`): `MultiRNNCell([GRUCell({info['units']})] * {info['layers']})` on "
        f"{info['units']} input features + 200 small dense variables, {tf1['tensors']} tensors, "
        f"{tf1['bytes'] / 1e6:.1f} MB; largest tensor {mib(tf1['largest_tensor_bytes'])}.",
        f"- Keras HDF5 model: tf_keras `Sequential` of {info['layers']} x `GRU({info['units']})` + `Dense`, "
        f"`model.save(\"model.h5\")`, {h5['bytes'] / 1e6:.1f} MB; largest tensor "
        f"{mib(h5['largest_tensor_bytes'])}.",
    ] + ([
        f"- ONNX model: {info['onnx']['layers']} GRU nodes of {info['onnx']['units']} units written with onnx.helper "
        f"(`benchmarks/onnx_inputs.py`), {info['onnx']['bytes'] / 1e6:.1f} MB; largest tensor "
        f"{mib(info['onnx']['largest_tensor_bytes'])}.",
    ] if "onnx" in info else []) + [
        "",
        "## Method",
        "",
        f"Every number is a whole process, started by a small wrapper process that measures wall time "
        f"(spawn to exit) and peak resident memory (`ru_maxrss` from `wait4`). Each command ran "
        f"{args.warmup} time(s) first to warm the page cache (so every command reads its input from "
        f"memory, not disk), then {args.runs} timed rounds in which the commands of a group run one after "
        f"the other, alternating. Times are the median of the {args.runs} runs (min-max beside it); "
        f"memory is the largest peak seen. Ratios compare medians from this same run. `split` and `cp` "
        f"write into the work folder; their output is deleted and `sync` run before each run, untimed. "
        f"The wrapper's own size sets a floor of about {meta['floor_mib']:.0f} MiB under every memory figure "
        f"(that is what it reports for `true`).",
        "",
        "## Targets (TF1 checkpoint)",
        "",
        "| target | measured | required | met |",
        "|---|---:|---|---|",
    ]
    for r in rows:
        met = "n/a" if r["met"] is None else ("**yes**" if r["met"] else "**no**")
        lines.append(f"| {r['target']} | {r['value'] or 'n/a'} | {r['required']} | {met} |")
    lines += split_floor_note(groups, meta)
    lines += many_files.note(groups, info.get("many"))
    lines += ["", "## All measurements", ""]
    for group in groups:
        ref = next((c for c in group["commands"] if c.key == group["subject"] and c.ok), None)
        lines += [f"### {group['title']}", "",
                  "| command | median s | min-max s | peak MiB | time vs gruinspect |",
                  "|---|---:|---:|---:|---:|"]
        for c in group["commands"]:
            label = c.label.replace("|", "\\|")
            if c.unsupported:
                lines.append(f"| {label} | not yet supported | | | |")
                continue
            if c.error or not c.runs:
                lines.append(f"| {label} | failed: {(c.error or 'no run').replace('|', '/')} | | | |")
                continue
            walls = [r["wall"] for r in c.runs]
            vs = "1.00x" if c is ref else (f"{c.median() / ref.median():.2f}x" if ref else "")
            lines.append(f"| {label} | {c.median():.3f} | {min(walls):.3f}-{max(walls):.3f} | {c.peak_mib():.0f} "
                         f"| {vs} |")
        notes = [f"`{c.label}`: {c.unsupported}" for c in group["commands"] if c.unsupported]
        if notes:
            lines += ["", "Not yet supported: " + "; ".join(notes)]
        lines.append("")
    lines += ["`PREFIX` is the checkpoint prefix `.../model.ckpt`; `OUT` a folder in the work folder. "
              "The reference scripts are in `benchmarks/baselines.py`.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "gruinspect-bench"),
                        help="Folder for the generated inputs and outputs (default: %(default)s).")
    parser.add_argument("--size", choices=["full", "small", "tiny"], default="full",
                        help="full: 2048 units, ~400 MB per file (default); small: 512; tiny: 16 (smoke test).")
    parser.add_argument("--runs", type=int, default=5, help="Timed rounds (default 5; the median is reported).")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed rounds first (default 1).")
    parser.add_argument("--only", action="append", default=None, metavar="GROUP",
                        help="list, stats, split, or one group such as list-tf1 (repeatable; default all).")
    parser.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="Report to write.")
    parser.add_argument("--regenerate", action="store_true", help="Write the inputs again even if present.")
    parser.add_argument("--check", action="store_true", help="Exit 1 when a measured target is not met.")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    try:
        info = ensure_inputs(work, args.size, args.regenerate)
        info["onnx"] = ensure_onnx(work, args.size, args.regenerate)
        if importlib.util.find_spec("torch") is not None:
            info["torch"] = ensure_written(os.path.join(work, "torch"), args.size, args.regenerate, "torch_inputs.py",
                                           "PyTorch input with torch.save")
    except subprocess.CalledProcessError as exc:
        print(f"run.py: writing the inputs failed ({exc})", file=sys.stderr)
        return 1
    only = set(args.only or ["list", "stats", "split"])
    if "list" in only or "list-many" in only:
        info["many"] = many_files.ensure(work, args.size)
    if only & {"stats", "split", "stats-large", "split-large"}:
        try:
            info["large"] = ensure_written(os.path.join(work, "large"), args.size, args.regenerate, "large_inputs.py",
                                           "inputs with one 400 MB tensor (Keras 3, TensorFlow)")
        except subprocess.CalledProcessError as exc:
            print(f"run.py: writing the inputs failed ({exc})", file=sys.stderr)
            return 1
    groups = build_groups(info, work, only)
    load_before = load_average()
    floor = Command("true", "true", [shutil.which("true") or "/bin/true"], env=child_env())
    floor_mib = measure(floor, work)["maxrss_kib"] / 1024
    for group in groups:
        print(f"{group['title']}...", file=sys.stderr)
        run_group(group, args.runs, args.warmup, work)
    shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
    by_key = {g["key"]: g for g in groups}
    rows = targets(by_key, info)
    meta = {"machine": machine(), "filesystem": filesystem(work), "git": git_version(), "versions": versions(),
            "date": datetime.date.today().isoformat(), "argv": list(argv if argv is not None else sys.argv[1:]),
            "floor_mib": floor_mib, "load": [load_before, load_average()]}
    text = report(groups, rows, info, meta, args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    raw = {"meta": meta, "targets": rows, "groups": [
        {"key": g["key"], "commands": [{"key": c.key, "label": c.label, "argv": c.argv, "runs": c.runs,
                                        "error": c.error, "unsupported": c.unsupported} for c in g["commands"]]}
        for g in groups]}
    with open(os.path.join(work, "results.json"), "w", encoding="utf-8") as f:
        json.dump(raw, f, indent=2)
    print(text)
    if args.check and any(r["met"] is False for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
