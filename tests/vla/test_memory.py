"""The model's memory (model.memory_frames): earlier frames found inside their episode,
the policy's kept summaries giving what recomputing the earlier frames gives, the memory
reaching the actions and training its projector, bad settings refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivevla.core.types import EgoState
from drivevla.training.data import past_rows_of
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.vla_parts import CORPUS, TINY, tiny_obs, tiny_samples

MEMORY = {**TINY, "memory_frames": 2, "memory_stride": 2}


@pytest.fixture(scope="module")
def parts():
    cfg = DriveVLAConfig.from_dict(MEMORY)
    return cfg, DriveVLAProcessor.build(cfg, CORPUS)


def _obs(seed: int):
    img = np.random.default_rng(seed).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    return tiny_obs(images={"front": img}, ego=EgoState(float(seed), 0.0, 0.0, 5.0))


def test_earlier_frames_stay_in_their_episode_and_start_at_its_first_frame():
    frame_index = torch.tensor([0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3])  # episodes of 7 and 4 rows
    rows = past_rows_of(frame_index, torch.tensor([6, 4, 1, 7, 9, 10]), frames=2, stride=3)
    assert rows.tolist() == [[3, 0], [1, 0], [0, 0], [7, 7], [7, 7], [7, 7]]
    with pytest.raises(ValueError, match="not consecutive"):
        past_rows_of(torch.tensor([0, 2, 4, 6]), torch.tensor([3]), frames=1, stride=1)


def test_the_kept_summaries_give_what_recomputing_the_earlier_frames_gives(parts):
    cfg, proc = parts
    torch.manual_seed(0)
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    observations = [_obs(i) for i in range(5)]
    decisions = [policy.act(o) for o in observations]
    model = policy.model
    for tick, earlier in ((1, (0, 0)), (4, (2, 0))):  # stride 2: tick 1 reaches back to 0
        batch = proc.from_observations([observations[tick]], [{}])
        batch["memory_images"] = torch.stack(
            [proc.from_observations([observations[t]], [{}])["images"][0] for t in earlier])[None]
        with torch.no_grad():
            recomputed = model.act(batch)
        assert np.allclose(decisions[tick].waypoints,
                           recomputed.waypoints[0].double().numpy(), atol=1e-4)
    policy.reset()  # a new route starts with an empty memory: the first tick reads itself
    again = policy.act(observations[4])
    batch = proc.from_observations([observations[4]], [{}])
    batch["memory_images"] = batch["images"][:, None].expand(-1, 2, -1, -1, -1, -1)
    with torch.no_grad():
        alone = model.act(batch)
    assert np.allclose(again.waypoints, alone.waypoints[0].double().numpy(), atol=1e-4)


def test_the_memory_reaches_the_actions_and_its_projector_trains(parts):
    cfg, proc = parts
    torch.manual_seed(1)
    model = DriveVLAModel(cfg, proc.vocab_size)
    samples = tiny_samples(2)
    past = torch.randint(0, 255, (2, 2, 1, 3, 60, 100), dtype=torch.uint8)
    loss, _ = model(proc.batch_from_samples(samples | {"memory_images": past}))
    loss.backward()
    assert model.memory_proj[0].weight.grad.abs().sum() > 0
    assert model.memory_pos.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        model.memory_proj[2].weight.mul_(50.0)
        a = model.act(proc.batch_from_samples(samples | {"memory_images": past}))
        b = model.act(proc.batch_from_samples(samples | {"memory_images": 255 - past}))
        assert not torch.allclose(a.waypoints, b.waypoints)
    with pytest.raises(ValueError, match="memory_images"):
        model.act(proc.batch_from_samples(samples))


def test_bad_memory_settings_are_refused():
    with pytest.raises(ValueError, match="memory_frames=-1"):
        DriveVLAConfig.from_dict({**MEMORY, "memory_frames": -1})
    with pytest.raises(ValueError, match="memory_stride=0"):
        DriveVLAConfig.from_dict({**MEMORY, "memory_stride": 0})
    with pytest.raises(ValueError, match="memory_frames.*backbone_family='default'"):
        DriveVLAConfig.from_dict({**MEMORY, "backbone_family": "idefics3"})
