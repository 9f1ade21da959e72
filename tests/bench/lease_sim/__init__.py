"""A discrete simulation of budget leases at scale (issue 12, decision 0018): one org's
UsageLedger serving 100,000 requests per second from 300 locations.

The rules are the Worker's (worker/src/budget/lease.ts, worker/src/ledger/usage-ledger.ts): a lease grant is at
most a quarter of the headroom beside every other hold and at least 4 worst cases (else none:
per-request admission), an isolate asks for room for max(8 worst cases, 2 x its recent
demand), exchanges carry every lease of the org at once and are paced by the ledger to about
400 a second over all isolates (at least 1 s apart, ±10 %), a lease gives back what it holds
beyond twice what it would ask for, the requests that wait for a lease in one isolate share one
exchange, and a refusal is remembered 2 s per isolate.
Round trips are taken as instant; every call is counted.

    .venv/bin/python -m tests.bench.lease_sim            (about a minute on 2 cores)
    .venv/bin/python -m tests.bench.lease_sim --agents   (the agent workload only: about a second)
    .venv/bin/python -m tests.bench.lease_sim --production   (issue 26's traffic only: about 30 s)

It prints ledger calls per second and the budget's state per simulated second, for an org far
from its budget and for one that runs out of it, and checks that recorded spend plus every hold
never exceeds the budget.

Then an agent-shaped workload (budget-clamped output, decision 0035): k Claude Code-like loops
of one user (Opus-class prices, max_tokens 32,000, a growing context) run until refused, with
per-request admission as it was (a worst case that does not fit is refused) and as admission.ts
has it now (the headroom reserved down to the call's worst case at its org's floor, the output
cap lowered to fit). It prints how much of a $25 and a $100 monthly limit is spent before the
first refusal and in all.

Then production-shaped traffic (issue 26): the same org's requests from heavy services, people
at work and tens of thousands of quiet users, with each location's round trip to the object and
the object serving one call at a time. It prints, for today's design and three designs for a
cold request (optimistic start, the same with a deny list, cold-start pools as deployed by
default and with a pool in every isolate), the share of requests
that waited for the ledger and the latency that added, the ledger calls a second by kind, and
the `settled` rows a second per request, per lease batch and per exchange.

Each simulation is a module of its own: scale.py, agents.py, production.py.
"""

from __future__ import annotations

import argparse

from tests.bench.lease_sim.agents import agents
from tests.bench.lease_sim.production import production
from tests.bench.lease_sim.scale import leases_at_scale

__all__ = ["agents", "leases_at_scale", "main", "production"]


def main(argv: list[str] | None = None) -> int:
    about = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m tests.bench.lease_sim", description=about)
    parser.add_argument(
        "--agents", action="store_true", help="only the agent workload (about a second)"
    )
    parser.add_argument(
        "--production",
        action="store_true",
        help="only the production-shaped traffic (issue 26: cold users, round trips)",
    )
    args = parser.parse_args(argv)
    if args.production:
        return 0 if production() else 1
    ok = True
    if not args.agents:
        ok = leases_at_scale()
    ok = agents() and ok
    if not args.agents:
        ok = production() and ok
    return 0 if ok else 1
