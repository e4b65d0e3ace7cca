"""Test-wide settings (offline, headless) and the tiny dataset shared by the dataset and
training tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

TINY_SUITE = Path(__file__).parent / "datasets" / "tiny_suite.yaml"
TINY_EPISODES = 6


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A tiny dataset collected once per test process (3 short routes, a 64x48 camera)."""
    from drivevla.datasets.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("tiny") / "ds"
    collect(
        CollectConfig(
            suite=str(TINY_SUITE),
            episodes=TINY_EPISODES,
            out=str(out),
            workers=2,
            show_progress=False,
        )
    )
    return out


@pytest.fixture
def tiny_copy(tiny_dataset, tmp_path) -> Path:
    """A private copy of the tiny dataset, for tests that damage or extend it."""
    dst = tmp_path / "ds"
    shutil.copytree(tiny_dataset, dst)
    return dst
