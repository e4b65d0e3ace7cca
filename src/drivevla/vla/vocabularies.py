"""The label vocabularies a DriveVLA checkpoint was trained with, saved in its ``config.json``.

A head's output index only means something together with the list it indexes: the intent
head's classes are ``navigation_intents`` in that order, the reason head's ``reasons``, the
meta-action head's ``meta_actions``. The lists are therefore saved with the weights and the
model is sized from the saved lists, never from the code's: a checkpoint keeps meaning what it
meant after an intent (or a reason) is added to the code. On load every saved name must still
exist in the code's vocabulary (:func:`check_against_code`); indices are then mapped to the
code's names through the saved lists (``Vocabularies.reason_of`` and friends). A checkpoint
saved before the lists were saved was trained with today's lists (they have only been
appended to since the shipped checkpoint), so it loads with them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from drivevla.core.types import HighLevelCommand, MetaAction
from drivevla.language.intents import NAVIGATION_INTENTS
from drivevla.language.reasons import Reason


def code_vocabularies() -> dict[str, tuple[str, ...]]:
    """Today's lists, in the order the datasets index them."""
    return {
        "navigation_intents": tuple(NAVIGATION_INTENTS),
        "reasons": tuple(r.value for r in Reason),
        "meta_actions": tuple(m.value for m in MetaAction),
        "commands": tuple(c.value for c in HighLevelCommand),
    }


def _default(name: str):
    return field(default_factory=lambda: code_vocabularies()[name])


@dataclass
class Vocabularies:
    """Class names of the label heads, in output-index order (saved in ``config.json``)."""

    navigation_intents: tuple[str, ...] = _default("navigation_intents")
    reasons: tuple[str, ...] = _default("reasons")
    meta_actions: tuple[str, ...] = _default("meta_actions")
    # the route's high-level command (datasets' ``command`` column); no head reads it today,
    # saved so that a future command input is sized and indexed from the checkpoint
    commands: tuple[str, ...] = _default("commands")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            names = tuple(str(v) for v in getattr(self, f.name))
            if not names or len(set(names)) != len(names):
                raise ValueError(f"vocabularies.{f.name} must be a non-empty list of distinct "
                                 f"names, got {list(names)}")
            setattr(self, f.name, names)

    @property
    def refused_index(self) -> int:
        """The reason head's index of ``refused_unsafe_instruction``."""
        return self.reasons.index(Reason.REFUSED_UNSAFE_INSTRUCTION.value)

    def reason_of(self, index: int) -> Reason:
        return Reason(self.reasons[index])

    def meta_action_of(self, index: int) -> MetaAction:
        return MetaAction(self.meta_actions[index])

    def intent_of(self, index: int) -> str:
        return self.navigation_intents[index]

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}

    def differences_from_code(self) -> list[str]:
        """One line per list that differs from the code's (empty: the same lists)."""
        out = []
        for name, code in code_vocabularies().items():
            saved = getattr(self, name)
            if saved != code:
                out.append(f"{name}: checkpoint {list(saved)} vs code {list(code)}")
        return out

    def check_against_code(self, source: str) -> None:
        """Raise ``ValueError`` if a saved name no longer exists in the code's vocabulary (its
        index could not be mapped to anything the rest of drivevla knows)."""
        code = code_vocabularies()
        for name, known in code.items():
            unknown = [v for v in getattr(self, name) if v not in known]
            if unknown:
                raise ValueError(
                    f"{source}: the checkpoint's {name} {unknown} are not in the code's "
                    f"vocabulary {list(known)}; the checkpoint was trained with labels this "
                    "code does not have (add them back, or retrain)")
        if Reason.REFUSED_UNSAFE_INSTRUCTION.value not in self.reasons:
            raise ValueError(f"{source}: the checkpoint's reasons lack "
                             f"{Reason.REFUSED_UNSAFE_INSTRUCTION.value!r}")

    def require_code_order(self, what: str) -> None:
        """Training reads the datasets' label indices, which follow the code's lists: a model
        trained further must use exactly those lists."""
        diff = self.differences_from_code()
        if diff:
            raise ValueError(f"{what} needs the code's label vocabularies (the datasets index "
                             "them); this config's differ: " + "; ".join(diff))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabularies:
        valid = sorted(f.name for f in dataclasses.fields(cls))
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"unknown vocabularies key(s) {unknown}; valid keys: {valid}")
        return cls(**{k: tuple(v) for k, v in data.items()})
