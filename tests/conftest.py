"""Test-wide settings: offline, headless, and a helper to build small envs."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
