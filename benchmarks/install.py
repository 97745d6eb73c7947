"""Run the benchmark against a regular install of the checkout, not the editable dev install.

An editable install (``pip install -e .``) puts a ``__editable__...pth`` file in site-packages;
``site`` runs the finder it names at every start of Python, about 25 ms that users of
``pip install gruinspect`` never pay. So when the Python running run.py has gruinspect
installed editable (or not at all), :func:`regular_install` makes one under the work folder
(``WORK/install-XXXXXXXX``, removed when the run ends):

1. ``python -m venv --without-pip .../venv``, a venv of the same base interpreter;
2. a copy of the checkout's ``pyproject.toml``, ``README.md`` and ``gruinspect/`` (nothing is
   built inside the shared checkout), installed with ``pip install --no-deps
   --no-build-isolation --target SITE`` where SITE is that venv's site-packages (pip builds the
   wheel and byte-compiles it, as any install does);
3. ``SITE/_gruinspect_bench_deps.pth``: one line naming the dev venv's site-packages, for
   numpy, h5py, crc32c, click, rich and the frameworks of the baselines. A folder added by a
   ``.pth`` line is put on ``sys.path`` without its own ``.pth`` files being processed, so the
   editable finder there never runs (nor does the gruinspect it points at: the install comes
   first on ``sys.path``);
4. ``venv/bin/gruinspect``, the console script pip writes for ``[project.scripts]``.

Every Python command of the benchmark, gruinspect and the floors and baselines alike, then runs
with that venv's ``bin/python``: the same interpreter set-up for all.
"""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile

from measure import REPO

# What pip writes for a console script (pip/_internal/operations/install/wheel.py, distlib's
# script template): the entry point's module and function, from pyproject.toml's [project.scripts].
_SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {function}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({function}())
"""


def entry_point() -> tuple[str, str]:
    """(module, function) of the ``gruinspect`` console script the checkout declares."""
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        module, _, function = tomllib.load(f)["project"]["scripts"]["gruinspect"].partition(":")
    return module, function


def install_kind(python: str = sys.executable) -> str:
    """"editable", "regular" or "missing": how ``python`` has gruinspect installed."""
    code = ("import importlib.metadata as m, json\n"
            "try:\n    d = m.distribution('gruinspect')\nexcept m.PackageNotFoundError:\n    print('missing')\n"
            "else:\n    t = d.read_text('direct_url.json')\n"
            "    e = bool(t) and json.loads(t).get('dir_info', {}).get('editable', False)\n"
            "    print('editable' if e else 'regular')\n")
    # -I and cwd "/": the metadata of the dev venv, not a gruinspect.egg-info in the current folder
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, cwd="/")
    return out.stdout.strip() or "missing"


def regular_install(work: str) -> dict:
    """Install the checkout into a new folder ``WORK/install-XXXXXXXX`` and return how to run it
    (``folder``: the caller removes it at the end; a run beside it keeps its own)."""
    folder = tempfile.mkdtemp(prefix="install-", dir=work)
    venv, src = os.path.join(folder, "venv"), os.path.join(folder, "src")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    target = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    os.makedirs(src)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if os.path.exists(os.path.join(REPO, name)):
            shutil.copy2(os.path.join(REPO, name), src)
    shutil.copytree(os.path.join(REPO, "gruinspect"), os.path.join(src, "gruinspect"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-input", "--disable-pip-version-check", "--target", target, src],
                   check=True, stdout=subprocess.DEVNULL, cwd=folder)
    shutil.rmtree(os.path.join(target, "bin"), ignore_errors=True)  # pip's scripts there point at this Python
    deps = list(dict.fromkeys(p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
                              if os.path.isdir(p)))
    with open(os.path.join(target, "_gruinspect_bench_deps.pth"), "w", encoding="utf-8") as f:
        f.write("\n".join(deps) + "\n")
    script = os.path.join(venv, "bin", "gruinspect")
    with open(script, "w", encoding="utf-8") as f:
        module, function = entry_point()
        f.write(_SCRIPT.format(python=python, module=module, function=function))
    os.chmod(script, 0o755)
    info = {"mode": "regular install", "python": python, "gruinspect": script, "site": target,
            "deps": deps, "folder": folder}
    with open(os.path.join(folder, "install.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    return info


def dev_python() -> dict:
    """Run what this Python has (``--install never``, or an install that is not editable)."""
    script = os.path.join(os.path.dirname(sys.executable), "gruinspect")
    return {"mode": install_kind(), "python": sys.executable,
            "gruinspect": script if os.access(script, os.X_OK) else None}
