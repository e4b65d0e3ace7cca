"""The sectioned config (model / inference / loss / vocabularies), old flat configs and
tensor names, and the label vocabularies saved in a checkpoint and checked on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from drivevla.language.intents import NAVIGATION_INTENTS
from drivevla.language.reasons import Reason
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.convert import convert_checkpoint
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy, default_checkpoint_dir
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from drivevla.vla.vocabularies import code_vocabularies
from support.vla_parts import CORPUS, TINY, tiny_obs

FLAT_V6 = Path(__file__).parent / "fixtures" / "drivevla_tiny_v6_flat_config.json"


def _save(path: Path, cfg: DriveVLAConfig) -> DriveVLAPolicy:
    proc = DriveVLAProcessor.build(cfg, CORPUS)
    torch.manual_seed(0)
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    policy.save_pretrained(path)
    return policy


def test_the_shipped_config_is_sectioned_and_equals_its_old_flat_form():
    saved = json.loads((default_checkpoint_dir() / "config.json").read_text())
    assert set(saved) == {"config_version", "model", "inference", "loss", "vocabularies"}
    old = DriveVLAConfig.from_dict(json.loads(FLAT_V6.read_text()))
    assert old == DriveVLAConfig.load(default_checkpoint_dir())
    m = old.model
    assert m.odometry == ("heading_change", "lateral_offset", "distance_travelled")
    assert (m.refusal_head, m.intent_head, m.explanation, m.head) == ("bag", "bag", "grounded",
                                                                     "gru")
    assert old.loss.ego_dropout == 0.5 and old.loss.instruction_word_dropout == 0.3
    assert old.vocabularies.to_dict() == {k: list(v) for k, v in code_vocabularies().items()}


def test_unknown_keys_list_the_valid_ones_in_every_form():
    for bad in ({"heads": 1}, {"model": {"heads": 1}}, {"loss.w_foo": 1.0}):
        with pytest.raises(ValueError, match=r"unknown DriveVLA config key.*valid keys.*"
                                             r"model\.head"):
            DriveVLAConfig.from_dict(bad)
    with pytest.raises(ValueError, match=r"unknown DriveVLA config key.*vocabularies\.colours"):
        DriveVLAConfig.from_dict({"vocabularies": {"colours": ["red"]}})
    with pytest.raises(ValueError, match=r"model\.head='mlp'"):
        DriveVLAConfig.from_dict({"model.head": "mlp"})
    with pytest.raises(ValueError, match="model.odometry"):
        DriveVLAConfig.from_dict({"model": {"odometry": ["compass"]}})


def test_flat_dotted_and_sectioned_overrides_agree():
    base = DriveVLAConfig()
    a = base.with_overrides({"heading_feature": True, "intent_head": True,
                             "intent_by_sentence": True, "w_intent": 0.3})
    b = base.with_overrides({"model.odometry": ["heading_change"],
                             "model.intent_head": "by_sentence", "loss.w_intent": 0.3})
    c = DriveVLAConfig.from_dict({"model": {"odometry": ["heading_change"],
                                            "intent_head": "by_sentence"},
                                  "loss": {"w_intent": 0.3}})
    assert a == b == c
    # a flat odometry flag adds or removes one channel, the others stay (kept in order)
    d = c.with_overrides({"distance_feature": True}).with_overrides({"heading_feature": False})
    assert d.model.odometry == ("distance_travelled",)
    assert DriveVLAConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("key,value", [("refusal_gate", True), ("refusal_by_sentence", True),
                                       ("temporal_ensemble_s", 0.5), ("odometer_bias_m", 30.0),
                                       ("motion_state_input", False)])
def test_removed_options_load_only_at_their_off_value(key, value):
    with pytest.raises(ValueError, match=f"{key}.*removed.*removed-options.md"):
        DriveVLAConfig.from_dict({key: value})
    off = {"refusal_gate": False, "refusal_by_sentence": False, "temporal_ensemble_s": 0.0,
           "odometer_bias_m": 0.0, "motion_state_input": True}[key]
    assert DriveVLAConfig.from_dict({key: off}) == DriveVLAConfig()


def test_flat_counts_must_match_the_vocabularies():
    assert DriveVLAConfig.from_dict({"n_reasons": len(Reason), "n_meta_actions": 8})
    with pytest.raises(ValueError, match="n_reasons=14 does not match"):
        DriveVLAConfig.from_dict({"n_reasons": 14})


def test_a_checkpoint_without_vocabularies_loads_with_todays_lists(tmp_path):
    cfg = DriveVLAConfig.from_dict(TINY | {"intent_head": True})
    policy = _save(tmp_path / "ckpt", cfg)
    data = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    del data["vocabularies"]
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(data))
    loaded = DriveVLAPolicy.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.vocabularies.navigation_intents == NAVIGATION_INTENTS
    obs = tiny_obs()
    np.testing.assert_array_equal(loaded.act(obs).waypoints, policy.act(obs).waypoints)


def test_a_saved_name_the_code_lacks_is_a_clear_error(tmp_path):
    cfg = DriveVLAConfig.from_dict(TINY | {"intent_head": True})
    _save(tmp_path / "ckpt", cfg)
    data = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    data["vocabularies"]["navigation_intents"].append("fly_over")
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"navigation_intents \['fly_over'\] are not in the "
                                         "code's vocabulary"):
        DriveVLAPolicy.from_pretrained(tmp_path / "ckpt")


def test_a_checkpoint_with_other_lists_is_sized_and_read_by_its_own(tmp_path):
    """An intent head trained before an intent was added keeps its size; the reason and
    meta-action indices are read through the saved lists, not the code's order."""
    intents = NAVIGATION_INTENTS[:-1]
    code = [r.value for r in Reason]
    reasons = tuple(code[1:] + code[:1])  # the same names, another order
    cfg = DriveVLAConfig.from_dict(TINY | {"intent_head": True, "refusal_head": True,
                                           "vocabularies": {"navigation_intents": intents,
                                                            "reasons": reasons}})
    policy = _save(tmp_path / "ckpt", cfg)
    with torch.no_grad():  # the reason head always says its first class, never a refusal
        policy.model.reason_head.weight.zero_()
        policy.model.reason_head.bias.copy_(torch.linspace(5.0, 0.0, len(reasons)))
        policy.model.safety_head.mlp[2].bias.fill_(-50.0)
    policy.save_pretrained(tmp_path / "ckpt")
    loaded = DriveVLAPolicy.from_pretrained(tmp_path / "ckpt")
    assert loaded.model.intent_head.token.in_features == len(intents)
    assert loaded.model.refused_index == reasons.index(Reason.REFUSED_UNSAFE_INSTRUCTION.value)
    assert loaded.act(tiny_obs()).reason == reasons[0] != list(Reason)[0].value
    with pytest.raises(ValueError, match="training needs the code's label vocabularies"):
        loaded.config.vocabularies.require_code_order("training")


def test_old_tensor_names_load_and_convert_gives_the_same_outputs(tmp_path):
    cfg = DriveVLAConfig.from_dict(TINY | {"intent_head": True, "grounded_explanation": True})
    policy = _save(tmp_path / "ckpt", cfg)
    weights = tmp_path / "ckpt" / "model.safetensors"
    old = {k.replace("explanation.", "reason_embed.").replace("intent_head.token.",
                                                              "intent_proj."): v
           for k, v in load_file(str(weights)).items()}
    assert "reason_embed.weight" in old and "intent_proj.weight" in old
    save_file(old, str(weights))
    flat = {k: v for sec in ("model", "inference", "loss")
            for k, v in json.loads((tmp_path / "ckpt" / "config.json").read_text())[sec].items()}
    flat = {k: v for k, v in flat.items() if k not in ("odometry", "explanation",
                                                       "text_head_dim", "text_word_dropout")}
    flat |= {"intent_head": True, "grounded_explanation": True, "refusal_head": False}
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(flat))
    obs = tiny_obs()
    want = policy.act(obs)
    want_text = policy.explain()
    for _ in range(2):  # as it was, then converted (a second conversion changes nothing)
        loaded = DriveVLAPolicy.from_pretrained(tmp_path / "ckpt")
        np.testing.assert_array_equal(loaded.act(obs).waypoints, want.waypoints)
        assert loaded.explain() == want_text
        convert_checkpoint(tmp_path / "ckpt")
    assert "explanation.weight" in load_file(str(weights))
    assert "vocabularies" in json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert convert_checkpoint(tmp_path / "ckpt") == {"config": False, "weights": False}
