"""Dynamic nodes of the camera renderer: one reusable box per actor and one signal head per
traffic light, updated in place from each :class:`SceneSnapshot` (only when a pose, size,
colour or light state changed)."""

from __future__ import annotations

import math

import numpy as np

import drivevla.sim_bridge.embedded.camera_prc  # noqa: F401  (PRC data before panda3d)

# isort: split
from panda3d.core import Geom, NodePath

from drivevla.core.scene import ActorBox, LightState, TrafficLightView
from drivevla.sim_bridge.embedded.camera_geometry import geom_node

__all__ = [
    "ActorNode",
    "SignalNode",
    "HOUSING_SIZE_M",
    "LAMP_SIZE_M",
    "LAMP_SPACING_M",
    "POLE_WIDTH_M",
]

LAMP_SIZE_M = 0.5
HOUSING_SIZE_M = (0.4, 0.6, 1.6)  # depth (along the facing direction), width, height
LAMP_SPACING_M = 0.53  # vertical distance between lamp centres (red on top)
POLE_WIDTH_M = 0.15

HOUSING = (0.08, 0.08, 0.08)
POLE = (0.35, 0.35, 0.35)
LAMP_ORDER = (LightState.RED, LightState.YELLOW, LightState.GREEN)  # top to bottom
# each lamp's lit colour, in LAMP_ORDER: red, yellow, green
LAMP_ON = dict(zip(LAMP_ORDER, [(1.0, 0.0, 0.0), (1.0, 0.8, 0.0), (0.0, 1.0, 0.2)], strict=True))
LAMP_OFF_FACTOR = 0.18  # an unlit lamp shows its colour this dim


class SignalNode:
    """A traffic-light head: pole, housing and three lamps (red on top)."""

    def __init__(self, parent: NodePath, light: TrafficLightView, box: Geom, quad: Geom):
        self.node = parent.attach_new_node(f"light{light.light_id}")
        depth, width, height = HOUSING_SIZE_M
        housing = self.node.attach_new_node(geom_node("housing", [box]))
        housing.set_pos(0.0, 0.0, -height / 2.0)
        housing.set_scale(depth, width, height)
        housing.set_color_scale(*HOUSING, 1.0)
        self.pole = self.node.attach_new_node(geom_node("pole", [box]))
        self.pole.set_color_scale(*POLE, 1.0)
        self.lamps = []
        for i, _state in enumerate(LAMP_ORDER):
            lamp = self.node.attach_new_node(geom_node(f"lamp{i}", [quad]))
            lamp.set_pos(depth / 2.0 + 0.02, 0.0, (1 - i) * LAMP_SPACING_M)
            lamp.set_scale(1.0, LAMP_SIZE_M, LAMP_SIZE_M)
            lamp.set_light_off(1)
            self.lamps.append(lamp)
        self.state: LightState | None = None
        self.pose: tuple | None = None
        self.update(light)

    def update(self, light: TrafficLightView) -> None:
        pose = (light.x, light.y, light.z, light.yaw)
        if pose != self.pose:
            self.pose = pose
            self.node.set_pos_hpr(light.x, light.y, light.z, math.degrees(light.yaw), 0.0, 0.0)
            bottom = light.z - HOUSING_SIZE_M[2] / 2.0
            self.pole.set_pos(-HOUSING_SIZE_M[0] / 2.0 - POLE_WIDTH_M / 2.0, 0.0, -light.z)
            self.pole.set_scale(POLE_WIDTH_M, POLE_WIDTH_M, max(bottom, 0.0) + HOUSING_SIZE_M[2])
        state = LightState(light.state)
        if state != self.state:
            self.state = state
            for lamp_state, lamp in zip(LAMP_ORDER, self.lamps, strict=True):
                rgb = np.asarray(LAMP_ON[lamp_state])
                if lamp_state != state:
                    rgb = rgb * LAMP_OFF_FACTOR
                lamp.set_color(float(rgb[0]), float(rgb[1]), float(rgb[2]), 1.0)


class ActorNode:
    """An actor's box: a unit box scaled to its size, posed and tinted in place."""

    def __init__(self, parent: NodePath, actor_id: int, box: Geom):
        self.node = parent.attach_new_node(geom_node(f"actor{actor_id}", [box]))
        self.key: tuple | None = None
        self.colour: tuple | None = None

    def update(self, actor: ActorBox) -> None:
        key = (actor.x, actor.y, actor.yaw, actor.length, actor.width, actor.height)
        if key != self.key:
            self.key = key
            self.node.set_pos_hpr_scale(
                actor.x,
                actor.y,
                0.0,
                math.degrees(actor.yaw),
                0.0,
                0.0,
                max(actor.length, 1e-3),
                max(actor.width, 1e-3),
                max(actor.height, 1e-3),
            )
        colour = tuple(float(c) for c in actor.color[:3])
        if colour != self.colour:
            self.colour = colour
            self.node.set_color_scale(colour[0], colour[1], colour[2], 1.0)
