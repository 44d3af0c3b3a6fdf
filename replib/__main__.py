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
    ana.add_argument("paper", nargs="?", choices=experiments.PAPERS + experiments.DRAFTS)
    ana.add_argument("--all", action="store_true", help="every published chapter")
    ana.add_argument("--profile", choices=experiments.PROFILES, default="cpu")
    args = parser.parse_args(argv)

    if args.command == "reanalyse":
        if args.all == (args.paper is not None):
            parser.error("reanalyse takes a paper or --all, not both")
        for paper in experiments.PAPERS if args.all else [args.paper]:
            before = experiments.store.read_json(experiments.store.result_path(paper, args.profile)) or {}
            was = {c["id"]: c.get("outcome", "holds" if c.get("holds") else "fails") for c in before.get("claims", [])}
            result = experiments.reanalyse(paper, args.profile)
            print(f"recomputed the claims of {experiments.store.result_path(paper, args.profile)}; "
                  f"verdict: {experiments.verdict(result['claims'])}")
            _print_claims(result, was)
        return 0
    result = experiments.run(
        args.paper, args.profile, seeds=args.seeds, rerun=args.rerun, threads=args.threads, device=args.device,
    )
    path = experiments.store.result_path(args.paper, args.profile)
    print(f"wrote {path} ({result['provenance']['wall_seconds']:.0f} s of training); "
          f"verdict: {experiments.verdict(result['claims'])}")
    _print_claims(result)
    return 0


def _print_claims(result: dict, was: dict | None = None) -> None:
    for claim in result["claims"]:
        apart = "" if claim["counts"] else " (not counted)"
        change = f" (was: {was[claim['id']]})" if was and was.get(claim["id"], claim["outcome"]) != claim["outcome"] else ""
        print(f"  [{claim['outcome']}]{apart} {claim['statement']}{change}")


if __name__ == "__main__":
    sys.exit(main())
