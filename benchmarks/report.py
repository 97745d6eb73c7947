"""The Markdown report run.py writes (benchmarks/RESULTS.md): one run, every figure with its command."""
from __future__ import annotations

import many_files
from measure import MIB

RUN = "python benchmarks/run.py"


def command_line(argv: list[str]) -> str:
    return " ".join([RUN] + argv)


def alone(key: str, args) -> str:
    """The command that measures group ``key`` on its own, with this run's settings."""
    parts = [RUN, "--only", key, "--size", args.size, "--runs", str(args.runs), "--warmup", str(args.warmup)]
    if args.install != "auto":
        parts += ["--install", args.install]
    return " ".join(parts)


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def fmt_load(load: list) -> str:
    return " / ".join("?" if x is None else f"{x:.2f}" for x in load)


def mib(nbytes: float) -> str:
    return f"{nbytes / MIB:.0f} MiB" if nbytes >= MIB else f"{nbytes / MIB:.3f} MiB"


def split_floor_note(groups: list[dict], meta: dict) -> list[str]:
    """What the split measurements say about the hashing floor, for the report."""
    split = next((g for g in groups if g["key"] == "split-tf1"), None)
    if not split:
        return []
    cmds = {c.key: c for c in split["commands"]}
    gi, cp, sha = cmds.get("gruinspect"), cmds.get("cp"), cmds.get("sha256")
    if not (gi and cp and sha and gi.ok and cp.ok and sha.ok):
        return []
    cores = meta["machine"]["cores"] or 1
    return ["", f"`split` writes the SHA-256 of every byte it writes into the manifest (docs/contracts.md). "
            f"One Python process hashing the data file with `hashlib.sha256` on one core takes {sha.median():.3f} s "
            f"({sha.median() / cp.median():.2f}x `cp`); that is the floor the target holds `split` to. `split` "
            f"reads every stored tensor once, checks its crc32c on those bytes, and hashes each block as it "
            f"writes it, on {cores} worker threads: {gi.median():.3f} s, {gi.median() / sha.median():.2f}x the "
            f"hashing alone and {gi.median() / cp.median():.2f}x `cp`."]


def inputs(info: dict, size: str) -> list[str]:
    tf1, h5 = info["tf1"], info["keras_h5"]
    lines = [
        f"- TF1 checkpoint (`{size}`, `benchmarks/generate.py`): `MultiRNNCell([GRUCell({info['units']})] * "
        f"{info['layers']})` on {info['units']} input features + 200 small dense variables, {tf1['tensors']} "
        f"tensors, {tf1['bytes'] / 1e6:.1f} MB; largest tensor {mib(tf1['largest_tensor_bytes'])}.",
        f"- Keras HDF5 model (`benchmarks/generate.py`): tf_keras `Sequential` of {info['layers']} x "
        f"`GRU({info['units']})` + `Dense`, `model.save(\"model.h5\")`, {h5['bytes'] / 1e6:.1f} MB; largest "
        f"tensor {mib(h5['largest_tensor_bytes'])}.",
    ]
    if "onnx" in info:
        o = info["onnx"]
        lines.append(f"- ONNX model (`benchmarks/onnx_inputs.py`): {o['layers']} GRU nodes of {o['units']} units "
                     f"written with onnx.helper, {o['bytes'] / 1e6:.1f} MB; largest tensor "
                     f"{mib(o['largest_tensor_bytes'])}.")
    if "torch" in info:
        t = info["torch"]
        lines.append(f"- PyTorch file (`benchmarks/torch_inputs.py`): `torch.save` of the state_dict of "
                     f"`nn.GRU({t['units']}, {t['units']}, num_layers={t['layers']})` (zip format), "
                     f"{t['bytes'] / 1e6:.1f} MB; largest tensor {mib(t['largest_tensor_bytes'])}.")
    if "many" in info:
        m = info["many"]
        lines.append(f"- Many files (`benchmarks/many_files.py`): {m['count']} copies of "
                     f"`sample_checkpoints/tf1_gru_single` (a TF1 checkpoint written by TensorFlow's Saver), "
                     f"one folder each.")
    if "large" in info:
        lg = info["large"]
        lines.append(f"- Largest tensor about 400 MB (`benchmarks/large_inputs.py`): Keras 3 "
                     f"`Sequential([Input((None, {lg['inputs']})), GRU({lg['units']})])` saved by Keras as "
                     f"`model.h5` and `model.keras` and by `tf.train.Checkpoint(model=...).write` (CKPT); "
                     f"recurrent kernel {lg['largest_tensor_bytes'] / 1e6:.0f} MB.")
        if "tf1" in lg:
            t = lg["tf1"]
            lines.append(f"- TF1 checkpoint with a 400 MB tensor (`benchmarks/large_tf1.py`): one "
                         f"`tf.compat.v1.nn.rnn_cell.GRUCell({t['units']})` on {t['inputs']} features saved by "
                         f"`tf.compat.v1.train.Saver`, {t['bytes'] / 1e6:.0f} MB; `gates/kernel` "
                         f"{t['largest_tensor_bytes'] / 1e6:.0f} MB.")
    return lines


def method(args, meta: dict) -> list[str]:
    r = meta["runner"]
    if r["mode"] == "regular install":
        how = ("gruinspect ran from a regular (non-editable) install of this checkout made for the run "
               "(`benchmarks/install.py`): a `python -m venv --without-pip` venv under the work folder, the "
               "checkout copied there and installed with `pip install --no-deps --no-build-isolation --target "
               "<its site-packages>`, plus one `.pth` line adding the dev venv's site-packages for numpy, h5py "
               "and the frameworks. A folder added by a `.pth` line has its own `.pth` files ignored, so the dev "
               "venv's editable-install finder (about 25 ms at every start-up) never runs. `gruinspect` is the "
               "console script pip writes; every Python command in the tables (gruinspect, the floors, the "
               "TensorFlow/PyTorch/ONNX/h5py scripts) ran with that venv's Python, the same set-up for all.")
    else:
        how = (f"gruinspect ran as installed in the Python running run.py ({r['mode']} install, "
               f"`--install {args.install}`), and so did every Python command in the tables.")
    return [
        f"Every number is a whole process, started by a small wrapper process that measures wall time "
        f"(spawn to exit) and peak resident memory (`ru_maxrss` from `wait4`), `benchmarks/measure.py`. Each "
        f"command ran {args.warmup} time(s) first to warm the page cache (so every command reads its input from "
        f"memory, not disk), then {args.runs} timed rounds in which the commands of a group run one after the "
        f"other, alternating, so that slow drift of the machine hits all alike. Times are the median of the "
        f"{args.runs} runs (min-max beside it); memory is the largest peak seen. Ratios compare medians from "
        f"this same run. `split` and `cp` write into the work folder; their output is deleted and `sync` run "
        f"before each run, untimed. The wrapper's own size sets a floor of about {meta['floor_mib']:.0f} MiB "
        f"under every memory figure (that is what it reports for `true`).",
        "",
        how,
    ]


def report(groups: list[dict], rows: list[dict], info: dict, meta: dict, args) -> str:
    m = meta["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Everything below is one run: `{command_line(meta['argv'])}` on {meta['date']}, git {meta['git']}, "
        f"{duration(meta['seconds'])}. Each section names the command that measures its group alone.",
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
        f"- gruinspect {meta['versions']['gruinspect']} (git {meta['git']}), {meta['runner']['mode']}",
        "",
        "## Inputs",
        "",
    ] + inputs(info, args.size) + [
        "",
        "## Method",
        "",
    ] + method(args, meta) + [
        "",
        "## Targets",
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
        lines += group_section(group, args)
    lines += ["`PREFIX` is a checkpoint prefix `.../model.ckpt`; `OUT` a folder in the work folder. "
              "The reference scripts are in `benchmarks/baselines.py` (and `torch_inputs.py`, `onnx_inputs.py`).", ""]
    return "\n".join(lines)


def group_section(group: dict, args) -> list[str]:
    ref = next((c for c in group["commands"] if c.key == group["subject"] and c.ok), None)
    lines = [f"### {group['title']}", "", f"Alone: `{alone(group['key'], args)}`", "",
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
    if group.get("note"):
        lines += ["", group["note"]]
    lines.append("")
    return lines
