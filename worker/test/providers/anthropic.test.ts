// The Anthropic module: OpenAI chat → Messages request, Messages → OpenAI completion, the
// Messages stream → OpenAI chunks however its bytes are cut, usage and cost of every token
// kind, and Anthropic's errors → ours.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HttpError } from "../../src/lib/errors";
import { costMicros } from "../../src/pricing/prices";
import { authHeaders } from "../../src/providers/anthropic/endpoint";
import { messagesError } from "../../src/providers/anthropic/errors";
import { JSON_TOOL, messagesRequest } from "../../src/providers/anthropic/request";
import { completion } from "../../src/providers/anthropic/response";
import { translateStream } from "../../src/providers/anthropic/stream";
import { readUsage } from "../../src/providers/anthropic/usage";
import { call, dataOf, encoder, readAll, splitAt, streamOf, WEATHER } from "./support";

describe("request", () => {
  test("system and developer messages become system blocks, the rest alternating turns", () => {
    const request = messagesRequest(
      call({
        messages: [
          { role: "system", content: "Be terse." },
          { role: "developer", content: [{ type: "text", text: "Use metric." }] },
          { role: "user", content: "Hi" },
          { role: "user", content: "Are you there?" },
          { role: "assistant", content: "Yes." },
        ],
      }),
    );
    assert.deepEqual(request.system, [
      { type: "text", text: "Be terse." },
      { type: "text", text: "Use metric." },
    ]);
    assert.deepEqual(request.messages, [
      {
        role: "user",
        content: [
          { type: "text", text: "Hi" },
          { type: "text", text: "Are you there?" },
        ],
      },
      { role: "assistant", content: [{ type: "text", text: "Yes." }] },
    ]);
    assert.equal(request.model, "claude-sonnet-4-5");
    assert.equal(request.max_tokens, 4096, "the stack's bound when the client sets none");
  });

  test("images: data URLs become base64 sources, https URLs url sources, PDFs documents", () => {
    const request = messagesRequest(
      call({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "What is this?" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBOR" } },
              { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
              { type: "image_url", image_url: { url: "data:application/pdf;base64,JVBER" } },
            ],
          },
        ],
      }),
    );
    const [turn] = request.messages as { content: unknown[] }[];
    assert.deepEqual(turn?.content.slice(1), [
      { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBOR" } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
      { type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBER" } },
    ]);
  });

  test("a tool round trip: tools, tool_choice, tool_use and tool_result blocks", () => {
    const request = messagesRequest(
      call({
        tools: [WEATHER],
        tool_choice: { type: "function", function: { name: "get_weather" } },
        parallel_tool_calls: false,
        messages: [
          { role: "user", content: "Weather in Paris?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            ],
          },
          { role: "tool", tool_call_id: "call_1", content: "sunny, 21 °C" },
        ],
      }),
    );
    assert.deepEqual(request.tools, [
      { name: "get_weather", description: "Weather of a city", input_schema: WEATHER.function.parameters },
    ]);
    assert.deepEqual(request.tool_choice, { type: "tool", name: "get_weather", disable_parallel_tool_use: true });
    assert.deepEqual(request.messages, [
      { role: "user", content: [{ type: "text", text: "Weather in Paris?" }] },
      {
        role: "assistant",
        content: [{ type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } }],
      },
      {
        role: "user",
        content: [{ type: "tool_result", tool_use_id: "call_1", content: [{ type: "text", text: "sunny, 21 °C" }] }],
      },
    ]);
  });

  test("tool_choice words map to Anthropic's", () => {
    for (const [openai, anthropic] of [
      ["auto", "auto"],
      ["required", "any"],
      ["none", "none"],
    ] as const) {
      assert.deepEqual(messagesRequest(call({ tools: [WEATHER], tool_choice: openai })).tool_choice, {
        type: anthropic,
      });
    }
  });

  test("response_format becomes one forced tool carrying the schema", () => {
    const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"] };
    const request = messagesRequest(
      call({ response_format: { type: "json_schema", json_schema: { name: "reply", schema } } }),
    );
    assert.deepEqual(request.tool_choice, { type: "tool", name: JSON_TOOL });
    assert.deepEqual((request.tools as { input_schema: unknown }[])[0]?.input_schema, schema);
  });

  test("stop, temperature (clamped to Anthropic's 0–1), top_p, user, stream", () => {
    const request = messagesRequest(
      call({ stop: ["END", "  "], temperature: 1.7, top_p: 0.9, user: "u-1", stream: true }),
    );
    assert.deepEqual(
      [request.stop_sequences, request.temperature, request.top_p, request.metadata, request.stream],
      [["END"], 1, 0.9, { user_id: "u-1" }, true],
    );
  });

  test("what Anthropic cannot do is a 400 naming the parameter", () => {
    for (const [body, param] of [
      [{ n: 2 }, "n"],
      [{ logprobs: true }, "logprobs"],
      [{ messages: [{ role: "function", content: "x" }] }, "messages[0].role"],
      [{ messages: [{ role: "user", content: [{ type: "input_audio" }] }] }, "messages[0].content[0].type"],
      [
        { messages: [{ role: "assistant", tool_calls: [{ id: "c", function: { name: "f", arguments: "{oops" } }] }] },
        "messages[0].tool_calls[0].function.arguments",
      ],
      [{ tools: [WEATHER], response_format: { type: "json_object" } }, "response_format"],
    ] as const) {
      assert.throws(
        () => messagesRequest(call(body as Record<string, unknown>)),
        (err: unknown) => err instanceof HttpError && err.status === 400 && err.param === param,
        param,
      );
    }
  });

  test("the key goes as x-api-key with the API version, never as Authorization", () => {
    assert.deepEqual(authHeaders(call({})), { "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test" });
  });
});

describe("response", () => {
  const message = (content: unknown[], stop_reason: string, usage: Record<string, number>) =>
    JSON.stringify({
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content,
      stop_reason,
      usage,
    });

  test("text blocks are the content; usage counts every input kind", () => {
    const { text, usage } = completion(
      message(
        [
          { type: "text", text: "Hello " },
          { type: "text", text: "there" },
        ],
        "end_turn",
        {
          input_tokens: 10,
          output_tokens: 4,
          cache_creation_input_tokens: 100,
          cache_read_input_tokens: 1000,
        },
      ),
      false,
    );
    const body = JSON.parse(text);
    assert.equal(body.object, "chat.completion");
    assert.deepEqual(body.choices[0].message, { role: "assistant", content: "Hello there", refusal: null });
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.deepEqual(usage, { promptTokens: 1110, completionTokens: 4, cachedTokens: 1000, cacheWriteTokens: 100 });
    assert.deepEqual(body.usage.prompt_tokens_details, { cached_tokens: 1000, cache_write_tokens: 100 });
    assert.equal(body.usage.total_tokens, 1114);
  });

  test("tool_use blocks are tool calls with their input as JSON arguments", () => {
    const { text } = completion(
      message([{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }], "tool_use", {
        input_tokens: 5,
        output_tokens: 7,
      }),
      false,
    );
    const choice = JSON.parse(text).choices[0];
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.content, null);
    assert.deepEqual(choice.message.tool_calls, [
      { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
    ]);
  });

  test("a structured-output answer is the JSON tool's input as the content", () => {
    const { text } = completion(
      message([{ type: "tool_use", id: "t", name: JSON_TOOL, input: { answer: "42" } }], "tool_use", {
        input_tokens: 1,
        output_tokens: 1,
      }),
      true,
    );
    const choice = JSON.parse(text).choices[0];
    assert.deepEqual(
      [choice.message.content, choice.finish_reason, choice.message.tool_calls],
      ['{"answer":"42"}', "stop", undefined],
    );
  });

  test("stop reasons map to finish reasons", () => {
    for (const [stop, finish] of [
      ["max_tokens", "length"],
      ["stop_sequence", "stop"],
      ["refusal", "content_filter"],
    ]) {
      const { text } = completion(
        message([{ type: "text", text: "x" }], stop as string, { input_tokens: 1, output_tokens: 1 }),
        false,
      );
      assert.equal(JSON.parse(text).choices[0].finish_reason, finish);
    }
  });
});

// A Messages stream with text, a tool call, cache tokens and a ping, as Anthropic sends it.
function sse(type: string, data: object): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}
const STREAM = [
  sse("message_start", {
    message: {
      id: "msg_9",
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content: [],
      stop_reason: null,
      usage: { input_tokens: 12, output_tokens: 1, cache_creation_input_tokens: 30, cache_read_input_tokens: 40 },
    },
  }),
  sse("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
  sse("ping", {}),
  sse("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Café " } }),
  sse("content_block_delta", { index: 0, delta: { type: "text_delta", text: "😀 ok" } }),
  sse("content_block_stop", { index: 0 }),
  sse("content_block_start", {
    index: 1,
    content_block: { type: "tool_use", id: "toolu_2", name: "get_weather", input: {} },
  }),
  sse("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: "" } }),
  sse("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '{"city":' } }),
  sse("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '"Paris"}' } }),
  sse("content_block_stop", { index: 1 }),
  sse("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 25 } }),
  sse("message_stop", {}),
].join("");

async function translate(pieces: Uint8Array[], clientWantsUsage = true, jsonAnswer = false) {
  const { stream, done } = translateStream(streamOf(pieces), { clientWantsUsage, jsonAnswer });
  return { out: await readAll(stream), metered: await done };
}

describe("stream", () => {
  test("becomes OpenAI chunks: role, content, a tool call with argument pieces, finish, usage, [DONE]", async () => {
    const { out, metered } = await translate([encoder.encode(STREAM)]);
    const events = dataOf(out);
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1) as {
      choices: { delta: Record<string, unknown>; finish_reason: string | null }[];
      usage?: unknown;
    }[];
    const deltas = chunks.filter((c) => c.choices.length > 0).map((c) => c.choices[0]?.delta);
    assert.deepEqual(deltas, [
      { role: "assistant", content: "" },
      { content: "Café " },
      { content: "😀 ok" },
      { tool_calls: [{ index: 0, id: "toolu_2", type: "function", function: { name: "get_weather", arguments: "" } }] },
      { tool_calls: [{ index: 0, function: { arguments: "" } }] },
      { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] },
      {},
    ]);
    assert.equal(chunks.filter((c) => c.choices.length > 0).at(-1)?.choices[0]?.finish_reason, "tool_calls");
    assert.deepEqual(chunks.at(-1)?.usage, {
      prompt_tokens: 82,
      completion_tokens: 25,
      total_tokens: 107,
      prompt_tokens_details: { cached_tokens: 40, cache_write_tokens: 30 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
    assert.deepEqual(metered.usage, { promptTokens: 82, completionTokens: 25, cachedTokens: 40, cacheWriteTokens: 30 });
  });

  test("gives the same chunks however the bytes are cut, even inside a character", async () => {
    const bytes = encoder.encode(STREAM);
    const whole = await translate([bytes]);
    const strip = (s: string) => s.replace(/"created":\d+/g, ""); // a new second may begin
    for (let cut = 1; cut < bytes.length; cut++) {
      const split = await translate(splitAt(bytes, cut, Math.min(bytes.length - 1, cut + 3)));
      assert.equal(strip(split.out), strip(whole.out), `cut at ${cut}`);
      assert.deepEqual(split.metered, whole.metered, `cut at ${cut}`);
    }
  });

  test("no usage chunk unless the client asked; the usage is metered all the same", async () => {
    const { out, metered } = await translate([encoder.encode(STREAM)], false);
    assert.ok(!dataOf(out).some((e) => typeof e === "object" && (e as { choices: unknown[] }).choices.length === 0));
    assert.equal(metered.usage?.completionTokens, 25);
  });

  test("a structured-output stream is content, not a tool call", async () => {
    const json = STREAM.replaceAll('"name":"get_weather"', `"name":"${JSON_TOOL}"`).replace(
      /event: content_block_(start|delta|stop)\ndata: \{"type":"content_block_\w+","index":0[^\n]*\n\n/g,
      "",
    );
    const { out } = await translate([encoder.encode(json)], false, true);
    const content = dataOf(out)
      .filter((e): e is { choices: { delta: { content?: string; tool_calls?: unknown } }[] } => typeof e === "object")
      .map((e) => e.choices[0]?.delta)
      .filter((d) => d?.tool_calls === undefined)
      .map((d) => d?.content ?? "")
      .join("");
    assert.equal(content, '{"city":"Paris"}');
  });

  test("an error event becomes an OpenAI error the SDKs raise", async () => {
    const failing = `${STREAM.split("event: content_block_start")[0]}${sse("error", { error: { type: "overloaded_error", message: "Overloaded" } })}`;
    const { out, metered } = await translate([encoder.encode(failing)]);
    assert.deepEqual(dataOf(out).at(-1), {
      error: { message: "Overloaded", type: "overloaded_error", code: "overloaded_error" },
    });
    assert.equal(metered.usage?.completionTokens, 1, "what message_start reported");
  });
});

describe("usage and cost", () => {
  test("cost prices input, cache reads, cache writes and output each at their own price", () => {
    const tokens = readUsage({
      input_tokens: 100,
      output_tokens: 10,
      cache_creation_input_tokens: 300,
      cache_read_input_tokens: 600,
    });
    assert.ok(tokens);
    const price = call({}).price;
    assert.equal(costMicros(tokens, price), Math.ceil((100 * 3e6 + 600 * 3e5 + 300 * 3.75e6 + 10 * 15e6) / 1e6));
  });

  test("malformed usage reads as none (the cost is then estimated)", () => {
    assert.equal(readUsage({ output_tokens: 3 }), null);
    assert.equal(readUsage(undefined), null);
  });
});

describe("errors", () => {
  const anthropicError = (status: number, type: string, message = "m") =>
    new Response(JSON.stringify({ type: "error", error: { type, message } }), { status });

  test("each documented status maps to the one our clients expect", async () => {
    for (const [status, type, expected, code] of [
      [400, "invalid_request_error", 400, "invalid_request_error"],
      [401, "authentication_error", 502, "provider_auth_error"],
      [403, "permission_error", 502, "provider_auth_error"],
      [404, "not_found_error", 404, "not_found_error"],
      [413, "request_too_large", 413, "request_too_large"],
      [429, "rate_limit_error", 429, "rate_limit_exceeded"],
      [500, "api_error", 502, "upstream_error"],
      [529, "overloaded_error", 503, "provider_overloaded"],
    ] as const) {
      const error = await messagesError(anthropicError(status, type));
      assert.deepEqual([error.status, error.code], [expected, code], `${status} ${type}`);
    }
  });

  test("AI Gateway's own errors are told apart from Anthropic's", async () => {
    const body = {
      success: false,
      error: [{ code: 2003, message: "Rate limited" }],
      name: "AiGatewayError",
      internalCode: 2003,
      description: "Rate limited",
    };
    const error = await messagesError(new Response(JSON.stringify(body), { status: 429 }));
    assert.deepEqual([error.status, error.code], [429, "gateway_rate_limited"]);
  });

  test("AI Gateway's request timeout is a 504 upstream_timeout, not a gateway error (issue 13.6)", async () => {
    const body = { success: false, name: "AiGatewayError", httpCode: 504, internalCode: 2995, description: "timeout" };
    const error = await messagesError(new Response(JSON.stringify(body), { status: 504 }));
    assert.deepEqual([error.status, error.code], [504, "upstream_timeout"]);
    const other = await messagesError(
      new Response(JSON.stringify({ ...body, httpCode: 400, internalCode: 2005 }), { status: 400 }),
    );
    assert.deepEqual([other.status, other.code], [502, "gateway_error"]);
  });
});
