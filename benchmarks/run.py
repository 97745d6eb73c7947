#!/usr/bin/env python
"""gruinspect against the frameworks' own tools: time and peak memory, as whole processes.

    python benchmarks/run.py                      # every group, full size (~400 MB inputs), writes RESULTS.md
    python benchmarks/run.py --only split-tf1 --runs 3 --out /tmp/r.md          # one group
    python benchmarks/run.py --size tiny --runs 1 --warmup 0 --out /tmp/r.md    # smoke test

1. Writes the inputs with the frameworks themselves, each in its own process, into the work
   folder (default ``/tmp/gruinspect-bench``; reused while its ``info.json`` says the same size):
   ``generate.py`` (a TF1 checkpoint of 4 stacked ``GRUCell(2048)`` plus 200 small dense
   variables, a tf_keras HDF5 model of 4 ``GRU(2048)``), ``onnx_inputs.py``, ``torch_inputs.py``,
   ``many_files.py`` (1,000 small checkpoints), ``large_inputs.py`` (Keras HDF5, ``.keras`` and
   TF2 checkpoint with a 404 MB tensor) and ``large_tf1.py`` (a TF1 checkpoint with a 400 MB tensor).
2. Unless ``--install never``, when this Python has gruinspect installed editable (or not at
   all) makes a regular install of the checkout under the work folder and runs everything from
   there (``install.py``), so start-up is what a ``pip install gruinspect`` user gets.
3. For each group (``groups.py``) runs every command once to warm the page cache (``--warmup``),
   then ``--runs`` rounds that run the group's commands one after the other, alternating, each a
   whole process timed by a small wrapper process (``measure.py``). Output files of
   ``split``/``cp`` are deleted (and ``sync`` run) between runs, untimed.
4. Writes the Markdown report (``--out``, default ``benchmarks/RESULTS.md``, ``report.py``):
   the machine, the targets as ratios of medians measured in this same run, and every command's
   median/min/max time and peak memory. Raw numbers go to ``WORK/results.json``.

With no ``--only`` every group runs, and the report is the whole of RESULTS.md from that one run.
A gruinspect command that cannot read an input yet is reported as "not yet supported" instead of
stopping the run. Exit status: 0 when the report is written (targets met or not), 1 on a usage,
install or generation failure; ``--check`` makes unmet targets exit 1 too.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import groups as groups_mod
import install
import large_inputs
import many_files
import report
from measure import HERE, Command, child_env, filesystem, git_version, load_average, machine, measure, run_group, \
    versions

# ------------------------------------------------------------------------------------ inputs


def _reusable(info_path: str, size: str, *paths_of) -> dict | None:
    if not os.path.exists(info_path):
        return None
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    if info.get("size") != size:
        return None
    for path_of in paths_of:
        path = path_of(info)
        if not (os.path.exists(path) or os.path.exists(path + ".index")):
            return None
    return info


def ensure_inputs(work: str, size: str, regenerate: bool) -> dict:
    """The TF1 checkpoint and Keras HDF5 model of generate.py."""
    info_path = os.path.join(work, "info.json")
    info = None if regenerate else _reusable(info_path, size, lambda i: i["tf1"]["data_file"],
                                             lambda i: i["keras_h5"]["path"])
    if info:
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
    info = None if regenerate else _reusable(os.path.join(folder, "info.json"), size, lambda i: i["path"])
    if info:
        return info
    print(f"writing the {size} {what} into {folder}...", file=sys.stderr)
    subprocess.run([sys.executable, os.path.join(HERE, script), "write", folder, "--size", size],
                   env=child_env(), check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(folder, "info.json"), encoding="utf-8") as f:
        return json.load(f)


def selected(only: set[str]) -> set[str]:
    """The group keys ``--only`` selects (every group without it)."""
    if not only:
        return set(groups_mod.GROUPS)
    return {g for g in groups_mod.GROUPS if g in only or g.split("-")[0] in only}


def all_inputs(work: str, size: str, regenerate: bool, keys: set[str]) -> dict:
    info = ensure_inputs(work, size, regenerate)
    if "list-onnx" in keys:
        info["onnx"] = ensure_written(os.path.join(work, "onnx"), size, regenerate, "onnx_inputs.py",
                                      "ONNX input with onnx.helper")
    if keys & {"list-torch", "stats-torch", "split-torch"} and importlib.util.find_spec("torch") is not None:
        info["torch"] = ensure_written(os.path.join(work, "torch"), size, regenerate, "torch_inputs.py",
                                       "PyTorch input with torch.save")
    if "list-many" in keys:
        info["many"] = many_files.ensure(work, size)
    if keys & {"stats-large", "split-large", "list-keras3", "stats-keras3"}:
        large = ensure_written(os.path.join(work, "large"), size, regenerate, "large_inputs.py",
                               "inputs with one 400 MB tensor (Keras 3, TensorFlow)")
        tf1 = ensure_written(os.path.join(work, "large-tf1"), size, regenerate, "large_tf1.py",
                             "TF1 checkpoint with one 400 MB tensor (tf.compat.v1 Saver)")
        info["large"] = large_inputs.with_tf1(large, tf1)
    return info


# ------------------------------------------------------------------------------------ runner


def runner_for(args, work: str) -> dict:
    """How gruinspect and every Python command run: from a regular install, or this Python's."""
    kind = install.install_kind()
    if args.install == "always" or (args.install == "auto" and kind != "regular"):
        print("installing the checkout (non-editable) into the work folder...", file=sys.stderr)
        r = install.regular_install(work)
        env = child_env(pycache_prefix=False)
        return {"mode": r["mode"], "python": r["python"], "argv": [r["gruinspect"]], "label": "gruinspect",
                "env": env, "folder": r["folder"]}
    r = install.dev_python()
    env = child_env()
    if r["gruinspect"]:
        return {"mode": r["mode"], "python": r["python"], "argv": [r["gruinspect"]], "label": "gruinspect",
                "env": env}
    return {"mode": r["mode"], "python": r["python"], "argv": [r["python"], "-m", "gruinspect"],
            "label": "python -m gruinspect", "env": env}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "gruinspect-bench"),
                        help="Folder for the generated inputs and outputs (default: %(default)s).")
    parser.add_argument("--size", choices=["full", "small", "tiny"], default="full",
                        help="full: ~400 MB inputs (default); small: ~25 MB; tiny: a few KB (smoke test).")
    parser.add_argument("--runs", type=int, default=5, help="Timed rounds (default 5; the median is reported).")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed rounds first (default 1).")
    parser.add_argument("--only", action="append", default=None, metavar="GROUP",
                        help="list, stats, split, or one group: " + ", ".join(groups_mod.GROUPS)
                        + " (repeatable; default: every group).")
    parser.add_argument("--install", choices=["auto", "always", "never"], default="auto",
                        help="Run a regular install of the checkout made under the work folder: auto (default) "
                        "when this Python's gruinspect is an editable install or missing.")
    parser.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="Report to write.")
    parser.add_argument("--regenerate", action="store_true", help="Write the inputs again even if present.")
    parser.add_argument("--check", action="store_true", help="Exit 1 when a measured target is not met.")
    args = parser.parse_args(argv)
    args.command_argv = list(argv if argv is not None else sys.argv[1:])  # for the report's heading
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    keys = selected(set(args.only or ()))
    if not keys:
        parser.error(f"--only selects no group; the groups are {', '.join(groups_mod.GROUPS)}")
    started = time.perf_counter()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    try:
        info = all_inputs(work, args.size, args.regenerate, keys)
        runner = runner_for(args, work)
    except subprocess.CalledProcessError as exc:
        print(f"run.py: writing the inputs or installing the checkout failed ({exc})", file=sys.stderr)
        return 1
    try:
        return measure_and_report(args, work, keys, info, runner, started)
    finally:
        if runner.get("folder"):
            shutil.rmtree(runner["folder"], ignore_errors=True)


def measure_and_report(args, work: str, keys: set[str], info: dict, runner: dict, started: float) -> int:
    groups = groups_mod.build_groups(info, work, keys, runner)
    load_before = load_average()
    floor = Command("true", "true", [shutil.which("true") or "/bin/true"], env=runner["env"])
    floor_mib = measure(floor, work)["maxrss_kib"] / 1024
    for group in groups:
        print(f"{group['title']}...", file=sys.stderr)
        run_group(group, args.runs, args.warmup, work)
    shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
    rows = groups_mod.targets({g["key"]: g for g in groups}, info)
    meta = {"machine": machine(), "filesystem": filesystem(work), "git": git_version(),
            "versions": versions(runner["python"], runner["env"]), "date": datetime.date.today().isoformat(),
            "argv": args.command_argv, "floor_mib": floor_mib,
            "load": [load_before, load_average()], "seconds": time.perf_counter() - started,
            "runner": {k: v for k, v in runner.items() if k not in ("env", "folder")}}
    text = report.report(groups, rows, info, meta, args)
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
