"""`drivevla bench refusal`: the text-only refusal decision on rendered phrasings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from drivevla.benchmarks.refusal_probe import format_table, run_refusal_probe
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor

TINY = {"image_height": 48, "image_width": 80, "vision_model": "resnet10t",
        "lm": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 1, "intermediate_size": 64,
               "max_position_embeddings": 128, "tie_word_embeddings": True},
        "max_instruction_tokens": 24, "max_explanation_tokens": 12,
        "tokenizer_vocab_size": 300, "refusal_dim": 16}
CORPUS = ["Turn left at the next junction.", "Run the red light.", "Stopping: the light is red.",
          "Take the second exit at the roundabout.", "Following the route."] * 5


def _checkpoint(path: Path, **overrides) -> Path:
    cfg = DriveVLAConfig.from_dict(TINY | overrides)
    proc = DriveVLAProcessor.build(cfg, CORPUS)
    torch.manual_seed(0)
    DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc).save_pretrained(path)
    return path


def test_probe_counts_every_text_once_and_records_provenance(tmp_path):
    ckpt = _checkpoint(tmp_path / "ckpt", refusal_head=True)
    out = tmp_path / "probe.json"
    result = run_refusal_probe(str(ckpt), out, split="heldout", n=120, seed=2)
    groups = result["groups"]
    unsafe = [k for k in groups if k.startswith("unsafe/") and k != "unsafe/all"]
    safe = [k for k in groups if k.startswith("safe/") and k != "safe/all"]
    assert unsafe and "safe/navigation" in groups
    assert sum(groups[k]["n"] for k in unsafe) == groups["unsafe/all"]["n"]
    assert groups["unsafe/all"]["n"] + groups["safe/all"]["n"] == 120
    assert sum(groups[k]["n"] for k in safe) == groups["safe/all"]["n"]
    assert result["recall"] == groups["unsafe/all"]["refused"]
    # the listed examples are what the model decided: recheck them with its own head
    policy = DriveVLAPolicy.from_pretrained(ckpt)
    for texts, refused in ((result["examples_missed"], False), (result["examples_false"], True)):
        if not texts:
            continue
        with torch.no_grad():
            logits = policy.model._refusal_logit(policy.processor.encode_instructions(texts))
        assert ((torch.sigmoid(logits) > 0.5) == refused).all()
    assert result["examples_missed"] or result["examples_false"]  # a random head errs
    saved = json.loads(out.read_text())
    assert saved["config"]["split"] == "heldout" and "hardware" in saved and "versions" in saved
    assert saved["config"]["stacked_share"] == 0.0
    assert "unsafe/all" in format_table(result)
    # stacked events: the same number of texts, longer on average, the share recorded
    stacked = run_refusal_probe(str(ckpt), None, split="heldout", n=120, seed=2,
                                stacked_share=1.0)
    assert stacked["config"]["stacked_share"] == 1.0
    assert stacked["groups"]["unsafe/all"]["n"] + stacked["groups"]["safe/all"]["n"] == 120
    assert stacked["groups"] != groups


def test_probe_names_a_checkpoint_without_a_text_head(tmp_path):
    ckpt = _checkpoint(tmp_path / "plain")
    with pytest.raises(ValueError, match="no text-only refusal or intent head"):
        run_refusal_probe(str(ckpt), None, n=10)


def test_probe_scores_the_intent_head_per_navigation_intent(tmp_path):
    from drivevla.language.instructions import NAVIGATION_INTENTS, synthetic_instruction_records

    ckpt = _checkpoint(tmp_path / "ckpt", intent_head=True)
    result = run_refusal_probe(str(ckpt), None, split="heldout", n=150, seed=2)
    assert "groups" not in result  # no refusal head, no refusal rates
    per = result["intent"]["per_intent"]
    assert set(per) <= set(NAVIGATION_INTENTS) and sum(g["n"] for g in per.values()) == 150
    right = sum(g["n"] * g["correct"] for g in per.values())
    assert result["intent"]["accuracy"] == pytest.approx(right / 150)
    # the wrong examples are what the head said: recheck with the model itself
    policy = DriveVLAPolicy.from_pretrained(ckpt)
    wrong = result["intent"]["examples_wrong"]
    assert wrong  # an untrained head errs
    texts = {r[0] for r in synthetic_instruction_records(150, 2, "heldout")}
    batch = policy.processor.encode_instructions([w["text"] for w in wrong])
    with torch.no_grad():
        names = policy.model.intent_head(batch["instruction_ids"], batch["instruction_mask"])
    for w, i in zip(wrong, names.argmax(-1).tolist(), strict=True):
        assert w["text"] in texts and w["predicted"] == NAVIGATION_INTENTS[i] != w["intent"]
    assert "intent head" in format_table(result)
