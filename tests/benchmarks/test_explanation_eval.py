"""``drivevla eval explanations`` and its caption metrics: BLEU-4, ROUGE-L and CIDEr-D by
pycocoevalcap against hand-computed values, our stand-in for its Java tokenizer, and the
command on the tiny collection with two episodes moved to a held-out split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from drivevla.benchmarks.explanation_eval import BASELINE, Explainer, ExplanationEvalError
from drivevla.benchmarks.language_metrics import caption_scores, tokenize
from drivevla.cli import main as cli_main
from drivevla.datasets.replay import split_explanations

pytest.importorskip("pycocoevalcap", reason="pip install 'drivevla[language-metrics]'")


def test_tokenizer_drops_ptb_punctuation_and_splits_clitics():
    assert tokenize("Braking: the car's slow.") == "braking the car 's slow"
    assert tokenize("I don't stop; I'm fine!") == "i do n't stop i 'm fine"
    assert tokenize(" ,. ") == ""


def test_scores_against_hand_computed_values():
    # "a b c d" vs "a c d e": unigrams 3/4, bigrams 1/3 ("c d"), no trigram; equal lengths
    # (brevity penalty 1): BLEU-2 = sqrt(3/4 * 1/3) = 0.5, BLEU-4 ~ 0 (pycocoevalcap's tiny
    # floor); ROUGE-L: LCS "a c d" = 3, P = R = 3/4, F(beta 1.2) = 0.75
    s = caption_scores(["a b c d"], ["a c d e"])
    assert s["bleu_1"] == pytest.approx(0.75) and s["bleu_2"] == pytest.approx(0.5)
    assert s["bleu_4"] < 1e-6 and s["rouge_l"] == pytest.approx(0.75)
    # identical sentences: BLEU-4 = ROUGE-L = 1; CIDEr-D = 10 for each matched pair
    refs = ["the car ahead is braking hard", "keeping my lane on the open road"]
    s = caption_scores(refs, refs)
    assert s["bleu_4"] == pytest.approx(1.0) and s["rouge_l"] == pytest.approx(1.0)
    assert s["cider"] == pytest.approx(10.0)
    # one pair right, one sharing nothing: ROUGE-L and CIDEr-D average over sentences
    s = caption_scores([refs[0], "stopping here"], refs)
    assert s["rouge_l"] == pytest.approx(0.5) and s["cider"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="2 predictions for 1"):
        caption_scores(refs, refs[:1])


@pytest.fixture
def held_out(tiny_copy) -> Path:
    """The tiny collection with its last two episodes in 'val' (all are 'train' by hash)."""
    info_path = tiny_copy / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    ids = [json.loads(line)["episode_id"]
           for line in (tiny_copy / "meta" / "episodes.jsonl").read_text().splitlines()]
    info["splits"] = {"train": ids[:-2], "val": ids[-2:], "test": []}
    info_path.write_text(json.dumps(info))
    return tiny_copy


def test_command_on_held_out_frames(held_out, tiny_checkpoint, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    out = tmp_path / "expl"
    code = cli_main(["eval", "explanations", "--policy", str(tiny_checkpoint), "--data",
                     str(held_out), "--frames", "6", "--out", str(out), "--threads", "1"])
    printed = capsys.readouterr().out
    assert code == 0 and torch.get_num_threads() == before
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["threads"] == 1
    records = [json.loads(x) for x in (out / "explanations.jsonl").read_text().splitlines()]
    assert summary["n_frames_read"] == 6 and len(records) == summary["n_scored"] > 0
    assert "pycocoevalcap 1.2" in summary["implementation"]
    assert summary["provenance"]["versions"]["numpy"] and summary["data"]["split"] == "val"
    train = split_explanations(held_out, "train")
    assert summary["baseline"]["explanation"] == Counter(train).most_common(1)[0][0]
    baseline, policy = summary["rows"]
    assert baseline["name"] == BASELINE and policy["kind"] == "policy"
    for row in (baseline, policy):
        assert 0 <= row["bleu_4"] <= 1 and 0 <= row["rouge_l"] <= 1 and row["cider"] >= 0
        assert row["n"] == len(records)
    # the faithfulness count is that of the records
    assert policy["n_faithful"] == sum(r["faithful"] for r in records)
    assert {r["expert_explanation"] for r in records} <= set(
        split_explanations(held_out, "val"))
    assert "BLEU-4" in printed and printed.index(BASELINE) < printed.index("-- policy")
    assert printed.index("-- policy") < printed.index(str(tiny_checkpoint)[-20:])
    assert "pycocoevalcap" in printed


def test_bad_policy_and_empty_split(held_out, tmp_path, capsys):
    with pytest.raises(ExplanationEvalError, match="no explanations"):
        Explainer("lane_keep")
    code = cli_main(["eval", "explanations", "--policy", "lane_keep", "--data",
                     str(held_out), "--split", "test", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "split 'test'" in err and "val 2" in err


def test_an_onnx_deployment_explains_as_its_checkpoint(held_out, tmp_path, capsys):
    """The all-inputs tiny model (odometry channels included) as a checkpoint and exported:
    the same frames, the recorded odometry, the same explanations."""
    from support.export_parts import TINY_CAMERA, require_export_extra, save_tiny_checkpoint

    require_export_extra()
    from drivevla.export.onnx_export import export_onnx

    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", seed=1)
    export_onnx(str(ckpt), tmp_path / "deploy", camera_size=TINY_CAMERA, samples=2)
    texts = {}
    for policy in (str(ckpt), f"onnx:{tmp_path / 'deploy'}"):
        out = tmp_path / policy.replace("/", "_").replace(":", "_")
        assert cli_main(["eval", "explanations", "--policy", policy, "--data", str(held_out),
                         "--frames", "4", "--out", str(out)]) == 0
        texts[policy] = [json.loads(x)["explanation"]
                         for x in (out / "explanations.jsonl").read_text().splitlines()]
    capsys.readouterr()
    a, b = texts.values()
    assert len(a) == len(b) == 4 and sum(x == y for x, y in zip(a, b, strict=True)) >= 3
