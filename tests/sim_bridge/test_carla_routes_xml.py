"""Leaderboard 2.0 / Bench2Drive route files read directly (hand-made files)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.errors import InvalidFileError
from drivevla.sim_bridge.carla.routes_xml import read_route_file

ROUTES = """<?xml version='1.0' encoding='utf-8'?>
<routes>
   <route id="1711" town="Town12">
      <weathers>
         <weather route_percentage="0" cloudiness="5.0" precipitation="0.0"/>
         <weather route_percentage="100" cloudiness="80.0" precipitation="20.0"/>
      </weathers>
      <waypoints>
         <position x="100.0" y="20.0" z="0.5"/>
         <position x="150.0" y="20.0" z="0.5"/>
         <position x="150.0" y="-30.0" z="0.5"/>
      </waypoints>
      <scenarios>
         <scenario name="Accident_1" type="Accident">
            <trigger_point x="120.0" y="20.0" z="0.5" yaw="90.0"/>
            <distance value="120"/>
            <direction value="right"/>
         </scenario>
      </scenarios>
   </route>
   <route id="1712" town="Town03">
      <waypoints>
         <position x="0" y="0"/>
         <position x="10" y="0"/>
      </waypoints>
   </route>
</routes>
"""


def test_a_route_file_reads_in_both_frames(tmp_path):
    path = tmp_path / "routes.xml"
    path.write_text(ROUTES)
    first, second = read_route_file(path)
    assert (first.route_id, first.town, second.town) == ("1711", "Town12", "Town03")
    np.testing.assert_array_equal(first.waypoints_carla[:, :2], [[100, 20], [150, 20],
                                                                 [150, -30]])
    # CARLA y points south: world y is its negative
    np.testing.assert_array_equal(first.waypoints_world, [[100, -20], [150, -20], [150, 30]])
    assert first.weathers[1] == {"route_percentage": 100.0, "cloudiness": 80.0,
                                 "precipitation": 20.0}
    accident = first.scenarios[0]
    assert (accident.name, accident.type) == ("Accident_1", "Accident")
    assert accident.params == {"distance": {"value": "120"}, "direction": {"value": "right"}}
    x, y, yaw = accident.trigger_world
    assert (x, y) == (120.0, -20.0) and yaw == pytest.approx(-math.pi / 2)  # CARLA yaw 90: south
    assert second.scenarios == () and second.waypoints_carla[1, 2] == 0.0


@pytest.mark.parametrize("text, message", [
    ("<routes><route", "not valid XML"),
    ("<route id='1'/>", "root element is <route>"),
    ("<routes><route id='1'><waypoints><position x='1' y='2'/></waypoints></route></routes>",
     "route '1' has 1 <position>"),
    ("<routes><route id='1'><waypoints><position x='a' y='2'/><position x='1' y='2'/>"
     "</waypoints></route></routes>", "route '1': <position> x='a' is not a number"),
    ("<routes/>", "no <route> elements"),
])
def test_a_bad_route_file_is_named(tmp_path, text, message):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(InvalidFileError, match=f"bad.xml: .*{message}"):
        read_route_file(path)
