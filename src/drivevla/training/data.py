"""The data side of ``drivevla train``: frames decoded once into memory at the model's input
size (cached beside each dataset), the label columns added to caches written before they
existed, per-frame sampling weights (rare reasons, keyframes) and the rendered instruction
texts the text-only heads train on. :mod:`drivevla.training.train` runs the optimisation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from drivevla.datasets.format import BEV_SHAPE
from drivevla.datasets.reader import SkipReport
from drivevla.datasets.torch_dataset import FrameDataset, collate
from drivevla.language.instructions import synthetic_instruction_records
from drivevla.perception.bev_targets import unpack_bev
from drivevla.training.config import TrainConfig
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.heads.perception import TARGET_KEYS as PERCEPTION_TARGETS
from drivevla.vla.odometry import CHANNELS

if TYPE_CHECKING:  # torch loads lazily: `drivevla --help` should not wait for it
    import torch

logger = logging.getLogger(__name__)

# 2: caches written before episodes.jsonl was read strictly may lack the episode of a
# garbled last line (dropped silently then): rebuilt once
CACHE_VERSION = 2
# per-frame odometry labels (the policy integrates them at run time); a cache written before
# one existed gets it added from the data's label columns
ODOMETRY_KEYS = tuple(CHANNELS)  # dataset columns named as the odometry channels
# label columns added since the first frame caches (filled in without decoding images)
LATE_KEYS = (*ODOMETRY_KEYS, "intent", "frame_index")
# the perception targets besides the raster (schema 2 data)
PERCEPTION_SCALARS = tuple(k for k in PERCEPTION_TARGETS if k != "bev")


@dataclass
class FrameTensors:
    """Frames of one or more datasets held in memory at the model's input size."""

    images: torch.Tensor  # (N, C, 3, h, w) uint8
    ego: torch.Tensor  # (N, 4) raw units
    heading_change: torch.Tensor  # (N,) rad since the episode's first frame
    lateral_offset: torch.Tensor  # (N,) m moved over (left +) since the episode's first frame
    distance_travelled: torch.Tensor  # (N,) m of path since the episode's first frame
    route: torch.Tensor  # (N, 5, 2) metres
    target_waypoints: torch.Tensor  # (N, 6, 2)
    target_speeds: torch.Tensor  # (N, 6)
    waypoint_mask: torch.Tensor  # (N, 6)
    meta_action: torch.Tensor  # (N,) -100: no label
    reason: torch.Tensor  # (N,)
    intent: torch.Tensor  # (N,) index into NAVIGATION_INTENTS, -100: none
    instruction: list[str]
    explanation: list[str]
    # schema 2 data only (the perception heads' targets; None for schema 1 data)
    bev_packed: torch.Tensor | None = None  # (N, 3200) uint8: np.packbits of (4, 80, 80)
    signal_state: torch.Tensor | None = None  # (N,) 0 none, 1 red, 2 yellow, 3 green
    signal_distance: torch.Tensor | None = None  # (N,) m
    lead_present: torch.Tensor | None = None  # (N,) 0 / 1
    lead_distance: torch.Tensor | None = None  # (N,) m
    lead_speed: torch.Tensor | None = None  # (N,) m/s
    frame_index: torch.Tensor | None = None  # (N,) index in its episode (0 first, +1 a row)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @staticmethod
    def concat(parts: list[FrameTensors]) -> FrameTensors:
        import torch

        if len(parts) == 1:
            return parts[0]
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(FrameTensors):
            values = [getattr(p, f.name) for p in parts]
            if any(v is None for v in values):  # a schema 1 part: no perception targets
                kw[f.name] = None
                continue
            kw[f.name] = (torch.cat(values) if isinstance(values[0], torch.Tensor)
                          else [x for v in values for x in v])
        return FrameTensors(**kw)

    def past_rows(self, index: torch.Tensor, frames: int, stride: int) -> torch.Tensor:
        """See :func:`past_rows_of`."""
        if self.frame_index is None:
            raise ValueError("these frames carry no frame_index: the memory needs it")
        return past_rows_of(self.frame_index, index, frames, stride)

    def take(self, index: torch.Tensor, memory: tuple[int, int] = (0, 1)) -> dict[str, Any]:
        """A collated-like batch for :meth:`DriveVLAProcessor.batch_from_samples`: every
        field under its own name, tensors indexed, text lists picked item by item; with
        ``memory = (frames, stride)`` also ``memory_images`` (B, frames, N, 3, h, w), the
        images :meth:`past_rows` names."""
        import torch

        idx = index.tolist()
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = (value[index] if isinstance(value, torch.Tensor)
                               else [value[i] for i in idx])
        if memory[0]:
            out["memory_images"] = self.images[self.past_rows(index, *memory)]
        packed = out.pop("bev_packed", None)
        if packed is not None:  # rows of whole bytes: the batch unpacks as one raster stack
            bev = unpack_bev(packed.numpy().tobytes(), (len(idx), *BEV_SHAPE))
            out["bev"] = torch.from_numpy(bev.astype(np.float32))
        return out


def memory_of(config: DriveVLAConfig) -> tuple[int, int]:
    """(earlier frames, stride) a model's memory reads (``take``'s ``memory``)."""
    return config.model.memory_frames, config.model.memory_stride


def past_rows_of(frame_index: torch.Tensor, index: torch.Tensor, frames: int, stride: int
                 ) -> torch.Tensor:
    """(B, frames) rows of the frames ``k * stride`` ticks before each row of ``index``
    (k = 1..frames), in the same episode: before the episode's first frame, that first frame
    (a policy's memory starts the same way). Rows of an episode must be consecutive, in frame
    order from 0: otherwise a ValueError."""
    import torch

    back = stride * torch.arange(1, frames + 1)
    own = frame_index[index]
    steps = torch.minimum(back[None], own[:, None])
    rows = index[:, None] - steps
    if not bool((frame_index[rows] == own[:, None] - steps).all()):
        raise ValueError("the frames of an episode are not consecutive rows in frame order: "
                         "the memory cannot find earlier frames")
    return rows


def _cache_key(root: Path, split: str, cameras: tuple[str, ...], size: tuple[int, int]) -> str:
    episodes = root / "meta" / "episodes.jsonl"
    stamp = episodes.stat().st_mtime_ns if episodes.is_file() else 0
    blob = json.dumps([CACHE_VERSION, str(root.resolve()), split, cameras, size, stamp])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_frames(root: str | Path, split: str, config: DriveVLAConfig,
                cache_dir: str | None = None, progress: bool = True,
                skip_corrupt: bool = False, skipped: SkipReport | None = None
                ) -> FrameTensors:
    """Decode and resize every frame of ``split`` (cached as a ``.pt`` file beside the data).

    Corrupt data raises :class:`CorruptDataError` naming the file and row or line; with
    ``skip_corrupt`` it is left out and added to ``skipped``, and the frames are not cached
    (a later run without ``skip_corrupt`` must not train on them unawares)."""
    import torch
    from tqdm import tqdm


    root = Path(root)
    m = config.model
    size = (m.image_height, m.image_width)
    key = _cache_key(root, split, tuple(m.cameras), size)
    cache = Path(cache_dir) if cache_dir else root / "cache"
    path = cache / f"frames-{split}-{size[0]}x{size[1]}-{key}.pt"
    ds_split = None if split == "all" else split
    if path.is_file():
        try:
            data = torch.load(path, weights_only=True)
            missing = [k for k in LATE_KEYS if k not in data]
            if missing:  # a cache from before these labels existed
                data.update(_label_columns(root, ds_split, config, len(data["ego"]), missing))
                _save_cache(path, data)
            return FrameTensors(**data)
        except Exception as exc:  # a torn cache file is rebuilt, never trusted
            logger.warning("ignoring unreadable frame cache %s (%s)", path, exc)
    ds = FrameDataset(root, split=ds_split, cameras=list(config.model.cameras), target="expert",
                      skip_corrupt=skip_corrupt)
    n = len(ds)
    if n == 0:
        if skipped is not None:
            skipped.merge(ds.dataset.skipped)
        raise ValueError(f"{root}: split {split!r} has no frames")
    images = torch.empty((n, len(m.cameras), 3, *size), dtype=torch.uint8)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=0,
                                         collate_fn=_collate_resized(size))
    labels: dict[str, list[Any]] = {}
    i = 0
    for batch in tqdm(loader, desc=f"decode {root.name}/{split}", unit="batch",
                      disable=not progress):
        b = batch["images"].shape[0]
        images[i:i + b] = batch.pop("images")
        for k, v in batch.items():
            labels.setdefault(k, []).append(v)
        i += b
    data = {
        "images": images,
        **{k: torch.cat(labels[k]) for k in ("ego", *ODOMETRY_KEYS, "route",
                                             "target_waypoints", "target_speeds",
                                             "waypoint_mask", "meta_action", "reason",
                                             "intent")},
        "instruction": [s for part in labels["instruction"] for s in part],
        "explanation": [s for part in labels["explanation"] for s in part],
    }
    data["frame_index"] = torch.from_numpy(ds.label_column("frame_index"))
    if ds.has_perception:
        data["bev_packed"] = torch.from_numpy(np.packbits(
            torch.cat(labels["bev"]).numpy().astype(bool).reshape(n, -1), axis=1))
        data |= {k: torch.cat(labels[k]) for k in PERCEPTION_SCALARS}
    report = ds.dataset.skipped
    if report:
        logger.warning("%s (%s): left out as corrupt: %s; these frames are not cached",
                       root, split, report.summary())
        if skipped is not None:
            skipped.merge(report)
    else:
        _save_cache(path, data)
    return FrameTensors(**data)


def _save_cache(path: Path, data: dict[str, Any]) -> None:
    import torch

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(data, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("could not write the frame cache %s (%s); going on without", path, exc)


def _label_columns(root: Path, split: str | None, config: DriveVLAConfig, n: int,
                   names: list[str]) -> dict[str, Any]:
    """Label columns missing from a cached split, read without decoding any image."""
    import torch


    ds = FrameDataset(root, split=split, cameras=list(config.model.cameras), target="expert")
    columns = {name: torch.from_numpy(ds.label_column(name)) for name in names}
    for column in columns.values():
        if len(column) != n:
            raise ValueError(f"{root}: the frame cache holds {n} frames, the data {len(column)}")
    return columns


def _collate_resized(size: tuple[int, int]):
    import torch
    import torch.nn.functional as F


    def fn(items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate(items)
        imgs = batch["images"]  # (B, C, 3, H, W) float [0, 1]
        b, c = imgs.shape[:2]
        x = imgs.flatten(0, 1)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        batch["images"] = (x * 255.0).round().clamp(0, 255).to(torch.uint8).view(b, c, 3, *size)
        keep = ("images", "ego", *ODOMETRY_KEYS, "route", "target_waypoints", "target_speeds",
                "waypoint_mask", "meta_action", "reason", "intent", "instruction",
                "explanation", "bev", *PERCEPTION_SCALARS)
        return {k: batch[k] for k in keep if k in batch}

    return fn


SPEED_CHANGE_FULL_MPS = 5.0
KEYFRAME_STEP = 2  # target_speeds index 2 = 1.5 s ahead at 0.5 s steps


def frame_weights(frames: FrameTensors, cfg: TrainConfig) -> torch.Tensor:
    """Sampling weights: rare reasons (``balance_reasons``) times speed-change keyframes
    (``keyframe_weight``)."""
    weights = sampling_weights(frames.reason, cfg.balance_reasons)
    if cfg.keyframe_weight > 0:
        weights = weights * keyframe_weights(frames.ego[:, 0], frames.target_speeds,
                                             cfg.keyframe_weight)
    return weights


def keyframe_weights(speed: torch.Tensor, target_speeds: torch.Tensor, k: float
                     ) -> torch.Tensor:
    """``1 + k * min(|v_target(1.5 s) - v| / SPEED_CHANGE_FULL_MPS, 1)`` per frame."""
    change = (target_speeds[:, KEYFRAME_STEP].double() - speed.double()).abs()
    return 1.0 + k * (change / SPEED_CHANGE_FULL_MPS).clamp(max=1.0)


def instruction_texts(processor, pool: int, seed: int, stacked_share: float = 0.0
                      ) -> dict[str, torch.Tensor] | None:
    """``pool`` instructions rendered from the train phrasings, encoded for the text-only
    heads, with what each head learns from them: ``aux_unsafe`` (refusal head) and
    ``aux_intent`` (intent head). None when the model has neither."""
    import torch


    m, vocab = processor.config.model, processor.config.vocabularies
    if not (m.refusal_head or m.intent_head):
        return None
    records = synthetic_instruction_records(pool, seed, split="train",
                                            stacked_share=stacked_share)
    encoded = processor.encode_instructions([r[0] for r in records])
    out = {f"aux_{k}": v for k, v in encoded.items()}
    if m.refusal_head:
        out["aux_unsafe"] = torch.tensor([r[1] == "misleading" for r in records])
    if m.intent_head:  # indices into the model's own intent list
        intents = [vocab.navigation_intents.index(r[3]) for r in records]
        out["aux_intent"] = torch.tensor(intents)
    if m.intent_head == "by_sentence":
        # every navigation phrasing is one sentence and comes first (as the simulator
        # composes them; tested): the first sentence names the intent, the rest none
        # (encode_instructions gave each text's sentences as aux_intent_sentence_*)
        present = out["aux_intent_sentence_mask"].bool().any(-1)
        label = torch.full(present.shape, -100, dtype=torch.long)
        label[present] = len(vocab.navigation_intents)
        label[:, 0] = torch.tensor(intents)
        out["aux_intent_sentence_label"] = label
    return out


def sampling_weights(reasons: torch.Tensor, exponent: float) -> torch.Tensor:
    """Per-frame weights ``freq(reason) ** -exponent`` (unlabelled frames count as a class)."""
    import torch

    if exponent <= 0:
        return torch.ones(len(reasons), dtype=torch.double)
    _, inverse, counts = torch.unique(reasons, return_inverse=True, return_counts=True)
    freq = counts.double() / counts.sum()
    return freq[inverse] ** (-exponent)
