"""Action decoders (``model.head``): the action queries' hidden states -> waypoints and target
speeds, in the model's normalised units (the model scales them to metres and m/s)."""

from __future__ import annotations

import torch
import torch.nn as nn


class RegressionHead(nn.Module):
    """``regression``: an MLP from the flattened action queries to every step at once."""

    def __init__(self, d: int, n_queries: int, steps: int, tp_dim: int) -> None:
        super().__init__()
        self.steps = steps
        self.mlp = nn.Sequential(nn.Linear(d * n_queries + tp_dim, 256), nn.GELU(),
                                 nn.Linear(256, steps * 3))

    def forward(self, queries: torch.Tensor, target_point: torch.Tensor | None):
        x = queries.flatten(1)
        if target_point is not None:
            x = torch.cat([x, target_point], dim=-1)
        out = self.mlp(x).view(-1, self.steps, 3)
        return out[..., :2], out[..., 2]


class GRUHead(nn.Module):
    """``gru``: TransFuser-style autoregressive GRU over waypoint *offsets* (cheap, still one
    pass of the backbone): each step sees the previous waypoint and (target-point mode) the
    target."""

    def __init__(self, d: int, n_queries: int, steps: int, tp_dim: int, hidden: int = 128
                 ) -> None:
        super().__init__()
        self.steps = steps
        self.init = nn.Linear(d * n_queries, hidden)
        self.cell = nn.GRUCell(2 + tp_dim, hidden)
        self.out = nn.Linear(hidden, 3)

    def forward(self, queries: torch.Tensor, target_point: torch.Tensor | None):
        h = torch.tanh(self.init(queries.flatten(1)))
        wp = queries.new_zeros(queries.shape[0], 2)
        wps, speeds = [], []
        for _ in range(self.steps):
            x = wp if target_point is None else torch.cat([wp, target_point], dim=-1)
            h = self.cell(x, h)
            o = self.out(h)
            wp = wp + o[:, :2]
            wps.append(wp)
            speeds.append(o[:, 2])
        return torch.stack(wps, dim=1), torch.stack(speeds, dim=1)


ACTION_HEADS: dict[str, type[nn.Module]] = {"gru": GRUHead, "regression": RegressionHead}


def build_action_head(name: str, d: int, n_queries: int, steps: int, tp_dim: int) -> nn.Module:
    if name not in ACTION_HEADS:
        raise ValueError(f"unknown action head {name!r}; valid: {sorted(ACTION_HEADS)}")
    return ACTION_HEADS[name](d, n_queries, steps, tp_dim)
