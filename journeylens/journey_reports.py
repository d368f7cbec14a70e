"""The journey reports of the command line: journeys, paths, transitions, cross-channel, attribution.

Each takes the options of its page (added once to the shared ``report`` parser) and the global
filters, and prints the same numbers the page shows.
"""

from __future__ import annotations

import argparse

import polars as pl

from metrics import attribution as am
from metrics import flows
from metrics import journeys as jm
from metrics.engine import Engine
from metrics.filters import Filters

MODEL_CHOICES = (*am.MODELS, "all")


def _steps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not jm.MIN_STEPS <= value <= jm.MAX_STEPS:
        raise argparse.ArgumentTypeError(f"steps must be between {jm.MIN_STEPS} and {jm.MAX_STEPS}")
    return value


def _start(text: str) -> str:
    kind, _, value = text.partition(":")
    if text and (kind not in jm.ANCHOR_KINDS or not value):
        raise argparse.ArgumentTypeError(f"{text!r} is not channel:NAME or event:TYPE "
                                         "(e.g. event:email_click)")
    return text


def add_journey_options(parser: argparse.ArgumentParser) -> None:
    """The options the journey reports share; added once however many reports ask for them."""
    # Imported here: the command line module imports this one.
    from journeylens.cli import _positive_int

    try:
        parser.add_argument("--steps", type=_steps, default=jm.DEFAULT_STEPS,
                            help=f"journeys: steps shown, {jm.MIN_STEPS}–{jm.MAX_STEPS} "
                            f"(default {jm.DEFAULT_STEPS})")
    except argparse.ArgumentError:  # another journey report added them already
        return
    parser.add_argument("--direction", choices=("forward", "backward"), default="forward",
                        help="journeys, paths: forward from the start, or backward from the purchase")
    parser.add_argument("--start", type=_start, default=jm.JOURNEY_START,
                        help="journeys, paths: begin at the first touch of channel:NAME or event:TYPE")
    parser.add_argument("--purchase-channel", default="",
                        help="journeys, paths: only journeys ending in a purchase in this channel")
    parser.add_argument("--collapse-repeats", action=argparse.BooleanOptionalAction, default=True,
                        help="journeys, paths, transitions: a run of one channel is one step (default yes)")
    parser.add_argument("--max-nodes", type=_positive_int, default=jm.DEFAULT_MAX_NODES,
                        help=f"journeys: channels per step before the rest become “other” "
                        f"(default {jm.DEFAULT_MAX_NODES})")
    parser.add_argument("--top-paths", type=_positive_int, default=20, help="paths: how many (default 20)")
    parser.add_argument("--path-sort", choices=jm.PATH_SORTS, default="journeys",
                        help="paths: rank by (default journeys)")
    parser.add_argument("--basis", choices=("first", "most-frequent"), default="first",
                        help="cross-channel: journey channel = first touch or most frequent touch")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="all",
                        help="attribution: one model or all (default all)")


def _flow_options(args: argparse.Namespace) -> dict[str, object]:
    return {"direction": args.direction, "start": args.start, "purchase_channel": args.purchase_channel,
            "collapse": args.collapse_repeats}


def journeys_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    links = jm.journey_flows(engine, filters, steps=args.steps, max_nodes=args.max_nodes,
                             **_flow_options(args))
    return links.select("source", "target", "journeys", "source_step", "target_step")


def paths_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    return jm.top_paths(engine, filters, sort_by=args.path_sort, top=args.top_paths, **_flow_options(args))


def transitions_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    return flows.transitions(engine, filters, collapse=args.collapse_repeats)


def cross_channel_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    return flows.cross_channel(engine, filters, basis=args.basis.replace("-", "_"))


def attribution_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    models = am.MODELS if args.model == "all" else (args.model,)
    result = am.attribution(engine, filters, models=models, bootstrap_replicates=0)
    return result.select("model", "channel", "conversions", "revenue", "share", "removal_effect")
