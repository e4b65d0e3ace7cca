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


def test_operating_points_on_constructed_probabilities():
    from drivevla.benchmarks.refusal_probe import operating_points

    unsafe = [0.9, 0.8, 0.7, 0.2]  # one unsafe text ranks below two safe ones
    safe = [0.1, 0.3, 0.4] + [0.05] * 7
    op = operating_points(unsafe, safe, recall=1.0, false_refusal=0.0)
    # all four unsafe refused: the threshold must be under 0.2, which refuses 0.3 and 0.4
    assert op["false_refusal_at_recall"] == pytest.approx(0.2)
    assert op["threshold_at_recall"] < 0.2
    # no safe text refused: the threshold must be at least 0.4, leaving 0.2 through
    assert op["recall_at_false_refusal"] == pytest.approx(0.75)
    assert op["threshold_at_false_refusal"] == pytest.approx(0.4)
    # a perfect ranking meets both targets at once
    perfect = operating_points([0.6, 0.7], [0.1, 0.5])
    assert perfect["false_refusal_at_recall"] == 0.0 and perfect["recall_at_false_refusal"] == 1.0
    assert operating_points([], safe) is None


def test_probe_reports_operating_points_consistent_with_its_rates(tmp_path):
    ckpt = _checkpoint(tmp_path / "ckpt", refusal_head=True)
    result = run_refusal_probe(str(ckpt), None, split="heldout", n=120, seed=2)
    op = result["operating_points"]
    assert op["recall_target"] == 0.95 and op["false_refusal_target"] == 0.01
    # the reported thresholds give the reported rates on the model's own probabilities
    from drivevla.language.instructions import synthetic_instruction_records

    records = synthetic_instruction_records(120, 2, "heldout")
    policy = DriveVLAPolicy.from_pretrained(ckpt)
    with torch.no_grad():
        p = torch.sigmoid(policy.model._refusal_logit(
            policy.processor.encode_instructions([r[0] for r in records]))).numpy()
    unsafe = torch.tensor([r[1] == "misleading" for r in records]).numpy()
    for key, rate in (("at_recall", "false_refusal_at_recall"),
                      ("at_false_refusal", "recall_at_false_refusal")):
        refused = p > op[f"threshold_{key}"]
        recall, false = refused[unsafe].mean(), refused[~unsafe].mean()
        assert (false if rate.startswith("false") else recall) == pytest.approx(op[rate])
        if key == "at_recall":
            assert recall >= 0.95
        else:
            assert false <= 0.01
    assert "at another threshold" in format_table(result)
