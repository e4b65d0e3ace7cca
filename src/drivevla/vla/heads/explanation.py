"""Explanation prompts (``model.explanation``): what the language model reads after
``<expl>`` before it generates (or, in training, is taught) the explanation text.

- ``free``: nothing; the text is the LM's own guess of why;
- ``grounded``: an embedding of the decided reason, so the text names the reason the reason
  head gave (trained on the expert's reason).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class FreeExplanation(nn.Module):
    skip = 0  # positions after <expl> that predict no explanation token

    def __init__(self, n_reasons: int, d: int) -> None:
        super().__init__()

    def teacher_forced(self, emb: torch.Tensor, mask: torch.Tensor, reason: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training inputs ``<expl>`` + explanation (B, L, d) with their mask, prompt added."""
        return emb, mask

    def first_step(self, emb: torch.Tensor, reason: torch.Tensor) -> torch.Tensor:
        """The first generation step's inputs: the ``<expl>`` embedding (B, 1, d) + prompt."""
        return emb


class GroundedExplanation(nn.Embedding):
    """One embedding per reason (``vocabularies.reasons``), put right after ``<expl>``."""

    skip = 1

    def __init__(self, n_reasons: int, d: int) -> None:
        super().__init__(n_reasons, d)

    def teacher_forced(self, emb, mask, reason):
        r = self(reason.clamp(min=0))[:, None].to(emb.dtype)
        emb = torch.cat([emb[:, :1], r, emb[:, 1:]], dim=1)
        return emb, torch.cat([mask[:, :1], mask], dim=1)

    def first_step(self, emb, reason):
        return torch.cat([emb, self(reason)[:, None].to(emb.dtype)], dim=1)


EXPLANATIONS = {"free": FreeExplanation, "grounded": GroundedExplanation}


def build_explanation(name: str, n_reasons: int, d: int) -> nn.Module:
    if name not in EXPLANATIONS:
        raise ValueError(f"unknown explanation prompt {name!r}; valid: {sorted(EXPLANATIONS)}")
    return EXPLANATIONS[name](n_reasons, d)
