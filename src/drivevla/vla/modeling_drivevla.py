"""DriveVLA network: vision encoder -> projector -> causal language model over one sequence

    [camera tokens] [<bos> instruction] [ego state + odometry] ([intent]) ([route targets])
    [action queries] [<expl> (prompt) explanation ... <eos>]

The action decoder reads the hidden states of the learned action queries and predicts the
waypoints, target speeds, meta-action and reason in one forward pass (no autoregressive
decoding on the action path). The reasoning head is the language model itself: it generates
the explanation after ``<expl>``, continuing from the KV cache of the same forward pass, only
when asked. Explanations therefore can never delay or change the action outputs.

Every option is a module chosen by name in ``config.model`` (:mod:`drivevla.vla.heads`):
the action decoder (``head``), the refusal head, the intent head (whose detached
probabilities enter the sequence as a token after the ego state) and the explanation prompt;
the odometry channels (:mod:`drivevla.vla.odometry`) widen the ego input. Output sizes come
from the config's saved label vocabularies, never from the code's lists.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from drivevla.language.reasons import Reason
from drivevla.vla import backbones_vlm  # noqa: F401  (registers the pretrained-VLM families)
from drivevla.vla.backbones import Backbone, build_backbone
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.heads.action import build_action_head
from drivevla.vla.heads.explanation import build_explanation
from drivevla.vla.heads.intent import build_intent_head
from drivevla.vla.heads.perception import TARGET_KEYS as PERCEPTION_TARGETS
from drivevla.vla.heads.perception import PerceptionHeads
from drivevla.vla.heads.refusal import build_refusal_head
from drivevla.vla.heads.text import keep_dropout, word_dropout
from drivevla.vla.instruction_encoder import STATE_DIM, FrozenTokenStates
from drivevla.vla.processor_drivevla import EOS, EXPL, PAD

# state-dict names of earlier checkpoints -> today's (applied on load; vla/convert.py)
LEGACY_TENSOR_PREFIXES = {"reason_embed.": "explanation.", "intent_proj.": "intent_head.token."}


@dataclass
class ActionOutput:
    waypoints: torch.Tensor  # (B, T, 2) metres, ego frame
    speeds: torch.Tensor  # (B, T) m/s
    meta_logits: torch.Tensor  # (B, n_meta)
    reason_logits: torch.Tensor  # (B, n_reasons)
    cache: Any = None  # KV cache of the prefix + queries (for explanations)
    prefix_len: int = 0
    attention_mask: torch.Tensor | None = None
    refusal_logit: torch.Tensor | None = None  # (B,) with a refusal head
    reason: torch.Tensor | None = None  # (B,) the decided reason index (see decide_reason)
    intent_logits: torch.Tensor | None = None  # (B, n_intents) with an intent head
    frame_summary: torch.Tensor | None = None  # (B, C) this frame's memory entry (memory only)


# index of the refusal in the code's reason list (a checkpoint's own: config.vocabularies)
REFUSED = Reason.REFUSED_UNSAFE_INSTRUCTION.index


class DriveVLAModel(nn.Module):
    def __init__(self, config: DriveVLAConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        m = config.model
        self.refused_index = config.vocabularies.refused_index
        self.backbone: Backbone = build_backbone(config, vocab_size)
        d = self.backbone.hidden_size
        self.ego_proj = nn.Sequential(nn.Linear(m.ego_dim, d), nn.GELU(), nn.Linear(d, d))
        tp_dim = 0
        if m.navigation_mode == "target_point":
            tp_dim = 2 * m.route_targets
            self.route_proj = nn.Sequential(nn.Linear(tp_dim, d), nn.GELU(), nn.Linear(d, d))
        if m.memory_frames:  # one token per earlier frame (its camera features, averaged)
            self.memory_proj = nn.Sequential(nn.Linear(self.backbone.vision_channels, d),
                                             nn.GELU(), nn.Linear(d, d))
            self.memory_pos = nn.Parameter(torch.randn(m.memory_frames, d) * 0.02)
        self.action_queries = nn.Parameter(torch.randn(m.n_action_queries, d) * 0.02)
        self.head = build_action_head(m.head, d, m.n_action_queries, m.future_steps, tp_dim)
        self.meta_head = nn.Linear(d, config.n_meta_actions)
        self.reason_head = nn.Linear(d, config.n_reasons)
        # the pretrained instruction encoder (frozen, outside the state dict) and the
        # projector through which the language model reads its token states
        self.instruction_states = (FrozenTokenStates(m.instruction_encoder_sha256)
                                   if m.instruction_encoder else None)
        if self.instruction_states is not None:
            self.instruction_proj = nn.Sequential(nn.Linear(STATE_DIM, d), nn.GELU(),
                                                  nn.Linear(d, d))
        dropout = config.loss.text_word_dropout
        self.safety_head = build_refusal_head(m.refusal_head, vocab_size, m.text_head_dim,
                                              dropout, self.instruction_states)
        self.explanation = build_explanation(m.explanation, config.n_reasons, d)
        self.perception = PerceptionHeads(d) if m.perception_heads else None
        self.intent_head = build_intent_head(m.intent_head, vocab_size, m.text_head_dim,
                                             dropout, config.n_intents, d,
                                             self.instruction_states)

    def intent_logits(self, batch: dict[str, torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The intent head's (B, n_intents) logits and, by sentence, its (B, S, n + 1)
        logits of every sentence (see :mod:`drivevla.vla.heads.intent`)."""
        if self.intent_head is None:
            raise ValueError("this model has no intent head (model.intent_head is null)")
        return self.intent_head.navigation_logits(batch)

    # ------------------------------------------------------------------ sequence
    def _ego_input(self, ego: torch.Tensor) -> torch.Tensor:
        """The ego input; in training the motion state (speed, accel, yaw rate, steer) of a
        share ``loss.ego_dropout`` of the samples is hidden (the odometry stays)."""
        p = self.config.loss.ego_dropout
        if not (self.training and p > 0):
            return ego
        b = ego.shape[0]
        keep = (torch.rand(b, 1, device=ego.device) >= p).to(ego.dtype)
        keep = torch.cat([keep.expand(b, 4), keep.new_ones(b, ego.shape[1] - 4)], dim=1)
        return ego * keep

    def _sequence(self, batch: dict[str, torch.Tensor]):
        """Embeddings and attention mask of prefix + action queries, the intent head's
        logits (None without one) and the prefix's length (cameras + instruction)."""
        m, p_words = self.config.model, self.config.loss.instruction_word_dropout
        intent = None if self.intent_head is None else self.intent_head.navigation_logits(batch)
        batch = self._instruction_input(self._with_memory(batch),
                                        p_words if self.training else 0.0)
        prefix, prefix_mask = self.backbone.embed_prefix(batch)
        b = prefix.shape[0]
        parts, masks = [prefix], [prefix_mask]
        if "memory_tokens" in batch:
            parts.append(batch["memory_tokens"].to(prefix.dtype))
            masks.append(prefix_mask.new_ones(b, m.memory_frames))
        parts.append(self.ego_proj(self._ego_input(batch["ego"]))[:, None])
        masks.append(prefix_mask.new_ones(b, 1))
        if intent is not None:  # the driving losses never train the text classifier
            parts.append(self.intent_head.token_embedding(intent[0], prefix.dtype))
            masks.append(prefix_mask.new_ones(b, 1))
        if m.navigation_mode == "target_point":
            parts.append(self.route_proj(batch["route"].flatten(1))[:, None])
            masks.append(prefix_mask.new_ones(b, 1))
        parts.append(self.action_queries[None].expand(b, -1, -1).to(prefix.dtype))
        masks.append(prefix_mask.new_ones(b, m.n_action_queries))
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1), intent, prefix.shape[1]

    def _with_memory(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """With ``model.memory_frames``: the batch with this frame's camera features
        (``vision_tokens``, ``frame_summary``: their mean, what a policy keeps) and the memory
        tokens, from the earlier frames' images (``memory_images`` (B, K, N, 3, H, W), encoded
        without gradient) or from a policy's kept summaries (``memory_summaries`` (B, K, C);
        where ``memory_current`` (B, K) is true, this frame's summary stands in)."""
        k = self.config.model.memory_frames
        if not k or "memory_tokens" in batch:
            return batch
        tokens = self.backbone.vision_tokens(batch["images"])
        summary = tokens.mean(1)
        if "memory_images" in batch:
            images = batch["memory_images"]
            with torch.no_grad():
                past = self.backbone.vision_tokens(images.flatten(0, 1)).mean(1)
            past = past.view(images.shape[0], k, -1)
        elif "memory_summaries" in batch:
            past = batch["memory_summaries"].to(summary.dtype)
            current = batch.get("memory_current")
            if current is not None:
                past = torch.where(current[..., None], summary.detach()[:, None], past)
        else:
            raise ValueError(f"model.memory_frames={k}: the batch needs the earlier frames "
                             "(memory_images) or a policy's kept summaries (memory_summaries)")
        memory = self.memory_proj(past) + self.memory_pos[None].to(past.dtype)
        return dict(batch, vision_tokens=tokens, frame_summary=summary, memory_tokens=memory)

    def _instruction_input(self, batch: dict[str, torch.Tensor], p_words: float
                           ) -> dict[str, torch.Tensor]:
        """The batch as the backbone reads the instruction: with word dropout ``p_words``;
        with a pretrained encoder, its projected token states as ``instruction_embeds``."""
        ids, mask = batch["instruction_ids"], batch["instruction_mask"]
        if self.instruction_states is None:
            if p_words > 0:
                batch = dict(batch, instruction_ids=word_dropout(ids, mask, p_words))
            return batch
        embeds = self.instruction_proj(self.instruction_states(ids, mask))
        if p_words > 0:
            mask = keep_dropout(mask, p_words)
        return dict(batch, instruction_embeds=embeds, instruction_mask=mask)

    def _actions(self, hidden_q: torch.Tensor, batch: dict[str, torch.Tensor]):
        m = self.config.model
        tp = batch["route"].flatten(1) if m.navigation_mode == "target_point" else None
        wps, speeds = self.head(hidden_q.float(), tp)
        pooled = hidden_q.float().mean(dim=1)
        return (wps * m.waypoint_scale_m, speeds * m.ego_scale[0],
                self.meta_head(pooled), self.reason_head(pooled))

    def _refusal_logit(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return None if self.safety_head is None else self.safety_head.logit(batch)

    def decide_reason(self, reason_logits: torch.Tensor, refusal_logit: torch.Tensor | None
                      ) -> torch.Tensor:
        """(B,) reason indices: the reason head's argmax, or with a refusal head a refusal
        exactly when that head is over the threshold (never otherwise)."""
        if refusal_logit is None or self.safety_head is None:
            return reason_logits.argmax(-1)
        return self.safety_head.decide(reason_logits, refusal_logit,
                                       self.config.inference.refusal_threshold,
                                       self.refused_index)

    def act(self, batch: dict[str, torch.Tensor], use_cache: bool = False) -> ActionOutput:
        """The action path: one forward pass over prefix + queries."""
        batch = self._with_memory(batch)
        embeds, mask, intent, _ = self._sequence(batch)
        hidden, cache = self.backbone.run(embeds, mask, use_cache=use_cache)
        q = self.config.model.n_action_queries
        wps, speeds, meta, reason = self._actions(hidden[:, -q:], batch)
        refusal = self._refusal_logit(batch)
        return ActionOutput(wps, speeds, meta, reason, cache, embeds.shape[1], mask, refusal,
                            self.decide_reason(reason, refusal),
                            None if intent is None else intent[0], batch.get("frame_summary"))

    def _explanation_inputs(self, expl_ids: torch.Tensor, expl_mask: torch.Tensor,
                            reason: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Teacher-forced explanation inputs after the action queries: ``<expl>`` (+ the
        prompt) + the explanation shifted right; and how many leading positions predict
        nothing."""
        expl_in = torch.cat([torch.full_like(expl_ids[:, :1], EXPL), expl_ids[:, :-1]], dim=1)
        mask_in = torch.cat([torch.ones_like(expl_mask[:, :1]), expl_mask[:, :-1]], dim=1)
        emb, mask_in = self.explanation.teacher_forced(self.backbone.embed_tokens(expl_in),
                                                       mask_in, reason)
        return emb, mask_in, self.explanation.skip

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss, logs) on a training batch (see DriveVLAProcessor.batch_from_samples)."""
        w = self.config.loss
        embeds, mask, intent, n_prefix = self._sequence(batch)
        n_ctx = embeds.shape[1]
        expl_ids = batch["explanation_ids"]
        expl_emb, expl_mask_in, skip = self._explanation_inputs(
            expl_ids, batch["explanation_mask"], batch["reason"])
        full = torch.cat([embeds, expl_emb.to(embeds.dtype)], dim=1)
        full_mask = torch.cat([mask, expl_mask_in.to(mask.dtype)], dim=1)
        hidden, _ = self.backbone.run(full, full_mask, use_cache=False)
        q = self.config.model.n_action_queries
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
        loss = (w.w_waypoints * l_wp + w.w_speeds * l_sp + w.w_meta * l_meta
                + w.w_reason * l_reason + w.w_explanation * l_expl)
        logs: dict[str, float] = {}
        refusal = self._refusal_logit(batch)
        if refusal is not None:
            loss = loss + w.w_refusal * self.safety_head.loss(refusal, batch,
                                                              self.refused_index, logs)
        if intent is not None:
            loss = loss + w.w_intent * self.intent_head.loss(intent, batch, logs)
        if self.perception is not None:
            loss = loss + self._perception_loss(hidden[:, :n_prefix], mask[:, :n_prefix],
                                                batch, logs)
        logs |= {"loss": float(loss.detach()), "l1_waypoints_m": float(l_wp.detach()),
                 "l1_speed_mps": float(l_sp.detach()), "ce_meta": float(l_meta.detach()),
                 "ce_reason": float(l_reason.detach()), "ce_explanation": float(l_expl.detach()),
                 "meta_acc": float((meta.argmax(-1) == batch["meta_action"]).float().mean()),
                 "reason_acc": float((reason.argmax(-1) == batch["reason"]).float().mean())}
        return loss, logs

    def _perception_loss(self, hidden: torch.Tensor, mask: torch.Tensor,
                         batch: dict[str, torch.Tensor], logs: dict[str, float]
                         ) -> torch.Tensor:
        """The weighted auxiliary losses of the perception heads (training only)."""
        missing = [k for k in PERCEPTION_TARGETS if k not in batch]
        if missing:
            raise ValueError(f"model.perception_heads trains on a schema 2 dataset's "
                             f"perception targets; the batch lacks {missing} (collect the "
                             f"data again, or set perception_heads false)")
        w = self.config.loss
        parts = self.perception.losses(self.perception(hidden, mask), batch)
        logs |= {f"aux_{k}": float(v.detach()) for k, v in parts.items()}
        return w.w_bev * parts["bev"] + w.w_signal * parts["signal"] + w.w_lead * parts["lead"]

    # ------------------------------------------------------------------ reasoning head
    @torch.no_grad()
    def generate_explanation(self, out: ActionOutput, max_new_tokens: int | None = None
                             ) -> list[list[int]]:
        """Greedy explanation tokens (without ``<eos>``) per batch row, continuing from the
        action pass's KV cache: :meth:`stream_explanation` collected."""
        result: list[list[int]] = [[] for _ in range(out.waypoints.shape[0])]
        done = [False] * len(result)
        for step in self.stream_explanation(out, max_new_tokens):
            for i, token in enumerate(step.tolist()):
                done[i] = done[i] or token == EOS
                if not done[i]:
                    result[i].append(token)
        return result

    def stream_explanation(self, out: ActionOutput, max_new_tokens: int | None = None
                           ) -> Iterator[torch.Tensor]:
        """The greedy explanation one step at a time: each step's token per batch row, shape
        (b,), after the explanation prompt (grounded: the embedding of ``out.reason``, the
        decided reason); ends when every row has produced ``<eos>`` or after
        ``max_new_tokens``. A row's tokens after its ``<eos>`` are meaningless.

        The cache is copied first, so the action outputs (and any later use of ``out``)
        are untouched."""
        if out.cache is None:
            raise ValueError("act(..., use_cache=True) is needed before generating an explanation")
        cache = copy.deepcopy(out.cache)
        b = out.waypoints.shape[0]
        mask = out.attention_mask
        token = torch.full((b, 1), EXPL, dtype=torch.long, device=out.waypoints.device)
        done = torch.zeros(b, dtype=torch.bool, device=token.device)
        for step in range(max_new_tokens or self.config.model.max_explanation_tokens):
            emb = self.backbone.embed_tokens(token)
            if step == 0:
                reason = out.reason if out.reason is not None else out.reason_logits.argmax(-1)
                emb = self.explanation.first_step(emb, reason)
            mask = torch.cat([mask, mask.new_ones(b, emb.shape[1])], dim=1)
            hidden, cache = self.backbone.run(emb, mask, past_key_values=cache, use_cache=True)
            logits = self.backbone.lm_logits(hidden[:, -1])
            logits[:, PAD] = float("-inf")
            token = logits.argmax(-1, keepdim=True)
            yield token[:, 0]
            done |= token[:, 0] == EOS
            if bool(done.all()):
                return
