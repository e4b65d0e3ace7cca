"""MP4 videos of drives, one layout for every drive video (``sim drive``, the closed-loop
benchmark, the demo): front camera and BEV side by side, infraction banners over their top
edge, and one caption band below, as tall as its lines.

The caption band (:class:`Caption`) always has the same fields with the same labels:
``Instruction [kind]:``, ``Explanation:``, ``Reason:`` (drivers with a reason head; the shadow
expert's reason beside it as a debug option) and a status line (time, speed, route completion
and the route's running driving score). A video keeps one frame size (H.264), so each field gets a
fixed number of rows for the whole video (:class:`CaptionRows`, planned from the route's
texts); a text longer than its rows ends in an ellipsis.

:class:`InfractionBanners` turns the route criteria's infraction records into banners shown for
:data:`BANNER_SECONDS` from the tick the record appears; :class:`DriveVideo` is the rollout hook
that writes the frames (subclassed by the closed-loop benchmark's
:class:`~drivevla.benchmarks.closed_loop_hooks.RouteVideo`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from drivevla.agents.rollout import Driver, Episode, Hook, Tick
from drivevla.benchmarks.scoring import ROUTE_ENDING_KINDS, infraction_label
from drivevla.core.env import Env
from drivevla.language.reasons import Reason

logger = logging.getLogger(__name__)

CAPTION_LINE_PX = 16
CAPTION_MARGIN_PX = 3  # above the first and below the last caption row
CAPTION_BG = (15, 15, 20)
CAPTION_FG = (235, 235, 235)
BANNER_PX = 18  # one banner row, drawn over the top of the camera and BEV panels
BANNER_RGB = (200, 16, 16)
BANNER_FG = (255, 255, 255)
BANNER_SECONDS = 1.0  # how long a banner stays after its infraction
# explanations are short sentences: a video whose first frame has one gives the explanation
# field at least the rows this many characters need at its width
EXPLANATION_BUDGET_CHARS = 60
_PAD_PX = 6  # text inset from the left edge
GROWING_KIND = "outside_route_lanes"  # recorded once, its factor grows until the route ends


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


_FONT = _font()


def _text_px(text: str) -> float:
    return float(_FONT.getlength(text)) if hasattr(_FONT, "getlength") else 7.0 * len(text)


def wrap_px(text: str, max_px: float) -> list[str]:
    """Greedy word wrap of ``text`` to lines at most ``max_px`` wide (a word longer than a
    line is cut)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if _text_px(candidate) <= max_px:
            line = candidate
            continue
        if line:
            lines.append(line)
        while _text_px(word) > max_px and len(word) > 1:
            cut = max(1, int(len(word) * max_px / _text_px(word)))
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines or [""]


def _ellipsize(text: str, max_px: float) -> str:
    if _text_px(text) <= max_px:
        return text
    while text and _text_px(text + " ...") > max_px:
        text = text[:-1]
    return text.rstrip() + " ..."


@dataclass(frozen=True)
class Caption:
    """What the caption band says at one tick (SI units; ``route_completion`` in percent).

    ``show_reason``: a ``Reason:`` row (drivers with a reason head); ``show_expert``: the
    shadow expert's reason on that row too (debug). A video keeps both for all its frames."""

    instruction: str
    instruction_kind: str = "navigation"
    explanation: str | None = None
    reason: str | None = None  # the decided reason (the policy's reason head)
    expert_reason: str | None = None  # the shadow expert's reason at this tick
    show_reason: bool = True
    show_expert: bool = False
    time_s: float = 0.0
    speed_mps: float = 0.0
    route_completion: float = 0.0
    driving_score: float | None = None  # RC x penalty so far
    penalty: float = 1.0  # the infraction penalty so far

    def texts(self) -> list[str]:
        """The caption fields, labelled: instruction, explanation, (reason,) status."""
        texts = [
            f"Instruction [{self.instruction_kind}]: {self.instruction}",
            f"Explanation: {self.explanation or '-'}",
        ]
        if self.show_reason:
            reason = f"Reason: {self.reason or '-'}"
            if self.show_expert:
                differs = self.expert_reason is not None and self.expert_reason != self.reason
                reason += f" | expert: {self.expert_reason or '-'}" + (
                    "  (differs)" if differs else "")
            texts.append(reason)
        v, ds = self.speed_mps, "-"
        if self.driving_score is not None:
            ds = f"{self.driving_score:.1f}"
            ds += f" (x{self.penalty:.2f})" if self.penalty < 1 else ""
        texts.append(f"t={self.time_s:.1f} s | v={v:.1f} m/s ({v * 3.6:.0f} km/h) | "
                     f"RC={self.route_completion:.0f}% | DS={ds}")
        return texts


@dataclass(frozen=True)
class CaptionRows:
    """Rows per caption field for a whole video (its frames keep one size)."""

    rows: tuple[int, ...]

    @property
    def height_px(self) -> int:
        return CAPTION_LINE_PX * sum(self.rows) + 2 * CAPTION_MARGIN_PX

    @classmethod
    def plan(
        cls, width_px: int, first: Caption, instructions: Sequence[str] = ()
    ) -> CaptionRows:
        """Rows for a video ``width_px`` wide whose first caption is ``first`` and whose
        instruction is one of ``instructions`` (or ``first``'s): the longest instruction's
        rows; the first explanation's rows, at least those of a
        :data:`EXPLANATION_BUDGET_CHARS`-character one when there is one; the rows of the
        longest reason and status lines (one each unless the video is narrow)."""
        max_px = width_px - 2 * _PAD_PX
        longest = "x" * max(len(r.value) for r in Reason)
        instruction = max([first.instruction, *instructions], key=_text_px)
        # the longest texts the reason and status fields can have (the expert's differing)
        sample = dataclasses.replace(
            first, instruction=instruction, instruction_kind="misleading", reason=longest,
            expert_reason=longest + "x", time_s=999.9, speed_mps=39.9, route_completion=100.0,
            driving_score=100.0, penalty=0.5)
        rows = [len(wrap_px(t, max_px)) for t in sample.texts()]
        if first.explanation:
            budget = " ".join(["word"] * (EXPLANATION_BUDGET_CHARS // 5))
            rows[1] = max(rows[1], len(wrap_px(f"Explanation: {budget}", max_px)))
        return cls(tuple(rows))

    def lines(self, texts: Sequence[str], width_px: int) -> list[str]:
        """``texts`` wrapped into the planned rows (an overflowing field ends in '...')."""
        if len(texts) != len(self.rows):
            raise ValueError(f"{len(texts)} caption fields for {len(self.rows)} planned rows")
        max_px = width_px - 2 * _PAD_PX
        out: list[str] = []
        for text, n in zip(texts, self.rows, strict=True):
            wrapped = wrap_px(text, max_px)
            if len(wrapped) > n:
                wrapped = wrapped[: n - 1] + [_ellipsize(" ".join(wrapped[n - 1 :]), max_px)]
            out += wrapped + [""] * (n - len(wrapped))
        return out


def caption_band(lines: Sequence[str], width_px: int) -> np.ndarray:
    """The caption band: one row per line, ``CAPTION_MARGIN_PX`` above and below."""
    band = Image.new("RGB", (width_px, CAPTION_LINE_PX * len(lines) + 2 * CAPTION_MARGIN_PX),
                     CAPTION_BG)
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((_PAD_PX, CAPTION_MARGIN_PX + i * CAPTION_LINE_PX), line, fill=CAPTION_FG,
                  font=_FONT)
    return np.asarray(band)


@dataclass(frozen=True)
class Banner:
    """An infraction shown over the video for a while."""

    kind: str
    time_s: float
    penalty: float | None = None  # its DS factor; None: none yet (outside lanes grows)

    @property
    def text(self) -> str:
        factor = f"   DS x{self.penalty:.3f}" if self.penalty is not None else ""
        if self.kind in ROUTE_ENDING_KINDS:
            factor = "   ends the route"
        return f"INFRACTION: {infraction_label(self.kind)} at t={self.time_s:.1f} s{factor}"


def draw_banners(image: np.ndarray, banners: Sequence[Banner]) -> np.ndarray:
    """``image`` with one :data:`BANNER_RGB` row per banner across its top."""
    if not banners:
        return image
    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    for i, banner in enumerate(banners):
        top = i * BANNER_PX
        draw.rectangle([0, top, img.width - 1, top + BANNER_PX - 1], fill=BANNER_RGB)
        draw.text((_PAD_PX, top + 2), _ellipsize(banner.text, img.width - 2 * _PAD_PX),
                  fill=BANNER_FG, font=_FONT)
    return np.asarray(img)


def side_by_side(camera: np.ndarray | None, bev: np.ndarray) -> np.ndarray:
    """Camera (scaled to the BEV's height) | BEV."""
    h = bev.shape[0]
    panels = []
    if camera is not None:
        scale = h / camera.shape[0]
        cam = Image.fromarray(camera).resize(
            (int(round(camera.shape[1] * scale)), h), Image.BILINEAR
        )
        panels.append(np.asarray(cam))
    panels.append(bev)
    return np.concatenate(panels, axis=1)


def compose_frame(
    camera: np.ndarray | None,
    bev: np.ndarray,
    captions: Caption | Sequence[str],
    banners: Sequence[Banner] = (),
    rows: CaptionRows | None = None,
) -> np.ndarray:
    """Camera | BEV with ``banners`` over their top, then the caption band (``captions``: a
    :class:`Caption` or already labelled field texts; ``rows``: the video's rows per field,
    default as many as the texts need).

    Returns an (H, W, 3) uint8 image whose sides are even (H.264 needs that)."""
    top = draw_banners(side_by_side(camera, bev), banners)
    width = top.shape[1]
    texts = captions.texts() if isinstance(captions, Caption) else [c for c in captions if c]
    if rows is None:
        rows = CaptionRows(tuple(len(wrap_px(t, width - 2 * _PAD_PX)) for t in texts))
    frame = np.concatenate([top, caption_band(rows.lines(texts, width), width)], axis=0)
    return frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]


class VideoWriter:
    """Writes frames to an MP4 (H.264 through imageio-ffmpeg's bundled ffmpeg).

    Every frame should have the first frame's size (a frame that differs is cropped or
    padded to it, and a warning logged once)."""

    def __init__(self, path: str | Path, fps: float) -> None:
        import imageio.v2 as imageio  # lazy: imageio-ffmpeg is only needed to write videos

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps)
        self._writer = imageio.get_writer(
            str(self.path),
            fps=fps,
            codec="libx264",
            quality=7,
            macro_block_size=2,
            ffmpeg_log_level="error",
        )
        self._shape: tuple[int, int] | None = None
        self._warned = False
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        if self._shape is None:
            self._shape = (frame.shape[0], frame.shape[1])
        h, w = self._shape
        if frame.shape[:2] != (h, w):
            if not self._warned:
                logger.warning("%s: frame %s differs from the first frame's %s; cropped/padded",
                               self.path, frame.shape[:2], (h, w))
                self._warned = True
            canvas = np.zeros((h, w, 3), dtype=np.uint8)
            canvas[: min(h, frame.shape[0]), : min(w, frame.shape[1])] = frame[:h, :w]
            frame = canvas
        self._writer.append_data(frame)
        self.frames += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class BannerShown:
    """A banner as it appears in a video: from ``first_frame`` for ``n_frames`` frames."""

    banner: Banner
    first_frame: int
    n_frames: int = 0

    def to_dict(self, fps: float) -> dict[str, Any]:
        return {
            "kind": self.banner.kind,
            "time_s": self.banner.time_s,
            "penalty": self.banner.penalty,
            "first_frame": self.first_frame,
            "n_frames": self.n_frames,
            "video_time_s": self.first_frame / fps,
        }


@dataclass
class InfractionBanners:
    """Banners for a route's infraction records: each record, keyed by (kind, time), gets a
    banner from the first frame it is seen for ``seconds``; ``shown`` lists them in order."""

    fps: float
    seconds: float = BANNER_SECONDS
    shown: list[BannerShown] = field(default_factory=list)
    _seen: set[tuple[str, float]] = field(default_factory=set, init=False, repr=False)

    def update(self, infractions: Sequence[dict[str, Any]], frame: int) -> list[Banner]:
        """The banners to draw on ``frame`` given every infraction recorded so far."""
        for inf in infractions:
            key = (str(inf["kind"]), round(float(inf["time_s"]), 6))
            if key not in self._seen:
                self._seen.add(key)
                # the outside-lanes factor grows until the route ends: no factor on its banner
                penalty = None if key[0] == GROWING_KIND else float(inf.get("penalty", 1.0))
                banner = Banner(key[0], float(inf["time_s"]), penalty)
                self.shown.append(BannerShown(banner, frame))
        span = max(1, int(round(self.seconds * self.fps)))
        active = [s for s in self.shown if s.first_frame <= frame < s.first_frame + span]
        for s in active:
            s.n_frames += 1
        return [s.banner for s in active]


def criteria_now(env: Any) -> tuple[list[dict[str, Any]], float | None, float]:
    """Every infraction the env's route criteria recorded so far (dicts, a provisional
    outside-lanes record included), the running driving score (RC so far x penalty so far)
    and the penalty; ``([], None, 1.0)`` for an env without criteria."""
    criteria = getattr(getattr(env, "unwrapped", env), "criteria", None)
    if criteria is None:
        return [], None, 1.0
    infractions = [i.to_dict() for i in criteria.infractions]
    penalty = 1.0
    for i in infractions:
        penalty *= float(i["penalty"])
    return infractions, criteria.route_completion * penalty, penalty


def possible_instructions(info: dict[str, Any]) -> list[str]:
    """Every instruction text a route can show (the navigation instruction with the texts of
    the events active together), from the reset ``info``."""
    nav = str(info.get("navigation_instruction") or info.get("instruction", ""))
    events = list(info.get("instruction_events", []))
    texts = [str(info.get("instruction", "")), nav]
    for e in events:  # what is active when an event starts
        t = float(e.get("start_s", 0.0))
        active = [str(o.get("text", "")) for o in events
                  if float(o.get("start_s", 0.0)) <= t
                  < float(o.get("start_s", 0.0)) + float(o.get("duration_s", 0.0))]
        texts.append(" ".join([nav, *active]))
    return texts


class DriveVideo(Hook):
    """One frame per tick (the first camera or ``camera``, the BEV and a :class:`Caption`)
    and, when the episode ends, its last state held for :data:`BANNER_SECONDS` (infractions of
    the last tick, e.g. the end-of-route records, get their banner there). The writer opens on
    reset; :meth:`record` says what the video shows (frames, fps, banners).

    Subclasses say what the caption and the BEV show: :meth:`caption`, :meth:`trajectory`,
    ``show_reason``/``show_expert`` (fixed per video: they decide the caption's rows)."""

    show_reason = False
    show_expert = False

    def __init__(self, path: Any, fps: float, camera: str | None = None) -> None:
        self.path, self.fps, self.camera = Path(path), float(fps), camera
        self.writer: VideoWriter | None = None
        self.env: Any = None
        self.driver: Driver | None = None
        self.banners = InfractionBanners(self.fps)
        self.rows: CaptionRows | None = None
        self._instructions: list[str] = []
        self._last: Tick | None = None

    def on_reset(self, env: Env, driver: Driver, info: dict[str, Any]) -> None:
        self.env, self.driver = env, driver
        self.banners = InfractionBanners(self.fps)
        self.rows, self._last = None, None
        self._instructions = possible_instructions(info)
        self.writer = VideoWriter(self.path, self.fps)

    def trajectory(self, tick: Tick | None) -> np.ndarray | None:
        """A world-frame (N, 2) polyline to draw on the BEV (the plan), or None."""
        return None

    def caption(self, tick: Tick | None, info: dict[str, Any]) -> Caption:
        """The caption of ``tick`` (None: the end-of-route frame; ``info`` is then the last);
        the running DS and penalty are filled in afterwards."""
        return Caption(
            str(info.get("instruction", "")), str(info.get("instruction_kind", "navigation")),
            show_reason=self.show_reason, show_expert=self.show_expert,
            time_s=float(info["time_s"]), speed_mps=float(info["ego"]["speed_mps"]),
            route_completion=float(info.get("route_completion", 0.0)),
        )

    def _frame(self, obs: dict[str, Any], info: dict[str, Any], tick: Tick | None) -> np.ndarray:
        cams = obs.get("cameras") or {}
        cam = cams.get(self.camera) if self.camera else next(iter(cams.values()), None)
        infractions, ds, penalty = criteria_now(self.env)
        banners = self.banners.update(infractions, self.writer.frames)
        bev = self.env.render_bev(trajectory_world=self.trajectory(tick))
        caption = dataclasses.replace(self.caption(tick, info), driving_score=ds, penalty=penalty)
        if self.rows is None:
            self.rows = CaptionRows.plan(side_by_side(cam, bev).shape[1], caption,
                                         self._instructions)
        return compose_frame(cam, bev, caption, banners, self.rows)

    def after_decision(self, tick: Tick) -> None:
        self._last = tick
        self.writer.add(self._frame(tick.obs, tick.info, tick))

    def on_end(self, episode: Episode) -> None:
        if self.writer is None or self.writer.frames == 0:
            return
        if episode.error is not None and episode.error.phase in ("observation", "simulation"):
            return  # the simulator failed: its last state may not render
        try:
            for _ in range(max(1, int(round(BANNER_SECONDS * self.fps)))):
                self.writer.add(self._frame(episode.obs, episode.info, None))
        except Exception as exc:  # a video frame must not turn a finished route into a crash
            logger.warning("%s: the end-of-route frame could not be drawn: %s", self.path, exc)

    def record(self, file: str | None = None) -> dict[str, Any]:
        """What the video shows: its file, fps, frame count and each banner with its first
        frame and video time (the report links infractions there)."""
        return {
            "file": file or self.path.name,
            "fps": self.fps,
            "frames": self.writer.frames if self.writer is not None else 0,
            "banners": [s.to_dict(self.fps) for s in self.banners.shown],
        }
