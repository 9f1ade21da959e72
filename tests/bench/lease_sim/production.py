"""Production-shaped traffic (issue 26): heavy services, people at work and tens of thousands of
quiet users, location-to-object round trips, the object serving one call at a time; designs for
a cold request compared (docs/decisions/0039)."""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from dataclasses import dataclass, field, replace
from typing import Any

from provision.stack.contract import COLD_START_ALLOWANCE_MICROS, COLD_START_ISOLATES
from tests.bench.lease_sim.agents import micros
from tests.bench.lease_sim.scale import (
    EXCHANGES_PER_S,
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    REFUSAL_MEMORY_S,
    RETRY_GRANT_S,
)

# ---------------------------------------------------------------------------------------------
# Production-shaped traffic (issue 26): which requests wait for the ledger, and how long, when an
# org's users are a few heavy services, many people at work and tens of thousands of quiet users,
# its locations are 5 to 250 ms from its UsageLedger, and the object serves one call at a time.
# A request is cold when its isolate has no usable lease for its user (none yet, or none renewed
# for 25 s: LEASE_TTL_MS less EXPIRY_MARGIN_MS, lease.ts). The designs for a cold request:
#   a   today (quota.ts admitLeased): it waits for an exchange that takes the lease; one already
#       in flight is waited for first, then the next one carries it (lease.ts exchange()).
#   b   optimistic start: the upstream call starts at once, the same exchange runs beside it, and
#       the answer's first byte is held back until the grant: adds max(0, grant - first byte). A
#       refused grant cancels the upstream call (the provider may bill its prompt: counted).
#   b+  b, and each exchange's answer carries the org's deny list (users whose headroom is below
#       a lease grant): those are admitted per request before any upstream call starts.
#   c   cold-start pools as built (0039, budget/pool.ts): at most `pools` isolates of the org
#       hold a pool (coldStart.isolates; the ledger grants no more); an isolate asks for one at
#       its next exchange after a cold request found none, and keeps it: modelled as never
#       lapsing and never running out (pool.ts renews a pool only while it admits, so an idle
#       one lapses after 17 s and frees its place for another isolate, and a pool holds a
#       quarter of the org's headroom; both ignored, in the pools' favour). A cold user with headroom is
#       admitted from its isolate's pool at once while what the pool admitted for that user and
#       has not yet had acknowledged (reported at the isolate's next exchange) stays within the
#       org's allowance; it gets no lease from that (its next cold request is pooled again).
#       Deny-listed users are admitted per request. A request in an isolate without a pool, or
#       past its user's allowance there, waits as in a. This keeps "recorded spend + every hold
#       <= every limit" because the ledger counts against each pooled user a band of pools x
#       allowance and pools users whose limit is at least 20 bands only (not modelled here: the
#       tables print the band and that least limit). An allowance carried in the key's record
#       alone (no hold at the ledger) cannot keep it: every isolate may spend it on the same user
#       before any exchange.
# A warm request admits on its lease and adds nothing in any design. Heavy users' requests are
# not simulated one by one: each of their leases takes 40 or more requests a second, so every
# exchange carries it (it never goes cold), and an exchange leaves a lease room for its in-flight
# requests plus three times its demand (held = want + in flight, lease.ts), more than the next
# interval takes. They are counted (as warm) and their settlements put in each exchange's batch
# at their expected number.

PROD_RPS = 100_000  # one org's requests a second, as in leases_at_scale()
PROD_LOCATIONS = 300
PROD_ISOLATES = 2  # per location
HEAVY_USERS = 300  # services: steady, most of the traffic (the requests the other kinds leave)
HEAVY_LOCATIONS = 3  # each sends from a few locations: the cloud regions its servers run in
NORMAL_USERS = 40_000  # people and agents at work ...
NORMAL_GAP_S = 2.0  # ... a request every 2 s on average (Poisson): 20,000 req/s in all ...
NORMAL_LOCATIONS = 1  # ... from one location (an office, a home), either isolate there
QUIET_USERS = 50_000  # tens of thousands of quiet users ...
QUIET_GAP_S = 180.0  # ... a request every 3 minutes on average (Poisson): about 280 req/s ...
QUIET_LOCATIONS = 5  # ... each at a random one of a handful (a roaming laptop, a CI anywhere)
QUIET_AT_LIMIT = 0.01  # the variant: this share of the quiet users is at its limit
# A location's round trip to the org's object (uniform within a class): assumed, in line with
# public round-trip tables (a region 5-20 ms; a continent 20-60 ms; across oceans 100-250 ms).
RTT_CLASSES = ((0.30, 0.005, 0.020), (0.40, 0.020, 0.060), (0.30, 0.100, 0.250))
OBJECT_SERVICE_S = 0.001  # one call at the object, one at a time (about 1,000 calls/s: 0018)
TTFB_MEDIAN_S = 0.775  # upstream time to first byte, log-normal (assumed for chat):
TTFB_SIGMA = 0.576  # p5 300 ms, p95 2,000 ms
REST_MEDIAN_S = 3.0  # the rest of the answer after its first byte, log-normal (assumed)
REST_SIGMA = 0.8
PROMPT_MICROS = 150  # a refused optimistic start's prompt: 1,000 tokens of gpt-4o-mini ($0.15/M)
AGENT_PROMPT = 20_000  # tokens: an agent call's prompt (the agent workload above), for scale
POOLS = COLD_START_ISOLATES  # design c: pools per org (coldStart.isolates, its default)
ALLOWANCE = COLD_START_ALLOWANCE_MICROS  # design c: per user and pool until reported (its default)
POOLED_LIMIT_BANDS = 20  # a user is pooled when its limit is at least this many bands (pooledLimit)
STRESS_QUIET = 4  # a third table: this many times the quiet users (a consumer app's end users)
PROD_WORST = 2_600  # µUSD: every request's worst case (as in leases_at_scale())
LEASE_USABLE_S = 25.0  # LEASE_TTL_MS (30 s) less EXPIRY_MARGIN_MS (5 s): lease.ts
FLUSHER_MAX_S = 20.0  # a flusher hands over after this: one exchange at once (lease.ts)
POLL_S = 0.010  # a request waiting for another's exchange looks again this often (lease.ts)
PROD_SECONDS = 45.0  # simulated ...
PROD_WARM_UP_S = 15.0  # ... of which these first are not measured (quiet users start cold)

NORMAL, QUIET = 0, 1
KINDS = ("normal", "quiet")
WAKE, START, AT_OBJECT, ANSWER = 0, 1, 2, 3
NO_POOL, POOL_WANTED, POOL_HELD = 0, 1, 2
POOL_RETRY_S = 5.0  # a refused pool is asked for again after this (pool.ts RETRY_MS)
PACED, COLD, ADMIT = "paced", "cold", "admit"
# a, b (and b with upstream first bytes 5x sooner: embeddings, small models) and b+ are computed
# from one run: the same exchanges for the same requests (b's requests settle up to one wait
# sooner than a's would, which moves no exchange)
LEASE_DESIGNS = ("a", "b", "b/5", "b+")
POOL_DESIGNS = ("c",)


@dataclass(frozen=True)
class Traffic:
    rps: int = PROD_RPS
    locations: int = PROD_LOCATIONS
    isolates: int = PROD_ISOLATES
    heavy_users: int = HEAVY_USERS
    heavy_locations: int = HEAVY_LOCATIONS
    normal_users: int = NORMAL_USERS
    normal_gap_s: float = NORMAL_GAP_S
    normal_locations: int = NORMAL_LOCATIONS
    quiet_users: int = QUIET_USERS
    quiet_gap_s: float = QUIET_GAP_S
    quiet_locations: int = QUIET_LOCATIONS
    pools: int = POOLS
    allowance: int = ALLOWANCE
    seconds: float = PROD_SECONDS
    warm_up_s: float = PROD_WARM_UP_S
    seed: int = 7

    @property
    def normal_rps(self) -> float:
        return self.normal_users / self.normal_gap_s

    @property
    def quiet_rps(self) -> float:
        return self.quiet_users / self.quiet_gap_s

    @property
    def heavy_rps(self) -> float:
        return self.rps - self.normal_rps - self.quiet_rps

    @property
    def pace_s(self) -> float:
        """The ledger's pacing (leases.ts pace()): every isolate is seen."""
        every = math.ceil(self.locations * self.isolates * 1000 / EXCHANGES_PER_S) / 1000
        return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, every))


@dataclass
class World:
    """What every run of a Traffic shares: places, round trips, and the requests themselves."""

    traffic: Traffic
    rtt: list[float]  # per isolate: its location's round trip to the object
    heavy: list[list[float]]  # per isolate: the request rate of each heavy lease in it
    at: list[float]  # the simulated requests (normal and quiet users'), in time order
    user: list[int]  # normal users are 0 .. normal_users - 1, quiet users after them
    isolate: list[int]
    ttfb: list[float]
    rest: list[float]


def make_world(traffic: Traffic) -> World:
    rng = random.Random(traffic.seed)
    places, per = traffic.locations, traffic.isolates
    location_rtt = []
    for _ in range(places):
        pick, span = rng.random(), RTT_CLASSES[-1][1:]
        for share, low, high in RTT_CLASSES:
            if pick < share:
                span = (low, high)
                break
            pick -= share
        location_rtt.append(rng.uniform(*span))
    rtt = [location_rtt[k // per] for k in range(places * per)]
    heavy: list[list[float]] = [[] for _ in range(places * per)]
    rate = traffic.heavy_rps / max(1, traffic.heavy_users * traffic.heavy_locations * per)
    for _ in range(traffic.heavy_users):
        for loc in rng.sample(range(places), traffic.heavy_locations):
            for k in range(per):
                heavy[loc * per + k].append(rate)
    homes = [
        tuple(rng.sample(range(places), traffic.normal_locations))
        for _ in range(traffic.normal_users)
    ]
    homes += [
        tuple(rng.sample(range(places), traffic.quiet_locations))
        for _ in range(traffic.quiet_users)
    ]
    world = World(traffic, rtt, heavy, [], [], [], [], [])
    arrivals = random.Random(traffic.seed * 1_000 + 1)
    total = traffic.normal_rps + traffic.quiet_rps
    mu_ttfb, mu_rest = math.log(TTFB_MEDIAN_S), math.log(REST_MEDIAN_S)
    t = 0.0
    while True:
        t += arrivals.expovariate(total)
        if t >= traffic.seconds:
            return world
        if arrivals.random() * total < traffic.quiet_rps:
            user = traffic.normal_users + arrivals.randrange(traffic.quiet_users)
        else:
            user = arrivals.randrange(traffic.normal_users)
        home = homes[user]
        loc = home[arrivals.randrange(len(home))]
        world.at.append(t)
        world.user.append(user)
        world.isolate.append(loc * per + arrivals.randrange(per))
        world.ttfb.append(arrivals.lognormvariate(mu_ttfb, TTFB_SIGMA))
        world.rest.append(arrivals.lognormvariate(mu_rest, REST_SIGMA))


def at_limit_users(traffic: Traffic, share: float) -> frozenset[int]:
    """The quiet users at their limit (the ledger grants them nothing and refuses them)."""
    picked = random.Random(traffic.seed * 1_000 + 3).sample(
        range(traffic.quiet_users), round(traffic.quiet_users * share)
    )
    return frozenset(traffic.normal_users + q for q in picked)


class ProdLease:
    __slots__ = (
        "granted",
        "usable_until",
        "granting",
        "exhausted_until",
        "refused_until",
        "at_limit",
    )

    def __init__(self, at_limit: bool) -> None:
        self.granted = False
        self.usable_until = 0.0
        self.granting: ProdCall | None = None  # the exchange in flight that carries its want
        self.exhausted_until = 0.0
        self.refused_until = 0.0
        self.at_limit = at_limit


class ProdIsolate:
    __slots__ = (
        "rtt",
        "heavy",
        "heavy_rate",
        "leases",
        "busy",
        "start_at",
        "wanting",
        "pool",
        "pool_retry_at",
        "pool_by_user",
        "pool_unreported",
        "flusher_due",
        "flusher_last",
        "flusher_started",
        "interval",
        "inflight",
        "last_start",
    )

    def __init__(self, rtt: float, heavy: list[float], pace: float) -> None:
        self.rtt = rtt
        self.heavy = heavy
        self.heavy_rate = sum(heavy)
        self.leases: dict[int, ProdLease] = {}
        self.busy = False
        self.start_at: float | None = None  # a START event is due (pollers resume)
        self.wanting: dict[
            ProdLease, list[int]
        ] = {}  # leases whose requests wait: the next exchange
        self.pool = NO_POOL  # design c: NO_POOL, POOL_WANTED (the next exchange asks) or POOL_HELD
        self.pool_retry_at = 0.0  # asked and refused (the org's pools all held): not before this
        self.pool_by_user: dict[int, int] = {}  # µUSD admitted per user, not yet acknowledged
        self.pool_unreported: list[tuple[int, int]] = []  # (user, µUSD) for the next exchange
        self.flusher_due = False
        self.flusher_last = False
        self.flusher_started = 0.0
        self.interval = pace
        self.inflight: list[
            tuple[float, ProdLease]
        ] = []  # (settles at, lease) of admitted requests
        self.last_start = 0.0


class ProdCall:
    __slots__ = (
        "iso",
        "kind",
        "start",
        "wants",
        "refresh",
        "waiters",
        "runner",
        "flusher",
        "last",
        "request",
        "optimistic",
        "pool_ask",
        "pool_reports",
    )

    def __init__(self, iso: ProdIsolate, kind: str, start: float) -> None:
        self.iso = iso
        self.kind = kind
        self.start = start
        self.wants: list[ProdLease] = []
        self.refresh: list[ProdLease] = []
        self.waiters: list[int] = []
        self.runner = -1  # the request that runs this exchange (no poll after its answer)
        self.flusher = False
        self.last = False
        self.request = -1  # a per-request admission: whose
        self.optimistic = False  # an admission: b started the upstream call at the arrival
        self.pool_ask = False  # design c: the exchange asks the ledger for a pool
        self.pool_reports: list[tuple[int, int]] = []  # design c: its pooled admissions


@dataclass
class ProdRun:
    designs: tuple[str, ...]
    window_s: float
    heavy_requests: float  # heavy users' requests in the window: warm, counted not simulated
    warm: list[int] = field(default_factory=lambda: [0, 0])  # per kind: warm (0 in every design)
    added: dict[str, list[list[float]]] = field(default_factory=dict)  # design → kind → added s
    refused: dict[str, list[float]] = field(default_factory=dict)  # design → time to the 429
    optimistic_refused: int = 0  # design b: optimistic starts cancelled by a refusal
    optimistic_late: int = 0  # ... of which after the first byte was ready (upstream billed)
    calls: dict[str, list[int]] = field(default_factory=dict)  # kind → calls in each second
    queue: list[float] = field(default_factory=list)  # a call's wait for the object
    exchange_s: list[float] = field(default_factory=list)  # an exchange, start to answer
    settled: float = 0.0  # settlements that reached the object (today: a `settled` row each)
    lease_rows: float = 0.0  # (lease, exchange) pairs with settlements: a row per lease batch
    exchange_rows: int = 0  # exchanges with settlements: a row per exchange
    pools: int = 0  # design c: pools per org
    pool_admitted: int = 0
    pool_none: int = 0  # design c: cold requests that waited: their isolate had no pool
    pool_spent: int = 0  # ... that waited: their user's allowance in that pool was used
    pools_held: int = 0  # pools the ledger granted (never more than `pools`)
    pool_most_user: int = 0  # the most a pool had admitted for one user unacknowledged (µUSD)
    records: list[tuple[int, bool, tuple[float, ...]]] | None = None  # (request, warm, added)

    def calls_per_s(self, kind: str | None = None) -> list[int]:
        kinds = [kind] if kind else list(self.calls)
        return [sum(self.calls[k][s] for k in kinds) for s in range(len(self.calls[PACED]))]


def run_production(
    world: World, *, pools: int = 0, at_limit: frozenset[int] = frozenset(), keep: bool = False
) -> ProdRun:
    """One run: designs a, b and b+ (pools=0) or design c with at most `pools` pools per org,
    over world's requests."""
    traffic = world.traffic
    pool = pools > 0
    rng = random.Random(traffic.seed * 1_000 + 2)  # poll phases, pacing jitter
    pace = traffic.pace_s
    begin_at, end = traffic.warm_up_s, traffic.seconds
    seconds = int(end - begin_at)
    designs = POOL_DESIGNS if pool else LEASE_DESIGNS
    run = ProdRun(designs, end - begin_at, traffic.heavy_rps * (end - begin_at))
    run.pools = pools
    run.added = {d: [[], []] for d in designs}
    run.refused = {d: [] for d in designs}
    run.calls = {k: [0] * seconds for k in (PACED, COLD, ADMIT)}
    if keep:
        run.records = []
    isos = [ProdIsolate(world.rtt[k], world.heavy[k], pace) for k in range(len(world.rtt))]
    heap: list[tuple[float, int, int, Any]] = []
    order = itertools.count()
    for iso in isos:
        iso.flusher_started = -rng.random() * FLUSHER_MAX_S
        heapq.heappush(heap, (rng.random() * pace, next(order), WAKE, iso))
    free_at = 0.0  # when the object is next free
    ats, users, iso_of, ttfbs, rests = world.at, world.user, world.isolate, world.ttfb, world.rest
    first_quiet = traffic.normal_users

    def measured(t: float) -> bool:
        return begin_at <= t < end

    def send(call: ProdCall, now: float) -> None:
        heapq.heappush(heap, (now + call.iso.rtt / 2, next(order), AT_OBJECT, call))

    def begin(iso: ProdIsolate, now: float, *, flusher: bool, runner: int = -1) -> None:
        """One exchange for the isolate: every waiting lease, every settlement due."""
        call = ProdCall(iso, PACED if flusher else COLD, now)
        if flusher:
            iso.flusher_due = False
            call.flusher = True
            call.last = iso.flusher_last
            iso.flusher_last = False
        for lease, waiters in iso.wanting.items():
            lease.granting = call
            call.wants.append(lease)
            call.waiters.extend(waiters)
        iso.wanting = {}
        call.pool_ask = iso.pool == POOL_WANTED and now >= iso.pool_retry_at
        call.pool_reports, iso.pool_unreported = iso.pool_unreported, []
        if not flusher:
            call.runner = runner if runner >= 0 else (call.waiters[0] if call.waiters else -1)
        settled = 0
        if iso.inflight:
            done = [e for e in iso.inflight if e[0] <= now]
            if done:
                iso.inflight = [e for e in iso.inflight if e[0] > now]
                batch = {lease for _, lease in done if lease is not None}  # None: pooled
                call.refresh = list(batch)
                settled = len(done)
        lapse = now - iso.last_start
        iso.last_start = now
        if measured(now):
            heavy_rows = sum(1 - math.exp(-r * lapse) for r in iso.heavy)
            run.settled += settled + iso.heavy_rate * lapse
            run.lease_rows += len(call.refresh) + heavy_rows
            run.exchange_rows += 1 if settled or iso.heavy_rate else 0
        if not (call.wants or settled or iso.heavy_rate or call.pool_ask or call.pool_reports):
            # nothing to send: no call (lease.ts returns before calling)
            answered(call, now, nothing=True)
            return
        iso.busy = True
        send(call, now)

    def answered(call: ProdCall, now: float, nothing: bool = False) -> None:
        iso = call.iso
        iso.busy = False
        if not nothing:
            iso.interval = pace * rng.uniform(0.9, 1.1)
            if measured(call.start):
                run.exchange_s.append(now - call.start)
        fresh = call.start + LEASE_USABLE_S
        for lease in call.refresh:
            if lease.usable_until < fresh:
                lease.usable_until = fresh
        if call.pool_ask:  # the ledger grants a pool while the org holds fewer than `pools`
            if run.pools_held < pools:
                run.pools_held += 1
                iso.pool = POOL_HELD
            else:
                iso.pool_retry_at = now + POOL_RETRY_S
        for user, amount in call.pool_reports:  # acknowledged: the user's allowance is free again
            iso.pool_by_user[user] -= amount
        for lease in call.wants:
            lease.granting = None
            if lease.at_limit:  # the ledger grants nothing: per request for RETRY_GRANT_S
                lease.exhausted_until = now + RETRY_GRANT_S
            else:
                lease.granted = True
                lease.usable_until = max(lease.usable_until, fresh)
        for index in call.waiters:
            ready = now if index == call.runner else now + rng.random() * POLL_S
            resolve(index, ready, iso)
        if call.flusher:
            if call.last:  # the old flusher handed over; the next settlement starts a new one
                iso.flusher_started = now
                heapq.heappush(heap, (now + iso.interval, next(order), WAKE, iso))
            elif now - iso.flusher_started > FLUSHER_MAX_S:
                iso.flusher_last = True
                iso.flusher_due = True
                begin(iso, now, flusher=True)  # the last round: at once, no sleep
                return
            elif now < end:
                heapq.heappush(heap, (now + iso.interval, next(order), WAKE, iso))
        if (iso.wanting or iso.flusher_due) and iso.start_at is None:
            iso.start_at = now + rng.random() * POLL_S
            heapq.heappush(heap, (iso.start_at, next(order), START, iso))

    def served(index: int, t: float, wait: float, warm: bool) -> None:
        if not measured(t):
            return
        kind = QUIET if users[index] >= first_quiet else NORMAL
        if warm:
            run.warm[kind] += 1
            added: tuple[float, ...] = (0.0,) * len(designs)
        elif pool:
            added = (wait,)
            run.added["c"][kind].append(wait)
        else:
            late = max(0.0, wait - ttfbs[index])  # b: the answer waits for the grant, if later
            sooner = max(0.0, wait - ttfbs[index] / 5)
            added = (wait, late, sooner, late)
            run.added["a"][kind].append(wait)
            run.added["b"][kind].append(late)
            run.added["b/5"][kind].append(sooner)
            run.added["b+"][kind].append(late)
        if run.records is not None:
            run.records.append((index, warm, added))

    def admit(index: int, now: float, optimistic: bool) -> None:
        """A per-request admission (its user is at its limit: refused)."""
        call = ProdCall(isos[iso_of[index]], ADMIT, now)
        call.request = index
        call.optimistic = optimistic  # b: an upstream call was started at its arrival
        send(call, now)

    def refused(call: ProdCall, now: float) -> None:
        index = call.request
        lease = call.iso.leases[users[index]]
        lease.refused_until = now + REFUSAL_MEMORY_S
        t = ats[index]
        if not measured(t):
            return
        if pool:
            run.refused["c"].append(now - t)
            return
        run.refused["a"].append(now - t)
        run.refused["b"].append(now - t)
        run.refused["b/5"].append(now - t)
        # b+: a deny-listed user is admitted per request at once (this call's time only)
        run.refused["b+"].append(now - call.start if call.optimistic else now - t)
        if call.optimistic:
            run.optimistic_refused += 1
            run.optimistic_late += now - t > ttfbs[index]

    def resolve(index: int, ready: float, iso: ProdIsolate) -> None:
        lease = iso.leases[users[index]]
        if lease.granted and ready < lease.usable_until:
            settle = ready + ttfbs[index] + rests[index]
            iso.inflight.append((settle, lease))
            if settle > lease.usable_until:  # heartbeats keep a lease with requests in flight
                lease.usable_until = settle
            served(index, ats[index], ready - ats[index], warm=False)
        else:  # granted nothing: admitted per request (quota.ts admit())
            admit(index, ready, optimistic=True)

    def event(now: float, kind: int, obj: Any) -> None:
        nonlocal free_at
        if kind == WAKE:
            iso = obj
            if now >= end:
                return
            iso.flusher_due = True
            if not iso.busy and iso.start_at is None:
                begin(iso, now, flusher=True)
        elif kind == START:
            iso = obj
            iso.start_at = None
            if iso.busy or not (iso.wanting or iso.flusher_due):
                return
            # the flusher and the waiting requests poll alike: either may run it first
            flusher = iso.flusher_due and (not iso.wanting or rng.random() < 0.5)
            begin(iso, now, flusher=flusher)
        elif kind == AT_OBJECT:
            call = obj
            start = max(now, free_at)
            free_at = start + OBJECT_SERVICE_S
            if measured(now):
                run.calls[call.kind][int(now - begin_at)] += 1
                run.queue.append(start - now)
            heapq.heappush(heap, (free_at + call.iso.rtt / 2, next(order), ANSWER, call))
        elif obj.kind == ADMIT:
            refused(obj, now)
        else:
            answered(obj, now)

    for index, t in enumerate(ats):
        while heap and heap[0][0] <= t:
            now, _, kind, obj = heapq.heappop(heap)
            event(now, kind, obj)
        iso = isos[iso_of[index]]
        user = users[index]
        lease = iso.leases.get(user)
        if lease is None:
            lease = iso.leases[user] = ProdLease(user in at_limit)
            if user < first_quiet:  # normal users' leases are warm at the start
                lease.granted = True
                lease.usable_until = LEASE_USABLE_S
        if lease.refused_until > t:  # a refusal remembered (quota.ts): no call
            if measured(t):
                for design in designs:
                    run.refused[design].append(0.0)
            continue
        if lease.exhausted_until > t:  # the ledger granted nothing lately: per request
            admit(index, t, optimistic=False)
            continue
        if lease.granted and t < lease.usable_until:  # warm: admitted on the lease
            settle = t + ttfbs[index] + rests[index]
            iso.inflight.append((settle, lease))
            if settle > lease.usable_until:
                lease.usable_until = settle
            served(index, t, 0.0, warm=True)
            continue
        if lease.granting is not None:  # an exchange in flight takes it: wait for that one
            lease.granting.waiters.append(index)
            continue
        if lease in iso.wanting:  # the next exchange takes it
            iso.wanting[lease].append(index)
            continue
        if pool:
            if lease.at_limit:  # deny-listed: per request, before any upstream call
                admit(index, t, optimistic=False)
                continue
            spent = iso.pool_by_user.get(user, 0)
            if iso.pool == POOL_HELD and spent + PROD_WORST <= traffic.allowance:
                iso.pool_by_user[user] = spent + PROD_WORST
                run.pool_most_user = max(run.pool_most_user, spent + PROD_WORST)
                iso.pool_unreported.append((user, PROD_WORST))  # reported at the next exchange
                iso.inflight.append((t + ttfbs[index] + rests[index], None))
                run.pool_admitted += measured(t)
                served(index, t, 0.0, warm=False)
                continue
            if iso.pool == NO_POOL:
                iso.pool = POOL_WANTED  # the next exchange asks for one; this request waits
            if iso.pool == POOL_HELD:
                run.pool_spent += measured(t)
            else:
                run.pool_none += measured(t)
        iso.wanting[lease] = [index]  # cold: wait for an exchange (design a's path)
        if not iso.busy and iso.start_at is None:
            begin(iso, t, flusher=False, runner=index)
    while heap:
        now, _, kind, obj = heapq.heappop(heap)
        event(now, kind, obj)
    return run


def percentile(sorted_added: list[float], warm: float, q: float) -> float:
    """The q-quantile of `warm` zeros and the sorted added latencies."""
    n = warm + len(sorted_added)
    k = max(0, math.ceil(q * n) - 1)
    return 0.0 if k < warm else sorted_added[min(len(sorted_added) - 1, int(k - warm))]


def latency_row(run: ProdRun, design: str) -> str:
    quiet = sorted(run.added[design][QUIET])
    every = sorted(run.added[design][NORMAL] + quiet)
    cells = []
    for values, warm in ((every, run.heavy_requests + sum(run.warm)), (quiet, run.warm[QUIET])):
        waited = sum(1 for v in values if v > 0) / (warm + len(values))
        qs = [percentile(values, warm, q) * 1000 for q in (0.5, 0.95, 0.99, 0.999)]
        cells.append(f"{waited:>7.2%} " + " ".join(f"{v:>5.0f}" for v in qs))
    normal = run.added[design][NORMAL]
    waited_normal = sum(1 for v in normal if v > 0) / (run.warm[NORMAL] + len(normal))
    return f"{cells[0]} | {cells[1]} | {waited_normal:>6.2%}"


def calls_row(run: ProdRun) -> str:
    cells = []
    for kind in (PACED, COLD, ADMIT, None):
        per_s = run.calls_per_s(kind)
        cells.append(f"{sum(per_s) / len(per_s):>5.0f} /{max(per_s):>4}")
    queue = sorted(run.queue)
    busy = sum(run.calls_per_s()) * OBJECT_SERVICE_S / run.window_s
    rows = (run.settled, run.lease_rows, run.exchange_rows)
    return (
        " ".join(cells)
        + f" {busy:>4.0%} {statistics.fmean(queue) * 1000:>4.1f} {queue[int(0.99 * len(queue))] * 1000:>5.1f}"
        + f" {rows[0] / run.window_s:>7,.0f} {rows[1] / run.window_s:>7,.0f} {rows[2] / run.window_s:>5,.0f}"
    )


DESIGN_NAMES = {
    "a": "a  today: wait",
    "b": "b  optimistic start",
    "b/5": "b  first byte 5x sooner",
    "b+": "b+ b and a deny list",
    "c": "c  pools as deployed",
    "c*": "c  a pool per isolate",
}


def band_line(name: str, pools: int, allowance: int) -> str:
    band = pools * allowance
    return (
        f"  {name}: {pools} pools x ${allowance / 1e6:g} allowance = a band of ${band / 1e6:.2f} per user; users "
        f"with limits under ${POOLED_LIMIT_BANDS * band / 1e6:,.2f} ({POOLED_LIMIT_BANDS} bands) are never pooled"
        " (here: every user is)"
    )


def production_scenario(world: World, at_limit: frozenset[int], title: str) -> dict[str, ProdRun]:
    traffic = world.traffic
    isolates = traffic.locations * traffic.isolates
    leased = run_production(world, at_limit=at_limit)
    pooled = run_production(world, pools=traffic.pools, at_limit=at_limit)
    # every isolate with a pool, the allowance one worst case (the least band that serves them)
    each = replace(world, traffic=replace(traffic, pools=isolates, allowance=PROD_WORST))
    per_isolate = run_production(each, pools=isolates, at_limit=at_limit)
    runs = {design: leased for design in LEASE_DESIGNS} | {"c": pooled, "c*": per_isolate}
    key = {design: "c" if design.startswith("c") else design for design in DESIGN_NAMES}
    print(f"\n{title}")
    print(f"{'added latency, ms':<23} {'all requests':<31} | {'quiet users':<31} | normal")
    print(f"{'design':<23}" + " waited   p50   p95   p99 p99.9 |" * 2 + " waited")
    for design, name in DESIGN_NAMES.items():
        print(f"{name:<23} {latency_row(runs[design], key[design])}")
    print(
        f"{'ledger calls/s':<23} {'mean / max in a second':^47} {'object':^15} "
        f"{'settled rows/s, one per':^23}"
    )
    print(
        f"{'design':<23} {'paced exch':>10} {'cold exch':>10} {'admissions':>11} {'all calls':>10}  "
        f"busy queue p99 ms  request   lease  exch."
    )
    for design, name in DESIGN_NAMES.items():
        print(f"{name:<23} {calls_row(runs[design])}")
    print(
        "  ('queue': a call's wait at the object, mean and p99; 'cold exch': exchanges run for a waiting "
        "request;\n  'lease': a row per lease per exchange (a batch); b and b+ are a's run, whose calls they make)"
    )
    for design in ("c", "c*"):
        run = runs[design]
        print(
            f"  {DESIGN_NAMES[design].strip()}: {run.pool_admitted:,} cold requests admitted on a pool, "
            f"{run.pools_held} pools of {run.pools} granted; waited: {run.pool_none:,} in an isolate without "
            f"a pool, {run.pool_spent:,} past their allowance there"
        )
    if at_limit:
        for design in ("a", "b", "b+", "c"):
            times = sorted(runs[design].refused[key[design]])
            print(
                f"  refused ({design}): {len(times):,} requests of users at their limit; time to the 429: p50 "
                f"{times[len(times) // 2] * 1000:.0f} ms, p99 {times[int(0.99 * len(times))] * 1000:.0f} ms"
            )
        wasted = leased.optimistic_refused
        print(
            f"  b: {wasted:,} optimistic starts cancelled by a refusal ({wasted / leased.window_s:.1f}/s; "
            f"{leased.optimistic_late:,} after the upstream's first byte); their prompts at\n  "
            f"{PROMPT_MICROS} µUSD each: ${wasted * PROMPT_MICROS / 1e6:.2f}; were they {AGENT_PROMPT:,}-token "
            f"Opus-class prompts (the agent workload): ${wasted * micros(AGENT_PROMPT, 0) / 1e6:,.2f} "
            f"in {leased.window_s:.0f} s. b+ and c: none (the deny list)"
        )
    return runs


def production(traffic: Traffic | None = None) -> bool:
    """The production-shaped traffic's tables (issue 26); False if a design's rule was broken."""
    traffic = traffic or Traffic()
    world = make_world(traffic)
    n_iso = traffic.locations * traffic.isolates
    rtts = sorted(world.rtt)
    print(
        f"\nProduction-shaped traffic (issue 26): one org at {traffic.rps:,} req/s, {traffic.locations} "
        f"locations x {traffic.isolates} isolates; {traffic.seconds:.0f} s simulated, the last "
        f"{traffic.seconds - traffic.warm_up_s:.0f} s measured"
    )
    print(
        f"  heavy  {traffic.heavy_users:,} users, {traffic.heavy_rps:,.0f} req/s, each from {traffic.heavy_locations} "
        f"locations (counted as warm, not simulated one by one: each of their leases takes "
        f"{traffic.heavy_rps / max(1, traffic.heavy_users * traffic.heavy_locations * traffic.isolates):.0f} req/s)"
    )
    print(
        f"  normal {traffic.normal_users:,} users, a request every {traffic.normal_gap_s:g} s (Poisson) from "
        f"{traffic.normal_locations} location(s): {traffic.normal_rps:,.0f} req/s"
    )
    print(
        f"  quiet  {traffic.quiet_users:,} users, a request every {traffic.quiet_gap_s:g} s (Poisson), each at one of "
        f"{traffic.quiet_locations} locations: {traffic.quiet_rps:,.0f} req/s"
    )
    print(
        f"  {len(world.at):,} requests of normal and quiet users simulated one by one; a location's round trip to "
        f"the object p10/p50/p90/max {rtts[n_iso // 10] * 1000:.0f}/{rtts[n_iso // 2] * 1000:.0f}/"
        f"{rtts[9 * n_iso // 10] * 1000:.0f}/{rtts[-1] * 1000:.0f} ms; the object serves one call at a time, "
        f"{OBJECT_SERVICE_S * 1000:g} ms each; exchanges paced to every {traffic.pace_s:g} s +-10 % per isolate"
    )
    print(
        f"  upstream first byte: log-normal, median {TTFB_MEDIAN_S * 1000:.0f} ms, p5 300 ms, p95 2,000 ms "
        f"(chat; assumed); every request's worst case ${PROD_WORST / 1e6:g}"
    )
    print(band_line("c as deployed (coldStart defaults)", traffic.pools, traffic.allowance))
    print(band_line("c with a pool per isolate", n_iso, PROD_WORST))
    main = production_scenario(world, frozenset(), "Every user has headroom")
    share = QUIET_AT_LIMIT
    variant = production_scenario(
        world,
        at_limit_users(traffic, share),
        f"The same, {share:.0%} of the quiet users at their limit (refused; not in the latencies)",
    )
    more = replace(traffic, quiet_users=traffic.quiet_users * STRESS_QUIET)
    stress = production_scenario(
        make_world(more),
        frozenset(),
        f"{STRESS_QUIET} x the quiet users ({more.quiet_users:,}: {more.quiet_rps:,.0f} req/s), every user "
        f"with headroom ({more.heavy_rps:,.0f} req/s heavy)",
    )
    ok = True
    for runs in (main, variant, stress):
        for design, run in runs.items():
            key = "c" if design.startswith("c") else design
            ok = ok and all(v >= 0 for kind in run.added[key] for v in kind)
        for design in ("c", "c*"):
            run = runs[design]
            ok = ok and run.pools_held <= run.pools
            ok = ok and run.pool_most_user <= (traffic.allowance if design == "c" else PROD_WORST)
    return ok
