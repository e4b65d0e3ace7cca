"""Training on damaged data (issue #22, item 5): corruption is never dropped silently. It
raises, naming the file and line or row; with ``skip_corrupt`` it is left out, logged, listed
in train_info.json, and the decoded frames are not cached."""

from __future__ import annotations

import json

import pytest
import torch

from drivevla.datasets.reader import CorruptDataError, open_dataset
from drivevla.training.train import TrainConfig, Trainer

TINY = {"image_height": 32, "image_width": 48, "vision_model": "resnet10t",
        "lm": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 1, "intermediate_size": 64,
               "max_position_embeddings": 128, "tie_word_embeddings": True},
        "max_instruction_tokens": 16, "max_explanation_tokens": 12,
        "tokenizer_vocab_size": 300}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(data, tmp_path, **kw) -> TrainConfig:
    return TrainConfig(data=(str(data),), out=str(tmp_path / "out"), steps=2, batch_size=2,
                       warmup_steps=1, save_every=100, val_frames=0, progress=False,
                       model=dict(TINY), cache_dir=str(tmp_path / "cache"), **kw)


def _damage(root) -> tuple[str, int]:
    """A garbled last line of episodes.jsonl and a truncated train shard; (its episode id,
    its frames)."""
    ds = open_dataset(root)
    victim = ds.split("train")[0]
    shard = ds.shard_path(victim)
    shard.write_bytes(shard.read_bytes()[:100])
    path = root / "meta" / "episodes.jsonl"
    path.write_text(path.read_text()[:-40])
    return victim, int(ds.episode(victim)["n_frames"])


def test_training_on_corrupt_data_raises_naming_the_line(tiny_copy, tmp_path):
    # before: the episode of the garbled last line was left out, exit 0
    _damage(tiny_copy)
    with pytest.raises(CorruptDataError, match=r"episodes\.jsonl: line 6: an unfinished"):
        Trainer(_cfg(tiny_copy, tmp_path)).train()


def test_skip_corrupt_trains_and_lists_what_it_left_out(tiny_copy, tmp_path, caplog):
    victim, n_victim = _damage(tiny_copy)
    with caplog.at_level("WARNING"):
        info = Trainer(_cfg(tiny_copy, tmp_path, skip_corrupt=True)).train()
    written = json.loads((tmp_path / "out" / "train_info.json").read_text())
    skipped = written["data"]["skipped_as_corrupt"][str(tiny_copy)]["train"]
    assert skipped["episodes_jsonl_lines"] == [6]
    assert skipped["episodes"] == [victim] and skipped["files"] == 1
    assert skipped["rows"] == n_victim and len(skipped["errors"]) == 2
    assert info["data"] == written["data"]
    assert written["train_config"]["skip_corrupt"] is True
    assert any("left out as corrupt" in r.getMessage() and "line 6" in r.getMessage()
               for r in caplog.records)
    # not cached: a later run without skip_corrupt must not train on the remainder unawares
    assert not list((tmp_path / "cache").glob("frames-*.pt"))
    with pytest.raises(CorruptDataError, match="line 6"):
        Trainer(_cfg(tiny_copy, tmp_path)).train()
