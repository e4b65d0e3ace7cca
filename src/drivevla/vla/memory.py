"""What a policy keeps for the model's memory (``model.memory_frames``).

The memory tokens of tick ``t`` read the camera summaries of ticks ``t - k * stride``
(k = 1..frames), each clamped to the route's first tick, as training reads the frames of an
episode (:func:`drivevla.training.data.past_rows_of`). Each tick's summary is the mean of
the camera features the action pass computed anyway (``ActionOutput.frame_summary``), so the
memory costs no second run of the camera encoder; before any tick is kept, the current
frame stands in (``memory_current``).
"""

from __future__ import annotations

from collections import deque

import torch


class FrameMemory:
    """The last ``frames * stride`` ticks' summaries since :meth:`reset`."""

    def __init__(self, frames: int, stride: int, channels: int) -> None:
        self.frames, self.stride, self.channels = frames, stride, channels
        self.reset()

    def reset(self) -> None:
        self._kept: deque[torch.Tensor] = deque(maxlen=self.frames * self.stride)
        self._ticks = 0

    def inputs(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """``memory_summaries`` (1, frames, C) and ``memory_current`` (1, frames) of the
        coming tick."""
        if self._ticks == 0:
            return {"memory_summaries": torch.zeros(1, self.frames, self.channels,
                                                    device=device),
                    "memory_current": torch.ones(1, self.frames, dtype=torch.bool,
                                                 device=device)}
        back = [min(k * self.stride, self._ticks) for k in range(1, self.frames + 1)]
        past = torch.stack([self._kept[-j] for j in back])[None].to(device)
        return {"memory_summaries": past,
                "memory_current": torch.zeros(1, self.frames, dtype=torch.bool, device=device)}

    def keep(self, summary: torch.Tensor) -> None:
        """Keep this tick's summary (C,) and move to the next tick."""
        self._kept.append(summary.detach().float().cpu())
        self._ticks += 1
