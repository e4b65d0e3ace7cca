"""``drivevla fit-refusal|fit-intent``: train a checkpoint's text-only refusal or intent
head alone."""

from __future__ import annotations

import argparse

from drivevla.cli._parsing import add_command, fraction, positive_int
from drivevla.training.head_fit import fit_intent_head, fit_refusal_head


def register(subparsers: argparse._SubParsersAction) -> None:
    for which in ("refusal", "intent"):
        p = add_command(subparsers, f"fit-{which}",
                        f"train a checkpoint's text-only {which} head alone")
        p.add_argument("--policy", required=True, help="source checkpoint directory (kept)")
        p.add_argument("--out", required=True, help="new checkpoint directory")
        p.add_argument("--steps", type=positive_int, default=1500, help="optimiser steps")
        p.add_argument("--batch-size", type=positive_int, default=64, help="texts per step")
        p.add_argument("--lr", type=float, default=1e-3, help="learning rate")
        p.add_argument("--seed", type=int, default=0, help="seed of rendering and sampling")
        p.add_argument("--pool", type=positive_int, default=20000,
                       help="rendered train instructions")
        p.add_argument("--stacked-share", type=fraction, default=0.0,
                       help="share of texts with an event that carry a second, safe event "
                            "before it, as the simulator composes overlapping events (0: one "
                            "event)")
        if which == "intent":
            p.add_argument("--by-sentence", action="store_true",
                           help="the sentence-by-sentence head (intent_by_sentence=true)")
        p.set_defaults(fn=_cmd_fit, which=which)


def _cmd_fit(args: argparse.Namespace) -> int:
    common = (args.policy, args.out, args.steps, args.batch_size, args.lr, args.seed, args.pool,
              args.stacked_share)
    if args.which == "intent":
        info = fit_intent_head(*common, by_sentence=args.by_sentence)
    else:
        info = fit_refusal_head(*common)
    print(f"{args.which} head fitted ({info['steps']} steps, loss "
          f"{info['final_loss_mean_last_100']:.4f} over the last steps); checkpoint: {args.out}")
    return 0
