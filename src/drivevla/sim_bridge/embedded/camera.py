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
free its frame memory when removed from the engine (about 2 MB per 320x180 camera).
Not thread-safe: render from one thread.

Geometry: world ``(x, y, z)`` maps to Panda3D ``(x, y, z)`` unchanged (both right-handed,
z up). A camera node's pose comes from :func:`drivevla.perception.camera_model.camera_pose_world`
and its lens has the spec's exact horizontal and vertical FOV, so rendered pixels agree with
``camera_model.project_world_points`` (``p3tinydisplay`` fills pixels up to ~0.5 px left/up of
the exact edge). Flat layers (ground, roads, markings) are drawn first, in a fixed order and
without depth testing (they all lie on the ground plane, below the cameras), so they never
z-fight; boxes are depth-tested on top. Shading is baked per face into vertex colours: no
lights are used, and the signal lamps are flat emissive colours.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from panda3d.core import loadPrcFileData

loadPrcFileData(
    "drivevla-camera",
    "\n".join(
        [
            "load-display p3tinydisplay",
            "aux-display p3tinydisplay",
            "window-type offscreen",
            "audio-library-name null",
            "sync-video false",
            "framebuffer-multisample false",
            "multisamples 0",
            "notify-level warning",
            "notify-level-x11display fatal",
            "notify-level-glxdisplay fatal",
            "default-directnotify-level warning",
        ]
    ),
)

from panda3d.core import (  # noqa: E402  (the PRC data above must be loaded first)
    Camera,
    FrameBufferProperties,
    Geom,
    GeomEnums,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    GeomVertexData,
    GeomVertexFormat,
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

from drivevla.core.scene import (  # noqa: E402
    ActorBox,
    LaneGeometry,
    LightState,
    SceneSnapshot,
    TrafficLightView,
)
from drivevla.core.types import CameraSpec  # noqa: E402
from drivevla.perception.camera_model import NEAR_PLANE_M, camera_pose_world  # noqa: E402
from drivevla.sim_bridge.embedded.bev import marking_pieces, offset_polyline  # noqa: E402

__all__ = ["CameraRenderer", "FAR_PLANE_M", "MARKING_WIDTH_M", "LAMP_SIZE_M", "resolve_backend"]

FAR_PLANE_M = 250.0
MARKING_WIDTH_M = 0.15
LAMP_SIZE_M = 0.5
HOUSING_SIZE_M = (0.4, 0.6, 1.6)  # depth (along the facing direction), width, height
LAMP_SPACING_M = 0.53  # vertical distance between lamp centres (red on top)
POLE_WIDTH_M = 0.15

SKY = (0.55, 0.72, 0.90)
GRASS = (0.30, 0.42, 0.24)
ROAD = (0.26, 0.26, 0.28)
WHITE = (0.92, 0.92, 0.92)
YELLOW = (0.90, 0.76, 0.25)
HOUSING = (0.08, 0.08, 0.08)
POLE = (0.35, 0.35, 0.35)
LAMP_ON = {
    LightState.RED: (1.0, 0.0, 0.0),
    LightState.YELLOW: (1.0, 0.8, 0.0),
    LightState.GREEN: (0.0, 1.0, 0.2),
}
LAMP_OFF_FACTOR = 0.18  # an unlit lamp shows its colour this dim
LAMP_ORDER = (LightState.RED, LightState.YELLOW, LightState.GREEN)  # top to bottom

_GROUND_Z = -0.02
_ROAD_Z = 0.0
_MARKING_Z = 0.015
_GROUND_MARGIN_M = 400.0
_TILE_M = 40.0  # static geometry is culled in tiles of this size
_CHUNK_M = 20.0  # longest strip piece
_SIMPLIFY_TOL_M = 0.02  # vertices closer than this to a straight segment are dropped

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


# --------------------------------------------------------------------------- geometry


def _vertex_format() -> GeomVertexFormat:
    arr = GeomVertexArrayFormat()
    arr.add_column("vertex", 3, GeomEnums.NT_float32, GeomEnums.C_point)
    arr.add_column("color", 4, GeomEnums.NT_float32, GeomEnums.C_color)
    return GeomVertexFormat.register_format(GeomVertexFormat(arr))


_FORMAT: GeomVertexFormat | None = None


def _make_geom(vertices: np.ndarray, colours: np.ndarray, triangles: np.ndarray) -> Geom:
    """A static Geom: ``(N, 3)`` vertices, ``(N, 3|4)`` colours in [0, 1], ``(M, 3)`` indices."""
    global _FORMAT
    if _FORMAT is None:
        _FORMAT = _vertex_format()
    n = len(vertices)
    cols = np.ones((n, 4), dtype=np.float32)
    cols[:, : np.shape(colours)[1]] = colours
    data = np.concatenate([np.asarray(vertices, np.float32), cols], axis=1)
    vdata = GeomVertexData("v", _FORMAT, Geom.UH_static)
    vdata.unclean_set_num_rows(n)
    memoryview(vdata.modify_array(0)).cast("B")[:] = np.ascontiguousarray(data).tobytes()
    prim = GeomTriangles(Geom.UH_static)
    prim.set_index_type(GeomEnums.NT_uint32)
    idx = np.ascontiguousarray(np.asarray(triangles, dtype=np.uint32).reshape(-1))
    handle = prim.modify_vertices()
    handle.unclean_set_num_rows(len(idx))
    memoryview(handle).cast("B")[:] = idx.tobytes()
    geom = Geom(vdata)
    geom.add_primitive(prim)
    return geom


def _geom_node(name: str, geoms: Sequence[Geom]) -> GeomNode:
    node = GeomNode(name)
    for geom in geoms:
        node.add_geom(geom)
    return node


def _strip(left: np.ndarray, right: np.ndarray, z: float, colour: Sequence[float]) -> Geom | None:
    """A triangle strip between two ``(N, 2)`` polylines, facing up."""
    n = min(len(left), len(right))
    if n < 2:
        return None
    verts = np.zeros((2 * n, 3))
    verts[0::2, :2] = right[:n]
    verts[1::2, :2] = left[:n]
    verts[:, 2] = z
    i = np.arange(n - 1) * 2
    # right_i, right_i+1, left_i and left_i, right_i+1, left_i+1: counter-clockwise from above
    tris = np.concatenate(
        [np.stack([i, i + 2, i + 1], axis=1), np.stack([i + 1, i + 2, i + 3], axis=1)]
    )
    return _make_geom(verts, np.tile(np.asarray(colour)[None], (2 * n, 1)), tris)


def _box_geom(shades: Sequence[float] = (1.0, 0.82, 0.82, 0.66, 0.66, 0.45)) -> Geom:
    """Unit box ``x, y in [-0.5, 0.5]``, ``z in [0, 1]``; per-face grey shades baked in.

    Shades in face order: top, front (+x), back (-x), left (+y), right (-y), bottom. Faces wind
    counter-clockwise seen from outside (Panda3D's front faces).
    """
    faces = [  # four corners per face, counter-clockwise seen from outside
        [(-0.5, -0.5, 1), (0.5, -0.5, 1), (0.5, 0.5, 1), (-0.5, 0.5, 1)],  # top
        [(0.5, -0.5, 0), (0.5, 0.5, 0), (0.5, 0.5, 1), (0.5, -0.5, 1)],  # front +x
        [(-0.5, 0.5, 0), (-0.5, -0.5, 0), (-0.5, -0.5, 1), (-0.5, 0.5, 1)],  # back -x
        [(0.5, 0.5, 0), (-0.5, 0.5, 0), (-0.5, 0.5, 1), (0.5, 0.5, 1)],  # left +y
        [(-0.5, -0.5, 0), (0.5, -0.5, 0), (0.5, -0.5, 1), (-0.5, -0.5, 1)],  # right -y
        [(-0.5, 0.5, 0), (0.5, 0.5, 0), (0.5, -0.5, 0), (-0.5, -0.5, 0)],  # bottom
    ]
    verts = np.array(faces, dtype=np.float64).reshape(-1, 3)
    colours = np.repeat(np.asarray(shades, dtype=np.float64), 4)[:, None].repeat(3, axis=1)
    base = np.arange(6)[:, None] * 4
    tris = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]])
    return _make_geom(verts, colours, tris)


def _quad_geom() -> Geom:
    """Unit square in the local y-z plane at x = 0, facing +x, white."""
    verts = np.array([(0, -0.5, -0.5), (0, 0.5, -0.5), (0, 0.5, 0.5), (0, -0.5, 0.5)], float)
    return _make_geom(verts, np.ones((4, 3)), np.array([[0, 1, 2], [0, 2, 3]]))


def _strip_chunks(centre: np.ndarray, left: np.ndarray, right: np.ndarray) -> list[np.ndarray]:
    """Vertex indices for strips along a polyline: simplified, and cut into short chunks.

    Vertices that a straight segment would replace within ``_SIMPLIFY_TOL_M`` (Douglas-Peucker
    on ``centre``) are dropped, and the strip is cut every ``_CHUNK_M`` metres so that
    frustum culling can skip the parts of the road a camera cannot see.
    """
    n = len(centre)
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = centre[b] - centre[a]
        rel = centre[a + 1 : b] - centre[a]
        length = float(np.hypot(*seg))
        if length < 1e-9:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / length
        # the edges must stay within tolerance too (they bend more on the outside of a curve)
        for side in (left, right):
            sseg = side[b] - side[a]
            srel = side[a + 1 : b] - side[a]
            slen = float(np.hypot(*sseg))
            if slen > 1e-9:
                dist = np.maximum(dist, np.abs(sseg[0] * srel[:, 1] - sseg[1] * srel[:, 0]) / slen)
        k = int(np.argmax(dist))
        if dist[k] > _SIMPLIFY_TOL_M:
            m = a + 1 + k
            keep[m] = True
            stack += [(a, m), (m, b)]
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(centre, axis=0).T))])
    bucket = np.floor(arc / _CHUNK_M).astype(int)
    cuts = np.flatnonzero(np.diff(bucket)) + 1
    keep[cuts] = True
    idx = np.flatnonzero(keep)
    cut_set = set(cuts.tolist())
    chunks, current = [], [idx[0]]
    for i in idx[1:]:
        current.append(i)
        if i in cut_set:
            chunks.append(np.array(current))
            current = [i]
    if len(current) >= 2:
        chunks.append(np.array(current))
    return chunks


def _build_static(lanes: Sequence[LaneGeometry]) -> NodePath:
    """Ground, roads and markings: drawn first, in that order, with no depth test.

    Geometry is grouped into ``_TILE_M`` square tiles, each flattened into one node, so that
    Panda3D culls the tiles outside a camera's frustum.
    """
    static = NodePath("static")
    static.set_depth_test(False)
    static.set_depth_write(False)
    static.set_two_sided(True)

    pts = [np.asarray(lane.centerline, dtype=np.float64) for lane in lanes]
    if pts:
        allpts = np.concatenate(pts, axis=0)
        lo, hi = allpts.min(axis=0) - _GROUND_MARGIN_M, allpts.max(axis=0) + _GROUND_MARGIN_M
    else:
        lo, hi = np.array([-_GROUND_MARGIN_M] * 2), np.array([_GROUND_MARGIN_M] * 2)
    ground = _strip(
        np.array([[lo[0], hi[1]], [hi[0], hi[1]]]),
        np.array([[lo[0], lo[1]], [hi[0], lo[1]]]),
        _GROUND_Z,
        GRASS,
    )
    layer = static.attach_new_node(_geom_node("ground", [ground] if ground else []))
    layer.set_bin("background", 0)

    tiles: dict[tuple[int, int, int], list[Geom]] = {}

    def add(order: int, centre: np.ndarray, left: np.ndarray, right: np.ndarray, z, colour):
        for idx in _strip_chunks(centre, left, right):
            geom = _strip(left[idx], right[idx], z, colour)
            if geom is not None:
                cx, cy = np.floor(centre[idx].mean(axis=0) / _TILE_M).astype(int)
                tiles.setdefault((order, int(cx), int(cy)), []).append(geom)

    for lane in lanes:
        right, left = lane.edges()
        add(1, np.asarray(lane.centerline, dtype=np.float64), left, right, _ROAD_Z, ROAD)
    half = MARKING_WIDTH_M / 2.0
    for piece, yellow in marking_pieces(lanes):
        colour = YELLOW if yellow else WHITE
        add(
            2,
            piece,
            offset_polyline(piece, half),
            offset_polyline(piece, -half),
            _MARKING_Z,
            colour,
        )

    for (order, cx, cy), geoms in sorted(tiles.items()):
        tile = static.attach_new_node(_geom_node(f"tile{order}_{cx}_{cy}", geoms))
        tile.set_bin("background", order)
        tile.flatten_strong()  # merges this tile's geoms; tiles stay separate for culling
    return static


# --------------------------------------------------------------------------- renderer


class _Signal:
    """A traffic-light head: pole, housing and three lamps (red on top)."""

    def __init__(self, parent: NodePath, light: TrafficLightView, box: Geom, quad: Geom):
        self.node = parent.attach_new_node(f"light{light.light_id}")
        depth, width, height = HOUSING_SIZE_M
        housing = self.node.attach_new_node(_geom_node("housing", [box]))
        housing.set_pos(0.0, 0.0, -height / 2.0)
        housing.set_scale(depth, width, height)
        housing.set_color_scale(*HOUSING, 1.0)
        self.pole = self.node.attach_new_node(_geom_node("pole", [box]))
        self.pole.set_color_scale(*POLE, 1.0)
        self.lamps = []
        for i, _state in enumerate(LAMP_ORDER):
            lamp = self.node.attach_new_node(_geom_node(f"lamp{i}", [quad]))
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


class _Actor:
    def __init__(self, parent: NodePath, actor_id: int, box: Geom):
        self.node = parent.attach_new_node(_geom_node(f"actor{actor_id}", [box]))
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
        self._root.attach_new_node(_build_static(lanes).node())
        self._actors_np = self._root.attach_new_node("actors")
        self._lights_np = self._root.attach_new_node("lights")
        # boxes draw in scene-graph order, not in Panda3D's default state-sorted order:
        # that order follows render-state addresses, so a depth tie (a signal pole and its
        # housing share a face) was broken differently after other work in the process
        # (measured: 2 pixels of one frame, enough to change a learned policy's drive)
        for node in (self._actors_np, self._lights_np):
            node.set_bin("unsorted", 10)
        self._box = _box_geom()
        self._quad = _quad_geom()
        self._actors: dict[int, _Actor] = {}
        self._signals: dict[int, _Signal] = {}

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
                node = self._actors[actor.actor_id] = _Actor(
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
                self._signals[light.light_id] = _Signal(
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
