// The pass-through routes' meters: events go on unchanged (cut anywhere, they come out the
// same), usage is read from each provider's own terminal events, and a stream that stops early
// says so (`complete: false`).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { messageAnswer, meterMessagesStream, passthroughError } from "../../src/providers/anthropic/messages";
import { embeddingsAnswer } from "../../src/providers/openai/embeddings";
import { meterResponsesStream, responsesAnswer } from "../../src/providers/openai/responses";
import type { Metered } from "../../src/providers/types";
import { meterRunStream, openaiEmbeddings, runAnswer } from "../../src/providers/workers-ai/run";
import { encoder, readAll, splitAt, streamOf } from "./support";

type Meter = (
  upstream: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
) => { stream: ReadableStream<Uint8Array>; done: Promise<Metered> };

const event = (type: string, data: unknown) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

const RESPONSES = [
  event("response.created", { type: "response.created", sequence_number: 0, response: { usage: null } }),
  event("response.output_text.delta", { type: "response.output_text.delta", sequence_number: 1, delta: "Hé " }),
  event("response.output_text.delta", { type: "response.output_text.delta", sequence_number: 2, delta: '"ok"' }),
  event("response.completed", {
    type: "response.completed",
    sequence_number: 3,
    response: {
      usage: { input_tokens: 20, input_tokens_details: { cached_tokens: 8 }, output_tokens: 12, total_tokens: 32 },
    },
  }),
].join("");

const MESSAGES = [
  event("message_start", {
    type: "message_start",
    message: {
      usage: { input_tokens: 5, cache_creation_input_tokens: 10, cache_read_input_tokens: 20, output_tokens: 1 },
    },
  }),
  event("ping", { type: "ping" }),
  event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hi 😀" } }),
  event("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 7 } }),
  event("message_stop", { type: "message_stop" }),
].join("");

const RUN = [
  'data: {"response":"Hel"}\n\n',
  'data: {"response":"lo"}\n\n',
  'data: {"response":"","usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}\n\n',
  "data: [DONE]\n\n",
].join("");

const CASES: [string, Meter, string, Metered][] = [
  [
    "responses",
    meterResponsesStream,
    RESPONSES,
    {
      usage: { promptTokens: 20, completionTokens: 12, cachedTokens: 8, cacheWriteTokens: 0 },
      text: 'Hé "ok"',
      complete: true,
      extras: { tools: {}, tier: null },
    },
  ],
  [
    "messages",
    meterMessagesStream,
    MESSAGES,
    {
      usage: { promptTokens: 35, completionTokens: 7, cachedTokens: 20, cacheWriteTokens: 10 },
      text: "Hi 😀",
      complete: true,
      extras: { tools: {}, tier: null },
    },
  ],
  [
    "workers-ai run",
    meterRunStream,
    RUN,
    {
      usage: { promptTokens: 4, completionTokens: 2, cachedTokens: 0, cacheWriteTokens: 0 },
      text: "Hello",
      complete: true,
    },
  ],
];

// What each route's clients get when the stream is cut: the error event their SDK raises.
const TRUNCATED: Record<string, RegExp> = {
  responses:
    /^event: error\ndata: \{"type":"error","code":"upstream_incomplete",.*"sequence_number":2,"error":\{"type":"server_error",.*\}\}\n\n$/,
  messages: /^event: error\ndata: \{"type":"error","error":\{"type":"api_error",/,
  "workers-ai run": /^data: \{"error":\{.*"code":"upstream_incomplete"\}\}\n\n$/,
};

for (const [name, meter, upstream, expected] of CASES) {
  describe(name, () => {
    test("passes every event through unchanged and meters it, cut at every byte", async () => {
      const bytes = encoder.encode(upstream);
      for (let cut = 1; cut < bytes.length; cut++) {
        const { stream, done } = meter(streamOf(splitAt(bytes, cut)));
        assert.equal(await readAll(stream), upstream, `cut at ${cut}`);
        assert.deepEqual(await done, expected, `cut at ${cut}`);
      }
    });

    test("a stream cut before its terminal event is not complete, and ends with the provider's error event", async () => {
      const first = `${upstream.split("\n\n").slice(0, 2).join("\n\n")}\n\n`;
      const { stream, done } = meter(streamOf([encoder.encode(first)]));
      const out = await readAll(stream);
      assert.equal((await done).complete, false);
      assert.ok(out.startsWith(first));
      const tail = out.slice(first.length);
      assert.match(tail, TRUNCATED[name] as RegExp, tail);
    });
  });
}

describe("a stream passed through natively (the meter reads a tee's other branch)", () => {
  const start = `${MESSAGES.split("\n\n").slice(0, 2).join("\n\n")}\n\n`;

  test("an upstream that breaks mid-way ends with the error event, after what came", async () => {
    let sent = false;
    const upstream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error("connection reset"));
        sent = true;
        controller.enqueue(encoder.encode(start));
      },
    });
    const { stream, done } = meterMessagesStream(upstream);
    const out = await readAll(stream);
    assert.ok(out.startsWith(start));
    assert.match(out.slice(start.length), TRUNCATED.messages as RegExp);
    const metered = await done;
    assert.equal(metered.complete, false);
    assert.equal(metered.usage?.promptTokens, 35, "what came before the break is metered");
  });

  test("chunks after the first are metered at the end, a break included: nothing that came is lost", async () => {
    // three chunks a moment apart, then the connection breaks: the first is read as it comes,
    // the others collected
    const parts = MESSAGES.split("\n\n").slice(0, 3);
    let sent = 0;
    const upstream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (sent === parts.length) return controller.error(new Error("connection reset"));
        controller.enqueue(encoder.encode(`${parts[sent++]}\n\n`));
      },
    });
    const { stream, done } = meterMessagesStream(upstream);
    const out = await readAll(stream);
    assert.ok(out.startsWith(parts.map((part) => `${part}\n\n`).join("")));
    const metered = await done;
    assert.equal(metered.complete, false);
    assert.equal(metered.text, "Hi 😀", "the delta in the third chunk counts");
  });

  test("Responses are read as they come until the response's id is handed out", async () => {
    const created = RESPONSES.slice(0, RESPONSES.indexOf("\n\n") + 2);
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const upstream = new ReadableStream<Uint8Array>({
      async start(controller) {
        // the first chunk ends mid-event: the id comes in the second
        controller.enqueue(encoder.encode(created.slice(0, 20)));
        controller.enqueue(encoder.encode(created.slice(20)));
        await held;
        controller.enqueue(encoder.encode(RESPONSES.slice(created.length)));
        controller.close();
      },
    });
    const heard: string[][] = [];
    const { stream, done } = meterResponsesStream(upstream, undefined, (ids) => heard.push(ids.stored));
    const reading = readAll(stream);
    for (let i = 0; i < 50 && heard.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    assert.equal(heard.length, 1, "the id was handed out while the stream was still open");
    release();
    assert.equal(await reading, RESPONSES);
    assert.equal((await done).complete, true);
  });

  test("a client that goes away ends metering and stops reading upstream", async () => {
    const gone = new AbortController();
    let cancelled = false;
    const upstream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(start));
      },
      cancel() {
        cancelled = true;
      },
    });
    const { stream, done } = meterMessagesStream(upstream, gone.signal);
    const reader = stream.getReader();
    await reader.read();
    gone.abort();
    const metered = await done;
    assert.equal(metered.complete, false);
    assert.equal(metered.usage?.promptTokens, 35);
    await new Promise((resolve) => setTimeout(resolve, 10)); // the tee cancels upstream once both branches are
    assert.ok(cancelled, "upstream was cancelled");
  });

  test("an event of any size is read: a stream held whole has no per-event bound", async () => {
    // a 5 MiB delta mid-stream (a rewritten stream would refuse it), then the stream ends as it should
    const huge = event("content_block_delta", {
      type: "content_block_delta",
      index: 0,
      delta: { type: "text_delta", text: "x".repeat(5 * 1024 * 1024) },
    });
    const rest = MESSAGES.slice(start.length);
    const { stream, done } = meterMessagesStream(
      streamOf([encoder.encode(start), encoder.encode(huge), encoder.encode(rest)]),
    );
    assert.equal(await readAll(stream), start + huge + rest);
    const metered = await done;
    assert.equal(metered.complete, true);
    assert.equal(metered.usage?.completionTokens, 7);
  });

  test("a stream cut inside an event ends with the error event on lines of its own", async () => {
    const cut = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":';
    const { stream, done } = meterMessagesStream(streamOf([encoder.encode(start), encoder.encode(cut)]));
    const out = await readAll(stream);
    assert.ok(out.startsWith(start + cut));
    assert.match(out.slice(start.length + cut.length), /^\n\nevent: error\n/);
    assert.equal((await done).complete, false);
  });
});

describe("answers", () => {
  test("Responses and embeddings pass through with their usage read", () => {
    const response =
      '{"object":"response","usage":{"input_tokens":3,"output_tokens":4,"output_tokens_details":{"reasoning_tokens":2}}}';
    assert.deepEqual(responsesAnswer(response), {
      text: response,
      said: "",
      usage: { promptTokens: 3, completionTokens: 4, cachedTokens: 0, cacheWriteTokens: 0 },
      extras: { tools: {}, tier: null },
    });
    const embeddings = '{"object":"list","data":[],"usage":{"prompt_tokens":9,"total_tokens":9}}';
    assert.equal(embeddingsAnswer(embeddings).usage?.promptTokens, 9);
    assert.deepEqual(embeddingsAnswer("nope"), { text: "nope", said: "", usage: null });
  });

  test("an Anthropic message passes through with cache tokens counted as input", () => {
    const raw = '{"type":"message","usage":{"input_tokens":2,"cache_read_input_tokens":3,"output_tokens":4}}';
    assert.deepEqual(messageAnswer(raw).usage, {
      promptTokens: 5,
      completionTokens: 4,
      cachedTokens: 3,
      cacheWriteTokens: 0,
    });
  });

  test("Workers AI's run answer is wrapped in the v4 envelope", () => {
    const { text, usage } = runAnswer('{"response":"hi","usage":{"prompt_tokens":1,"completion_tokens":1}}');
    assert.deepEqual(JSON.parse(text), {
      result: { response: "hi", usage: { prompt_tokens: 1, completion_tokens: 1 } },
      success: true,
      errors: [],
      messages: [],
    });
    assert.equal(usage?.completionTokens, 1);
  });

  test("Workers AI embeddings → OpenAI's list, floats or little-endian float32 base64", () => {
    const raw = JSON.stringify({
      shape: [2, 2],
      data: [
        [0.5, -1],
        [2, 0.25],
      ],
      pooling: "mean",
    });
    const floats = JSON.parse(openaiEmbeddings(raw, { model: "m", promptTokens: 6, base64: false }));
    assert.deepEqual(floats.data[1], { object: "embedding", index: 1, embedding: [2, 0.25] });
    assert.deepEqual(floats.usage, { prompt_tokens: 6, total_tokens: 6 });
    const encoded = JSON.parse(openaiEmbeddings(raw, { model: "m", promptTokens: 6, base64: true }));
    const bytes = Uint8Array.from(atob(encoded.data[0].embedding), (ch) => ch.charCodeAt(0));
    assert.deepEqual([...new Float32Array(bytes.buffer)], [0.5, -1]);
  });
});

test("Anthropic's own errors keep their status for Anthropic clients; our credentials refused is 502", async () => {
  const overloaded = { type: "error", error: { type: "overloaded_error", message: "Overloaded" } };
  const error = await passthroughError(new Response(JSON.stringify(overloaded), { status: 529 }));
  assert.deepEqual([error.status, error.message], [529, "Overloaded"]);
  const auth = { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } };
  assert.equal((await passthroughError(new Response(JSON.stringify(auth), { status: 401 }))).status, 502);
});
