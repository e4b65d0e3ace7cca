"""Auxiliary perception heads (issue 28, item 2; ``model.perception_heads``): supervision
of what the cameras must show, from the simulator's ground truth (the dataset's
``perception.*`` columns, schema 2). Training only: the action path never runs them, so
they cost nothing at inference and are not exported.

They read the language model's hidden states of the prefix (camera tokens, then the
instruction; padding masked out):

- a BEV raster (``datasets.format.BEV_SHAPE``: drivable area, route lane, vehicles,
  pedestrians, 80 x 80 cells of 0.5 m): ``BEV_QUERIES`` x ``BEV_QUERIES`` learned queries
  attend to the prefix, each predicts a ``PATCH`` x ``PATCH`` patch of every channel; binary
  cross-entropy per cell;
- the signal governing the route: its state (none / red / yellow / green; cross-entropy) and,
  when there is one, the distance to its stop line (L1 over ``DISTANCE_SCALE_M``);
- the lead object in the route's corridor: present or not (binary cross-entropy) and, when
  present, its distance and speed (L1 over ``DISTANCE_SCALE_M`` and ``SPEED_SCALE_MPS``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BEV_QUERIES = 20
PATCH = 4
CHANNELS = 4
SIGNAL_STATES = 4  # none, red, yellow, green (datasets.torch_dataset)
DISTANCE_SCALE_M = 60.0
SPEED_SCALE_MPS = 20.0
TARGET_KEYS = ("bev", "signal_state", "signal_distance", "lead_present", "lead_distance",
               "lead_speed")


class PerceptionHeads(nn.Module):
    """The three auxiliary heads on hidden states of width ``d`` (see the module doc)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(BEV_QUERIES * BEV_QUERIES, d) * 0.02)
        self.attend = nn.MultiheadAttention(d, num_heads=4 if d % 4 == 0 else 1,
                                            batch_first=True)
        self.bev = nn.Linear(d, CHANNELS * PATCH * PATCH)
        self.signal = nn.Linear(d, SIGNAL_STATES + 1)  # the states' logits, then distance
        self.lead = nn.Linear(d, 3)  # presence logit, distance, speed

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predictions from the prefix's ``hidden`` (B, P, d) and its ``mask`` (B, P)."""
        b = hidden.shape[0]
        q = self.queries[None].expand(b, -1, -1).to(hidden.dtype)
        pad = mask == 0
        attended, _ = self.attend(q, hidden, hidden, key_padding_mask=pad)
        patches = self.bev(attended.float())  # (B, Q*Q, C*P*P)
        bev = (patches.view(b, BEV_QUERIES, BEV_QUERIES, CHANNELS, PATCH, PATCH)
               .permute(0, 3, 1, 4, 2, 5)
               .reshape(b, CHANNELS, BEV_QUERIES * PATCH, BEV_QUERIES * PATCH))
        keep = (~pad).to(hidden.dtype)[..., None]
        pooled = ((hidden * keep).sum(1) / keep.sum(1).clamp(min=1.0)).float()
        signal, lead = self.signal(pooled), self.lead(pooled)
        return {"bev": bev, "signal_logits": signal[:, :SIGNAL_STATES],
                "signal_distance": signal[:, SIGNAL_STATES], "lead_logit": lead[:, 0],
                "lead_distance": lead[:, 1], "lead_speed": lead[:, 2]}

    @staticmethod
    def losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
               ) -> dict[str, torch.Tensor]:
        """``{"bev", "signal", "lead"}``: each head's loss against the batch's targets."""
        def masked_l1(pred: torch.Tensor, target: torch.Tensor, keep: torch.Tensor,
                      scale: float) -> torch.Tensor:
            return ((pred - target / scale).abs() * keep).sum() / keep.sum().clamp(min=1.0)

        has_signal = (batch["signal_state"] > 0).float()
        present = batch["lead_present"].float()
        return {
            "bev": F.binary_cross_entropy_with_logits(out["bev"], batch["bev"].float()),
            "signal": F.cross_entropy(out["signal_logits"], batch["signal_state"])
            + masked_l1(out["signal_distance"], batch["signal_distance"], has_signal,
                        DISTANCE_SCALE_M),
            "lead": F.binary_cross_entropy_with_logits(out["lead_logit"], present)
            + masked_l1(out["lead_distance"], batch["lead_distance"], present, DISTANCE_SCALE_M)
            + masked_l1(out["lead_speed"], batch["lead_speed"], present, SPEED_SCALE_MPS),
        }
