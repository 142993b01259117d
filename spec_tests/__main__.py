"""`python -m spec_tests URL`: run the conformance suite against any Bayeux server."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bayeux import __version__

from . import runner
from .rules import PROFILES
from .runner import FAIL, PASS, json_report, markdown_report, run_suite, summary
from .wire import TRANSPORTS

# A run that checked nothing must not pass: its own status, distinct from a failure.
INCOMPLETE = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spec_tests",
        description="Check a Bayeux server against the Bayeux 1.0 specification.",
        epilog="Exit status: 0 when every rule run passed; 1 when any rule failed; 3 when the run"
        " is incomplete: no rule was exercised at all (every one unsupported or n/a), or some rule"
        " could not be checked within the suite's time bounds (reported 'incomplete'); 2 for usage"
        " errors.",
    )
    parser.add_argument("--version", action="version", version=f"bayeux-spec-tests {__version__}")
    parser.add_argument("url", help="the server's Bayeux URL, e.g. http://127.0.0.1:8080/cometd")
    parser.add_argument(
        "--transport",
        action="append",
        choices=TRANSPORTS,
        help="transport to test (repeatable); default: all",
    )
    parser.add_argument(
        "--profile",
        action="append",
        choices=list(PROFILES),
        help="rule profile (repeatable); default: all",
    )
    parser.add_argument("--only", help="run only rules whose id contains this text")
    parser.add_argument("--report", help="write a Markdown report to this file")
    parser.add_argument("--json", help="write a JSON report to this file")
    args = parser.parse_args(argv)
    results = asyncio.run(
        run_suite(
            args.url,
            tuple(args.transport or TRANSPORTS),
            tuple(args.profile or PROFILES),
            args.only,
        )
    )
    report = markdown_report(args.url, results)
    if args.report:
        with open(args.report, "w") as f:
            f.write(report)
    if args.json:
        with open(args.json, "w") as f:
            f.write(json_report(args.url, results))
    print(report)
    for key, counts in summary(results).items():
        print(f"{key}: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())))
    if any(r.outcome == FAIL for r in results):
        return 1
    if not any(r.outcome == PASS for r in results):
        print("incomplete: no rule was exercised (nothing was checked)", file=sys.stderr)
        return INCOMPLETE
    unchecked = [r for r in results if r.outcome == runner.INCOMPLETE]
    if unchecked:
        print(f"incomplete: {len(unchecked)} rule runs could not be checked", file=sys.stderr)
        return INCOMPLETE
    return 0


if __name__ == "__main__":
    sys.exit(main())
