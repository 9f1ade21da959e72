// The Messages route's bridge to other providers' models: an Anthropic request → OpenAI chat,
// an OpenAI completion → Anthropic's message, OpenAI chunks → Anthropic's events (however the
// bytes are cut; an in-band error or a cut is Anthropic's error event).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HttpError } from "../src/lib/errors";
import type { MessagesBody } from "../src/protocol/bodies";
import { messageOf } from "../src/routes/messages-bridge/answer";
import { chatBodyOf } from "../src/routes/messages-bridge/request";
import { anthropicStream } from "../src/routes/messages-bridge/stream";
import { encoder, readAll, splitAt, streamOf } from "./providers/support";

const body = (fields: Record<string, unknown>): MessagesBody =>
  ({ model: "openai/gpt-4o-mini", max_tokens: 100, messages: [], ...fields }) as MessagesBody;

describe("request", () => {
  test("system, images, tool calls and tool results in OpenAI's order", () => {
    const chat = chatBodyOf(
      body({
        system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Weather?" },
              { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBO" } },
            ],
          },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "hm", signature: "s" },
              { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Oslo" } },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "7C" }] },
              { type: "text", text: "And?" },
            ],
          },
        ],
        tools: [{ name: "get_weather", input_schema: { type: "object" } }],
        tool_choice: { type: "any", disable_parallel_tool_use: true },
        stop_sequences: ["END"],
        stream: true,
        metadata: { user_id: "u1" },
      }),
    );
    assert.deepEqual(chat.messages, [
      { role: "system", content: "Be brief." },
      {
        role: "user",
        content: [
          { type: "text", text: "Weather?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBO" } },
        ],
      },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
        ],
      },
      { role: "tool", tool_call_id: "toolu_1", content: "7C" },
      { role: "user", content: [{ type: "text", text: "And?" }] },
    ]);
    assert.deepEqual(chat.tools, [
      { type: "function", function: { name: "get_weather", parameters: { type: "object" } } },
    ]);
    assert.equal(chat.tool_choice, "required");
    assert.equal(chat.parallel_tool_calls, false);
    assert.deepEqual(chat.stop, ["END"]);
    assert.deepEqual(chat.stream_options, { include_usage: true });
    assert.equal(chat.user, "u1");
    assert.equal("max_tokens" in chat, false, "the cap travels as the call's maxTokens");
  });

  test("what only Anthropic's models do is a 400 naming the field", () => {
    const refused = (fields: Record<string, unknown>, param: string) =>
      assert.throws(
        () => chatBodyOf(body(fields)),
        (e: HttpError) => e.status === 400 && e.param === param,
      );
    refused({ tools: [{ type: "web_search_20250305", name: "web_search" }] }, "tools.0.type");
    refused({ container: "c" }, "container");
    refused({ messages: [{ role: "user", content: [{ type: "document", source: {} }] }] }, "messages.0.content.0.type");
  });
});

describe("answer", () => {
  test("text and tool calls as blocks, the finish as stop_reason, usage without the cache", () => {
    const message = JSON.parse(
      messageOf(
        JSON.stringify({
          id: "chatcmpl-abc",
          choices: [
            {
              message: {
                content: "On it.",
                tool_calls: [{ id: "call_1", function: { name: "f", arguments: '{"a":1}' } }],
              },
              finish_reason: "tool_calls",
            },
          ],
          usage: { prompt_tokens: 50, completion_tokens: 9, prompt_tokens_details: { cached_tokens: 20 } },
        }),
        "gpt",
      ),
    );
    assert.equal(message.id, "msg_abc");
    assert.deepEqual(message.content, [
      { type: "text", text: "On it." },
      { type: "tool_use", id: "call_1", name: "f", input: { a: 1 } },
    ]);
    assert.equal(message.stop_reason, "tool_use");
    assert.deepEqual(message.usage, {
      input_tokens: 30,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 20,
      output_tokens: 9,
    });
  });
});

const CHUNKS = [
  { id: "chatcmpl-1", choices: [{ delta: { role: "assistant", content: "" }, finish_reason: null }] },
  { id: "chatcmpl-1", choices: [{ delta: { content: "Hel" }, finish_reason: null }] },
  { id: "chatcmpl-1", choices: [{ delta: { content: "lo" }, finish_reason: null }] },
  {
    id: "chatcmpl-1",
    choices: [
      {
        delta: { tool_calls: [{ index: 0, id: "call_1", function: { name: "f", arguments: "" } }] },
        finish_reason: null,
      },
    ],
  },
  {
    id: "chatcmpl-1",
    choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }, finish_reason: null }],
  },
  {
    id: "chatcmpl-1",
    choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: "1}" } }] }, finish_reason: null }],
  },
  { id: "chatcmpl-1", choices: [{ delta: {}, finish_reason: "tool_calls" }] },
  { id: "chatcmpl-1", choices: [], usage: { prompt_tokens: 10, completion_tokens: 4 } },
];
const sseOf = (chunks: unknown[]) => `${chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("")}data: [DONE]\n\n`;
const events = (text: string) =>
  text
    .split("\n\n")
    .filter((e) => e.startsWith("event: "))
    .map((e) => JSON.parse(e.slice(e.indexOf("data: ") + 6)) as Record<string, unknown>);

describe("stream", () => {
  test("Anthropic's event sequence, the same at every cut", async () => {
    const bytes = encoder.encode(sseOf(CHUNKS));
    const whole = events(await readAll(anthropicStream(streamOf([bytes]), "gpt")));
    assert.deepEqual(
      whole.map((e) => e.type),
      [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
      ],
    );
    assert.deepEqual(whole[5], {
      type: "content_block_start",
      index: 1,
      content_block: { type: "tool_use", id: "call_1", name: "f", input: {} },
    });
    assert.deepEqual(whole[9], {
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { input_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 4 },
    });
    for (let cut = 1; cut < bytes.length; cut += 13) {
      assert.deepEqual(events(await readAll(anthropicStream(streamOf(splitAt(bytes, cut)), "gpt"))), whole);
    }
  });

  test("an in-band error, or a stream that ends without [DONE], is Anthropic's error event", async () => {
    const failed = encoder.encode(
      `${sseOf(CHUNKS.slice(0, 2)).replace("data: [DONE]\n\n", "")}data: {"error":{"message":"boom"}}\n\n`,
    );
    const out = events(await readAll(anthropicStream(streamOf([failed]), "gpt")));
    assert.deepEqual(out.at(-1), { type: "error", error: { type: "api_error", message: "boom" } });
    const cut = encoder.encode(sseOf(CHUNKS.slice(0, 3)).replace("data: [DONE]\n\n", ""));
    const cutOut = events(await readAll(anthropicStream(streamOf([cut]), "gpt")));
    assert.equal(cutOut.at(-1)?.type, "error");
  });
});
