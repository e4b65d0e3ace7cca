"""bench cost: counted parameters and FLOPs, the device table's arithmetic, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from drivevla.benchmarks import cost
from drivevla.cli import main


def test_flops_of_a_known_layer_are_counted_by_hand():
    layer = torch.nn.Linear(10, 20)
    _, total, per_module = cost._flops(lambda: layer(torch.zeros(3, 10)))
    assert total == 2 * 3 * 10 * 20  # one multiply and one add per weight and row
    assert per_module == {"Linear": total}


def test_activation_bytes_and_calls_of_a_known_stack():
    stack = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    nbytes, calls = cost._activations(stack, lambda: stack(torch.zeros(5, 4)))
    assert calls == 3
    assert nbytes == 4 * (5 * 8 + 5 * 8 + 5 * 2)  # float32 outputs of the three leaves


def test_device_rates_are_utilisation_times_dense_peak_over_flops():
    rows = {r["name"]: r for r in cost.device_table(10**9, 0.5)}
    agx = rows["Jetson AGX Orin 64GB"]
    assert agx["expected_hz_fp16"] == pytest.approx(0.5 * 42.5e12 / 1e9)
    assert agx["expected_hz_int8"] == pytest.approx(2 * agx["expected_hz_fp16"])
    assert cost.launch_floor_hz(100) == pytest.approx(1e6 / (100 * cost.LAUNCH_US))


def test_drivevla_tiny_cost_through_the_cli(tmp_path, capsys):
    out = tmp_path / "cost.json"
    assert main(["bench", "cost", "--policy", "drivevla-tiny", "--out", str(out),
                 "--utilisation", "0.5"]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    from drivevla.agents.registry import make_policy

    model = make_policy("drivevla-tiny").model
    assert result["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    action = result["action_path"]
    # the vision encoder and the language model both do work; their sum is within the total
    assert len([v for v in action["per_module_flops"].values() if v > 1e6]) >= 2
    assert sum(action["per_module_flops"].values()) <= action["flops"]
    assert action["leaf_module_calls"] > 10 and action["activation_output_bytes"] > 0
    assert result["explanation"]["tokens"] >= 1 and result["explanation"]["flops"] > 0
    assert result["config"]["utilisation"] == 0.5 and len(result["devices"]) == 3
    printed = capsys.readouterr().out
    assert "Jetson AGX Orin 64GB" in printed and "assumptions:" in printed
    assert "versions" in result and "hardware" in result


def test_a_policy_without_a_network_or_a_zero_utilisation_is_a_one_line_error(tmp_path,
                                                                               capsys):
    assert main(["bench", "cost", "--policy", "idm", "--out", str(tmp_path / "c.json")]) == 2
    assert "has none" in capsys.readouterr().err
    with pytest.raises(ValueError, match="utilisation"):
        cost.run_cost("drivevla-tiny", utilisation=0.0)
    assert not (tmp_path / "c.json").exists()
