"""Static geometry of the camera renderer: vertex-coloured Panda3D Geoms and the flat layers.

:func:`build_static` makes the ground, road surfaces and lane markings of a road network once
per renderer (grouped into culling tiles, flattened, drawn without depth test in a fixed
order); :func:`box_geom` and :func:`quad_geom` are the unit shapes that actors and signal heads
scale. Shading is baked per face into vertex colours (no lights).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import drivevla.sim_bridge.embedded.camera_prc  # noqa: F401  (PRC data before panda3d)

# isort: split
from panda3d.core import (
    Geom,
    GeomEnums,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    GeomVertexData,
    GeomVertexFormat,
    NodePath,
)

from drivevla.core.scene import LaneGeometry
from drivevla.sim_bridge.embedded.bev import marking_pieces, offset_polyline

__all__ = [
    "MARKING_WIDTH_M",
    "build_static",
    "box_geom",
    "quad_geom",
    "geom_node",
    "make_geom",
]

MARKING_WIDTH_M = 0.15

GRASS = (0.30, 0.42, 0.24)
ROAD = (0.26, 0.26, 0.28)
WHITE = (0.92, 0.92, 0.92)
YELLOW = (0.90, 0.76, 0.25)

_GROUND_Z = -0.02
_ROAD_Z = 0.0
_MARKING_Z = 0.015
_GROUND_MARGIN_M = 400.0
_TILE_M = 40.0  # static geometry is culled in tiles of this size
_GROUND_BLOCK = 4  # ground quads (one tile each) are culled in blocks of 4 x 4
_CHUNK_M = 20.0  # longest strip piece
_SIMPLIFY_TOL_M = 0.02  # vertices closer than this to a straight segment are dropped


def _vertex_format() -> GeomVertexFormat:
    arr = GeomVertexArrayFormat()
    arr.add_column("vertex", 3, GeomEnums.NT_float32, GeomEnums.C_point)
    arr.add_column("color", 4, GeomEnums.NT_float32, GeomEnums.C_color)
    return GeomVertexFormat.register_format(GeomVertexFormat(arr))


_FORMAT: GeomVertexFormat | None = None


def make_geom(vertices: np.ndarray, colours: np.ndarray, triangles: np.ndarray) -> Geom:
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


def geom_node(name: str, geoms: Sequence[Geom]) -> GeomNode:
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
    return make_geom(verts, np.tile(np.asarray(colour)[None], (2 * n, 1)), tris)


def box_geom(shades: Sequence[float] = (1.0, 0.82, 0.82, 0.66, 0.66, 0.45)) -> Geom:
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
    return make_geom(verts, colours, tris)


def quad_geom() -> Geom:
    """Unit square in the local y-z plane at x = 0, facing +x, white."""
    verts = np.array([(0, -0.5, -0.5), (0, 0.5, -0.5), (0, 0.5, 0.5), (0, -0.5, 0.5)], float)
    return make_geom(verts, np.ones((4, 3)), np.array([[0, 1, 2], [0, 2, 3]]))


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


def build_static(lanes: Sequence[LaneGeometry]) -> NodePath:
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
    tiles: dict[tuple[int, int, int], list[Geom]] = {}
    # the ground in _TILE_M squares, not one quad: p3tinydisplay's clipping dropped a
    # triangle hundreds of metres across for some camera poses (a wedge of sky below the
    # horizon, changed by a 1e-8 rad turn of the camera)
    for cx in range(int(np.floor(lo[0] / _TILE_M)), int(np.ceil(hi[0] / _TILE_M))):
        for cy in range(int(np.floor(lo[1] / _TILE_M)), int(np.ceil(hi[1] / _TILE_M))):
            x0, y0 = cx * _TILE_M, cy * _TILE_M
            quad = _strip(np.array([[x0, y0 + _TILE_M], [x0 + _TILE_M, y0 + _TILE_M]]),
                          np.array([[x0, y0], [x0 + _TILE_M, y0]]), _GROUND_Z, GRASS)
            block = (0, cx // _GROUND_BLOCK, cy // _GROUND_BLOCK)  # few nodes to cull
            tiles.setdefault(block, []).append(quad)

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
        tile = static.attach_new_node(geom_node(f"tile{order}_{cx}_{cy}", geoms))
        tile.set_bin("background", order)
        tile.flatten_strong()  # merges this tile's geoms; tiles stay separate for culling
    return static
