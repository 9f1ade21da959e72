// The Vercel AI SDK against the gateway, run by tests/test_client_suite_e2e.py (not by `make unit`:
// it needs a running gateway; pytest starts what `make dev` runs and passes GATEWAY_URL and
// GATEWAY_KEY): @ai-sdk/openai's default model (the Responses API), its .chat() model (Chat
// Completions) and embed(); @ai-sdk/anthropic (Messages). Streaming and not, a tool each model
// calls and whose result it answers, and generateObject's object valid against its schema.

import assert from "node:assert/strict";
import { test } from "node:test";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { embed, embedMany, generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const url = process.env.GATEWAY_URL;
const apiKey = process.env.GATEWAY_KEY;
assert.ok(url && apiKey, "GATEWAY_URL and GATEWAY_KEY are set by the pytest wrapper");

const openai = createOpenAI({ baseURL: `${url}/v1`, apiKey });
const anthropic = createAnthropic({ baseURL: `${url}/anthropic/v1`, apiKey });

const words = (text) => text.trim().split(/\s+/).length;

test("openai default model: the Responses API", async () => {
  const { text, usage } = await generateText({ model: openai("gpt-4o-mini"), prompt: "Hello emulate:tokens=5" });
  assert.equal(words(text), 5);
  assert.equal(usage.outputTokens, 5);
});

test("openai default model, streamed", async () => {
  const result = streamText({ model: openai("gpt-4o-mini"), prompt: "Stream emulate:tokens=6" });
  let text = "";
  for await (const part of result.textStream) text += part;
  assert.equal(words(text), 6);
  assert.equal((await result.usage).outputTokens, 6);
});

test("openai .chat(): Chat Completions, streamed and not", async () => {
  const whole = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "Chat emulate:tokens=4" });
  assert.equal(words(whole.text), 4);
  const result = streamText({ model: openai.chat("gpt-4o-mini"), prompt: "Chat emulate:tokens=4" });
  let text = "";
  for await (const part of result.textStream) text += part;
  assert.equal(text, whole.text);
});

test("embed and embedMany", async () => {
  const model = openai.embedding("text-embedding-3-small");
  const { embedding } = await embed({ model, value: "hello" });
  assert.ok(embedding.length > 100);
  const { embeddings } = await embedMany({ model, values: ["a", "b"] });
  assert.equal(embeddings.length, 2);
  assert.notDeepEqual(embeddings[0], embeddings[1]);
});

test("anthropic: Messages, streamed and not", async () => {
  const model = anthropic("claude-sonnet-4-6");
  const whole = await generateText({ model, prompt: "Claude emulate:tokens=5", maxOutputTokens: 100 });
  assert.equal(words(whole.text), 5);
  assert.equal(whole.usage.outputTokens, 5);
  const result = streamText({ model, prompt: "Claude emulate:tokens=5", maxOutputTokens: 100 });
  let text = "";
  for await (const part of result.textStream) text += part;
  assert.equal(text, whole.text);
});

const MODELS = {
  "openai (Responses)": () => openai("gpt-4o-mini"),
  "openai.chat (Chat Completions)": () => openai.chat("gpt-4o-mini"),
  "anthropic (Messages)": () => anthropic("claude-sonnet-5-5"),
};

const City = z.object({ name: z.string(), population: z.number().int(), landmarks: z.array(z.string()) });

for (const [name, model] of Object.entries(MODELS)) {
  test(`${name}: generateObject's object follows its schema`, async () => {
    const { object } = await generateObject({ model: model(), schema: City, prompt: "Describe Paris." });
    assert.deepEqual(City.parse(object), object);
  });

  test(`${name}: a tool is called, and the model answers with its result`, async () => {
    const asked = [];
    const weather = tool({
      description: "The weather in a city",
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        asked.push(city);
        return `Sunny in ${city}`;
      },
    });
    const result = await generateText({
      model: model(),
      tools: { weather },
      stopWhen: stepCountIs(3),
      prompt: "What is the weather in Paris?",
      maxOutputTokens: 200,
    });
    assert.equal(asked.length, 1, "the tool ran once");
    assert.equal(result.steps.length, 2, "a step that called the tool, one that answered");
    assert.ok(result.text.trim().length > 0);
  });
}
