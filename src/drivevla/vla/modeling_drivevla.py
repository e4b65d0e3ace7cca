"""DriveVLA network: vision encoder -> projector -> causal language model over one sequence

    [camera tokens] [<bos> instruction] [ego state] ([route targets]) [action queries]
    [<expl> ([reason]) explanation ... <eos>]

The action decoder reads the hidden states of the learned action queries and predicts the
waypoints, target speeds, meta-action and reason in one forward pass (no autoregressive
decoding on the action path). The reasoning head is the language model itself: it generates
the explanation after ``<expl>``, continuing from the KV cache of the same forward pass, only
when asked. Explanations therefore can never delay or change the action outputs.

Options: ``refusal_head`` adds a text-only classifier of the instruction that decides
refusals of unsafe instructions; ``intent_head`` adds one that names the navigation intent,
whose (detached) probabilities enter the sequence as a token after the ego state;
``grounded_explanation`` puts an embedding of the decided reason after ``<expl>``, so the
generated text explains the reason the model gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from drivevla.language.intents import NAVIGATION_INTENTS
from drivevla.language.reasons import Reason
from drivevla.vla import backbones_vlm  # noqa: F401  (registers the pretrained-VLM families)
from drivevla.vla.backbones import Backbone, build_backbone
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.processor_drivevla import EOS, EXPL, PAD, UNK


@dataclass
class ActionOutput:
    waypoints: torch.Tensor  # (B, T, 2) metres, ego frame
    speeds: torch.Tensor  # (B, T) m/s
    meta_logits: torch.Tensor  # (B, n_meta)
    reason_logits: torch.Tensor  # (B, n_reasons)
    cache: Any = None  # KV cache of the prefix + queries (for explanations)
    prefix_len: int = 0
    attention_mask: torch.Tensor | None = None
    refusal_logit: torch.Tensor | None = None  # (B,) with ``refusal_head``
    reason: torch.Tensor | None = None  # (B,) the decided reason index (see decide_reason)
    intent_logits: torch.Tensor | None = None  # (B, n_intents) with ``intent_head``


REFUSED = Reason.REFUSED_UNSAFE_INSTRUCTION.index


def word_dropout(ids: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """``ids`` with a share ``p`` of the real tokens (never ``<bos>``) replaced by ``<unk>``."""
    drop = (torch.rand(ids.shape, device=ids.device) < p) & (mask == 1)
    drop[:, 0] = False  # <bos>
    return ids.masked_fill(drop, UNK)


class TextBagHead(nn.Module):
    """A text-only classifier of the instruction: its own token embeddings (not the language
    model's), a masked mean (a bag of words), an MLP. With one output (the refusal head):
    is the instruction unsafe? With ``n_out`` outputs (the intent head): logits over the
    navigation intents. In training, ``word_dropout`` of the tokens become ``<unk>``, so it
    leans on several words rather than on one phrasing (on phrasings it never saw, this bag
    with word dropout flagged fewer safe instructions than one transformer encoder layer did;
    see the model card)."""

    def __init__(self, vocab_size: int, d: int, word_dropout: float, n_out: int = 1) -> None:
        super().__init__()
        self.word_dropout = word_dropout
        self.n_out = n_out
        self.embed = nn.Embedding(vocab_size, d)
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, n_out))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training and self.word_dropout > 0:
            ids = word_dropout(ids, mask, self.word_dropout)
        m = mask.unsqueeze(-1).float()
        pooled = (self.embed(ids) * m).sum(1) / m.sum(1).clamp(min=1.0)
        out = self.mlp(pooled)
        return out.squeeze(-1) if self.n_out == 1 else out


class RegressionHead(nn.Module):
    """MLP from the pooled action queries to all waypoints and speeds at once."""

    def __init__(self, d: int, n_queries: int, steps: int, tp_dim: int) -> None:
        super().__init__()
        self.steps = steps
        self.mlp = nn.Sequential(nn.Linear(d * n_queries + tp_dim, 256), nn.GELU(),
                                 nn.Linear(256, steps * 3))

    def forward(self, queries: torch.Tensor, target_point: torch.Tensor | None):
        x = queries.flatten(1)
        if target_point is not None:
            x = torch.cat([x, target_point], dim=-1)
        out = self.mlp(x).view(-1, self.steps, 3)
        return out[..., :2], out[..., 2]


class GRUHead(nn.Module):
    """TransFuser-style autoregressive GRU over waypoint *offsets* (cheap, still one pass of
    the backbone): each step sees the previous waypoint and (target-point mode) the target."""

    def __init__(self, d: int, n_queries: int, steps: int, tp_dim: int, hidden: int = 128
                 ) -> None:
        super().__init__()
        self.steps = steps
        self.init = nn.Linear(d * n_queries, hidden)
        self.cell = nn.GRUCell(2 + tp_dim, hidden)
        self.out = nn.Linear(hidden, 3)

    def forward(self, queries: torch.Tensor, target_point: torch.Tensor | None):
        h = torch.tanh(self.init(queries.flatten(1)))
        wp = queries.new_zeros(queries.shape[0], 2)
        wps, speeds = [], []
        for _ in range(self.steps):
            x = wp if target_point is None else torch.cat([wp, target_point], dim=-1)
            h = self.cell(x, h)
            o = self.out(h)
            wp = wp + o[:, :2]
            wps.append(wp)
            speeds.append(o[:, 2])
        return torch.stack(wps, dim=1), torch.stack(speeds, dim=1)


class DriveVLAModel(nn.Module):
    def __init__(self, config: DriveVLAConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.backbone: Backbone = build_backbone(config, vocab_size)
        d = self.backbone.hidden_size
        self.ego_proj = nn.Sequential(nn.Linear(config.ego_dim, d), nn.GELU(), nn.Linear(d, d))
        tp_dim = 0
        if config.navigation_mode == "target_point":
            tp_dim = 2 * config.route_targets
            self.route_proj = nn.Sequential(nn.Linear(tp_dim, d), nn.GELU(), nn.Linear(d, d))
        self.action_queries = nn.Parameter(torch.randn(config.n_action_queries, d) * 0.02)
        head_cls = GRUHead if config.head == "gru" else RegressionHead
        self.head = head_cls(d, config.n_action_queries, config.future_steps, tp_dim)
        self.meta_head = nn.Linear(d, config.n_meta_actions)
        self.reason_head = nn.Linear(d, config.n_reasons)
        if config.refusal_head:
            self.safety_head = TextBagHead(vocab_size, config.refusal_dim,
                                           config.refusal_word_dropout)
        if config.grounded_explanation:
            self.reason_embed = nn.Embedding(config.n_reasons, d)
        if config.intent_head:
            n = len(NAVIGATION_INTENTS)
            # by sentence: one more class, NO_NAVIGATION (index n), for event sentences
            self.intent_head = TextBagHead(vocab_size, config.refusal_dim,
                                           config.refusal_word_dropout,
                                           n_out=n + int(config.intent_by_sentence))
            self.intent_proj = nn.Linear(n, d)

    def intent_logits(self, batch: dict[str, torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The intent head's (B, n_intents) logits over the navigation intents and, with
        ``intent_by_sentence``, its (B, S, n_intents + 1) logits of every sentence read alone
        (the last class: no navigation). By sentence, the first are those of the sentence
        least likely to be "no navigation" (padding sentences never chosen)."""
        if not self.config.intent_by_sentence:
            return self.intent_head(batch["instruction_ids"], batch["instruction_mask"]), None
        ids, mask = batch["intent_sentence_ids"], batch["intent_sentence_mask"]
        b, n_s, length = ids.shape
        per = self.intent_head(ids.reshape(b * n_s, length),
                               mask.reshape(b * n_s, length)).view(b, n_s, -1)
        p_none = torch.softmax(per.float(), dim=-1)[..., -1]
        p_none = p_none.masked_fill(~mask.bool().any(-1), float("inf"))
        chosen = per[torch.arange(b, device=per.device), p_none.argmin(-1)]
        return chosen[:, :-1], per

    # ------------------------------------------------------------------ sequence
    def _sequence(self, batch: dict[str, torch.Tensor]):
        """Embeddings and attention mask of prefix + action queries, and the intent head's
        logits (None without one)."""
        cfg = self.config
        intent = None
        if cfg.intent_head:
            intent = self.intent_logits(batch)
        if self.training and cfg.instruction_word_dropout > 0:
            batch = dict(batch, instruction_ids=word_dropout(
                batch["instruction_ids"], batch["instruction_mask"],
                cfg.instruction_word_dropout))
        prefix, prefix_mask = self.backbone.embed_prefix(batch)
        b = prefix.shape[0]
        ego = batch["ego"]
        if not cfg.motion_state_input:
            ego = torch.cat([torch.zeros_like(ego[:, :4]), ego[:, 4:]], dim=1)
        elif self.training and cfg.ego_dropout > 0:
            # hides the motion state (speed, accel, yaw rate, steer); the odometry stays
            keep = (torch.rand(b, 1, device=ego.device) >= cfg.ego_dropout).to(ego.dtype)
            keep = torch.cat([keep.expand(b, 4), keep.new_ones(b, ego.shape[1] - 4)], dim=1)
            ego = ego * keep
        parts = [prefix, self.ego_proj(ego)[:, None]]
        masks = [prefix_mask, prefix_mask.new_ones(b, 1)]
        if intent is not None:  # the driving losses never train the text classifier
            probs = torch.softmax(intent[0].detach().float(), dim=-1)
            parts.append(self.intent_proj(probs.to(prefix.dtype))[:, None])
            masks.append(prefix_mask.new_ones(b, 1))
        if cfg.navigation_mode == "target_point":
            parts.append(self.route_proj(batch["route"].flatten(1))[:, None])
            masks.append(prefix_mask.new_ones(b, 1))
        parts.append(self.action_queries[None].expand(b, -1, -1).to(prefix.dtype))
        masks.append(prefix_mask.new_ones(b, cfg.n_action_queries))
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1), intent

    def _actions(self, hidden_q: torch.Tensor, batch: dict[str, torch.Tensor]):
        cfg = self.config
        tp = batch["route"].flatten(1) if cfg.navigation_mode == "target_point" else None
        wps, speeds = self.head(hidden_q.float(), tp)
        pooled = hidden_q.float().mean(dim=1)
        return (wps * cfg.waypoint_scale_m, speeds * cfg.ego_scale[0],
                self.meta_head(pooled), self.reason_head(pooled))

    def _refusal_logit(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self.config.refusal_head:
            return None
        return self.safety_head(batch["instruction_ids"], batch["instruction_mask"])

    def decide_reason(self, reason_logits: torch.Tensor, refusal_logit: torch.Tensor | None
                      ) -> torch.Tensor:
        """(B,) reason indices: the reason head's argmax, or with ``refusal_head`` a refusal
        exactly when the safety head is over the threshold (never otherwise)."""
        if refusal_logit is None:
            return reason_logits.argmax(-1)
        logits = reason_logits.clone()
        logits[:, REFUSED] = float("-inf")
        refuse = torch.sigmoid(refusal_logit.float()) > self.config.refusal_threshold
        return torch.where(refuse, torch.full_like(refuse, REFUSED, dtype=torch.long),
                           logits.argmax(-1))

    def act(self, batch: dict[str, torch.Tensor], use_cache: bool = False) -> ActionOutput:
        """The action path: one forward pass over prefix + queries."""
        embeds, mask, intent = self._sequence(batch)
        hidden, cache = self.backbone.run(embeds, mask, use_cache=use_cache)
        q = self.config.n_action_queries
        wps, speeds, meta, reason = self._actions(hidden[:, -q:], batch)
        refusal = self._refusal_logit(batch)
        return ActionOutput(wps, speeds, meta, reason, cache, embeds.shape[1], mask, refusal,
                            self.decide_reason(reason, refusal),
                            None if intent is None else intent[0])

    def _explanation_inputs(self, expl_ids: torch.Tensor, expl_mask: torch.Tensor,
                            reason: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Teacher-forced explanation inputs after the action queries: ``<expl>`` (+ the
        reason's embedding) + the explanation shifted right; and how many leading
        positions predict nothing."""
        expl_in = torch.cat([torch.full_like(expl_ids[:, :1], EXPL), expl_ids[:, :-1]], dim=1)
        mask_in = torch.cat([torch.ones_like(expl_mask[:, :1]), expl_mask[:, :-1]], dim=1)
        emb = self.backbone.embed_tokens(expl_in)
        if not self.config.grounded_explanation:
            return emb, mask_in, 0
        r = self.reason_embed(reason.clamp(min=0))[:, None].to(emb.dtype)
        emb = torch.cat([emb[:, :1], r, emb[:, 1:]], dim=1)
        return emb, torch.cat([mask_in[:, :1], mask_in], dim=1), 1

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss, logs) on a training batch (see DriveVLAProcessor.batch_from_samples)."""
        cfg = self.config
        embeds, mask, intent = self._sequence(batch)
        n_ctx = embeds.shape[1]
        expl_ids = batch["explanation_ids"]
        expl_emb, expl_mask_in, skip = self._explanation_inputs(
            expl_ids, batch["explanation_mask"], batch["reason"])
        full = torch.cat([embeds, expl_emb.to(embeds.dtype)], dim=1)
        full_mask = torch.cat([mask, expl_mask_in.to(mask.dtype)], dim=1)
        hidden, _ = self.backbone.run(full, full_mask, use_cache=False)
        q = cfg.n_action_queries
        wps, speeds, meta, reason = self._actions(hidden[:, n_ctx - q:n_ctx], batch)
        wmask = batch["waypoint_mask"]
        denom = wmask.sum().clamp(min=1.0)
        l_wp = ((wps - batch["target_waypoints"]).abs().sum(-1) * wmask).sum() / denom
        l_sp = ((speeds - batch["target_speeds"]).abs() * wmask).sum() / denom
        l_meta = F.cross_entropy(meta, batch["meta_action"])
        l_reason = F.cross_entropy(reason, batch["reason"])
        logits = self.backbone.lm_logits(hidden[:, n_ctx + skip:]).float()
        target = expl_ids.masked_fill(batch["explanation_mask"] == 0, -100)
        l_expl = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                 ignore_index=-100)
        loss = (cfg.w_waypoints * l_wp + cfg.w_speeds * l_sp + cfg.w_meta * l_meta
                + cfg.w_reason * l_reason + cfg.w_explanation * l_expl)
        logs: dict[str, float] = {}
        refusal = self._refusal_logit(batch)
        if refusal is not None:
            target_r = (batch["reason"] == REFUSED).float()
            l_ref = F.binary_cross_entropy_with_logits(refusal.float(), target_r)
            if "aux_instruction_ids" in batch:  # rendered texts beside the frames' own
                aux = self.safety_head(batch["aux_instruction_ids"],
                                       batch["aux_instruction_mask"])
                l_aux = F.binary_cross_entropy_with_logits(
                    aux.float(), batch["aux_unsafe"].float())
                logs["bce_refusal_texts"] = float(l_aux.detach())
                l_ref = 0.5 * (l_ref + l_aux)
            loss = loss + cfg.w_refusal * l_ref
            logs["bce_refusal"] = float(l_ref.detach())
        if intent is not None:
            loss = loss + cfg.w_intent * self._intent_loss(intent, batch, logs)
        logs |= {"loss": float(loss.detach()), "l1_waypoints_m": float(l_wp.detach()),
                "l1_speed_mps": float(l_sp.detach()), "ce_meta": float(l_meta.detach()),
                "ce_reason": float(l_reason.detach()), "ce_explanation": float(l_expl.detach()),
                "meta_acc": float((meta.argmax(-1) == batch["meta_action"]).float().mean()),
                "reason_acc": float((reason.argmax(-1) == batch["reason"]).float().mean())}
        return loss, logs

    def _intent_loss(self, intent: tuple[torch.Tensor, torch.Tensor | None],
                     batch: dict[str, torch.Tensor], logs: dict[str, float]) -> torch.Tensor:
        """Cross-entropy of the intent head on the frames' route intents (frames without
        one are ignored) and, when the batch carries them, on rendered texts' intents.

        By sentence, a frame's label says only that one of its sentences names the intent:
        its loss is that of the sentence that names it best (multiple-instance learning);
        the rendered texts label each sentence (navigation phrase: its intent, event
        sentences: no navigation; ``aux_intent_sentence_label``, -100 on padding)."""
        nav, per = intent
        target = batch.get("intent")
        losses = []
        ok = target >= 0 if target is not None else None
        if ok is not None and bool(ok.any()):
            if per is None:
                losses.append(F.cross_entropy(nav.float(), target.long(), ignore_index=-100))
            else:
                logp = torch.log_softmax(per.float(), dim=-1)[ok]  # (b, S, n + 1)
                best = logp.gather(-1, target[ok].long()[:, None, None].expand(
                    -1, logp.shape[1], 1))[..., 0]
                valid = batch["intent_sentence_mask"][ok].bool().any(-1)
                losses.append(-best.masked_fill(~valid, float("-inf")).amax(-1).mean())
            logs["intent_acc"] = float((nav.argmax(-1)[ok] == target[ok]).float().mean())
        if "aux_intent_sentence_label" in batch:
            ids = batch["aux_intent_sentence_ids"]
            aux = self.intent_head(ids.flatten(0, 1),
                                   batch["aux_intent_sentence_mask"].flatten(0, 1))
            losses.append(F.cross_entropy(aux.float(),
                                          batch["aux_intent_sentence_label"].flatten().long(),
                                          ignore_index=-100))
        elif "aux_intent" in batch:
            aux = self.intent_head(batch["aux_instruction_ids"], batch["aux_instruction_mask"])
            losses.append(F.cross_entropy(aux.float(), batch["aux_intent"].long()))
        if not losses:
            return nav.sum() * 0.0
        loss = torch.stack(losses).mean()
        logs["ce_intent"] = float(loss.detach())
        return loss

    # ------------------------------------------------------------------ reasoning head
    @torch.no_grad()
    def generate_explanation(self, out: ActionOutput, max_new_tokens: int | None = None
                             ) -> list[list[int]]:
        """Greedy explanation tokens continuing from the action pass's KV cache (with
        ``grounded_explanation``: after the embedding of ``out.reason``, the decided reason).

        The cache is copied first, so the action outputs (and any later use of ``out``)
        are untouched."""
        if out.cache is None:
            raise ValueError("act(..., use_cache=True) is needed before generating an explanation")
        import copy

        cache = copy.deepcopy(out.cache)
        b = out.waypoints.shape[0]
        device = out.waypoints.device
        mask = out.attention_mask
        token = torch.full((b, 1), EXPL, dtype=torch.long, device=device)
        done = torch.zeros(b, dtype=torch.bool, device=device)
        result: list[list[int]] = [[] for _ in range(b)]
        first = True
        for _ in range(max_new_tokens or self.config.max_explanation_tokens):
            emb = self.backbone.embed_tokens(token)
            if first and self.config.grounded_explanation:
                reason = out.reason if out.reason is not None else out.reason_logits.argmax(-1)
                emb = torch.cat([emb, self.reason_embed(reason)[:, None].to(emb.dtype)], dim=1)
            first = False
            mask = torch.cat([mask, mask.new_ones(b, emb.shape[1])], dim=1)
            hidden, cache = self.backbone.run(emb, mask, past_key_values=cache, use_cache=True)
            logits = self.backbone.lm_logits(hidden[:, -1])
            logits[:, PAD] = float("-inf")
            token = logits.argmax(-1, keepdim=True)
            for i in range(b):
                if not done[i]:
                    if int(token[i]) == EOS:
                        done[i] = True
                    else:
                        result[i].append(int(token[i]))
            if bool(done.all()):
                break
        return result
