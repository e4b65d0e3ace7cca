"""Offscreen camera rendering of the embedded world with Panda3D (no ShowBase, no window).

One :class:`CameraRenderer` per episode: it builds the static road geometry once (ground,
road surfaces, lane markings, flattened), keeps one reusable box node per actor and one
signal-head node per traffic light, and renders every :class:`CameraSpec` into its own
offscreen buffer whose image is copied to RAM (``RTM_copy_ram``).

Backends: ``"tiny"`` is Panda3D's software rasteriser ``p3tinydisplay`` (CPU, deterministic,
~0.7 ms for a 320x180 frame of 12 lanes, 20 actors and 4 signals on one core); ``"gl"`` is
OpenGL (EGL ``p3headlessgl`` when there is no ``$DISPLAY``, else ``pandagl``) for machines
with a GPU, no faster at small sizes since the RAM read-back dominates; ``"auto"`` picks
``"tiny"`` (the choice of GL is made in config, not by environment variables).

Process-wide state: one private ``GraphicsEngine``, one pipe and one GSG per backend, shared
by every renderer; a renderer's buffers are active only inside its own ``render`` call, so
several renderers can coexist. ``close`` hands a renderer's buffers back to a pool that the
next renderer with the same resolutions reuses, because Panda3D's software buffer does not
free its frame memory when removed from the engine (about 2 MB per 320x180 camera). Panda3D's
transform cache is off (:mod:`camera_prc`): it merged nearly equal poses with one made earlier
in the process, so a frame depended on the process's history.
Not thread-safe: render from one thread.

Geometry: world ``(x, y, z)`` maps to Panda3D ``(x, y, z)`` unchanged (both right-handed,
z up). A camera node's pose comes from :func:`drivevla.perception.camera_model.camera_pose_world`
and its lens has the spec's exact horizontal and vertical FOV, so rendered pixels agree with
``camera_model.project_world_points`` (``p3tinydisplay`` fills pixels up to ~0.5 px left/up of
the exact edge). Flat layers (ground, roads, markings) are drawn first, in a fixed order and
without depth testing (they all lie on the ground plane, below the cameras), so they never
z-fight; boxes are depth-tested on top. Shading is baked per face into vertex colours: no
lights are used, and the signal lamps are flat emissive colours.

Modules: the Panda3D configuration is :mod:`camera_prc` (imported before any Panda3D class),
the static geometry :mod:`camera_geometry`, the actor and signal nodes :mod:`camera_nodes`;
this module holds the shared display and the renderer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import drivevla.sim_bridge.embedded.camera_prc  # noqa: F401  (PRC data before panda3d)

# isort: split
from panda3d.core import (
    Camera,
    FrameBufferProperties,
    GraphicsEngine,
    GraphicsOutput,
    GraphicsPipe,
    GraphicsPipeSelection,
    LColor,
    LMatrix4f,
    NodePath,
    PerspectiveLens,
    Texture,
    WindowProperties,
)

from drivevla.core.scene import LaneGeometry, SceneSnapshot
from drivevla.core.types import CameraSpec
from drivevla.perception.camera_model import NEAR_PLANE_M, camera_pose_world
from drivevla.sim_bridge.embedded.camera_geometry import (
    MARKING_WIDTH_M,
    box_geom,
    build_static,
    quad_geom,
)
from drivevla.sim_bridge.embedded.camera_nodes import (
    HOUSING_SIZE_M,
    LAMP_SIZE_M,
    LAMP_SPACING_M,
    ActorNode,
    SignalNode,
)

__all__ = [
    "CameraRenderer",
    "FAR_PLANE_M",
    "MARKING_WIDTH_M",
    "LAMP_SIZE_M",
    "HOUSING_SIZE_M",
    "LAMP_SPACING_M",
    "resolve_backend",
]

FAR_PLANE_M = 250.0
SKY = (0.55, 0.72, 0.90)

_BACKENDS = {"tiny": ("p3tinydisplay",), "gl": ("pandagl", "p3headlessgl")}
_ALIASES = {"tinydisplay": "tiny", "software": "tiny", "cpu": "tiny", "opengl": "gl", "gpu": "gl"}


def resolve_backend(backend: str) -> str:
    """Normalise a backend name to ``"tiny"`` or ``"gl"``.

    ``"auto"`` is the software renderer: measured on an H200 host, GL was no faster at
    320x180 (0.86 vs 0.94 ms), so choosing GL is an explicit config choice."""
    name = backend.lower().strip()
    if name == "auto":
        name = "tiny"
    name = _ALIASES.get(name, name)
    if name not in _BACKENDS:
        raise ValueError(f"unknown render backend {backend!r}; use 'auto', 'tiny' or 'gl'")
    return name


@dataclass
class _Display:
    """The process-wide engine, per backend its pipe and a small inactive host buffer, and a
    pool of idle camera buffers.

    Every renderer's buffers share the host's graphics state guardian (GSG): a buffer made
    with a GSG of its own leaves that GSG, with frame-sized memory, behind when it is removed,
    and on GL a shared context lets the buffers be FBOs hosted by it.
    """

    engine: GraphicsEngine
    pipes: dict[str, GraphicsPipe]
    hosts: dict[str, GraphicsOutput]
    # idle buffers by (backend, width, height): Panda3D's software buffer never frees its
    # frame memory when removed from the engine, so closed renderers hand theirs back here
    free: dict[tuple[str, int, int], list[GraphicsOutput]]


_DISPLAY: _Display | None = None


def _frame_props() -> FrameBufferProperties:
    fb = FrameBufferProperties()
    fb.set_rgb_color(True)
    fb.set_color_bits(24)
    fb.set_depth_bits(24)
    fb.set_multisamples(0)
    return fb


def _display_for(backend: str) -> tuple[GraphicsEngine, GraphicsPipe, GraphicsOutput]:
    """The shared engine, the backend's pipe and its host buffer, made on first use."""
    global _DISPLAY
    if _DISPLAY is None:
        _DISPLAY = _Display(engine=GraphicsEngine(), pipes={}, hosts={}, free={})
    engine = _DISPLAY.engine
    pipe = _DISPLAY.pipes.get(backend)
    if pipe is None:
        selection = GraphicsPipeSelection.get_global_ptr()
        modules = _BACKENDS[backend]
        if backend == "gl" and not os.environ.get("DISPLAY"):
            modules = modules[::-1]  # headless: EGL first (loading both only adds warnings)
        tried = []
        for module in modules:
            candidate = selection.make_module_pipe(module)
            tried.append(module)
            # the software pipe reports itself invalid without an X display, yet its
            # offscreen buffers work; a GL pipe without a display or EGL device cannot
            if candidate is not None and (backend == "tiny" or candidate.is_valid()):
                pipe = candidate
                break
        if pipe is None:
            raise RuntimeError(
                f"no usable Panda3D display for backend {backend!r} (tried {tried}); "
                "use backend='tiny' for the CPU software renderer"
            )
        _DISPLAY.pipes[backend] = pipe
    host = _DISPLAY.hosts.get(backend)
    if host is None:
        host = engine.make_output(
            pipe,
            f"drivevla-host-{backend}",
            -100,
            _frame_props(),
            WindowProperties.size(16, 16),
            GraphicsPipe.BF_refuse_window | GraphicsPipe.BF_fb_props_optional,
            None,
            None,
        )
        if host is None:
            raise RuntimeError(f"Panda3D ({backend}) could not open an offscreen buffer")
        engine.open_windows()
        host.set_active(False)
        _DISPLAY.hosts[backend] = host
    return engine, pipe, host


class CameraRenderer:
    """Renders RGB images of a :class:`SceneSnapshot` for a rig of ego-mounted cameras.

    Build one per episode (the lanes are static); call :meth:`render` every tick and
    :meth:`close` at the end (or use it as a context manager).
    """

    def __init__(
        self,
        lanes: Sequence[LaneGeometry],
        cameras: Sequence[CameraSpec],
        backend: str = "auto",
    ) -> None:
        cameras = list(cameras)
        if not cameras:
            raise ValueError("CameraRenderer needs at least one CameraSpec")
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")
        for spec in cameras:
            if not isinstance(spec, CameraSpec):
                raise TypeError(f"expected CameraSpec, got {type(spec).__name__}")
        self.cameras: dict[str, CameraSpec] = {c.name: c for c in cameras}
        self.backend = resolve_backend(backend)
        self._engine, pipe, self._host = _display_for(self.backend)
        self._closed = False
        self._buffers: list[tuple[GraphicsOutput, tuple[str, int, int]]] = []  # (buffer, pool key)

        self._root = NodePath("camera_renderer")
        self._root.set_light_off(1)
        self._root.attach_new_node(build_static(lanes).node())
        self._actors_np = self._root.attach_new_node("actors")
        self._lights_np = self._root.attach_new_node("lights")
        # boxes draw in scene-graph order, not in Panda3D's default state-sorted order:
        # that order follows render-state addresses, so a depth tie (a signal pole and its
        # housing share a face) was broken differently after other work in the process
        # (measured: 2 pixels of one frame, enough to change a learned policy's drive)
        for node in (self._actors_np, self._lights_np):
            node.set_bin("unsorted", 10)
        self._box = box_geom()
        self._quad = quad_geom()
        self._actors: dict[int, ActorNode] = {}
        self._signals: dict[int, SignalNode] = {}

        self._views: list[tuple[CameraSpec, NodePath, Texture]] = []
        try:
            for spec in cameras:
                self._views.append(self._make_view(pipe, spec))
            self._engine.open_windows()
        except Exception:
            self.close()
            raise
        self._set_active(False)

    def _make_view(self, pipe: GraphicsPipe, spec: CameraSpec) -> tuple:
        buf = self._acquire_buffer(pipe, spec)
        self._buffers.append((buf, (self.backend, spec.width, spec.height)))
        tex = Texture(f"rgb-{spec.name}")
        buf.add_render_texture(tex, GraphicsOutput.RTM_copy_ram)
        buf.set_clear_color_active(True)
        buf.set_clear_color(LColor(*SKY, 1.0))
        buf.set_clear_depth_active(True)

        lens = PerspectiveLens()
        lens.set_fov(float(spec.fov_deg), float(spec.vertical_fov_deg))
        lens.set_near_far(NEAR_PLANE_M, FAR_PLANE_M)
        cam = Camera(f"cam-{spec.name}", lens)
        cam_np = self._root.attach_new_node(cam)
        region = buf.make_display_region()
        region.set_camera(cam_np)
        return spec, cam_np, tex

    def _acquire_buffer(self, pipe: GraphicsPipe, spec: CameraSpec) -> GraphicsOutput:
        """An idle pooled buffer of the spec's size, or a new one."""
        assert _DISPLAY is not None
        pooled = _DISPLAY.free.get((self.backend, spec.width, spec.height), [])
        while pooled:
            buf = pooled.pop()
            if buf.is_valid():
                return buf
            self._engine.remove_window(buf)
        flags = GraphicsPipe.BF_refuse_window | GraphicsPipe.BF_fb_props_optional
        # GL: an FBO in the host's context (never a parasite, which is bounded by the host's
        # size); tiny: a framebuffer of its own that shares the host's GSG
        host = None
        if self.backend == "gl":
            flags |= GraphicsPipe.BF_refuse_parasite
            host = self._host
        buf = self._engine.make_output(
            pipe,
            f"drivevla-{spec.width}x{spec.height}",
            0,
            _frame_props(),
            WindowProperties.size(spec.width, spec.height),
            flags,
            self._host.get_gsg(),
            host,
        )
        if buf is None:
            raise RuntimeError(
                f"Panda3D ({self.backend}) could not open a {spec.width}x{spec.height} "
                f"offscreen buffer for camera {spec.name!r}"
            )
        return buf

    def _set_active(self, active: bool) -> None:
        for buf, _key in self._buffers:
            buf.set_active(active)

    def _sync(self, snapshot: SceneSnapshot) -> None:
        ego_id = snapshot.ego.actor_id
        seen = set()
        for actor in snapshot.actors:
            if actor.actor_id == ego_id:
                continue
            seen.add(actor.actor_id)
            node = self._actors.get(actor.actor_id)
            if node is None:
                node = self._actors[actor.actor_id] = ActorNode(
                    self._actors_np, actor.actor_id, self._box
                )
            node.update(actor)
        for gone in [i for i in self._actors if i not in seen]:
            self._actors.pop(gone).node.remove_node()

        seen = set()
        for light in snapshot.lights:
            seen.add(light.light_id)
            signal = self._signals.get(light.light_id)
            if signal is None:
                self._signals[light.light_id] = SignalNode(
                    self._lights_np, light, self._box, self._quad
                )
            else:
                signal.update(light)
        for gone in [i for i in self._signals if i not in seen]:
            self._signals.pop(gone).node.remove_node()

        ego = snapshot.ego
        for spec, cam_np, _tex in self._views:
            r, t = camera_pose_world(spec, ego.x, ego.y, ego.yaw)
            x, y, z = r[0], r[2], -r[1]  # node right, forward, up = optical x, z, -y
            cam_np.set_mat(
                LMatrix4f(*x, 0.0, *y, 0.0, *z, 0.0, float(t[0]), float(t[1]), float(t[2]), 1.0)
            )

    def render(self, snapshot: SceneSnapshot) -> dict[str, np.ndarray]:
        """Images of ``snapshot``: camera name -> ``(H, W, 3)`` uint8 RGB, top row first."""
        if self._closed:
            raise RuntimeError("CameraRenderer.render() called after close()")
        self._sync(snapshot)
        self._set_active(True)
        try:
            self._engine.render_frame()
        finally:
            self._set_active(False)
        out = {}
        for spec, _cam, tex in self._views:
            if tex.get_x_size() < spec.width or tex.get_y_size() < spec.height:
                raise RuntimeError(
                    f"camera {spec.name!r}: rendered {tex.get_x_size()}x{tex.get_y_size()}, "
                    f"expected {spec.width}x{spec.height}"
                )
            raw = np.frombuffer(tex.get_ram_image_as("RGB"), dtype=np.uint8)
            img = raw.reshape(tex.get_y_size(), tex.get_x_size(), 3)[::-1]
            out[spec.name] = np.ascontiguousarray(img[: spec.height, : spec.width])
        return out

    def close(self) -> None:
        """Return the buffers to the process pool and drop the scene graph; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for buf, key in self._buffers:
            buf.set_active(False)
            buf.clear_render_textures()
            buf.remove_all_display_regions()
            if _DISPLAY is not None:
                _DISPLAY.free.setdefault(key, []).append(buf)
        self._buffers.clear()
        self._views = []
        self._actors.clear()
        self._signals.clear()
        if not self._root.is_empty():
            self._root.remove_node()

    def __enter__(self) -> CameraRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:  # interpreter shutdown: Panda3D may already be gone
            pass
