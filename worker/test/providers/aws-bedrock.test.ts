// The Bedrock module: AWS's event stream decoded at every cut point and refused on a bad
// checksum, OpenAI chat → Converse, a Converse answer and stream → OpenAI's, the usage (cache
// reads and writes by duration) and its cost, SigV4 signing checked by the emulator's own
// verifier, and Bedrock's errors → ours. The frames are written by the emulator's encoder
// (node's zlib CRC), an implementation apart from the decoder's.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { encodeMessage, eventMessage, exceptionMessage } from "../../local/emulator/eventstream";
import { checkSignature } from "../../local/emulator/providers/bedrock-auth";
import type { HttpError } from "../../src/lib/errors";
import { costMicros } from "../../src/pricing/prices";
import { credential } from "../../src/providers/aws-bedrock/endpoint";
import { bedrockError } from "../../src/providers/aws-bedrock/errors";
import { EventStreamDecoder } from "../../src/providers/aws-bedrock/eventstream";
import { anthropicEvents, invokeBody, isClaude } from "../../src/providers/aws-bedrock/invoke";
import { converseRequest, JSON_TOOL } from "../../src/providers/aws-bedrock/request";
import { completion } from "../../src/providers/aws-bedrock/response";
import { translateStream } from "../../src/providers/aws-bedrock/stream";
import { readUsage } from "../../src/providers/aws-bedrock/usage";
import type { ChatCall } from "../../src/providers/types";
import { call as baseCall, dataOf, readAll, splitAt, streamOf, WEATHER } from "./support";

const SONNET = { in: 3_000_000, out: 15_000_000, cachedIn: 300_000, cacheWrite: 3_750_000, cacheWrite1h: 6_000_000 };
const MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

function call(body: Record<string, unknown>, overrides: Partial<ChatCall> = {}): ChatCall {
  return baseCall(body, {
    model: `aws-bedrock/${MODEL}`,
    upstreamModel: MODEL,
    provider: "aws-bedrock",
    price: SONNET,
    ...overrides,
  });
}

/** A copy of `bytes` with the byte at `at` xored with `mask`. */
function flipped(bytes: Uint8Array, at: number, mask: number): Uint8Array {
  const out = bytes.slice();
  out[at] = (out[at] ?? 0) ^ mask;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const USAGE = { inputTokens: 11, outputTokens: 3, totalTokens: 14, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 };

function textStream(usage: Record<string, unknown> = USAGE): Uint8Array {
  return concat([
    eventMessage("messageStart", { p: "abc", role: "assistant" }),
    eventMessage("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Hello" }, p: "ab" }),
    eventMessage("contentBlockDelta", { contentBlockIndex: 0, delta: { text: " wörld" }, p: "abcdef" }),
    eventMessage("contentBlockStop", { contentBlockIndex: 0, p: "a" }),
    eventMessage("messageStop", { p: "abcd", stopReason: "end_turn" }),
    eventMessage("metadata", { metrics: { latencyMs: 9 }, p: "ab", usage }),
  ]);
}

describe("event stream decoder", () => {
  const frames = [
    eventMessage("messageStart", { role: "assistant" }),
    eventMessage("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "héllo" } }),
    exceptionMessage("throttlingException", "Slow down"),
  ];
  const bytes = concat(frames);
  const expected = new EventStreamDecoder().push(bytes);

  test("whole messages come out with their headers and payloads", () => {
    assert.equal(expected.length, 3);
    assert.equal(expected[0]?.headers[":event-type"], "messageStart");
    assert.equal(expected[2]?.headers[":message-type"], "exception");
    assert.equal(expected[2]?.headers[":exception-type"], "throttlingException");
    assert.deepEqual(JSON.parse(new TextDecoder().decode(expected[1]?.payload)), {
      contentBlockIndex: 0,
      delta: { text: "héllo" },
    });
  });

  test("the same messages at every cut point, and byte by byte", () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const decoder = new EventStreamDecoder();
      const got = splitAt(bytes, cut).flatMap((piece) => decoder.push(piece));
      assert.deepEqual(got, expected, `cut at ${cut}`);
      assert.equal(decoder.pending(), 0);
    }
    const decoder = new EventStreamDecoder();
    const got = [...bytes].flatMap((b) => decoder.push(Uint8Array.of(b)));
    assert.deepEqual(got, expected);
  });

  test("a stream cut mid-message keeps the rest pending, never a half message", () => {
    const decoder = new EventStreamDecoder();
    const cut = (frames[0]?.length ?? 0) + 5;
    assert.equal(decoder.push(bytes.slice(0, cut)).length, 1);
    assert.equal(decoder.pending(), 5);
  });

  /** What a decoder makes of `bytes` in one push: the messages, and why it stopped. */
  const decoded = (bytes: Uint8Array) => {
    const decoder = new EventStreamDecoder();
    const messages = decoder.push(bytes);
    return { messages, failure: decoder.failure, later: decoder.push(frames[0] ?? new Uint8Array(0)) };
  };

  test("a corrupted message checksum, prelude checksum or length stops the decoder", () => {
    const first = frames[0]?.length ?? 0;
    const payload = decoded(flipped(bytes, first + 40, 0x01)); // inside the second message's payload
    assert.equal(payload.messages.length, 1, "the message before it is handed out");
    assert.match(payload.failure ?? "", /checksum does not match/);
    assert.deepEqual(payload.later, [], "nothing after a corrupt message is read");
    const prelude = decoded(flipped(bytes, 3, 0x01)); // the first message's length
    assert.deepEqual(prelude.messages, []);
    assert.match(prelude.failure ?? "", /prelude checksum/);
    const own = decoded(flipped(bytes, first - 1, 0xff)); // the first message's own CRC
    assert.match(own.failure ?? "", /checksum does not match/);
    assert.equal(decoded(bytes).failure, null);
  });

  test("at every cut, the messages before a corrupt one come out and the decoder stops at it", () => {
    const corrupt = flipped(bytes, (frames[0]?.length ?? 0) + (frames[1]?.length ?? 0) + 20, 0x01);
    for (let cut = 0; cut <= corrupt.length; cut++) {
      const decoder = new EventStreamDecoder();
      const got = splitAt(corrupt, cut).flatMap((piece) => decoder.push(piece));
      assert.deepEqual(got, expected.slice(0, 2), `cut at ${cut}`);
      assert.match(decoder.failure ?? "", /checksum/);
    }
  });

  test("a length that cannot be a message is refused before waiting for it", () => {
    const huge = encodeMessage({ a: "b" }, new Uint8Array(0));
    const view = new DataView(huge.buffer, huge.byteOffset);
    view.setUint32(0, 64 * 1024 * 1024);
    // a matching prelude CRC for the lie, so only the bound catches it
    view.setUint32(8, crc32(huge.subarray(0, 8)));
    const decoder = new EventStreamDecoder();
    assert.deepEqual(decoder.push(huge), []);
    assert.match(decoder.failure ?? "", /cannot be/);
  });
});

describe("request", () => {
  test("system, merged turns, images as bytes, tools, tool results and the output cap", () => {
    const request = converseRequest(
      call({
        messages: [
          { role: "system", content: "Be terse." },
          {
            role: "user",
            content: [
              { type: "text", text: "Weather here?" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0K" } },
            ],
          },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "tooluse_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
            ],
          },
          { role: "tool", tool_call_id: "tooluse_1", content: '{"temp": 7}' },
          { role: "user", content: "And tomorrow?" },
        ],
        tools: [WEATHER],
        tool_choice: "required",
        max_tokens: 300,
        temperature: 0.2,
        stop: ["END"],
      }),
    );
    assert.deepEqual(request.system, [{ text: "Be terse." }]);
    assert.deepEqual(request.messages, [
      {
        role: "user",
        content: [{ text: "Weather here?" }, { image: { format: "png", source: { bytes: "iVBORw0K" } } }],
      },
      {
        role: "assistant",
        content: [{ toolUse: { toolUseId: "tooluse_1", name: "get_weather", input: { city: "Oslo" } } }],
      },
      {
        role: "user",
        content: [
          { toolResult: { toolUseId: "tooluse_1", content: [{ json: { temp: 7 } }] } },
          { text: "And tomorrow?" },
        ],
      },
    ]);
    assert.deepEqual(request.inferenceConfig, { maxTokens: 300, temperature: 0.2, stopSequences: ["END"] });
    assert.deepEqual(request.toolConfig, {
      tools: [
        {
          toolSpec: {
            name: "get_weather",
            description: "Weather of a city",
            inputSchema: { json: WEATHER.function.parameters },
          },
        },
      ],
      toolChoice: { any: {} },
    });
    assert.equal("model" in request, false, "the model is in the path");
  });

  test("structured output is one forced tool; cache_control is a cachePoint with its ttl", () => {
    const request = converseRequest(
      call({
        messages: [
          {
            role: "system",
            content: [{ type: "text", text: "Long rules", cache_control: { type: "ephemeral", ttl: "1h" } }],
          },
          { role: "user", content: "Forecast" },
        ],
        response_format: { type: "json_schema", json_schema: { name: "f", schema: { type: "object" } } },
      }),
    );
    assert.deepEqual(request.system, [{ text: "Long rules" }, { cachePoint: { type: "default", ttl: "1h" } }]);
    assert.deepEqual(request.toolConfig, {
      tools: [
        {
          toolSpec: {
            name: JSON_TOOL,
            description: "Answer with this JSON.",
            inputSchema: { json: { type: "object" } },
          },
        },
      ],
      toolChoice: { tool: { name: JSON_TOOL } },
    });
  });

  test("what Converse cannot do is a 400 naming the parameter", () => {
    const refused = (body: Record<string, unknown>, param: string) =>
      assert.throws(
        () => converseRequest(call(body)),
        (e: HttpError) => e.status === 400 && e.param === param,
      );
    refused({ n: 2 }, "n");
    refused({ logprobs: true }, "logprobs");
    refused({ tools: [WEATHER], tool_choice: "none" }, "tool_choice");
    refused(
      { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x.example/a.png" } }] }] },
      "messages[0].content[0].image_url.url",
    );
  });
});

describe("answers and usage", () => {
  test("text, tool calls, finish reasons and usage in OpenAI's shape", () => {
    const answer = completion(
      JSON.stringify({
        output: {
          message: {
            role: "assistant",
            content: [
              { text: "Checking." },
              { toolUse: { toolUseId: "tooluse_9", name: "get_weather", input: { city: "Lima" } } },
            ],
          },
        },
        stopReason: "tool_use",
        usage: {
          inputTokens: 20,
          outputTokens: 8,
          totalTokens: 28,
          cacheReadInputTokens: 100,
          cacheWriteInputTokens: 0,
        },
        metrics: { latencyMs: 5 },
      }),
      `aws-bedrock/${MODEL}`,
      false,
    );
    const body = JSON.parse(answer.text);
    assert.equal(body.choices[0].finish_reason, "tool_calls");
    assert.equal(body.choices[0].message.content, "Checking.");
    assert.deepEqual(body.choices[0].message.tool_calls, [
      { id: "tooluse_9", type: "function", function: { name: "get_weather", arguments: '{"city":"Lima"}' } },
    ]);
    assert.deepEqual(answer.usage, { promptTokens: 120, completionTokens: 8, cachedTokens: 100, cacheWriteTokens: 0 });
    assert.equal(body.usage.prompt_tokens, 120);
    assert.equal(body.usage.prompt_tokens_details.cached_tokens, 100);
  });

  test("inputTokens excludes the cache; 1-hour writes are priced at their own rate", () => {
    const usage = readUsage({
      inputTokens: 10,
      outputTokens: 5,
      cacheReadInputTokens: 200,
      cacheWriteInputTokens: 1000,
      cacheDetails: [
        { ttl: "5m", inputTokens: 400 },
        { ttl: "1h", inputTokens: 600 },
      ],
    });
    assert.deepEqual(usage, {
      promptTokens: 1210,
      completionTokens: 5,
      cachedTokens: 200,
      cacheWriteTokens: 1000,
      cacheWrite1hTokens: 600,
    });
    // 10 × 3 + 200 × 0.3 + 400 × 3.75 + 600 × 6 + 5 × 15 (µUSD per token × 1e6), rounded up once
    assert.ok(usage);
    assert.equal(costMicros(usage, SONNET), 30 + 60 + 1500 + 3600 + 75);
    assert.equal(readUsage({ outputTokens: 3 }), null, "no input count: estimated");
  });
});

describe("stream", () => {
  test("the same chunks at every cut point; usage when asked; [DONE] after metadata", async () => {
    const bytes = textStream();
    const whole = await readAll(
      translateStream(streamOf([bytes]), { model: "m", clientWantsUsage: true, jsonAnswer: false }).stream,
    );
    const events = dataOf(whole);
    const chunks = events.filter((e) => e !== "[DONE]") as {
      choices: { delta: { content?: string }; finish_reason: string | null }[];
      usage?: { prompt_tokens: number };
    }[];
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "Hello wörld");
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, "stop");
    assert.equal(chunks.at(-1)?.usage?.prompt_tokens, 11);
    assert.equal(events.at(-1), "[DONE]");
    for (let cut = 1; cut < bytes.length; cut += 7) {
      const metered = translateStream(streamOf(splitAt(bytes, cut)), {
        model: "m",
        clientWantsUsage: true,
        jsonAnswer: false,
      });
      const text = await readAll(metered.stream);
      assert.deepEqual(
        dataOf(text).map((e) => (e === "[DONE]" ? e : (e as { choices: unknown[] }).choices)),
        events.map((e) => (e === "[DONE]" ? e : (e as { choices: unknown[] }).choices)),
      );
      const done = await metered.done;
      assert.equal(done.complete, true);
      assert.deepEqual(done.usage, { promptTokens: 11, completionTokens: 3, cachedTokens: 0, cacheWriteTokens: 0 });
    }
  });

  test("a tool call streams its id and name, then its arguments in pieces", async () => {
    const bytes = concat([
      eventMessage("messageStart", { role: "assistant" }),
      eventMessage("contentBlockStart", {
        contentBlockIndex: 0,
        start: { toolUse: { toolUseId: "tooluse_1", name: "get_weather" } },
      }),
      eventMessage("contentBlockDelta", { contentBlockIndex: 0, delta: { toolUse: { input: '{"ci' } } }),
      eventMessage("contentBlockDelta", { contentBlockIndex: 0, delta: { toolUse: { input: 'ty":"Oslo"}' } } }),
      eventMessage("contentBlockStop", { contentBlockIndex: 0 }),
      eventMessage("messageStop", { stopReason: "tool_use" }),
      eventMessage("metadata", { usage: USAGE, metrics: { latencyMs: 1 } }),
    ]);
    const text = await readAll(
      translateStream(streamOf([bytes]), { model: "m", clientWantsUsage: false, jsonAnswer: false }).stream,
    );
    const chunks = dataOf(text).filter((e) => e !== "[DONE]") as {
      choices: {
        delta: { tool_calls?: { id?: string; function: { name?: string; arguments: string } }[] };
        finish_reason: string | null;
      }[];
    }[];
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    assert.equal(calls[0]?.id, "tooluse_1");
    assert.equal(calls[0]?.function.name, "get_weather");
    assert.equal(calls.map((c) => c.function.arguments).join(""), '{"city":"Oslo"}');
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, "tool_calls");
  });

  test("a stream cut mid-message ends with the in-band error; the output so far is estimated", async () => {
    const bytes = textStream();
    const cut = bytes.length - 30; // inside the metadata message
    const metered = translateStream(streamOf([bytes.slice(0, cut)]), {
      model: "m",
      clientWantsUsage: true,
      jsonAnswer: false,
    });
    const events = dataOf(await readAll(metered.stream));
    const last = events.at(-1) as { error?: { code: string } };
    assert.equal(last.error?.code, "upstream_incomplete");
    const done = await metered.done;
    assert.equal(done.complete, false);
    assert.equal(done.usage, null);
    assert.equal(done.text, "Hello wörld");
  });

  test("a corrupted checksum ends the stream with the in-band error and reads no further", async () => {
    const bytes = textStream();
    const corrupt = flipped(bytes, bytes.length - 2, 0x01); // the metadata message's CRC
    const metered = translateStream(streamOf([corrupt]), { model: "m", clientWantsUsage: true, jsonAnswer: false });
    const events = dataOf(await readAll(metered.stream));
    assert.equal((events.at(-1) as { error?: { code: string } }).error?.code, "upstream_incomplete");
    assert.equal((await metered.done).complete, false);
  });

  test("an exception message is the client's error event", async () => {
    const bytes = concat([
      eventMessage("messageStart", { role: "assistant" }),
      exceptionMessage("modelStreamErrorException", "The model stream failed."),
    ]);
    const events = dataOf(
      await readAll(
        translateStream(streamOf([bytes]), { model: "m", clientWantsUsage: false, jsonAnswer: false }).stream,
      ),
    );
    assert.deepEqual((events.at(-1) as { error: unknown }).error, {
      message: "The model stream failed.",
      type: "api_error",
      code: "modelStreamErrorException",
    });
  });
});

describe("credentials and errors", () => {
  test("the secret is AWS keys (JSON) or a Bedrock API key", () => {
    assert.deepEqual(credential('{"accessKeyId":"AKIA1","secretAccessKey":"s"}'), {
      accessKeyId: "AKIA1",
      secretAccessKey: "s",
    });
    assert.deepEqual(credential("ABSKbedrockkey"), { apiKey: "ABSKbedrockkey" });
    assert.equal(credential(undefined), null);
  });

  test("aws4fetch's SigV4 signature passes the emulator's verifier, and a changed body fails it", async () => {
    const { AwsClient } = await import("aws4fetch");
    const keys = { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
    const client = new AwsClient({ ...keys, service: "bedrock", region: "us-east-1" });
    const rawPath = `/model/${encodeURIComponent(MODEL)}/converse`;
    const body = JSON.stringify({ messages: [{ role: "user", content: [{ text: "hi" }] }] });
    const signed = await client.sign(`https://bedrock-runtime.us-east-1.amazonaws.com${rawPath}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const headers = {
      authorization: signed.headers.get("authorization") ?? "",
      "x-amz-date": signed.headers.get("x-amz-date") ?? "",
    };
    const request = {
      method: "POST",
      host: "bedrock-runtime.us-east-1.amazonaws.com",
      rawPath,
      query: "",
      headers,
      body,
    };
    assert.deepEqual(checkSignature(keys, request, "us-east-1"), { ok: true });
    assert.equal(checkSignature(keys, { ...request, body: `${body} ` }, "us-east-1").ok, false);
    assert.equal(checkSignature({ ...keys, secretAccessKey: "other" }, request, "us-east-1").ok, false);
    assert.equal(checkSignature(keys, request, "eu-west-1").ok, false);
  });

  test("Bedrock's error names → our statuses; our credentials refused is a 502", async () => {
    const error = (status: number, type: string, message = "m") =>
      bedrockError(
        new Response(JSON.stringify({ message }), {
          status,
          headers: { "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` },
        }),
      );
    const validation = await error(400, "ValidationException", "messages: bad");
    assert.equal(validation.status, 400);
    assert.equal(validation.code, "ValidationException");
    assert.equal((await error(403, "InvalidSignatureException")).status, 502);
    assert.equal((await error(403, "AccessDeniedException")).status, 502);
    assert.equal((await error(429, "ThrottlingException")).status, 429);
    assert.equal((await error(408, "ModelTimeoutException")).status, 504);
    assert.equal((await error(424, "ModelErrorException")).status, 502);
    assert.equal((await error(503, "ServiceUnavailableException")).status, 503);
  });
});

describe("Claude on Bedrock in Anthropic's format", () => {
  test("the invoke body: no model, no stream, Bedrock's anthropic_version, the betas as a list", () => {
    assert.deepEqual(invokeBody({ model: "x", stream: true, max_tokens: 5, messages: [] }, "a-1, b-2"), {
      anthropic_version: "bedrock-2023-05-31",
      max_tokens: 5,
      messages: [],
      anthropic_beta: ["a-1", "b-2"],
    });
    assert.equal("anthropic_beta" in invokeBody({ messages: [] }, null), false);
    assert.equal(isClaude("us.anthropic.claude-haiku-4-5-20251001-v1:0"), true);
    assert.equal(isClaude("amazon.nova-lite-v1:0"), false);
  });

  test("chunk messages become Anthropic's events at every cut; an exception is its error event", async () => {
    const chunk = (event: Record<string, unknown>) =>
      eventMessage("chunk", { bytes: Buffer.from(JSON.stringify(event)).toString("base64"), p: "abc" });
    const bytes = concat([
      chunk({ type: "message_start", message: { id: "msg_1", usage: { input_tokens: 3, output_tokens: 1 } } }),
      chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "hé" } }),
      chunk({ type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 3 } }),
      exceptionMessage("throttlingException", "Slow down"),
    ]);
    const expected = [
      `event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":3,"output_tokens":1}}}\n\n`,
      `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hé"}}\n\n`,
      `event: message_stop\ndata: {"type":"message_stop"}\n\n`,
      `event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}\n\n`,
    ].join("");
    for (let cut = 1; cut < bytes.length; cut += 11) {
      assert.equal(await readAll(anthropicEvents(streamOf(splitAt(bytes, cut)))), expected, `cut at ${cut}`);
    }
    const corrupt = flipped(bytes, bytes.length - 1, 0x01);
    const upToCorrupt = expected.slice(0, expected.indexOf("event: error"));
    assert.equal(await readAll(anthropicEvents(streamOf([corrupt]))), upToCorrupt, "nothing after a bad checksum");
  });
});
