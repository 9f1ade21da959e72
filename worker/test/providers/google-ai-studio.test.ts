// The Gemini module: OpenAI chat → generateContent, a Gemini response → an OpenAI completion, the
// SSE stream → OpenAI chunks however its bytes are cut, usageMetadata (thoughts, cached content)
// and its cost, thought signatures carried through tool call ids, and Google's errors → ours.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HttpError } from "../../src/lib/errors";
import { costMicros } from "../../src/pricing/prices";
import { authHeaders, generatePath } from "../../src/providers/google-ai-studio/endpoint";
import { geminiError } from "../../src/providers/google-ai-studio/errors";
import { generateContentRequest, splitCallId } from "../../src/providers/google-ai-studio/request";
import { completion } from "../../src/providers/google-ai-studio/response";
import { translateStream } from "../../src/providers/google-ai-studio/stream";
import { readUsage } from "../../src/providers/google-ai-studio/usage";
import type { ChatCall } from "../../src/providers/types";
import { call as baseCall, dataOf, encoder, readAll, splitAt, streamOf, WEATHER } from "./support";

const FLASH = { in: 300_000, out: 2_500_000, cachedIn: 30_000, cacheWrite: 300_000 };

function call(body: Record<string, unknown>, overrides: Partial<ChatCall> = {}): ChatCall {
  return baseCall(body, {
    env: { PROVIDER_KEY_GOOGLE_AI_STUDIO: "AIza-test-key" } as unknown as ChatCall["env"],
    model: "google-ai-studio/gemini-2.5-flash",
    upstreamModel: "gemini-2.5-flash",
    provider: "google-ai-studio",
    price: FLASH,
    ...overrides,
  });
}

describe("request", () => {
  test("system and developer messages become systemInstruction, turns user and model, merged", () => {
    const request = generateContentRequest(
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
    assert.deepEqual(request.systemInstruction, { parts: [{ text: "Be terse." }, { text: "Use metric." }] });
    assert.deepEqual(request.contents, [
      { role: "user", parts: [{ text: "Hi" }, { text: "Are you there?" }] },
      { role: "model", parts: [{ text: "Yes." }] },
    ]);
    assert.deepEqual(request.generationConfig, { maxOutputTokens: 4096 });
    assert.equal("model" in request, false, "the model is in the path");
  });

  test("images go inline; an image by URL is a 400 naming it", () => {
    const request = generateContentRequest(
      call({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "What is this?" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0K" } },
            ],
          },
        ],
      }),
    );
    assert.deepEqual((request.contents as { parts: unknown[] }[])[0]?.parts[1], {
      inlineData: { mimeType: "image/png", data: "iVBORw0K" },
    });
    assert.throws(
      () =>
        generateContentRequest(
          call({
            messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x.test/a.png" } }] }],
          }),
        ),
      (err: HttpError) => err.status === 400 && err.param === "messages[0].content[0].image_url.url",
    );
  });

  test("a tool round trip: declarations, mode, functionCall and functionResponse parts", () => {
    const request = generateContentRequest(
      call({
        tools: [WEATHER],
        tool_choice: { type: "function", function: { name: "get_weather" } },
        messages: [
          { role: "user", content: "Weather in Paris?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              {
                id: "get_weather-1__thought__c2ln",
                type: "function",
                function: { name: "get_weather", arguments: '{"city":"Paris"}' },
              },
            ],
          },
          { role: "tool", tool_call_id: "get_weather-1__thought__c2ln", content: '{"celsius": 21}' },
          { role: "tool", tool_call_id: "get_weather-1__thought__c2ln", content: "and sunny" },
        ],
      }),
    );
    assert.deepEqual(request.tools, [
      {
        functionDeclarations: [
          { name: "get_weather", description: "Weather of a city", parametersJsonSchema: WEATHER.function.parameters },
        ],
      },
    ]);
    assert.deepEqual(request.toolConfig, {
      functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] },
    });
    assert.deepEqual(request.contents, [
      { role: "user", parts: [{ text: "Weather in Paris?" }] },
      {
        role: "model",
        parts: [
          {
            functionCall: { name: "get_weather", args: { city: "Paris" }, id: "get_weather-1" },
            thoughtSignature: "c2ln",
          },
        ],
      },
      {
        role: "user",
        parts: [
          { functionResponse: { name: "get_weather", response: { celsius: 21 }, id: "get_weather-1" } },
          { functionResponse: { name: "get_weather", response: { content: "and sunny" }, id: "get_weather-1" } },
        ],
      },
    ]);
  });

  test("tool_choice words map to function-calling modes", () => {
    const mode = (choice: unknown) =>
      (generateContentRequest(call({ tools: [WEATHER], tool_choice: choice })).toolConfig as Record<string, unknown>)
        .functionCallingConfig;
    assert.deepEqual(mode("auto"), { mode: "AUTO" });
    assert.deepEqual(mode("required"), { mode: "ANY" });
    assert.deepEqual(mode("none"), { mode: "NONE" });
  });

  test("response_format becomes a JSON answer with its schema; sampling and stops carry over", () => {
    const schema = { type: "object", properties: { a: { type: "integer" } }, required: ["a"] };
    const request = generateContentRequest(
      call({
        response_format: { type: "json_schema", json_schema: { name: "x", schema } },
        temperature: 1.5,
        top_p: 0.9,
        stop: ["END"],
        seed: 7,
        max_completion_tokens: 300,
        reasoning_effort: "low",
      }),
    );
    assert.deepEqual(request.generationConfig, {
      maxOutputTokens: 300,
      responseMimeType: "application/json",
      responseJsonSchema: schema,
      stopSequences: ["END"],
      temperature: 1.5,
      topP: 0.9,
      seed: 7,
      thinkingConfig: { thinkingBudget: 1024 },
    });
    const three = generateContentRequest(call({ reasoning_effort: "high" }, { upstreamModel: "gemini-3-pro-preview" }));
    assert.deepEqual((three.generationConfig as Record<string, unknown>).thinkingConfig, { thinkingLevel: "HIGH" });
  });

  test("what Gemini cannot do is a 400 naming the parameter", () => {
    for (const [body, param] of [
      [{ n: 2 }, "n"],
      [{ logprobs: true }, "logprobs"],
      [{ reasoning_effort: "extreme" }, "reasoning_effort"],
      [{ messages: [{ role: "tool", tool_call_id: "nope", content: "x" }] }, "messages[0].tool_call_id"],
    ] as const) {
      assert.throws(
        () => generateContentRequest(call(body as Record<string, unknown>)),
        (err: HttpError) => err.status === 400 && err.param === param,
        param,
      );
    }
  });

  test("the key goes as x-goog-api-key, never as Authorization; streams ask for SSE", () => {
    assert.deepEqual(authHeaders(call({})), { "x-goog-api-key": "AIza-test-key" });
    assert.deepEqual(authHeaders(call({}, { env: {} as ChatCall["env"] })), {}, "stored on the gateway");
    assert.equal(
      generatePath("gemini-2.5-flash", false),
      "google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent",
    );
    assert.equal(
      generatePath("gemini-2.5-flash", true),
      "google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    );
  });
});

const USAGE = {
  promptTokenCount: 2000,
  candidatesTokenCount: 40,
  thoughtsTokenCount: 120,
  cachedContentTokenCount: 1500,
  totalTokenCount: 2160,
};

describe("response", () => {
  test("text parts are the content (thoughts are not); usage counts thoughts as output, cached as input", () => {
    const answer = completion(
      JSON.stringify({
        candidates: [
          {
            content: {
              role: "model",
              parts: [{ text: "Let me see.", thought: true }, { text: "Hello" }, { text: " there" }],
            },
            finishReason: "STOP",
            index: 0,
          },
        ],
        usageMetadata: USAGE,
        modelVersion: "gemini-2.5-flash",
        responseId: "abc",
      }),
    );
    const body = JSON.parse(answer.text);
    assert.equal(body.choices[0].message.content, "Hello there");
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.equal(body.id, "chatcmpl-abc");
    assert.deepEqual(body.usage, {
      prompt_tokens: 2000,
      completion_tokens: 160,
      total_tokens: 2160,
      prompt_tokens_details: { cached_tokens: 1500 },
      completion_tokens_details: { reasoning_tokens: 120 },
    });
    assert.deepEqual(answer.usage, {
      promptTokens: 2000,
      completionTokens: 160,
      cachedTokens: 1500,
      cacheWriteTokens: 0,
    });
    assert.equal(answer.said, "Let me see.Hello there");
  });

  test("function calls are tool calls, their thought signature in the id", () => {
    const answer = completion(
      JSON.stringify({
        candidates: [
          {
            content: {
              role: "model",
              parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "c2ln" }],
            },
            finishReason: "STOP",
          },
        ],
        usageMetadata: USAGE,
        responseId: "r1",
      }),
    );
    const message = JSON.parse(answer.text).choices[0];
    assert.equal(message.finish_reason, "tool_calls");
    assert.equal(message.message.content, null);
    const [toolCall] = message.message.tool_calls;
    assert.equal(toolCall.function.name, "get_weather");
    assert.deepEqual(JSON.parse(toolCall.function.arguments), { city: "Paris" });
    assert.deepEqual(splitCallId(toolCall.id), { id: "call_r1_0", signature: "c2ln" });
  });

  test("finish reasons map; a blocked prompt is content_filter", () => {
    const finish = (reason: string) =>
      JSON.parse(
        completion(JSON.stringify({ candidates: [{ content: { parts: [{ text: "x" }] }, finishReason: reason }] }))
          .text,
      ).choices[0].finish_reason;
    assert.equal(finish("MAX_TOKENS"), "length");
    assert.equal(finish("SAFETY"), "content_filter");
    assert.equal(finish("RECITATION"), "content_filter");
    assert.equal(finish("STOP"), "stop");
    const blocked = completion(
      JSON.stringify({
        promptFeedback: { blockReason: "SAFETY" },
        usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 },
      }),
    );
    assert.equal(JSON.parse(blocked.text).choices[0].finish_reason, "content_filter");
    assert.deepEqual(blocked.usage, { promptTokens: 9, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 0 });
  });

  test("cost: cached input at the cached price, thoughts and answer at the output price", () => {
    const usage = readUsage(USAGE);
    assert.ok(usage);
    // 500 × 0.30 + 1500 × 0.03 + 160 × 2.50 = 150 + 45 + 400 = 595 µUSD
    assert.equal(costMicros(usage, FLASH), 595);
    assert.equal(readUsage({ candidatesTokenCount: 3 }), null, "no prompt count: estimated");
    assert.deepEqual(readUsage({ promptTokenCount: 10, toolUsePromptTokenCount: 5 }), {
      promptTokens: 15,
      completionTokens: 0,
      cachedTokens: 0,
      cacheWriteTokens: 0,
    });
  });
});

function sse(events: unknown[]): Uint8Array {
  return encoder.encode(events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join(""));
}

const PROMPT_ONLY = { promptTokenCount: 20, totalTokenCount: 20 };
const STREAM = [
  {
    candidates: [{ content: { role: "model", parts: [{ text: "thinking…", thought: true }] } }],
    usageMetadata: PROMPT_ONLY,
    modelVersion: "gemini-2.5-flash",
    responseId: "s1",
  },
  {
    candidates: [{ content: { role: "model", parts: [{ text: "Hello" }] } }],
    usageMetadata: PROMPT_ONLY,
    responseId: "s1",
  },
  {
    candidates: [{ content: { role: "model", parts: [{ text: " world" }] }, finishReason: "STOP" }],
    usageMetadata: { promptTokenCount: 20, candidatesTokenCount: 2, thoughtsTokenCount: 30, totalTokenCount: 52 },
    responseId: "s1",
  },
];

describe("stream", () => {
  test("becomes OpenAI chunks: role, content, finish, usage, [DONE]; metered from the last usage", async () => {
    const metered = translateStream(streamOf([sse(STREAM)]), { clientWantsUsage: true });
    const events = dataOf(await readAll(metered.stream));
    const deltas = events.filter(
      (e): e is { choices: { delta: Record<string, unknown>; finish_reason: unknown }[] } =>
        typeof e === "object" && (e as { choices?: unknown[] }).choices?.length === 1,
    );
    assert.deepEqual(
      deltas.map((e) => e.choices[0]?.delta),
      [{ role: "assistant", content: "" }, { content: "Hello" }, { content: " world" }, {}],
    );
    assert.equal(deltas.at(-1)?.choices[0]?.finish_reason, "stop");
    const usage = events.find((e) => typeof e === "object" && (e as { usage?: unknown }).usage) as {
      usage: Record<string, unknown>;
    };
    assert.equal(usage.usage.completion_tokens, 32);
    assert.equal(events.at(-1), "[DONE]");
    const done = await metered.done;
    assert.equal(done.complete, true);
    assert.deepEqual(done.usage, { promptTokens: 20, completionTokens: 32, cachedTokens: 0, cacheWriteTokens: 0 });
  });

  test("gives the same chunks however the bytes are cut, even inside a character", async () => {
    const bytes = sse([{ ...STREAM[0], candidates: [{ content: { parts: [{ text: "héllo ✓" }] } }] }, STREAM[2]]);
    const whole = await readAll(translateStream(streamOf([bytes]), { clientWantsUsage: false }).stream);
    const strip = (s: string) => s.replace(/"created":\d+/g, "");
    for (let cut = 1; cut < bytes.length; cut += 7) {
      const pieces = await readAll(translateStream(streamOf(splitAt(bytes, cut)), { clientWantsUsage: false }).stream);
      assert.equal(strip(pieces), strip(whole), `cut at ${cut}`);
    }
  });

  test("a function call is one tool call chunk with its id and arguments", async () => {
    const events = dataOf(
      await readAll(
        translateStream(
          streamOf([
            sse([
              {
                candidates: [
                  {
                    content: {
                      parts: [
                        { functionCall: { name: "get_weather", args: { city: "Oslo" } }, thoughtSignature: "c2ln" },
                      ],
                    },
                    finishReason: "STOP",
                  },
                ],
                usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 4, totalTokenCount: 9 },
                responseId: "t1",
              },
            ]),
          ]),
          { clientWantsUsage: false },
        ).stream,
      ),
    ) as {
      choices: {
        delta: { tool_calls?: { index: number; id: string; function: { arguments: string } }[] };
        finish_reason: unknown;
      }[];
    }[];
    const calls = events.flatMap((e) => (Array.isArray(e.choices) ? (e.choices[0]?.delta.tool_calls ?? []) : []));
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.index, 0);
    assert.deepEqual(splitCallId(calls[0]?.id ?? ""), { id: "call_t1_0", signature: "c2ln" });
    assert.deepEqual(JSON.parse(calls[0]?.function.arguments ?? ""), { city: "Oslo" });
    assert.equal(
      events.find((e) => Array.isArray(e.choices) && e.choices[0]?.finish_reason)?.choices[0]?.finish_reason,
      "tool_calls",
    );
  });

  test("a stream cut before its finish reason ends with an in-band error; its output is estimated", async () => {
    const metered = translateStream(streamOf([sse(STREAM.slice(0, 2))]), { clientWantsUsage: false });
    const events = dataOf(await readAll(metered.stream));
    assert.ok(
      events.some((e) => typeof e === "object" && (e as { error?: unknown }).error),
      "an error chunk",
    );
    assert.ok(!events.includes("[DONE]"));
    const done = await metered.done;
    assert.equal(done.complete, false);
    assert.equal(done.text, "thinking…Hello");
  });

  test("an in-band Google error becomes an OpenAI error the SDKs raise", async () => {
    const events = dataOf(
      await readAll(
        translateStream(
          streamOf([
            sse([STREAM[1], { error: { code: 503, message: "The model is overloaded.", status: "UNAVAILABLE" } }]),
          ]),
          { clientWantsUsage: false },
        ).stream,
      ),
    );
    const error = events.find((e) => typeof e === "object" && (e as { error?: unknown }).error) as {
      error: Record<string, unknown>;
    };
    assert.equal(error.error.message, "The model is overloaded.");
    assert.equal(events.filter((e) => typeof e === "object" && (e as { error?: unknown }).error).length, 1);
  });
});

describe("errors", () => {
  const respond = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });
  const google = (code: number, status: string, message: string, details?: unknown[]) => ({
    error: { code, message, status, ...(details ? { details } : {}) },
  });

  test("each status maps to the one our clients expect", async () => {
    const badKey = google(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
      { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" },
    ]);
    assert.equal((await geminiError(respond(400, badKey))).status, 502, "the gateway's credentials");
    assert.equal((await geminiError(respond(403, google(403, "PERMISSION_DENIED", "denied")))).status, 502);
    const invalid = await geminiError(
      respond(400, google(400, "INVALID_ARGUMENT", "Please use a valid role: user, model.")),
    );
    assert.equal(invalid.status, 400);
    assert.match(invalid.message, /valid role/);
    assert.equal((await geminiError(respond(429, google(429, "RESOURCE_EXHAUSTED", "quota")))).status, 429);
    assert.equal((await geminiError(respond(503, google(503, "UNAVAILABLE", "overloaded")))).status, 503);
    assert.equal((await geminiError(respond(500, google(500, "INTERNAL", "boom")))).status, 502);
    const missing = await geminiError(respond(404, google(404, "NOT_FOUND", "models/x is not found")));
    assert.equal(missing.status, 404);
  });
});
