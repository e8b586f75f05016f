"""Type checks for settings that come from JSON or ``--set`` (where 2.5 or "abc" can arrive)."""

from __future__ import annotations

from typing import Any

from ..errors import TlcError


def check_int(section: str, name: str, value: Any, minimum: int) -> None:
    # bool is an int subclass: `true` must not pass for a size.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TlcError(f"{section}.{name} must be a whole number >= {minimum}, got {value!r}")


def check_number(section: str, name: str, value: Any, low: float, high: float,
                 *, high_open: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bracket = ")" if high_open else "]"
        raise TlcError(f"{section}.{name} must be a number in [{low}, {high}{bracket}, "
                       f"got {value!r}")


def as_list(value: Any, section: str, name: str) -> list[str]:
    """A JSON list of strings; a single string is taken as a list of one (``--set
    transfer.freeze=embedding`` means what it says)."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TlcError(f"{section}.{name} must be a list of strings, got {value!r}",
                   hint=f"e.g. --set '{section}.{name}=[\"a\", \"b\"]'")
