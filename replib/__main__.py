"""Command line: ``python -m replib reproduce hinton2012 --profile cpu`` (train) or ``reanalyse`` (recompute claims).

A mistake (a bad option, a config the spec refuses, an unreadable or stale result file,
missing data, a result another run is making) prints ``error: <what and how to mend
it>`` and exits with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import re
import sys

from . import experiments
from ._validate import UserError
from .scale import UnitFailedError


class OptionError(UserError, ValueError):
    """Command-line options that cannot go together; the message names them."""


# The project's own errors: each message names what is wrong and how to mend it.
KNOWN_ERRORS = (UserError, UnitFailedError)
USAGE_ERROR = 2


def positive_int(text: str) -> int:
    """argparse type: an int >= 1 (argparse names the option in its message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


def device(text: str) -> str:
    """argparse type: ``cpu``, ``cuda`` or ``cuda:N`` (whether CUDA is there is checked with the config)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be 'cpu', 'cuda' or 'cuda:<index>' (e.g. cuda:0), got {text!r}")
    return text


def parser() -> argparse.ArgumentParser:
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an error, show the traceback instead of one line")
    main = argparse.ArgumentParser(prog="python -m replib", description=__doc__, parents=[debug])
    sub = main.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", parents=[debug],
                         help="run an experiment and write results/<paper>/<profile>.json "
                              "(<profile>-<key>.json when --seeds changes the profile's; the device is not part of it)")
    rep.add_argument("paper", choices=experiments.PAPERS + experiments.DRAFTS)
    rep.add_argument("--profile", choices=experiments.PROFILES, default="cpu")
    rep.add_argument("--seeds", type=positive_int, default=None, help="number of seeds (default: the profile's)")
    rep.add_argument("--device", type=device, default=None, help="cpu, cuda or cuda:N (default: the profile's)")
    rep.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    rep.add_argument("--stack", action="store_true",
                     help="train the seeds of each arm together as one stacked ensemble, where the experiment can "
                          "(faster where small nets leave the cores idle: see benchmarks/bench_ensemble.py)")
    rep.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: train the units one after another in this process (default); ray: each unit a Ray "
                          "task, on a local Ray with this machine's cores or on the cluster at --address "
                          "(needs pip install -e '.[ray]'; see the book's 'Run at scale')")
    rep.add_argument("--address", default=None,
                     help="with --executor ray: the cluster to join ('auto', 'ray://<host>:<port>'); "
                          "default: start a local Ray")
    rep.add_argument("--ship-data", action="store_true",
                     help="with --executor ray: send the experiment's data from this machine to the workers through "
                          "Ray's object store, instead of each worker loading from its own mirror or cache")
    rep.add_argument("--rerun", action="store_true",
                     help="ignore cached and partial results and run everything; an unreadable result file is moved aside")
    ana = sub.add_parser("reanalyse", parents=[debug],
                         help="recompute a stored result's claims from its runs (no training)")
    ana.add_argument("paper", nargs="?", choices=experiments.PAPERS + experiments.DRAFTS)
    ana.add_argument("--all", action="store_true", help="every published chapter")
    ana.add_argument("--profile", choices=experiments.PROFILES, default="cpu")
    return main


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args, unknown = cli.parse_known_args(argv)
    if unknown:
        cli.error(f"unrecognized arguments: {' '.join(unknown)} (the command line sets the profile, seeds, device "
                  f"and how to run; a config value such as epochs is a chapter's parameter, `papermill "
                  f"notebooks/<paper>.ipynb out.ipynb -p epochs 3`, or a keyword of replib.experiments.run)")
    if args.command == "reanalyse" and args.all == (args.paper is not None):
        cli.error("reanalyse takes a paper or --all, not both" if args.all else "reanalyse needs a paper, or --all")
    try:
        return reanalyse(args) if args.command == "reanalyse" else reproduce(args)
    except (*KNOWN_ERRORS, ValueError) as error:
        if getattr(args, "debug", False):
            raise
        hint = "" if isinstance(error, KNOWN_ERRORS) else " (`python -m replib --debug ...` shows where)"
        print(f"error: {error}{hint}", file=sys.stderr)
        return USAGE_ERROR


def reproduce(args: argparse.Namespace) -> int:
    for given, flag in ((args.address is not None, f"--address {args.address}"), (args.ship_data, "--ship-data")):
        if given and args.executor != "ray":
            raise OptionError(f"{flag} is for Ray's workers: give --executor ray with it")
    if args.stack and args.executor != "local":
        raise OptionError(f"--stack trains in this process; it cannot go with --executor {args.executor}")
    if args.stack and args.paper not in experiments.stacking():
        raise OptionError(f"--stack: {args.paper} cannot train its seeds stacked; the chapters that can: "
                          f"{', '.join(experiments.stacking())}")
    if args.profile == "paper" and (args.device or "cpu") == "cpu":
        print("note: the paper profile is sized for a GPU; on the CPU it takes hours to months. On a GPU add "
              "--device cuda", file=sys.stderr)
    result = experiments.run(args.paper, args.profile, seeds=args.seeds, rerun=args.rerun, threads=args.threads,
                             stack=args.stack, executor=args.executor, address=args.address,
                             ship_data=args.ship_data, device=args.device)
    if result.written:
        print(f"wrote {result.path} ({len(result.trained)} of {len(result['runs'])} runs trained now; "
              f"{result['provenance']['wall_seconds']:.0f} s of training in all)")
    else:
        print(f"read {result.path} (stored result, no training)")
    if result.path.name != f"{args.profile}.json":
        print(f"  the config or seeds differ from the {args.profile!r} profile's, so the result is stored apart "
              f"from {args.profile}.json (which the book shows)")
    print(f"verdict: {experiments.verdict(result['claims'])}")
    _print_claims(result)
    return 0


def reanalyse(args: argparse.Namespace) -> int:
    for paper in experiments.PAPERS if args.all else [args.paper]:
        path = experiments.store.result_path(paper, args.profile)
        if args.all and not path.exists():  # --all: every chapter that has this profile's result
            print(f"skipped {paper}: no {path.name} to reanalyse")
            continue
        before = experiments.store.read_result(path) or {}
        was = {c["id"]: c.get("outcome", "holds" if c.get("holds") else "fails") for c in before.get("claims", [])}
        result = experiments.reanalyse(paper, args.profile)
        print(f"recomputed the claims of {result.path}; verdict: {experiments.verdict(result['claims'])}")
        _print_claims(result, was)
    return 0


def _print_claims(result: dict, was: dict | None = None) -> None:
    for claim in result["claims"]:
        apart = "" if claim["counts"] else " (not counted)"
        change = f" (was: {was[claim['id']]})" if was and was.get(claim["id"], claim["outcome"]) != claim["outcome"] else ""
        print(f"  [{claim['outcome']}]{apart} {claim['statement']}{change}")


if __name__ == "__main__":
    sys.exit(main())
