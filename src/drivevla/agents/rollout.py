"""The one rollout loop: every drive of the project (collection, closed loop, ``sim drive``,
latency, simulator throughput) runs :func:`run_episode`.

One episode::

    obs, info = env.reset(seed, options)
    driver = driver(env) if a factory was given;  driver.reset(env);  hook.on_reset(...)
    each tick:  hook.before_tick
                observation = env.make_observation(obs, info);  hook.after_observation
                control, decision = driver.drive(tick);          hook.after_decision
                hook.before_step;  obs, info = env.step(tick.control);  hook.after_step
    a route cut by the step limit is ended with "step limit reached";  hook.on_end(episode)

Hooks see the :class:`Tick` and may replace its ``control`` or ``decision`` in
``after_decision`` (what gets applied is ``tick.control`` after every hook ran). Hooks run in
the order given, at every point. With ``capture_errors`` the first error of the driver, the
simulator or a hook with a ``phase`` ends the episode and is returned in
:attr:`Episode.error` (the phases: ``setup``, ``observation``, ``agent``, ``simulation`` and
those hooks name); other errors always propagate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from drivevla.core.env import Env, PrivilegedState
from drivevla.core.types import Control, Decision, Observation
from drivevla.planner.route_follower import RouteFollower, RouteFollowerConfig

STEP_LIMIT_REASON = "step limit reached"


def privileged_state_of(env: Env | Any) -> PrivilegedState:
    """``env.privileged_state()`` of an env or of the env inside gymnasium wrappers."""
    return getattr(env, "unwrapped", env).privileged_state()


@dataclass
class Tick:
    """One control tick: what the env returned, what the driver made of it."""

    index: int  # ticks since reset, from 0
    obs: dict[str, Any]  # the env's raw observation
    info: dict[str, Any]  # the env's ground-truth info of this tick
    observation: Observation | None = None  # the typed observation the driver acts on
    control: Control | None = None  # the control that will be applied
    decision: Decision | None = None  # the driver's decision (None for scripted drivers)
    driver: str = ""  # the name of who chose ``control``


@runtime_checkable
class Driver(Protocol):
    """What :func:`run_episode` drives with (an :class:`~drivevla.agents.agent.Agent`, a
    scripted driver)."""

    name: str

    def reset(self, env: Env) -> None: ...

    def drive(self, tick: Tick) -> tuple[Control, Decision | None]: ...


class Hook:
    """A rollout hook; every moment is a no-op here: override the ones you need.

    ``phase``: when set, errors this hook raises in ``after_decision`` are captured as errors
    of that phase (see the module docstring); errors in ``on_reset`` count as ``setup``."""

    phase: str | None = None

    def on_reset(self, env: Env, driver: Driver, info: dict[str, Any]) -> None: ...

    def before_tick(self, tick: Tick) -> None: ...

    def after_observation(self, tick: Tick) -> None: ...

    def after_decision(self, tick: Tick) -> None: ...

    def before_step(self, tick: Tick) -> None: ...

    def after_step(self, tick: Tick, info: dict[str, Any]) -> None: ...

    def on_end(self, episode: Episode) -> None: ...


class RolloutError(RuntimeError):
    """An error that ended an episode run with ``capture_errors``; ``cause`` is the original
    exception, ``step`` and ``time_s`` those of the tick it happened in."""

    def __init__(self, phase: str, cause: BaseException, step: int | None, time_s: Any) -> None:
        super().__init__(f"{phase}: {type(cause).__name__}: {cause}")
        self.phase, self.cause, self.step, self.time_s = phase, cause, step, time_s


@dataclass
class Episode:
    """How an episode run ended: the last ``obs``/``info`` and who ended it."""

    obs: dict[str, Any]
    info: dict[str, Any]
    ticks: int = 0
    terminated: bool = False
    truncated: bool = False
    error: RolloutError | None = None
    driver: Driver | None = None
    hooks: list[Hook] = field(default_factory=list)


def _overrides(hook: Hook, name: str) -> bool:
    base = getattr(Hook, name)
    return getattr(type(hook), name, base) is not base


def _overridden(hooks: Sequence[Hook], name: str) -> list[Callable[..., Any]]:
    """The bound ``name`` methods of the hooks that override it (no call for no-ops)."""
    return [getattr(h, name) for h in hooks if _overrides(h, name)]


class _Phase:
    """Runs one phase of a tick; with ``capture`` its error becomes a RolloutError."""

    def __init__(self, capture: bool) -> None:
        self.capture = capture

    def run(self, phase: str | None, info: dict[str, Any], fn: Callable[..., Any], *args):
        if not self.capture or phase is None:
            return fn(*args)
        try:
            return fn(*args)
        except Exception as exc:
            raise RolloutError(phase, exc, info.get("step"), info.get("time_s")) from exc


def run_episode(
    env: Env,
    driver: Driver | Callable[[Env], Driver],
    hooks: Sequence[Hook] = (),
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    max_ticks: int | None = None,
    capture_errors: bool = False,
) -> Episode:
    """Reset ``env`` and drive one episode (see the module docstring); ``driver`` is a
    :class:`Driver` or a factory called with the reset env. ``max_ticks`` stops after that
    many ticks even though the episode goes on. Errors of ``env.reset`` always propagate."""
    obs, info = env.reset(seed=seed, options=options)
    hooks = list(hooks)
    episode = Episode(obs, info, hooks=hooks)
    guard = _Phase(capture_errors)
    try:
        episode.driver = guard.run("setup", info, _setup, env, driver, hooks, info)
        _loop(env, episode, guard, max_ticks)
    except RolloutError as err:
        episode.error = err
    if episode.error is None and episode.truncated and not episode.terminated:
        env.terminate_route(STEP_LIMIT_REASON)
    for on_end in _overridden(hooks, "on_end"):
        on_end(episode)
    return episode


def _setup(env: Env, driver: Any, hooks: list[Hook], info: dict[str, Any]) -> Driver:
    if not isinstance(driver, Driver):
        driver = driver(env)
    driver.reset(env)
    for hook in hooks:
        hook.on_reset(env, driver, info)
    return driver


def _loop(env: Env, episode: Episode, guard: _Phase, max_ticks: int | None) -> None:
    hooks, driver = episode.hooks, episode.driver
    before_tick = _overridden(hooks, "before_tick")
    after_observation = _overridden(hooks, "after_observation")
    after_decision = [(h.phase, h.after_decision) for h in hooks if _overrides(h, "after_decision")]
    before_step = _overridden(hooks, "before_step")
    after_step = _overridden(hooks, "after_step")
    name = getattr(driver, "name", "")
    obs, info = episode.obs, episode.info
    while max_ticks is None or episode.ticks < max_ticks:
        tick = Tick(episode.ticks, obs, info, driver=name)
        for fn in before_tick:
            fn(tick)
        tick.observation = guard.run("observation", info, env.make_observation, obs, info)
        for fn in after_observation:
            fn(tick)
        tick.control, tick.decision = guard.run("agent", info, driver.drive, tick)
        for phase, fn in after_decision:
            guard.run(phase, info, fn, tick)
        for fn in before_step:
            fn(tick)
        obs, _, terminated, truncated, info = guard.run("simulation", info, env.step, tick.control)
        episode.obs, episode.info = obs, info
        episode.terminated, episode.truncated = terminated, truncated
        episode.ticks += 1
        for fn in after_step:
            fn(tick, info)
        if terminated or truncated:
            break


class RouteFollowerDriver:
    """The scripted route follower (:class:`RouteFollower`) as a rollout driver: it reads the
    tick's ground-truth ``info``, not the camera observation."""

    name = "route_follower"

    def __init__(self, config: RouteFollowerConfig | None = None) -> None:
        self.config = config
        self.follower: RouteFollower | None = None

    def reset(self, env: Env) -> None:
        self.follower = RouteFollower(privileged_state_of(env), self.config)

    def drive(self, tick: Tick) -> tuple[Control, None]:
        return self.follower.control(tick.info), None
