"""The CARLA backend's side of the boundary: conversions between what a CARLA server or the
Leaderboard 2.0 evaluator hands an agent (BGRA images, GNSS, IMU, speedometer, left-handed
transforms, ``RoadOption`` plans, sensor dicts) and drivevla's contracts
(:mod:`drivevla.core.types`, frames of :mod:`drivevla.core.frames`): ``convert`` (each value),
``sensor_inputs`` (one tick's ``input_data``), ``pose_filter`` (GNSS smoothing),
``route_tracking`` (the global plan), ``routes_xml`` (route files), ``spawn`` (what a backend
spawns), ``sensor_data`` (sensor callbacks to ``input_data``).

The ``carla`` client (``pip install "carla==0.9.16"``, the ``carla`` extra) is imported
lazily, only by the functions that build its value types; everything else works without it.
The Leaderboard agent itself is :mod:`drivevla.carla.leaderboard_agent`.
"""
