"""Budget leases at scale (issue 12, decision 0018): one org's UsageLedger serving 100,000
requests per second from 300 locations, an org far from its budget and one that runs out of it.
The rules are the Worker's (worker/src/budget/lease.ts, worker/src/ledger/leases.ts); round trips
are taken as instant; every call is counted."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

TICK_S = 0.01
LEASE_SHARE = 4
MIN_GRANT_REQUESTS = 4
WANT_REQUESTS = 8
KEEP_WANTS = 2
DEMAND_FACTOR = 3
EXCHANGES_PER_S = 400
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 10.0
REFUSAL_MEMORY_S = 2.0
RETRY_GRANT_S = 5.0


@dataclass
class Lease:
    held: int = 0
    inflight: int = 0
    pending: int = 0  # settled costs not yet sent
    demand: int = 0
    exhausted_until: float = 0.0

    @property
    def available(self) -> int:
        return self.held - self.inflight - self.pending


@dataclass
class Isolate:
    users: list[int]
    leases: dict[int, Lease] = field(default_factory=dict)
    next_exchange: float = 0.0
    refused_until: float = 0.0


@dataclass
class Ledger:
    budget: int
    user_limit: int
    used: int = 0
    holds: int = 0  # lease holds + reservations, org-wide
    user_used: dict[int, int] = field(default_factory=dict)
    user_holds: dict[int, int] = field(default_factory=dict)
    calls: int = 0
    worst_excess: int = -(10**18)

    def headroom(self, user: int) -> int:
        return min(
            self.user_limit - self.user_used.get(user, 0) - self.user_holds.get(user, 0),
            self.budget - self.used - self.holds,
        )

    def hold(self, user: int, amount: int) -> None:
        self.holds += amount
        self.user_holds[user] = self.user_holds.get(user, 0) + amount

    def record(self, user: int, cost: int) -> None:
        self.used += cost
        self.user_used[user] = self.user_used.get(user, 0) + cost
        self.worst_excess = max(self.worst_excess, self.used + self.holds - self.budget)

    def check(self) -> None:
        self.worst_excess = max(self.worst_excess, self.used + self.holds - self.budget)


def grant(ledger: Ledger, user: int, lease: Lease, want: int, min_grant: int) -> int:
    """The ledger's rule: held stays; a grant is at most 1/4 of the headroom beside others."""
    ledger.hold(user, -lease.held)
    cap = max(0, ledger.headroom(user) - lease.held) // LEASE_SHARE
    offer = min(max(0, want), cap)
    granted = offer if offer > 0 and offer >= min_grant else 0
    lease.held += granted
    ledger.hold(user, lease.held)
    return granted


def simulate(
    *,
    seconds: int,
    rps: int,
    locations: int,
    isolates_per_location: int,
    users: int,
    budget: int,
    user_limit: int,
    worst: int,
    latency_s: float,
    seed: int = 7,
    label: str,
) -> dict[str, float]:
    rng = random.Random(seed)
    homes: list[list[int]] = [[] for _ in range(locations)]
    for user in range(users):
        homes[user % locations].append(user)
    isolates = [
        Isolate(users=homes[loc]) for loc in range(locations) for _ in range(isolates_per_location)
    ]
    for iso in isolates:
        iso.next_exchange = rng.random() * MIN_INTERVAL_S
    ledger = Ledger(budget=budget, user_limit=user_limit)
    ticks = int(seconds / TICK_S)
    lam = rps / len(isolates) * TICK_S
    settle_at: list[list[tuple[Isolate, int, Lease | None, int]]] = [[] for _ in range(ticks + 1)]
    delay = int(latency_s / TICK_S)
    served = refused = 0
    interval = MIN_INTERVAL_S
    per_second: list[tuple[int, int, int, int, float]] = []
    calls_before, served_before, refused_before = 0, 0, 0

    def exchange(iso: Isolate, now: float, waiting: set[int] | None = None) -> None:
        nonlocal interval
        ledger.calls += 1
        for user, lease in iso.leases.items():
            # settlements: their costs move from the hold to the usage
            lease.held -= lease.pending
            ledger.hold(user, -lease.pending)
            ledger.record(user, lease.pending)
            lease.pending = 0
            if lease.exhausted_until > now:
                give = max(0, lease.available)
                lease.held -= give
                ledger.hold(user, -give)
                continue
            # room for what is in flight and three times what came in since the last exchange
            wanted = max(WANT_REQUESTS * worst, lease.inflight + DEMAND_FACTOR * lease.demand)
            surplus = max(0, lease.available - KEEP_WANTS * wanted)
            lease.held -= surplus
            ledger.hold(user, -surplus)
            if (waiting and user in waiting) or lease.available < wanted * 0.25:
                got = grant(
                    ledger,
                    user,
                    lease,
                    wanted - max(0, lease.available),
                    MIN_GRANT_REQUESTS * worst,
                )
                if got == 0 and lease.available < worst:
                    lease.exhausted_until = now + RETRY_GRANT_S
            lease.demand = 0
        interval = min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, len(isolates) / EXCHANGES_PER_S))
        iso.next_exchange = now + interval * rng.uniform(0.9, 1.1)
        ledger.check()

    for tick in range(ticks):
        now = tick * TICK_S
        for _iso, user, lease, cost in settle_at[tick]:
            if lease is not None:
                lease.inflight -= worst
                lease.pending += cost
            else:  # a per-request reservation settles (one call, as if carried by nobody)
                ledger.calls += 1
                ledger.hold(user, -worst)
                ledger.record(user, cost)
        for iso in isolates:
            if now >= iso.next_exchange:
                exchange(iso, now)
            arrivals = [iso.users[rng.randrange(len(iso.users))] for _ in range(poisson(rng, lam))]
            waiting = {
                u
                for u in arrivals
                if iso.leases.setdefault(u, Lease()).exhausted_until <= now
                and iso.leases[u].available < worst
            }
            if waiting:
                exchange(iso, now, waiting)  # one exchange takes or grows them all, awaited
            for user in arrivals:
                cost = int(worst * rng.uniform(0.05, 0.5))
                lease = iso.leases[user]
                if lease.exhausted_until <= now and lease.available >= worst:
                    lease.inflight += worst
                    lease.demand += worst
                    served += 1
                    settle_at[min(ticks, tick + delay)].append((iso, user, lease, cost))
                    continue
                if iso.refused_until > now:
                    refused += 1
                    continue
                ledger.calls += 1  # per-request admission
                if ledger.headroom(user) >= worst:
                    ledger.hold(user, worst)
                    served += 1
                    settle_at[min(ticks, tick + delay)].append((iso, user, None, cost))
                else:
                    refused += 1
                    iso.refused_until = now + REFUSAL_MEMORY_S
                ledger.check()
        if (tick + 1) % int(1 / TICK_S) == 0:
            per_second.append(
                (
                    ledger.calls - calls_before,
                    served - served_before,
                    refused - refused_before,
                    ledger.used,
                    interval,
                )
            )
            calls_before, served_before, refused_before = ledger.calls, served, refused

    print(f"\n{label}")
    print(
        f"{'s':>3}  {'ledger calls/s':>14}  {'served/s':>9}  {'refused/s':>9}  {'spent':>8}  {'interval':>8}"
    )
    for second, (calls, ok, no, used, every) in enumerate(per_second, start=1):
        print(f"{second:>3}  {calls:>14}  {ok:>9}  {no:>9}  {used / budget:>7.1%}  {every:>7.2f}s")
    warm_up = 4  # seconds in which every (isolate, user) takes its first lease
    steady = [c for c, *_ in per_second[warm_up:]]
    print(
        f"  spend + holds - budget, at its worst: {ledger.worst_excess} µUSD "
        f"({'never above the budget' if ledger.worst_excess <= 0 else 'ABOVE THE BUDGET'}); "
        f"recorded {ledger.used} of {budget} µUSD"
    )
    return {
        "max_calls": max(steady),
        "mean_calls": sum(steady) / len(steady),
        "excess": ledger.worst_excess,
    }


def poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: lam is small (about 1.7 per isolate per tick)
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def leases_at_scale() -> bool:
    common: dict[str, Any] = dict(
        rps=100_000,
        locations=300,
        isolates_per_location=2,
        users=10_000,
        user_limit=10**12,
        worst=2_600,  # µUSD: 4,096 output tokens of gpt-4o-mini and a short prompt
        latency_s=1.0,
    )
    far = simulate(
        seconds=12,
        budget=10**15,
        label="An org far from its budget: 100k req/s, 300 locations x 2 isolates, 10k users",
        **common,
    )
    # ~100k req/s x ~715 µUSD a request: about $72 a second; this budget lasts about 20 s
    near = simulate(
        seconds=24,
        budget=1_440_000_000,
        label="The same org running out of a $1,440 budget",
        **common,
    )
    ok = far["max_calls"] < 500 and far["excess"] <= 0 and near["excess"] <= 0
    print(
        f"\nfar from the budget, after the first {4} s: {far['mean_calls']:.0f} ledger calls/s on "
        f"average, {far['max_calls']} at most (target < 500); spend + holds never above the "
        f"budget: {far['excess'] <= 0 and near['excess'] <= 0}"
    )
    return ok
