#!/usr/bin/env python
"""Plant classic GRU bugs one at a time in a scratch copy of the repository and check the suite catches each.

    python tests/mutation_check.py            # every mutant, a few minutes
    python tests/mutation_check.py --list     # what each mutant plants, and which tests it runs
    python tests/mutation_check.py --only swapped-gates loosened-tolerance

Run once per release (CONTRIBUTING.md) and whenever a test file is reorganised. For each mutant
the script copies the working tree (tracked and untracked files that git does not ignore) to a
scratch folder, checks that the mutant's tests pass there unmutated, replaces one exact piece of
code, runs the same tests, and expects them to fail. A mutant whose code is no longer found is
reported as "not planted": update its text here when the code it targets moves. Exit status 0
when every mutant was planted and caught, 1 otherwise. It is not collected by pytest.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    edits: tuple[tuple[str, str, str], ...]  # (file, exact old text, new text), all applied
    tests: tuple[str, ...]


MUTANTS = [
    Mutant("swapped-gates", "TF1 GRUCell's gate columns read as update | reset instead of reset | update",
           (("gruinspect/layouts/_common.py", 'TF_GATES = ("reset", "update")', 'TF_GATES = ("update", "reset")'),),
           ("tests/test_tf1_cells.py", "tests/test_convert_end_to_end.py")),
    Mutant("dropped-transpose", "CuDNNGRU kernel blocks taken as stored, without cuDNN's [H, I] reading",
           (("gruinspect/layouts/keras_cudnn_gru.py", "    return a.reshape(units, rows).T",
             "    return a.reshape(rows, units)"),),
           ("tests/test_verify.py", "tests/test_keras.py")),
    Mutant("skipped-checksum", "TF bundle tensor reads no longer compare the stored crc32c",
           (("gruinspect/formats/tf_bundle.py",
             "if check and self.verify_checksums and mask(crc32c(buffer)) != entry.crc:", "if False:"),
            ("gruinspect/formats/_row_reader.py", "        if mask(crc) != self._entry.crc:", "        if False:")),
           ("tests/test_tf_bundle.py", "tests/test_parsers_property.py")),
    Mutant("loosened-tolerance", "float32 comparisons allow an error of 1.0",
           (("gruinspect/maths/tolerances.py", '"float32": (1e-5, 1e-5),', '"float32": (1.0, 1.0),'),),
           ("tests/test_verify.py",)),
    Mutant("wrong-hard-sigmoid", "Keras 3's hard_sigmoid computed with Keras 2's slope",
           (("gruinspect/maths/activations.py", '"hard_sigmoid_keras3": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),',
             '"hard_sigmoid_keras3": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),'),),
           ("tests/test_verify.py", "tests/test_keras.py")),
    Mutant("reset-after-everywhere", "the reference step always resets after the recurrent matmul",
           (("gruinspect/maths/canonical.py", "    if reset_after:\n        c = act(pre(\"candidate\") + r * rec(\"candidate\"))",
             "    if True:\n        c = act(pre(\"candidate\") + r * rec(\"candidate\"))"),),
           ("tests/test_tf1_cells.py", "tests/test_verify.py")),
    Mutant("non-atomic-replace", "split --force deletes the old folder, then renames the new one into place",
           (("gruinspect/_rename.py",
             "        if os.path.lexists(target):\n            try:\n                if _renameat2(new, target, _RENAME_EXCHANGE):",
             "        if os.path.lexists(target):\n            shutil.rmtree(target)\n            os.rename(new, target)\n"
             "            return\n            try:\n                if _renameat2(new, target, _RENAME_EXCHANGE):"),
            ("gruinspect/_rename.py", "import os\n", "import os\nimport shutil\n")),
           ("tests/test_output.py",)),
]


def _files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return [f for f in out if (ROOT / f).is_file()]


def _copy_tree(dst: Path) -> None:
    for rel in _files():
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)


def _pytest(tree: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("CI", None)  # a missing framework skips here; the baseline run shows the tests really ran
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                          cwd=tree, env=env, capture_output=True, text=True)


def run(mutant: Mutant, tree: Path) -> str:
    originals = {}
    for rel, old, new in mutant.edits:
        path = tree / rel
        text = originals.get(rel) or (path.read_text(encoding="utf-8") if path.exists() else "")
        originals.setdefault(rel, text)
        if old not in text:
            return f"not planted: {rel} no longer contains {old.strip()[:60]!r}"
    baseline = _pytest(tree, mutant.tests)
    if baseline.returncode != 0:
        return "baseline fails: the tests do not pass without the mutant\n" + baseline.stdout[-2000:]
    try:
        for rel, old, new in mutant.edits:
            path = tree / rel
            path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
        result = _pytest(tree, mutant.tests)
    finally:
        for rel, text in originals.items():
            (tree / rel).write_text(text, encoding="utf-8")
    if result.returncode == 0:
        return "SURVIVED: the tests pass with the bug planted"
    last = [line for line in result.stdout.splitlines() if line.startswith("FAILED")][:1]
    return "caught" + (f" ({last[0]})" if last else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="mutant names to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.what}\n    tests: {' '.join(m.tests)}")
        return 0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="gruinspect-mutants-") as scratch:
        tree = Path(scratch)
        _copy_tree(tree)
        for m in chosen:
            verdict = run(m, tree)
            ok = verdict.startswith("caught")
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {m.name}: {verdict}", flush=True)
    print(f"{len(chosen) - failed} of {len(chosen)} planted bugs caught")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
