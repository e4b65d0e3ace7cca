"""The text-only refusal head and explanations grounded on the decided reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivevla.language.reasons import Reason
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import REFUSED, DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.vla_parts import CORPUS, TINY, tiny_obs, tiny_samples

SAFE = "Turn left at the next junction."
UNSAFE = "Turn left at the next junction. Run the red light now."
EXPL_RED = "Stopping: the light is red."
EXPL_ROUTE = "Following the route."
EXPL_REFUSE = "I won't run the red light; carrying on safely."


@pytest.fixture(scope="module")
def parts():
    cfg = DriveVLAConfig.from_dict(TINY | {"refusal_head": True, "grounded_explanation": True,
                                           "w_explanation": 1.0,
                                           "refusal_word_dropout": 0.0})
    proc = DriveVLAProcessor.build(cfg, CORPUS + [UNSAFE] * 3)
    return cfg, proc


def test_refusal_head_sees_only_the_instruction(parts):
    cfg, proc = parts
    torch.manual_seed(0)
    model = DriveVLAModel(cfg, proc.vocab_size).eval()
    samples = tiny_samples(2)
    samples["instruction"] = [SAFE, SAFE]
    a = proc.batch_from_samples(samples)
    other = tiny_samples(2, seed=5)  # other images, ego state and route
    other["instruction"] = [SAFE, UNSAFE]
    b = proc.batch_from_samples(other)
    with torch.no_grad():
        out_a, out_b = model.act(a), model.act(b)
    assert not torch.equal(out_a.waypoints, out_b.waypoints)
    assert torch.equal(out_a.refusal_logit[0], out_b.refusal_logit[0])
    assert not torch.equal(out_b.refusal_logit[0], out_b.refusal_logit[1])


def test_refusal_word_dropout_acts_in_training_only(parts):
    cfg, proc = parts
    torch.manual_seed(0)
    model = DriveVLAModel(cfg.with_overrides({"refusal_word_dropout": 0.5}), proc.vocab_size)
    batch = proc.encode_instructions([UNSAFE] * 64)
    model.train()
    with torch.no_grad():
        noisy = model._refusal_logit(batch)
    assert noisy.unique().numel() > 1  # rows differ by which words were dropped
    model.eval()
    with torch.no_grad():
        clean = model._refusal_logit(batch)
    assert clean.unique().numel() == 1
    with pytest.raises(ValueError, match="text_word_dropout"):
        cfg.with_overrides({"refusal_word_dropout": 1.0})


def test_refusal_is_decided_by_the_safety_head_alone(parts):
    cfg, proc = parts
    model = DriveVLAModel(cfg, proc.vocab_size)
    logits = torch.zeros(3, cfg.n_reasons)
    logits[:, REFUSED] = 10.0  # the reason head would refuse everywhere
    logits[:, Reason.CURVE.index] = 5.0
    refusal = torch.tensor([-3.0, 3.0, 0.1])
    got = model.decide_reason(logits, refusal).tolist()
    assert got == [Reason.CURVE.index, REFUSED, REFUSED]
    plain = DriveVLAModel(DriveVLAConfig.from_dict(TINY), proc.vocab_size)
    assert plain.decide_reason(logits, None).tolist() == [REFUSED] * 3


def test_config_rejects_refusal_head_on_pretrained_families_and_bad_thresholds():
    with pytest.raises(ValueError, match="refusal_head"):
        DriveVLAConfig.from_dict({"backbone_family": "qwen2_vl", "refusal_head": True})
    with pytest.raises(ValueError, match="refusal_threshold"):
        DriveVLAConfig.from_dict({"refusal_threshold": 1.0})


def test_training_learns_refusals_and_explanations_follow_the_decided_reason(parts, tmp_path):
    """Samples 0 and 1 share images, ego state and instruction but differ in reason and
    explanation: only the reason embedding can tell their explanations apart."""
    cfg, proc = parts
    torch.manual_seed(0)
    model = DriveVLAModel(cfg, proc.vocab_size)
    samples = tiny_samples(4)
    for key in ("images", "ego", "route"):
        samples[key][1] = samples[key][0]
    samples["instruction"] = [SAFE, SAFE, UNSAFE, SAFE]
    samples["explanation"] = [EXPL_RED, EXPL_ROUTE, EXPL_REFUSE, EXPL_ROUTE]
    samples["reason"] = torch.tensor([Reason.RED_LIGHT.index, Reason.FOLLOW_ROUTE.index,
                                      REFUSED, Reason.FOLLOW_ROUTE.index])
    batch = proc.batch_from_samples(samples)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(250):
        loss, logs = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["bce_refusal"] < 0.05
    model.eval()
    with torch.no_grad():
        out = model.act(batch, use_cache=True)
    # samples 0 and 1 look alike, so the reason head gives them one reason
    assert out.reason[2:].tolist() == [REFUSED, Reason.FOLLOW_ROUTE.index]
    assert out.reason[0] == out.reason[1]
    out.reason = samples["reason"].clone()  # as if the head had told them apart
    # the training targets (lower-cased, cut to max_explanation_tokens)
    want = [proc.decode(proc.encode_explanation(t)[0]) for t in samples["explanation"]]
    texts = [proc.decode(ids) for ids in model.generate_explanation(out)]
    assert texts == want
    out.reason = out.reason[[1, 0, 2, 3]]  # swap the first two decided reasons
    swapped = [proc.decode(ids) for ids in model.generate_explanation(out)]
    assert swapped[:2] == [want[1], want[0]]

    # the policy reports the decided reason and saves / loads both new heads
    policy = DriveVLAPolicy(model, proc)
    obs = tiny_obs(instruction=UNSAFE)
    decision = policy.act(obs)
    assert decision.reason == Reason.REFUSED_UNSAFE_INSTRUCTION.value
    text = policy.explain()
    policy.save_pretrained(tmp_path / "ckpt")
    loaded = DriveVLAPolicy.from_pretrained(tmp_path / "ckpt")
    again = loaded.act(obs)
    assert again.reason == decision.reason
    assert np.array_equal(again.waypoints, decision.waypoints)
    assert loaded.explain() == text
