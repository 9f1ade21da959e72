// Request validation: a wrong body is a 400 naming the parameter, before anything is admitted.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HttpError } from "../src/errors";
import { chatBody, validate } from "../src/schemas";

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
