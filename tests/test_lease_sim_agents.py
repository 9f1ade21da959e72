"""The agent workload of tests/bench/lease_sim/agents.py (budget-clamped output, decision 0035): a short
month of a $500 limit (about 300 calls a run), with and without clamping."""

from __future__ import annotations

import pytest

from tests.bench.lease_sim.agents import (
    CONTEXT_MAX,
    FLOOR_TOKENS,
    MAX_TOKENS,
    AgentRun,
    Refusal,
    micros,
    simulate_agents,
)

LIMIT = 500_000_000  # µUSD: $500


def first(run: AgentRun) -> Refusal:
    assert run.first is not None  # every loop stops refused
    return run.first


@pytest.mark.parametrize("loops", [1, 4])
def test_spend_and_holds_never_pass_the_limit(loops: int) -> None:
    for clamp in (False, True):
        run = simulate_agents(limit=LIMIT, loops=loops, clamp=clamp)
        assert run.served >= 250
        assert run.worst_excess <= 0
        assert run.spent <= LIMIT
        refused = first(run)
        assert refused.used + refused.held + refused.headroom == LIMIT


@pytest.mark.parametrize("loops", [1, 4])
def test_clamping_spends_more_before_the_first_refusal(loops: int) -> None:
    before = first(simulate_agents(limit=LIMIT, loops=loops, clamp=False))
    run = simulate_agents(limit=LIMIT, loops=loops, clamp=True)
    after = first(run)
    # Refused only when even the floor does not fit: the headroom is below the call's prompt at
    # the floor, and the other loops' calls in flight hold at most their worst cases (a prompt
    # never passes CONTEXT_MAX). So recorded spend is above the limit less one largest prompt at
    # the floor less k - 1 largest worst cases (for one loop: within one prompt at the floor).
    largest_least = micros(CONTEXT_MAX, FLOOR_TOKENS)
    largest_worst = micros(CONTEXT_MAX, MAX_TOKENS)
    assert after.headroom < after.least <= largest_least
    assert after.held <= (loops - 1) * largest_worst
    assert after.used > LIMIT - largest_least - (loops - 1) * largest_worst
    assert after.used > before.used
    assert run.lowered and all(FLOOR_TOKENS <= cap < MAX_TOKENS for cap in run.lowered)


@pytest.mark.parametrize("loops", [1, 4])
def test_before_clamping_a_call_is_refused_when_its_worst_case_does_not_fit(loops: int) -> None:
    run = simulate_agents(limit=LIMIT, loops=loops, clamp=False)
    refused = first(run)
    assert 0 <= refused.headroom < refused.worst
    assert refused.least == refused.worst  # no floor: the whole worst case is needed
    assert run.lowered == []
    # the same month with clamping is the same until then: its first refusal is no earlier
    after = first(simulate_agents(limit=LIMIT, loops=loops, clamp=True))
    assert after.at >= refused.at and after.served >= refused.served
