"""`drivevla fit-refusal`: the refusal head trained alone, every other tensor untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from drivevla.language.reasons import Reason
from drivevla.training.head_fit import FIT_INFO, fit_refusal_head
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.vla_parts import CORPUS, TINY, tiny_obs


def _saved_source(tmp_path: Path, extra: dict) -> tuple[DriveVLAPolicy, DriveVLAProcessor, Path]:
    """A tiny random policy (TINY + ``extra``) saved as ``tmp_path/src``."""
    cfg = DriveVLAConfig.from_dict(TINY | extra)
    proc = DriveVLAProcessor.build(cfg, CORPUS)
    torch.manual_seed(0)
    src = tmp_path / "src"
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    policy.save_pretrained(src)
    return policy, proc, src


def test_fit_adds_a_refusal_head_and_changes_nothing_else(tmp_path):
    a, _, src = _saved_source(tmp_path, {"grounded_explanation": True})
    # a head of another design in the source is discarded, not loaded
    state = load_file(str(src / "model.safetensors"))
    save_file({**state, "safety_head.encoder.weight": torch.zeros(3)},
              str(src / "model.safetensors"))
    before = load_file(str(src / "model.safetensors"))

    out = tmp_path / "out"
    info = fit_refusal_head(src, out, steps=150, batch_size=32, pool=400)
    after = load_file(str(out / "model.safetensors"))
    assert load_file(str(src / "model.safetensors")).keys() == before.keys()  # source kept
    head = {k for k in after if k.startswith("safety_head.")}
    assert head and "safety_head.encoder.weight" not in after
    for k, v in after.items():
        if k not in head:
            assert torch.equal(v, before[k]), k
    saved = json.loads((out / FIT_INFO).read_text())
    assert saved["steps"] == 150 and saved["source"] == str(src) and "hardware" in saved
    assert saved["stacked_share"] == 0.0  # one event per text unless asked
    assert info["final_loss_mean_last_100"] < 0.69  # better than chance

    b = DriveVLAPolicy.from_pretrained(out)
    assert b.config.model.refusal_head == "bag" and not a.config.model.refusal_head
    obs = tiny_obs(instruction="Turn left at the next junction.")
    da, db = a.act(obs), b.act(obs)
    assert np.array_equal(da.waypoints, db.waypoints)
    assert np.array_equal(da.target_speeds, db.target_speeds)
    assert db.reason != Reason.REFUSED_UNSAFE_INSTRUCTION.value  # a safe instruction
    with pytest.raises(ValueError, match="must differ"):
        fit_refusal_head(src, src, steps=1)
    with pytest.raises(ValueError, match="stacked_share"):
        fit_refusal_head(src, tmp_path / "bad", steps=1, stacked_share=1.5)
    assert not (tmp_path / "bad").exists()


def test_fit_intent_by_sentence_replaces_the_intent_head_only(tmp_path):
    from drivevla.language.intents import NAVIGATION_INTENTS
    from drivevla.training.head_fit import INTENT_FIT_INFO, fit_intent_head

    a, proc, src = _saved_source(tmp_path, {"intent_head": True})
    before = load_file(str(src / "model.safetensors"))
    out = tmp_path / "out"
    info = fit_intent_head(src, out, steps=150, batch_size=32, pool=400, by_sentence=True)
    after = load_file(str(out / "model.safetensors"))
    n = len(NAVIGATION_INTENTS)
    # one more class ("no navigation"); every tensor outside the head as it was
    assert after["intent_head.mlp.2.weight"].shape[0] == n + 1
    assert before["intent_head.mlp.2.weight"].shape[0] == n
    assert after.keys() == before.keys()
    for k, v in after.items():
        if not k.startswith(("intent_head.embed.", "intent_head.mlp.")):  # token kept
            assert torch.equal(v, before[k]), k
    saved = json.loads((out / INTENT_FIT_INFO).read_text())
    assert saved["by_sentence"] and saved["head"] == "intent" and "hardware" in saved
    assert info["final_loss_mean_last_100"] < np.log(n + 1)  # better than chance
    b = DriveVLAPolicy.from_pretrained(out)
    assert (b.config.model.intent_head, a.config.model.intent_head) == ("by_sentence", "bag")
    b.act(tiny_obs(instruction="Turn left at the next junction. Go at about 30 km/h."))
    assert b._last.intent_logits.shape == (1, n)
    plain = tmp_path / "plain"
    DriveVLAPolicy(DriveVLAModel(DriveVLAConfig.from_dict(TINY), proc.vocab_size),
                   proc).save_pretrained(plain)
    with pytest.raises(ValueError, match="no intent head"):
        fit_intent_head(plain, tmp_path / "bad", steps=1)


def test_rendered_texts_label_each_sentence_for_the_sentence_intent_head():
    from drivevla.language import instructions as ins
    from drivevla.training.data import instruction_texts

    cfg = DriveVLAConfig.from_dict(TINY | {"intent_head": True, "intent_by_sentence": True})
    proc = DriveVLAProcessor.build(cfg, CORPUS)
    texts = instruction_texts(proc, 300, seed=3, stacked_share=0.5)
    records = ins.synthetic_instruction_records(300, 3, split="train", stacked_share=0.5)
    n = len(ins.NAVIGATION_INTENTS)
    label = texts["aux_intent_sentence_label"]
    present = texts["aux_intent_sentence_mask"].bool().any(-1)
    assert label.shape == present.shape == (300, 4)
    for row, mask, (text, kind, _, intent) in zip(label.tolist(), present.tolist(), records,
                                                   strict=True):
        assert row[0] == ins.NAVIGATION_INTENTS.index(intent)
        rest = [x for x, m in zip(row[1:], mask[1:], strict=True) if m]
        assert rest == ([n] * len(rest)) and (bool(rest) == (kind != "navigation")), text
        assert all(x == -100 for x, m in zip(row, mask, strict=True) if not m)
