// The Workers AI module: the binding's inputs, its output and stream → OpenAI's, its errors → ours.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HttpError } from "../../src/lib/errors";
import { runError } from "../../src/providers/workers-ai/errors";
import { runInputs } from "../../src/providers/workers-ai/request";
import { completion } from "../../src/providers/workers-ai/response";
import { translateStream } from "../../src/providers/workers-ai/stream";
import { call, dataOf, encoder, readAll, splitAt, streamOf } from "./support";

const MODEL = "@cf/meta/llama-3.1-8b-instruct";
const aiCall = (body: Record<string, unknown>) =>
  call(body, { model: `workers-ai/${MODEL}`, upstreamModel: MODEL, provider: "workers-ai", requestId: "req-1" });

describe("inputs", () => {
  test("text content joined, the output bound, shared parameters and tools kept, the rest dropped", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    const inputs = runInputs(
      aiCall({
        messages: [
          {
            role: "system",
            content: [
              { type: "text", text: "be " },
              { type: "text", text: "brief" },
            ],
          },
          { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f" } }] },
          { role: "tool", content: "42", tool_call_id: "c1" },
        ],
        temperature: 0.2,
        seed: 7,
        tools,
        stream: true,
        stream_options: { include_usage: true },
        user: "someone",
        logit_bias: null,
      }),
    );
    assert.deepEqual(inputs, {
      messages: [
        { role: "system", content: "be brief" },
        { role: "assistant", content: "", tool_calls: [{ id: "c1", type: "function", function: { name: "f" } }] },
        { role: "tool", content: "42", tool_call_id: "c1" },
      ],
      max_tokens: 4096,
      temperature: 0.2,
      seed: 7,
      tools,
      stream: true,
    });
  });

  test("images and n > 1 are refused with the parameter named", () => {
    const image = { type: "image_url", image_url: { url: "https://x/y.png" } };
    assert.throws(
      () => runInputs(aiCall({ messages: [{ role: "user", content: [image] }] })),
      (e: HttpError) => e.status === 400 && e.param === "messages[0].content[0]",
    );
    assert.throws(
      () => runInputs(aiCall({ n: 2 })),
      (e: HttpError) => e.status === 400 && e.param === "n",
    );
  });
});

describe("answer", () => {
  test("text and usage → a chat completion", () => {
    const raw = JSON.stringify({
      response: "Hello.",
      usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
    });
    const { text, usage } = completion(raw, { requestId: "req-1", model: MODEL });
    const body = JSON.parse(text);
    assert.equal(body.object, "chat.completion");
    assert.equal(body.model, MODEL);
    assert.deepEqual(body.choices[0].message, { role: "assistant", content: "Hello.", refusal: null });
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.deepEqual(body.usage, { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 });
    assert.deepEqual(usage, { promptTokens: 9, completionTokens: 2, cachedTokens: 0, cacheWriteTokens: 0 });
  });

  test("tool calls get ids and string arguments; a JSON-mode object is the content", () => {
    const raw = JSON.stringify({ response: "", tool_calls: [{ name: "weather", arguments: { city: "Oslo" } }] });
    const body = JSON.parse(completion(raw, { requestId: "req-1", model: MODEL }).text);
    const message = body.choices[0].message;
    assert.equal(message.content, null);
    assert.equal(body.choices[0].finish_reason, "tool_calls");
    assert.equal(message.tool_calls[0].type, "function");
    assert.match(message.tool_calls[0].id, /^call_/);
    assert.deepEqual(message.tool_calls[0].function, { name: "weather", arguments: '{"city":"Oslo"}' });
    const json = JSON.parse(completion('{"response":{"a":1}}', { requestId: "r", model: MODEL }).text);
    assert.equal(json.choices[0].message.content, '{"a":1}');
  });

  test("an OpenAI-shaped answer and non-JSON pass through as they came", () => {
    const openai = '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}';
    assert.equal(completion(openai, { requestId: "r", model: MODEL }).text, openai);
    assert.deepEqual(completion("oops", { requestId: "r", model: MODEL }), { text: "oops", said: "oops", usage: null });
  });
});

interface ToolDelta {
  index: number;
  id: string;
  type: string;
  function: { name: string; arguments: string };
}
interface Chunk {
  choices: { delta: { role?: string; content?: string; tool_calls?: ToolDelta[] }; finish_reason: string | null }[];
  usage?: { total_tokens: number };
}

/** The chunks of an SSE text, and whether it ended with [DONE]. */
function parsed(sse: string): { chunks: Chunk[]; ended: boolean } {
  const events = dataOf(sse);
  return { chunks: events.filter((e): e is Chunk => e !== "[DONE]"), ended: events.at(-1) === "[DONE]" };
}

describe("stream", () => {
  const UPSTREAM = [
    'data: {"response":"Hel"}\n\n',
    'data: {"response":"lo \\"you\\""}\n\n',
    'data: {"response":"","usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\n',
    "data: [DONE]\n\n",
  ].join("");

  test("pieces → content chunks, a finish chunk, usage only when asked, [DONE]; cut at every byte", async () => {
    const bytes = encoder.encode(UPSTREAM);
    for (let cut = 1; cut < bytes.length; cut++) {
      for (const clientWantsUsage of [false, true]) {
        const { stream, done } = translateStream(streamOf(splitAt(bytes, cut)), {
          clientWantsUsage,
          requestId: "req-1",
          model: MODEL,
        });
        const { chunks, ended } = parsed(await readAll(stream));
        assert.deepEqual(chunks[0]?.choices[0]?.delta, { role: "assistant", content: "" });
        const content = chunks.map((e) => e.choices[0]?.delta.content ?? "").join("");
        assert.equal(content, 'Hello "you"');
        const finish = chunks.find((e) => e.choices[0]?.finish_reason);
        assert.equal(finish?.choices[0]?.finish_reason, "stop");
        assert.equal(chunks.find((e) => e.usage)?.usage?.total_tokens, clientWantsUsage ? 8 : undefined);
        assert.ok(ended);
        const metered = await done;
        assert.deepEqual(metered.usage, { promptTokens: 5, completionTokens: 3, cachedTokens: 0, cacheWriteTokens: 0 });
        assert.equal(metered.text, 'Hello "you"');
      }
    }
  });

  test("a tool-call event → one tool-call delta with index and id, finish tool_calls", async () => {
    const upstream = `data: ${JSON.stringify({ response: "", tool_calls: [{ name: "f", arguments: { x: 1 } }] })}\n\ndata: [DONE]\n\n`;
    const { stream } = translateStream(streamOf([encoder.encode(upstream)]), {
      clientWantsUsage: false,
      requestId: "req-1",
      model: MODEL,
    });
    const { chunks } = parsed(await readAll(stream));
    const delta = chunks.find((e) => e.choices[0]?.delta.tool_calls)?.choices[0]?.delta.tool_calls?.[0];
    assert.deepEqual(
      [delta?.index, delta?.type, delta?.function],
      [0, "function", { name: "f", arguments: '{"x":1}' }],
    );
    assert.match(delta?.id ?? "", /^call_/);
    assert.equal(chunks.find((e) => e.choices[0]?.finish_reason)?.choices[0]?.finish_reason, "tool_calls");
  });

  test("a stream that breaks off without [DONE]: no finish, an in-band error, metered as seen", async () => {
    const { stream, done } = translateStream(streamOf([encoder.encode('data: {"response":"par"}\n\n')]), {
      clientWantsUsage: true,
      requestId: "req-1",
      model: MODEL,
    });
    const out = await readAll(stream);
    const events = dataOf(out);
    assert.ok(!events.includes("[DONE]"));
    assert.deepEqual((events.at(-1) as { error: { code: string } }).error.code, "upstream_incomplete");
    const { chunks } = parsed(out.slice(0, out.lastIndexOf('data: {"error"')));
    assert.ok(!chunks.some((e) => e.choices[0]?.finish_reason));
    assert.deepEqual(await done, { usage: null, text: "par", complete: false });
  });
});

describe("errors", () => {
  const reply = (status: number, body: unknown) => runError(new Response(JSON.stringify(body), { status }));

  test("the binding's error body → the status and message the client should see", async () => {
    const bad = await reply(400, { name: "AiError", internalCode: 5006, description: "Bad input: x" });
    assert.deepEqual([bad.status, bad.message, bad.code], [400, "Bad input: x", "5006"]);
    const limited = await reply(429, { errors: [{ code: 3040, message: "Capacity temporarily exceeded" }] });
    assert.deepEqual([limited.status, limited.code], [429, "rate_limit_exceeded"]);
    assert.equal((await reply(500, { errors: [{ code: 3043, message: "Internal" }] })).status, 502);
    assert.equal(
      (await reply(401, { errors: [{ code: 10000, message: "Authentication error" }] })).code,
      "provider_auth_error",
    );
    assert.equal((await reply(404, { errors: [{ code: 5007, message: "No such model" }] })).status, 502);
    const gateway = await reply(429, { name: "AiGatewayError", internalCode: 2003, description: "Rate limited" });
    assert.equal(gateway.code, "gateway_rate_limited");
  });
});
