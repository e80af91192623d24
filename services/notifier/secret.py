"""Values of the routing file that may be secrets (webhook URLs, signing secrets, passwords,
header values, anything from ``${VAR}``): wrapped so that they never appear in a message,
a repr or a log line."""

from __future__ import annotations

from typing import Any


class Secret:
    """A string that refuses to be printed. ``reveal()`` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def reveal(value: Any) -> Any:
    return value.reveal() if isinstance(value, Secret) else value
