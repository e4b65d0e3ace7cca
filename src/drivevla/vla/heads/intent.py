"""Intent heads (``model.intent_head``): a text-only classifier names the navigation intent
(``vocabularies.navigation_intents``, in that order), and its probabilities, detached so that
the driving losses never train it, enter the sequence as one token after the ego state
(``token``, a linear map to the LM width).

- ``bag``: reads the whole instruction (:class:`TextBagHead` over the intents);
- ``by_sentence``: reads each sentence alone (up to the processor's MAX_INTENT_SENTENCES)
  with one more class, "no navigation" (an event's sentence), and the token carries the
  intents of the sentence least likely to be "no navigation", so an appended event text
  cannot pull the intent away from the navigation phrase. Frames teach it that at least one
  sentence names the route's intent (multiple-instance learning); rendered texts label every
  sentence.

Both train on the frames' route intents (``intent``, -100: none) and, when the batch carries
them, on rendered texts (``aux_intent`` / ``aux_intent_sentence_*``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from drivevla.vla.heads.text import TextBagHead
from drivevla.vla.instruction_encoder import FrozenTokenStates


class BagIntentHead(TextBagHead):
    extra_classes = 0

    def __init__(self, vocab_size: int, d_text: int, word_dropout: float, n_intents: int,
                 d_model: int, states: FrozenTokenStates | None = None) -> None:
        super().__init__(vocab_size, d_text, word_dropout, n_out=n_intents + self.extra_classes,
                         states=states)
        self.token = nn.Linear(n_intents, d_model)

    def navigation_logits(self, batch: dict[str, torch.Tensor]
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """((B, n_intents) logits, per-sentence logits or None)."""
        return self(batch["instruction_ids"], batch["instruction_mask"]), None

    def token_embedding(self, nav_logits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, 1, d) the intent token: the detached intent probabilities, embedded."""
        probs = torch.softmax(nav_logits.detach().float(), dim=-1)
        return self.token(probs.to(dtype))[:, None]

    def _frame_loss(self, nav: torch.Tensor, per: torch.Tensor | None, target: torch.Tensor,
                    ok: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(nav.float(), target.long(), ignore_index=-100)

    def _text_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if "aux_intent" not in batch:
            return None
        aux = self(batch["aux_instruction_ids"], batch["aux_instruction_mask"])
        return F.cross_entropy(aux.float(), batch["aux_intent"].long())

    def loss(self, intent: tuple[torch.Tensor, torch.Tensor | None],
             batch: dict[str, torch.Tensor], logs: dict[str, float]) -> torch.Tensor:
        """Cross-entropy on the frames' route intents (frames without one ignored) and on
        the rendered texts' intents, averaged."""
        nav, per = intent
        target = batch.get("intent")
        losses = []
        if target is not None:
            ok = target >= 0
            if bool(ok.any()):
                losses.append(self._frame_loss(nav, per, target, ok, batch))
                logs["intent_acc"] = float((nav.argmax(-1)[ok] == target[ok]).float().mean())
        text = self._text_loss(batch)
        if text is not None:
            losses.append(text)
        if not losses:
            return nav.sum() * 0.0
        loss = torch.stack(losses).mean()
        logs["ce_intent"] = float(loss.detach())
        return loss


class SentenceIntentHead(BagIntentHead):
    extra_classes = 1  # the last class: no navigation

    def navigation_logits(self, batch: dict[str, torch.Tensor]
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The (B, n_intents) logits of the sentence least likely to be "no navigation"
        (padding sentences never chosen) and (B, S, n_intents + 1) of every sentence."""
        ids, mask = batch["intent_sentence_ids"], batch["intent_sentence_mask"]
        b, n_s, length = ids.shape
        per = self(ids.reshape(b * n_s, length), mask.reshape(b * n_s, length)).view(b, n_s, -1)
        p_none = torch.softmax(per.float(), dim=-1)[..., -1]
        p_none = p_none.masked_fill(~mask.bool().any(-1), float("inf"))
        chosen = per[torch.arange(b, device=per.device), p_none.argmin(-1)]
        return chosen[:, :-1], per

    def _frame_loss(self, nav, per, target, ok, batch):
        # a frame's label says only that one of its sentences names the intent: its loss is
        # that of the sentence that names it best
        logp = torch.log_softmax(per.float(), dim=-1)[ok]  # (b, S, n + 1)
        best = logp.gather(-1, target[ok].long()[:, None, None].expand(
            -1, logp.shape[1], 1))[..., 0]
        valid = batch["intent_sentence_mask"][ok].bool().any(-1)
        return -best.masked_fill(~valid, float("-inf")).amax(-1).mean()

    def _text_loss(self, batch):
        if "aux_intent_sentence_label" not in batch:  # whole texts, labelled as one
            return super()._text_loss(batch)
        ids = batch["aux_intent_sentence_ids"]
        aux = self(ids.flatten(0, 1), batch["aux_intent_sentence_mask"].flatten(0, 1))
        return F.cross_entropy(aux.float(), batch["aux_intent_sentence_label"].flatten().long(),
                               ignore_index=-100)


INTENT_HEADS = {"bag": BagIntentHead, "by_sentence": SentenceIntentHead}


def build_intent_head(name: str | None, vocab_size: int, d_text: int, word_dropout: float,
                      n_intents: int, d_model: int, states: FrozenTokenStates | None = None
                      ) -> BagIntentHead | None:
    """The named intent head, or None (no intent token in the sequence); with ``states`` it
    reads the pretrained encoder's token states."""
    if name is None:
        return None
    if name not in INTENT_HEADS:
        raise ValueError(f"unknown intent head {name!r}; valid: {sorted(INTENT_HEADS)}")
    return INTENT_HEADS[name](vocab_size, d_text, word_dropout, n_intents, d_model, states)
