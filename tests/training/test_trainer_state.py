"""Resume and caches never unpickle: a crafted ``trainer_state.pt`` or frame cache is refused
before it runs code."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest
import torch

from drivevla.training import train as train_mod
from drivevla.training.train import STATE_FILE, UnsafeTrainerStateError, load_trainer_state


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _crafted(folder: Path, marker: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"optimizer": _Payload(marker), "scheduler": {}, "step": 2}, folder / STATE_FILE)
    return folder


def test_a_crafted_pickle_in_trainer_state_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = _crafted(tmp_path / "checkpoints" / "step-000002", marker)
    with pytest.raises(UnsafeTrainerStateError, match=f"{STATE_FILE}: refused to load"):
        load_trainer_state(ckpt / STATE_FILE)
    # the trainer's own resume path: the state is read first, so no model is needed
    fake = types.SimpleNamespace(accelerator=None, out=tmp_path)
    with pytest.raises(UnsafeTrainerStateError, match="refused"):
        train_mod.Trainer._resume(fake, ckpt, None, None, None, None)
    assert not marker.exists(), "unpickling the crafted trainer state ran its payload"


def test_a_real_trainer_state_loads_with_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 2))
    gen = torch.Generator().manual_seed(0)
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "step": 7}, tmp_path / STATE_FILE)
    state = load_trainer_state(tmp_path / STATE_FILE)
    assert state["step"] == 7
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(state["generator"])


def test_a_state_that_is_not_a_trainer_state_is_named(tmp_path):
    torch.save([1, 2, 3], tmp_path / STATE_FILE)
    with pytest.raises(UnsafeTrainerStateError, match="not a trainer state"):
        load_trainer_state(tmp_path / STATE_FILE)


def test_a_crafted_pickle_in_the_frame_cache_never_runs_and_is_rebuilt(tiny_dataset, tmp_path):
    from drivevla.training.data import load_frames
    from drivevla.vla.configuration_drivevla import DriveVLAConfig

    config = DriveVLAConfig.from_dict({"model": {"image_height": 32, "image_width": 48}})
    cache = tmp_path / "cache"
    first = load_frames(tiny_dataset, "train", config, cache_dir=str(cache), progress=False)
    (cache_file,) = cache.glob("frames-train-*.pt")
    marker = tmp_path / "pwned"
    torch.save({"ego": _Payload(marker)}, cache_file)
    again = load_frames(tiny_dataset, "train", config, cache_dir=str(cache), progress=False)
    assert not marker.exists(), "unpickling the crafted frame cache ran its payload"
    assert torch.equal(again.images, first.images)
