"""One error type for everything a user can fix.

The CLI prints a :class:`TlcError` as ``file:line: message`` followed by a ``fix:`` line and
exits with status 2, never with a traceback. Anything else that escapes is a bug in tlc.
"""

from __future__ import annotations

import os


class TlcError(Exception):
    """A problem the user can fix: names the file (and line), says what is wrong and what to do."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.hint = hint
        super().__init__(self.__str__())

    def location(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def __str__(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


class DataError(TlcError):
    """Bad or missing input data: a file, a column, a row, a label set."""


class NotFittedError(TlcError):
    """A :class:`tlc.TextClassifier` used before ``fit`` or ``load`` gave it a model."""


class FetchError(TlcError):
    """A download or conversion of a registry data set failed."""


class ChecksumError(FetchError):
    """A downloaded file does not match its published checksum."""
