"""Experiment (2026-12-08): a compositional grammar of event sentences, meant for training the
text-only heads. Measured in the twelfth round (docs/experiments/drivevla-tiny-rounds.md): it
did not help a bag head, so it is not in the package.

The phrasing lists (:mod:`drivevla.language.instruction_phrasings`) hold about ten train
templates per unsafe category and per hazard notice: a classifier trained on them learns
which *words* come with a refusal ("pedestrian", "red light") rather than what is asked of the
car, and flags hazard notices that name the same things ("careful, a pedestrian ...").  The
grammar crosses verb phrases with objects and with framings shared by every kind, so that the
objects and the framings carry no label and only the request does:

- unsafe requests (``misleading``, per :data:`UNSAFE_CATEGORIES`): a harmful verb phrase with
  its objects ("smash into" x "the {colour} van");
- safe requests that name the same objects ("wait behind" x "the {colour} van", "stop for"
  x "the people crossing", "don't hit" x "the barrier": kind ``caution``);
- hazard notices (``notice``, per :data:`NOTICE_CATEGORIES`): an opener and a hazard;
- speed requests within the limits (``speed``); excessive speeds are unsafe requests.

Every sentence gets one of the shared framings ("Go on, ...", "... now.", "I'd like you to
...") whatever its label. The grammar renders training texts only: evaluation suites and the
``heldout`` / ``locked`` phrasings never read it, so a held-out score still measures wordings
the model never saw. :func:`grammar_instruction_records` returns the records of
:func:`drivevla.language.instructions.synthetic_instruction_records` (text, kind, category,
navigation intent), the event sentence after a train navigation phrasing.
"""

from __future__ import annotations

import numpy as np

from drivevla.language.instructions import (
    COLOUR_NAMES,
    NOTICE_CATEGORIES,
    UNSAFE_CATEGORIES,
    render_navigation,
)
from drivevla.language.intents import NAVIGATION_INTENTS

CAUTION = "caution"  # the category of a safe request naming a hazard's object

_VEHICLES = ("the car ahead", "the car in front", "the {colour} car", "that van",
             "the truck ahead", "the vehicle in front of us", "the lorry", "that bus",
             "the car beside us", "the taxi", "the {colour} hatchback", "the motorbike")
_STATIC = ("the barrier", "the wall", "the cones", "the roadblock", "the bollard",
           "that post", "the parked car", "the lamp post", "the guard rail", "the debris",
           "the fence", "the road sign", "the skip", "the road works")
_PEOPLE = ("the pedestrian", "the people crossing", "that person", "the man on the crossing",
           "the woman crossing", "the kids crossing", "the jogger", "the pedestrians",
           "the cyclist", "the old man crossing", "the person with the pram")
_LIGHTS = ("the red light", "the red", "the lights", "this red", "the signal",
           "the traffic light", "that red signal", "the stop light", "the red signal")
_OFF_ROAD = ("the pavement", "the sidewalk", "the kerb", "the grass", "the verge",
             "the footpath", "the field", "the ditch", "the central reservation",
             "the flower beds", "the cycle path", "the median")

# (verb phrases, objects) frames; a sentence is one verb phrase and one object
UNSAFE_FRAMES: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "hit_vehicle": ((("ram", "smash into", "crash into", "bump", "rear-end", "drive into",
                      "sideswipe", "clip", "shunt", "slam into", "run into", "barge into",
                      "give a nudge to", "knock"), _VEHICLES),),
    "collide_static": ((("ram", "smash into", "crash into", "drive into", "slam into",
                         "run into", "hit", "knock over", "go straight through",
                         "flatten", "plough through"), _STATIC),),
    "ignore_pedestrian": ((("don't stop for", "ignore", "drive through", "don't wait for",
                            "don't give way to", "run over", "hit", "don't brake for",
                            "keep going through", "speed past", "honk and push past"),
                           _PEOPLE),),
    "run_red_light": ((("run", "ignore", "go through", "blow through", "skip",
                        "drive through", "don't stop at", "don't wait at",
                        "pay no attention to", "race through", "sail through",
                        "beat"), _LIGHTS),),
    "leave_road": ((("drive onto", "go up on", "mount", "cut across", "drive over",
                     "swerve onto", "drive along", "head onto", "bump up onto",
                     "take a shortcut across", "park on"), _OFF_ROAD),),
    "wrong_way": ((("drive", "go", "head", "keep going", "carry on", "cruise"),
                   ("on the wrong side of the road", "the wrong way", "against the traffic",
                    "into the oncoming lane", "down the one-way street the wrong way",
                    "against the flow", "into the opposite carriageway",
                    "up the exit ramp", "in the lane for oncoming cars",
                    "on the other side, facing the traffic")),),
    "excessive_speed": ((("go", "do", "hit", "push it to", "get up to", "take it to",
                          "crank it up to", "race at"),
                         ("{fast} km/h", "{fast}", "{fast} kilometres per hour",
                          "way over the limit", "twice the limit", "flat out",
                          "as fast as the car goes", "full throttle")),
                        (("floor it", "race", "break the speed limit", "ignore the limit",
                          "max it out", "open it up", "bury the pedal", "speed like mad"),
                         ("",))),
}

# safe requests about the same objects: the objects alone must not decide a refusal
CAUTION_FRAMES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("wait behind", "keep your distance from", "stay behind", "follow",
      "don't hit", "leave room for", "don't crowd", "hang back from"), _VEHICLES),
    (("go around", "steer clear of", "avoid", "slow down for", "don't hit",
      "keep away from", "give space to"), _STATIC),
    (("stop for", "wait for", "give way to", "let", "slow down for", "don't hit",
      "watch out for", "yield to", "look out for"), _PEOPLE),
    (("stop at", "wait at", "obey", "don't run", "respect", "slow down for",
      "hold at"), _LIGHTS),
    (("stay off", "keep off", "don't drive on", "keep clear of", "don't mount"), _OFF_ROAD),
)

NOTICE_OPENERS = ("Watch out,", "Careful,", "Heads up,", "Look out,", "Be aware,",
                  "Just so you know,", "Note that", "Attention,", "FYI,", "Hey,", "")
NOTICE_HAZARDS: dict[str, tuple[str, ...]] = {
    "pedestrian_crossing": ("a pedestrian is crossing", "someone is about to step out",
                            "people are on the crossing", "a walker is near the kerb",
                            "a kid is running towards the road", "a jogger is crossing ahead",
                            "a person is waiting to cross", "there's a cyclist crossing"),
    "red_light_ahead": ("the light ahead is red", "the signal is turning red",
                        "there's a red light coming up", "the lights are red",
                        "the signal ahead just went red", "the next lights are on red"),
    "slow_vehicle_ahead": ("the car in front is slow", "a truck is crawling ahead",
                           "traffic is slowing down ahead", "the {colour} car ahead is braking",
                           "the vehicle in front is going slowly", "a tractor is ahead"),
    "merging_traffic": ("a car is merging", "traffic is joining from the {side}",
                        "someone is cutting in", "a van is moving into our lane",
                        "the {colour} car wants to merge"),
    "cross_traffic": ("cars are coming from the {side}", "there's cross traffic at the junction",
                      "a vehicle is approaching from the {side}",
                      "traffic is crossing in front"),
    "obstacle_ahead": ("there's debris on the road", "a broken-down car is ahead",
                       "cones are blocking the lane", "something is in the road ahead",
                       "there's a roadblock ahead", "a barrier closes our lane"),
}
SPEED_VERBS = ("go", "drive at", "keep to", "hold", "settle at", "cruise at", "aim for",
               "target", "stick to", "bring it to", "do")
SAFE_SPEEDS = tuple(range(20, 121, 10))
FAST_SPEEDS = (150, 160, 170, 180, 190, 200, 220, 240)

# framings every kind gets (so that none of them marks a label)
PREFIXES = ("", "", "", "Go on, ", "Please ", "Just ", "Come on, ", "Okay, ", "Now ",
            "I'd like you to ", "Quick, ", "Right, ", "Can you ")
SUFFIXES = ("", "", "", " now", " please", " right away", " here", " for me",
            ", we're late", " when you can", ", go on")


def render_event(kind: str, category: str, rng: np.random.Generator) -> str:
    """One event sentence of ``kind`` (``misleading``, ``caution``, ``notice`` or
    ``speed``) and ``category`` from the grammar."""
    if kind == "misleading":
        frames = UNSAFE_FRAMES[category]
        verbs, objects = frames[int(rng.integers(len(frames)))]
        core = _join(_pick(verbs, rng), _pick(objects, rng))
    elif kind == CAUTION:
        verbs, objects = CAUTION_FRAMES[int(rng.integers(len(CAUTION_FRAMES)))]
        core = _join(_pick(verbs, rng), _pick(objects, rng))
    elif kind == "notice":
        opener = _pick(NOTICE_OPENERS, rng)
        return _sentence(_join(opener, _fill(_pick(NOTICE_HAZARDS[category], rng), rng)), ".")
    elif kind == "speed":
        core = f"{_pick(SPEED_VERBS, rng)} {_pick(SAFE_SPEEDS, rng)} km/h"
    else:
        raise ValueError(f"unknown grammar kind {kind!r}")
    text = _pick(PREFIXES, rng) + _fill(core, rng) + _pick(SUFFIXES, rng)
    return _sentence(text, "?" if text.startswith("Can you") else _pick((".", ".", "!"), rng))


def grammar_instruction_records(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """``n`` records ``(text, kind, category, navigation intent)``: a train navigation
    phrasing and one grammar event (a third unsafe requests, a third safe requests naming the
    same objects, a sixth notices, a sixth speed requests)."""
    if n < 0:
        raise ValueError(f"need n >= 0, got {n}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        intent = NAVIGATION_INTENTS[int(rng.integers(len(NAVIGATION_INTENTS)))]
        nav = render_navigation(intent, rng, "train", {
            "distance": int(rng.integers(3, 31)) * 10, "ordinal": int(rng.integers(1, 4)),
            "exit_number": int(rng.integers(1, 5)), "colour": _pick(COLOUR_NAMES, rng),
            "side": _pick(("left", "right"), rng)})
        u = rng.random()
        if u < 1 / 3:
            kind, category = "misleading", _pick(UNSAFE_CATEGORIES, rng)
        elif u < 2 / 3:
            kind, category = CAUTION, CAUTION
        elif u < 5 / 6:
            kind, category = "notice", _pick(NOTICE_CATEGORIES, rng)
        else:
            kind, category = "speed", "speed_request"
        out.append((f"{nav} {render_event(kind, category, rng)}", kind, category, intent))
    return out


def _pick(options, rng: np.random.Generator):
    return options[int(rng.integers(len(options)))]


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _fill(text: str, rng: np.random.Generator) -> str:
    return text.format(colour=_pick(COLOUR_NAMES, rng), side=_pick(("left", "right"), rng),
                       fast=_pick(FAST_SPEEDS, rng))


def _sentence(text: str, end: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + end
