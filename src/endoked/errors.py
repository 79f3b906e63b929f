"""Exception hierarchy. Every user-facing failure is an :class:`EndokedError` with a message that says
what went wrong, where (file, row, field, backend) and how to fix it. The CLI prints the message, not a
traceback, and exits non-zero."""

from __future__ import annotations


class EndokedError(Exception):
    """Base class of every error the package raises on purpose."""

    exit_code: int = 1


class ConfigError(EndokedError, ValueError):
    """A configuration value, YAML file, profile name or CLI override is invalid."""

    exit_code = 2


class DataFormatError(EndokedError, ValueError):
    """An input file (manifest, table, image, report file) cannot be used as it is."""

    exit_code = 2


class WeightsNotFoundError(EndokedError, FileNotFoundError):
    """Model weights were asked for but no source (local file, weight package, download) provides them."""

    exit_code = 2


class BackendUnavailableError(EndokedError, ImportError):
    """An optional backend's package is not installed; the message carries the install hint."""

    exit_code = 2


class StageError(EndokedError, RuntimeError):
    """A pipeline stage cannot run (missing upstream output, inconsistent run folder, ...)."""
