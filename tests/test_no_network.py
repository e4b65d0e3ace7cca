"""drivevla needs no network at run time: loading the shipped model and driving a route with it
never opens a connection (docs/security.md)."""

from __future__ import annotations

import socket

import pytest
import yaml

from drivevla.benchmarks.closed_loop import run_closed_loop


def test_a_closed_loop_run_of_the_shipped_model_opens_no_connection(tmp_path, monkeypatch):
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "one", "routes": [
        {"id": "r", "scenario": "intersection", "intent": "turn_left", "seed": 3}]}),
        encoding="utf-8")
    summary = run_closed_loop("drivevla-tiny", suite, tmp_path / "out", workers=0, max_steps=5,
                              explain_every=2, progress=False, print_table=False)
    assert summary["n_routes"] == 1 and summary["routes"][0]["status"] != "Failed - Agent crashed"
    assert attempts == []
    with pytest.raises(OSError, match="network access attempted"):  # the guard itself works
        socket.create_connection(("127.0.0.1", 9))
