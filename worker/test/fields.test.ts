// What the gateway checks of a request body (worker/src/request/fields.ts, body.ts): only the fields it
// reads itself, each mistake named with the right code; everything else passes unchanged for
// the provider to judge. And whatever JSON arrives, no check and no translation throws anything
// but a 400.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { MAX_JSON_DEPTH, MAX_JSON_ITEMS } from "../src/generated/contract";
import { HttpError } from "../src/lib/errors";
import { messagesRequest } from "../src/providers/anthropic/request";
import { runInputs } from "../src/providers/workers-ai/request";
import { checkJsonShape, readJsonBody } from "../src/request/body";
import { chatFields, countTokensFields, messagesFields, responsesFields, runFields } from "../src/request/fields";
import { call } from "./providers/support";

const HELLO = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
const CLAUDE = { model: "claude-sonnet-4-6", max_tokens: 10, messages: [{ role: "user", content: "hi" }] };

function refusal(check: (body: Record<string, unknown>) => unknown, body: Record<string, unknown>): HttpError {
  try {
    check(body);
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, 400);
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(body).slice(0, 200)}`);
}

const said = (err: HttpError) => [err.param, err.code];

describe("what the gateway reads is checked, each mistake named with its own code", () => {
  test("a cap that was sent but is wrong is invalid, never missing", () => {
    for (const param of ["max_tokens", "max_completion_tokens"]) {
      for (const value of [0, -1, 2 ** 60 + 1]) {
        const code = Number.isSafeInteger(value) ? "invalid_value" : "invalid_type";
        assert.deepEqual(said(refusal(chatFields, { ...HELLO, [param]: value })), [param, code], `${param}=${value}`);
      }
      for (const value of [1.5, "10", true, [], {}, 1e308, Number.POSITIVE_INFINITY]) {
        assert.deepEqual(said(refusal(chatFields, { ...HELLO, [param]: value })), [param, "invalid_type"]);
      }
      assert.doesNotThrow(() => chatFields({ ...HELLO, [param]: null }));
      assert.doesNotThrow(() => chatFields({ ...HELLO, [param]: Number.MAX_SAFE_INTEGER }));
    }
    assert.deepEqual(said(refusal(chatFields, { ...HELLO, n: 129 })), ["n", "invalid_value"]);
    assert.deepEqual(said(refusal(messagesFields, { ...CLAUDE, max_tokens: 0 })), ["max_tokens", "invalid_value"]);
    assert.deepEqual(said(refusal(messagesFields, { ...CLAUDE, max_tokens: 1.5 })), ["max_tokens", "invalid_type"]);
    assert.deepEqual(said(refusal(responsesFields, { max_output_tokens: -5 })), ["max_output_tokens", "invalid_value"]);
    assert.deepEqual(said(refusal(runFields, { max_tokens: "many" })), ["max_tokens", "invalid_type"]);
  });

  test("missing_required_parameter only when the field is missing", () => {
    assert.deepEqual(said(refusal(chatFields, { model: "m" })), ["messages", "missing_required_parameter"]);
    assert.deepEqual(said(refusal(chatFields, { ...HELLO, messages: "hi" })), ["messages", "invalid_type"]);
    const { max_tokens: _, ...noCap } = CLAUDE;
    assert.deepEqual(said(refusal(messagesFields, noCap)), ["max_tokens", "missing_required_parameter"]);
    const { model: __, ...noModel } = CLAUDE;
    assert.deepEqual(said(refusal(messagesFields, noModel)), ["model", "missing_required_parameter"]);
    assert.deepEqual(said(refusal(countTokensFields, { messages: [] })), ["model", "missing_required_parameter"]);
    assert.deepEqual(said(refusal(messagesFields, { ...CLAUDE, model: 7 })), ["model", "invalid_type"]);
    assert.deepEqual(said(refusal(chatFields, { ...HELLO, model: ["gpt-4o"] })), ["model", "invalid_type"]);
  });

  test("the stream flags the meter reads", () => {
    assert.deepEqual(said(refusal(chatFields, { ...HELLO, stream: "yes" })), ["stream", "invalid_type"]);
    assert.deepEqual(said(refusal(chatFields, { ...HELLO, stream_options: "usage" })), [
      "stream_options",
      "invalid_type",
    ]);
    assert.deepEqual(said(refusal(chatFields, { ...HELLO, stream_options: { include_usage: 1 } })), [
      "stream_options.include_usage",
      "invalid_type",
    ]);
    assert.deepEqual(said(refusal(messagesFields, { ...CLAUDE, stream: 1 })), ["stream", "invalid_type"]);
  });

  test("stored state a Responses request continues is a string (or a conversation object)", () => {
    assert.deepEqual(said(refusal(responsesFields, { previous_response_id: 7 })), [
      "previous_response_id",
      "invalid_type",
    ]);
    assert.deepEqual(said(refusal(responsesFields, { conversation: ["c"] })), ["conversation", "invalid_type"]);
    assert.doesNotThrow(() => responsesFields({ conversation: { id: "conv_1" }, previous_response_id: null }));
  });
});

describe("everything else goes to the provider as it came", () => {
  const chat: [string, Record<string, unknown>][] = [
    ["an unknown role", { ...HELLO, messages: [{ role: "wizard", content: "x" }] }],
    ["an unknown content part", { ...HELLO, messages: [{ role: "user", content: [{ type: "video", url: "x" }] }] }],
    ["a tool of a kind shipped next month", { ...HELLO, tools: [{ type: "magic", magic: {} }] }],
    ["a function name with spaces", { ...HELLO, tools: [{ type: "function", function: { name: "get weather" } }] }],
    ["an unknown tool_choice", { ...HELLO, tool_choice: "sometimes" }],
    ["an unknown response_format", { ...HELLO, response_format: { type: "yaml" } }],
    ["temperature above 2", { ...HELLO, temperature: 2.5 }],
    ["five stop sequences", { ...HELLO, stop: ["a", "b", "c", "d", "e"] }],
    ["a field nobody documented yet", { ...HELLO, verbosity: "low", web_search_options: {} }],
  ];
  for (const [name, body] of chat) {
    test(`chat: ${name}`, () => assert.deepEqual(chatFields(structuredClone(body)), body));
  }

  test("messages: Claude Code's body (mid-conversation system message, adaptive thinking, output_config)", () => {
    const body = {
      ...CLAUDE,
      system: [{ type: "text", text: "You are Claude Code.", cache_control: { type: "ephemeral" } }],
      messages: [
        { role: "user", content: [{ type: "text", text: "say hi" }] },
        { role: "system", content: [{ type: "text", text: "# Environment", cache_control: { type: "ephemeral" } }] },
      ],
      thinking: { type: "adaptive", display: "omitted" },
      context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
      output_config: { effort: "medium", format: { type: "json_schema", schema: { type: "object" } } },
      metadata: { user_id: "{}" },
      tools: [
        { name: "Bash", input_schema: { type: "object" } },
        { type: "web_search_20250305", name: "web_search" },
      ],
      temperature: 1.5,
    };
    assert.deepEqual(messagesFields(structuredClone(body)), body);
  });

  test("responses: Codex's body (client_metadata, reasoning, include, namespaced tools)", () => {
    const body = {
      model: "gpt-5",
      stream: true,
      input: [
        { type: "additional_tools", role: "developer", tools: [{ type: "namespace", name: "functions", tools: [] }] },
        { type: "message", role: "user", content: [{ type: "input_text", text: "say hi" }] },
      ],
      reasoning: { effort: "low", summary: "auto", context: "all_turns" },
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "k",
      client_metadata: { session_id: "s" },
      text: { verbosity: "low" },
      store: false,
    };
    assert.deepEqual(responsesFields(structuredClone(body)), body);
  });
});

describe("a body's shape is bounded before it is parsed, without recursion", () => {
  const nested = (depth: number, open = "[", close = "]") => `${open.repeat(depth)}${close.repeat(depth)}`;

  test(`${MAX_JSON_DEPTH} levels pass, one more is request_too_deep, however deep it goes`, () => {
    assert.doesNotThrow(() => checkJsonShape(nested(MAX_JSON_DEPTH)));
    for (const depth of [MAX_JSON_DEPTH + 1, 5_000, 10_000, 1_000_000]) {
      const err = refusal(() => checkJsonShape(nested(depth)), {});
      assert.equal(err.code, "request_too_deep");
    }
    const schema = `{"tools":[{"input_schema":${'{"properties":{"a":'.repeat(10_000)}{}${"}}".repeat(10_000)}}]}`;
    assert.equal(refusal(() => checkJsonShape(schema), {}).code, "request_too_deep");
  });

  test(`${MAX_JSON_ITEMS} items in one array or object pass, one more is request_too_many_items`, () => {
    const items = (n: number) => `[${Array.from({ length: n }, () => "1").join(",")}]`;
    assert.doesNotThrow(() => checkJsonShape(items(MAX_JSON_ITEMS)));
    assert.equal(refusal(() => checkJsonShape(items(MAX_JSON_ITEMS + 1)), {}).code, "request_too_many_items");
    const keys = `{${Array.from({ length: MAX_JSON_ITEMS + 1 }, (_, i) => `"k${i}":1`).join(",")}}`;
    assert.equal(refusal(() => checkJsonShape(keys), {}).code, "request_too_many_items");
    // spread over many arrays, the same count is fine
    assert.doesNotThrow(() => checkJsonShape(`[${Array.from({ length: 3 }, () => items(MAX_JSON_ITEMS)).join(",")}]`));
  });

  test("brackets, commas and escaped quotes inside strings are text", () => {
    const text = JSON.stringify({ a: `${"[{".repeat(500)}\\"${",".repeat(20_000)}"\\\\` });
    assert.doesNotThrow(() => checkJsonShape(text));
  });

  /** The depth and the largest container of a parsed value, by plain recursion (small values). */
  function reference(value: unknown): { depth: number; items: number } {
    if (value === null || typeof value !== "object") return { depth: 0, items: 0 };
    const children = Array.isArray(value) ? value : Object.values(value);
    let depth = 0;
    let items = children.length;
    for (const child of children) {
      const inner = reference(child);
      depth = Math.max(depth, inner.depth);
      items = Math.max(items, inner.items);
    }
    return { depth: depth + 1, items };
  }

  test("agrees with the parsed value's own depth, for any JSON wrapped any number of levels deep", () => {
    const wrap = fc.array(fc.constantFrom("array", "object"), { maxLength: MAX_JSON_DEPTH + 20 });
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), wrap, (value, levels) => {
        let wrapped: unknown = value;
        for (const level of levels) wrapped = level === "array" ? [wrapped, "]", '"'] : { "}{": wrapped };
        const text = JSON.stringify(wrapped);
        const expected = reference(wrapped).depth <= MAX_JSON_DEPTH;
        let accepted = true;
        try {
          checkJsonShape(text);
        } catch (err) {
          assert.ok(err instanceof HttpError && err.code === "request_too_deep", String(err));
          accepted = false;
        }
        assert.equal(accepted, expected);
      }),
      { numRuns: 500 },
    );
  });

  test("readJsonBody: a body nested 10,000 deep is a 400 before it is parsed; the size comes along", async () => {
    const deep = new Request("https://gw/", { method: "POST", body: `{"a":${nested(10_000)}}` });
    await assert.rejects(readJsonBody(deep), (err: unknown) => err instanceof HttpError && err.status === 400);
    const text = JSON.stringify({ model: "m", messages: [{ role: "user", content: "héllo" }] });
    const { body, bytes } = await readJsonBody(new Request("https://gw/", { method: "POST", body: text }));
    assert.equal(body.model, "m");
    assert.equal(bytes, new TextEncoder().encode(text).length);
  });
});

/** As JSON would carry it (fast-check also makes objects without a prototype). */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("any JSON: passed through unchanged, or a 400; translations too", () => {
  const checks = { chatFields, responsesFields, messagesFields, countTokensFields, runFields };
  for (const [name, check] of Object.entries(checks)) {
    test(`${name}: any object is accepted as is, or refused with a 400`, () => {
      fc.assert(
        fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), (value) => {
          const body = plain(value) as Record<string, unknown>;
          try {
            assert.deepEqual(check(structuredClone(body)), body);
          } catch (err) {
            assert.ok(err instanceof HttpError && err.status === 400, String(err));
          }
        }),
        { numRuns: 1_000 },
      );
    });
  }

  const anyMessages = fc.array(
    fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record({
        role: fc.oneof(fc.constantFrom("system", "developer", "user", "assistant", "tool"), fc.jsonValue()),
        content: fc.jsonValue({ maxDepth: 3 }),
        tool_calls: fc.jsonValue({ maxDepth: 3 }),
      }),
    ),
    { maxLength: 5 },
  );
  test("a chat body the gateway forwards never crashes a translation: it is translated or a 400", () => {
    fc.assert(
      fc.property(anyMessages, fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), (messages, extra) => {
        for (const translate of [messagesRequest, runInputs]) {
          try {
            translate(call(chatFields(plain({ ...extra, messages }) as Record<string, unknown>)));
          } catch (err) {
            assert.ok(err instanceof HttpError && err.status === 400, `${translate.name}: ${err}`);
          }
        }
      }),
      { numRuns: 1_000 },
    );
  });
});
