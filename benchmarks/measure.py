"""How run.py times a command: a whole process, spawned and waited for by a small wrapper process.

The wrapper measures wall time (spawn to exit) and reads the child's peak resident set size from
``wait4``'s rusage. It exists because a child's ``ru_maxrss`` starts at the peak RSS of the
process it was spawned from (Linux copies the parent's high-water mark at exec), so spawning
from the driver would inflate every memory figure.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MIB = 1024 * 1024

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
    # In the work folder: no command may import a package from the folder run.py was started in
    # (``python -c``/``-m`` put the current folder first on sys.path), e.g. the checkout's gruinspect.
    out = subprocess.run([sys.executable, "-I", "-S", "-c", _WRAPPER, json.dumps(spec)],
                         capture_output=True, text=True, check=True, cwd=work)
    record = json.loads(out.stdout)
    if record["exit"] != 0:
        with open(errfile, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        record["stderr"] = lines[-1] if lines else ""
    return record


def run_group(group: dict, runs: int, warmup: int, work: str) -> None:
    """``warmup`` untimed rounds, then ``runs`` timed ones, each running the group's commands in turn."""
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


def probe_unsupported(argv: list[str], env: dict) -> str | None:
    """None when gruinspect reads the file; else the reason, for the report."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd="/")
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {proc.returncode}"


def remover(*paths):
    def prepare():
        for p in paths:
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.unlink(p)
        os.sync()  # no earlier run's dirty pages left to be written back during this one
    return prepare


# ------------------------------------------------------------------------------- environment


def child_env(*, pycache_prefix: bool = True, **extra) -> dict:
    """The environment of every measured process."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pycache_prefix:
        # Run from byte code as an installed package does: let the children write theirs (outside
        # the repository) instead of compiling gruinspect's source again in every timed run.
        env.setdefault("PYTHONPYCACHEPREFIX", os.path.join(tempfile.gettempdir(), "gruinspect-bench-pycache"))
    else:
        env.pop("PYTHONPYCACHEPREFIX", None)  # the install's own __pycache__, compiled by pip
    env.update(extra)
    return env


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


def versions(python: str, env: dict) -> dict:
    out = subprocess.run([python, "-c", "import gruinspect, numpy, crc32c; "
                          "print(gruinspect.__version__, numpy.__version__, gruinspect.__file__)"],
                         capture_output=True, text=True, env=env, cwd="/")
    parts = out.stdout.split()
    return {"gruinspect": parts[0] if parts else "?", "numpy": parts[1] if len(parts) > 1 else "?",
            "gruinspect_file": parts[2] if len(parts) > 2 else "?"}
