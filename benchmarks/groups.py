"""The command groups run.py measures, and the targets computed from them.

A group is one question (e.g. "split of the TF1 checkpoint") with gruinspect's command, the
floors it is held to and the reference tools a user would run instead. Its key is
``<command>-<input>``; ``--only list`` selects every ``list-*`` group.
"""
from __future__ import annotations

import os

import large_inputs
import many_files
from measure import HERE, MIB, Command, probe_unsupported, remover

# Every group, in the order they run and are reported: run.py --only takes these or their first part.
GROUPS = ("list-tf1", "stats-tf1", "split-tf1", "list-keras", "stats-keras", "split-keras", "list-keras3",
          "stats-keras3", "list-onnx", "list-torch", "stats-torch", "split-torch", "list-many", "stats-large",
          "split-large")


def build_groups(info: dict, work: str, only: set[str], runner: dict) -> list[dict]:
    """The measured groups selected by ``only`` (group names or their command: list, stats, split).

    ``runner`` says how to run Python and gruinspect (benchmarks/install.py): every Python
    command, gruinspect's and the baselines', runs with the same interpreter set-up.
    """
    gi, gi_label = runner["argv"], runner["label"]
    py = runner["python"]
    env = runner["env"]
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
    ], reference="sha256", subject="gruinspect")
    g("list-keras", "list: Keras HDF5 model", [
        Command("gruinspect", f"{gi_label} list MODEL.h5", gi + ["list", h5], env=env, unsupported=h5_unsupported),
        Command("numpy", "python -c \"import numpy\" (the floor)", [py, "-c", "import numpy"], env=env),
        Command("h5py", "h5py: visit every dataset", [py, base, "h5py-list", h5], env=env),
        Command("tf", "tf_keras load_model(MODEL.h5) + model.weights", [py, base, "keras-list", h5], env=env),
    ], reference="tf", subject="gruinspect")
    g("stats-keras", "stats: Keras HDF5 model", [
        Command("gruinspect", f"{gi_label} stats MODEL.h5", gi + ["stats", h5], env=env, unsupported=h5_unsupported),
        Command("h5py", "h5py: read every GRU dataset + numpy statistics of every gate block",
                [py, base, "h5py-stats", h5], env=env),
        Command("tf", "tf_keras load_model + numpy statistics of every GRU block", [py, base, "keras-stats", h5],
                env=env),
    ], reference="tf", subject="gruinspect")
    g("split-keras", "split: Keras HDF5 model", [
        Command("gruinspect", f"{gi_label} split MODEL.h5 --out OUT", gi + ["split", h5, "--out", out + "/split"],
                env=env, prepare=remover(out + "/split"), unsupported=h5_unsupported),
        Command("cp", "cp MODEL.h5 OUT (the same bytes)", ["cp", h5, out + "/cp.h5"], env=env,
                prepare=remover(out + "/cp.h5")),
    ], reference="cp", subject="gruinspect")
    archive = info.get("large", {}).get("paths", {}).get("keras")
    if archive:  # the Keras 3 archive of the large inputs: a 404 MB recurrent kernel in model.weights.h5
        g("list-keras3", "list: Keras 3 archive (.keras)", [
            Command("gruinspect", f"{gi_label} list MODEL.keras", gi + ["list", archive], env=env),
            Command("h5py", "h5py: config.json, then visit every dataset of the weights member",
                    [py, base, "h5py-list", archive], env=env),
        ], reference="h5py", subject="gruinspect")
        g("stats-keras3", "stats: Keras 3 archive (.keras)", [
            Command("gruinspect", f"{gi_label} stats MODEL.keras", gi + ["stats", archive], env=env),
            Command("h5py", "h5py: read every GRU dataset of the weights member + numpy statistics of every "
                            "gate block", [py, base, "h5py-stats", archive], env=env),
        ], reference="h5py", subject="gruinspect")
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
        ], reference="cp", subject="gruinspect",
          note="PyTorch stores each kernel [3H, I] (W x); every kernel block is written as [I, H], a transposed "
               "copy made 64 x 256 values at a time; stored tensors are read whole, at most the largest plus "
               "32 MiB held at once.")
    if "large" in info:
        for key, title, commands, reference, subject in large_inputs.groups(info["large"], gi, gi_label, env, out,
                                                                             Command, remover):
            g(key, title, commands, reference=reference, subject=subject,
              note="Every stored tensor is read by row blocks of a few MiB (HDF5 hyperslabs read into the "
                   "worker's buffer; the archive's weights member read in place, never extracted; the bundles "
                   "by offset), so the peak stays far below the 400 MB tensor.")
    if "many" in info:
        g("list-many", f"list: {info['many']['count']} small TF1 checkpoints",
          many_files.commands(info["many"], gi, gi_label, py, base, env, Command), reference="tf-each",
          subject="gruinspect",
          note="The separate runs are timed on a sample and scaled to all the files (the targets above say so); "
               "the last row, TensorFlow imported once and `tf.train.list_variables` called on every file in "
               "that one process, has no target.")
    os.makedirs(out, exist_ok=True)
    return groups


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
        """One row; ``ok`` None makes it a reference figure with no requirement."""
        rows.append({"target": text, "value": None if value is None else fmt.format(value), "required": required,
                     "met": None if value is None or ok is None else bool(ok(value))})

    lst = groups.get("list-tf1")
    if lst:
        add("`list` speed-up over `tf.train.list_variables`", ratio(lst, "tf", "gruinspect"), "{:.1f}x",
            lambda v: v >= 10, ">= 10x")
        add("`list` time / bare `import numpy` time", ratio(lst, "gruinspect", "numpy"), "{:.2f}x",
            lambda v: v <= 1.5, "<= 1.5x")
        c = cmd("list-tf1", "gruinspect")
        add("`list` peak memory", c and c.peak_mib(), "{:.0f} MiB", lambda v: v < 100, "< 100 MiB")
    st = groups.get("stats-tf1")
    if st:
        add("`stats` speed-up over TF load + numpy", ratio(st, "tf", "gruinspect"), "{:.1f}x", lambda v: v >= 4,
            ">= 4x")
        c = cmd("stats-tf1", "gruinspect")
        add("`stats` peak memory", c and c.peak_mib(), "{:.0f} MiB", lambda v: v < largest + 100,
            f"< largest tensor + 100 MiB = {largest + 100:.0f} MiB")
    sp = groups.get("split-tf1")
    if sp:
        add("`split` time / single-core `hashlib.sha256` of the data file (the floor)",
            ratio(sp, "gruinspect", "sha256"), "{:.2f}x", lambda v: v <= 1.2, "<= 1.2x")
        add("`split` time / `cp` of the data file (a second reference)", ratio(sp, "gruinspect", "cp"), "{:.2f}x",
            None, "reference, no target")
        c = cmd("split-tf1", "gruinspect")
        add("`split` peak memory", c and c.peak_mib(), "{:.0f} MiB", lambda v: v < largest + 100,
            f"< largest tensor + 100 MiB = {largest + 100:.0f} MiB")
    lk = groups.get("list-keras")
    if lk:
        add("`list` of the Keras HDF5 model / a bare h5py visit of every dataset", ratio(lk, "gruinspect", "h5py"),
            "{:.2f}x", lambda v: v <= 1.2, "<= 1.2x")
    sk = groups.get("stats-keras")
    if sk:
        add("`stats` of the Keras HDF5 model / h5py reading the same datasets + the same statistics",
            ratio(sk, "gruinspect", "h5py"), "{:.2f}x", lambda v: v <= 1.2, "<= 1.2x")
    for key, what in (("list-keras3", "`list`"), ("stats-keras3", "`stats`")):
        if groups.get(key):
            add(f"{what} of the Keras 3 archive / h5py doing the same reads", ratio(groups[key], "gruinspect", "h5py"),
                "{:.2f}x", lambda v: v <= 1.2, "<= 1.2x")
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
    return rows


