"""Several PATHs in one run: `list`, `stats` and `verify` over many files, paying start-up once.

With one PATH a command prints exactly what it always did (its JSON is a contract). With more,
each file gets its own result: ``--json`` prints one document ``{"files": [...], "exit_code": N}``
whose entries are ``{"path", "exit_code", "result"}`` or ``{"path", "exit_code", "error"}``;
``--jsonl`` prints one such entry per line as each file finishes. A file that cannot be read is
one error line on stderr (and an entry with ``error``); the other files are still processed. The
exit code is the worst of the files' codes.
"""
from __future__ import annotations

import io
import sys
from contextlib import ExitStack, redirect_stderr, redirect_stdout

from .. import render
from ..errors import ExitCode, GruInspectError


# click is imported by the decorators only: `gruinspect list PATH...` runs run_each without it.
def paths_argument(f):
    import click

    return click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path(path_type=str))(f)


def jsonl_option(f):
    import click

    return click.option("--jsonl", is_flag=True,
                        help="Print one JSON object per file and line, as each file finishes "
                             "(several PATHs, or one).")(f)


def file_error(exc: BaseException, ctx) -> tuple[str, int]:
    """The one-line message and exit code the command line gives ``exc`` for one file.

    KeyboardInterrupt and BrokenPipeError are not file errors: they end the whole run.
    """
    from . import _one_line, _want_traceback

    if isinstance(exc, (KeyboardInterrupt, BrokenPipeError)) or _want_traceback(ctx):
        raise exc
    if isinstance(exc, GruInspectError):
        message, code = str(exc), int(exc.exit_code)
    elif isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        message, code = f"Cannot access{where}: {exc.strerror or exc}.", int(ExitCode.BAD_INPUT)
    elif isinstance(exc, MemoryError):
        message, code = "Out of memory while reading the input.", int(ExitCode.BAD_INPUT)
    else:
        message = f"Internal error ({type(exc).__name__}: {exc}); rerun with --traceback and report it."
        code = int(ExitCode.BAD_INPUT)
    return _one_line(message), code


def entry(path: str, code: int, result=None, error: str | None = None) -> dict:
    out = {"path": path, "exit_code": int(code)}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    return out


def run_paths(ctx, paths, one, *, as_json: bool, jsonl: bool) -> None:
    """For commands whose files always exit 0: ``one(path, as_json, emit)`` returns the file's
    JSON when ``as_json`` (printing it too when ``emit``) or prints its text. One PATH without
    --jsonl runs exactly as the single-file command; more go through :func:`run_each`."""
    code = paths_code(ctx, paths, one, as_json=as_json, jsonl=jsonl)
    if code is not None:
        ctx.exit(code)


def paths_code(ctx, paths, one, *, as_json: bool, jsonl: bool) -> int | None:
    """:func:`run_paths` without click (``ctx`` may be None): the worst exit code of several
    PATHs, or None when one PATH ran as the single-file command."""
    if len(paths) == 1 and not jsonl:
        one(paths[0], as_json, True)
        return None
    return run_each(ctx, paths, lambda path, structured: (one(path, structured, False), 0), as_json=as_json,
                    jsonl=jsonl)


def run_each(ctx, paths, one, *, as_json: bool, jsonl: bool, results=None) -> int:
    """Run ``one(path, as_json) -> (json_or_None, exit_code)`` for every path; returns the worst code.

    ``one`` prints its text output itself when ``as_json`` is false. ``results``, when given, is an
    iterable of ready ``(path, json, code, error, captured_out, captured_err)`` tuples (from worker
    processes) used instead of calling ``one``.
    """
    entries = []
    worst = 0
    multi = len(paths) > 1
    if results is None:
        results = (_call(ctx, path, one, structured=as_json or jsonl, header=multi) for path in paths)
    for path, data, code, error, out_text, err_text in results:
        if out_text:
            sys.stdout.write(out_text)
        if err_text:
            sys.stderr.write(err_text)
        if error is not None:
            render.error(f"{path}: {error}" if multi else error)
        worst = max(worst, code)
        item = entry(path, code, data, error)
        if jsonl:
            sys.stdout.write(render.json_line(item))
            sys.stdout.flush()
        elif as_json:
            entries.append(item)
    if as_json and not jsonl:
        render.emit_json({"files": entries, "exit_code": worst})
    return worst


def _call(ctx, path, one, *, structured: bool, header: bool, capture: bool = False):
    out, err = io.StringIO(), io.StringIO()
    with ExitStack() as captured:
        if capture:  # a worker's text goes back to the parent, which prints it in PATH order
            captured.enter_context(redirect_stdout(out))
            captured.enter_context(redirect_stderr(err))
        if header and not structured:
            render.text(f"== {path}")
        try:
            data, code = one(path, structured)
            error = None
        except Exception as exc:  # noqa: BLE001 - every file error becomes its one line
            message, code = file_error(exc, ctx)
            data, error = None, message
        if header and not structured:
            render.text()
    return path, data, int(code), error, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------ worker processes (verify --jobs)

_WORKER_ONE = None


def _worker_init(one) -> None:
    global _WORKER_ONE
    _WORKER_ONE = one


def _worker_call(path: str, structured: bool, header: bool):
    # The hang guard stays on in a worker: its first bounded block forks the worker's own
    # supervising parent (gruinspect._supervisor), as the single-process command does.
    return _call(None, path, _WORKER_ONE, structured=structured, header=header, capture=True)


def parallel_results(paths, one, *, jobs: int, structured: bool):
    """Yield ``_call`` tuples in PATH order, computed by ``jobs`` forked worker processes.

    The workers are forked before this process has read any file or imported a framework, so
    each starts clean; a worker that dies (its hang guard ended it) makes its files error entries.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    header = len(paths) > 1
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=multiprocessing.get_context("fork"),
                               initializer=_worker_init, initargs=(one,))
    try:
        futures = [pool.submit(_worker_call, p, structured, header) for p in paths]
        for path, future in zip(paths, futures):
            try:
                yield future.result()
            except BrokenProcessPool:
                yield (path, None, int(ExitCode.BAD_INPUT),
                       "The worker process reading this file ended without a result.", "", "")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
