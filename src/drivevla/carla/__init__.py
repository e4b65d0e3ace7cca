"""drivevla in CARLA's own evaluators: the Leaderboard 2.0 / Bench2Drive agent file
(:mod:`drivevla.carla.leaderboard_agent`, ``get_entry_point()``), its config, route tracking
along the leaderboard's global plan, and the observation built from ``input_data``.

It sits above ``agents`` (it drives a registered policy through the same
:class:`~drivevla.agents.agent.Agent` and controllers as the embedded simulator); the value
conversions at the CARLA boundary live in :mod:`drivevla.sim_bridge.carla.convert`.
See docs/carla.md.
"""
