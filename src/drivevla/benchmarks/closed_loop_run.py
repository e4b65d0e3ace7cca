"""What a closed-loop run folder records about the run and checks before any route starts:
the policy's identity, that a checkpoint loads, its content hash, the resume fingerprint and
the run options."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from drivevla.agents import registry
from drivevla.core.jsonio import write_json_atomic
from drivevla.sim_bridge.embedded.suites import Suite
from drivevla.vla.policy import CheckpointError

RUN_FILE = "run.json"


def policy_identity(policy: str) -> str:
    path = Path(policy)
    return str(path.resolve()) if path.is_dir() else policy


def checkpoint_dir(policy: str) -> Path | None:
    """The checkpoint (or ``onnx:DIR`` deployment) directory ``policy`` names; None for a
    registered policy name."""
    folder = registry.policy_folder(policy)
    if folder is not None:
        return folder
    path = Path(policy)
    return path if policy not in registry.policy_names() and path.is_dir() else None


def check_policy_loads(policy: str) -> Any | None:
    """Load a checkpoint once in this process, so that a broken one (truncated weights, bad
    config.json, unknown key) fails the command instead of setting up no route at all; the
    loaded policy (None for a registered policy that is no checkpoint)."""
    path = checkpoint_dir(policy)
    if path is None:
        return None
    try:
        return registry.make_policy(policy)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded as a policy: {type(exc).__name__}: {exc}"
        ) from exc


def with_policy_cameras(base_config: dict[str, Any] | None, loaded: Any | None
                        ) -> dict[str, Any] | None:
    """``base_config`` with the cameras a loaded checkpoint declares
    (:func:`~drivevla.agents.registry.declared_cameras`), so the simulator
    renders the rig the weights learned; unchanged when the checkpoint declares none or the
    caller names its own cameras (a route's config still overrides both)."""
    rig = registry.declared_cameras(loaded)
    if not rig or (base_config and "cameras" in base_config):
        return base_config
    return {**(base_config or {}), "cameras": rig}


def checkpoint_sha256(policy: str) -> str | None:
    """sha256 over the relative names and bytes of every file of a checkpoint directory."""
    path = checkpoint_dir(policy)
    if path is None:
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def fingerprint(
    suite: Suite,
    base_config: dict | None,
    max_steps: int | None,
    checkpoint_sha256: str | None = None,
    explain_every: int = 0,
    runtime: str = "none",
    faults: dict[str, Any] | None = None,
    clock: str = "simulated",
) -> str:
    """What makes two runs' results comparable: routes, config, options, checkpoint content.
    ``runtime``, ``faults`` and ``clock`` count only when set (runs from before these options
    keep their fingerprint)."""
    extra: dict[str, Any] = {} if runtime == "none" else {"runtime": runtime}
    extra.update({"faults": faults} if faults else {})
    extra.update({"clock": clock} if clock != "simulated" else {})
    blob = json.dumps(
        {"routes": suite.to_dict()["routes"], "base_config": base_config, "max_steps": max_steps,
         "checkpoint_sha256": checkpoint_sha256, "explain_every": explain_every, **extra},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def claim_out_dir(out: Path, meta: dict[str, Any]) -> None:
    run_file = out / RUN_FILE
    if run_file.is_file():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        if (old.get("policy"), old.get("suite")) != (meta["policy"], meta["suite"]):
            raise ValueError(
                f"{out} holds results of policy {old.get('policy')!r} on suite "
                f"{old.get('suite')!r}; this run is policy {meta['policy']!r} on suite "
                f"{meta['suite']!r}. Use another --out directory (or delete {out})."
            )
        if old.get("fingerprint") != meta["fingerprint"]:
            raise ValueError(
                f"{out} holds results of suite {meta['suite']!r} with other routes, config, "
                "max_steps, explain_every, runtime, clock, faults or checkpoint content than this "
                "run; use another --out directory (or delete it)."
            )
        return
    routes_dir = out / "routes"
    if routes_dir.is_dir() and any(routes_dir.glob("*.json")):
        raise ValueError(f"{out} holds route results but no {RUN_FILE}; use another --out")
    write_json_atomic(run_file, meta)


def check_run_options(max_steps: Any, explain_every: Any, workers: Any) -> None:
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
    ):
        raise ValueError(f"max_steps={max_steps!r} must be an integer >= 1 (or unset)")
    for name, value in (("explain_every", explain_every), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r} must be an integer >= 0")


def check_carla_options(explain_every: int, video: bool, runtime: str,
                         faults: Any) -> None:
    """What the CARLA backend cannot do yet: score explanations (the shadow expert plans on the
    embedded lane graph), render the BEV video, run the runtime's radar and audits."""
    unsupported = [name for name, on in (
        ("explain_every > 0 (explanations are scored against the expert, which cannot drive in "
         "CARLA; the leaderboard agent file logs them)", explain_every > 0),
        ("video", video), (f"runtime={runtime!r}", runtime != "none"),
        ("faults", faults is not None and faults.active)) if on]
    if unsupported:
        raise ValueError(f"the CARLA backend does not support: {'; '.join(unsupported)}")


def run_meta(
    policy: str,
    suite: Suite,
    suite_source: str | Path,
    base_config: dict | None,
    max_steps: int | None,
    explain_every: int,
    runtime: str = "none",
    faults: dict[str, Any] | None = None,
    clock: str = "simulated",
) -> dict[str, Any]:
    """The run's identity as ``run.json`` records it (the caller adds protocol and
    provenance). ``faults``: the run's ``FaultSpec.to_dict()`` (None: no faults)."""
    checkpoint_hash = checkpoint_sha256(policy)
    return {
        "policy": policy_identity(policy),
        "suite": suite.name,
        "suite_source": str(suite_source),
        "fingerprint": fingerprint(suite, base_config, max_steps, checkpoint_hash, explain_every,
                                   runtime, faults, clock),
        "checkpoint_sha256": checkpoint_hash,
        "explain_every": explain_every,
        "runtime": runtime,
        "faults": faults,
        "clock": clock,
        "base_config": base_config,
        "max_steps": max_steps,
    }


def resolve_factory(policy: str) -> Any:
    """The parent's factory for ``policy`` when a worker cannot know it by name (it was
    registered at run time, e.g. by a test); None for the built-in names and checkpoints."""
    names = registry.policy_names()
    if policy not in names:
        if registry.policy_folder(policy) is not None:  # a checkpoint, or onnx:DIR
            return None
        raise ValueError(
            f"unknown policy {policy!r}: not a registered name {names} "
            "and not a checkpoint directory with a config.json (an exported folder is "
            "onnx:DIR)"
        )
    # the registry has no public getter; a worker gets the factory itself (pickled by
    # reference) so that policies registered at run time exist there too
    factory = getattr(registry, "_FACTORIES", {}).get(policy)
    if factory is None:
        return None
    try:
        pickle.dumps(factory)
    except Exception as exc:
        if getattr(factory, "__module__", "").startswith("drivevla."):
            return None  # a built-in: the worker's registry knows it by name
        raise ValueError(
            f"policy {policy!r} is registered with a factory worker processes cannot import "
            f"({exc}); register a module-level class or function"
        ) from exc
    return factory
