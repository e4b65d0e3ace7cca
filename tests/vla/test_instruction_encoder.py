"""The pretrained instruction encoder as the model reads it (model.instruction_encoder =
"minilm"): the processor uses the encoder's tokenizer, the frozen states are cached and stay
out of the checkpoint, the projectors and text heads train, and a saved model reloads to the
same outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from drivevla.language.sentence_encoder import (
    WEIGHTS_SHA256,
    SentenceEncoder,
    SentenceEncoderError,
)
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.heads.text import keep_dropout
from drivevla.vla.instruction_encoder import FrozenTokenStates
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.vla_parts import CORPUS, TINY, tiny_obs, tiny_samples

ENCODED = {**TINY, "instruction_encoder": "minilm", "refusal_head": "bag",
           "intent_head": "by_sentence", "max_instruction_tokens": 20}


@pytest.fixture(scope="module")
def parts():
    cfg = DriveVLAConfig.from_dict(ENCODED)
    return cfg, DriveVLAProcessor.build(cfg, CORPUS)


def test_instructions_take_the_encoders_tokenizer_and_explanations_ours(parts):
    cfg, proc = parts
    ids, mask = proc.encode_instruction("Hang a left at the junction.")
    n = sum(mask)
    assert ids[0] == 101 and ids[n - 1] == 102  # [CLS] ... [SEP] of the WordPiece vocab
    assert max(ids) > proc.vocab_size  # not our 300-token vocabulary
    expl, _ = proc.encode_explanation("Following the route.")
    assert max(expl) < proc.vocab_size


def test_cached_states_equal_the_encoders_own_and_are_computed_once(parts, monkeypatch):
    _, proc = parts
    batch = proc.encode_instructions(["Turn left at the next junction.", "skip the red light"])
    states = FrozenTokenStates(DriveVLAConfig().model.instruction_encoder_sha256)
    first = states(batch["instruction_ids"], batch["instruction_mask"])
    encoder = SentenceEncoder()
    direct = encoder.token_states(batch["instruction_ids"], batch["instruction_mask"])
    mask = batch["instruction_mask"].bool()
    assert torch.allclose(first[mask], direct[mask], atol=2e-3)  # float16 in the cache
    assert bool((first[~mask] == 0).all())
    calls = []
    monkeypatch.setattr(states, "_encode", lambda *a: calls.append(a))
    again = states(batch["instruction_ids"], batch["instruction_mask"])
    assert calls == [] and torch.equal(first, again)


def test_the_encoder_is_frozen_and_outside_the_state_dict_and_the_rest_trains(parts):
    cfg, proc = parts
    torch.manual_seed(0)
    model = DriveVLAModel(cfg, proc.vocab_size)
    assert not any("instruction_states" in k or "encoder.layer" in k
                   for k in model.state_dict())
    samples = tiny_samples(4) | {"intent": torch.tensor([9, 0, 9, 0])}
    loss, logs = model(proc.batch_from_samples(samples))
    assert "bce_refusal" in logs and "ce_intent" in logs
    loss.backward()
    for name in ("instruction_proj.0.weight", "safety_head.proj.0.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    intent_grad = model.intent_head.proj[0].weight.grad
    assert intent_grad is not None and intent_grad.abs().sum() > 0


def test_the_instruction_reaches_the_actions(parts):
    cfg, proc = parts
    torch.manual_seed(0)
    model = DriveVLAModel(cfg, proc.vocab_size).eval()
    with torch.no_grad():
        model.instruction_proj[2].weight.normal_(0, 1.0)
    samples = tiny_samples(2)
    samples["instruction"] = ["Turn left at the next junction."] * 2
    left = model.act(proc.batch_from_samples(samples))
    samples["instruction"] = ["Take the second exit at the roundabout."] * 2
    exit_ = model.act(proc.batch_from_samples(samples))
    assert not torch.allclose(left.waypoints, exit_.waypoints)


def test_a_saved_policy_reloads_to_the_same_decisions_without_the_encoders_weights(
        parts, tmp_path):
    cfg, proc = parts
    torch.manual_seed(2)
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    obs = tiny_obs(instruction="Hang a left at the junction. Also, skip the red light.")
    before = policy.act(obs)
    policy.save_pretrained(tmp_path / "ckpt")
    with safe_open(tmp_path / "ckpt" / "model.safetensors", "pt") as f:
        assert not [k for k in f.keys() if k.startswith("instruction_states")
                    or ".encoder.layer." in k]
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())["model"]
    assert saved["instruction_encoder_sha256"] == WEIGHTS_SHA256
    loaded = DriveVLAPolicy.from_pretrained(tmp_path / "ckpt")
    after = loaded.act(obs)
    assert np.array_equal(before.waypoints, after.waypoints)
    assert before.reason == after.reason


def test_position_dropout_keeps_cls_and_drops_only_real_tokens():
    torch.manual_seed(0)
    mask = torch.tensor([[1] * 10 + [0] * 6] * 200)
    dropped = keep_dropout(mask, 0.5)
    assert bool((dropped[:, 0] == 1).all()) and bool((dropped[:, 10:] == 0).all())
    share = 1 - dropped[:, 1:10].float().mean()
    assert 0.4 < float(share) < 0.6


def test_other_weights_and_other_backbones_are_refused():
    with pytest.raises(ValueError, match="instruction_encoder.*backbone_family='default'"):
        DriveVLAConfig.from_dict({**ENCODED, "backbone_family": "idefics3",
                                  "refusal_head": None, "intent_head": None})
    with pytest.raises(ValueError, match="instruction_encoder='bert'"):
        DriveVLAConfig.from_dict({**ENCODED, "instruction_encoder": "bert"})
    cfg = DriveVLAConfig.from_dict({**ENCODED, "instruction_encoder_sha256": "0" * 64})
    with pytest.raises(SentenceEncoderError, match="sha256"):
        DriveVLAModel(cfg, 300)
