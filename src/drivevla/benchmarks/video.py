"""MP4 videos of drives: front camera and BEV side by side, with caption lines below."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAPTION_LINE_PX = 16


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def compose_frame(camera: np.ndarray | None, bev: np.ndarray, captions: list[str]) -> np.ndarray:
    """Camera (scaled to the BEV's height) | BEV, then one band of wrapped captions.

    Returns an (H, W, 3) uint8 image whose sides are even (H.264 needs that)."""
    h = bev.shape[0]
    panels = []
    if camera is not None:
        scale = h / camera.shape[0]
        cam = Image.fromarray(camera).resize(
            (int(round(camera.shape[1] * scale)), h), Image.BILINEAR
        )
        panels.append(np.asarray(cam))
    panels.append(bev)
    top = np.concatenate(panels, axis=1)
    width = top.shape[1]
    chars = max(int(width / 7), 20)
    lines = [wrapped for c in captions if c for wrapped in textwrap.wrap(c, chars)]
    band = Image.new("RGB", (width, CAPTION_LINE_PX * max(len(lines), 1) + 6), (15, 15, 20))
    draw = ImageDraw.Draw(band)
    font = _font()
    for i, line in enumerate(lines):
        draw.text((6, 3 + i * CAPTION_LINE_PX), line, fill=(235, 235, 235), font=font)
    frame = np.concatenate([top, np.asarray(band)], axis=0)
    return frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]


class VideoWriter:
    """Writes frames to an MP4 (H.264 through imageio-ffmpeg's bundled ffmpeg).

    Frames of varying height (caption bands) are padded to the first frame's size."""

    def __init__(self, path: str | Path, fps: float) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = imageio.get_writer(
            str(self.path),
            fps=fps,
            codec="libx264",
            quality=7,
            macro_block_size=2,
            ffmpeg_log_level="error",
        )
        self._shape: tuple[int, int] | None = None
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        if self._shape is None:
            self._shape = (frame.shape[0] + 2 * CAPTION_LINE_PX, frame.shape[1])
        h, w = self._shape
        canvas = np.zeros((h, w, 3), dtype=np.uint8)
        canvas[: min(h, frame.shape[0]), : min(w, frame.shape[1])] = frame[:h, :w]
        self._writer.append_data(canvas)
        self.frames += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
