"""Per-request facts and the admin metrics (issue 14): after a scripted mix of answers, cache
hits, streams, Anthropic messages, 4xx, 5xx and a fallback, /admin/metrics equals what was sent,
per org, user, model, route and day; every request left one Analytics Engine data point and one
structured log line without the key or the prompt (tests/fixtures/Pulumi.metrics.yaml).

Expected costs come from the stack's prices written out here and the usage the SDKs returned,
never from the code under test."""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import pytest

from provision.local.runtime import LocalGateway
from tests.admin_support import Admin
from tests.support import ROOT, Emulator, WorkerTestHooks, key, openai_client

STACK = ROOT / "tests" / "fixtures" / "Pulumi.metrics.yaml"
MINI, GPT4O, CLAUDE = "openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-sonnet-4-6"
PRICES = {MINI: (150_000, 600_000), GPT4O: (2_500_000, 10_000_000), CLAUDE: (3_000_000, 15_000_000)}
CHAT, MESSAGES = "/v1/chat/completions", "/v1/messages"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory):
    """The metrics stack, its Worker's log lines kept in a file (the log test reads them)."""
    log = tmp_path_factory.mktemp("metrics") / "worker.log"
    with LocalGateway(STACK, test_hooks=True, log_path=log) as running:
        yield running


def cost(model: str, prompt: int, completion: int) -> int:
    price_in, price_out = PRICES[model]
    return math.ceil((prompt * price_in + completion * price_out) / 1_000_000)


@dataclass
class Sent:
    """One request as the test counts it."""

    org: str
    user: str
    model: str
    route: str
    status: int
    cost: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cache_hit: bool = False
    fallback: bool = False
    stream: bool = False
    request_id: str = ""
    admission: str = ""  # from the answer's server-timing: lease, pool or ledger


@dataclass
class Mix:
    sent: list[Sent] = field(default_factory=list)
    slow_user: str = "cy"


def unique(text: str) -> str:
    return f"{text} {secrets.token_hex(5)}"


def chat(gw: LocalGateway, key_id: str, model: str, content: str, **kwargs: Any):
    client = openai_client(gw.openai_base_url, key_id)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], max_tokens=200, **kwargs
    )


@pytest.fixture(scope="module")
def admin(gateway: LocalGateway):
    client = Admin(gateway)
    yield client
    client.http.close()


@pytest.fixture(scope="module")
def mix(gateway: LocalGateway, ledger: WorkerTestHooks) -> Mix:
    """The scripted traffic, sent once for the module (the upstream fixture is per test)."""
    upstream = Emulator(gateway.emulator_url)
    upstream.clear_faults()
    out = Mix()
    sent = out.sent

    def answered(org: str, user: str, raw: Any, route: str = CHAT, **flags: Any) -> None:
        body = raw.parse()
        model = raw.headers["x-gateway-model"]
        hit = flags.pop("cache_hit", False)
        usage = body.usage
        sent.append(
            Sent(
                org,
                user,
                model,
                route,
                raw.status_code,
                cost=0 if hit else cost(model, usage.prompt_tokens, usage.completion_tokens),
                tokens_in=usage.prompt_tokens,
                tokens_out=usage.completion_tokens,
                cache_hit=hit,
                request_id=raw.headers["x-request-id"],
                admission=raw.headers["server-timing"].split(";")[0],
                **flags,
            )
        )

    # ana (north): three answers, the third asked again and answered from the cache
    for n in (7, 12):
        answered(
            "north", "ana", chat(gateway, "key_ana_main", MINI, unique(f"hi emulate:tokens={n}"))
        )
    cached_prompt = unique("the same question emulate:tokens=9")
    answered("north", "ana", chat(gateway, "key_ana_main", MINI, cached_prompt))
    again = chat(gateway, "key_ana_main", MINI, cached_prompt)
    assert again.headers["cf-aig-cache-status"] == "HIT"
    answered("north", "ana", again, cache_hit=True)
    # ana: a stream with its usage
    client = openai_client(gateway.openai_base_url, "key_ana_main")
    raw = client.chat.completions.with_raw_response.create(
        model=MINI,
        messages=[{"role": "user", "content": unique("stream emulate:tokens=16")}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = list(raw.parse())[-1].usage
    sent.append(
        Sent(
            "north",
            "ana",
            MINI,
            CHAT,
            200,
            cost=cost(MINI, usage.prompt_tokens, usage.completion_tokens),
            tokens_in=usage.prompt_tokens,
            tokens_out=usage.completion_tokens,
            stream=True,
            request_id=raw.headers["x-request-id"],
            admission=raw.headers["server-timing"].split(";")[0],
        )
    )
    # ana: a bad body (400) and an upstream 500 with no fallback for Claude
    bad = httpx.post(
        f"{gateway.worker_url}{CHAT}",
        headers={"authorization": f"Bearer {key('key_ana_main')}"},
        json={"model": MINI, "messages": "not a list"},
    )
    assert bad.status_code == 400
    # refused before its model was read: counted under no model
    sent.append(Sent("north", "ana", "", CHAT, 400, request_id=bad.headers["x-request-id"]))
    upstream.fault(match={"model": CLAUDE, "metadata": {"userId": "ana"}}, status=500)
    failed = httpx.post(
        f"{gateway.worker_url}{CHAT}",
        headers={"authorization": f"Bearer {key('key_ana_main')}"},
        json={"model": CLAUDE, "messages": [{"role": "user", "content": unique("fail")}]},
    )
    assert failed.status_code >= 500
    sent.append(
        Sent(
            "north",
            "ana",
            CLAUDE,
            CHAT,
            failed.status_code,
            request_id=failed.headers["x-request-id"],
        )
    )

    # ben (north): gpt-4o fails, its fallback answers; then Anthropic Messages through the SDK
    upstream.fault(match={"model": GPT4O, "metadata": {"userId": "ben"}}, status=503)
    fell_back = chat(gateway, "key_ben_main", GPT4O, unique("fallback emulate:tokens=5"))
    assert (
        fell_back.headers["x-gateway-model"] == MINI
        and fell_back.headers["x-gateway-attempts"] == "2"
    )
    answered("north", "ben", fell_back, fallback=True)
    claude = anthropic.Anthropic(
        base_url=gateway.worker_url, api_key=key("key_ben_main"), max_retries=0
    )
    raw = claude.messages.with_raw_response.create(
        model=CLAUDE,
        max_tokens=100,
        messages=[{"role": "user", "content": unique("hello emulate:tokens=11")}],
    )
    message = raw.parse()
    sent.append(
        Sent(
            "north",
            "ben",
            CLAUDE,
            MESSAGES,
            200,
            cost=cost(CLAUDE, message.usage.input_tokens, message.usage.output_tokens),
            tokens_in=message.usage.input_tokens,
            tokens_out=message.usage.output_tokens,
            request_id=raw.headers["x-request-id"],
            admission=raw.headers["server-timing"].split(";")[0],
        )
    )
    # ben's revoked CI key: refused before any tenant is known (not in any org's metrics)
    revoked = httpx.post(
        f"{gateway.worker_url}{CHAT}",
        headers={"authorization": f"Bearer {key('key_ben_ci')}"},
        json={"model": MINI, "messages": [{"role": "user", "content": "x"}]},
    )
    assert revoked.status_code == 401
    out.unauthenticated = revoked.headers["x-request-id"]  # type: ignore[attr-defined]

    # cy (south): one slow answer (the emulator holds it 300 ms) and one Anthropic stream
    upstream.fault(match={"metadata": {"userId": "cy"}}, delayMs=300)
    answered("south", "cy", chat(gateway, "key_cy_main", CLAUDE, unique("slow emulate:tokens=8")))
    with claude.with_options(api_key=key("key_cy_main")).messages.stream(
        model=CLAUDE,
        max_tokens=100,
        messages=[{"role": "user", "content": unique("stream emulate:tokens=10")}],
    ) as message_stream:
        final = message_stream.get_final_message()
        stream_id = message_stream.response.headers["x-request-id"]
    sent.append(
        Sent(
            "south",
            "cy",
            CLAUDE,
            MESSAGES,
            200,
            cost=cost(CLAUDE, final.usage.input_tokens, final.usage.output_tokens),
            tokens_in=final.usage.input_tokens,
            tokens_out=final.usage.output_tokens,
            stream=True,
            request_id=stream_id,
        )
    )
    upstream.clear_faults()
    upstream.close()
    ledger.quiesce()
    return out


def expected(rows: list[Sent]) -> dict[str, int]:
    return {
        "requests": len(rows),
        "errors4xx": sum(400 <= r.status < 500 for r in rows),
        "errors5xx": sum(r.status >= 500 for r in rows),
        "cacheHits": sum(r.cache_hit for r in rows),
        "fallbacks": sum(r.fallback for r in rows),
        "streams": sum(r.stream for r in rows),
        "tokensIn": sum(r.tokens_in for r in rows),
        "tokensOut": sum(r.tokens_out for r in rows),
        "costMicros": sum(r.cost for r in rows),
    }


def figures(entry: dict[str, Any]) -> dict[str, int]:
    return {name: entry[name] for name in expected([])}


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def test_totals_per_org_user_model_route_and_day_equal_what_was_sent(admin: Admin, mix: Mix):
    body = admin.get("/admin/metrics")
    assert figures(body["totals"]) == expected(mix.sent)
    for org in ("north", "south"):
        [entry] = [o for o in body["byOrg"] if o["orgId"] == org]
        assert figures(entry) == expected([s for s in mix.sent if s.org == org]), org
    for user in ("ana", "ben", "cy"):
        [entry] = [u for u in body["byUser"] if u["userId"] == user]
        assert figures(entry) == expected([s for s in mix.sent if s.user == user]), user
    by_model = {m["model"]: m for m in body["byModel"]}
    assert set(by_model) == {s.model for s in mix.sent if s.model}
    for model, entry in by_model.items():
        assert figures(entry) == expected([s for s in mix.sent if s.model == model]), model
    by_route = {r["route"]: r for r in body["byRoute"]}
    for route in (CHAT, MESSAGES):
        assert figures(by_route[route]) == expected([s for s in mix.sent if s.route == route]), (
            route
        )
    [day] = [d for d in body["byDay"] if d["day"] == today()]
    assert figures(day) == expected(mix.sent)
    assert sum(d["requests"] for d in body["byDay"]) == len(mix.sent)


def test_rates_and_money_match_the_counts(admin: Admin, mix: Mix):
    body = admin.get("/admin/metrics", params={"org": "north"})
    north = [s for s in mix.sent if s.org == "north"]
    [org] = body["byOrg"]
    assert org["errorRate"] == round(sum(s.status >= 400 for s in north) / len(north), 4)
    assert org["cacheHitRate"] == round(1 / len(north), 4)
    assert org["fallbackRate"] == round(1 / len(north), 4)
    # spend against budget is the ledger's money: what the answers cost
    assert org["spentMicros"] == sum(s.cost for s in north)
    assert (org["monthlyBudgetMicros"], org["monthlyBudgetUsd"]) == (500_000_000, "500.000000")
    assert [u["userId"] for u in body["byUser"]] == ["ana", "ben"]  # the org filter holds


def test_latency_percentiles_come_from_measured_times(admin: Admin, mix: Mix):
    """One of cy's two answers waited 300 ms upstream: the slow end of its percentiles says
    so; ana's fast answers do not."""
    body = admin.get("/admin/metrics", params={"user": "cy"})
    [cy] = body["byUser"]
    assert cy["upstreamMs"]["p99"] >= 200  # the 200–500 ms bucket
    assert cy["upstreamMs"]["p50"] < 200  # the other answer
    assert cy["latencyMs"]["p99"] >= cy["upstreamMs"]["p99"]
    # the gateway's own share is small beside a 300 ms upstream wait
    assert cy["overheadMs"]["p99"] is not None and cy["overheadMs"]["p99"] < cy["upstreamMs"]["p99"]
    assert cy["ttftMs"]["p50"] is not None  # one stream
    ana = admin.get("/admin/metrics", params={"user": "ana"})["byUser"][0]
    assert ana["latencyMs"]["p50"] < 200
    assert ana["ttftMs"]["p50"] is not None and ana["ttftMs"]["p50"] <= ana["latencyMs"]["p99"]


def test_a_day_range_and_an_empty_day(admin: Admin, mix: Mix):
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    body = admin.get("/admin/metrics", params={"from": yesterday, "to": today()})
    assert [d["day"] for d in body["byDay"]] == [yesterday, today()]
    assert body["byDay"][0]["requests"] == 0 and body["byDay"][1]["requests"] == len(mix.sent)
    only_yesterday = admin.get("/admin/metrics", params={"from": yesterday, "to": yesterday})
    assert only_yesterday["totals"]["requests"] == 0
    assert only_yesterday["totals"]["latencyMs"] == {"p50": None, "p95": None, "p99": None}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-13-01", "to": "2026-12-02"}, "invalid_day"),
        ({"from": "2026-12-02"}, "invalid_range"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "invalid_range"),
        ({"from": "2026-01-01", "to": "2026-12-31"}, "invalid_range"),
        ({"month": "2026-12", "from": "2026-12-01", "to": "2026-12-02"}, "invalid_range"),
        ({"org": "nowhere"}, "organization_not_found"),
        ({"user": "__proto__"}, "user_not_found"),
    ],
)
def test_bad_ranges_and_filters_are_named(admin: Admin, params: dict[str, str], code: str):
    response = admin.request("GET", "/admin/metrics", params=params)
    assert response.status_code in (400, 404)
    assert response.json()["error"]["code"] == code


def test_key_status_counts(admin: Admin, mix: Mix):
    """A key that expires in 2099 is active; one that expired in 2025 is expired."""
    body = admin.get("/admin/metrics")
    assert body["keyStatus"] == {"active": 4, "revoked": 1, "suspended": 0, "expired": 1}
    assert body["activeKeys"] == 4


def test_every_request_left_one_analytics_engine_data_point(gateway: LocalGateway, mix: Mix):
    points = httpx.post(f"{gateway.worker_url}/__test/analytics", json={}).json()["points"]
    by_request = Counter(p["blobs"][6] for p in points)
    for s in mix.sent:
        assert by_request[s.request_id] == 1, s
        [point] = [p for p in points if p["blobs"][6] == s.request_id]
        assert point["indexes"] == [s.org]
        assert point["blobs"][:5] == [s.org, s.user, point["blobs"][2], s.model, s.route]
        assert point["doubles"][0] == s.status
        assert point["doubles"][6] == s.cost  # costMicros
        assert point["dataset"] == "llm_gateway_metrics_requests"
        # how its budget was admitted: on a lease, a cold-start pool, or a ledger call, as its
        # answer's server-timing said; a request refused before (a bad body) never was, one the
        # provider failed was
        if s.admission:
            assert point["blobs"][7] == s.admission, s
        else:
            admitted = s.status == 200 or s.status >= 500
            assert point["blobs"][7] in ({"lease", "pool", "ledger"} if admitted else {""}), s
    # the revoked key's 401 is a data point without a tenant
    [refused] = [p for p in points if p["blobs"][6] == mix.unauthenticated]  # type: ignore[attr-defined]
    assert refused["blobs"][0] == "" and refused["doubles"][0] == 401
    assert refused["blobs"][7] == ""


def test_tokens_used_header_on_answers(gateway: LocalGateway):
    raw = chat(gateway, "key_ana_main", MINI, unique("count me emulate:tokens=6"))
    usage = raw.parse().usage
    assert raw.headers["x-gateway-tokens-used"] == str(usage.total_tokens)
    assert raw.headers["x-gateway-tokens-in"] == str(usage.prompt_tokens)
    assert raw.headers["x-gateway-tokens-out"] == str(usage.completion_tokens)


def test_log_lines_hold_no_key_and_a_prompt_only_where_the_org_opted_in(
    gateway: LocalGateway, mix: Mix
):
    """One structured line per request with its id; never a key; the prompt only for south
    (logPrompts), never for north."""
    lines = [
        json.loads(line) for line in gateway.logs().splitlines() if '"event":"request"' in line
    ]
    ids: dict[str, int] = defaultdict(int)
    for line in lines:
        assert "gw_live_" not in json.dumps(line)
        ids[line["requestId"]] += 1
        if line["orgId"] == "north":
            assert "prompt" not in line and "emulate:tokens" not in json.dumps(line)
    assert all(ids[s.request_id] == 1 for s in mix.sent)
    south = [line for line in lines if line["orgId"] == "south"]
    assert len(south) == 2 and all("emulate:tokens" in line["prompt"] for line in south)
