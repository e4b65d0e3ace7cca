"""The CARLA backend's side of the boundary: conversions between what a CARLA server or the
Leaderboard 2.0 evaluator hands an agent (BGRA images, GNSS, IMU, speedometer, left-handed
transforms, ``RoadOption`` plans, sensor dicts) and drivevla's contracts
(:mod:`drivevla.core.types`, frames of :mod:`drivevla.core.frames`): ``convert`` (each value),
``sensor_inputs`` (one tick's ``input_data``), ``pose_filter`` (GNSS smoothing),
``route_tracking`` (the global plan), ``routes_xml`` (route files), ``spawn`` (what a backend
spawns), ``sensor_data`` (sensor callbacks to ``input_data``), ``observer`` (``input_data`` and
the plan to an ``Observation``, for the agent file and the backend alike).

The backend itself: ``env`` (``CarlaDrivingEnv``, a server behind the core ``Env`` contract),
``criteria_inputs`` (what our Leaderboard 2.0 criteria read from the server), ``suite`` (a
route file as a suite of the closed-loop benchmark).

The ``carla`` client (``pip install "carla==0.9.16"``, the ``carla`` extra) is imported
lazily, only by the functions that build its value types; everything else works without it.
The Leaderboard agent itself is :mod:`drivevla.carla.leaderboard_agent`.
"""
