"""The many-files benchmark group of run.py: 1,000 small checkpoints listed in one run.

The input is 1,000 copies (20 at ``--size tiny``) of the TF1 checkpoint
``sample_checkpoints/tf1_gru_single`` (written by TensorFlow's own Saver), one per folder. Measured,
as whole processes like every group:

- ``gruinspect list P1 ... P1000 --json``: one run, start-up and imports paid once;
- a shell loop of separate ``gruinspect list P --json`` runs and one of separate
  ``tf.train.list_variables(P)`` scripts, each over the first K of the paths (K is a sample: a
  thousand TensorFlow start-ups take over an hour). Every file is the same size and every run the
  same work, so the time of 1,000 runs is K runs' median times 1,000 / K; the report says so;
- ``tf.train.list_variables`` on all 1,000 in one Python process (TensorFlow imported once), for
  comparison; it has no target.
"""
from __future__ import annotations

import os
import shlex
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(os.path.dirname(HERE), "sample_checkpoints", "tf1_gru_single")
COUNT = {"full": 1000, "small": 1000, "tiny": 20}
SAMPLED = {"full": (50, 5), "small": (50, 5), "tiny": (4, 2)}  # separate gruinspect runs, separate TF runs


def ensure(work: str, size: str) -> dict:
    """Write (or reuse) WORK/many: the copies, their path list and the two shell loops."""
    folder = os.path.join(work, "many")
    count = COUNT[size]
    prefixes = [os.path.join(folder, f"{i:04d}", "model.ckpt") for i in range(count)]
    if not all(os.path.exists(p + ".index") for p in prefixes) or os.path.exists(
            os.path.join(folder, f"{count:04d}")):
        shutil.rmtree(folder, ignore_errors=True)
        for prefix in prefixes:
            os.makedirs(os.path.dirname(prefix))
            for suffix in (".index", ".data-00000-of-00001"):
                shutil.copyfile(os.path.join(SAMPLE, "model.ckpt" + suffix), prefix + suffix)
    with open(os.path.join(folder, "paths.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(prefixes) + "\n")
    gi_sample, tf_sample = SAMPLED[size]
    return {"folder": folder, "prefixes": prefixes, "count": count, "gi_sample": gi_sample,
            "tf_sample": tf_sample, "bytes": sum(os.path.getsize(os.path.join(SAMPLE, n)) for n in os.listdir(SAMPLE)
                                                 if n.startswith("model.ckpt")) * count}


def commands(many: dict, gi: list[str], gi_label: str, py: str, base: str, env: dict, Command) -> list:
    folder, prefixes = many["folder"], many["prefixes"]
    scripts = {}
    for key, k, argv_of in (("each-gi", many["gi_sample"], lambda p: gi + ["list", p, "--json"]),
                            ("each-tf", many["tf_sample"], lambda p: [py, base, "tf-list", p])):
        scripts[key] = os.path.join(folder, f"{key}.sh")
        with open(scripts[key], "w", encoding="utf-8") as f:
            f.write("set -e\n" + "".join(shlex.join(argv_of(p)) + "\n" for p in prefixes[:k]))
    n = many["count"]
    return [
        Command("gruinspect", f"{gi_label} list P1 ... P{n} --json (one run)", gi + ["list", *prefixes, "--json"],
                env=env),
        Command("gruinspect-each", f"{many['gi_sample']} separate `{gi_label} list P --json` runs (sample)",
                ["sh", scripts["each-gi"]], env=env),
        Command("tf-each", f"{many['tf_sample']} separate `tf.train.list_variables(P)` scripts (sample)",
                ["sh", scripts["each-tf"]], env=env),
        Command("tf-one", f"tf.train.list_variables on all {n} in one Python process",
                [py, base, "tf-list-many", os.path.join(folder, "paths.txt")], env=env),
    ]


def scaled(group: dict, key: str, many: dict) -> float | None:
    """Median time of ``key``'s sample, scaled to all the files."""
    cmd = next((c for c in group["commands"] if c.key == key and c.ok), None)
    if cmd is None:
        return None
    k = many["gi_sample"] if key == "gruinspect-each" else many["tf_sample"]
    return cmd.median() * many["count"] / k


def speedups(group: dict, many: dict) -> tuple[float | None, float | None]:
    """(separate gruinspect runs / one run, separate TF runs / one run), 1,000-file times."""
    one = next((c for c in group["commands"] if c.key == "gruinspect" and c.ok), None)
    if one is None:
        return None, None
    each_gi, each_tf = scaled(group, "gruinspect-each", many), scaled(group, "tf-each", many)
    return (each_gi and each_gi / one.median()), (each_tf and each_tf / one.median())


def note(groups: list[dict], many: dict | None) -> list[str]:
    group = next((g for g in groups if g["key"] == "list-many"), None)
    if group is None or many is None:
        return []
    one = next((c for c in group["commands"] if c.key == "gruinspect" and c.ok), None)
    each_gi, each_tf = scaled(group, "gruinspect-each", many), scaled(group, "tf-each", many)
    if not (one and each_gi and each_tf):
        return []
    n = many["count"]
    return ["", f"Many files ({n} copies of a TF1 checkpoint): `gruinspect list` of all {n} in one run took "
            f"{one.median():.3f} s. {n} separate `gruinspect list` runs take {each_gi:.1f} s "
            f"({many['gi_sample']} runs' median x {n // many['gi_sample']}), {n} separate "
            f"`tf.train.list_variables` scripts {each_tf:.1f} s ({many['tf_sample']} runs' median x "
            f"{n // many['tf_sample']}): the sampled runs are whole processes doing the same work on "
            f"same-sized files, so the time scales with the count."]
