"""`python -m spec_tests.mutation`: puts each mutant (mutants.py) into a copy of the `bayeux`
package, serves it with `python -m bayeux` and its default settings on 127.0.0.1, runs the
suite's default run against it, and reports which bugs the suite caught.

A mutant is caught when the run does not pass: a rule failed, or the run is incomplete. The
unmutated copy runs first and must pass, or the harness itself is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bayeux.testing import start_cli, stop_process

from ..rules import PROFILES
from ..runner import FAIL, INCOMPLETE, PASS, run_suite
from .mutants import MUTANTS, Mutant

PACKAGE = Path(__file__).resolve().parents[2] / "bayeux"
# Every simulated client comes from 127.0.0.1: lift the per-address handshake bound only.
# Replay on /event/** so that the replay profile's rules run against the mutants too.
SERVER_OPTIONS = ("--max-handshakes-per-address", "-1", "--replay-channels", "/event/**")


@dataclass
class Outcome:
    mutant: Mutant | None  # None: the unmutated baseline
    caught: bool
    evidence: str
    seconds: float


def apply(mutant: Mutant | None, into: Path) -> Path:
    """A copy of the package under `into`, with `mutant` applied; returns the copy's parent."""
    target = into / "bayeux"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    if mutant is not None:
        path = target / mutant.file
        text = path.read_text()
        if text.count(mutant.find) != 1:
            raise ValueError(f"mutant {mutant.id}: its text occurs {text.count(mutant.find)} times")
        path.write_text(text.replace(mutant.find, mutant.replace))
    return into


async def run_one(
    mutant: Mutant | None,
    transports: tuple[str, ...],
    profiles: tuple[str, ...],
    only: str | None = None,
) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bayeux-mutant-") as tmp:
        root = apply(mutant, Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(root)}
        try:
            server, url = start_cli(
                *SERVER_OPTIONS,
                log_level="error",
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except RuntimeError as exc:
            return Outcome(mutant, True, f"server did not start: {exc}", 0.0)
        try:
            results = await run_suite(url, transports, profiles, only)
        finally:
            stop_process(server, timeout=5)
    failed = [r for r in results if r.outcome in (FAIL, INCOMPLETE)]
    passed = any(r.outcome == PASS for r in results)
    caught = bool(failed) or not passed
    evidence = ", ".join(sorted({f"{r.rule} ({r.outcome})" for r in failed})[:4])
    if not failed and not passed:
        evidence = "no rule passed"
    return Outcome(mutant, caught, evidence, round(time.monotonic() - started, 1))


async def campaign(
    mutants: list[Mutant], transports: tuple[str, ...], profiles: tuple[str, ...], jobs: int
) -> list[Outcome]:
    baseline = await run_one(None, transports, profiles)
    print(
        f"baseline (no mutant): {'FAILS' if baseline.caught else 'passes'} in {baseline.seconds}s",
        flush=True,
    )
    if baseline.caught:
        raise SystemExit(f"the unmutated server does not pass: {baseline.evidence}")
    limit = asyncio.Semaphore(jobs)

    async def one(mutant: Mutant) -> Outcome:
        async with limit:
            outcome = await run_one(mutant, transports, profiles)
            mark = "caught  " if outcome.caught else "SURVIVED"
            print(
                f"{mark} {mutant.id:<38} {outcome.seconds:>6}s  {outcome.evidence[:90]}", flush=True
            )
            return outcome

    return list(await asyncio.gather(*(one(m) for m in mutants)))


def report(outcomes: list[Outcome], transports: tuple[str, ...]) -> str:
    caught = sum(o.caught for o in outcomes)
    longest = max((o.seconds for o in outcomes), default=0)
    lines = [
        f"{caught} of {len(outcomes)} mutants caught ({100 * caught // max(1, len(outcomes))}%)"
        f" by the default run over {' and '.join(transports)};"
        f" the longest run took {longest:.0f} s.",
        "Reproduce with `.venv/bin/python -m spec_tests.mutation --page docs/conformance.md`.",
        "",
        "| mutant | the bug | caught by |",
        "|---|---|---|",
    ]
    for o in outcomes:
        assert o.mutant is not None
        cell = o.evidence.replace("|", "/") if o.caught else "**survived**"
        lines.append(f"| `{o.mutant.id}` | {o.mutant.what} | {cell} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spec_tests.mutation", description=__doc__)
    parser.add_argument("--only", help="run only mutants whose id contains this text")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="mutants served and checked at once (more than 1 loads the machine enough to fail"
        " timing rules: fine for a quick look, not for the score)",
    )
    parser.add_argument(
        "--transport",
        action="append",
        default=None,
        help="transports of the runs (default: long-polling and websocket)",
    )
    parser.add_argument("--profile", action="append", choices=list(PROFILES))
    parser.add_argument("--page", help="write the table into this docs page between its markers")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or args.only in m.id]
    transports = tuple(args.transport or ("long-polling", "websocket"))
    profiles = tuple(args.profile or PROFILES)
    outcomes = asyncio.run(campaign(mutants, transports, profiles, args.jobs))
    text = report(outcomes, transports)
    print("\n" + text)
    if args.page:
        path = Path(args.page)
        page_text = path.read_text()
        pattern = re.compile(r"(<!-- mutation:begin -->\n).*?(<!-- mutation:end -->)", re.S)
        if not pattern.search(page_text):
            raise SystemExit(f"{path} has no <!-- mutation:begin --> ... end markers")
        path.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), page_text))
    return 0 if all(o.caught for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
