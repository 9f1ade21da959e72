// The stream meter: events pass through one by one, usage and text are captured, whatever the
// network does to the bytes on the way.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { completion } from "../../src/providers/openai/response";
import { meterChatStream as meterStream } from "../../src/providers/openai/stream";
import type { Metered } from "../../src/providers/types";
import { encoder, readAll, splitAt, streamOf } from "./support";

function chunk(delta: Record<string, unknown>, index = 0, extra: Record<string, unknown> = {}) {
  return {
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    choices: [{ index, delta, finish_reason: null }],
    ...extra,
  };
}

const USAGE = { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13, prompt_tokens_details: { cached_tokens: 2 } };

function sse(events: unknown[], newline = "\n"): string {
  return events.map((e) => `data: ${typeof e === "string" ? e : JSON.stringify(e)}${newline}${newline}`).join("");
}

/** A stream: every chunk, with `usage: null` (what upstream sends when usage is asked for). */
const EVENTS = [
  chunk({ role: "assistant", content: "" }, 0, { usage: null }),
  chunk({ content: "Café " }, 0, { usage: null }),
  chunk({ content: "😀 ok" }, 0, { usage: null }),
  chunk({ content: '"quoted"\n' }, 0, { usage: null }),
  { id: "chatcmpl-1", object: "chat.completion.chunk", choices: [], usage: USAGE },
  "[DONE]",
];
const TEXT = 'Café 😀 ok"quoted"\n';

async function run(pieces: Uint8Array[], clientWantsUsage: boolean, signal?: AbortSignal) {
  const { stream, done } = meterStream(streamOf(pieces), { clientWantsUsage, signal });
  return { out: await readAll(stream), metered: await done };
}

const EXPECTED: Metered = {
  usage: { promptTokens: 9, completionTokens: 4, cachedTokens: 2, cacheWriteTokens: 0 },
  text: TEXT,
  complete: true,
  extras: { tools: {}, tier: null },
};

describe("meterStream", () => {
  test("captures the usage and the text of every content delta", async () => {
    const { metered } = await run([encoder.encode(sse(EVENTS))], true);
    assert.deepEqual(metered, EXPECTED);
  });

  test("passes the stream on unchanged when the client asked for usage", async () => {
    const { out } = await run([encoder.encode(sse(EVENTS))], true);
    assert.equal(out, sse(EVENTS));
  });

  test("hides the usage chunk and the usage: null fields when the client did not ask", async () => {
    const { out, metered } = await run([encoder.encode(sse(EVENTS))], false);
    assert.deepEqual(metered, EXPECTED);
    const expected = EVENTS.filter((e) => typeof e === "string" || e.choices.length > 0).map((e) => {
      if (typeof e === "string") return e;
      const { usage: _usage, ...rest } = e as Record<string, unknown>;
      return rest;
    });
    assert.equal(out, sse(expected));
  });

  test("gives the same result however the bytes are split, even inside a character", async () => {
    const bytes = encoder.encode(sse(EVENTS));
    const whole = await run([bytes], false);
    for (let cut = 1; cut < bytes.length; cut += 1) {
      const split = await run(splitAt(bytes, cut), false);
      assert.equal(split.out, whole.out, `cut at byte ${cut}`);
      assert.deepEqual(split.metered, whole.metered, `cut at byte ${cut}`);
    }
    const bytewise = await run(splitAt(bytes, ...Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)), false);
    assert.deepEqual(bytewise, whole);
  });

  test("reads CRLF streams like LF streams", async () => {
    const crlf = await run([encoder.encode(sse(EVENTS, "\r\n"))], false);
    const lf = await run([encoder.encode(sse(EVENTS))], false);
    assert.deepEqual(crlf, lf);
  });

  test("collects the text of every choice, in order", async () => {
    const events = [chunk({ content: "A1 " }, 0), chunk({ content: "B1 " }, 1), chunk({ content: "A2" }, 0), "[DONE]"];
    const { metered, out } = await run([encoder.encode(sse(events))], false);
    assert.equal(metered.text, "A1 B1 A2");
    assert.equal(metered.usage, null);
    assert.equal(out, sse(events));
  });

  test("passes tool-call deltas through untouched and counts their arguments as output", async () => {
    const events = [
      chunk({
        role: "assistant",
        tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }],
      }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
      "[DONE]",
    ];
    const { metered, out } = await run([encoder.encode(sse(events))], false);
    assert.equal(out, sse(events));
    assert.equal(metered.text, '{"city":"Paris"}');
  });

  test("counts an unterminated last event", async () => {
    const text = `${sse(EVENTS.slice(0, 4))}data: ${JSON.stringify(EVENTS[4])}`;
    const { metered } = await run([encoder.encode(text)], true);
    assert.deepEqual(metered, EXPECTED);
  });

  test("keeps comments (keep-alives) and named events", async () => {
    const text = `: keep-alive\n\nevent: message\ndata: ${JSON.stringify(chunk({ content: "x" }))}\n\ndata: [DONE]\n\n`;
    const { out, metered } = await run([encoder.encode(text)], false);
    assert.equal(out, text);
    assert.equal(metered.text, "x");
  });

  test("a stream cut before [DONE] ends with an in-band error the SDKs raise", async () => {
    for (const upstream of [sse([chunk({ content: "par" })]).replace("data: [DONE]\n\n", ""), ""]) {
      const { out } = await run([encoder.encode(upstream)], false);
      const last = out.trim().split("\n\n").at(-1) ?? "";
      assert.equal(JSON.parse(last.slice("data: ".length)).error.code, "upstream_incomplete", upstream);
    }
  });

  test("an upstream that breaks (a read error) ends the same way, never silently", async () => {
    const upstream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(encoder.encode(sse([chunk({ content: "par" })]).replace("data: [DONE]\n\n", "")));
      },
      pull(c) {
        c.error(new Error("connection reset"));
      },
    });
    const { stream, done } = meterStream(upstream, { clientWantsUsage: false });
    const out = await readAll(stream);
    assert.match(out, /"code":"upstream_incomplete"/);
    assert.equal((await done).complete, false);
  });

  for (const clientWantsUsage of [false, true]) {
    test(`an event too large to be a chunk ends with the in-band error (${clientWantsUsage ? "piped" : "rewritten"})`, async () => {
      const first = sse([chunk({ content: "ok" })]);
      const huge = `data: ${"x".repeat(5 * 1024 * 1024)}`;
      const { stream, done } = meterStream(streamOf([encoder.encode(first), encoder.encode(huge)]), {
        clientWantsUsage,
      });
      const out = await readAll(stream);
      assert.ok(out.startsWith(first));
      assert.match(out.slice(-200), /"code":"upstream_incomplete"\}\}\n\n$/);
      assert.equal((await done).complete, false);
    });
  }

  test("ends metering when the client goes away", async () => {
    const controller = new AbortController();
    const upstream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(encoder.encode(sse([chunk({ content: "partial" })])));
      },
    });
    const { stream, done } = meterStream(upstream, { clientWantsUsage: false, signal: controller.signal });
    const reader = stream.getReader();
    await reader.read();
    controller.abort();
    assert.deepEqual(await done, { usage: null, text: "partial", complete: false, extras: { tools: {}, tier: null } });
  });
});

// Issue 22: an estimate counts the answer's output, read from parsed JSON, the same streamed
// or whole and whatever the JSON's spacing.
describe("the output an estimate counts", () => {
  const words = "Hello there, a 28-byte reply";
  const spaced = (value: unknown) => JSON.stringify(value, null, 1);

  test("a stream's text, compact or spaced JSON, equals the answer's", async () => {
    const content = [words.slice(0, 10), words.slice(10)];
    for (const serialize of [JSON.stringify, spaced]) {
      const events = content.map(
        (piece) =>
          `data: ${serialize({ choices: [{ index: 0, delta: { content: piece } }] }).replaceAll("\n", "")}\n\n`,
      );
      const { metered } = await run([encoder.encode(`${events.join("")}data: [DONE]\n\n`)], false);
      assert.equal(metered.text, words, serialize.name);
    }
    const answer = spaced({ choices: [{ index: 0, message: { role: "assistant", content: words } }] });
    assert.equal(completion(answer).said, words);
  });
});

// Chunks as OpenAI writes them when usage was asked for (compact, `"usage":null` last) go on
// unparsed; their text and tier are read only when they count (no usage came, or a cut stream).
describe("chunks read only when they count", () => {
  const TIERED = [
    chunk({ role: "assistant", content: "" }, 0, { service_tier: "flex", usage: null }),
    chunk({ content: "Hello" }, 0, { service_tier: "flex", usage: null }),
    chunk({ content: " there" }, 0, { service_tier: "flex", usage: null }),
  ];

  test("a complete stream parses only its usage chunk, and still has its text and tier", async () => {
    const parse = JSON.parse;
    let parsed = 0;
    JSON.parse = ((text: string, reviver?: Parameters<typeof parse>[1]) => {
      parsed += 1;
      return parse(text, reviver);
    }) as typeof JSON.parse;
    let metered: Metered;
    try {
      const events = [...TIERED, { id: "chatcmpl-1", choices: [], service_tier: "flex", usage: USAGE }, "[DONE]"];
      ({ metered } = await run([encoder.encode(sse(events))], false));
    } finally {
      JSON.parse = parse;
    }
    assert.equal(parsed, 1, "the usage chunk alone");
    assert.equal(metered.extras?.tier, "flex");
    assert.equal(metered.text, "Hello there");
  });

  test("a usage chunk without the tier takes the others'", async () => {
    const events = [...TIERED, { id: "chatcmpl-1", choices: [], usage: USAGE }, "[DONE]"];
    const { metered } = await run([encoder.encode(sse(events))], false);
    assert.equal(metered.extras?.tier, "flex");
  });

  test("a stream cut before its usage has the unparsed chunks' text and tier", async () => {
    const { metered, out } = await run([encoder.encode(sse(TIERED))], false);
    assert.deepEqual(
      [metered.usage, metered.complete, metered.text, metered.extras?.tier],
      [null, false, "Hello there", "flex"],
    );
    assert.ok(!out.includes('"usage"'), "the usage fields still cut for a client that did not ask");
  });
});
