"""policy_threads: a policy's own pool and torch's threads set inside the block, torch's
restored after (also after an error); nothing changes without a thread count."""

from __future__ import annotations

import pytest
import torch

from drivevla.core.policy import policy_threads


class _OwnPool:
    def __init__(self) -> None:
        self.threads: list[int] = []

    def set_threads(self, threads: int) -> None:
        self.threads.append(threads)


def test_threads_inside_the_block_and_restored_after():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    pool = _OwnPool()
    with policy_threads(pool, target) as torch_threads:
        assert torch_threads == torch.get_num_threads() == target
    assert pool.threads == [target] and torch.get_num_threads() == before
    with pytest.raises(RuntimeError), policy_threads(object(), target):
        raise RuntimeError("the benchmark failed")
    assert torch.get_num_threads() == before


def test_no_thread_count_changes_nothing():
    before, pool = torch.get_num_threads(), _OwnPool()
    with policy_threads(pool, None) as torch_threads:
        assert torch_threads is None and torch.get_num_threads() == before
    assert pool.threads == []
