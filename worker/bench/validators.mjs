// Per-request cost of validating a chat body: valibot vs zod vs the hand-written checks they
// replace (docs/decisions/0013-worker-typescript-hono.md). `node worker/bench/validators.mjs`
// Bundled size (esbuild --minify, one small schema): zod 454 KB (every locale), zod/mini
// 17.7 KB, valibot 4.6 KB.
import * as v from "valibot";
import { z } from "zod";
import * as zm from "zod/mini";

const body = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "What is the capital of France? Answer in one word, please." },
    { role: "assistant", content: "Paris." },
    { role: "user", content: [{ type: "text", text: "And of Italy?" }] },
  ],
  max_tokens: 200,
  stream: true,
  stream_options: { include_usage: true },
  temperature: 0.2,
};

const positive = v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1))));
const valibotSchema = v.looseObject({
  model: v.optional(v.nullable(v.string())),
  messages: v.pipe(v.array(v.looseObject({ role: v.string() })), v.minLength(1)),
  stream: v.optional(v.boolean()),
  max_tokens: positive,
  max_completion_tokens: positive,
  n: positive,
});
const zpositive = z.number().int().min(1).nullable().optional();
const zodSchema = z.looseObject({
  model: z.string().nullable().optional(),
  messages: z.array(z.looseObject({ role: z.string() })).min(1),
  stream: z.boolean().optional(),
  max_tokens: zpositive,
  max_completion_tokens: zpositive,
  n: zpositive,
});

const zmpositive = zm.optional(zm.nullable(zm.number().check(zm.int(), zm.minimum(1))));
const zodMiniSchema = zm.looseObject({
  model: zm.optional(zm.nullable(zm.string())),
  messages: zm.array(zm.looseObject({ role: zm.string() })).check(zm.minLength(1)),
  stream: zm.optional(zm.boolean()),
  max_tokens: zmpositive,
  max_completion_tokens: zmpositive,
  n: zmpositive,
});

function handWritten(b) {
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw new Error("messages");
  if (b.stream !== undefined && typeof b.stream !== "boolean") throw new Error("stream");
  for (const p of ["max_tokens", "max_completion_tokens", "n"]) {
    const x = b[p];
    if (x !== undefined && x !== null && !(Number.isInteger(x) && x > 0)) throw new Error(p);
  }
  return b;
}

const candidates = {
  "hand-written": () => handWritten(body),
  valibot: () => v.parse(valibotSchema, body),
  zod: () => zodSchema.parse(body),
  "zod/mini": () => zodMiniSchema.parse(body),
};

const ROUNDS = 5;
const N = 200_000;
for (const [name, run] of Object.entries(candidates)) {
  for (let i = 0; i < 20_000; i += 1) run(); // warm up the JIT
  const times = [];
  for (let r = 0; r < ROUNDS; r += 1) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i += 1) run();
    times.push(Number(process.hrtime.bigint() - start) / N);
  }
  times.sort((a, b) => a - b);
  console.log(`${name.padEnd(14)} median ${times[ROUNDS >> 1].toFixed(0).padStart(6)} ns per body`);
}
