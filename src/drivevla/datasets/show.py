"""``drivevla data show``: a PNG grid of frames with the driven future trajectory (green) and
the expert's plan (orange) projected into the first camera, a small bird's-eye inset of both
(ego at the bottom centre, heading up, 40 m tall), and captions (instruction + explanation).

Projection: waypoints are ground points (z = 0) in the frame's ego frame, projected with
:func:`drivevla.perception.camera_model.project_world_points` (the ego frame plays the world
frame, the ego at the origin with yaw 0).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from drivevla.datasets.format import FUTURE_STEPS
from drivevla.datasets.reader import decode_jpeg, open_dataset
from drivevla.perception.camera_model import NEAR_PLANE_M, project_world_points

TILE_WIDTH_PX = 320
INSET_PX = 72
INSET_METRES = 40.0
FUTURE_COLOUR = (60, 220, 90)
PLAN_COLOUR = (255, 150, 30)
_CAPTION_LINE_PX = 14


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _project(spec, pts_ego: np.ndarray, scale: float) -> list[tuple[float, float]]:

    pts = pts_ego[np.isfinite(pts_ego).all(axis=1)]
    if len(pts) == 0:
        return []
    pts = np.vstack([[max(spec.x + 0.5, 1.0), 0.0], pts])  # start just ahead of the camera
    uv, depth = project_world_points(spec, 0.0, 0.0, 0.0, np.c_[pts, np.zeros(len(pts))])
    return [(u * scale, v * scale) for (u, v), d in zip(uv, depth, strict=True) if d > NEAR_PLANE_M]


def _inset(future: np.ndarray, plan: np.ndarray) -> Image.Image:
    img = Image.new("RGB", (INSET_PX, INSET_PX), (25, 25, 30))
    draw = ImageDraw.Draw(img)
    px_per_m = INSET_PX / INSET_METRES

    def to_px(p: np.ndarray) -> tuple[float, float]:  # x forward -> up, y left -> left
        return (INSET_PX / 2 - p[1] * px_per_m, INSET_PX - 6 - p[0] * px_per_m)

    for pts, colour in ((plan, PLAN_COLOUR), (future, FUTURE_COLOUR)):
        pts = pts[np.isfinite(pts).all(axis=1)]
        xy = [to_px(np.zeros(2))] + [to_px(p) for p in pts]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
    ex, ey = to_px(np.zeros(2))
    draw.rectangle([ex - 2, ey - 4, ex + 2, ey + 4], fill=(80, 140, 255))
    return img


def _tile(frame: dict, spec, camera: str, font, shard: Path) -> Image.Image:
    rgb = decode_jpeg(frame[f"image.{camera}"], shard, frame["frame_index"], f"image.{camera}")
    scale = TILE_WIDTH_PX / rgb.shape[1]
    height = int(round(rgb.shape[0] * scale))
    img = Image.fromarray(rgb).resize((TILE_WIDTH_PX, height), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    future = np.asarray(frame["future.waypoints"], dtype=np.float64).reshape(FUTURE_STEPS, 2)
    plan = np.asarray(frame["expert.waypoints"], dtype=np.float64).reshape(FUTURE_STEPS, 2)
    for pts, colour in ((plan, PLAN_COLOUR), (future, FUTURE_COLOUR)):
        uv = [p for p in _project(spec, pts, scale) if all(math.isfinite(c) for c in p)]
        if len(uv) > 1:
            draw.line(uv, fill=colour, width=2)
        for u, v in uv[1:]:
            draw.ellipse([u - 2, v - 2, u + 2, v + 2], fill=colour)
    img.paste(_inset(future, plan), (TILE_WIDTH_PX - INSET_PX - 2, 2))
    captions = [
        f"#{frame['episode_id']}/{frame['frame_index']} {frame['scenario']} "
        f"v={frame['ego.speed']:.1f} m/s  {frame['expert.meta_action']} "
        f"[{frame['expert.reason']}]",
        f"Instruction: {frame['instruction']}",
        f"Explanation: {frame['expert.explanation']}",
    ]
    lines = [w for c in captions for w in textwrap.wrap(c, TILE_WIDTH_PX // 6)][:7]
    band = Image.new("RGB", (TILE_WIDTH_PX, 7 * _CAPTION_LINE_PX + 4), (15, 15, 20))
    bdraw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        bdraw.text((4, 2 + i * _CAPTION_LINE_PX), line, fill=(235, 235, 235), font=font)
    tile = Image.new("RGB", (TILE_WIDTH_PX, height + band.height))
    tile.paste(img, (0, 0))
    tile.paste(band, (0, height))
    return tile


def render_grid(
    root: str | Path, out: str | Path, n: int = 12, seed: int = 0, columns: int = 4
) -> Path:
    """Write a PNG grid of ``n`` frames drawn evenly (seeded) from the dataset; returns it."""
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    ds = open_dataset(root)
    if not ds.episodes:
        raise ValueError(f"{root} holds no finished episode")
    spec = ds.camera_specs[0]
    camera = spec.name
    total = ds.n_frames
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(total, size=min(n, total), replace=False).tolist())
    frames, start, want = [], 0, iter(picks)
    nxt = next(want, None)
    for e in ds.episodes:
        stop = start + int(e["n_frames"])
        rows = []
        while nxt is not None and nxt < stop:
            rows.append(nxt - start)
            nxt = next(want, None)
        if rows:
            table = ds.read_episode(e["episode_id"])
            shard = ds.shard_path(e["episode_id"])
            frames += [(table.slice(r, 1).to_pylist()[0], shard) for r in rows]
        start = stop
    font = _font()
    tiles = [_tile(f, spec, camera, font, shard) for f, shard in frames]
    cols = min(columns, len(tiles))
    rows_n = math.ceil(len(tiles) / cols)
    w, h = tiles[0].width, max(t.height for t in tiles)
    grid = Image.new("RGB", (cols * w + (cols - 1) * 4, rows_n * h + (rows_n - 1) * 4), (0, 0, 0))
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % cols) * (w + 4), (i // cols) * (h + 4)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return out
