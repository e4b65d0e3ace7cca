"""Refusal heads (``model.refusal_head``): who decides that an instruction is unsafe.

``bag``: a text-only bag-of-words classifier of the instruction (:class:`TextBagHead`, one
logit). The reason head never says "refused" on its own: a refusal is decided exactly when
this head is over ``inference.refusal_threshold``, so nothing the cameras show can make the
car refuse a safe instruction. It trains on the frames' reasons and, when the batch carries
them, on rendered texts (``aux_instruction_*``, ``aux_unsafe``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from drivevla.vla.heads.text import TextBagHead
from drivevla.vla.instruction_encoder import FrozenTokenStates


class BagRefusalHead(TextBagHead):
    def __init__(self, vocab_size: int, d: int, word_dropout: float,
                 states: FrozenTokenStates | None = None) -> None:
        super().__init__(vocab_size, d, word_dropout, n_out=1, states=states)

    def logit(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) refusal logits of the batch's instructions."""
        return self(batch["instruction_ids"], batch["instruction_mask"])

    @staticmethod
    def decide(reason_logits: torch.Tensor, refusal_logit: torch.Tensor, threshold: float,
               refused_index: int) -> torch.Tensor:
        """(B,) reasons: a refusal exactly when the head is over ``threshold``, otherwise the
        reason head's best reason other than a refusal."""
        logits = reason_logits.clone()
        logits[:, refused_index] = float("-inf")
        refuse = torch.sigmoid(refusal_logit.float()) > threshold
        return torch.where(refuse, torch.full_like(refuse, refused_index, dtype=torch.long),
                           logits.argmax(-1))

    def loss(self, refusal_logit: torch.Tensor, batch: dict[str, torch.Tensor],
             refused_index: int, logs: dict[str, float]) -> torch.Tensor:
        """Binary cross-entropy on the frames (refused reason = unsafe) and, averaged with it,
        on the batch's rendered texts."""
        target = (batch["reason"] == refused_index).float()
        loss = F.binary_cross_entropy_with_logits(refusal_logit.float(), target)
        if "aux_instruction_ids" in batch:  # rendered texts beside the frames' own
            aux = self(batch["aux_instruction_ids"], batch["aux_instruction_mask"])
            l_aux = F.binary_cross_entropy_with_logits(aux.float(),
                                                       batch["aux_unsafe"].float())
            logs["bce_refusal_texts"] = float(l_aux.detach())
            loss = 0.5 * (loss + l_aux)
        logs["bce_refusal"] = float(loss.detach())
        return loss


REFUSAL_HEADS = {"bag": BagRefusalHead}


def build_refusal_head(name: str | None, vocab_size: int, d: int, word_dropout: float,
                       states: FrozenTokenStates | None = None) -> BagRefusalHead | None:
    """The named refusal head, or None (the reason head alone decides, refusals included);
    with ``states`` it reads the pretrained encoder's token states."""
    if name is None:
        return None
    if name not in REFUSAL_HEADS:
        raise ValueError(f"unknown refusal head {name!r}; valid: {sorted(REFUSAL_HEADS)}")
    return REFUSAL_HEADS[name](vocab_size, d, word_dropout, states)
