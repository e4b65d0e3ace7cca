"""A local Ray instance for one test module: 2 CPUs, no dashboard, no telemetry, the test
module pickled by value (Ray's workers cannot import tests/), always shut down."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any


@contextlib.contextmanager
def local_ray(module: ModuleType) -> Iterator[Any]:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    ray.cloudpickle.register_pickle_by_value(module)
    try:
        yield ray
    finally:
        ray.shutdown()
