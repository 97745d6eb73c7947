"""One exception base, a few named kinds, and the exit codes every command uses.

Messages are whole sentences that name the file, the tensor and what failed, using a fixed
vocabulary: "Unsupported ...", "Invalid ...", "Unexpected end of file ... the file may be truncated".
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    CHECK_FAILED = 1
    BAD_INPUT = 2
    HANGUP = 129  # 128 + SIGHUP: the terminal went away; partial output removed, as for SIGINT
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away, as for any Unix tool
    TERMINATED = 143  # 128 + SIGTERM (timeout, CI cancellation, docker stop); partial output removed


class GruInspectError(Exception):
    """Base of every error gruinspect raises on purpose; the CLI prints it as one line."""

    exit_code = ExitCode.BAD_INPUT


class InvalidFileError(GruInspectError):
    """The file is of a known format but its contents are malformed."""


class TruncatedFileError(InvalidFileError):
    """The file ends before its own structures say it should."""


class ChecksumError(InvalidFileError):
    """Stored bytes do not match their stored crc32c."""


class UnsupportedError(GruInspectError):
    """The file is recognised but uses a feature or format gruinspect does not read."""


class UsageError(GruInspectError):
    """The command line asks for something impossible (bad option, refused overwrite...)."""


class OutputError(GruInspectError):
    """The output cannot be written where it was asked (no space, no permission...)."""


class MissingDependencyError(GruInspectError):
    """An optional extra (for instance TensorFlow) is needed and not installed."""
