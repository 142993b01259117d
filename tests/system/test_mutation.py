"""The mutation harness of the conformance suite (spec_tests/mutation): its mutants still apply
to the code as it is, and a mutant run tells a bug from a correct server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spec_tests.mutation.__main__ import PACKAGE, apply, run_one
from spec_tests.mutation.mutants import MUTANTS


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_each_mutant_applies_to_exactly_one_place(mutant, tmp_path: Path) -> None:
    root = apply(mutant, tmp_path)
    mutated = (root / "bayeux" / mutant.file).read_text()
    original = (PACKAGE / mutant.file).read_text()
    assert mutated != original
    compile(mutated, mutant.file, "exec")  # still Python


def test_ids_are_unique() -> None:
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)


def test_a_mutant_is_caught_and_the_real_server_is_not() -> None:
    (mutant,) = [m for m in MUTANTS if m.id == "ids-not-echoed"]
    caught = asyncio.run(run_one(mutant, ("long-polling",), ("core",), only="handshake.id"))
    assert caught.caught, caught
    assert "handshake.id_echoed" in caught.evidence
    clean = asyncio.run(run_one(None, ("long-polling",), ("core",), only="handshake.id"))
    assert not clean.caught, clean


@pytest.mark.parametrize(
    ("mutant_id", "rule"),
    [
        ("subscription-array-first-only", "subscribe.array_subscribes_every_channel"),
        ("unsubscribe-ends-everyones", "unsubscribe.leaves_other_sessions_subscribed"),
    ],
)
@pytest.mark.slow
def test_the_bug_zoo_escapes_are_caught(mutant_id: str, rule: str) -> None:
    """The two bugs of the held-out bug zoo the suite used to miss: each rule fails on a server
    with its bug, and passes on the real one."""
    (mutant,) = [m for m in MUTANTS if m.id == mutant_id]
    caught = asyncio.run(run_one(mutant, ("long-polling",), ("core",), only=rule))
    assert caught.caught, caught
    assert rule in caught.evidence
    clean = asyncio.run(run_one(None, ("long-polling",), ("core",), only=rule))
    assert not clean.caught, clean


@pytest.mark.slow
def test_a_session_used_from_another_browser_is_caught() -> None:
    rule = "long_polling.session_bound_to_its_browser"
    (mutant,) = [m for m in MUTANTS if m.id == "browser-binding-ignored"]
    caught = asyncio.run(run_one(mutant, ("long-polling",), ("robustness",), only=rule))
    assert caught.caught and rule in caught.evidence, caught
    clean = asyncio.run(run_one(None, ("long-polling",), ("robustness",), only=rule))
    assert not clean.caught, clean
