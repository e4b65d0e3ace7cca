"""Fixtures of the training tests: torch on one thread (much faster on a busy small CPU)
and one frame cache per module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def frame_cache(tmp_path_factory) -> Path:
    """One frame cache for the module (never the shared dataset's own ``cache`` dir)."""
    return tmp_path_factory.mktemp("frame-cache")
