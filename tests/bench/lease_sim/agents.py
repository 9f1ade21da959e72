"""Agent-shaped workload (budget-clamped output, decision 0035): k Claude Code-like loops of one
user run until refused, with per-request admission as it was and as admission.ts has it now."""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from dataclasses import dataclass, field

from tests.bench.lease_sim.scale import (
    LEASE_SHARE,
    MIN_GRANT_REQUESTS,
    WANT_REQUESTS,
    Lease,
    Ledger,
    grant,
)

# ---------------------------------------------------------------------------------------------
# An agent-shaped workload: how much of a user's monthly limit k agent loops spend before their
# first refusal, with and without budget-clamped output (decision 0035: budget/clamp.ts,
# ledger/admission.ts, request/serve.ts).

PRICE_IN = (
    15_000_000  # µUSD per million input tokens: Opus-class ($15, Claude Opus 4.1's list price)
)
PRICE_OUT = 75_000_000  # µUSD per million output tokens: Opus-class ($75)
PER_MILLION = 1_000_000  # prices are per million tokens, as in worker/src/pricing/prices.ts
MAX_TOKENS = 32_000  # Claude Code asks this output cap on every call
FLOOR_TOKENS = 256  # an org's default floor: CLAMP_FLOOR_TOKENS (worker/src/generated/contract.ts)
CONTEXT_START = (18_000, 22_000)  # tokens: a session's first prompt, "near 20,000" (uniform)
TOOL_RESULT = (500, 5_000)  # tokens a tool result adds to the context each turn (uniform)
CONTEXT_MAX = 180_000  # a context that would pass this compacts (Claude Code's auto-compact) ...
COMPACT_TO = 30_000  # ... to this many tokens
OUTPUT_MEDIAN = 800  # tokens: the median real output of a call (log-normal, capped at MAX_TOKENS)
OUTPUT_SIGMA = 1.0  # the log-normal's sigma: assumed (p90 about 2,900 tokens, p99 about 8,200)
CALL_BASE_S = 2.0  # a call lasts this long ...
OUTPUT_PER_S = 60  # ... plus its output at this many tokens a second
RETRY_S = 1.0  # a refused loop sends the same call again after this long
STOP_AFTER = 3  # a loop stops after this many refusals in a row
AGENT_LIMITS = (25_000_000, 100_000_000)  # µUSD a month: $25 (LiteLLM PR #38647's example), $100
AGENT_LOOPS = (1, 4, 8)  # concurrent loops of one user: a main loop, or one with 3 or 7 subagents
AGENT_MONTHS = 100  # seeded months per table row (one month's first refusal is one draw)
USER = 0


def micros(prompt: int, output: int) -> int:
    """A call's cost in µUSD, rounded up once, as worstCaseMicros and costMicros do (prices.ts).

    The Worker prices a worst case's prompt at the highest input price (for Anthropic the cache
    write, 1.25 x input): here the plain input price, for worst cases and real costs alike."""
    return -(-(prompt * PRICE_IN + output * PRICE_OUT) // PER_MILLION)


def cap_within(prompt: int, floor: int, reserved: int) -> int:
    """capWithin (budget/clamp.ts): the largest cap, floor to MAX_TOKENS, whose worst case fits."""
    low, high = floor, MAX_TOKENS
    if micros(prompt, high) <= reserved:
        return high
    while high - low > 1:
        mid = (low + high) // 2
        if micros(prompt, mid) <= reserved:
            low = mid
        else:
            high = mid
    return low


def draw_output(rng: random.Random) -> int:
    """What the model would write if nothing capped it below MAX_TOKENS."""
    return max(1, min(MAX_TOKENS, round(rng.lognormvariate(math.log(OUTPUT_MEDIAN), OUTPUT_SIGMA))))


@dataclass
class Call:
    reserved: int
    cost: int
    output: int


@dataclass
class Refusal:
    at: float  # simulated seconds
    used: int  # the user's recorded spend then
    held: int  # held by the user's calls in flight then
    headroom: int  # limit - used - held
    worst: int  # the refused call's worst case
    least: int  # its worst case at the floor
    served: int  # calls served before it


@dataclass
class AgentRun:
    limit: int
    loops: int
    clamp: bool
    served: int = 0
    refused: int = 0
    asked: int = 0  # admissions asked for (served + refused)
    worst_sum: int = 0  # of the worst cases asked for
    lowered: list[int] = field(default_factory=list)  # the caps of calls served with a lowered cap
    cut: int = 0  # lowered calls whose answer the lowered cap cut short
    grantable: int = 0  # admissions at which the ledger could have granted a lease
    first: Refusal | None = None
    spent: int = 0  # recorded when every loop has stopped
    worst_excess: int = -(10**18)  # max over every step of: recorded + held - limit
    seconds: float = 0.0


def simulate_agents(*, limit: int, loops: int, clamp: bool, seed: int = 7) -> AgentRun:
    """One user's month: `loops` agent loops until each is refused STOP_AFTER times in a row.

    Admission is per request, as admission.ts does it: the worst case is reserved if it fits the
    headroom; else, with `clamp`, the headroom is reserved if it is at least the call's worst
    case at the floor, and the call is sent with the largest cap whose worst case fits that.

    Leases do not change this. The ledger grants a lease only from a quarter of the headroom and
    only at least MIN_GRANT_REQUESTS worst cases, so only while the headroom is at least 16 worst
    cases ($43.20 at the smallest here, 20,000 prompt tokens): never under $25, and under $100
    only early in the month. Each admission below asks grant() whether it would grant (counted in
    `grantable`); none can be near a refusal, where the headroom is below one worst case. A
    lease admits whole worst cases only (quota.ts), and one that cannot grow gives back its free
    part before the per-request admission (admitLeased), so the holds at a refusal are the
    reservations of the calls in flight either way. (The loops are taken to share one isolate:
    a lease in another isolate could keep free room from them.)
    """
    # an org far from its budget: the user's limit binds
    ledger = Ledger(budget=10**15, user_limit=limit)
    run = AgentRun(limit=limit, loops=loops, clamp=clamp)
    # a stream of draws per loop, so that the runs with and without clamping are the same month
    # until the first time a worst case does not fit
    rngs = [random.Random(seed * 1_000 + i) for i in range(loops)]
    prompt = [rng.randint(*CONTEXT_START) for rng in rngs]
    wants = [draw_output(rng) for rng in rngs]
    in_row = [0] * loops
    order = itertools.count()
    events: list[tuple[float, int, int, Call | None]] = [
        (0.0, next(order), i, None) for i in range(loops)
    ]

    def check() -> None:
        excess = ledger.user_used.get(USER, 0) + ledger.user_holds.get(USER, 0) - limit
        run.worst_excess = max(run.worst_excess, excess)

    while events:
        now, _, i, call = heapq.heappop(events)
        run.seconds = now
        if call is not None:  # the call ends: its reservation gives way to its real cost
            ledger.hold(USER, -call.reserved)
            ledger.record(USER, call.cost)
            check()
            grown = prompt[i] + call.output + rngs[i].randint(*TOOL_RESULT)
            prompt[i] = COMPACT_TO if grown > CONTEXT_MAX else grown
            wants[i] = draw_output(rngs[i])
            heapq.heappush(events, (now, next(order), i, None))  # the loop's next call, at once
            continue
        worst = micros(prompt[i], MAX_TOKENS)
        least = micros(prompt[i], FLOOR_TOKENS) if clamp else worst  # askFor (budget/clamp.ts)
        headroom = ledger.headroom(USER)
        run.asked += 1
        run.worst_sum += worst
        probe = Lease()  # would the ledger grant a lease now? (leases.ts, grant() above)
        if grant(ledger, USER, probe, WANT_REQUESTS * worst, MIN_GRANT_REQUESTS * worst) > 0:
            run.grantable += 1
        ledger.hold(USER, -probe.held)
        if least > headroom:  # admission.ts: refused when even the least does not fit
            run.refused += 1
            if run.first is None:
                used, held = ledger.user_used.get(USER, 0), ledger.user_holds.get(USER, 0)
                run.first = Refusal(now, used, held, headroom, worst, least, run.served)
            in_row[i] += 1
            if in_row[i] < STOP_AFTER:
                heapq.heappush(events, (now + RETRY_S, next(order), i, None))
            continue
        in_row[i] = 0
        reserved = min(worst, headroom)
        ledger.hold(USER, reserved)
        check()
        cap = MAX_TOKENS if reserved >= worst else cap_within(prompt[i], FLOOR_TOKENS, reserved)
        output = min(wants[i], cap)
        if cap < MAX_TOKENS:
            run.lowered.append(cap)
            run.cut += wants[i] > cap
        cost = micros(prompt[i], output)
        assert cost <= reserved, (cost, reserved)
        run.served += 1
        ends = now + CALL_BASE_S + output / OUTPUT_PER_S
        heapq.heappush(events, (ends, next(order), i, Call(reserved, cost, output)))
    run.spent = ledger.user_used.get(USER, 0)
    return run


def dollars(amount: float) -> str:
    return f"${amount / 1e6:.0f}" if amount % 1_000_000 == 0 else f"${amount / 1e6:.2f}"


def usd(amount: float, limit: int, digits: int = 0) -> str:
    """An amount in dollars and as a share of the limit."""
    return f"{dollars(amount):>7} {amount / limit:>{5 + digits + bool(digits)}.{digits}%}"


def agents(months: int = AGENT_MONTHS) -> bool:
    """The agent workload's table; False if recorded spend + holds ever passed the limit."""
    print(
        f"\nAgent loops of one user, Opus-class prices, max_tokens {MAX_TOKENS:,} on every call: "
        f"means of {months} seeded months"
    )
    head = (
        f"{'limit':>5}  {'k':>2}  {'rule':<6}  {'spent at 1st 429':>16}  {'all spent':>9}  "
        f"{'served 1st/all':>14}  {'lowered':>7}  {'cut':>5}  {'median cap':>10}  {'lease':>5}"
    )
    print(head)
    worst_excess = -(10**18)
    unusable: list[str] = []
    for limit in AGENT_LIMITS:
        for loops in AGENT_LOOPS:
            first_left: dict[bool, float] = {}
            end_left: dict[bool, float] = {}
            mean_worst = 0.0
            for clamp in (False, True):
                runs = [
                    simulate_agents(limit=limit, loops=loops, clamp=clamp, seed=s)
                    for s in range(months)
                ]
                worst_excess = max(worst_excess, *(r.worst_excess for r in runs))
                firsts = [r.first for r in runs if r.first is not None]
                assert len(firsts) == months  # every month ends in refusals
                at_first = sum(f.used for f in firsts) / months
                spent = sum(r.spent for r in runs) / months
                caps = [c for r in runs for c in r.lowered]
                lowered = sum(len(r.lowered) for r in runs) / months
                cut = sum(r.cut for r in runs) / months
                median_cap = f"{statistics.median(caps):,.0f}" if caps else "-"
                clamped = (f"{lowered:.1f}", f"{cut:.1f}", median_cap) if clamp else ("-", "-", "-")
                served_first = sum(f.served for f in firsts) / months
                served = sum(r.served for r in runs) / months
                grantable = sum(r.grantable for r in runs) / months
                first_left[clamp] = limit - at_first
                end_left[clamp] = limit - spent
                if not clamp:
                    mean_worst = sum(r.worst_sum for r in runs) / sum(r.asked for r in runs)
                rule = "after" if clamp else "before"
                print(
                    f"{dollars(limit):>5}  {loops:>2}  {rule:<6}  {usd(at_first, limit, 1):>16}  "
                    f"{spent / limit:>9.1%}  {served_first:>6.1f} /{served:>6.1f}  {clamped[0]:>7}  "
                    f"{clamped[1]:>5}  {clamped[2]:>10}  {grantable:>5.1f}"
                )
            unusable.append(
                f"{dollars(limit):>5}  {loops:>2}  {usd(first_left[False], limit):>15}  "
                f"{usd(first_left[True], limit):>15}  {dollars(loops * mean_worst):>17}  "
                f"{usd(end_left[False], limit):>15}  {usd(end_left[True], limit):>15}"
            )
    print(
        "  spent at 1st 429: recorded when the first call of any loop is refused (not what the calls then in\n"
        "    flight will cost); all spent: recorded when every loop has been refused 3 times in a row\n"
        "  served: calls, to the first 429 and in all; lowered: calls served with a lowered cap; cut: of those,\n"
        "    answers the lowered cap cut short; median cap: of the lowered caps, in tokens\n"
        "  lease: admissions at which grant() would have granted a lease (it needs a headroom of "
        f"{LEASE_SHARE * MIN_GRANT_REQUESTS} worst cases;\n    a refusal comes below one)"
    )
    print(
        "\nThe limit left unspent (the issue's 'never usable' before: about k worst cases at the first 429)"
    )
    print(
        f"{'limit':>5}  {'k':>2}  {'1st 429, before':>15}  {'1st 429, after':>15}  {'k x mean worst':>17}  "
        f"{'end, before':>15}  {'end, after':>15}"
    )
    print("\n".join(unusable))
    print(
        f"  spend + holds - limit, at its worst: {worst_excess} µUSD "
        f"({'never above the limit' if worst_excess <= 0 else 'ABOVE THE LIMIT'})"
    )
    return worst_excess <= 0
