"""The auxiliary perception heads (model.perception_heads): training only, they add their
losses when the batch carries schema 2 targets, their gradient reaches the camera encoder,
they leave the action path alone, and a batch without targets is refused by name."""

from __future__ import annotations

import pytest
import torch

from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.heads.perception import PerceptionHeads
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.vla_parts import CORPUS, TINY, tiny_samples


def _with_targets(b: int) -> dict:
    g = torch.Generator().manual_seed(3)
    samples = tiny_samples(b)
    samples |= {"bev": (torch.rand(b, 4, 80, 80, generator=g) > 0.7).float(),
                "signal_state": torch.tensor([0, 1, 3, 2][:b]),
                "signal_distance": torch.tensor([0.0, 22.0, 40.0, 8.0][:b]),
                "lead_present": torch.tensor([1.0, 0.0, 1.0, 0.0][:b]),
                "lead_distance": torch.tensor([12.0, 0.0, 30.0, 0.0][:b]),
                "lead_speed": torch.tensor([4.0, 0.0, 9.0, 0.0][:b])}
    return samples


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    cfg = DriveVLAConfig.from_dict({**TINY, "perception_heads": True})
    return cfg, DriveVLAProcessor.build(cfg, CORPUS)


def test_the_heads_train_the_camera_encoder_and_log_their_losses(parts):
    cfg, proc = parts
    model = DriveVLAModel(cfg, proc.vocab_size)
    loss, logs = model(proc.batch_from_samples(_with_targets(4)))
    assert {"aux_bev", "aux_signal", "aux_lead"} <= set(logs)
    assert logs["aux_bev"] == pytest.approx(0.69, abs=0.1)  # BCE near chance at init
    loss.backward()
    assert model.perception.queries.grad.abs().sum() > 0
    vision = [p for n, p in model.backbone.named_parameters() if n.startswith("vision")]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in vision)


def test_the_action_path_is_the_same_with_and_without_the_heads(parts):
    cfg, proc = parts
    torch.manual_seed(1)
    with_heads = DriveVLAModel(cfg, proc.vocab_size).eval()
    plain = DriveVLAModel(cfg.with_overrides({"perception_heads": False}), proc.vocab_size)
    state = {k: v for k, v in with_heads.state_dict().items()
             if not k.startswith("perception.")}
    plain.load_state_dict(state)
    batch = proc.batch_from_samples(tiny_samples(2))
    with torch.no_grad():
        a, b = with_heads.eval().act(batch), plain.eval().act(batch)
    assert torch.equal(a.waypoints, b.waypoints) and torch.equal(a.speeds, b.speeds)


def test_a_batch_without_targets_is_refused_naming_them(parts):
    cfg, proc = parts
    model = DriveVLAModel(cfg, proc.vocab_size)
    with pytest.raises(ValueError, match=r"schema 2 dataset's perception targets.*'bev'"):
        model(proc.batch_from_samples(tiny_samples(2)))


def test_the_raster_comes_back_in_its_cells():
    # each query predicts one 4 x 4 patch: a patch's bias lands where the target has it
    heads = PerceptionHeads(16)
    with torch.no_grad():
        heads.bev.weight.zero_()
        heads.bev.bias.zero_()
        heads.bev.bias.view(4, 4, 4)[2, 1, 3] = 5.0  # channel 2, row 1, col 3 of every patch
    out = heads(torch.randn(1, 5, 16), torch.ones(1, 5))
    bev = out["bev"][0]
    assert bev.shape == (4, 80, 80)
    hot = (bev > 1.0).nonzero().tolist()
    assert len(hot) == 20 * 20 and all(c == 2 and r % 4 == 1 and k % 4 == 3 for c, r, k in hot)
