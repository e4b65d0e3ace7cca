"""How far closed loop carries a tiny difference: a closed-loop run of a policy whose every
plan is perturbed by seeded uniform noise of +-EPS (metres on the waypoints, m/s on the
target speeds), to put beside the unperturbed run with ``drivevla eval compare``.

    SDL_VIDEODRIVER=offscreen HF_HUB_OFFLINE=1 python tools/perturbed_run.py \
        --policy runs/tiny-v7 --eps 1e-5 --suite standard --out runs/eval/v7-eps1e-5 --workers 2

An export whose outputs differ from PyTorch by 1e-5 should part from it no more than this run
does (docs/export.md, "Closed loop"). The noise restarts from ``--seed`` on every route.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.agents import registry
from drivevla.benchmarks.closed_loop import run_closed_loop


class Perturbed:
    """``inner`` with every decision's waypoints and speeds moved by uniform noise of
    +-``eps`` (speeds kept >= 0); everything else is the inner policy's."""

    def __init__(self, inner: Any, eps: float, seed: int) -> None:
        self.inner, self.eps, self.seed = inner, float(eps), int(seed)
        self.name = f"{inner.name}+noise{eps:g}"
        self.rng = np.random.default_rng(self.seed)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def reset(self, privileged: Any = None) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.inner.reset(privileged)

    def act(self, obs: Any) -> Any:
        decision = copy.copy(self.inner.act(obs))
        wp = np.asarray(decision.waypoints, np.float64)
        v = np.asarray(decision.target_speeds, np.float64)
        decision.waypoints = wp + self.rng.uniform(-self.eps, self.eps, wp.shape)
        decision.target_speeds = np.clip(v + self.rng.uniform(-self.eps, self.eps, v.shape),
                                         0.0, None)
        return decision


class PerturbedFactory:
    """A picklable factory of :class:`Perturbed` (worker processes build their own)."""

    def __init__(self, policy: str, eps: float, seed: int) -> None:
        self.policy, self.eps, self.seed = policy, eps, seed

    def __call__(self) -> Perturbed:
        return Perturbed(registry.make_policy(self.policy), self.eps, self.seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="name or checkpoint dir")
    parser.add_argument("--eps", type=float, default=1e-5, help="noise half-width (m, m/s)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (per route)")
    parser.add_argument("--suite", default="standard")
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--explain-every", type=int, default=10)
    args = parser.parse_args()
    name = f"perturbed:{args.policy}:eps={args.eps:g}:seed={args.seed}"
    registry.policy_names()  # the built-ins first
    registry.register_policy(name, PerturbedFactory(args.policy, args.eps, args.seed))
    run_closed_loop(name, args.suite, Path(args.out), workers=args.workers,
                    explain_every=args.explain_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
