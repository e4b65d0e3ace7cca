"""The text-only bag-of-words classifier both text heads (refusal, intent) are made of."""

from __future__ import annotations

import torch
import torch.nn as nn

from drivevla.vla.instruction_encoder import STATE_DIM, FrozenTokenStates
from drivevla.vla.processor_drivevla import UNK


def _dropped(mask: torch.Tensor, p: float) -> torch.Tensor:
    """A share ``p`` of the real positions of ``mask``, drawn at random; never position 0
    (``<bos>``, or a pretrained encoder's ``[CLS]``)."""
    drop = (torch.rand(mask.shape, device=mask.device) < p) & (mask == 1)
    drop[..., 0] = False
    return drop


def word_dropout(ids: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """``ids`` with a share ``p`` of the real tokens (never ``<bos>``) replaced by ``<unk>``."""
    return ids.masked_fill(_dropped(mask, p), UNK)


def keep_dropout(mask: torch.Tensor, p: float) -> torch.Tensor:
    """``mask`` with a share ``p`` of its real positions set to 0 (never position 0): word
    dropout on a pretrained encoder's token states, which leaves the cached states whole."""
    return mask.masked_fill(_dropped(mask, p), 0)


class TextBagHead(nn.Module):
    """A text-only classifier of the instruction: its own token embeddings (not the language
    model's), a masked mean (a bag of words), an MLP; ``n_out`` logits (one: squeezed). In
    training, ``word_dropout`` of the tokens become ``<unk>``, so it leans on several words
    rather than on one phrasing (on phrasings it never saw, this bag with word dropout flagged
    fewer safe instructions than one transformer encoder layer did).

    With ``states`` (a pretrained encoder's :class:`FrozenTokenStates`), the bag is of the
    encoder's contextual token states through a trained projection instead, and word dropout
    hides positions from the mean (the states themselves are cached whole)."""

    def __init__(self, vocab_size: int, d: int, word_dropout: float, n_out: int = 1,
                 states: FrozenTokenStates | None = None) -> None:
        super().__init__()
        self.word_dropout = word_dropout
        self.n_out = n_out
        self.states = states
        if states is None:
            self.embed = nn.Embedding(vocab_size, d)
        else:
            self.proj = nn.Sequential(nn.Linear(STATE_DIM, d), nn.GELU())
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, n_out))

    def _tokens(self, ids: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, d) token features and the mask the mean takes."""
        dropout = self.training and self.word_dropout > 0
        if self.states is None:
            if dropout:
                ids = word_dropout(ids, mask, self.word_dropout)
            return self.embed(ids), mask
        feats = self.proj(self.states(ids, mask))
        return feats, keep_dropout(mask, self.word_dropout) if dropout else mask

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feats, mask = self._tokens(ids, mask)
        m = mask.unsqueeze(-1).to(feats.dtype)
        pooled = (feats * m).sum(1) / m.sum(1).clamp(min=1.0)
        out = self.mlp(pooled)
        return out.squeeze(-1) if self.n_out == 1 else out
