"""drivevla in CARLA's own evaluators: the Leaderboard 2.0 / Bench2Drive agent file
(:mod:`drivevla.carla.leaderboard_agent`, ``get_entry_point()``) and its config.

It sits above ``agents`` (it drives a registered policy through the same
:class:`~drivevla.agents.agent.Agent` and controllers as the embedded simulator); the value
conversions at the CARLA boundary, reading ``input_data``, GNSS smoothing and route tracking
along the global plan live in :mod:`drivevla.sim_bridge.carla`, where a CARLA backend can
reuse them.
See docs/carla.md.
"""
