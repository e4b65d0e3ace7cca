"""The closed-loop report of a run folder: ``report.md`` and a self-contained ``report.html``.

For every route: the instruction, the outcome, the driving score with its factors (route
completion x the product of each infraction's penalty coefficient), every infraction with its
time and a link to that moment of the route's video, instruction success, the refusal events
and speed requests, explanation faithfulness; a summary table; plots (``report_files/*.png``):
DS per route coloured by outcome, each route's speed profile against its references and its
driven path over the road map.

Speed references: the policy's planned speed and, where the closed loop's explainer ran, the
shadow expert's planned speed at the same state (both recorded per tick in the route file's
``drive``); with ``expert_drive`` the privileged expert also drives each route on its own here
(no cameras, a second or a few per route, cached in ``report_files/expert/``) and its speed and
path are drawn too. The road map is rebuilt from the route's spec, config and seed (an env
reset without cameras, ~20 ms).

``report.html`` embeds the plots as PNG data URIs and, up to :data:`EMBED_VIDEOS_MAX_MB` of
MP4 in all, the videos too (base64 data URIs: the one file opens anywhere, mailed or attached,
without a server; a demo's six videos are ~5 MB). Larger sets are linked relatively
(``videos/<route>.mp4``; keep the folder together). Each infraction's time is a link that
seeks the embedded player (a small script) and, without scripts, opens the MP4 at that time
(a ``#t=`` media fragment, as ``report.md`` links it).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from drivevla.agents import registry
from drivevla.agents.agent import Agent
from drivevla.agents.rollout import run_episode
from drivevla.benchmarks.closed_loop_hooks import Trace
from drivevla.benchmarks.report_plots import ds_bars, route_map, speed_profile
from drivevla.benchmarks.report_render import Report, RouteView, render_html, render_markdown
from drivevla.core.jsonio import write_json_atomic
from drivevla.core.paths import safe_child
from drivevla.sim_bridge.embedded.bev import marking_pieces
from drivevla.sim_bridge.embedded.config import SimConfig
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.roads import lane_geometries
from drivevla.sim_bridge.embedded.suites import RouteSpec

logger = logging.getLogger(__name__)

REPORT_FILES = "report_files"
EMBED_VIDEOS_MAX_MB = 64.0
EXPERT_POLICY = "expert"


def load_run(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's ``summary.json`` and its route records, in the summary's order."""
    path = out / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: a report needs a finished closed-loop run folder "
            "(drivevla eval closed-loop ... --out DIR; rerun it to finish the missing routes)"
        )
    summary = json.loads(path.read_text(encoding="utf-8"))
    records = []
    for r in summary["routes"]:
        route_file = safe_child(out / "routes", r["route_id"], ".json", what="route id")
        records.append(json.loads(route_file.read_text(encoding="utf-8")))
    return summary, records


def _route_env(record: dict[str, Any]) -> tuple[EmbeddedDrivingEnv, RouteSpec]:
    """The route's env (cameras off), reset as the run reset it: same spec, config, seed."""
    raw = record["route"]
    spec = RouteSpec(
        raw["id"], raw["scenario"], raw["intent"], int(raw["seed"]),
        instruction=raw.get("instruction"), config=dict(raw.get("config") or {}),
        events=tuple(raw.get("events") or ()),
    )
    config = record.get("config") or spec.sim_config().to_dict()
    env = EmbeddedDrivingEnv(SimConfig.from_dict({**config, "cameras": []}))
    env.reset(seed=spec.seed, options=spec.reset_options())
    return env, spec


def _map_layers(env: EmbeddedDrivingEnv) -> tuple[list, list, list]:
    """(road polygons, lane-marking polylines, stop lines) of the env's road network."""
    lanes = lane_geometries(env.scenario.network)
    roads = []
    for lane in lanes:
        right, left = lane.edges()
        roads.append(np.concatenate([right, left[::-1]], axis=0))
    markings = [piece for piece, _ in marking_pieces(lanes)]
    stops = [np.asarray(light.stop_line, dtype=float) for light in env.world.lights]
    return roads, markings, stops


def _expert_drive(env: EmbeddedDrivingEnv, spec: RouteSpec) -> dict[str, Any]:
    """The privileged expert drives the route on its own: its speeds, path and score."""
    trace = Trace()
    episode = run_episode(env, lambda e: Agent(registry.make_policy(EXPERT_POLICY)), [trace],
                          seed=spec.seed, options=spec.reset_options())
    result = env.route_result().to_dict()
    if episode.truncated and not episode.terminated:
        result["status"] = "Failed - step limit reached"
    drive = trace.drive_record()
    return {
        "route": spec.to_dict(),
        "time_s": drive["time_s"],
        "speed_mps": drive["speed_mps"],
        "path_xy": drive["path_xy"],
        "status": result["status"],
        "driving_score": result["driving_score"],
    }


def _cached_expert(out: Path, env: EmbeddedDrivingEnv, spec: RouteSpec,
                   record: dict[str, Any]) -> dict[str, Any]:
    """:func:`_expert_drive`, kept in ``report_files/expert/<route>.json`` for reruns (redone
    when the route's spec or config changed)."""
    path = safe_child(out / REPORT_FILES / "expert", spec.route_id, ".json", what="route id")
    key = {"route": spec.to_dict(), "config": record.get("config")}
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == json.loads(json.dumps(key)):
            return cached
    expert = {**_expert_drive(env, spec), "key": key}
    write_json_atomic(path, expert)
    return expert


def _event_windows(record: dict[str, Any]) -> list[tuple[float, float, str]]:
    """(start, end, label) of the route's instruction events, for the speed plot."""
    windows = []
    for e in record.get("instruction_events") or []:
        start = float(e.get("start_s", 0.0))
        label = e.get("category") or (f"{e.get('speed_kmh')} km/h" if e.get("speed_kmh") else "")
        windows.append((start, start + float(e.get("duration_s", 0.0)),
                        f"{e.get('kind', '')} {label}".strip()))
    return windows


def _poster(video: Path, record: dict[str, Any]) -> bytes | None:
    """A PNG of the video frame two ticks into the first infraction's banner (or the middle
    frame): the player shows it before it plays."""
    import imageio.v2 as imageio  # lazy: imageio-ffmpeg only where there are videos

    meta = record.get("video") or {}
    banners = meta.get("banners") or []
    n = int(meta.get("frames") or 0)
    index = banners[0]["first_frame"] + 2 if banners else n // 2
    try:
        with imageio.get_reader(str(video)) as reader:
            frame = reader.get_data(max(0, min(index, n - 1)) if n else 0)
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG")
        return buf.getvalue()
    except Exception as exc:  # an unreadable video still gets its link; say why no poster
        logger.warning("no poster frame from %s: %s", video, exc)
        return None


def _rebuilt_route(out: Path, view: RouteView, expert_drive: bool) -> tuple[list, list, list]:
    """The route's map layers (:func:`_map_layers`) from its rebuilt env and, with
    ``expert_drive``, the expert's own drive into ``view.expert``. A route whose env cannot
    be rebuilt (or whose expert drive fails) gets a note in the report instead."""
    record = view.record
    try:
        env, spec = _route_env(record)
    except Exception as exc:  # e.g. a route that crashed at setup: no map, say why
        logger.warning("route %s: no road map: %s", view.route_id, exc)
        view.notes.append(f"no road map: the route's env could not be rebuilt ({exc})")
        return [], [], []
    try:
        if expert_drive and record.get("policy") != EXPERT_POLICY:
            try:
                view.expert = _cached_expert(out, env, spec, record)
            except Exception as exc:  # the report goes on without this reference
                logger.warning("route %s: the expert's drive failed: %s", view.route_id, exc)
                view.notes.append(f"the expert's own drive of this route failed ({exc})")
            env.reset(seed=spec.seed, options=spec.reset_options())  # the map: the start state
        if not (view.record.get("drive") or {}).get("route_polyline"):  # an older record
            view.record = {**record, "drive": {**(record.get("drive") or {}), "route_polyline":
                                               np.asarray(env.scenario.route.polyline).tolist()}}
        return _map_layers(env)
    finally:
        env.close()


def route_view(out: Path, record: dict[str, Any], expert_drive: bool = True) -> RouteView:
    """The route's plots, its video and poster, and (``expert_drive``) the expert's drive."""
    view = RouteView(record)
    infractions = record["result"].get("infractions", [])
    roads, markings, stops = _rebuilt_route(out, view, expert_drive)
    drive = view.record.get("drive") or {}
    expert_path = view.expert["path_xy"] if view.expert else None
    view.plots["map"] = route_map(roads, markings, stops, drive, infractions, expert_path)
    if drive.get("time_s"):
        view.plots["speed"] = speed_profile(drive, infractions, view.expert,
                                            _event_windows(record))
    video = out / view.video_link
    if video.is_file() and video.resolve().parent == (out / "videos").resolve():
        view.video = video
        view.poster = _poster(video, record)
    return view


def build_report(out: Path, summary: dict[str, Any] | None = None, *,
                 expert_drive: bool = True, embed_videos: bool | None = None,
                 progress: bool = True) -> Report:
    """Everything :func:`write_report` writes, for the run folder ``out``."""
    out = Path(out)
    loaded, records = load_run(out)
    summary = summary or loaded
    views = [route_view(out, rec, expert_drive)
             for rec in tqdm(records, desc="report", unit="route", disable=not progress)]
    video_mb = sum(v.video.stat().st_size for v in views if v.video) / 2**20
    if embed_videos is None:
        embed_videos = video_mb <= EMBED_VIDEOS_MAX_MB
    ds_plot = ds_bars([(v.route_id, float(v.record["metrics"]["driving_score"]),
                        str(v.record["status"])) for v in views])
    return Report(out, summary, views, ds_plot, embed_videos, video_mb)


def write_report(out: Path, summary: dict[str, Any] | None = None, *,
                 expert_drive: bool = True, embed_videos: bool | None = None,
                 progress: bool = True) -> Path:
    """Write ``report.md``, ``report.html`` and ``report_files/*.png`` for the closed-loop
    run folder ``out`` (its ``summary.json``, ``routes/`` and ``videos/``); returns the
    HTML's path. ``embed_videos``: None embeds them up to :data:`EMBED_VIDEOS_MAX_MB`."""
    report = build_report(out, summary, expert_drive=expert_drive, embed_videos=embed_videos,
                          progress=progress)
    files = report.out / REPORT_FILES
    files.mkdir(parents=True, exist_ok=True)
    (files / "driving_score.png").write_bytes(report.ds_plot)
    for view in report.routes:
        for name, png in view.plots.items():
            safe_child(files, view.route_id, f"-{name}.png", what="route id").write_bytes(png)
    (report.out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    html_path = report.out / "report.html"
    html_path.write_text(render_html(report), encoding="utf-8")
    return html_path
