"""The production-shaped traffic of tests/bench/lease_sim/production.py (issue 26), scaled down: 10,000
req/s over 60 locations x 2 isolates for 20 s, with more quiet users' requests than at full scale
(a request a minute each) so that enough of them are cold."""

from __future__ import annotations

import math

import pytest

from tests.bench.lease_sim.production import (
    ADMIT,
    COLD,
    FLUSHER_MAX_S,
    LEASE_DESIGNS,
    PACED,
    ProdRun,
    Traffic,
    World,
    at_limit_users,
    make_world,
    run_production,
)

SMALL = Traffic(
    rps=10_000,
    locations=60,
    heavy_users=30,
    normal_users=4_000,
    quiet_users=5_000,
    quiet_gap_s=60.0,
    seconds=20.0,
    warm_up_s=5.0,
)
A, B, B5, BPLUS = (LEASE_DESIGNS.index(d) for d in ("a", "b", "b/5", "b+"))


@pytest.fixture(scope="module")
def world() -> World:
    return make_world(SMALL)


@pytest.fixture(scope="module")
def leased(world: World) -> ProdRun:
    return run_production(world, keep=True)


ISOLATES = SMALL.locations * SMALL.isolates


@pytest.fixture(scope="module")
def pooled(world: World) -> ProdRun:
    """A pool in every isolate (the default's 16 pools cover 16 of the 120)."""
    return run_production(world, pools=ISOLATES, keep=True)


@pytest.fixture(scope="module")
def few_pools(world: World) -> ProdRun:
    return run_production(world, pools=SMALL.pools, keep=True)


@pytest.fixture(scope="module")
def limited(world: World) -> tuple[frozenset[int], ProdRun, ProdRun]:
    at_limit = at_limit_users(SMALL, 0.05)
    return (
        at_limit,
        run_production(world, at_limit=at_limit, keep=True),
        run_production(world, pools=ISOLATES, at_limit=at_limit, keep=True),
    )


def test_an_optimistic_start_never_adds_more_than_waiting(leased: ProdRun) -> None:
    assert leased.records is not None
    cold = [added for _, warm, added in leased.records if not warm]
    assert len(cold) > 500  # most quiet users' requests are cold
    for added in cold:
        assert 0 <= added[B] <= added[B5] <= added[A]
        assert added[BPLUS] == added[B]  # with headroom, the deny list changes nothing
    # and it helps: most cold requests wait today, few do with an optimistic start
    waited_a = sum(1 for added in cold if added[A] > 0)
    waited_b = sum(1 for added in cold if added[B] > 0)
    assert waited_a > 0.95 * len(cold)
    assert waited_b < 0.05 * len(cold)


def test_a_warm_request_adds_nothing_in_any_design(
    world: World, leased: ProdRun, pooled: ProdRun
) -> None:
    for run in (leased, pooled):
        assert run.records is not None
        warm = [added for _, is_warm, added in run.records if is_warm]
        assert len(warm) > 0.9 * len(run.records)
        assert all(v == 0.0 for added in warm for v in added)
        assert sum(run.warm) == len(warm)
    # a quiet user's request is nearly always cold (its lease went 25 s without an exchange)
    assert leased.records is not None
    quiet = [warm for i, warm, _ in leased.records if world.user[i] >= SMALL.normal_users]
    assert sum(quiet) < 0.1 * len(quiet)


def test_pools_admit_cold_requests_at_once(pooled: ProdRun) -> None:
    assert pooled.pool_admitted > 500
    assert pooled.pools_held == ISOLATES
    # never more for one user in one pool, unacknowledged, than the allowance
    assert 0 < pooled.pool_most_user <= SMALL.allowance
    assert pooled.records is not None
    cold = [added[0] for _, warm, added in pooled.records if not warm]
    waited = sum(1 for v in cold if v > 0)
    # a cold request waits in an isolate whose pool the ledger has not granted yet, past its
    # user's allowance there, or behind its user's exchange already under way
    assert waited >= pooled.pool_none + pooled.pool_spent
    assert waited < 0.05 * len(cold)
    assert len(cold) - waited == pooled.pool_admitted


def test_the_ledger_grants_no_more_pools_than_the_org_declares(
    pooled: ProdRun, few_pools: ProdRun
) -> None:
    assert few_pools.pools_held == SMALL.pools < ISOLATES
    assert few_pools.records is not None
    cold = [added[0] for _, warm, added in few_pools.records if not warm]
    waited = sum(1 for v in cold if v > 0)
    assert waited >= few_pools.pool_none + few_pools.pool_spent
    # in the 104 isolates without one, quiet users wait as they did without pools
    assert few_pools.pool_none > 0.5 * len(cold)
    assert few_pools.pool_admitted < pooled.pool_admitted / 2


def test_ledger_calls_per_second(world: World, leased: ProdRun, pooled: ProdRun) -> None:
    isolates = SMALL.locations * SMALL.isolates
    cold_requests = sum(1 for kind in leased.added["a"] for v in kind if v > 0)
    for run in (leased, pooled):
        per_s = run.calls_per_s()
        # far below what one object serves (about 1,000 calls a second at 1 ms each)
        assert max(per_s) < 1_000
        # paced exchanges: one per isolate per pace interval (+-10 %, plus its round trip),
        # and one more per flusher handover (every FLUSHER_MAX_S)
        paced = sum(run.calls[PACED]) / run.window_s
        low = isolates / (SMALL.pace_s * 1.1 + max(world.rtt) + 0.01)
        high = isolates / (SMALL.pace_s * 0.9) + isolates / FLUSHER_MAX_S
        assert low <= paced <= high
        assert sum(run.calls[ADMIT]) == 0  # every user has headroom: no per-request admission
    # today a cold request runs an exchange of its own (or shares one): never more of them than
    # requests that waited; with pools, nearly none
    assert 0.5 * cold_requests <= sum(leased.calls[COLD]) <= cold_requests
    assert sum(pooled.calls[COLD]) < 0.1 * sum(leased.calls[COLD])


def test_settled_rows(leased: ProdRun) -> None:
    # a row per exchange <= a row per lease per exchange <= a row per request
    assert 0 < leased.exchange_rows < leased.lease_rows < leased.settled
    # the settlements reaching the object are the org's requests (all but those still in flight)
    assert math.isclose(leased.settled / leased.window_s, SMALL.rps, rel_tol=0.05)


def test_refused_optimistic_starts_are_counted(
    world: World, limited: tuple[frozenset[int], ProdRun, ProdRun]
) -> None:
    at_limit, leased, pooled = limited
    # users at their limit are never served
    for run in (leased, pooled):
        assert run.records is not None
        assert not any(world.user[i] in at_limit for i, _, _ in run.records)
    refused = leased.refused["a"]
    assert len(refused) > 10
    # b starts the upstream call of each refused request that met a cold lease, and cancels it
    assert 0 < leased.optimistic_refused <= len(refused)
    assert leased.optimistic_late <= leased.optimistic_refused
    # today each of those costs an exchange (granting nothing) and a per-request admission
    assert sum(leased.calls[ADMIT]) >= leased.optimistic_refused
    # b+ and c admit deny-listed users per request at once: never later than a, never optimistic
    assert all(bp <= a for a, bp in zip(refused, leased.refused["b+"], strict=True))
    assert pooled.optimistic_refused == 0
    assert len(pooled.refused["c"]) == len(refused)


def test_the_simulation_is_deterministic(world: World, leased: ProdRun) -> None:
    again = run_production(world, keep=True)
    assert again.records == leased.records
    assert again.calls == leased.calls
