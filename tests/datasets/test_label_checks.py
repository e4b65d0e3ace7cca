"""The label checks over a dataset's frames: each check on constructed frames, and a
collected episode that passes them all."""

from __future__ import annotations

import json

import numpy as np
import pytest

from drivevla.core.types import CameraSpec
from drivevla.datasets import label_checks as lc
from drivevla.datasets.collect import CollectConfig, collect


def _frame(i=0, x=0.0, y=0.0, yaw=0.0, reason="follow_route", text="", obj=None, actors=(),
           scenario="urban", progress=0.0, targets=None):
    return {
        "episode_id": "e", "frame_index": i, "scenario": scenario,
        "ego.x": x, "ego.y": y, "ego.yaw": yaw, "route.progress": progress,
        "route.targets": targets if targets is not None else [10, 0, 20, 0, 30, 0, 40, 0, 50, 0],
        "expert.reason": reason, "expert.reason_object": json.dumps(obj or {}),
        "expert.explanation": text, "actors": json.dumps(list(actors)),
    }


def _straight_episode(reason_at_5="curve", n=30):
    return [
        _frame(i, x=2.0 * i, progress=2.0 * i,
               reason=reason_at_5 if i == 5 else "follow_route",
               text="Easing off ahead of the curve." if i == 5 else "Carrying on along the route.")
        for i in range(n)
    ]


def test_curve_on_a_straight_driven_path_is_flagged():
    res = lc.check_episode_frames(_straight_episode())
    assert res["counts"]["curve_straight"] == 1
    assert res["examples"]["curve_straight"][0]["frame_index"] == 5


def test_curve_before_a_driven_bend_is_not_flagged():
    # drive straight 20 m, then a quarter circle of radius 15 m
    frames = [_frame(i, x=2.0 * i, reason="curve" if i == 5 else "follow_route",
                     text="Slowing for the bend ahead." if i == 5 else "")
              for i in range(10)]
    for j, a in enumerate(np.linspace(0.0, np.pi / 2, 12)[1:]):
        frames.append(_frame(10 + j, x=20.0 + 15 * np.sin(a), y=15 - 15 * np.cos(a), yaw=a))
    assert lc.check_episode_frames(frames)["counts"]["curve_straight"] == 0


def test_curve_is_judged_by_the_road_not_by_the_lane_change():
    # the car swerves (a lane change, a bent driven path), the road is straight: flagged;
    # a road bend 60 m ahead: not flagged
    frames = [_frame(i, x=2.0 * i, y=3.5 * min(max((i - 3) / 10, 0), 1), progress=2.0 * i,
                     yaw=0.15 if 3 <= i < 13 else 0.0,
                     reason="curve" if i == 5 else "follow_route") for i in range(30)]
    s = np.arange(0.0, 300.0)
    straight = lc.RoadGeometry(s, np.zeros_like(s), speed_limit_mps=25.0)
    assert lc.check_episode_frames(frames, road=straight)["counts"]["curve_straight"] == 1
    k = np.where((s > 70) & (s < 90), 0.02, 0.0)
    bend = lc.RoadGeometry(s, k, speed_limit_mps=25.0)
    assert lc.check_episode_frames(frames, road=bend)["counts"]["curve_straight"] == 0


def _car(x, y, colour, kind="vehicle"):
    return {"id": 1, "kind": kind, "x": x, "y": y, "yaw": 0.0, "length": 4.5, "width": 1.8,
            "speed": 5.0, "colour": colour}


def test_colour_must_be_the_reason_objects():
    obj = {"kind": "vehicle", "x": 20.0, "y": 2.0, "colour": "green"}
    ok = _frame(reason="yield_junction", obj=obj, actors=[_car(20.0, 2.0, "green")],
                text="Holding at the junction: the green car has priority.")
    assert lc.check_frame(ok, [CameraSpec()]) == {}
    # the text names another colour than the object's / the actor there is brown
    wrong_text = dict(ok, **{"expert.explanation": "The blue car has priority at the junction."})
    assert "colour" in lc.check_frame(wrong_text, [CameraSpec()])
    brown = dict(ok, actors=json.dumps([_car(20.0, 2.0, "brown")]))
    assert "colour" in lc.check_frame(brown, [CameraSpec()])
    # "red light" is not a colour of a road user
    light = _frame(reason="red_light", obj={"kind": "traffic_light", "x": 20.0, "y": 0.0},
                   text="Stopping at the red light.")
    assert lc.check_frame(light, [CameraSpec()]) == {}


def test_a_named_car_out_of_view_is_flagged():
    obj = {"kind": "vehicle", "x": 14.4, "y": 25.9, "colour": "green"}
    frame = _frame(reason="yield_junction", obj=obj, actors=[_car(14.4, 25.9, "green")],
                   text="Holding at the junction: the green car has priority.")
    found = lc.check_frame(frame, [CameraSpec()])
    assert set(found) == {"out_of_view"}
    # a camera looking left sees it
    left = CameraSpec(name="left", yaw_deg=60.0)
    assert lc.check_frame(frame, [CameraSpec(), left]) == {}


def test_side_distance_place_and_reason_text():
    ped = {"kind": "pedestrian", "x": 12.0, "y": -4.0}
    side = _frame(reason="pedestrian_crossing", obj=ped,
                  text="A pedestrian is about to step out on the left.")
    assert set(lc.check_frame(side, [CameraSpec()])) == {"side"}
    far = _frame(reason="pedestrian_crossing", obj=ped,
                 text="Stopped for the pedestrian 40 metres ahead.")
    assert set(lc.check_frame(far, [CameraSpec()])) == {"distance"}
    place = _frame(reason="instructed_exit", scenario="roundabout",
                   text="Taking the slip road off the highway.")
    assert set(lc.check_frame(place, [CameraSpec()])) == {"place"}
    other = _frame(reason="curve", text="Keeping my distance from the vehicle ahead.",
                   targets=[10, 0, 20, 2, 28, 8, 33, 16, 35, 26])
    assert set(lc.check_frame(other, [CameraSpec()])) == {"reason_text"}


def test_format_lists_every_check():
    res = lc.check_episode_frames(_straight_episode())
    text = lc.format_label_checks(res)
    for check in lc.CHECKS:
        assert check in text
    assert "Easing off ahead of the curve." in text


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """One quiet roundabout episode driven to its goal by the expert (a 64x48 camera)."""
    root = tmp_path_factory.mktemp("labels")
    suite = root / "suite.yaml"
    suite.write_text(
        "name: labels\ndescription: one full roundabout route\nroutes:\n"
        "- id: roundabout-2\n  scenario: roundabout\n  intent: roundabout_exit_2\n  seed: 21\n"
        "  config: {traffic_density: 0.0, pedestrians: false, "
        "cameras: [{name: front, width: 64, height: 48}]}\n",
        encoding="utf-8",
    )
    out = root / "ds"
    collect(CollectConfig(suite=str(suite), episodes=1, out=str(out), workers=0,
                          show_progress=False))
    return out


def test_a_collected_dataset_passes_every_check(collected):
    res = lc.check_labels(collected)
    assert res["episodes"] == res["episodes_road_rebuilt"] == 1
    assert res["curve_frames"] > 0  # the ring is a bend: those are not flagged
    assert res["counts"] == dict.fromkeys(lc.CHECKS, 0), lc.format_label_checks(res)
