"""Every rule of the conformance suite, over every transport it applies to, as a pytest test.

Against our own server every applicable rule must pass: a rule reported not-applicable here
means the suite's server settings no longer exercise it, which is a failure too.
"""

from __future__ import annotations

import pytest

from .rules import all_rules
from .runner import PASS

CASES = [(r.id, t) for r in all_rules() for t in r.transports]


@pytest.mark.parametrize(("rule_id", "transport"), CASES, ids=[f"{r}[{t}]" for r, t in CASES])
def test_rule(conformance_results, rule_id: str, transport: str) -> None:
    result = conformance_results[(rule_id, transport)]
    assert result.outcome == PASS, f"{result.outcome}: {result.detail}"
