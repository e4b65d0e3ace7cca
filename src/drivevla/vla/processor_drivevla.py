"""DriveVLA processor: everything between raw inputs and tensors, kept out of the network
(lerobot style) and saved with the checkpoint, so the exported graph is pure tensor math.

- a byte-level BPE tokenizer (Hugging Face ``tokenizers``) trained offline on our instruction
  and explanation corpora (``train_tokenizer``), saved as ``tokenizer.json``;
- image pre-processing: resize every camera to the model's input size, scale to [0, 1];
- ego-state normalisation and route targets;
- validation of observations with errors that name the problem.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from drivevla.core.errors import InvalidObservationError
from drivevla.core.types import Observation
from drivevla.language.explanations import explanation_corpus
from drivevla.language.instructions import instruction_corpus
from drivevla.language.sentence_encoder import load_tokenizer
from drivevla.perception.sensor_health import (
    MAX_ACCEL_MPS2,
    MAX_SPEED_MPS,
    MAX_YAW_RATE_RPS,
)
from drivevla.vla.configuration_drivevla import CheckpointError, DriveVLAConfig
from drivevla.vla.heads.perception import TARGET_KEYS as PERCEPTION_TARGETS
from drivevla.vla.odometry import CHANNELS, normalise_channels

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>", "<expl>"]
PAD, UNK, BOS, EOS, EXPL = range(len(SPECIAL_TOKENS))
MAX_INSTRUCTION_CHARS = 400
# physically possible magnitudes of the ego state (|value| at most; the sensor-health bounds,
# and a steer far past full lock) and of target points (m, ego frame): finite inputs past them
# overflow the network's float32 activations into NaN waypoints; such a reading is a sensor
# fault the policy refuses by name
EGO_LIMITS = {"speed_mps": MAX_SPEED_MPS, "accel_mps2": MAX_ACCEL_MPS2,
              "yaw_rate_rps": MAX_YAW_RATE_RPS, "steer": 10.0}
MAX_TARGET_DISTANCE_M = 10_000.0
# the by_sentence intent head: sentences the intent head reads one by one (later ones join the last)
MAX_INTENT_SENTENCES = 4
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """The sentences of an instruction (split after . ! or ? and white space)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def intent_sentences(text: str, limit: int = MAX_INTENT_SENTENCES) -> list[str]:
    """The sentences the intent head reads alone: at most ``limit`` (the rest joined to the
    last, so no word is lost), and one empty sentence for an empty text."""
    sentences = split_sentences(text) or [""]
    if len(sentences) > limit:
        sentences = [*sentences[:limit - 1], " ".join(sentences[limit - 1:])]
    return sentences


def train_tokenizer(corpus: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer trained on ``corpus`` (deterministic for a given corpus)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sorted(set(corpus)), trainer=trainer)
    return tok


def default_corpus() -> list[str]:
    """Every instruction and explanation phrasing we render, with representative slots."""

    return instruction_corpus("all") + explanation_corpus("all")


class DriveVLAProcessor:
    """Turns observations (or dataset samples) into model tensors and token ids into text."""

    def __init__(self, config: DriveVLAConfig, tokenizer: Tokenizer) -> None:
        self.config = config
        self.tokenizer = tokenizer
        # with a pretrained instruction encoder, instructions take its own tokenizer (the
        # explanations keep ours)
        self.instruction_tokenizer = (load_tokenizer() if config.model.instruction_encoder
                                      else None)

    @classmethod
    def build(cls, config: DriveVLAConfig, corpus: list[str] | None = None) -> DriveVLAProcessor:
        return cls(config, train_tokenizer(corpus or default_corpus(),
                                           config.model.tokenizer_vocab_size))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    # ------------------------------------------------------------------ text
    def encode_instruction(self, text: str) -> tuple[list[int], list[int]]:
        """(ids, mask) of fixed length ``max_instruction_tokens``: <bos> text, padded (with a
        pretrained instruction encoder: its ``[CLS] text [SEP]``)."""
        n = self.config.model.max_instruction_tokens
        if not self.config.model.use_instruction:
            text = ""
        if self.instruction_tokenizer is not None:
            ids = self.instruction_tokenizer.encode(text).ids[:n]
        else:
            ids = [BOS, *self.tokenizer.encode(text).ids][:n]
        mask = [1] * len(ids) + [0] * (n - len(ids))
        return ids + [PAD] * (n - len(ids)), mask

    def encode_instructions(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``instruction_ids`` and ``instruction_mask`` (B, max_instruction_tokens) of
        ``texts``, as the model reads them."""
        ids, masks = zip(*(self.encode_instruction(t) for t in texts), strict=True)
        out = {"instruction_ids": torch.tensor(ids, dtype=torch.long),
               "instruction_mask": torch.tensor(masks, dtype=torch.long)}
        if self.config.model.intent_head == "by_sentence":
            out |= self.encode_intent_sentences(texts)
        return out

    def encode_intent_sentences(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``intent_sentence_ids`` / ``intent_sentence_mask`` (B, MAX_INTENT_SENTENCES,
        max_instruction_tokens): each sentence of each text encoded alone (see
        :func:`intent_sentences`); missing sentences are all padding (mask 0)."""
        n = self.config.model.max_instruction_tokens
        ids = torch.full((len(texts), MAX_INTENT_SENTENCES, n), PAD, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, text in enumerate(texts):
            for j, sentence in enumerate(intent_sentences(
                    text if self.config.model.use_instruction else "")):
                sid, smask = self.encode_instruction(sentence)
                ids[i, j], mask[i, j] = torch.tensor(sid), torch.tensor(smask)
        return {"intent_sentence_ids": ids, "intent_sentence_mask": mask}

    def encode_explanation(self, text: str) -> tuple[list[int], list[int]]:
        """(ids, mask) of length ``max_explanation_tokens + 1``: text, <eos>, padded.

        The model predicts these after the <expl> token that follows the action queries."""
        n = self.config.model.max_explanation_tokens + 1
        ids = [*self.tokenizer.encode(text).ids][: n - 1] + [EOS]
        mask = [1] * len(ids) + [0] * (n - len(ids))
        return ids + [PAD] * (n - len(ids)), mask

    def decode(self, ids: list[int]) -> str:
        ids = [i for i in ids if i not in (PAD, BOS, EXPL)]
        if EOS in ids:
            ids = ids[: ids.index(EOS)]
        return self.tokenizer.decode(ids).strip()

    # ------------------------------------------------------------------ images / state
    def images_to_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) uint8 or float [0,1] -> float (B, N, 3, h, w) at the model size."""
        b, n = images.shape[:2]
        x = images.reshape(b * n, *images.shape[2:]).float()
        if images.dtype == torch.uint8:
            x = x / 255.0
        size = (self.config.model.image_height, self.config.model.image_width)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return x.reshape(b, n, 3, *size)

    def normalise_ego(self, ego: torch.Tensor,
                      odometry: dict[str, torch.Tensor | None] | None = None) -> torch.Tensor:
        """(B, 4) raw ego state + (B,) raw readings of the model's odometry channels (name ->
        values, see :mod:`drivevla.vla.odometry`) -> the model's ego input."""
        m = self.config.model
        parts = [ego / torch.tensor(m.ego_scale, dtype=ego.dtype, device=ego.device)]
        parts += normalise_channels(m.odometry, odometry or {}, ego.dtype)
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ observations
    def validate(self, obs: Observation) -> None:
        """Errors name the bad input: cameras, image shapes, instruction, ego state."""
        for name in self.config.model.cameras:
            if name not in obs.images:
                raise ValueError(
                    f"camera {name!r} is missing from the observation; the model needs "
                    f"{list(self.config.model.cameras)}, got {sorted(obs.images)}"
                )
            img = np.asarray(obs.images[name])
            if img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(
                    f"camera {name!r}: image shape {img.shape} is not (H, W, 3) RGB"
                )
            if img.dtype != np.uint8:
                raise ValueError(f"camera {name!r}: image dtype {img.dtype}, expected uint8")
            if img.shape[0] < 16 or img.shape[1] < 16:
                raise ValueError(f"camera {name!r}: image {img.shape[:2]} is too small")
        if not isinstance(obs.instruction, str) or not obs.instruction.strip():
            raise ValueError("the instruction is empty: the model needs a navigation instruction")
        if len(obs.instruction) > MAX_INSTRUCTION_CHARS:
            raise ValueError(
                f"the instruction is {len(obs.instruction)} characters long; at most "
                f"{MAX_INSTRUCTION_CHARS} are accepted"
            )
        _check_ego(obs)
        if self.config.model.navigation_mode == "target_point":
            tp = np.asarray(obs.route.target_points)
            if tp.shape != (self.config.model.route_targets, 2) or not np.isfinite(tp).all():
                raise ValueError(
                    f"route target points must be finite ({self.config.model.route_targets}, 2), "
                    f"got {tp.shape}"
                )
            if np.abs(tp).max(initial=0.0) > MAX_TARGET_DISTANCE_M:
                raise InvalidObservationError(
                    f"route target points {tp.tolist()} lie beyond {MAX_TARGET_DISTANCE_M:g} m "
                    "of the ego: not a route the model can follow")

    def from_observations(self, observations: list[Observation],
                          odometry: list[dict[str, float]] | None = None
                          ) -> dict[str, torch.Tensor]:
        """Model inputs for a batch of observations (validated first). ``odometry``: per
        observation, the readings of the model's odometry channels since its route began
        (:class:`~drivevla.vla.odometry.OdometryTracker` keeps them for the policy)."""
        batch = self.model_inputs(self.raw_inputs(observations, odometry))
        return self._add_instruction_text(batch, [o.instruction for o in observations])

    def raw_inputs(self, observations: list[Observation],
                   odometry: list[dict[str, float]] | None = None) -> dict[str, torch.Tensor]:
        """The tensors a vehicle has at one tick, before any scaling (observations validated
        first): ``images`` (B, N, H, W, 3) uint8 RGB in ``model.cameras`` order, ``ego`` (B, 4)
        speed m/s, accel m/s^2, yaw rate rad/s, steer; ``odometry`` (B, K) the raw readings
        of the model's channels (only when it has some); ``route`` (B, R, 2) target points in
        metres, ego frame (target-point mode only); the instruction's token ids and mask.
        :meth:`model_inputs` turns them into what the network reads (the exported graph runs
        that same code)."""
        for obs in observations:
            self.validate(obs)
        m = self.config.model
        readings = _odometry(odometry, m.odometry, len(observations))
        raw = {
            "images": torch.stack([
                torch.stack([torch.from_numpy(np.ascontiguousarray(o.images[c]))
                             for c in m.cameras])
                for o in observations
            ]),
            "ego": torch.tensor([[o.ego.speed_mps, o.ego.accel_mps2, o.ego.yaw_rate_rps,
                                  o.ego.steer] for o in observations], dtype=torch.float32),
            **self.encode_instructions([o.instruction for o in observations]),
        }
        if m.navigation_mode == "target_point":  # other modes never read target points
            raw["route"] = torch.tensor(np.stack([
                np.asarray(o.route.target_points, dtype=np.float32) for o in observations]))
        if m.odometry and readings:
            raw["odometry"] = torch.stack([readings[name] for name in m.odometry], dim=1)
        return raw

    def model_inputs(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the network reads from :meth:`raw_inputs`' tensors: images resized to the
        model size in [0, 1] (B, N, 3, h, w), the normalised ego input, target points over
        ``waypoint_scale_m``; token ids unchanged. Pure tensor code (exported as it is)."""
        m = self.config.model
        odometry = raw.get("odometry")
        readings = {} if odometry is None else {
            name: odometry[:, i] for i, name in enumerate(m.odometry)}
        batch = {
            # contiguous: a channels-last view would take other conv kernels (last-bit changes)
            "images": self.images_to_tensor(raw["images"].permute(0, 1, 4, 2, 3).contiguous()),
            "ego": self.normalise_ego(raw["ego"], readings),
        }
        if "route" in raw:  # read in target-point mode only
            batch["route"] = raw["route"] / m.waypoint_scale_m
        return batch | {k: v for k, v in raw.items() if k not in batch and k != "odometry"}

    def _add_instruction_text(self, batch: dict[str, Any], texts: list[str]) -> dict[str, Any]:
        """Pretrained VLM families tokenise the raw instruction with their own tokenizer:
        ``instruction_text`` (a list of str, not a tensor) is added for them only."""
        m = self.config.model
        if m.backbone_family != "default":
            batch["instruction_text"] = [t if m.use_instruction else "" for t in texts]
        return batch

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.tokenizer.save(str(directory / "tokenizer.json"))
        (directory / "processor_config.json").write_text(json.dumps({
            "processor": "DriveVLAProcessor",
            "special_tokens": SPECIAL_TOKENS,
            "image_size": [self.config.model.image_height, self.config.model.image_width],
            "ego_scale": list(self.config.model.ego_scale),
            "waypoint_scale_m": self.config.model.waypoint_scale_m,
        }, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, config: DriveVLAConfig) -> DriveVLAProcessor:
        path = Path(directory) / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"no tokenizer.json in {directory}: the checkpoint is incomplete"
            )
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises a bare Exception
            raise CheckpointError(f"{path}: not a readable tokenizer: {exc}") from exc
        return cls(config, tokenizer)

    def batch_from_samples(self, samples: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Model inputs and targets from a collated dataset batch (see datasets.torch_dataset)."""
        images = samples["images"]
        if images.dim() == 4:  # (B, 3, H, W): one camera
            images = images[:, None]
        eids, emasks = zip(*(self.encode_explanation(t) for t in samples["explanation"]),
                           strict=True)
        batch = {
            "images": self.images_to_tensor(images),
            "ego": self.normalise_ego(samples["ego"].float(),
                                      {name: samples.get(name) for name in CHANNELS}),
            "route": samples["route"].float() / self.config.model.waypoint_scale_m,
            **self.encode_instructions(list(samples["instruction"])),
            "explanation_ids": torch.tensor(eids, dtype=torch.long),
            "explanation_mask": torch.tensor(emasks, dtype=torch.long),
            "target_waypoints": samples["target_waypoints"].float(),
            "target_speeds": samples["target_speeds"].float(),
            "waypoint_mask": samples["waypoint_mask"].float(),
            "meta_action": samples["meta_action"].long(),
            "reason": samples["reason"].long(),
        }
        if "intent" in samples:
            batch["intent"] = samples["intent"].long()
        if samples.get("memory_images") is not None:  # (B, K, N, 3, H, W): the earlier frames
            past = samples["memory_images"]
            batch["memory_images"] = self.images_to_tensor(past.flatten(0, 1)).view(
                *past.shape[:2], *batch["images"].shape[1:])
        for key in PERCEPTION_TARGETS:  # schema 2 frames (the perception heads' targets)
            if samples.get(key) is not None:
                value = samples[key]
                batch[key] = value.long() if key == "signal_state" else value.float()
        return self._add_instruction_text(batch, list(samples["instruction"]))


def _check_ego(obs: Observation) -> None:
    """The ego state the model reads: finite, and within :data:`EGO_LIMITS`."""
    values = {name: float(getattr(obs.ego, name)) for name in EGO_LIMITS}
    if not all(math.isfinite(v) for v in values.values()):
        raise ValueError(f"ego state has NaN or inf: {values}")
    beyond = {n: v for n, v in values.items() if abs(v) > EGO_LIMITS[n]}
    if beyond:
        raise InvalidObservationError(
            f"ego state {beyond} beyond the physically possible |value| <= "
            f"{ {n: EGO_LIMITS[n] for n in beyond} }: a sensor fault, not a state to act on")


def _odometry(values: list[dict[str, float]] | None, channels: tuple[str, ...], n: int
              ) -> dict[str, torch.Tensor]:
    """(n,) tensors of each channel's finite readings (no readings: an empty dict, and a model
    that needs some says which)."""
    if values is None:
        return {}
    if len(values) != n:
        raise ValueError(f"odometry readings for {len(values)} observations, expected {n}")
    out = {}
    for name in channels:
        col = [v.get(name) for v in values]
        if any(x is None for x in col):
            raise ValueError(f"odometry channel {name!r} is missing from {values!r}")
        t = torch.tensor([float(x) for x in col], dtype=torch.float32)
        if not torch.isfinite(t).all():
            raise ValueError(f"odometry channel {name!r} must be {n} finite values, got {col!r}")
        out[name] = t
    return out
