"""``drivevla train``: checkpoints that load and drive, bit-exact resume, refused config
changes, reason balancing, the frame cache and the CLI (DAgger: test_dagger.py).

Everything runs a tiny model (32x48 images, a one-layer LM) for a few steps on the tiny
dataset of tests/conftest.py; torch runs on one thread (much faster on a busy small CPU)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from drivevla.core.frames import world_to_ego
from drivevla.core.paths import OutputFolderBusyError, exclusive_dir
from drivevla.datasets.reader import open_dataset
from drivevla.training import train as train_mod
from drivevla.training.data import keyframe_weights, load_frames, sampling_weights
from drivevla.training.train import TrainConfig, Trainer, parse_overrides
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from support.train_parts import CHECKPOINT_FILES, TINY, n_frames
from support.train_parts import train_cfg as _cfg

VAL_EPISODE = "000005"


def _move_episodes(root: Path, ids: list[str], to: str) -> None:
    """Reassign episodes to split ``to`` in meta/info.json."""
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    for name, members in info["splits"].items():
        info["splits"][name] = [e for e in members if e not in ids]
    info["splits"][to] = sorted(info["splits"][to] + ids)
    path.write_text(json.dumps(info))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def with_val(tiny_dataset, tmp_path_factory) -> Path:
    """The tiny dataset with one episode in the val split."""
    dst = tmp_path_factory.mktemp("with-val") / "ds"
    shutil.copytree(tiny_dataset, dst)
    _move_episodes(dst, [VAL_EPISODE], "val")
    return dst


@pytest.fixture(scope="module")
def run_a(with_val, frame_cache, tmp_path_factory):
    """4 steps, a resumable checkpoint every 2, validation on 8 frames."""
    out = tmp_path_factory.mktemp("run-a") / "out"
    cfg = _cfg(with_val, out, frame_cache, steps=4, save_every=2, val_frames=8)
    info = Trainer(cfg).train()
    return cfg, out, info


# ------------------------------------------------------------------------ checkpoint


def _sim_observation():
    from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv

    env = EmbeddedDrivingEnv(scenario="intersection", intent="turn_left", max_steps=40,
                             cameras=[{"name": "front", "width": 64, "height": 48}])
    obs, info = env.reset(seed=12)
    return env, obs, info


def _with_rig(model: dict, data) -> dict:
    """The model config a run on ``data`` records: ``model`` with the data's camera rig."""
    rig = [dataclasses.asdict(s) for s in open_dataset(data).camera_specs]
    return DriveVLAConfig().with_overrides({**model, "model.camera_rig": rig}).to_dict()


def test_a_short_run_writes_a_checkpoint_that_loads_and_drives(run_a, with_val):
    from safetensors import safe_open

    from drivevla.agents.agent import Agent
    from drivevla.vla.policy import DriveVLAPolicy

    cfg, out, returned = run_a
    for name in (*CHECKPOINT_FILES, "train_info.json", "run.json"):
        assert (out / name).is_file(), name
    assert list((out / "logs").rglob("events.out.tfevents.*")), "no TensorBoard log"

    info = json.loads((out / "train_info.json").read_text())
    assert info["train_config"] == cfg.to_dict()
    assert info["model_config"] == _with_rig(TINY, cfg.data[0])
    assert info["seed"] == 0
    assert {"versions", "hardware"} <= set(info["provenance"])
    assert info["data"] == {"datasets": [str(with_val)], "dagger_datasets": [],
                            "train_frames": n_frames(with_val, "train"), "skipped_as_corrupt": {}}
    assert info["data"]["train_frames"] < n_frames(with_val, None)  # val frames held out
    val = info["validation"]
    assert val["frames"] == 8.0
    assert set(val) == {"ade_m", "fde_m", "speed_l1_mps", "meta_acc", "reason_acc", "frames"}
    assert all(np.isfinite(v) and v >= 0 for v in val.values())
    assert returned["validation"] == val

    # resumable states at steps 2 and 4; the final weights are step 4's, and training moved them
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step-000002", "step-000004"]
    final, mid = _weights(out), _weights(out / "checkpoints" / "step-000002")
    last = _weights(out / "checkpoints" / "step-000004")
    assert final.keys() == last.keys()
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert any(not torch.equal(final[k], mid[k]) for k in final)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["train"]) == {"steps": 4, "seed": 0}

    policy = DriveVLAPolicy.from_pretrained(out)
    assert policy.config.model.image_height == 32 and policy.config.model.lm["hidden_size"] == 32
    assert info["parameters"] == sum(p.numel() for p in policy.model.parameters())
    env, obs, sim_info = _sim_observation()
    try:
        agent = Agent(policy)
        agent.reset(env)
        for _ in range(3):
            observation = env.make_observation(obs, sim_info)
            control, decision = agent.step(observation)
            assert decision.waypoints.shape == (6, 2) and np.isfinite(decision.waypoints).all()
            assert decision.target_speeds.shape == (6,) and (decision.target_speeds >= 0).all()
            assert 0.0 <= control.throttle <= 1.0 and -1.0 <= control.steer <= 1.0
            obs, _, terminated, truncated, sim_info = env.step(control)
            assert not (terminated or truncated)
        assert isinstance(policy.explain(), str)
    finally:
        env.close()


def test_resume_from_the_middle_checkpoint_is_bit_exact(run_a, tmp_path, monkeypatch, caplog):
    cfg, out, _ = run_a
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "model.safetensors").unlink()
    (copy / "train_info.json").unlink()
    shutil.rmtree(copy / "checkpoints" / "step-000004")

    def no_rebuild(*a, **k):
        raise AssertionError("a resumed run must reuse the checkpoint's tokenizer")

    monkeypatch.setattr(train_mod, "_build_processor", no_rebuild)
    caplog.set_level(logging.INFO, logger="drivevla.training.train")
    Trainer(dataclasses.replace(cfg, out=str(copy))).train()
    assert any("resuming" in r.getMessage() and "(step 2)" in r.getMessage()
               for r in caplog.records)
    a, b = _weights(out), _weights(copy)
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"resumed weights differ from the uninterrupted run: {differ[:5]}"
    assert json.loads((copy / "train_info.json").read_text())["validation"] == json.loads(
        (out / "train_info.json").read_text())["validation"]


# ------------------------------------------------------------------------ refused inputs


def test_another_config_in_the_same_out_dir_is_refused_by_name(tiny_dataset, frame_cache,
                                                                tmp_path):
    cfg = _cfg(tiny_dataset, tmp_path / "out", frame_cache)
    Trainer(cfg)
    run_json = (tmp_path / "out" / "run.json").read_text()
    with pytest.raises(ValueError, match=r"train\.lr"):
        Trainer(dataclasses.replace(cfg, lr=2e-3))
    with pytest.raises(ValueError, match=r"model\.image_height"):
        Trainer(dataclasses.replace(cfg, model={**TINY, "image_height": 64}))
    with pytest.raises(ValueError, match=r"train\.steps"):
        Trainer(dataclasses.replace(cfg, steps=5))
    assert (tmp_path / "out" / "run.json").read_text() == run_json
    # how a run is watched or where it lives is not what it is
    Trainer(dataclasses.replace(cfg, progress=True, log_every=7, save_every=3, threads=1,
                                keep_checkpoints=5, cache_dir=str(tmp_path / "other")))
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "out", moved)
    Trainer(dataclasses.replace(cfg, out=str(moved)))


def test_a_second_training_run_into_a_busy_out_dir_fails_and_writes_nothing(
        tiny_dataset, frame_cache, tmp_path):
    cfg = _cfg(tiny_dataset, tmp_path / "out", frame_cache, steps=1)
    trainer = Trainer(cfg)
    with exclusive_dir(tmp_path / "out", ".lock", what="training run"):  # as a first run holds it
        with pytest.raises(OutputFolderBusyError, match="another training run"):
            trainer.train()
        assert not (tmp_path / "out" / "checkpoints").exists()
    trainer.train()  # free again
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_tuple_model_overrides_do_not_read_as_a_changed_config(tiny_dataset, frame_cache,
                                                               tmp_path):
    cfg = _cfg(tiny_dataset, tmp_path / "out", frame_cache,
               model={**TINY, "cameras": ("front",), "ego_scale": (10.0, 3.0, 0.5, 1.0)})
    Trainer(cfg)
    Trainer(cfg)  # run.json stores lists: the same tuples must compare equal


def test_run_json_from_before_an_option_existed_reads_it_at_its_default(
        tiny_dataset, frame_cache, tmp_path):
    cfg = _cfg(tiny_dataset, tmp_path / "out", frame_cache)
    Trainer(cfg)
    path = tmp_path / "out" / "run.json"
    old = json.loads(path.read_text())
    # as a run written before these options existed: their keys are absent
    del old["train"]["dagger_focus"], old["model"]["model.text_head_dim"]
    path.write_text(json.dumps(old))
    Trainer(cfg)  # both at their defaults: the same run
    with pytest.raises(ValueError, match=r"train\.dagger_focus"):
        Trainer(dataclasses.replace(cfg, dagger_focus=0.5))
    with pytest.raises(ValueError, match=r"model\.model\.text_head_dim"):
        Trainer(dataclasses.replace(cfg, model={**TINY, "model.text_head_dim": 7}))
    old["train"]["lr"] = cfg.lr * 2  # a key the old run holds still has to match
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"train\.lr"):
        Trainer(cfg)


def test_parse_overrides_types_and_unknown_keys():
    got = parse_overrides(["head=regression", "lora_rank=8", "freeze_vision=true",
                           'lm={"hidden_size": 32, "num_hidden_layers": 1}', "w_meta=0.5"])
    assert got == {"head": "regression", "lora_rank": 8, "freeze_vision": True,
                   "lm": {"hidden_size": 32, "num_hidden_layers": 1}, "w_meta": 0.5}
    with pytest.raises(ValueError, match="no_such_key"):
        parse_overrides(["lora_rank=2", "no_such_key=3"])
    with pytest.raises(ValueError, match="head"):
        parse_overrides(["head=transformer"])
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["lora_rank"])


def test_unknown_model_override_in_the_train_config_is_named(tiny_dataset, frame_cache,
                                                             tmp_path):
    with pytest.raises(ValueError, match="bogus_key"):
        Trainer(_cfg(tiny_dataset, tmp_path / "out", frame_cache,
                     model={**TINY, "bogus_key": 1}))


def test_empty_training_data_is_refused(tiny_copy, frame_cache, tmp_path):
    with pytest.raises(ValueError, match="no training data"):
        TrainConfig(data=(), out=str(tmp_path / "x"))
    for bad in ({"steps": 0}, {"batch_size": 0}, {"mixed_precision": "fp8"},
                {"dagger_beta": 1.5}, {"refusal_text_stacked_share": 1.2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            _cfg(tiny_copy, tmp_path / "x", frame_cache, **bad)
    # a dataset whose train split is empty: every episode moved to val
    _move_episodes(tiny_copy, [f"{i:06d}" for i in range(6)], "val")
    with pytest.raises(ValueError, match="split 'train' has no frames"):
        Trainer(_cfg(tiny_copy, tmp_path / "out", frame_cache)).train()


# ------------------------------------------------------------------------ sampling


def test_sampling_weights_favour_rare_reasons():
    reasons = torch.tensor([0] * 8 + [3] * 4 + [7] * 1 + [-100] * 2)
    w = sampling_weights(reasons, 0.5)
    assert w.shape == (15,) and w.dtype == torch.double
    w0, w3, w7, wu = float(w[0]), float(w[8]), float(w[12]), float(w[13])
    assert w7 > wu > w3 > w0  # rarer class, larger weight; unlabelled frames are a class
    assert (w[:8] == w0).all() and (w[8:12] == w3).all() and (w[13:] == wu).all()
    assert w7 / w0 == pytest.approx(8 ** 0.5) and w3 / w0 == pytest.approx(2 ** 0.5)
    # exponent 1: every class gets the same total probability mass
    w1 = sampling_weights(reasons, 1.0)
    totals = [float(w1[reasons == r].sum()) for r in (0, 3, 7, -100)]
    assert totals == pytest.approx([totals[0]] * 4)
    # exponent 0 (and below): uniform
    for e in (0.0, -1.0):
        u = sampling_weights(reasons, e)
        assert torch.equal(u, torch.ones(15, dtype=torch.double))
    # the sampler draws rare frames far more often than their share with balancing on
    g = torch.Generator().manual_seed(0)
    draws = torch.multinomial(w1, 4000, replacement=True, generator=g)
    assert float((reasons[draws] == 7).float().mean()) == pytest.approx(0.25, abs=0.04)


def test_keyframe_weights_favour_frames_where_the_expert_changes_speed():
    speed = torch.tensor([10.0, 10.0, 10.0, 0.0, 20.0, 10.0])
    plans = torch.tensor([10.0, 12.5, 15.0, 3.0, 5.0, 10.0])  # speed 1.5 s ahead
    targets = torch.zeros(6, 6)
    targets[:, 2] = plans
    targets[5] = torch.tensor([0.0, 0.0, 10.0, 30.0, 30.0, 30.0])  # later changes: not keys
    w = keyframe_weights(speed, targets, 3.0)
    assert w.tolist() == pytest.approx([1.0, 2.5, 4.0, 1 + 3 * 0.6, 4.0, 1.0])
    with pytest.raises(ValueError, match="keyframe_weight"):
        TrainConfig(data=("x",), keyframe_weight=-1.0)


def test_pose_augmentation_warps_the_training_batches(tiny_dataset, frame_cache, tmp_path,
                                                      monkeypatch):
    from drivevla.perception import augment

    seen = []
    real = augment.PoseWarpBank.__call__

    def spy(self, batch, prob, generator):
        out = real(self, batch, prob, generator)
        seen.append((self.size, prob, batch, out))
        return out

    monkeypatch.setattr(augment.PoseWarpBank, "__call__", spy)
    out_dir = tmp_path / "out"
    Trainer(_cfg(tiny_dataset, out_dir, frame_cache, steps=3, pose_aug_prob=1.0,
                 pose_aug_lateral_m=0.5, pose_aug_yaw_deg=3.0)).train()
    assert len(seen) == 3
    size = (TINY["image_height"], TINY["image_width"])
    for got_size, prob, before, after in seen:
        assert got_size == size and prob == 1.0
        assert not torch.equal(before["images"], after["images"])
        assert not torch.allclose(before["target_waypoints"], after["target_waypoints"])
    info = json.loads((out_dir / "train_info.json").read_text())
    assert info["train_config"]["pose_aug_prob"] == 1.0
    for bad in (dict(pose_aug_prob=1.5), dict(pose_aug_lateral_m=3.0),
                dict(pose_aug_yaw_deg=-1.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(data=("x",), **bad)


# ------------------------------------------------------------------------ frame cache


def test_frames_match_the_dataset_and_are_cached(tiny_dataset, tmp_path, monkeypatch):
    import torch.nn.functional as F

    from drivevla.datasets import torch_dataset
    from drivevla.datasets.torch_dataset import FrameDataset

    config = DriveVLAConfig.from_dict(TINY)
    cache = tmp_path / "cache"
    frames = load_frames(tiny_dataset, "train", config, cache_dir=str(cache), progress=False)
    files = list(cache.glob("frames-train-32x48-*.pt"))
    assert len(files) == 1
    assert not list(cache.glob("*.tmp"))
    assert not (tiny_dataset / "cache").exists()

    ds = FrameDataset(tiny_dataset, split="train", cameras=["front"], target="expert")
    assert len(frames) == len(ds) and frames.images.shape == (len(ds), 1, 3, 32, 48)
    assert frames.images.dtype == torch.uint8
    for i in (0, len(ds) // 2, len(ds) - 1):
        item = ds[i]
        for key in ("ego", "route", "target_waypoints", "target_speeds", "waypoint_mask"):
            assert torch.equal(getattr(frames, key)[i], item[key]), key
        assert float(frames.heading_change[i]) == float(item["heading_change"])
        assert int(frames.meta_action[i]) == int(item["meta_action"])
        assert int(frames.reason[i]) == int(item["reason"])
        assert frames.instruction[i] == item["instruction"]
        assert frames.explanation[i] == item["explanation"]
        small = F.interpolate(item["images"], size=(32, 48), mode="bilinear",
                              align_corners=False, antialias=True)
        expect = (small * 255).round().clamp(0, 255).to(torch.uint8)
        assert (frames.images[i].int() - expect.int()).abs().max() <= 1
        # schema 2: the perception targets ride along, the raster packed until taken
        taken = frames.take(torch.tensor([i]))
        assert torch.equal(taken["bev"][0], item["bev"])
        for key in ("signal_state", "signal_distance", "lead_present", "lead_distance"):
            assert torch.equal(taken[key][0], item[key]), key

    # the second call reads the cache: decoding is not even possible any more
    class NoDecode:
        def __init__(self, *a, **k):
            raise AssertionError("the frames were decoded again instead of read from cache")

    with monkeypatch.context() as m:
        m.setattr(torch_dataset, "FrameDataset", NoDecode)
        again = load_frames(tiny_dataset, "train", config, cache_dir=str(cache), progress=False)
    _assert_same_frames(frames, again)

    # a torn cache file is ignored and rebuilt
    files[0].write_bytes(b"not a torch file")
    rebuilt = load_frames(tiny_dataset, "train", config, cache_dir=str(cache), progress=False)
    _assert_same_frames(frames, rebuilt)
    torch.load(files[0], weights_only=True)  # readable again

    # a cache written before the odometry input gains it, without decoding an image again
    data = torch.load(files[0], weights_only=True)
    del data["heading_change"], data["lateral_offset"], data["distance_travelled"]
    torch.save(data, files[0])
    with monkeypatch.context() as m:
        m.setattr(torch_dataset.FrameDataset, "images", NoDecode)
        upgraded = load_frames(tiny_dataset, "train", config, cache_dir=str(cache),
                               progress=False)
    _assert_same_frames(frames, upgraded)
    assert {"heading_change", "lateral_offset", "distance_travelled"} <= set(
        torch.load(files[0], weights_only=True))

    # another image size is another cache entry
    other = DriveVLAConfig.from_dict({**TINY, "image_height": 40})
    assert load_frames(tiny_dataset, "train", other, cache_dir=str(cache),
                       progress=False).images.shape[-2:] == (40, 48)
    assert len(list(cache.glob("frames-train-*.pt"))) == 2


def test_an_extended_dataset_invalidates_the_cache(tiny_copy, tmp_path):
    config = DriveVLAConfig.from_dict(TINY)
    first = load_frames(tiny_copy, "all", config, progress=False)  # default: DIR/cache
    assert len(list((tiny_copy / "cache").glob("frames-all-*.pt"))) == 1
    # appending episodes rewrites meta/episodes.jsonl: the old cache must not be reused
    episodes = tiny_copy / "meta" / "episodes.jsonl"
    st = episodes.stat()
    os.utime(episodes, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = load_frames(tiny_copy, "all", config, progress=False)
    assert len(list((tiny_copy / "cache").glob("frames-all-*.pt"))) == 2
    _assert_same_frames(first, second)


def _assert_same_frames(a, b) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y), f.name
        else:
            assert x == y, f.name


# ------------------------------------------------------------------------ CLI


def test_cli_train(tiny_dataset, frame_cache, tmp_path, capsys):
    from drivevla.cli import main

    out = tmp_path / "out"
    lm = json.dumps(TINY["lm"])
    sets = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
            for k, v in TINY.items() if k != "lm"] + [f"lm={lm}"]
    argv = ["train", "--data", str(tiny_dataset), "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--warmup-steps", "1", "--val-frames", "0", "--threads", "1",
            "--cache-dir", str(frame_cache), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    info = json.loads((out / "train_info.json").read_text())
    assert info["train_config"]["steps"] == 2 and info["train_config"]["batch_size"] == 2
    assert info["model_config"] == _with_rig(TINY, tiny_dataset)
    assert all((out / name).is_file() for name in CHECKPOINT_FILES)

    assert main(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "bad"),
                 "--set", "no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err


def test_training_with_the_heading_input_drives_and_tracks_odometry(tiny_dataset, frame_cache,
                                                                    tmp_path):
    from drivevla.agents.agent import Agent
    from drivevla.vla.policy import DriveVLAPolicy

    out = tmp_path / "out"
    Trainer(_cfg(tiny_dataset, out, frame_cache, steps=2,
                 model={**TINY, "heading_feature": True, "lateral_feature": True,
                        "distance_feature": True})).train()
    policy = DriveVLAPolicy.from_pretrained(out)
    assert policy.config.model.odometry == ("heading_change", "lateral_offset",
                                            "distance_travelled")
    assert policy.model.ego_proj[0].in_features == 7
    env, obs, info = _sim_observation()
    agent = Agent(policy)
    agent.reset(env)
    yaws, poses = [], []
    for _ in range(15):
        observation = env.make_observation(obs, info)
        yaws.append(observation.ego.yaw)
        poses.append((observation.ego.x, observation.ego.y, observation.ego.yaw))
        control, _ = agent.step(observation)
        obs, _, _, _, info = env.step(control)
    env.close()
    expected = np.unwrap(np.array(yaws))
    odometry = policy._odometry
    assert odometry._heading_change == pytest.approx(expected[-1] - expected[0], abs=1e-9)
    (x0, y0, yaw0), (x, y, _) = poses[0], poses[-1]
    assert odometry._start_pose == (x0, y0, yaw0)
    offset = world_to_ego(np.array([x, y]), np.array([x0, y0]), yaw0)[1]
    assert odometry._lateral(observation) == pytest.approx(offset, abs=1e-9)
    path = sum(math.hypot(b[0] - a[0], b[1] - a[1])
               for a, b in zip(poses[:-1], poses[1:], strict=True))
    assert path > 1.0 and odometry._distance == pytest.approx(path, abs=1e-9)


def test_training_with_memory_reads_earlier_frames_and_the_policy_keeps_them(
        tiny_dataset, frame_cache, tmp_path, monkeypatch):
    from drivevla.agents.agent import Agent
    from drivevla.training.data import FrameTensors
    from drivevla.vla.policy import DriveVLAPolicy

    taken = []
    take = FrameTensors.take
    monkeypatch.setattr(FrameTensors, "take", lambda self, index, memory=(0, 1): taken.append(
        (self.frame_index[index], take(self, index, memory))) or taken[-1][1])
    out = tmp_path / "out"
    Trainer(_cfg(tiny_dataset, out, frame_cache, steps=2,
                 model={**TINY, "memory_frames": 2, "memory_stride": 3})).train()
    own, batch = taken[0]
    assert batch["memory_images"].shape[:2] == (len(own), 2)
    first = own == 0  # an episode's first frame remembers itself
    assert torch.equal(batch["memory_images"][first, 0], batch["images"][first])
    policy = DriveVLAPolicy.from_pretrained(out)
    # the checkpoint records the training data's camera rig, for evaluation and the CARLA agent
    rig = [dataclasses.asdict(s) for s in open_dataset(tiny_dataset).camera_specs]
    assert [dict(c) for c in policy.config.model.camera_rig] == rig
    env, obs, info = _sim_observation()
    agent = Agent(policy)
    agent.reset(env)
    for _ in range(8):
        control, _ = agent.step(env.make_observation(obs, info))
        obs, _, _, _, info = env.step(control)
    env.close()
    assert policy._memory._ticks == 8 and len(policy._memory._kept) == 6


def test_refusal_head_trains_on_rendered_train_phrasings_too(tiny_dataset, frame_cache,
                                                             tmp_path, monkeypatch):
    from drivevla.language import instructions
    from drivevla.vla.modeling_drivevla import DriveVLAModel

    seen: list[dict] = []
    forward = DriveVLAModel.forward

    def spy(self, batch):
        seen.append(batch)
        return forward(self, batch)

    monkeypatch.setattr(DriveVLAModel, "forward", spy)
    out = tmp_path / "out"
    cfg = _cfg(tiny_dataset, out, frame_cache, steps=3, refusal_text_batch=16,
               refusal_text_pool=200,
               model={**TINY, "refusal_head": True, "grounded_explanation": True})
    Trainer(cfg).train()
    assert len(seen) == 3
    texts, unsafe = instructions.synthetic_instructions(200, cfg.seed, split="train")
    for batch in seen:
        assert batch["aux_instruction_ids"].shape == (16, TINY["max_instruction_tokens"])
        assert batch["aux_unsafe"].dtype == torch.bool
    pool = {tuple(i) for i in refusal_pool_ids(out, texts)}
    assert all(tuple(row) in pool for b in seen for row in b["aux_instruction_ids"].tolist())
    logs = json.loads((out / "train_info.json").read_text())
    assert logs["train_config"]["refusal_text_batch"] == 16
    assert any(u for u in unsafe) and not all(unsafe)


def refusal_pool_ids(out, texts):
    from drivevla.vla.policy import DriveVLAPolicy

    proc = DriveVLAPolicy.from_pretrained(out).processor
    return [proc.encode_instruction(t)[0] for t in texts]


def test_intent_head_trains_on_frame_intents_and_rendered_train_phrasings(tiny_dataset,
                                                                           frame_cache,
                                                                           tmp_path,
                                                                           monkeypatch):
    from drivevla.datasets.torch_dataset import FrameDataset
    from drivevla.language import instructions
    from drivevla.vla.modeling_drivevla import DriveVLAModel

    seen: list[tuple[dict, dict]] = []
    forward = DriveVLAModel.forward

    def spy(self, batch):
        loss, logs = forward(self, batch)
        seen.append((batch, logs))
        return loss, logs

    monkeypatch.setattr(DriveVLAModel, "forward", spy)
    out = tmp_path / "out"
    # half the event texts stacked (a safe event before the last one): the pool is rendered so
    cfg = _cfg(tiny_dataset, out, frame_cache, steps=3, refusal_text_batch=16,
               refusal_text_pool=200, refusal_text_stacked_share=0.5,
               model={**TINY, "intent_head": True, "instruction_word_dropout": 0.2})
    Trainer(cfg).train()
    records = instructions.synthetic_instruction_records(200, cfg.seed, split="train",
                                                         stacked_share=0.5)
    # (ids, intent) of the pool (texts truncated to the same ids can differ in intent)
    pairs = {(tuple(ids), instructions.NAVIGATION_INTENTS.index(r[3]))
             for ids, r in zip(refusal_pool_ids(out, [r[0] for r in records]), records,
                               strict=True)}
    assert len({label for _, label in pairs}) > 5
    # the frames carry their route's intent; the rendered texts the intent they were drawn for
    ds = FrameDataset(tiny_dataset, split="train")
    frame_intents = set(ds.label_column("intent").tolist())
    assert frame_intents and all(0 <= i < len(instructions.NAVIGATION_INTENTS)
                                 for i in frame_intents)
    for batch, logs in seen:
        assert set(batch["intent"].tolist()) <= frame_intents
        assert "aux_unsafe" not in batch  # no refusal head here
        for ids, label in zip(batch["aux_instruction_ids"].tolist(),
                              batch["aux_intent"].tolist(), strict=True):
            assert (tuple(ids), label) in pairs
        assert logs["ce_intent"] > 0 and 0.0 <= logs["intent_acc"] <= 1.0
    assert len(seen) == 3
