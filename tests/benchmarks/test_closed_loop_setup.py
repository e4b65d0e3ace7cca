"""The closed-loop benchmark refuses bad options and configs before any route starts."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from drivevla.agents import registry
from drivevla.benchmarks.closed_loop import AgentSetupError, run_closed_loop
from drivevla.cli import main as cli_main
from drivevla.core.paths import OutputFolderBusyError, exclusive_dir
from drivevla.planner.expert import ExpertPolicy
from drivevla.vla.policy import CheckpointError

ROUTE = {"id": "int-right", "scenario": "intersection", "intent": "turn_right", "seed": 1700001,
         "config": {"cameras": []}}


def _suite(tmp_path: Path, route: dict = ROUTE) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "one", "routes": [route]}), encoding="utf-8")
    return path


def _run(policy: str, suite: Path, out: Path, **kw) -> dict:
    return run_closed_loop(policy, suite, out, progress=False, print_table=False, **kw)


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_steps", -1), ("max_steps", 0), ("max_steps", 2.5), ("explain_every", -1),
     ("workers", -2)],
)
def test_bad_run_options_are_refused_before_any_route(tmp_path, option, value):
    with pytest.raises(ValueError, match=option):
        _run("expert", _suite(tmp_path), tmp_path / "out", **{option: value})
    assert not (tmp_path / "out" / "routes").exists()


def test_cli_refuses_negative_max_steps(tmp_path, capsys):
    argv = ["eval", "closed-loop", "--policy", "expert", "--suite", str(_suite(tmp_path)),
            "--out", str(tmp_path / "out"), "--workers", "0", "--max-steps", "-1"]
    with pytest.raises(SystemExit) as exited:  # a bad argument: argparse's one-line error
        cli_main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--max-steps" in err and "'-1'" in err and "drivevla: error:" in err
    assert not (tmp_path / "out" / "routes").exists()
    with pytest.raises(ValueError, match="max_steps=-1"):  # and the library refuses it too
        run_closed_loop("expert", _suite(tmp_path), tmp_path / "out", workers=0, max_steps=-1,
                        progress=False, print_table=False)


@pytest.mark.parametrize(("key", "value"), [("max_steer_deg", math.nan),
                                            ("traffic_density", "dense")])
def test_a_bad_route_config_fails_the_run_before_any_route(tmp_path, key, value):
    route = {**ROUTE, "config": {**ROUTE["config"], key: value}}
    with pytest.raises(ValueError, match=f"SimConfig.{key}="):
        _run("expert", _suite(tmp_path, route), tmp_path / "out", workers=0)
    assert not (tmp_path / "out" / "routes").exists()


# ----------------------------------------------------------------------------- checkpoints


def _copy(checkpoint: Path, dest: Path) -> Path:
    shutil.copytree(checkpoint, dest)
    return dest


def _truncate_weights(ckpt: Path) -> None:
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _garble_config(ckpt: Path) -> None:
    (ckpt / "config.json").write_text('{"model": ', encoding="utf-8")


def _unknown_key(ckpt: Path) -> None:
    config = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
    config["no_such_key"] = 1
    (ckpt / "config.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.mark.parametrize("breakage", [_truncate_weights, _garble_config, _unknown_key])
def test_a_broken_checkpoint_fails_the_run_and_writes_no_route(
    tmp_path, tiny_checkpoint, breakage, capsys
):
    ckpt = _copy(tiny_checkpoint, tmp_path / "ckpt")
    breakage(ckpt)
    suite = _suite(tmp_path)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        _run(str(ckpt), suite, tmp_path / "out", workers=0, max_steps=3)
    assert not list((tmp_path / "out").glob("routes/*.json"))
    argv = ["eval", "closed-loop", "--policy", str(ckpt), "--suite", str(suite),
            "--out", str(tmp_path / "out"), "--workers", "0", "--max-steps", "3"]
    assert cli_main(argv) == 2
    assert f"checkpoint {ckpt}" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("routes/*.json"))
    # once fixed, the same command runs the route (nothing broken was stored to resume from)
    shutil.rmtree(ckpt)
    _copy(tiny_checkpoint, ckpt)
    summary = _run(str(ckpt), suite, tmp_path / "out", workers=0, max_steps=3)
    assert summary["run"]["routes_run"] == 1
    assert summary["routes"][0]["status"] != "Failed - Agent couldn't be set up"


def test_resume_fingerprint_holds_checkpoint_content_and_explain_every(tmp_path, tiny_checkpoint):
    ckpt = _copy(tiny_checkpoint, tmp_path / "ckpt")
    suite, out = _suite(tmp_path), tmp_path / "out"
    first = _run(str(ckpt), suite, out, workers=0, max_steps=3)
    run_meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert len(run_meta["checkpoint_sha256"]) == 64
    again = _run(str(ckpt), suite, out, workers=0, max_steps=3)  # same content: resumes
    assert again["run"]["routes_skipped"] == 1
    assert again["config"]["fingerprint"] == first["config"]["fingerprint"]
    with pytest.raises(ValueError, match="explain_every"):
        _run(str(ckpt), suite, out, workers=0, max_steps=3, explain_every=5)
    # retrained into the same folder: other content under the same path
    weights = ckpt / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checkpoint content"):
        _run(str(ckpt), suite, out, workers=0, max_steps=3)


# --------------------------------------------------------------------------------- the lock


def test_a_second_run_into_a_busy_out_folder_fails_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    with exclusive_dir(out, ".lock", what="evaluation"):  # as a first run holds it
        with pytest.raises(OutputFolderBusyError, match="another evaluation"):
            _run("expert", _suite(tmp_path), out, workers=0, max_steps=5)
        assert not (out / "routes").exists() and not (out / "run.json").exists()
    summary = _run("expert", _suite(tmp_path), out, workers=0, max_steps=5)  # free again
    assert summary["n_routes"] == 1


# ------------------------------------------------------------------------ set-up failures


class _SetupFailsOnRightTurns:
    """The expert, except that ``reset`` raises on turn_right routes while the flag file
    exists (a policy whose resources are missing until the user fixes them)."""

    name = "test_setup_fails"
    flag: Path | None = None

    def __init__(self) -> None:
        self.inner = ExpertPolicy()

    def reset(self, privileged=None) -> None:
        if self.flag is not None and self.flag.exists() and privileged.intent == "turn_right":
            raise RuntimeError("policy resources missing")
        self.inner.reset(privileged)

    def act(self, obs):
        return self.inner.act(obs)


def test_a_route_that_cannot_be_set_up_is_not_a_result_and_is_retried(tmp_path, capsys):
    flag = tmp_path / "broken"
    flag.touch()
    _SetupFailsOnRightTurns.flag = flag
    registry.register_policy("test_setup_fails", _SetupFailsOnRightTurns)
    other = {"id": "int-straight", "scenario": "intersection", "intent": "go_straight",
             "seed": 1700003, "config": {"cameras": []}}
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "two", "routes": [ROUTE, other]}), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(AgentSetupError, match="1 of 2 route.*int-right.*resources missing"):
        _run("test_setup_fails", suite, out, workers=0, max_steps=5)
    assert sorted(p.name for p in (out / "routes").glob("*.json")) == ["int-straight.json"]
    failure = json.loads((out / "setup_failures" / "int-right.json").read_text("utf-8"))
    assert failure["setup_failed"] and failure["error"]["phase"] == "setup"
    assert not (out / "summary.json").exists()
    argv = ["eval", "closed-loop", "--policy", "test_setup_fails", "--suite", str(suite),
            "--out", str(out), "--workers", "0", "--max-steps", "5", "--explain-every", "0"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "could not be set up" in err and "Traceback" not in err
    flag.unlink()  # fixed: the rerun drives only the route that never started
    summary = _run("test_setup_fails", suite, out, workers=0, max_steps=5)
    assert summary["run"] == {**summary["run"], "routes_run": 1, "routes_skipped": 1}
    assert "Failed - Agent couldn't be set up" not in {r["status"] for r in summary["routes"]}
    assert not (out / "setup_failures" / "int-right.json").exists()
