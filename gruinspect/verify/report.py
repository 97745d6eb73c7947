"""What ``verify`` found, as data: one :class:`Check` per check, per cell and per file."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cell import GruCell
from ..errors import ExitCode

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class Check:
    """One check of one cell (or of the whole file/export when it belongs to no cell)."""

    name: str
    status: str
    message: str
    oracle: str | None = None
    compute_dtype: str | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    atol: float | None = None
    rtol: float | None = None
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    aliases: tuple[str, ...] = ()  # former names, still accepted by CellReport.check and shown in JSON

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    def to_json(self) -> dict:
        out = {"name": self.name, "status": self.status, "message": self.message}
        if self.aliases:
            out["aliases"] = list(self.aliases)
        for key in ("oracle", "compute_dtype", "max_abs", "max_rel", "atol", "rtol"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _json_float(value) if isinstance(value, float) else value
        if self.failures:
            out["failures"] = list(self.failures)
        return out


@dataclass
class CellReport:
    cell: GruCell
    checks: list[Check] = field(default_factory=list)
    activation: str | None = None
    recurrent_activation: str | None = None
    activations_assumed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def status(self) -> str:
        return PASSED if self.ok else FAILED

    def check(self, name: str) -> Check | None:
        """The check called ``name`` (or formerly called so)."""
        return next((c for c in self.checks if name == c.name or name in c.aliases), None)

    def to_json(self) -> dict:
        c = self.cell
        return {
            "name": c.name, "layout": c.layout, "input_size": c.input_size, "units": c.units,
            "reset_after": c.reset_after, "dtype": c.dtype, "activation": self.activation,
            "recurrent_activation": self.recurrent_activation, "activations_assumed": self.activations_assumed,
            "status": self.status, "checks": [k.to_json() for k in self.checks] + _alias_entries(self.checks),
            "notes": self.notes,
        }


def _alias_entries(checks: list[Check]) -> list[dict]:
    """A renamed check once more under each former name, after the others, so that a consumer
    looking for the old name still finds it for one release (the summary counts it once)."""
    out = []
    for k in checks:
        for alias in k.aliases:
            entry = k.to_json()
            del entry["aliases"]
            out.append({**entry, "name": alias, "alias_of": k.name, "deprecated": True})
    return out


@dataclass
class VerifyReport:
    """Everything :func:`verify` found; ``exit_code`` is what the command exits with."""

    path: str
    format: str
    oracle: str
    settings: dict
    cells: list[CellReport] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    exported: str | None = None
    allow_empty: bool = False
    frameworks: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)  # every file of PATH read (source.files)

    @property
    def all_checks(self) -> list[tuple[str | None, Check]]:
        """(cell name or None, check) for every check, file-level ones first."""
        return [(None, k) for k in self.checks] + [(c.cell.name, k) for c in self.cells for k in c.checks]

    @property
    def ok(self) -> bool:
        return all(k.ok for _, k in self.all_checks)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.CHECK_FAILED

    def counts(self) -> dict[str, int]:
        out = {PASSED: 0, FAILED: 0, SKIPPED: 0}
        for _, k in self.all_checks:
            out[k.status] += 1
        return out

    def failures(self) -> list[str]:
        """One sentence per failed check, naming the cell and check."""
        out = []
        for cell, k in self.all_checks:
            if k.status == FAILED:
                where = f"{cell}: {k.name}" if cell else k.name
                out.append(f"{where}: {k.message}")
        return out

    def to_json(self) -> dict:
        counts = self.counts()
        return {
            "source": {"path": self.path, "format": self.format, "files": self.files},
            "exported": self.exported,
            "status": PASSED if self.ok else FAILED,
            "exit_code": int(self.exit_code),
            "oracle": self.oracle,
            "frameworks": self.frameworks,
            "settings": self.settings,
            "summary": {"cells": len(self.cells), **counts},
            "notes": self.notes,
            "problems": self.problems,
            "checks": [k.to_json() for k in self.checks],
            "cells": [c.to_json() for c in self.cells],
        }

    def to_junit(self) -> str:
        """JUnit XML: one testsuite for PATH, one testcase per cell and check."""
        from .junit import to_junit

        return to_junit(self)


def _json_float(value: float) -> float | None:
    return value if np.isfinite(value) else None
