"""Command line: ``python -m replib reproduce hinton2012 --profile cpu`` (train) or ``reanalyse`` (recompute claims)."""

from __future__ import annotations

import argparse
import sys

from . import experiments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run an experiment and (re)write results/<paper>/<profile>.json")
    rep.add_argument("paper", choices=experiments.PAPERS + experiments.DRAFTS)
    rep.add_argument("--profile", choices=experiments.PROFILES, default="cpu")
    rep.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the profile's)")
    rep.add_argument("--device", default=None, help="cpu or cuda (default: the profile's)")
    rep.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    rep.add_argument("--rerun", action="store_true", help="ignore cached and partial results and run everything")
    ana = sub.add_parser("reanalyse", help="recompute a stored result's claims from its runs (no training)")
    ana.add_argument("paper", choices=experiments.PAPERS + experiments.DRAFTS)
    ana.add_argument("--profile", choices=experiments.PROFILES, default="cpu")
    args = parser.parse_args(argv)

    if args.command == "reanalyse":
        result = experiments.reanalyse(args.paper, args.profile)
        print(f"recomputed the claims of {experiments.store.result_path(args.paper, args.profile)}; "
              f"verdict: {experiments.verdict(result['claims'])}")
        _print_claims(result)
        return 0
    result = experiments.run(
        args.paper, args.profile, seeds=args.seeds, rerun=args.rerun, threads=args.threads, device=args.device,
    )
    path = experiments.store.result_path(args.paper, args.profile)
    print(f"wrote {path} ({result['provenance']['wall_seconds']:.0f} s of training); "
          f"verdict: {experiments.verdict(result['claims'])}")
    _print_claims(result)
    return 0


def _print_claims(result: dict) -> None:
    for claim in result["claims"]:
        print(f"  [{'holds' if claim['holds'] else 'fails'}] {claim['statement']}")


if __name__ == "__main__":
    sys.exit(main())
