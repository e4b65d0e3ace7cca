"""Backbones built on pretrained vision-language models (transformers classes).

Registered families (``DriveVLAConfig.model.backbone_family``):

- ``"idefics3"``: Idefics3 / SmolVLM (SigLIP tower + pixel-shuffle connector + Llama LM);
- ``"qwen2_vl"``: Qwen2-VL;
- ``"qwen2_5_vl"``: Qwen2.5-VL.

Each backbone loads ``XxxForConditionalGeneration.from_pretrained(config.pretrained_path,
local_files_only=True)`` (never the hub) or, without a path, builds the *real* class from a tiny
config (:data:`TINY_DEFAULTS` with ``config.vlm_config`` merged over it; tests and smoke runs).
Only the inner ``XxxModel`` (vision tower + language model) is kept: the VLM's ``lm_head`` is not
used, because the DriveVLA sequence continues in *our* token vocabulary.

Prefix layout (one sequence per sample, identical layout for every sample)::

    [chat prefix] ([before] <image>*T [after]) per camera  [instruction, padded]  [chat suffix]

- the images go through the family's own vision tower, pre-processed like the family's image
  processor would do it (Qwen: ``smart_resize`` + flattened ``temporal_patch_size`` patches with
  the frame repeated, ``image_grid_thw``; Idefics3: one square tile of the vision config's
  ``image_size``, i.e. the processor with ``do_image_splitting=False``), normalised with the
  processor's mean/std (``preprocessor_config.json`` of the pretrained directory if present);
- image features replace the image placeholder tokens (``image_token_id``); the wrappers are
  the family's tokens (Qwen ``vision_start``/``vision_end``; Idefics3 ``<fake_token_around_image>``
  ``<global-img>`` when the tokenizer has them);
- **instruction tokens**: with the family's tokenizer (a pretrained directory that has one),
  the raw ``batch["instruction_text"]`` is tokenised (the DriveVLA processor adds that key for
  non-default families) and padded to ``max_instruction_tokens``. Without a tokenizer (tiny
  random configs) our processor's ``instruction_ids`` are mapped into the VLM vocabulary by
  ``id % text_modulus``, ``text_modulus`` being the lowest reserved multimodal token id (or the
  vocabulary size) so that no instruction token can alias an image/vision token;
- the chat prefix/suffix (``<|im_start|>user`` ... ``<|im_start|>assistant``) is only added with
  a tokenizer that has those special tokens.

Tokens appended by the model (ego, route, action queries, explanation) are embedded by the
model or by :meth:`VLMBackbone.embed_tokens`: an embedding of *our* vocabulary owned by the
backbone (``token_embed``, trainable), whose transpose is also the output projection of
:meth:`VLMBackbone.lm_logits` (weights tied by construction, no shared-storage tensors).

Positions are a pure function of the attention mask, so there is no state between calls:

- the leading part of the prefix (chat prefix + all cameras, always attended) has fixed
  positions: Qwen M-RoPE ``(t, h, w)`` rows, i.e. text tokens share ``(p, p, p)``, image token
  ``(row, col)`` of the merged grid gets ``(s, s + row, s + col)`` and text after the image
  continues from ``s + max(rows, cols)``, exactly as ``get_rope_index`` does; Idefics3 plain
  ``0..S-1``;
- every later token (instruction, chat suffix, ego, queries, explanation, tokens generated one
  by one from the KV cache) gets ``next_position + (attended tokens since the fixed part) - 1``,
  i.e. padding inside the instruction consumes no position, like ``get_rope_index`` /
  ``generate`` with an attention mask. ``run`` takes the mask over cache + new tokens and uses
  the last ``n`` positions.

``mm_token_type_ids`` are not needed on our path (we call the vision tower and the language
model directly with explicit ``position_ids``); :meth:`VLMBackbone.prefix_token_ids` returns the
equivalent ``input_ids`` / ``mm_token_type_ids`` / ``image_grid_thw`` so that tests can compare
our positions with the family's own ``get_rope_index``.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from drivevla.vla.backbones import register_backbone
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.vlm_support import (  # noqa: F401  (re-exported for callers and tests)
    _QWEN_SPECIALS,
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    QWEN_MAX_PIXELS,
    QWEN_MIN_PIXELS,
    TINY_DEFAULTS,
    TINY_VOCAB,
    _classes,
    _load_tokenizer,
    _preprocessor_settings,
    _tiny_text,
    qwen_patchify,
    tiny_vlm_config,
)


class VLMBackbone(nn.Module):
    """Common part of the pretrained VLM backbones (see the module docstring)."""

    family: str = ""
    # (chat prefix, chat suffix) added when the tokenizer has these special tokens
    chat_template: tuple[str, str] = ("", "")
    chat_special_tokens: tuple[str, ...] = ()
    default_mean: tuple[float, ...] = IMAGENET_STANDARD_MEAN
    default_std: tuple[float, ...] = IMAGENET_STANDARD_STD

    def __init__(self, config: DriveVLAConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config = config.model  # architecture section only
        _, model_cls = _classes(self.family)
        if config.pretrained_path is not None:
            if config.vlm_config:
                warnings.warn(
                    "vlm_config is ignored: the VLM is loaded from pretrained_path", stacklevel=2
                )
            # safetensors only: a pickled pytorch_model.bin in a user's folder is never read
            full = model_cls.from_pretrained(config.pretrained_path, local_files_only=True,
                                             use_safetensors=True)
        else:
            full = model_cls(tiny_vlm_config(self.family, config.vlm_config))
        if config.gradient_checkpointing:
            full.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        self.vlm_config = full.config
        self.vlm = full.model  # vision tower + language model; the VLM lm_head is dropped
        del full
        text_cfg = self.vlm_config.text_config
        self.hidden_size = int(text_cfg.hidden_size)
        self.vlm_vocab_size = int(text_cfg.vocab_size)
        self.tokenizer = _load_tokenizer(config.pretrained_path)
        self._prep = _preprocessor_settings(config.pretrained_path)

        # our vocabulary (explanations and anything the model embeds with embed_tokens)
        emb_w = self._lm().get_input_embeddings().weight
        self.token_embed = nn.Embedding(vocab_size, self.hidden_size)
        with torch.no_grad():
            std = float(emb_w.float().std()) if emb_w.numel() > 1 else 0.02
            self.token_embed.weight.normal_(0.0, std if std > 0 else 0.02)

        mean = self._prep.get("image_mean", self.default_mean)
        std_ = self._prep.get("image_std", self.default_std)
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std_).view(1, 3, 1, 1), persistent=False)

        self._setup_vision()
        reserved = self._reserved_ids()
        self.text_modulus = (
            min([self.vlm_vocab_size, *reserved]) if reserved else self.vlm_vocab_size
        )
        pre, post = self._chat_ids()
        self.register_buffer("pre_ids", torch.tensor(pre, dtype=torch.long), persistent=False)
        self.register_buffer("post_ids", torch.tensor(post, dtype=torch.long), persistent=False)
        before, after = self._wrapper_ids()
        self.register_buffer("before_ids", torch.tensor(before, dtype=torch.long), persistent=False)
        self.register_buffer("after_ids", torch.tensor(after, dtype=torch.long), persistent=False)
        fixed = self._fixed_positions()
        self.register_buffer("fixed_positions", fixed, persistent=False)
        self.next_position = int(fixed.max()) + 1

        if config.freeze_vision:
            for p in self._vision_modules().parameters():
                p.requires_grad_(False)
        if config.lora_rank > 0:
            self._apply_lora()
        self._cache_kw = (
            "cache"
            if "cache" in inspect.signature(self._base_lm().forward).parameters
            else "past_key_values"
        )

    # ------------------------------------------------------------------ family hooks
    def _lm_attr(self) -> str:
        raise NotImplementedError

    def _vision_modules(self) -> nn.Module:
        raise NotImplementedError

    def _setup_vision(self) -> None:
        raise NotImplementedError

    def _image_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(M, 3, H, W) in [0, 1] -> (M, tokens_per_image, d)."""
        raise NotImplementedError

    def _reserved_ids(self) -> list[int]:
        raise NotImplementedError

    def _wrapper_ids(self) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def _fixed_positions(self) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ pieces
    def _lm(self) -> nn.Module:
        return getattr(self.vlm, self._lm_attr())

    def _base_lm(self) -> nn.Module:
        lm = self._lm()
        return lm.get_base_model() if hasattr(lm, "get_base_model") else lm

    def _apply_lora(self) -> None:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=self.config.lora_rank,
            lora_alpha=self.config.lora_alpha,
            target_modules=list(self.config.lora_targets),
            lora_dropout=0.0,
            bias="none",
        )
        # get_peft_model freezes every non-LoRA parameter of the language model
        setattr(self.vlm, self._lm_attr(), get_peft_model(self._lm(), lora))

    def _token_ids(self, text: str) -> list[int]:
        if self.tokenizer is None or not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _special_id(self, token: str) -> int | None:
        if self.tokenizer is None:
            return None
        tid = self.tokenizer.convert_tokens_to_ids(token)
        if tid is None or tid == self.tokenizer.unk_token_id:
            return None
        return int(tid)

    def _chat_ids(self) -> tuple[list[int], list[int]]:
        pre, post = self.chat_template
        if self.tokenizer is None or any(
            self._special_id(t) is None for t in self.chat_special_tokens
        ):
            return [], []
        return self._token_ids(pre), self._token_ids(post)

    @property
    def tokens_per_image(self) -> int:
        raise NotImplementedError

    @property
    def n_fixed(self) -> int:
        """Length of the fixed-layout part of the prefix (chat prefix + all cameras)."""
        return self.fixed_positions.shape[1]

    def _lm_dtype(self) -> torch.dtype:
        return self._lm().get_input_embeddings().weight.dtype

    # ------------------------------------------------------------------ instruction
    def instruction_tokens(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(VLM token ids (B, L), mask (B, L)) of the instruction, L = max_instruction_tokens
        (the family tokenizer on ``instruction_text``, else ``instruction_ids`` mapped)."""
        device = self.pre_ids.device
        if self.tokenizer is None:
            ids = batch["instruction_ids"].to(device) % self.text_modulus
            return ids, batch["instruction_mask"].to(device)
        if "instruction_text" not in batch:
            raise ValueError(
                f"the {self.family} backbone tokenises the raw instruction with the family "
                "tokenizer: the batch needs 'instruction_text' (DriveVLAProcessor adds it for "
                "non-default backbone families)"
            )
        n = self.config.max_instruction_tokens
        pad = self.tokenizer.pad_token_id
        pad = 0 if pad is None else int(pad)
        rows, masks = [], []
        for text in batch["instruction_text"]:
            tok = self._token_ids(text if self.config.use_instruction else "")[:n]
            rows.append(tok + [pad] * (n - len(tok)))
            masks.append([1] * len(tok) + [0] * (n - len(tok)))
        return (
            torch.tensor(rows, dtype=torch.long, device=device),
            torch.tensor(masks, dtype=torch.long, device=device),
        )

    # ------------------------------------------------------------------ protocol
    def embed_prefix(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch["images"]  # (B, N, 3, H, W) in [0, 1]
        b, n_cam = images.shape[:2]
        device = self.pre_ids.device
        dtype = self._lm_dtype()
        feats = self._image_features(images.flatten(0, 1).to(device))
        feats = feats.to(dtype).reshape(b, n_cam, self.tokens_per_image, -1)
        embed = self._lm().get_input_embeddings()

        def text(ids: torch.Tensor) -> torch.Tensor:
            return embed(ids)[None].expand(b, -1, -1).to(dtype)

        parts = [text(self.pre_ids)]
        for c in range(n_cam):
            parts += [text(self.before_ids), feats[:, c], text(self.after_ids)]
        instr_ids, instr_mask = self.instruction_tokens(batch)
        parts += [embed(instr_ids).to(dtype), text(self.post_ids)]
        emb = torch.cat(parts, dim=1)
        n_fixed = emb.shape[1] - instr_ids.shape[1] - self.post_ids.shape[0]
        if n_fixed != self.n_fixed:
            raise ValueError(
                f"{self.family} prefix built for {len(self.config.cameras)} camera(s) "
                f"({self.n_fixed} fixed tokens), got {n_cam} camera image(s)"
            )
        mask = torch.cat(
            [
                instr_mask.new_ones(b, n_fixed),
                instr_mask,
                instr_mask.new_ones(b, self.post_ids.shape[0]),
            ],
            dim=1,
        )
        return emb, mask

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embed(ids)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        w = self.token_embed.weight
        return F.linear(hidden.to(w.dtype), w)

    def position_ids(self, mask: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """Positions of the last ``n`` tokens of a sequence whose attention mask (over cache +
        new tokens, starting with our prefix) is ``mask``: (3, B, n) M-RoPE rows for Qwen,
        (B, n) for Idefics3."""
        b, length = mask.shape
        n = length if n is None else n
        fixed = self.fixed_positions
        rows, n_fixed = fixed.shape
        if length < n_fixed:
            raise ValueError(
                f"the sequence ({length} tokens) is shorter than the fixed prefix "
                f"({n_fixed} tokens): it must start with embed_prefix's output"
            )
        tail = mask[:, n_fixed:].long().cumsum(-1) - 1 + self.next_position
        tail = torch.maximum(tail, torch.full_like(tail, self.next_position))
        pos = torch.cat(
            [fixed[:, None].expand(rows, b, n_fixed), tail[None].expand(rows, -1, -1)], dim=-1
        )[:, :, length - n :]
        return pos[0] if rows == 1 else pos

    def run(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        past_key_values: Any = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        n = embeds.shape[1]
        past = 0 if past_key_values is None else past_key_values.get_seq_length()
        if past + n != mask.shape[1]:
            raise ValueError(
                f"the mask covers {mask.shape[1]} tokens, cache + new tokens are {past} + {n}"
            )
        out = self._lm()(
            inputs_embeds=embeds.to(self._lm_dtype()),
            attention_mask=mask,
            position_ids=self.position_ids(mask, n),
            use_cache=use_cache,
            **{self._cache_kw: past_key_values},
        )
        return out.last_hidden_state, getattr(out, self._cache_kw, None)

    # ------------------------------------------------------------------ introspection
    def prefix_token_ids(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The ``input_ids`` (image placeholders as ``image_token_id``), ``mm_token_type_ids``
        (1 on image tokens), ``attention_mask`` the prefix corresponds to, and (Qwen)
        ``image_grid_thw``: what the family's own processor + model would be given."""
        b = batch["images"].shape[0]
        n_cam = batch["images"].shape[1]
        image = torch.full(
            (self.tokens_per_image,),
            self.vlm_config.image_token_id,
            dtype=torch.long,
            device=self.pre_ids.device,
        )
        pieces = [self.pre_ids]
        types = [torch.zeros_like(self.pre_ids)]
        for _ in range(n_cam):
            pieces += [self.before_ids, image, self.after_ids]
            types += [
                torch.zeros_like(self.before_ids),
                torch.ones_like(image),
                torch.zeros_like(self.after_ids),
            ]
        fixed = torch.cat(pieces)[None].expand(b, -1)
        fixed_types = torch.cat(types)[None].expand(b, -1)
        instr, instr_mask = self.instruction_tokens(batch)
        post = self.post_ids[None].expand(b, -1)
        ids = torch.cat([fixed, instr, post], dim=1)
        mm = torch.cat([fixed_types, torch.zeros_like(instr), torch.zeros_like(post)], dim=1)
        mask = torch.cat([torch.ones_like(fixed), instr_mask, torch.ones_like(post)], dim=1)
        out = {"input_ids": ids, "mm_token_type_ids": mm.int(), "attention_mask": mask}
        grid = getattr(self, "grid_thw", None)
        if grid is not None:
            out["image_grid_thw"] = grid.repeat(b * n_cam, 1)
        return out


class QwenVLBackbone(VLMBackbone):
    """Qwen2-VL / Qwen2.5-VL: ViT on flattened temporal patches + patch merger, M-RoPE LM."""

    default_mean = OPENAI_CLIP_MEAN
    default_std = OPENAI_CLIP_STD
    chat_template = ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n")
    chat_special_tokens = ("<|im_start|>", "<|im_end|>")

    def _lm_attr(self) -> str:
        return "language_model"

    def _vision_modules(self) -> nn.Module:
        return self.vlm.visual

    def _setup_vision(self) -> None:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        vc = self.vlm_config.vision_config
        self.patch_size = int(vc.patch_size)
        self.merge_size = int(vc.spatial_merge_size)
        self.temporal_patch_size = int(vc.temporal_patch_size)
        size = self._prep.get("size") or {}
        min_pixels = self._prep.get("min_pixels") or size.get("shortest_edge") or QWEN_MIN_PIXELS
        max_pixels = self._prep.get("max_pixels") or size.get("longest_edge") or QWEN_MAX_PIXELS
        self.resized_hw = smart_resize(
            self.config.image_height,
            self.config.image_width,
            factor=self.patch_size * self.merge_size,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
        )
        gh, gw = (s // self.patch_size for s in self.resized_hw)
        self.grid = (1, gh, gw)  # patches (t, h, w) of one camera image
        self.register_buffer(
            "grid_thw", torch.tensor([self.grid], dtype=torch.long), persistent=False
        )

    @property
    def tokens_per_image(self) -> int:
        return self.grid[1] * self.grid[2] // self.merge_size**2

    def pixel_values(self, frames: torch.Tensor) -> torch.Tensor:
        """(M, 3, H, W) in [0, 1] -> ``pixel_values`` as ``Qwen2VLImageProcessor`` makes them."""
        x = frames.float()
        if tuple(x.shape[-2:]) != tuple(self.resized_hw):
            x = F.interpolate(
                x, size=self.resized_hw, mode="bicubic", align_corners=False, antialias=True
            )
        x = (x - self.pixel_mean) / self.pixel_std
        return qwen_patchify(x, self.patch_size, self.merge_size, self.temporal_patch_size)

    def _image_features(self, frames: torch.Tensor) -> torch.Tensor:
        visual = self.vlm.visual
        pixels = self.pixel_values(frames).to(visual.dtype)
        grid = self.grid_thw.repeat(frames.shape[0], 1)
        out = visual(pixels, grid_thw=grid)
        feats = out.pooler_output if hasattr(out, "pooler_output") else out
        return feats.reshape(frames.shape[0], self.tokens_per_image, -1)

    def _reserved_ids(self) -> list[int]:
        return [
            int(getattr(self.vlm_config, k))
            for k in _QWEN_SPECIALS
            if getattr(self.vlm_config, k, None) is not None
        ]

    def _wrapper_ids(self) -> tuple[list[int], list[int]]:
        return (
            [int(self.vlm_config.vision_start_token_id)],
            [int(self.vlm_config.vision_end_token_id)],
        )

    def _fixed_positions(self) -> torch.Tensor:
        """M-RoPE (t, h, w) positions of chat prefix + cameras (``get_rope_index`` rules)."""
        h, w = self.grid[1] // self.merge_size, self.grid[2] // self.merge_size
        cols: list[torch.Tensor] = []
        cur = 0

        def add_text(k: int) -> None:
            nonlocal cur
            if k:
                cols.append(torch.arange(cur, cur + k).expand(3, k))
                cur += k

        add_text(len(self.pre_ids))
        for _ in self.config.cameras:
            add_text(len(self.before_ids))
            rr, cc = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            cols.append(
                torch.stack([torch.zeros(h * w, dtype=torch.long), rr.reshape(-1), cc.reshape(-1)])
                + cur
            )
            cur += max(h, w)
            add_text(len(self.after_ids))
        return torch.cat(cols, dim=1).long()


class Qwen2VLBackbone(QwenVLBackbone):
    family = "qwen2_vl"


class Qwen2_5VLBackbone(QwenVLBackbone):
    family = "qwen2_5_vl"


class Idefics3Backbone(VLMBackbone):
    """Idefics3 / SmolVLM: SigLIP tower on one square tile per camera, pixel-shuffle
    connector, Llama LM with 1-D positions."""

    family = "idefics3"
    default_mean = IMAGENET_STANDARD_MEAN
    default_std = IMAGENET_STANDARD_STD
    chat_template = ("<|im_start|>User:", "<end_of_utterance>\nAssistant:")
    chat_special_tokens = ("<|im_start|>", "<end_of_utterance>")

    def _lm_attr(self) -> str:
        return "text_model"

    def _vision_modules(self) -> nn.Module:
        return nn.ModuleList([self.vlm.vision_model, self.vlm.connector])

    def _setup_vision(self) -> None:
        vc = self.vlm_config.vision_config
        self.tile = int(vc.image_size)
        patches = (self.tile // int(vc.patch_size)) ** 2
        self._tokens = patches // int(self.vlm_config.scale_factor) ** 2

    @property
    def tokens_per_image(self) -> int:
        return self._tokens

    def pixel_values(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.float()
        if tuple(x.shape[-2:]) != (self.tile, self.tile):
            x = F.interpolate(
                x, size=(self.tile, self.tile), mode="bicubic", align_corners=False, antialias=True
            )
        return (x - self.pixel_mean) / self.pixel_std

    def _image_features(self, frames: torch.Tensor) -> torch.Tensor:
        # the vision model + connector directly: Idefics3Model.get_image_features drops images
        # that are all zeros after normalisation (its "padding images"), e.g. a uniform grey
        vision = self.vlm.vision_model
        pixels = self.pixel_values(frames).to(vision.dtype)
        hidden = vision(pixel_values=pixels).last_hidden_state
        return self.vlm.connector(hidden)

    def _reserved_ids(self) -> list[int]:
        return [int(self.vlm_config.image_token_id)]

    def _wrapper_ids(self) -> tuple[list[int], list[int]]:
        fake = self._special_id("<fake_token_around_image>")
        glob = self._special_id("<global-img>")
        before = [i for i in (fake, glob) if i is not None]
        return before, [fake] if fake is not None else []

    def _fixed_positions(self) -> torch.Tensor:
        per_cam = len(self.before_ids) + self.tokens_per_image + len(self.after_ids)
        return torch.arange(len(self.pre_ids) + per_cam * len(self.config.cameras))[None]


register_backbone("qwen2_vl", Qwen2VLBackbone)
register_backbone("qwen2_5_vl", Qwen2_5VLBackbone)
register_backbone("idefics3", Idefics3Backbone)
