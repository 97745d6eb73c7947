"""The one place results become text: a Rich table on a terminal, plain columns in a pipe, or JSON.

User text (tensor and layer names) is never read as Rich markup. Rich is imported only when
stdout is a terminal, so piped and JSON output start fast.
"""
from __future__ import annotations

import math
import sys
import time


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def emit_json(data) -> None:
    import json  # only --json output needs it (start-up time of plain `list`)

    json.dump(data, sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def json_line(data) -> str:
    """One JSON Lines record (``--jsonl``), newline included."""
    import json

    return json.dumps(data, allow_nan=False) + "\n"


def fmt_number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    return str(value)


def table(columns: list[str], rows: list[list], *, title: str | None = None, right: set[int] = frozenset()) -> None:
    """Print rows under headers; ``right`` holds the indexes of right-aligned (numeric) columns."""
    cells = [[fmt_number(v) if not isinstance(v, str) else v for v in row] for row in rows]
    if is_terminal():
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        t = Table(title=Text(title) if title else None, title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD)
        for i, col in enumerate(columns):
            # Names (first column) and numbers stay whole; other text folds on a narrow terminal.
            t.add_column(Text(col), justify="right" if i in right else "left",
                         no_wrap=i == 0 or i in right, overflow="fold")
        for row in cells:
            t.add_row(*(Text(v) for v in row))
        Console(highlight=False).print(t)
        return
    if title:
        print(title)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    def line(values):
        parts = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return "  ".join(parts).rstrip()
    print(line([c.upper() for c in columns]))
    for row in cells:
        print(line(row))


def text(message: str = "") -> None:
    print(message)


def warn(message: str) -> None:
    print(f"gruinspect: warning: {message}", file=sys.stderr)


def error(message: str) -> None:
    print(f"gruinspect: error: {message}", file=sys.stderr)


def note(message: str) -> None:
    print(f"gruinspect: note: {message}", file=sys.stderr)


class Progress:
    """A progress bar on a terminal's stderr that appears only when work takes more than a moment.

    Call the instance as ``progress(done, total)``; use it as a context manager.
    """

    DELAY = 0.5

    def __init__(self, description: str, enabled: bool | None = None):
        self.description = description
        self.enabled = is_terminal(sys.stderr) if enabled is None else enabled
        self._start = time.monotonic()
        self._bar = None
        self._task = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self._start < self.DELAY or done >= total:
                return
            from rich.console import Console
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=total)
        self._bar.update(self._task, completed=done, total=total)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
