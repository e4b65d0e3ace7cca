"""Panda3D configuration (PRC data) of the camera renderer, loaded when this module is imported.

Every module that imports Panda3D classes for rendering imports this module first, so that the
software display (``p3tinydisplay``), offscreen windows, no audio and quiet notify levels are
configured before Panda3D reads them::

    import drivevla.sim_bridge.embedded.camera_prc  # noqa: F401  (PRC data first)

    # isort: split
    from panda3d.core import ...
"""

from __future__ import annotations

from panda3d.core import loadPrcFileData

__all__ = ["PRC_LINES"]

PRC_LINES = (
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
    # Panda3D's transform cache treats transforms within ~1e-6 as equal and returns the first
    # one made in the process, so a pose depended on what the process had rendered before
    "transform-cache false",
)

loadPrcFileData("drivevla-camera", "\n".join(PRC_LINES))
