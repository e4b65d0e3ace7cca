"""Training recipes: the shipped ones are valid, bad ones are named, and one command
collects the demonstrations and trains with the recipe's settings under the command line's."""

from __future__ import annotations

import json

import pytest
import yaml

from drivevla.cli import main as cli_main
from drivevla.training.recipes import load_recipe, recipe_names
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from support.train_parts import TINY, TINY_SUITE


@pytest.mark.parametrize("name", ["drivevla-tiny", "drivevla-small"])
def test_the_shipped_recipes_are_valid_models(name):
    recipe = load_recipe(name)
    assert recipe.description and name in recipe_names()
    model = DriveVLAConfig().with_overrides(recipe.model).model
    demos = recipe.collect_config("data/x", workers=2)
    assert [c["name"] for c in demos.cameras] == list(model.cameras)
    assert model.perception_heads and model.instruction_encoder == "minilm"


@pytest.mark.parametrize("bad, message", [
    ({"steps": 3}, "unknown section"),
    ({"train": {"stepz": 3}}, "unknown train key"),
    ({"train": {"out": "runs/x"}}, "unknown train key"),
    ({"train": {"steps": 0}}, "steps=0"),
    ({"model": {"model.heads": "gru"}}, "heads"),
    ({"collect": {"suite": "train"}}, "collect needs suite and episodes"),
    ({"collect": {"suite": "train", "episodes": 2, "cameras": "fisheye"}}, "rig name"),
])
def test_a_bad_recipe_is_refused_naming_the_file_and_key(tmp_path, bad, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(ValueError, match=f"bad.yaml.*{message}"):
        load_recipe(path)
    with pytest.raises(ValueError, match="no recipe 'nope'"):
        load_recipe("nope")


def test_one_command_collects_then_trains_with_the_recipe_under_the_flags(tmp_path, capsys):
    recipe = {"description": "test", "collect": {"suite": str(TINY_SUITE), "episodes": 2},
              "train": {"steps": 3, "batch_size": 4, "seed": 7, "warmup_steps": 1,
                        "val_frames": 0},
              "model": {**TINY, "loss.ego_dropout": 0.25}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    data, out = tmp_path / "data", tmp_path / "out"
    argv = ["train", "--recipe", str(path), "--data", str(data), "--out", str(out),
            "--steps", "2", "--no-progress", "--set", "loss.ego_dropout=0.5"]
    assert cli_main(argv) == 0
    assert "recipe r: 2 demonstration episodes" in capsys.readouterr().out
    assert len((data / "meta" / "episodes.jsonl").read_text().splitlines()) == 2
    run = json.loads((out / "run.json").read_text())
    assert run["train"]["steps"] == 2 and run["train"]["seed"] == 7  # flag over recipe
    assert run["model"]["loss.ego_dropout"] == 0.5
    assert run["model"]["model.image_height"] == TINY["image_height"]
