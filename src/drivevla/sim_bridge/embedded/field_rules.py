"""Table-driven validation of config fields: one :class:`Rule` per field (type, finiteness,
range or choices), checked by :func:`check_fields`. Errors name the field and what it allows."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """What one field allows.

    ``kind``: "float" (a finite int or float, not bool), "int" (an integer, not bool), "bool",
    "str" or "choice" (one of ``choices``). ``lo``/``hi`` bound numbers (``None``: unbounded);
    ``lo_open``/``hi_open`` exclude the bound. ``optional``: ``None`` is allowed too.
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            text = f"one of {list(self.choices)}"
        elif self.kind in ("bool", "str"):
            text = "true or false" if self.kind == "bool" else "a non-empty string"
        else:
            what = "a finite number" if self.kind == "float" else "an integer"
            if self.lo is not None and self.hi is not None:
                left = "(" if self.lo_open else "["
                right = ")" if self.hi_open else "]"
                text = f"{what} in {left}{self.lo:g}, {self.hi:g}{right}"
            elif self.lo is not None:
                text = f"{what} {'>' if self.lo_open else '>='} {self.lo:g}"
            elif self.hi is not None:
                text = f"{what} {'<' if self.hi_open else '<='} {self.hi:g}"
            else:
                text = what
        return text + (" or null" if self.optional else "")

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "str":
            return isinstance(value, str) and bool(value)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if isinstance(value, bool):
            return False
        if self.kind == "int" and not isinstance(value, numbers.Integral):
            return False
        if self.kind == "float" and not isinstance(value, numbers.Real):
            return False
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))


def check_fields(owner: str, obj: Any, rules: dict[str, Rule]) -> None:
    """Raise ``ValueError`` naming ``owner.field``, its value and the allowed range for the
    first field of ``obj`` that its rule refuses."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        if not rule.allows(value):
            raise ValueError(f"{owner}.{name}={value!r} is invalid: must be {rule.describe()}")
