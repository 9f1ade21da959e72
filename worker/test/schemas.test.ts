// Request validation: a wrong body is a 400 naming the parameter, before anything is admitted.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { HttpError } from "../src/errors";
import { chatBody, messagesBody, responsesBody, validate } from "../src/schemas";

const HELLO = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

function rejected(body: unknown): HttpError {
  try {
    validate(chatBody, body);
  } catch (err) {
    assert.ok(err instanceof HttpError);
    assert.equal(err.status, 400);
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(body)}`);
}

describe("chat body", () => {
  test("a valid body passes through with unknown fields kept", () => {
    const body = { ...HELLO, temperature: 0.2, response_format: { type: "json_object" }, stream: true, n: 2 };
    assert.deepEqual(validate(chatBody, body), body);
  });

  test("missing or empty messages is missing_required_parameter", () => {
    for (const body of [{ model: "m" }, { ...HELLO, messages: [] }, { ...HELLO, messages: "hi" }]) {
      const error = rejected(body);
      assert.deepEqual([error.param, error.code], ["messages", "missing_required_parameter"]);
      assert.equal(error.message, "'messages' is required and must be a non-empty array.");
    }
  });

  test("a tool-call round trip validates (an assistant turn with tool_calls has no content)", () => {
    const body = {
      ...HELLO,
      messages: [
        { role: "user", content: "weather in Paris?" },
        {
          role: "assistant",
          tool_calls: [{ id: "call_1", type: "function", function: { name: "w", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny" },
      ],
    };
    assert.deepEqual(validate(chatBody, body), body);
  });

  test("a message that is not an object names its index", () => {
    const error = rejected({ ...HELLO, messages: [{ role: "user", content: "a" }, "b"] });
    assert.deepEqual([error.param, error.code], ["messages[1]", "invalid_type"]);
  });

  const LIMITS: Record<string, number> = {
    max_tokens: Number.MAX_SAFE_INTEGER,
    max_completion_tokens: Number.MAX_SAFE_INTEGER,
    n: 128,
  };
  for (const [param, max] of Object.entries(LIMITS)) {
    test(`${param} must be an integer from 1 to ${max} (or null)`, () => {
      for (const value of [0, -1, 1.5, "10", true, 1e308, max + 1, Number.POSITIVE_INFINITY]) {
        const error = rejected({ ...HELLO, [param]: value });
        assert.deepEqual([error.param, error.message], [param, `'${param}' must be an integer from 1 to ${max}.`]);
      }
      assert.doesNotThrow(() => validate(chatBody, { ...HELLO, [param]: max }));
      assert.doesNotThrow(() => validate(chatBody, { ...HELLO, [param]: null }));
      assert.doesNotThrow(() => validate(chatBody, { ...HELLO, [param]: 3 }));
    });
  }

  test("stream must be a boolean, stream_options an object", () => {
    assert.equal(rejected({ ...HELLO, stream: "yes" }).param, "stream");
    assert.equal(rejected({ ...HELLO, stream_options: "usage" }).param, "stream_options");
    assert.equal(
      rejected({ ...HELLO, stream_options: { include_usage: "yes" } }).param,
      "stream_options.include_usage",
    );
  });
});

// Issue 13, defect 2: the documented shape of a chat body, each mistake named by its parameter.
describe("chat body shape", () => {
  const user = (content: unknown) => ({ ...HELLO, messages: [{ role: "user", content }] });
  const cases: [string, unknown, string][] = [
    ["an unknown role", { ...HELLO, messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
    ["a role that is not a string", { ...HELLO, messages: [{ role: 7, content: "x" }] }, "messages[0].role"],
    ["user content that is a number", user(42), "messages[0].content"],
    ["user content that is null", user(null), "messages[0].content"],
    ["an unknown content part", user([{ type: "video", url: "x" }]), "messages[0].content[0].type"],
    ["a text part without text", user([{ type: "text" }]), "messages[0].content[0].text"],
    [
      "an image part without a url",
      user([{ type: "image_url", image_url: {} }]),
      "messages[0].content[0].image_url.url",
    ],
    [
      "a system message with an image",
      { ...HELLO, messages: [{ role: "system", content: [{ type: "image_url" }] }] },
      "messages[0].content[0].type",
    ],
    [
      "a tool message without tool_call_id",
      { ...HELLO, messages: [{ role: "tool", content: "42" }] },
      "messages[0].tool_call_id",
    ],
    [
      "a tool call without a function name",
      { ...HELLO, messages: [{ role: "assistant", tool_calls: [{ id: "c", function: { arguments: "{}" } }] }] },
      "messages[0].tool_calls[0].function.name",
    ],
    [
      "too many messages",
      { ...HELLO, messages: Array.from({ length: 10_001 }, () => ({ role: "user", content: "x" })) },
      "messages",
    ],
    ["tools that are not an array", { ...HELLO, tools: {} }, "tools"],
    ["a tool of an unknown type", { ...HELLO, tools: [{ type: "magic" }] }, "tools[0].type"],
    [
      "a function name with spaces",
      { ...HELLO, tools: [{ type: "function", function: { name: "get weather" } }] },
      "tools[0].function.name",
    ],
    [
      "function parameters that are a string",
      { ...HELLO, tools: [{ type: "function", function: { name: "f", parameters: "{}" } }] },
      "tools[0].function.parameters",
    ],
    ["an unknown tool_choice", { ...HELLO, tool_choice: "sometimes" }, "tool_choice"],
    ["an unknown response_format", { ...HELLO, response_format: { type: "yaml" } }, "response_format.type"],
    [
      "json_schema without a name",
      { ...HELLO, response_format: { type: "json_schema", json_schema: {} } },
      "response_format.json_schema.name",
    ],
    ["temperature above 2", { ...HELLO, temperature: 2.5 }, "temperature"],
    ["temperature as a string", { ...HELLO, temperature: "hot" }, "temperature"],
    ["top_p above 1", { ...HELLO, top_p: 1.5 }, "top_p"],
    ["presence_penalty below -2", { ...HELLO, presence_penalty: -3 }, "presence_penalty"],
    ["top_logprobs above 20", { ...HELLO, top_logprobs: 21 }, "top_logprobs"],
    ["a fractional seed", { ...HELLO, seed: 1.5 }, "seed"],
    ["five stop sequences", { ...HELLO, stop: ["a", "b", "c", "d", "e"] }, "stop"],
    ["a user that is not a string", { ...HELLO, user: 7 }, "user"],
  ];
  for (const [name, body, param] of cases) {
    test(`${name}: 400 naming ${param}`, () => {
      assert.equal(rejected(body).param, param);
    });
  }

  test("what SDKs send validates: parts, tool round trips, nulls, refusals, developer messages", () => {
    const body = {
      ...HELLO,
      messages: [
        { role: "developer", content: [{ type: "text", text: "be brief" }] },
        {
          role: "user",
          content: [
            { type: "text", text: "see" },
            { type: "image_url", image_url: { url: "data:," } },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: "c1", content: [{ type: "text", text: "42" }] },
        { role: "assistant", content: [{ type: "refusal", refusal: "no" }] },
      ],
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
      tool_choice: { type: "function", function: { name: "f" } },
      stop: "\n",
      temperature: 0,
      seed: 7,
      response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } },
    };
    assert.deepEqual(validate(chatBody, body), body);
  });
});

// Whatever JSON arrives, validation answers a 400 naming a parameter or passes the body through
// unchanged: it never throws anything else (no 500) and never alters what it accepts.
/** As JSON would carry it (fast-check also makes objects without a prototype). */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("chat body, property-based", () => {
  test("any JSON value: accepted as is, or a 400 in OpenAI's shape", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        try {
          assert.deepEqual(plain(validate(chatBody, value)), plain(value));
        } catch (err) {
          assert.ok(err instanceof HttpError, String(err));
          assert.equal(err.status, 400);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  const part = fc.oneof(
    fc.record({ type: fc.constant("text"), text: fc.string() }),
    fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: fc.webUrl() }) }),
  );
  const messages = fc.array(
    fc.oneof(
      fc.record({ role: fc.constantFrom("system", "developer"), content: fc.string() }),
      fc.record({ role: fc.constant("user"), content: fc.oneof(fc.string(), fc.array(part, { maxLength: 3 })) }),
      fc.record({ role: fc.constant("assistant"), content: fc.oneof(fc.string(), fc.constant(null)) }),
      fc.record({ role: fc.constant("tool"), content: fc.string(), tool_call_id: fc.string() }),
    ),
    { minLength: 1, maxLength: 6 },
  );
  const body = fc.record(
    {
      model: fc.string(),
      messages,
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
      top_p: fc.double({ min: 0, max: 1, noNaN: true }),
      max_tokens: fc.integer({ min: 1, max: 1_000_000 }),
      n: fc.integer({ min: 1, max: 128 }),
      stream: fc.boolean(),
      stop: fc.array(fc.string(), { maxLength: 4 }),
    },
    { requiredKeys: ["messages"] },
  );

  test("every documented body is accepted unchanged", () => {
    fc.assert(
      fc.property(body, (b) => {
        assert.deepEqual(plain(validate(chatBody, b)), plain(b));
      }),
      { numRuns: 1_000 },
    );
  });

  test("a documented body with one numeric parameter out of range names that parameter", () => {
    const outOfRange = fc.oneof(
      fc.record({ param: fc.constant("temperature"), value: fc.double({ min: 2.0001, max: 1e300, noNaN: true }) }),
      fc.record({ param: fc.constant("top_p"), value: fc.double({ min: -1e300, max: -0.0001, noNaN: true }) }),
      fc.record({
        param: fc.constant("max_tokens"),
        value: fc.oneof(fc.constant(0), fc.constant(1e308), fc.double({ min: 1.1, max: 2.9 })),
      }),
      fc.record({ param: fc.constant("n"), value: fc.integer({ min: 129, max: 1_000_000 }) }),
    );
    fc.assert(
      fc.property(body, outOfRange, (b, { param, value }) => {
        assert.equal(rejected({ ...b, [param]: value }).param, param);
      }),
      { numRuns: 500 },
    );
  });
});

// Issue 13, defect 2: Anthropic's Messages and OpenAI's Responses bodies, by their documents.
describe("messages and responses body shapes", () => {
  const claude = { model: "claude-sonnet-4-6", max_tokens: 10, messages: [{ role: "user", content: "hi" }] };
  const refusedAt = (schema: Parameters<typeof validate>[0], body: unknown): string | null => {
    try {
      validate(schema, body);
    } catch (err) {
      assert.ok(err instanceof HttpError);
      assert.equal(err.status, 400);
      return err.param;
    }
    assert.fail(`accepted ${JSON.stringify(body)}`);
  };
  const messagesCases: [string, unknown, string][] = [
    ["a system role in messages", { ...claude, messages: [{ role: "system", content: "x" }] }, "messages[0].role"],
    ["content that is a number", { ...claude, messages: [{ role: "user", content: 1 }] }, "messages[0].content"],
    [
      "an unknown block",
      { ...claude, messages: [{ role: "user", content: [{ type: "video" }] }] },
      "messages[0].content[0].type",
    ],
    [
      "a tool_result without tool_use_id",
      { ...claude, messages: [{ role: "user", content: [{ type: "tool_result" }] }] },
      "messages[0].content[0].tool_use_id",
    ],
    [
      "a tool_use with a string input",
      {
        ...claude,
        messages: [{ role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: "{}" }] }],
      },
      "messages[0].content[0].input",
    ],
    ["a system of images", { ...claude, system: [{ type: "image", source: { type: "base64" } }] }, "system[0].type"],
    ["a tool without a name", { ...claude, tools: [{ input_schema: { type: "object" } }] }, "tools[0].name"],
    ["temperature above 1", { ...claude, temperature: 1.5 }, "temperature"],
    ["a negative top_k", { ...claude, top_k: -1 }, "top_k"],
    ["stop_sequences that are a string", { ...claude, stop_sequences: "END" }, "stop_sequences"],
  ];
  for (const [name, body, param] of messagesCases) {
    test(`messages: ${name} names ${param}`, () => assert.equal(refusedAt(messagesBody, body), param));
  }

  test("messages: what Claude Code and the SDKs send validates", () => {
    const body = {
      ...claude,
      system: [{ type: "text", text: "You are Claude Code.", cache_control: { type: "ephemeral" } }],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "read it" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "AA==" } },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "hm", signature: "s" },
            { type: "tool_use", id: "t1", name: "Read", input: { path: "a" } },
          ],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "text" }] },
      ],
      tools: [
        { name: "Read", description: "read a file", input_schema: { type: "object" } },
        { type: "web_search_20250305", name: "web_search" },
      ],
      temperature: 1,
      stop_sequences: ["\n\nHuman:"],
      metadata: { user_id: "u" },
    };
    assert.deepEqual(validate(messagesBody, body), body);
  });

  const responsesCases: [string, unknown, string][] = [
    ["an item that is a string", { model: "gpt-4o-mini", input: ["hi"] }, "input[0]"],
    ["an unknown role", { model: "gpt-4o-mini", input: [{ role: "wizard", content: "x" }] }, "input[0].role"],
    ["temperature above 2", { model: "gpt-4o-mini", input: "x", temperature: 3 }, "temperature"],
  ];
  for (const [name, body, param] of responsesCases) {
    test(`responses: ${name} names ${param}`, () => assert.equal(refusedAt(responsesBody, body), param));
  }

  test("responses: messages, function call outputs and reasoning items validate", () => {
    const body = {
      model: "gpt-4o-mini",
      input: [
        { role: "developer", content: "be brief" },
        { role: "user", content: [{ type: "input_text", text: "hi" }] },
        { type: "function_call_output", call_id: "c", output: "42" },
        { type: "reasoning", id: "rs_1", summary: [] },
      ],
      temperature: 0.5,
    };
    assert.deepEqual(validate(responsesBody, body), body);
  });
});
