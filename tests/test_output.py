"""The output module: atomic folders under failures, signals, crashes and concurrent writers.

What these prove, and against what:

* a failure at any point (an error, Ctrl-C, SIGTERM, SIGHUP, a crash) leaves nothing the user did
  not have: checked by listing the folder afterwards, in real processes for the signals;
* the final rename is atomic and never replaces what appeared meanwhile: two real processes are
  held at the rename and released together; exactly one may win;
* ``--force`` replaces in one step: a failure injected at the rename keeps the old folder intact,
  and a reader process polling alongside never sees anything but a complete old or new folder;
* errors about ``--out`` name the user's path, never the staging folder.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SAMPLES

SINGLE = str(SAMPLES / "tf1_gru_single/model.ckpt")  # one cell: 9 blocks
MULTI = str(SAMPLES / "tf1_multi_rnn/model.ckpt")  # two cells: 18 blocks
KERAS_H5 = str(SAMPLES / "tfkeras_full_h5/model.h5")  # read under the hang guard's supervising parent
STAGING_MARK = ".gruinspect-tmp-"


def invoke(*args):
    from gruinspect.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], prog_name="gruinspect", catch_exceptions=False)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (the whole state a reader could see)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def split_of(sample: str, tmp_path: Path) -> dict[str, bytes]:
    """What a plain split of ``sample`` writes (manifest included), for comparing with a folder."""
    out = tmp_path / f"reference-{Path(sample).parent.name}"
    if not out.exists():
        assert invoke("split", sample, "--out", out).exit_code == 0
    return tree(out)


PRELUDE = """
import os, sys, time
from gruinspect import _signals, splitting, output, _rename
def wait_for(name):
    while not os.path.exists(os.environ[name]):
        time.sleep(0.005)
"""
HOLD_AT_COMMIT = """
_commit = output.OutputFolder.commit
def commit(self):
    open(os.environ["READY"], "w").close()
    wait_for("GO")
    _commit(self)
output.OutputFolder.commit = commit
"""
PORTABLE = """
_rename._renameat2 = lambda src, dst, flags: False
"""
PAUSE_MID_WRITE = """
_open = splitting._open_npy
written = []
def open_npy(path, shape, dtype, **kw):
    sink = _open(path, shape, dtype, **kw)
    _finish = sink.finish
    def finish():
        result = _finish()
        written.append(path)
        if len(written) == 3:
            open(os.environ["READY"], "w").close()
            for _ in range(4000):  # until the signal is handled (bounded: a broken handler fails, not hangs)
                if _signals._ending is not None or os.environ.get("CRASH"):
                    break
                time.sleep(0.005)
            if os.environ.get("CRASH"):
                os.kill(os.getpid(), 9)
        return result
    sink.finish = finish
    return sink
splitting._open_npy = open_npy
"""


def start(args, *, code: str = "", env: dict | None = None, **popen) -> subprocess.Popen:
    """``gruinspect ARGS`` in a new process, after running ``code`` (test hooks) in it."""
    script = PRELUDE + code + "\nfrom gruinspect.cli import main\nmain(args=sys.argv[1:], prog_name='gruinspect')\n"
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    full_env.pop("GRUINSPECT_TRACEBACK", None)
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env, **popen)


def wait_file(path: Path, proc: subprocess.Popen) -> None:
    """Until ``path`` exists; a process that ended first is a failure shown with its output."""
    deadline = time.monotonic() + 120  # only bounds a broken run; nothing here measures time
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended with {proc.returncode} first:\n{out}\n{err}")
        assert time.monotonic() < deadline, "the process never got there"
        time.sleep(0.005)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if proc.pid == os.getpgid(proc.pid) else proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"gruinspect did not end:\n{out}\n{err}")
    return proc.returncode, out, err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if STAGING_MARK in p.name)


# ----------------------------------------------------------------------- library: OutputFolder

def test_a_committed_folder_appears_whole_with_its_parents_and_nothing_else(tmp_path):
    from gruinspect.output import OutputFolder

    out = tmp_path / "a" / "b" / "out"
    with OutputFolder(str(out)) as staging:
        Path(staging.path, "x").write_text("x")
        assert not out.exists() and STAGING_MARK in staging.path
        staging.commit()
    assert tree(out) == {"x": b"x"} and os.listdir(tmp_path) == ["a"] and os.listdir(out.parent) == ["out"]


@pytest.mark.parametrize("how", ["error", "no commit"])
def test_leaving_without_commit_removes_the_staging_folder_and_the_parents_it_made(tmp_path, how):
    from gruinspect.output import OutputFolder

    (tmp_path / "mine").mkdir()
    out = tmp_path / "mine" / "new" / "er" / "out"
    with pytest.raises(ValueError) if how == "error" else _nothing():
        with OutputFolder(str(out)) as staging:
            Path(staging.path, "x").write_text("x")
            if how == "error":
                raise ValueError
    assert os.listdir(tmp_path) == ["mine"] and os.listdir(tmp_path / "mine") == []


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("portable", [False, True], ids=["renameat2", "portable"])
def test_the_rename_refuses_a_folder_that_appeared_meanwhile(tmp_path, monkeypatch, portable):
    from gruinspect import _rename
    from gruinspect.errors import UsageError
    from gruinspect.output import OutputFolder

    if portable:
        monkeypatch.setattr(_rename, "_renameat2", lambda *a: False)
    out = tmp_path / "out"
    with OutputFolder(str(out)) as staging:
        Path(staging.path, "mine").write_text("mine")
        out.mkdir()
        (out / "theirs").write_text("theirs")  # another writer, after every early check
        with pytest.raises(UsageError, match=f"Output folder {out} is not empty"):
            staging.commit()
    assert tree(out) == {"theirs": b"theirs"} and os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("portable", [False, True], ids=["renameat2", "portable"])
def test_an_empty_folder_is_replaced_and_force_replaces_a_full_one(tmp_path, monkeypatch, portable):
    from gruinspect import _rename
    from gruinspect.output import OutputFolder

    if portable:
        monkeypatch.setattr(_rename, "_renameat2", lambda *a: False)
    out = tmp_path / "out"
    out.mkdir()
    for force, content in ((False, "first"), (True, "second")):
        with OutputFolder(str(out), force=force) as staging:
            Path(staging.path, content).write_text(content)
            staging.commit()
        assert tree(out) == {content: content.encode()} and os.listdir(tmp_path) == ["out"]


def test_a_symbolic_link_named_as_out_is_kept_and_its_folder_written(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert invoke("split", SINGLE, "--out", tmp_path / "link").exit_code == 0
    assert (tmp_path / "link").is_symlink() and tree(real) == split_of(SINGLE, tmp_path)
    assert invoke("split", MULTI, "--out", tmp_path / "link", "--force").exit_code == 0
    assert (tmp_path / "link").is_symlink() and tree(real) == split_of(MULTI, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["link", "real", "reference-tf1_gru_single", "reference-tf1_multi_rnn"]


# ---------------------------------------------------------------- 19.1: the replace window itself

def _fail_every_rename_onto(monkeypatch, target: Path) -> list[str]:
    """Make every way of moving something onto ``target`` fail, as a full disk or a crash would."""
    from gruinspect import _rename

    calls = []
    real_rename, real_replace, real_r2 = os.rename, os.replace, _rename._renameat2

    def guarded(real):
        def call(src, dst, *a, **k):
            if os.path.abspath(dst) == str(target):
                calls.append(str(src))
                raise OSError(errno.EIO, "Input/output error", str(src), None, str(dst))
            return real(src, dst, *a, **k)
        return call

    monkeypatch.setattr(os, "rename", guarded(real_rename))
    monkeypatch.setattr(os, "replace", guarded(real_replace))
    monkeypatch.setattr(_rename, "_renameat2", lambda src, dst, flags: guarded(real_r2)(src, dst, flags))
    return calls


@pytest.mark.parametrize("portable", [False, True], ids=["renameat2", "portable"])
def test_force_keeps_the_old_folder_whole_when_the_rename_fails(tmp_path, monkeypatch, portable):
    """Fails if --force removes (or moves away for good) the old folder before the new one is in place."""
    from gruinspect import _rename

    out = tmp_path / "blocks"
    assert invoke("split", SINGLE, "--out", out).exit_code == 0
    before = tree(out)
    if portable:
        monkeypatch.setattr(_rename, "_renameat2", lambda *a: False)
    calls = _fail_every_rename_onto(monkeypatch, out)
    result = invoke("split", MULTI, "--out", out, "--force")
    assert calls, "the injected failure was never reached"
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"Cannot write {out}" in result.stderr and STAGING_MARK not in result.stderr
    assert tree(out) == before and os.listdir(tmp_path) == ["blocks"]


READER = """
import json, os, sys
out, stop, report = sys.argv[1:4]
states = [set(s) for s in json.loads(sys.argv[4])]
seen, bad = [0] * len(states), []
while not os.path.exists(stop):
    try:
        folder = os.stat(out).st_ino
        names = set(os.listdir(out))
        with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
            json.load(f)
        # A listing that began on the old folder just as the new one took its place may show the
        # old folder being removed: only a listing of the folder that was at `out` throughout counts.
        if os.stat(out).st_ino != folder:
            continue
    except (OSError, ValueError) as exc:
        bad.append(repr(exc))
        continue
    if names in states:
        seen[states.index(names)] += 1
    else:
        bad.append(sorted(names))
    with open(report + ".tmp", "w") as f:
        json.dump({"seen": seen, "bad": bad[:20]}, f)
    os.replace(report + ".tmp", report)
"""


def test_a_reader_alongside_force_replaces_only_ever_sees_a_complete_folder(tmp_path):
    """Fails if --force leaves a moment with no folder, half a folder, or a mix of old and new."""
    out = tmp_path / "blocks"
    states = []
    for sample in (SINGLE, MULTI):
        assert invoke("split", sample, "--out", out, "--force").exit_code == 0
        states.append(sorted(os.listdir(out)))
    assert states[0] != states[1]
    stop, report = tmp_path / "stop", tmp_path / "report.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(out), str(stop), str(report), json.dumps(states)])
    try:
        for i in range(400):  # at least 60 replacements, more until the reader has seen both
            assert invoke("split", (SINGLE, MULTI)[i % 2], "--out", out, "--force").exit_code == 0
            if i >= 60 and report.exists() and all(json.loads(report.read_text())["seen"]):
                break
    finally:
        stop.touch()
        reader.wait(timeout=60)
    result = json.loads(report.read_text())
    assert result["bad"] == [] and all(result["seen"]), result
    assert sorted(os.listdir(tmp_path)) == ["blocks", "report.json", "stop"]


# ------------------------------------------------------------- 18.2: concurrent writers, real processes

def _race(tmp_path: Path, argv: list, code: str) -> list[tuple[int, str, str]]:
    """Two processes run ``argv``, are held just before their final rename, then released together."""
    procs = []
    for n in range(2):
        env = {"READY": str(tmp_path / f"ready{n}"), "GO": str(tmp_path / "go")}
        procs.append(start(argv, code=HOLD_AT_COMMIT + code, env=env))
    for n, proc in enumerate(procs):
        wait_file(tmp_path / f"ready{n}", proc)
    (tmp_path / "go").touch()
    return [finish(p) for p in procs]


@pytest.mark.parametrize("portable", [False, True], ids=["renameat2", "portable"])
def test_two_splits_into_the_same_new_folder_one_wins_the_other_refuses(tmp_path, portable):
    out = tmp_path / "deep" / "blocks"
    results = _race(tmp_path, ["split", MULTI, "--out", out], PORTABLE if portable else "")
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    (err,) = [e for code, _, e in results if code == 2]
    assert err.splitlines() == [f"gruinspect: error: Output folder {out} is not empty (another run may have "
                                f"written it meanwhile); use --force to replace it."]
    assert tree(out) == split_of(MULTI, tmp_path) and leftovers(tmp_path) == []


def test_two_forced_splits_into_the_same_folder_both_replace_it_whole(tmp_path):
    out = tmp_path / "blocks"
    assert invoke("split", SINGLE, "--out", out).exit_code == 0
    results = _race(tmp_path, ["split", MULTI, "--out", out, "--force"], "")
    assert [code for code, _, _ in results] == [0, 0], results
    assert tree(out) == split_of(MULTI, tmp_path) and leftovers(tmp_path) == []


def test_two_converts_into_the_same_new_folder_one_wins_the_other_refuses(tmp_path):
    out = tmp_path / "onnx"
    results = _race(tmp_path, ["convert", SINGLE, "--to", "onnx", "--out", out], "")
    assert sorted(code for code, _, _ in results) == [0, 2], results
    (err,) = [e for code, _, e in results if code == 2]
    assert f"Output folder {out} is not empty" in err and len(err.splitlines()) == 1
    assert sorted(os.listdir(out)) == ["conversion.json", "model.onnx"] and leftovers(tmp_path) == []


# -------------------------------------------------------------- 18.1: signals and crashes mid-write

@pytest.mark.parametrize("sample", [MULTI, KERAS_H5], ids=["tf-checkpoint", "keras-h5-supervised"])
@pytest.mark.parametrize("signum, code, to_group", [
    (signal.SIGTERM, 143, False),  # docker stop, kill PID
    (signal.SIGTERM, 143, True),  # timeout, CI cancellation: the whole process group
    (signal.SIGHUP, 129, False),
    (signal.SIGINT, 130, True),  # Ctrl-C
])
def test_a_signal_mid_write_leaves_nothing_and_exits_with_its_code(tmp_path, sample, signum, code, to_group):
    out = tmp_path / "deep" / "blocks"
    ready = tmp_path.parent / f"{tmp_path.name}-ready"  # outside tmp_path, which must end up empty
    proc = start(["split", sample, "--out", out], code=PAUSE_MID_WRITE, env={"READY": str(ready)},
                 start_new_session=True)
    try:
        wait_file(ready, proc)
        assert leftovers(tmp_path), "the signal must arrive while a staging folder holds blocks"
        if to_group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        returncode, _, err = finish(proc)
    finally:
        ready.unlink(missing_ok=True)
    assert returncode == code, err
    expected = "Interrupted." if signum == signal.SIGINT else f"Interrupted by {signal.Signals(signum).name}."
    assert err.splitlines() == [f"gruinspect: error: {expected}"]
    assert os.listdir(tmp_path) == []  # no staging folder, no blocks, no parents made for OUT


def test_a_crashed_run_leaves_no_folder_the_next_run_trips_over(tmp_path):
    out = tmp_path / "blocks"
    proc = start(["split", MULTI, "--out", out], code=PAUSE_MID_WRITE,
                 env={"READY": str(tmp_path / "ready"), "CRASH": "1"})
    returncode, _, _ = finish(proc)
    assert returncode == -signal.SIGKILL
    (stale,) = leftovers(tmp_path)  # what a SIGKILL, an OOM kill or a power cut leaves
    assert invoke("split", SINGLE, "--out", out).exit_code == 0
    assert tree(out) == split_of(SINGLE, tmp_path) and leftovers(tmp_path) == []


def test_a_live_runs_staging_folder_is_never_reclaimed(tmp_path):
    out = tmp_path / "blocks"
    env = {"READY": str(tmp_path / "ready"), "GO": str(tmp_path / "go")}
    first = start(["split", MULTI, "--out", out, "--force"], code=HOLD_AT_COMMIT, env=env)
    wait_file(tmp_path / "ready", first)
    (staging,) = leftovers(tmp_path)
    assert invoke("split", SINGLE, "--out", out, "--force").exit_code == 0  # runs while the first waits
    assert leftovers(tmp_path) == [staging] and tree(out) == split_of(SINGLE, tmp_path)
    (tmp_path / "go").touch()
    assert finish(first)[0] == 0
    assert tree(out) == split_of(MULTI, tmp_path) and leftovers(tmp_path) == []


# ---------------------------------------------------------------- 18.9: errors name the user's path

def test_a_write_error_names_the_path_under_out_not_the_staging_folder(tmp_path, monkeypatch):
    from gruinspect import splitting

    def full_disk(path, shape, dtype, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(splitting, "_open_npy", full_disk)
    out = tmp_path / "blocks"
    result = invoke("split", SINGLE, "--out", out)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"gruinspect: error: Cannot write {out}{os.sep}rnn__gru_cell{os.sep}") and \
        line.endswith(".npy: No space left on device."), line
    assert STAGING_MARK not in line and os.listdir(tmp_path) == []


def test_convert_write_errors_name_out_too(tmp_path, monkeypatch):
    from gruinspect.convert import onnx

    def failing_write(mapped, folder):
        raise OSError(errno.EDQUOT, "Disk quota exceeded", os.path.join(folder, "model.onnx"))

    monkeypatch.setattr(onnx, "write", failing_write)
    out = tmp_path / "a" / "onnx"
    result = invoke("convert", SINGLE, "--to", "onnx", "--out", out)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.splitlines()[-1] == f"gruinspect: error: Cannot write {out / 'model.onnx'}: Disk quota exceeded."
    assert os.listdir(tmp_path) == []  # the parent "a" it made is gone too


def test_an_out_below_a_file_is_one_line_naming_out(tmp_path):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "sub" / "blocks"
    result = invoke("split", SINGLE, "--out", out)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"gruinspect: error: Cannot create {out}: ") and STAGING_MARK not in result.stderr
    assert os.listdir(tmp_path) == ["file"]


# ------------------------------------------------------------------- files, hashes, the manifest

def test_write_text_is_all_or_nothing_and_removes_the_parents_it_made(tmp_path, monkeypatch):
    from gruinspect.errors import OutputError
    from gruinspect.output import write_text

    target = tmp_path / "new" / "report.xml"
    write_text(str(target), "<a/>")
    assert target.read_text() == "<a/>" and os.listdir(target.parent) == ["report.xml"]

    def broken(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", src)

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OutputError, match=f"Cannot write {tmp_path / 'other' / 'r.xml'}: No space left"):
        write_text(str(tmp_path / "other" / "r.xml"), "<b/>")
    assert sorted(os.listdir(tmp_path)) == ["new"]
    with pytest.raises(OutputError):
        write_text(str(target), "<c/>")
    assert target.read_text() == "<a/>" and os.listdir(target.parent) == ["report.xml"]


def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path):
    from gruinspect.output import sha256_file

    data = os.urandom(3 << 20 | 17)  # more than one read
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(str(tmp_path / "f")) == hashlib.sha256(data).hexdigest()
    (tmp_path / "e").write_bytes(b"")
    assert sha256_file(str(tmp_path / "e")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_the_manifest_split_writes_is_what_read_manifest_reads(tmp_path):
    from gruinspect.output import read_manifest

    out = tmp_path / "blocks"
    assert invoke("split", MULTI, "--out", out, "--names").exit_code == 0
    manifest = read_manifest(str(out))
    assert manifest.data == json.loads((out / "manifest.json").read_text())
    assert [k for k in manifest.cells] == [(c["name"], 0) for c in manifest.data["cells"]]
    assert manifest.files() == set(tree(out))  # every file written is named, and nothing else


@pytest.mark.parametrize("content, error", [
    (None, "has no manifest.json"),
    ("{", "Invalid manifest"),
    (b"\xff\xfe", "Invalid manifest"),
    ('{"cells": [{"name": 1, "arrays": []}]}', 'it needs a "cells" list'),
    ('{"cells": {}}', 'it needs a "cells" list'),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_read_manifest_errors_are_one_sentence_naming_the_export(tmp_path, content, error):
    from gruinspect.errors import InvalidFileError
    from gruinspect.output import read_manifest

    if content is not None:
        data = content if isinstance(content, bytes) else content.encode()
        (tmp_path / "manifest.json").write_bytes(data)
    with pytest.raises(InvalidFileError) as info:
        read_manifest(str(tmp_path))
    assert error in str(info.value) and str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_read_manifest_of_a_missing_folder_is_a_usage_error(tmp_path):
    from gruinspect.errors import UsageError
    from gruinspect.output import read_manifest

    with pytest.raises(UsageError, match="No such folder"):
        read_manifest(str(tmp_path / "nope"))


# ------------------------------------------------------------------------------- signal handling

def test_a_signal_inside_deferred_is_raised_after_it_and_repeats_are_ignored():
    from gruinspect import _signals

    restore = _signals.install()
    try:
        steps = []
        with pytest.raises(_signals.Terminated) as info:
            with _signals.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                steps.append("still running")
                os.kill(os.getpid(), signal.SIGTERM)
                steps.append("after the repeat")
        assert steps == ["still running", "after the repeat"]
        assert info.value.exit_code == 143 and _signals.exit_code(info.value) == 143
        os.kill(os.getpid(), signal.SIGHUP)  # while ending: ignored, the cleanup goes on
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_ignored_signal_stays_ignored():
    from gruinspect import _signals

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        restore = _signals.install()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        restore()
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_read_manifest_accepts_a_manifest_or_raises_its_own_error_for_any_bytes(tmp_path):
    """Whatever manifest.json holds, read_manifest gives a Manifest (whose file list never fails)
    or an InvalidFileError naming the file: never another exception."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gruinspect.errors import InvalidFileError
    from gruinspect.output import read_manifest

    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                          st.dictionaries(st.sampled_from(["cells", "name", "arrays", "file", "alias_file", "x"]),
                                          inner, max_size=4), max_leaves=20)
    path = tmp_path / "manifest.json"

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)))
    def check(data):
        path.write_bytes(data)
        try:
            manifest = read_manifest(str(tmp_path))
        except InvalidFileError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
            return
        assert "manifest.json" in manifest.files()

    check()


def test_written_files_get_the_permissions_open_would_give(tmp_path):
    from gruinspect.output import write_text

    old = os.umask(0o022)
    try:
        write_text(str(tmp_path / "report.xml"), "<x/>")
    finally:
        os.umask(old)
    assert (tmp_path / "report.xml").stat().st_mode & 0o777 == 0o644
