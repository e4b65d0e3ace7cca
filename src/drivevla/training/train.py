"""Training DriveVLA: ``drivevla train --data DIR --out DIR [--set key=value ...]``.

- **Data.** Every frame of the datasets' ``train`` split is decoded once, resized to the
  model's input size and kept in memory as uint8 (a 60k-frame dataset at 96x160 is 2.8 GB);
  the decoded frames are cached beside the dataset (``DIR/cache``) so retraining skips the
  JPEG work. Labels are the expert's plan (``target="expert"``), so DAgger data, where the
  driven path is not the expert's, is labelled correctly. Rare reasons (refusals, lane
  changes, yields) are over-sampled with weights ``frequency ** -balance_reasons``, and with
  ``keyframe_weight`` frames where the expert changes speed (starts, stops) too (all of it
  in :mod:`drivevla.training.data`).
- **Optimisation.** accelerate (CPU by default; GPUs and several processes through
  ``accelerate launch`` / torchrun), AdamW, linear warm-up then cosine decay, gradient
  clipping, bf16/fp16 on GPU (``--mixed-precision``), gradient checkpointing and LoRA through
  the model config (``--set gradient_checkpointing=true --set lora_rank=8``).
- **Outputs.** ``OUT`` ends as a checkpoint (``config.json``, ``model.safetensors``,
  ``tokenizer.json``, ``processor_config.json``) plus ``train_info.json`` (train and model
  config, seed, data, versions, hardware, measured speed, validation metrics) and TensorBoard
  logs in ``OUT/logs``. ``OUT/checkpoints/step-N`` hold resumable states (weights, optimiser,
  schedule, sampler and RNG): rerunning the same command resumes from the newest one.
- **DAgger** (``--dagger K``): after the first ``steps`` the current policy drives
  ``dagger_episodes`` training routes in the simulator, the expert (running beside it)
  relabels every frame, the new frames join the training set and training goes on for
  ``dagger_steps``; K rounds. One cosine schedule spans all rounds. With ``dagger_focus``
  the routes of rounds 2..K lean towards the scenario families the previous round drove
  worst (its route results; ``OUT/dagger/round-k.focus.json`` records the draw).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from drivevla.core.errors import DriveVLAError
from drivevla.core.execution import Executor
from drivevla.core.jsonio import write_json_atomic
from drivevla.core.paths import exclusive_dir
from drivevla.core.provenance import provenance
from drivevla.datasets.collect import CollectConfig, collect
from drivevla.datasets.nuscenes_episodes import episode_metas
from drivevla.datasets.reader import SkipReport, open_dataset
from drivevla.language.explanations import explanation_corpus
from drivevla.language.instructions import instruction_corpus
from drivevla.perception.augment import PoseWarpBank
from drivevla.sim_bridge.embedded.suites import load_suite
from drivevla.training.config import TrainConfig
from drivevla.training.data import (
    FrameTensors,
    frame_weights,
    instruction_texts,
    load_frames,
    memory_of,
)
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import (
    CheckpointError,
    DriveVLAPolicy,
    load_state_checked,
    load_weights,
    upgrade_state_dict,
)
from drivevla.vla.processor_drivevla import DriveVLAProcessor

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
INFO_FILE = "train_info.json"


class UnsafeTrainerStateError(DriveVLAError, ValueError):
    """A checkpoint's ``trainer_state.pt`` holds more than tensors and plain values (a pickle
    that could run code when loaded): it is refused, never unpickled."""


def load_trainer_state(path: Path) -> dict[str, Any]:
    """``trainer_state.pt`` read with ``weights_only=True``: tensors, numbers, strings and
    containers only; anything else (an object whose unpickling would run code) raises
    :class:`UnsafeTrainerStateError` naming the file, before any of it runs."""
    import pickle

    import torch

    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsafeTrainerStateError(
            f"{path}: refused to load: it holds objects other than tensors and plain values "
            f"({first}); delete this checkpoint folder, or start a new --out"
        ) from None
    except (RuntimeError, EOFError) as exc:  # torch's message for a truncated or torn file
        raise CheckpointError(
            f"{path}: not a readable trainer state ({exc}); delete this checkpoint folder to "
            "resume from the one before"
        ) from exc
    if not isinstance(state, dict) or not {"optimizer", "scheduler", "step"} <= set(state):
        raise UnsafeTrainerStateError(
            f"{path}: not a trainer state (expected a mapping with optimizer, scheduler, step)"
        )
    return state


# ---------------------------------------------------------------------------------- training


def _lr_lambda(cfg: TrainConfig):
    def fn(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps)
        cos = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cos

    return fn


def _build_processor(model_config: DriveVLAConfig, frames: FrameTensors):
    """The default family's BPE tokenizer: trained on the training phrasings (never on the
    held-out ones) plus the dataset's own instructions and explanations."""

    corpus = (instruction_corpus("train") + explanation_corpus("all")
              + sorted(set(frames.instruction)) + sorted(set(frames.explanation)))
    return DriveVLAProcessor.build(model_config, corpus)


def _checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


class Trainer:
    def __init__(self, cfg: TrainConfig, executor: Executor | None = None) -> None:
        import torch
        from accelerate import Accelerator

        self.cfg, self.executor = cfg, executor  # executor: where DAgger episodes run
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.accelerator = Accelerator(mixed_precision=cfg.mixed_precision,
                                       log_with="tensorboard", project_dir=str(self.out))
        self.model_config = DriveVLAConfig().with_overrides(cfg.model)
        # what skip_corrupt left out, by dataset and split (see _load)
        self.skipped: dict[str, dict[str, dict[str, Any]]] = {}
        self.model_config.vocabularies.require_code_order("training")
        self._check_out_dir()

    # ------------------------------------------------------------------ run identity
    def _identity(self) -> dict[str, Any]:
        d = self.cfg.to_dict()
        # "out" is where the run lives, not what it is: a moved or copied run dir resumes;
        # skip_corrupt changes nothing on sound data (what it left out is in train_info.json)
        for k in ("out", "progress", "log_every", "save_every", "keep_checkpoints", "threads",
                  "dagger_workers", "cache_dir", "skip_corrupt"):
            d.pop(k)
        # as run.json reads back (tuples in model overrides become lists): no false "changes";
        # the model config by dotted key (model.head, loss.w_intent, ...)
        return json.loads(json.dumps({"train": d, "model": self.model_config.flat()}))

    def _check_out_dir(self) -> None:
        path = self.out / "run.json"
        ident = self._identity()
        if path.is_file():
            old = self._with_defaults(json.loads(path.read_text(encoding="utf-8")), ident)
            if old != ident:
                changed = sorted(
                    f"{sec}.{k}" for sec in ident for k in set(ident[sec]) | set(old.get(sec, {}))
                    if ident[sec].get(k) != old.get(sec, {}).get(k))
                raise ValueError(
                    f"{self.out} holds a training run with another config (differs in "
                    f"{changed}); use another --out directory to start a new run"
                )
        elif self.accelerator.is_main_process:
            write_json_atomic(path, ident)

    @staticmethod
    def _with_defaults(old: dict[str, Any], ident: dict[str, Any]) -> dict[str, Any]:
        """``old`` (a run.json) with each key of ``ident`` it lacks at today's default: a
        run written before an option existed resumes, since an option's default keeps the
        behaviour that run had. A key it holds still has to match."""
        defaults = json.loads(json.dumps({"train": TrainConfig(data=("-",)).to_dict(),
                                          "model": DriveVLAConfig().flat()}))
        filled = {sec: dict(vals) for sec, vals in old.items()}
        if "model" in filled and not any("." in k for k in filled["model"]):
            # a run.json from before the sectioned config: its flat model keys, read as today
            filled["model"] = DriveVLAConfig.from_dict(filled["model"]).flat()
        for sec, keys in ident.items():
            if sec in filled:
                for k in keys:
                    if k not in filled[sec] and k in defaults.get(sec, {}):
                        filled[sec][k] = defaults[sec][k]
        return filled

    # ------------------------------------------------------------------ data
    def _load(self, roots: list[str], split: str) -> FrameTensors | None:
        """Frames of ``split`` of each dataset; corrupt data raises, or with ``skip_corrupt``
        is left out and listed in :attr:`skipped` (written to train_info.json)."""
        parts = []
        for root in roots:
            report = SkipReport()
            try:
                parts.append(load_frames(root, split, self.model_config, self.cfg.cache_dir,
                                         self.cfg.progress and self.accelerator.is_main_process,
                                         skip_corrupt=self.cfg.skip_corrupt, skipped=report))
            except ValueError as exc:
                if split == "train" or isinstance(exc, DriveVLAError):
                    raise
                logger.info("no %s frames in %s (%s)", split, root, exc)
            finally:
                if report:
                    self.skipped.setdefault(str(root), {})[split] = report.to_dict()
        return FrameTensors.concat(parts) if parts else None

    def _dagger_dirs(self) -> list[Path]:
        return [self.out / "dagger" / f"round-{k}" for k in range(1, self.cfg.dagger + 1)]

    def _collect_round(self, k: int, policy_dir: Path) -> Path:
        cams = tuple(dataclasses.asdict(c) for c in self.model_config.model.camera_specs())
        target = self._dagger_dirs()[k - 1]
        suite_file = self._round_suite(k)
        logger.info("DAgger round %d: the policy drives %d episodes (expert share %.2f)",
                    k, self.cfg.dagger_episodes, self.cfg.dagger_beta)
        collect(CollectConfig(suite=str(suite_file), episodes=self.cfg.dagger_episodes,
                              out=str(target), workers=self.cfg.dagger_workers, cameras=cams,
                              policy=str(policy_dir.resolve()), beta=self.cfg.dagger_beta,
                              split_seed=self.cfg.seed, max_steps=self.cfg.dagger_max_steps,
                              show_progress=self.cfg.progress), self.executor)
        return target

    def _round_suite(self, k: int) -> Path:
        """``dagger_episodes`` routes of ``dagger_suite`` drawn without replacement (seeded by
        the run seed and round): uniformly, so that every round covers the families in
        proportion, or with ``dagger_focus`` partly towards the families the policy drove
        worst in round ``k - 1`` (see :func:`dagger_route_weights`)."""
        import random


        data = load_suite(self.cfg.dagger_suite).to_dict()
        rng = random.Random(f"{self.cfg.seed}-dagger-{k}")
        n = min(self.cfg.dagger_episodes, len(data["routes"]))
        family_scores = None
        if self.cfg.dagger_focus > 0 and k > 1:
            family_scores = round_family_scores(self._dagger_dirs()[k - 2])
        if family_scores is None:  # the draw every recipe before dagger_focus made
            picked = sorted(rng.sample(range(len(data["routes"])), n))
        else:
            families = [r["scenario"] for r in data["routes"]]
            weights = dagger_route_weights(families, family_scores, self.cfg.dagger_focus)
            picked = sorted(weighted_sample(rng, weights, n))
            drawn = {f: sum(families[i] == f for i in picked) for f in sorted(set(families))}
            logger.info("DAgger round %d: round %d's DS by family %s; routes drawn %s", k,
                        k - 1, {f: round(v, 1) for f, v in family_scores.items()}, drawn)
            write_json_atomic(self.out / "dagger" / f"round-{k}.focus.json", {
                "dagger_focus": self.cfg.dagger_focus,
                "previous_round_mean_driving_score": family_scores, "routes_drawn": drawn})
        data["routes"] = [data["routes"][i] for i in picked]
        data["name"] = f"{data['name']}-dagger-round-{k}"
        path = self.out / "dagger" / f"round-{k}.suite.json"
        write_json_atomic(path, data)
        return path

    # ------------------------------------------------------------------ main loop
    def train(self) -> dict[str, Any]:
        """Train (resuming from the newest checkpoint of ``out`` if any, DAgger rounds
        included) and write the final checkpoint and ``train_info.json``. A second training
        run into the same ``out`` while this one runs fails at once
        (:class:`~drivevla.core.paths.OutputFolderBusyError`); the main process holds the lock."""
        lock = (exclusive_dir(self.out, ".lock", what="training run")
                if self.accelerator.is_main_process else contextlib.nullcontext())
        with lock:
            return self._train()

    def _train(self) -> dict[str, Any]:
        import torch
        from tqdm import tqdm

        cfg, acc = self.cfg, self.accelerator
        torch.manual_seed(cfg.seed)
        t_start = time.perf_counter()
        frames = self._load(list(cfg.data), "train")
        assert frames is not None
        self.model_config = _with_dataset_rig(self.model_config, cfg.data[0], cfg.skip_corrupt)
        ckpts = _checkpoints(self.out)
        resume = ckpts[-1] if ckpts else None
        processor = (DriveVLAProcessor.load(resume, self.model_config) if resume is not None
                     else _build_processor(self.model_config, frames))
        model, opt, sched, gen, n_params = self._build(processor)
        texts = (instruction_texts(processor, cfg.refusal_text_pool, cfg.seed,
                                   cfg.refusal_text_stacked_share)
                 if cfg.refusal_text_batch > 0 else None)
        step = 0 if resume is None else self._resume(resume, model, opt, sched, gen)
        # DAgger rounds already collected by an earlier (interrupted) run of this command
        for d in self._dagger_dirs():
            if ((d / "meta" / "info.json").is_file()
                    and step > cfg.steps + (int(d.name.split("-")[1]) - 1) * cfg.dagger_steps):
                frames = FrameTensors.concat([frames, self._load([str(d)], "all")])
        weights = frame_weights(frames, cfg)
        warp = self._pose_warp()
        acc.init_trackers("logs", config={k: str(v) for k, v in cfg.to_dict().items()})
        bar = tqdm(total=cfg.total_steps, initial=step, desc="train", unit="step",
                   disable=not (cfg.progress and acc.is_main_process))
        t_loop, steps_timed = time.perf_counter(), 0
        model.train()
        while step < cfg.total_steps:
            boundary = self._round_boundary(step)
            if boundary is not None:  # a DAgger round starts here
                self._save(model, processor, opt, sched, gen, step, acc)
                new = self._collect_round(boundary, _checkpoints(self.out)[-1])
                frames = FrameTensors.concat([frames, self._load([str(new)], "all")])
                weights = frame_weights(frames, cfg)
                model.train()
            index = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen)
            samples = frames.take(index, memory_of(self.model_config))
            if warp is not None:
                samples = warp(samples, cfg.pose_aug_prob, gen)
            logs = self._step(model, opt, sched, processor.batch_from_samples(samples), texts,
                              gen, step)
            step += 1
            steps_timed += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.total_steps:
                logs["lr"] = sched.get_last_lr()[0]
                logs["samples_per_s"] = (steps_timed * cfg.batch_size
                                         / max(time.perf_counter() - t_loop, 1e-9))
                acc.log({f"train/{k}": v for k, v in logs.items()}, step=step)
                bar.set_postfix(loss=f"{logs['loss']:.3f}", ade=f"{logs['l1_waypoints_m']:.2f}",
                                reason=f"{logs['reason_acc']:.2f}")
            if step % cfg.save_every == 0 and step < cfg.total_steps:
                self._save(model, processor, opt, sched, gen, step, acc)
        bar.close()
        self._save(model, processor, opt, sched, gen, step, acc)
        policy = DriveVLAPolicy(acc.unwrap_model(model), processor)
        val = self._validate(policy)
        if val:
            acc.log({f"val/{k}": v for k, v in val.items()}, step=step)
        acc.end_training()
        return self._write_info(policy, n_params, frames, val, t_start, t_loop, steps_timed)

    def _build(self, processor):
        """(model, optimizer, scheduler, generator, parameter count), prepared by accelerate;
        weight decay on matrices only."""
        import torch

        cfg, acc = self.cfg, self.accelerator
        model = DriveVLAModel(self.model_config, processor.vocab_size)
        n_params = sum(p.numel() for p in model.parameters())
        trainable = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in trainable if p.dim() >= 2]
        no_decay = [p for p in trainable if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
        model, opt, sched = acc.prepare(model, opt, sched)
        gen = torch.Generator().manual_seed(cfg.seed + acc.process_index)
        return model, opt, sched, gen, n_params

    def _resume(self, resume: Path, model, opt, sched, gen) -> int:
        """Weights, optimizer, scheduler and random states of checkpoint ``resume``; its step."""
        import torch

        state = load_trainer_state(resume / STATE_FILE)
        load_state_checked(self.accelerator.unwrap_model(model),
                           upgrade_state_dict(load_weights(resume / "model.safetensors")),
                           str(resume))
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step = int(state["step"])
        logger.info("resuming %s from %s (step %d)", self.out, resume, step)
        return step

    def _step(self, model, opt, sched, batch, texts, gen, step: int) -> dict[str, float]:
        """One optimizer step on ``batch`` (+ ``refusal_text_batch`` rendered texts)."""
        import torch

        cfg, acc = self.cfg, self.accelerator
        if texts is not None:
            j = torch.randint(len(texts["aux_instruction_ids"]), (cfg.refusal_text_batch,),
                              generator=gen)
            batch |= {k: v[j] for k, v in texts.items()}
        batch = {k: v.to(acc.device) if isinstance(v, torch.Tensor) else v
                 for k, v in batch.items()}
        with acc.autocast():
            loss, logs = model(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step}: the loss is {float(loss)}; logs {logs}")
        acc.backward(loss)
        if cfg.grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        return logs

    def _pose_warp(self):
        if self.cfg.pose_aug_prob <= 0:
            return None

        cams = list(self.model_config.model.camera_specs())
        m = self.model_config.model
        return PoseWarpBank(cams, (m.image_height, m.image_width),
                            self.cfg.pose_aug_lateral_m, self.cfg.pose_aug_yaw_deg)

    def _round_boundary(self, step: int) -> int | None:
        cfg = self.cfg
        for k in range(1, cfg.dagger + 1):
            if step == cfg.steps + (k - 1) * cfg.dagger_steps:
                return k
        return None

    def _save(self, model, processor, opt, sched, gen, step: int, acc) -> None:
        import torch


        acc.wait_for_everyone()
        if not acc.is_main_process:
            return
        root = self.out / "checkpoints"
        target = root / f"step-{step:06d}"
        tmp = root / f".step-{step:06d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        unwrapped = acc.unwrap_model(model)
        was_training = unwrapped.training
        DriveVLAPolicy(unwrapped, processor).save_pretrained(tmp)
        unwrapped.train(was_training)
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                    "step": step}, tmp / STATE_FILE)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        # the DAgger policies stay: their datasets name them
        for old in _checkpoints(self.out)[: -self.cfg.keep_checkpoints]:
            if not self._is_round_start(old):
                shutil.rmtree(old, ignore_errors=True)

    def _is_round_start(self, path: Path) -> bool:
        step = int(path.name.split("-")[1])
        return self._round_boundary(step) is not None

    def _validate(self, policy) -> dict[str, float]:
        """Open-loop metrics on the datasets' ``val`` split (first ``val_frames`` frames)."""
        import torch

        with torch.no_grad():
            return self._validate_frames(policy)

    def _validate_frames(self, policy) -> dict[str, float]:
        import torch

        if self.cfg.val_frames <= 0:
            return {}
        frames = self._load(list(self.cfg.data), "val")
        if frames is None:
            return {}

        model = policy.model.eval()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        n = min(len(frames), self.cfg.val_frames)
        for start in range(0, n, 128):
            index = torch.arange(start, min(n, start + 128))
            batch = policy.processor.batch_from_samples(
                frames.take(index, memory_of(policy.config)))
            batch = {k: v.to(self.accelerator.device) if isinstance(v, torch.Tensor) else v
                     for k, v in batch.items()}
            out = model.act(batch)
            err = (out.waypoints - batch["target_waypoints"]).norm(dim=-1)
            m = batch["waypoint_mask"]
            b = len(index)
            ade = float((err * m).sum() / m.sum().clamp(min=1))
            sums["ade_m"] = sums.get("ade_m", 0.0) + ade * b
            sums["fde_m"] = sums.get("fde_m", 0.0) + float(err[:, -1].mean()) * b
            sums["speed_l1_mps"] = sums.get("speed_l1_mps", 0.0) + float(
                ((out.speeds - batch["target_speeds"]).abs() * m).sum() / m.sum().clamp(min=1)) * b
            for key, pred, target in (("meta_acc", out.meta_logits.argmax(-1),
                                        batch["meta_action"]),
                                       ("reason_acc", out.reason, batch["reason"])):
                ok = target != -100
                acc = float((pred[ok] == target[ok]).float().mean()) if ok.any() else 0
                sums[key] = sums.get(key, 0.0) + acc * b
            if out.refusal_logit is not None:  # counts, turned into precision/recall below
                refused = model.refused_index
                said = out.reason == refused
                truth = batch["reason"] == refused
                for key, value in (("refusal_tp", said & truth), ("refusal_said", said),
                                   ("refusal_true", truth)):
                    counts[key] = counts.get(key, 0) + int(value.sum())
        out_metrics = {k: v / n for k, v in sums.items()} | {"frames": float(n)}
        if counts:
            tp = counts["refusal_tp"]
            out_metrics["refusal_precision"] = tp / max(counts["refusal_said"], 1)
            out_metrics["refusal_recall"] = tp / max(counts["refusal_true"], 1)
        return out_metrics

    def _write_info(self, policy, n_params, frames, val, t_start, t_loop, steps_timed) -> dict:

        loop_s = time.perf_counter() - t_loop
        info = {
            "train_config": self.cfg.to_dict(),
            "model_config": self.model_config.to_dict(),
            "seed": self.cfg.seed,
            "parameters": n_params,
            "data": {"datasets": list(self.cfg.data),
                     "dagger_datasets": [str(d) for d in self._dagger_dirs() if d.is_dir()],
                     "train_frames": len(frames),
                     # by dataset and split: what skip_corrupt left out (empty: nothing)
                     "skipped_as_corrupt": self.skipped},
            "wall_time_s": time.perf_counter() - t_start,
            "loop_time_s_this_run": loop_s,
            "samples_per_s_this_run": steps_timed * self.cfg.batch_size / max(loop_s, 1e-9),
            "validation": val,
            "provenance": provenance(),
        }
        if self.accelerator.is_main_process:
            policy.save_pretrained(self.out, extra={"train": {"steps": self.cfg.total_steps,
                                                              "seed": self.cfg.seed}})
            # versions and hardware may hold objects json does not know: written as text
            write_json_atomic(self.out / INFO_FILE, json.loads(json.dumps(info, default=str)))
        return info


def _with_dataset_rig(config: DriveVLAConfig, root: str, skip_corrupt: bool) -> DriveVLAConfig:
    """``config`` with the training data's camera rig: DAgger, evaluation and the CARLA agent
    render the cameras the weights learn from."""
    specs = {s.name: s for s in open_dataset(root, skip_corrupt).camera_specs}
    rig = [dataclasses.asdict(specs[n]) for n in config.model.cameras]
    return config.with_overrides({"model.camera_rig": rig})


# ---------------------------------------------------------------------------------- CLI


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse (numbers, lists, true/false)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    DriveVLAConfig().with_overrides(out)  # unknown keys / bad values fail here, early
    return out


def round_family_scores(dataset_dir: Path) -> dict[str, float]:
    """Mean driving score (0-100) per scenario family of a collected DAgger round, from the
    route results its ``meta/episodes.jsonl`` records (read as the dataset reader does: a
    rewritten episode counts once, with its latest line)."""

    scores: dict[str, list[float]] = {}
    for ep in episode_metas(Path(dataset_dir)):
        scores.setdefault(ep["scenario"], []).append(float(ep["route_result"]["driving_score"]))
    return {f: sum(v) / len(v) for f, v in sorted(scores.items())}


def dagger_route_weights(families: list[str], family_scores: dict[str, float] | None,
                         focus: float) -> list[float]:
    """A sampling weight per route: ``(1 - focus)`` spread evenly over the routes plus
    ``focus`` spread over the families in proportion to ``1 - mean DS / 100`` (then evenly
    over each family's routes). Families the previous round did not drive count as its mean
    failure; with no scores, or none failing, the weights are uniform."""
    n = len(families)
    uniform = [1.0 / n] * n
    if not family_scores or focus <= 0:
        return uniform
    fail = {f: max(0.0, 1.0 - s / 100.0) for f, s in family_scores.items()}
    mean_fail = sum(fail.values()) / len(fail)
    per_family = {f: fail.get(f, mean_fail) for f in set(families)}
    total = sum(per_family.values())
    if total <= 0:
        return uniform
    counts = collections.Counter(families)
    return [(1.0 - focus) / n + focus * per_family[f] / total / counts[f] for f in families]


def weighted_sample(rng: Any, weights: list[float], n: int) -> list[int]:
    """``n`` distinct indices drawn in proportion to ``weights`` (Efraimidis-Spirakis keys:
    ``u ** (1 / w)``, the largest win); zero weights are drawn last."""
    keys = [(rng.random() ** (1.0 / w) if w > 0 else -rng.random(), i)
            for i, w in enumerate(weights)]
    return [i for _, i in sorted(keys, reverse=True)[:n]]
