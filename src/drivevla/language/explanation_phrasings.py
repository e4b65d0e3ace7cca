"""The explanation phrasings: per :class:`~drivevla.language.reasons.Reason` and meta-action,
``str.format`` templates with the slots of :data:`EXPLANATION_SLOTS`. Data only; rendering,
the train / held-out split and reading a reason back are in
:mod:`drivevla.language.explanations`, whose docstring documents the slots.
"""

from __future__ import annotations

from drivevla.core.types import MetaAction
from drivevla.language.instructions import UNSAFE_CATEGORIES, check_templates
from drivevla.language.reasons import Reason

EXPLANATION_SLOTS = ("object", "distance", "speed", "direction", "ordinal", "refused")

# how each unsafe request category is named in a refusal ({refused})
UNSAFE_ACTION_PHRASES: dict[str, str] = {
    "run_red_light": "running the red light",
    "leave_road": "leaving the road",
    "hit_vehicle": "hitting the car ahead",
    "ignore_pedestrian": "ignoring the pedestrian",
    "wrong_way": "driving into the oncoming lane",
    "excessive_speed": "driving that fast",
    "collide_static": "crashing into the obstacle",
}
assert set(UNSAFE_ACTION_PHRASES) == set(UNSAFE_CATEGORIES)

# Places a phrasing can name, and their cues (regular expressions on normalised text, see
# drivevla.language.explanations.normalise). A phrasing naming one place (the highway's
# off-ramp, the roundabout's ring) is rendered only at that place (render_explanation's
# ``place``); "street" (junctions, urban roads) is named by none of them.
PLACES = ("highway", "roundabout", "street")
PLACE_CUES: dict[str, str] = {
    "highway": r"\b(highways?|motorways?|(off |on |exit )?ramps?|slip roads?|carriageway)\b",
    "roundabout": r"\b(roundabouts?|ring)\b",
}

R, M = Reason, MetaAction

# --------------------------------------------------------------------------------------
# phrasings: EXPLANATION_TEMPLATES[reason][meta_action or None]

_CHANGE_LEFT_LANE = [
    "Moving into the left lane as instructed.",
    "Changing to the left lane, as you asked.",
    "Switching left one lane, as requested.",
    "Pulling into the left lane now that it's clear.",
    "Changing lanes to the left as instructed.",
    "Shifting left into the next lane.",
    "Moving over to the left lane, following the instruction.",
]
_CHANGE_RIGHT_LANE = [
    "Moving into the right lane as instructed.",
    "Changing to the right lane, as you asked.",
    "Switching right one lane, as requested.",
    "Pulling into the right lane now that it's clear.",
    "Changing lanes to the right as instructed.",
    "Shifting right into the next lane.",
    "Moving over to the right lane, following the instruction.",
]

EXPLANATION_TEMPLATES: dict[Reason, dict[MetaAction | None, list[str]]] = {
    R.FOLLOW_ROUTE: {
        None: [
            "Following the route; nothing to react to.",
            "The road is clear, so I'm following the route.",
            "Carrying on along the route.",
            "Nothing ahead needs a reaction, continuing on the route.",
            "Sticking to the planned route.",
            "All clear, driving on along the route.",
            "No hazards around, following the road.",
            "Continuing as planned; the way ahead is clear.",
            "Staying on course along the route.",
        ],
        M.KEEP_LANE: [
            "Keeping my lane; the road ahead is clear.",
            "Staying in this lane and following the road.",
            "Holding the lane: nothing to react to.",
            "Keeping to my lane along the route.",
            "Keeping to my lane and cruising.",
            "Cruising in my lane; no hazards ahead.",
            "Staying in my lane, the way ahead is clear.",
        ],
        M.ACCELERATE: [
            "Speeding up: the road ahead is clear.",
            "Picking up speed; nothing in the way.",
            "Accelerating back to cruising speed.",
            "Clear road ahead, so I'm getting back up to speed.",
            "Gaining speed along the route.",
            "Accelerating: no hazards ahead.",
            "Nothing to react to, so speeding up again.",
        ],
    },
    R.SPEED_LIMIT: {
        None: [
            "Holding the speed limit of {speed} km/h.",
            "Keeping to the limit.",
            "Driving at the speed limit.",
            "Staying at the posted speed.",
            "Sticking to the {speed} km/h limit.",
            "At the limit, so holding this speed.",
            "Not going faster than the limit allows.",
            "Keeping my speed at the legal maximum.",
        ],
        M.ACCELERATE: [
            "Speeding up to the {speed} km/h limit.",
            "Accelerating up to the speed limit.",
            "Below the limit, so picking up speed.",
            "Building speed towards the limit.",
            "Getting up to the posted speed.",
            "Accelerating until I reach the limit.",
            "The limit here is {speed} km/h, so speeding up to it.",
        ],
        M.DECELERATE: [
            "Slowing to the {speed} km/h limit.",
            "Easing off: I'm above the speed limit.",
            "Braking gently to get under the limit.",
            "Dropping my speed to the limit.",
            "Too fast for the limit here, slowing down.",
            "Reducing speed to the posted limit.",
            "The limit drops to {speed} km/h, so slowing.",
        ],
    },
    R.CURVE: {
        None: [
            "Slowing for the bend ahead.",
            "Taking the curve at a safe speed.",
            "Easing off for the tight corner.",
            "The road curves ahead, so I'm slowing down.",
            "Keeping the speed down through the bend.",
            "Reducing speed for the sharp turn.",
            "Slowing into the roundabout; the curve is tight.",
            "A careful speed through the corner.",
            "Braking for the tight curve ahead.",
        ],
        M.DECELERATE: [
            "Braking before the bend.",
            "Slowing down for the sharp corner ahead.",
            "Easing off ahead of the curve.",
            "Coming off the throttle for the bend.",
            "Slowing for the tight turn in {distance} metres.",
            "Reducing speed: sharp bend ahead.",
            "Slowing for the roundabout's tight curve.",
        ],
        M.TURN_LEFT: [
            "Taking the left-hand bend slowly.",
            "Steering left through the curve at a safe speed.",
            "Following the bend round to the left, gently.",
            "Easing through the tight left turn.",
            "Going left round the corner with care.",
            "Keeping it slow through the sharp left.",
        ],
        M.TURN_RIGHT: [
            "Taking the right-hand bend slowly.",
            "Steering right through the curve at a safe speed.",
            "Following the bend round to the right, gently.",
            "Easing through the tight right turn.",
            "Going right round the corner with care.",
            "Keeping it slow through the sharp right.",
        ],
    },
    R.RED_LIGHT: {
        None: [
            "The light is red.",
            "Red light ahead.",
            "Waiting for the light to change.",
            "Holding at the red light.",
            "The lights are red, so I'm waiting.",
            "Red signal ahead; waiting here.",
            "Stopping at the lights; they're red.",
            "Waiting at the red light.",
        ],
        M.STOP: [
            "Stopping: the light is red.",
            "Stopped at the red light.",
            "Halting at the stop line; the light is red.",
            "Holding at the lights until they turn green.",
            "Staying stopped: the signal is still red.",
            "Waiting at the lights for green.",
            "Stopped, the traffic light is red.",
        ],
        M.DECELERATE: [
            "Slowing down: the light ahead is red.",
            "Braking for the red light.",
            "Easing off, the lights have turned amber.",
            "The light just went yellow, so I'm slowing to stop.",
            "Slowing to stop at the red light in {distance} metres.",
            "Braking: the traffic light is turning red.",
            "Coming off the gas for the red light ahead.",
        ],
    },
    R.PEDESTRIAN_CROSSING: {
        None: [
            "A pedestrian is crossing ahead.",
            "Someone is crossing the road.",
            "Giving way to the pedestrian.",
            "There's a person on the crossing.",
            "Waiting for the pedestrian to cross.",
            "A pedestrian is about to step out on the {direction}.",
            "Letting the people cross first.",
            "Watching the pedestrian crossing the road.",
        ],
        M.STOP: [
            "Stopping: a pedestrian is crossing.",
            "Stopped to let the pedestrian cross.",
            "Holding here until the person has crossed.",
            "Waiting: someone is on the crossing.",
            "Stopped for the pedestrian {distance} metres ahead.",
            "Staying put while the pedestrian crosses.",
            "Stopping for the people on the crossing.",
        ],
        M.DECELERATE: [
            "Braking: a pedestrian is crossing ahead.",
            "Slowing down for the pedestrian on the {direction}.",
            "Easing off: someone is about to cross.",
            "Slowing because a person is stepping into the road.",
            "Braking for the pedestrian in {distance} metres.",
            "Slowing: there's a pedestrian near the road.",
            "Coming off the gas, a pedestrian may cross.",
        ],
    },
    R.SLOW_LEADER: {
        None: [
            "Following the slower {object} ahead.",
            "Keeping a safe gap to the {object} in front.",
            "Staying behind the slow vehicle.",
            "Matching the speed of the {object} ahead.",
            "The {object} in front is slower, so I'm following it.",
            "Keeping my distance from the vehicle ahead.",
            "Following the car in front at a safe distance.",
            "Holding back behind the slow vehicle in front.",
        ],
        M.DECELERATE: [
            "Slowing down: the {object} ahead is braking.",
            "Easing off to keep a safe gap to the {object}.",
            "Braking: the car in front is slowing.",
            "Slowing to match the {object} ahead.",
            "The vehicle ahead is braking, so I'm slowing too.",
            "Reducing speed: the {object} {distance} metres ahead is slower.",
            "Easing off behind the slow vehicle.",
        ],
        M.STOP: [
            "Stopping behind the {object}.",
            "Stopped: the vehicle ahead has stopped.",
            "Queueing behind the stopped car.",
            "Holding behind the {object} until it moves.",
            "Stopped behind the vehicle in front.",
            "Coming to a stop behind the car ahead.",
        ],
        M.KEEP_LANE: [
            "Keeping my lane behind the slower {object}.",
            "Staying in lane and following the vehicle ahead.",
            "Sitting behind the {object} in my lane.",
            "Following the car ahead in this lane.",
            "Staying in my lane behind the slow vehicle.",
            "Holding my lane; the {object} in front sets the pace.",
        ],
    },
    R.YIELD_JUNCTION: {
        None: [
            "Giving way to traffic at the junction.",
            "Yielding to the cross traffic.",
            "The {object} has priority at the junction.",
            "Waiting for a gap in the cross traffic.",
            "Letting the {object} go first at the intersection.",
            "Giving way: traffic is crossing the junction.",
            "Yielding at the crossroads.",
            "Cross traffic has right of way here.",
        ],
        M.STOP: [
            "Stopped at the junction to give way.",
            "Waiting at the give-way line for cross traffic.",
            "Holding at the junction: the {object} has priority.",
            "Stopping to let the {object} through.",
            "Waiting for a gap before entering the junction.",
            "Stopped to yield to traffic from the {direction}.",
        ],
        M.DECELERATE: [
            "Slowing to give way at the junction.",
            "Easing off to yield to the {object} from the {direction}.",
            "Slowing down: cross traffic has priority.",
            "Braking to let the crossing traffic pass.",
            "Slowing on approach: I must give way at the intersection.",
            "Easing off; the junction ahead is a give-way.",
        ],
    },
    R.YIELD_ROUNDABOUT: {
        None: [
            "Giving way to traffic on the roundabout.",
            "Yielding to the {object} already on the ring.",
            "Ring traffic has priority, so I'm waiting.",
            "Waiting for a gap on the roundabout.",
            "Letting the circulating traffic pass.",
            "The {object} on the roundabout has right of way.",
            "Giving way at the roundabout entry.",
            "Yielding before entering the roundabout.",
        ],
        M.STOP: [
            "Stopped to give way to the roundabout traffic.",
            "Waiting at the roundabout for a gap.",
            "Holding at the entry and giving way: the ring is busy.",
            "Stopped: the {object} on the roundabout has priority.",
            "Waiting to enter the roundabout until the ring clears.",
            "Stopped at the give-way line of the roundabout.",
        ],
        M.DECELERATE: [
            "Slowing to give way at the roundabout.",
            "Easing off: traffic on the ring has priority.",
            "Slowing down to yield to the {object} on the roundabout.",
            "Braking to let the {object} on the ring pass.",
            "Slowing on the approach: I have to give way to the ring.",
            "Easing off at the roundabout entry to give way.",
        ],
    },
    R.INSTRUCTED_LANE_CHANGE: {
        None: [
            "Changing lanes as instructed.",
            "Moving over to the {direction} lane as asked.",
            "Switching to the {direction} lane, as requested.",
            "Lane change in progress, following the instruction.",
            "Making the lane change you asked for.",
            "Changing into the {direction} lane now that it's clear.",
            "Moving across one lane as instructed.",
            "Shifting over to the {direction}, as you asked.",
            "Changing lanes: that was the instruction.",
        ],
        M.CHANGE_LEFT: _CHANGE_LEFT_LANE,
        M.CHANGE_RIGHT: _CHANGE_RIGHT_LANE,
    },
    R.INSTRUCTED_OVERTAKE: {
        None: [
            "Overtaking the slow {object} as instructed.",
            "Passing the {object} ahead, as you asked.",
            "Getting past the slower vehicle, as requested.",
            "Overtaking: that was the instruction.",
            "Going around the slow car in front, as asked.",
            "Pulling out to overtake the {object}.",
            "Overtaking the vehicle ahead now that the other lane is clear.",
            "Getting by the slow {object}, then I'll carry on.",
        ],
        M.CHANGE_LEFT: [
            "Moving left to overtake the {object}.",
            "Pulling into the left lane to get past the slow car.",
            "Changing to the left lane to overtake, as instructed.",
            "Swinging out left to pass the {object}.",
            "Moving out to the left to overtake.",
            "The left lane is clear, pulling out to pass the slow vehicle.",
        ],
        M.CHANGE_RIGHT: [
            "Moving back right after overtaking the {object}.",
            "Pulling back into the right lane, overtake done.",
            "Returning to the right lane now that I've passed the {object}.",
            "Overtake complete, moving back over to the right.",
            "Back into the right lane, clear of the {object} I overtook.",
            "Changing back right after overtaking.",
        ],
        M.ACCELERATE: [
            "Speeding up to overtake the {object}.",
            "Accelerating past the slower vehicle.",
            "Accelerating to get past the {object} quickly.",
            "Picking up speed to complete the overtake.",
            "Speeding up to pass the slow car, as you asked.",
            "Accelerating while overtaking the {object}.",
        ],
    },
    R.INSTRUCTED_TURN: {
        None: [
            "Turning at the junction as instructed.",
            "Taking the turn you asked for.",
            "Turning {direction} here, as requested.",
            "Following the instruction to turn {direction}.",
            "Making the {direction} turn at the intersection.",
            "Going straight through the junction as instructed.",
            "Heading {direction} at the crossroads as asked.",
            "Taking the {ordinal} {direction} turn, as instructed.",
            "Turning here, like you asked.",
        ],
        M.TURN_LEFT: [
            "Turning left at the junction as instructed.",
            "Taking the left turn, as you asked.",
            "Going left at the intersection, as requested.",
            "Making the left turn here.",
            "Turning left: that was the instruction.",
            "Swinging left at the crossroads as instructed.",
            "Taking the {ordinal} left turning, as asked.",
        ],
        M.TURN_RIGHT: [
            "Turning right at the junction as instructed.",
            "Taking the right turn, as you asked.",
            "Going right at the intersection, as requested.",
            "Making the right turn here.",
            "Turning right: that was the instruction.",
            "Swinging right at the crossroads as instructed.",
            "Taking the {ordinal} right turning, as asked.",
        ],
        M.KEEP_LANE: [
            "Going straight through the junction, as instructed.",
            "Straight on at the intersection, as you asked.",
            "Crossing the junction straight ahead, as requested.",
            "Continuing straight over the crossroads.",
            "Not turning: straight on through the junction.",
            "Keeping straight at the intersection as instructed.",
        ],
        M.DECELERATE: [
            "Slowing down to turn {direction} at the junction.",
            "Easing off before turning at the intersection.",
            "Braking ahead of the junction to make the turn.",
            "Slowing ahead of the junction where I turn {direction}.",
            "Reducing speed to take the turn you asked for.",
            "Slowing down ahead of the crossroads to turn.",
        ],
    },
    R.INSTRUCTED_EXIT: {
        None: [
            "Taking the exit as instructed.",
            "Leaving the highway at this exit, as asked.",
            "Taking the {ordinal} exit off the roundabout, as instructed.",
            "Heading for the off-ramp you asked for.",
            "Exiting here, as requested.",
            "Taking the slip road off the highway.",
            "Leaving the roundabout at the {ordinal} exit.",
            "Following the instruction to take the exit.",
            "Coming off at the exit, as you asked.",
        ],
        M.CHANGE_RIGHT: [
            "Moving right towards the exit.",
            "Changing into the exit lane on the right.",
            "Pulling over to the right to take the exit, as instructed.",
            "Drifting right onto the off-ramp.",
            "Moving over for the exit, as requested.",
            "Bearing right onto the slip road.",
        ],
        M.DECELERATE: [
            "Slowing for the exit ramp.",
            "Easing off as I leave the highway.",
            "Braking gently on the off-ramp.",
            "Reducing speed to take the exit.",
            "Slowing down to exit the roundabout.",
            "Slowing on the exit slip road.",
        ],
    },
    R.INSTRUCTED_MERGE: {
        None: [
            "Merging onto the highway as instructed.",
            "Joining the highway traffic.",
            "Merging into the gap in traffic.",
            "Slotting in on the main road, as asked.",
            "Merging now that there's room.",
            "Using the acceleration lane to join the motorway.",
            "Finding a gap to merge, as instructed.",
            "Joining the main carriageway, as requested.",
        ],
        M.ACCELERATE: [
            "Speeding up on the ramp to merge.",
            "Accelerating to match the highway traffic before merging.",
            "Building speed in the acceleration lane.",
            "Picking up speed to join the motorway.",
            "Accelerating along the on-ramp, ready to merge.",
            "Getting up to highway speed so I can merge.",
        ],
        M.CHANGE_LEFT: [
            "Moving left from the ramp onto the highway.",
            "Merging left into the highway lane.",
            "Pulling left to merge into traffic.",
            "Crossing from the acceleration lane into the main road.",
            "Moving over into the highway traffic, as instructed.",
            "Merging left now there's a gap.",
        ],
    },
    R.INSTRUCTED_SPEED: {
        None: [
            "Holding {speed} km/h, as you asked.",
            "Keeping to the speed you requested.",
            "Driving at the requested {speed} km/h.",
            "Matching the speed you asked for.",
            "At {speed} km/h as instructed.",
            "Keeping the pace you asked for.",
            "Sticking to the requested speed.",
            "Cruising at the {speed} km/h you wanted.",
        ],
        M.DECELERATE: [
            "Slowing to {speed} km/h, as you asked.",
            "Easing off to the requested speed.",
            "Slowing down as requested.",
            "Reducing speed to {speed} km/h, per your request.",
            "Braking down to the {speed} km/h you asked for.",
            "Braking gently: you asked me to slow down.",
        ],
        M.ACCELERATE: [
            "Speeding up to {speed} km/h, as you asked.",
            "Accelerating to the requested speed.",
            "Going faster, as instructed.",
            "Picking up speed to the {speed} km/h you wanted.",
            "Speeding up as requested.",
            "Accelerating to {speed} km/h per your instruction.",
        ],
    },
    R.REFUSED_UNSAFE_INSTRUCTION: {
        None: [
            "I won't do that: {refused} is unsafe. Carrying on safely.",
            "I won't do that; it's unsafe. Carrying on safely.",
            "Refusing that instruction: it would be unsafe.",
            "That's not safe, so I'm ignoring it and driving on normally.",
            "Not going to do that, {refused} is dangerous.",
            "I can't do that safely, so I'm keeping to safe driving.",
            "Declining the request: {refused} would put others at risk.",
            "Ignoring that instruction because it is unsafe.",
            "That instruction is unsafe; I'll keep driving safely.",
            "I will not follow that: {refused} breaks the rules of the road.",
            "Unsafe request refused; continuing as before.",
        ],
    },
}

# every list: >= 6 phrasings, distinct, known slots, slot-free ones in both splits
assert set(EXPLANATION_TEMPLATES) == set(Reason), "every Reason needs explanations"
for _reason, _lists in EXPLANATION_TEMPLATES.items():
    assert None in _lists, f"{_reason}: no general explanation list"
    for _meta, _templates in _lists.items():
        check_templates(
            _templates, EXPLANATION_SLOTS, f"explanation[{_reason.value}, {_meta}]", min_count=6
        )
