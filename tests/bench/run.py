"""`make bench`: what the Worker adds over calling the AI Gateway (emulator) directly, and how
exact the usage ledger stays under concurrency.

Both paths run in the same session on the same machine, with the same request bodies and
the same load generator, so the latency figures are ratios against a baseline measured in
the same run, not absolute claims.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from provision.local.runtime import LocalGateway
from provision.stack.config import resolve_stack
from provision.stack.keys import demo_key, hash_key
from tests.bench import cpu
from tests.delivery import delivery, sse_deltas
from tests.support import E2E_STACK, Emulator, WorkerTestHooks, burst

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LOADGEN = HERE / "loadgen.mjs"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
# At c=1 the tail is workerd's garbage collections, a few every few hundred requests (the gateway
# makes about twice the floor's garbage): a p99 needs thousands of requests to mean anything.
C1_REQUESTS = int(os.environ.get("BENCH_C1_REQUESTS", "3000"))
C1_WARMUP = 500
CONCURRENCY = (1, 32)
# the long answers' rows: content deltas per stream, as long as answers are (the others: 16)
LONG_TOKENS = 200
LONG_RUN = {1: {"requests": 600, "warmup": 100}, 32: {"requests": 1000, "warmup": 100}}


# Delivery: upstream chunks PACE_MS apart, DELIVERY_REQUESTS one at a time per path
PACE_MS = 5
# The floor reaches Workers AI over HTTP, where AI Gateway wants a Cloudflare API token
WORKERS_AI_BENCH_TOKEN = "bench-workers-ai-token"
DELIVERY_REQUESTS = int(os.environ.get("BENCH_DELIVERY_REQUESTS", "30"))


def load(url: str, headers: dict[str, str], body: dict, concurrency: int, **extra: object) -> dict:
    requests = REQUESTS if concurrency > 1 else C1_REQUESTS
    spec = {
        "url": url,
        "headers": headers,
        "body": body,
        "requests": requests,
        "concurrency": concurrency,
        "warmup": min(200, requests // 5) if concurrency > 1 else C1_WARMUP,
        **extra,
    }
    before = cpu.cpu_seconds(url)
    out = subprocess.run(
        ["node", str(LOADGEN), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    got = json.loads(out.stdout)
    after = cpu.cpu_seconds(url)
    # workerd's CPU per request, warm-up included (it ran in the same processes)
    sent = got["requests"] + int(spec["warmup"])  # type: ignore[call-overload]
    got["cpuUs"] = None if before is None or after is None else (after - before) * 1e6 / sent
    return got


def aig_headers(gateway: LocalGateway) -> dict[str, str]:
    """What the gateway sends AI Gateway besides the provider's key, sent on the direct and floor
    paths too, so the emulator does the same work per request on every path (it shares the
    cores): the ratios then measure the Worker alone."""
    return {
        "cf-aig-authorization": f"Bearer {gateway.secrets.ai_gateway_token}",
        "cf-aig-metadata": json.dumps(
            {
                "requestId": "req_0123456789abcdef01234567",
                "userId": "alice",
                "orgId": "demo-corp",
                "keyId": "key_alice_laptop",
            }
        ),
        "cf-aig-custom-cost": json.dumps({"per_token_in": 1.5e-7, "per_token_out": 6e-7}),
        "cf-aig-skip-cache": "true",
    }


def paths(gateway: LocalGateway) -> list[tuple[str, str, dict[str, str], dict, str, dict, bool]]:
    """(name, direct URL, direct headers, direct body, Worker path, Worker body, streams only)
    per provider path: the same answer asked of the emulator's native endpoint directly and
    through the Worker."""
    assert gateway.config is not None and gateway.emulator_url
    config = gateway.config
    base = f"{gateway.emulator_url}/v1/{config.accountId}/{config.gatewayId}"
    keys = gateway.secrets.provider_api_keys
    aig = aig_headers(gateway)
    messages = [{"role": "user", "content": "benchmark emulate:tokens=16"}]
    return [
        (
            "openai",  # pass-through
            f"{base}/openai/chat/completions",
            {
                "content-type": "application/json",
                "authorization": f"Bearer {keys['openai']}",
                **aig,
            },
            {"model": "gpt-4o-mini", "messages": messages},
            "/v1/chat/completions",
            {"model": "openai/gpt-4o-mini", "messages": messages},
            False,
        ),
        (
            "anthropic",  # OpenAI chat <-> Anthropic Messages, both ways
            f"{base}/anthropic/v1/messages",
            {
                "content-type": "application/json",
                "x-api-key": keys["anthropic"],
                "anthropic-version": "2023-06-01",
                **aig,
            },
            {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": messages},
            "/v1/chat/completions",
            {"model": "anthropic/claude-sonnet-4-5", "messages": messages},
            False,
        ),
        (
            "openai+u",  # the client asks for usage: its stream is upstream's own bytes
            f"{base}/openai/chat/completions",
            {
                "content-type": "application/json",
                "authorization": f"Bearer {keys['openai']}",
                **aig,
            },
            {
                "model": "gpt-4o-mini",
                "messages": messages,
                "stream_options": {"include_usage": True},
            },
            "/v1/chat/completions",
            {
                "model": "openai/gpt-4o-mini",
                "messages": messages,
                "stream_options": {"include_usage": True},
            },
            True,
        ),
        (
            "messages",  # Anthropic Messages as Claude Code sends it: passed through
            f"{base}/anthropic/v1/messages",
            {
                "content-type": "application/json",
                "x-api-key": keys["anthropic"],
                "anthropic-version": "2023-06-01",
                **aig,
            },
            {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": messages},
            "/v1/messages",
            {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": messages},
            True,
        ),
        *long_answers(base, keys, aig),
    ]


def long_answers(
    base: str, keys: dict[str, str], aig: dict[str, str]
) -> list[tuple[str, str, dict[str, str], dict, str, dict, bool]]:
    """Streams nearer the length of production answers (LONG_TOKENS deltas, each its own event),
    where what a stream costs per chunk shows: a rewritten one (OpenAI chat, no usage asked) and
    a piped one (Anthropic Messages)."""
    messages = [{"role": "user", "content": f"benchmark emulate:tokens={LONG_TOKENS}"}]
    openai = {
        "content-type": "application/json",
        "authorization": f"Bearer {keys['openai']}",
        **aig,
    }
    anthropic = {
        "content-type": "application/json",
        "x-api-key": keys["anthropic"],
        "anthropic-version": "2023-06-01",
        **aig,
    }
    claude = {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": messages}
    return [
        (
            f"chat-{LONG_TOKENS}",
            f"{base}/openai/chat/completions",
            openai,
            {"model": "gpt-4o-mini", "messages": messages},
            "/v1/chat/completions",
            {"model": "openai/gpt-4o-mini", "messages": messages},
            True,
        ),
        (
            f"msgs-{LONG_TOKENS}",
            f"{base}/anthropic/v1/messages",
            anthropic,
            claude,
            "/v1/messages",
            claude,
            True,
        ),
    ]


def delivery_paths(gateway: LocalGateway) -> list[tuple[str, str, dict[str, str], dict, str, dict]]:
    """Every streaming route's path, as paths() gives them: (name, direct URL, direct headers,
    direct body, Worker path, Worker body), each asked to stream."""
    assert gateway.config is not None and gateway.emulator_url
    config = gateway.config
    base = f"{gateway.emulator_url}/v1/{config.accountId}/{config.gatewayId}"
    openai_headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {gateway.secrets.provider_api_keys['openai']}",
        **aig_headers(gateway),
    }
    prompt = "benchmark emulate:tokens=16"
    responses = {"model": "gpt-4o-mini", "input": prompt}
    run = {"prompt": prompt}
    llama = "@cf/meta/llama-3.1-8b-instruct"
    with_paths = [p[:6] for p in paths(gateway) if not p[0].endswith(f"-{LONG_TOKENS}")] + [
        (
            "responses",
            f"{base}/openai/responses",
            openai_headers,
            responses,
            "/v1/responses",
            responses,
        ),
        # the gateway calls Workers AI through the AI binding; the floor through AI Gateway's
        # HTTP endpoint with a Cloudflare token (same emulator, same stream)
        (
            "wai-run",
            f"{base}/workers-ai/{llama}",
            {**openai_headers, "authorization": f"Bearer {WORKERS_AI_BENCH_TOKEN}"},
            run,
            f"/workers-ai/{llama}",
            run,
        ),
    ]
    return [
        (n, u, h, {**b, "stream": True}, p, {**wb, "stream": True})
        for n, u, h, b, p, wb in with_paths
    ]


@contextmanager
def floor_worker(upstream: str, mode: str = "pass") -> Iterator[str]:
    """worker/bench/floor.mjs: a pass-through Worker in miniflare in front of `upstream`
    ("pass": bodies streamed untouched; "read": both bodies read as a meter must)."""
    process = subprocess.Popen(
        ["node", str(ROOT / "worker" / "bench" / "floor.mjs"), upstream, mode],
        cwd=ROOT / "worker",
        stdin=subprocess.PIPE,  # its end tells the floor its parent is gone
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = json.loads(process.stdout.readline())["url"]
        cpu.register(url, process.pid)
        yield url
    finally:
        cpu.forget(url)
        process.terminate()
        process.wait(timeout=30)


# The tiered rows' tenants: a user on a rate tier (its request rate too high to bind), and one on
# a tier that also caps open requests at 64; key id → the tier's open-request cap
TIERED_KEYS = {"key_bench_tiered": None, "key_bench_capped": 64}


def bench_stack(directory: Path) -> Path:
    """The dev stack, and the tiered rows' users (TIERED_KEYS), each on a tier of its own."""
    stack = yaml.safe_load(resolve_stack("dev").read_text())
    config = stack["config"]
    for key_id, cap in TIERED_KEYS.items():
        name = key_id.removeprefix("key_").replace("_", "-")
        tier: dict[str, int] = {"requests": 1_000_000, "periodSeconds": 60}
        if cap is not None:
            tier["maxConcurrent"] = cap
        config["llm-gateway:rateTiers"][name] = tier
        key = {"id": key_id, "sha256": hash_key(demo_key(key_id)), "created": "2026-01-01"}
        config["llm-gateway:tenants"]["users"].append(
            {
                "id": name,
                "email": f"{name}@demo.example",
                "org": "demo-corp",
                "monthlyLimitUsd": 1000,
                "rateTier": name,
                "keys": [key],
            }
        )
    path = directory / "Pulumi.bench.yaml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    return path


def latency(sections: set[str]) -> int:
    # the Worker's request log lines (one per request) go to a file, not between the figures
    log = Path(tempfile.mkdtemp(prefix="llm-gateway-bench-")) / "worker.log"
    with LocalGateway(bench_stack(log.parent), log_path=log) as gateway:
        assert gateway.config is not None and gateway.emulator_url
        user_key = gateway.demo_keys()["alice"]
        worker_url = gateway.worker_url
        if gateway.runtime_pid is not None:
            cpu.register(worker_url, gateway.runtime_pid)
        worker_headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {user_key}",
            "anthropic-version": "2023-06-01",
        }
        base = f"{gateway.emulator_url}/v1/{gateway.config.accountId}/{gateway.config.gatewayId}"
        with floor_worker(base) as floor_url, floor_worker(base, "read") as read_url:
            if "delivery" in sections:
                measure_delivery(gateway, worker_url, worker_headers, base, floor_url)
            if "throughput" not in sections:
                return 0
            tiered = {
                key_id.removeprefix("key_bench_"): {
                    **worker_headers,
                    "authorization": f"Bearer {demo_key(key_id)}",
                }
                for key_id in TIERED_KEYS
            }
            return measure(gateway, worker_url, worker_headers, tiered, base, floor_url, read_url)


def table_header() -> None:
    header = (
        f"{'path':<10}{'mode':<11}{'conc':>5}  {'p50 direct/floor/gateway ms':>28}  "
        f"{'added p50':>9}  {'p99 floor/gateway':>17}  {'ttfb +':>7}  {'rps floor/read/gateway':>23}  "
        f"{'x floor':>7}  {'x read':>6}  {'x direct':>8}  {'ledger':>6}  {'cpu us floor/read/gateway':>25}"
    )
    print(header)
    print("-" * len(header))


def report(name: str, stream: bool, concurrency: int, got: dict[str, dict]) -> None:
    """One row: the gateway's run against the direct, floor and read runs of the same path."""
    d, f, r, g = got["direct"], got["floor"], got["read"], got["gateway"]
    mode = "streaming" if stream else "non-stream"
    share = g["ledgerShare"]
    print(
        f"{name:<10}{mode:<11}{concurrency:>5}  "
        f"{d['p50']:>8.2f} /{f['p50']:>7.2f} /{g['p50']:>7.2f}  "
        f"{g['p50'] - f['p50']:>9.2f}  {f['p99']:>8.2f} /{g['p99']:>7.2f}  {g['ttfbP50'] - f['ttfbP50']:>7.2f}  "
        f"{f['rps']:>7.0f} /{r['rps']:>6.0f} /{g['rps']:>7.0f}  "
        f"{g['rps'] / f['rps']:>7.2f}  {g['rps'] / r['rps']:>6.2f}  "
        f"{g['rps'] / d['rps']:>8.2f}  "
        f"{'-' if share is None else f'{share:.1%}':>6}  {cpu_column(f, r, g):>25}"
    )


def cpu_column(*runs: dict) -> str:
    """workerd's CPU µs per request of each run ("-" where not measured)."""
    return " /".join("-" if run.get("cpuUs") is None else f"{run['cpuUs']:>5.0f}" for run in runs)


def measure(
    gateway: LocalGateway,
    worker_url: str,
    worker_headers: dict,
    tiered: dict[str, dict],
    base: str,
    floor_url: str,
    read_url: str,
) -> int:
    print(
        f"The gateway against its floor — {REQUESTS} requests per run at c=32 (fewer at c=1), dev "
        f"stack, {os.cpu_count()} cores. direct = the emulator's native endpoint; floor = a "
        "pass-through Worker in the same runtime in front of it (worker/bench/floor.mjs); "
        "read = the same Worker reading both bodies as a meter must (JSON parsed, every stream "
        "chunk seen in JavaScript); gateway = the full path"
    )
    table_header()
    seen: dict[tuple[str, bool, int], dict[str, dict]] = {}

    for stream in (False, True):
        for name, direct_url, direct_headers, direct_body, path, worker_body, streams_only in paths(
            gateway
        ):
            if streams_only and not stream:
                continue
            floor_path = direct_url.removeprefix(base)
            for concurrency in CONCURRENCY:
                runs = {
                    "direct": (direct_url, direct_headers, direct_body),
                    "floor": (f"{floor_url}{floor_path}", direct_headers, direct_body),
                    "read": (f"{read_url}{floor_path}", direct_headers, direct_body),
                    "gateway": (f"{worker_url}{path}", worker_headers, worker_body),
                }
                # a long answer takes ten times as long: fewer of them (a p99 of these means less)
                extra = LONG_RUN[concurrency] if name.endswith(f"-{LONG_TOKENS}") else {}
                got = {
                    label: load(url, headers, {**body, "stream": stream}, concurrency, **extra)
                    for label, (url, headers, body) in runs.items()
                }
                if any(r["errors"] for r in got.values()):
                    errors = {label: r["errors"] for label, r in got.items()}
                    print(f"errors ({name}): {errors}", file=sys.stderr)
                    return 1
                seen[name, stream, concurrency] = got
                report(name, stream, concurrency, got)
    # users on rate tiers, the openai row's requests against its floor: tiered (the tier's request
    # counter, a Rate Limiting binding call) and capped (and an open-request cap of 64, held as
    # slots on leases: decision 0038)
    [(_, _, _, _, path, worker_body, _)] = [p for p in paths(gateway) if p[0] == "openai"]
    for stream in (False, True):
        for concurrency in CONCURRENCY:
            for name, headers in tiered.items():
                body = {**worker_body, "stream": stream}
                got = load(f"{worker_url}{path}", headers, body, concurrency)
                if got["errors"]:
                    print(f"errors ({name}): {got['errors']}", file=sys.stderr)
                    return 1
                report(
                    name,
                    stream,
                    concurrency,
                    {**seen["openai", stream, concurrency], "gateway": got},
                )
    print(
        "added p50 and ttfb + are the gateway's over the floor's (p99 both: at c=1 it is workerd's "
        "garbage collections, BENCH_C1_REQUESTS requests a run); x floor / x read / x direct "
        "are throughput ratios; ledger = the share of requests whose admission awaited a ledger "
        "call (the rest were admitted on this isolate's budget lease); tiered = the openai row's "
        "requests from a user on a rate tier (its request counter, the Rate Limiting binding), capped "
        "= the same with an open-request cap of 64; both against the openai row's floor; cpu us = "
        "the workerd processes' CPU time per request of each path (what Workers bills; the "
        "gateway's includes its ledger's Durable Object, the floors' their whole runtime); "
        f"chat-{LONG_TOKENS} and msgs-{LONG_TOKENS} = answers of {LONG_TOKENS} deltas, rewritten "
        "(no usage asked) and piped, where a stream's cost per chunk shows."
    )
    print(
        "At c=32 every path runs at its throughput limit (2 cores shared by client, emulator and "
        "workerd), so latency there is mostly queueing; the rps ratio is the figure."
    )
    return 0


def delivered(emulator: Emulator, url: str, headers: dict[str, str], body: dict) -> dict:
    """DELIVERY_REQUESTS streams one at a time, each content delta paired with the emulator's
    chunk that carried it: delays (ms) of every delta, and each stream's first content time."""
    got = load(url, headers, body, 1, record=True, requests=DELIVERY_REQUESTS, warmup=5)
    if got["errors"]:
        raise RuntimeError(f"{got['errors']} errors streaming {url}")
    delays: list[float] = []
    first: list[float] = []
    for run in got["recorded"]:
        log_id = run["logId"] or emulator.request_for(run["requestId"])["logId"]
        sent = sse_deltas(emulator.stream(log_id))
        received = sse_deltas((at, piece) for at, piece in run["pieces"])
        measured = delivery(sent, received)
        delays += measured.delays
        first.append(measured.first_received - run["startedAt"])
    return {"delays": sorted(delays), "first": sorted(first)}


def pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, math.floor(p / 100 * len(sorted_values)))]


def measure_delivery(
    gateway: LocalGateway, worker_url: str, worker_headers: dict, base: str, floor_url: str
) -> None:
    """Each streaming route with upstream chunks PACE_MS apart: when each content delta reached
    the client after the provider sent it, and the first content token, floor against gateway."""
    assert gateway.emulator_url
    emulator = Emulator(gateway.emulator_url)
    print(
        f"\nDelivery — upstream chunks {PACE_MS} ms apart, {DELIVERY_REQUESTS} streams one at a "
        "time per path; delay = when the client had a content delta minus when the emulator sent "
        "its chunk (every delta of every stream); first token = from the request's start"
    )
    header = (
        f"{'route':<10}{'delay p50 floor/gateway':>26}{'delay p99 floor/gateway':>26}"
        f"{'first token p50 floor/gateway':>32}{'over floor':>12}"
    )
    print(header)
    print("-" * len(header))
    emulator.http.post(
        "/config", json={"providerKeys": {"workers-ai": WORKERS_AI_BENCH_TOKEN}}
    ).raise_for_status()
    emulator.fault(times=-1, chunkDelayMs=PACE_MS)
    try:
        for name, direct_url, direct_headers, direct_body, path, worker_body in delivery_paths(
            gateway
        ):
            floor = delivered(
                emulator, f"{floor_url}{direct_url.removeprefix(base)}", direct_headers, direct_body
            )
            ours = delivered(emulator, f"{worker_url}{path}", worker_headers, worker_body)
            f50, g50 = pct(floor["first"], 50), pct(ours["first"], 50)
            print(
                f"{name:<10}{pct(floor['delays'], 50):>16.2f} /{pct(ours['delays'], 50):>7.2f}"
                f"{pct(floor['delays'], 99):>18.2f} /{pct(ours['delays'], 99):>7.2f}"
                f"{f50:>24.2f} /{g50:>7.2f}{g50 - f50:>+12.2f}"
            )
    finally:
        emulator.clear_faults()
        emulator.close()


def settled(hooks: WorkerTestHooks, org: str, requests: int) -> dict:
    deadline = time.monotonic() + 30
    while True:
        usage = hooks.usage(org)
        if usage["org"]["requests"] >= requests and usage["openReservations"] == 0:
            return usage
        if time.monotonic() > deadline:
            return usage
        time.sleep(0.1)


def exactness() -> int:
    """The e2e stack's load tenants: 200 concurrent requests, then a budget that admits part."""
    prompt = lambda text: 3 + 4 + math.ceil(len(text.encode()) / 4)  # noqa: E731 (emulator rule)
    cost = lambda p, c: math.ceil((p * 150_000 + c * 600_000) / 1_000_000)  # noqa: E731 (gpt-4o-mini)
    log = Path(tempfile.mkdtemp(prefix="llm-gateway-bench-")) / "worker.log"
    with LocalGateway(E2E_STACK, test_hooks=True, log_path=log) as gateway:
        hooks = WorkerTestHooks(gateway.worker_url)
        url = f"{gateway.openai_base_url}/chat/completions"
        text = "bench exactness emulate:tokens=20"
        statuses = asyncio.run(
            burst(url, "key_loady_main", 200, {"messages": [{"role": "user", "content": text}]})
        )
        usage = settled(hooks, "loadorg", 200)
        expected = 200 * cost(prompt(text), 20)
        print("\nLedger exactness under concurrency (e2e stack)")
        print(
            f"  200 concurrent requests, one user: {statuses.count(200)} served, "
            f"{usage['org']['requests']} recorded; cost recorded {usage['org']['usedMicros']} µUSD, "
            f"sent {expected} µUSD -> {'EXACT' if usage['org']['usedMicros'] == expected else 'MISMATCH'}"
        )

        text = "bench squeeze emulate:tokens=30"
        statuses = asyncio.run(
            burst(
                url,
                "key_cappy_main",
                200,
                {"max_tokens": 40, "messages": [{"role": "user", "content": text}]},
            )
        )
        served = statuses.count(200)
        usage = settled(hooks, "capped", served)
        budget = 2_000
        print(
            f"  budget $0.002000 (2000 µUSD), 200 concurrent requests: {served} served, "
            f"{statuses.count(429)} refused (429); recorded {usage['org']['usedMicros']} µUSD "
            f"-> {'within budget' if usage['org']['usedMicros'] <= budget else 'OVER BUDGET'}"
        )
        hooks.close()
        ok = usage["org"]["usedMicros"] <= budget
    return 0 if ok else 1


# The production-shaped rows (issue 26): an org's quiet users, every request from a user with no
# lease in the (simulated) isolate it reaches: QUIET_USERS users x QUIET_ISOLATES, each pair once.
# quiet = the org with cold-start pools (decision 0039), quiet-off = the same without them.
QUIET_ISOLATES = ("i0", "i1", "i2", "i3")
QUIET_REQUESTS = {
    32: min(REQUESTS, 1000),
    1: min(C1_REQUESTS, 1000),
}  # per run; warm-up a tenth more
QUIET_ORGS = {"quiet": True, "quiet-off": False}


def quiet_pairs(org: str) -> int:
    """(user, isolate) pairs an org's runs use: every run's warm-up and requests, each new."""
    runs = [(False, 32), (False, 1)] + ([(True, 32), (True, 1)] if QUIET_ORGS[org] else [])
    return sum(QUIET_REQUESTS[c] + QUIET_REQUESTS[c] // 10 for _, c in runs)


def quiet_key_id(org: str, i: int) -> str:
    return f"key_{org.replace('-', '_')}_{i:04d}"


def quiet_stack(directory: Path) -> Path:
    """The dev stack and the quiet orgs: enough users that no (user, isolate) pair repeats."""
    stack = yaml.safe_load(resolve_stack("dev").read_text())
    tenants = stack["config"]["llm-gateway:tenants"]
    for org, pools in QUIET_ORGS.items():
        cold = {"isolates": len(QUIET_ISOLATES), "allowanceUsd": 0.01} if pools else False
        tenants["organizations"].append(
            {"id": org, "name": org, "monthlyBudgetUsd": 1_000_000, "coldStart": cold}
        )
        for i in range(math.ceil(quiet_pairs(org) / len(QUIET_ISOLATES))):
            key_id = quiet_key_id(org, i)
            tenants["users"].append(
                {
                    "id": f"{org}-{i:04d}",
                    "email": f"{org}-{i:04d}@demo.example",
                    "org": org,
                    "monthlyLimitUsd": 100,
                    "keys": [
                        {
                            "id": key_id,
                            "sha256": hash_key(demo_key(key_id)),
                            "created": "2026-01-01",
                        }
                    ],
                }
            )
    path = directory / "Pulumi.quiet.yaml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    return path


def production() -> int:
    """Quiet users over several isolates, with and without cold-start pools, against the floors
    of the same path measured in the same run (a test render: x-test-isolate picks the isolate)."""
    log = Path(tempfile.mkdtemp(prefix="llm-gateway-bench-")) / "worker.log"
    with LocalGateway(quiet_stack(log.parent), test_hooks=True, log_path=log) as gateway:
        if gateway.runtime_pid is not None:
            cpu.register(gateway.worker_url, gateway.runtime_pid)
        assert gateway.config is not None and gateway.emulator_url
        base = f"{gateway.emulator_url}/v1/{gateway.config.accountId}/{gateway.config.gatewayId}"
        [(_, direct_url, direct_headers, direct_body, path, worker_body, _)] = [
            p for p in paths(gateway) if p[0] == "openai"
        ]
        with floor_worker(base) as floor_url, floor_worker(base, "read") as read_url:
            print(
                f"\nProduction-shaped rows — quiet users: every request from a user with no lease in "
                f"the isolate it reaches ({len(QUIET_ISOLATES)} simulated isolates, each (user, "
                f"isolate) once; {QUIET_REQUESTS[32]} requests at c=32, {QUIET_REQUESTS[1]} at c=1); "
                "quiet = an org with cold-start pools (decision 0039), quiet-off = without"
            )
            table_header()
            used = dict.fromkeys(QUIET_ORGS, 0)
            for stream in (False, True):
                for concurrency in CONCURRENCY:
                    extra = {
                        "requests": QUIET_REQUESTS[concurrency],
                        "warmup": QUIET_REQUESTS[concurrency] // 10,
                    }
                    floor_path = direct_url.removeprefix(base)
                    runs = {
                        "direct": direct_url,
                        "floor": f"{floor_url}{floor_path}",
                        "read": f"{read_url}{floor_path}",
                    }
                    body = {**direct_body, "stream": stream}
                    got = {
                        label: load(url, direct_headers, body, concurrency, **extra)
                        for label, url in runs.items()
                    }
                    for org, pools in QUIET_ORGS.items():
                        if stream and not pools:
                            continue  # quiet-off is the before: non-streaming shows it
                        pairs = [
                            {
                                "authorization": f"Bearer {demo_key(quiet_key_id(org, i // len(QUIET_ISOLATES)))}",
                                "x-test-isolate": QUIET_ISOLATES[i % len(QUIET_ISOLATES)],
                            }
                            for i in range(
                                used[org], used[org] + extra["requests"] + extra["warmup"]
                            )
                        ]
                        used[org] += len(pairs)
                        worker_headers = {
                            "content-type": "application/json",
                            "anthropic-version": "2023-06-01",
                        }
                        g = load(
                            f"{gateway.worker_url}{path}",
                            worker_headers,
                            {**worker_body, "stream": stream},
                            concurrency,
                            rotate=pairs,
                            **extra,
                        )
                        if any(r["errors"] for r in [*got.values(), g]):
                            print(f"errors ({org}): {g['errors']}", file=sys.stderr)
                            return 1
                        report(org, stream, concurrency, {**got, "gateway": g})
    print(
        "ledger = the share of requests whose admission awaited a ledger call; quiet-off's requests "
        "all do (a cold lease), quiet's are admitted from the isolate's pool."
    )
    return 0


SECTIONS = ("delivery", "throughput", "production", "exactness")


def main(argv: list[str]) -> int:
    """`python -m tests.bench.run [SECTION ...]`: every section of `make bench` by default."""
    sections = set(argv) or set(SECTIONS)
    if unknown := sections - set(SECTIONS):
        print(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    status = latency(sections) if sections & {"delivery", "throughput"} else 0
    status = status or (production() if "production" in sections else 0)
    return status or (exactness() if "exactness" in sections else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
