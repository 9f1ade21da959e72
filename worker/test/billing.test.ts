// Spend beyond tokens (billing.ts): priced or refused. The dev stack's generated settings:
// web_search $0.01 a call (10 a request unless bounded, each adding up to 20,000 input tokens),
// web_fetch up to 50,000 a call; flex half, priority double.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HttpError } from "../src/lib/errors";
import {
  hourCacheAt,
  hourCacheModels,
  requested,
  tierMicros,
  toolName,
  toolsMicros,
  withTools,
  worstExtraMicros,
} from "../src/pricing/extras";
import { readExtras } from "../src/providers/anthropic/usage";
import { responsesExtras } from "../src/providers/openai/output";

function refusedFor(kind: string, body: Record<string, unknown>): HttpError {
  try {
    requested(kind, body, false);
  } catch (err) {
    assert.ok(err instanceof HttpError && err.status === 400 && err.code === "unpriced_feature", String(err));
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(body)}`);
}

describe("what a request may spend beyond tokens", () => {
  test("a billed tool counts its own bound, else the stack's; the client's own tools count nothing", () => {
    const tools = [
      { type: "web_search_20250305", name: "web_search", max_uses: 3 },
      { name: "get_weather", input_schema: {} },
      { type: "bash_20250124", name: "bash" },
      { type: "tool_search_tool_regex_20251119", name: "tool_search_tool_regex" },
    ];
    assert.deepEqual(requested("messages", { tools }, false).tools, { web_search: 3 });
    assert.deepEqual(requested("responses", { tools: [{ type: "web_search_preview" }] }, false).tools, {
      web_search: 10,
    });
    assert.deepEqual(requested("responses", { tools: [{ type: "web_search" }], max_tool_calls: 2 }, false).tools, {
      web_search: 2,
    });
    assert.deepEqual(requested("responses", { tools: [{ type: "function", name: "f" }, { type: "mcp" }] }, false), {
      tools: {},
      inputTokens: 0,
      tier: "auto",
    });
    assert.deepEqual(requested("chat", { web_search_options: {} }, false).tools, { web_search: 1 });
  });

  test("what the calls may read counts as input: the stack's bound per call, or a fetch's own", () => {
    assert.equal(
      requested("messages", { tools: [{ type: "web_search_20250305", max_uses: 3 }] }, false).inputTokens,
      60_000,
    );
    const fetch = { type: "web_fetch_20250910", name: "web_fetch", max_uses: 2, max_content_tokens: 5_000 };
    assert.equal(requested("messages", { tools: [fetch] }, false).inputTokens, 10_000);
    assert.equal(
      requested("messages", { tools: [{ ...fetch, max_content_tokens: undefined }] }, false).inputTokens,
      100_000,
    );
    assert.equal(requested("chat", { web_search_options: {} }, false).inputTokens, 20_000);
    assert.equal(requested("chat", {}, false).inputTokens, 0);
  });

  test("a billed tool, a tier or a run the stack cannot price is refused, naming it", () => {
    assert.equal(refusedFor("messages", { tools: [{ type: "code_execution_20250825", name: "x" }] }).param, "tools[0]");
    assert.equal(refusedFor("responses", { tools: [{ type: "quantum_annealer" }] }).param, "tools[0]");
    assert.equal(refusedFor("responses", { service_tier: "scale" }).param, "service_tier");
    assert.equal(refusedFor("responses", { background: true }).param, "background");
    // an org that allows unpriced features is charged their tokens only
    assert.deepEqual(requested("responses", { tools: [{ type: "quantum_annealer" }], service_tier: "scale" }, true), {
      tools: {},
      inputTokens: 0,
      tier: "scale",
    });
  });

  test("a 1-hour cache write is found wherever a block asks for it, and needs its price", () => {
    const hour = { type: "ephemeral", ttl: "1h" };
    const five = { type: "ephemeral" };
    const at = (body: Record<string, unknown>) => hourCacheAt(body);
    assert.equal(at({ cache_control: hour }), "cache_control");
    assert.equal(at({ system: [{ type: "text", text: "s", cache_control: hour }] }), "system[0].cache_control");
    assert.equal(
      at({
        tools: [
          { name: "t", cache_control: five },
          { name: "u", cache_control: hour },
        ],
      }),
      "tools[1].cache_control",
    );
    const messages = [
      {
        role: "user",
        content: [
          { type: "text", text: "x" },
          { type: "text", text: "y", cache_control: hour },
        ],
      },
    ];
    assert.equal(at({ messages }), "messages[0].content[1].cache_control");
    assert.equal(
      at({ system: "plain", messages: [{ role: "user", content: "ttl 1h" }], cache_control: five }),
      undefined,
    );
    const asked = requested("messages", { messages }, false);
    const withHour = { in: 1, out: 1, cachedIn: 1, cacheWrite: 1, cacheWrite1h: 2 };
    const without = { in: 1, out: 1, cachedIn: 1, cacheWrite: 1 };
    const prices: Record<string, typeof without> = { a: withHour, b: without, c: withHour };
    const priceOf = (m: string) => prices[m] ?? without;
    // a fallback without the price never serves it; a model without it refuses the request
    assert.deepEqual(hourCacheModels(asked, ["a", "b", "c"], priceOf, false), ["a", "c"]);
    assert.throws(() => hourCacheModels(asked, ["b", "a"], priceOf, false), /1-hour prompt cache write/);
    assert.deepEqual(hourCacheModels(asked, ["b", "a"], priceOf, true), ["b", "a"]);
  });

  test("tiers: asked by name, auto and standard_only mapped to the stack's tiers", () => {
    assert.equal(requested("responses", {}, false).tier, "auto");
    assert.equal(requested("responses", { service_tier: "priority" }, false).tier, "priority");
    assert.equal(requested("messages", { service_tier: "standard_only" }, false).tier, "standard");
  });
});

describe("what it costs", () => {
  test("tool calls at their price; a tier as a multiple of the tokens' cost, rounded up", () => {
    assert.equal(toolsMicros({ web_search: 3, file_search: 2 }), 3 * 10_000 + 2 * 2_500);
    assert.equal(tierMicros(1_001, "priority"), 1_001);
    assert.equal(tierMicros(1_001, "flex"), -500); // half, the half cent rounded up to the client's cost
    assert.equal(tierMicros(1_001, "default"), 0);
    assert.equal(tierMicros(1_001, null), 0);
    assert.equal(
      worstExtraMicros(1_000, { tools: { web_search: 2 }, inputTokens: 0, tier: "priority" }),
      1_000 + 20_000,
    );
    assert.equal(worstExtraMicros(1_000, { tools: {}, inputTokens: 0, tier: "flex" }), 0); // never below the tokens
  });

  test("the provider's own report: Anthropic's server_tool_use and service_tier, OpenAI's tool items", () => {
    assert.deepEqual(
      readExtras({ server_tool_use: { web_search_requests: 2, web_fetch_requests: 0 }, service_tier: "priority" }),
      {
        tools: { web_search: 2 },
        tier: "priority",
      },
    );
    const response = {
      service_tier: "flex",
      output: [
        { type: "web_search_call", id: "ws_1" },
        { type: "web_search_call", id: "ws_2" },
        { type: "code_interpreter_call", container_id: "cntr_1" },
        { type: "code_interpreter_call", container_id: "cntr_1" },
        { type: "message", content: [] },
      ],
    };
    assert.deepEqual(responsesExtras(response), { tools: { web_search: 2, code_interpreter: 1 }, tier: "flex" });
    assert.deepEqual(withTools({ extras: { tools: {}, tier: "default" } }, { web_search: 1 }).extras, {
      tools: { web_search: 1 },
      tier: "default",
    });
  });

  test("tool names lose their date; web_search_preview is web search", () => {
    assert.equal(toolName("web_search_20250305"), "web_search");
    assert.equal(toolName("web_search_preview_2025_03_11"), "web_search");
    assert.equal(toolName("custom"), null);
    assert.equal(toolName(undefined), null);
  });
});
