// What a warm request still computes, each step timed alone (issue 12: kept only if needed).
// `cd worker && node --import tsx bench/hot-path.ts`. Node's V8, as workerd's; per operation,
// median of 9 rounds. Compare with make bench's "added p50" at c=1 (about 0.4 ms).

import { estimatePromptTokens, inputTokensBound } from "../src/pricing/estimate";
import { checkJsonShape } from "../src/request/body";
import { chatFields } from "../src/request/fields";

const encoder = new TextEncoder();

function chat(words: number) {
  const text = Array.from({ length: words }, (_, i) => `word${i}`).join(" ");
  return {
    model: "gpt-4o-mini",
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: text },
    ],
    max_tokens: 200,
  };
}

const answer = JSON.stringify({
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 0,
  model: "gpt-4o-mini",
  choices: [
    { index: 0, message: { role: "assistant", content: "Hello there, how can I help?" }, finish_reason: "stop" },
  ],
  usage: { prompt_tokens: 20, completion_tokens: 12, total_tokens: 32 },
});

async function time(label: string, op: () => unknown | Promise<unknown>, n = 2_000): Promise<number> {
  const rounds: number[] = [];
  for (let r = 0; r < 9; r++) {
    const start = performance.now();
    for (let i = 0; i < n; i++) await op();
    rounds.push(((performance.now() - start) * 1000) / n);
  }
  rounds.sort((a, b) => a - b);
  const us = rounds[4] as number;
  console.log(`${label.padEnd(58)} ${us.toFixed(2).padStart(8)} µs`);
  return us;
}

const key = encoder.encode(`gw_live_${"x".repeat(40)}`);
console.log("per warm request (µs, median of 9 rounds)");
let total = 0;
// a cold key only: a warm key's hash is remembered (auth.ts)
await time("SHA-256 of the API key (crypto.subtle; cold keys)", () => crypto.subtle.digest("SHA-256", key));
for (const [name, words] of [
  ["1 KB", 150],
  ["20 KB", 3_000],
] as const) {
  const raw = JSON.stringify(chat(words));
  const parsed = JSON.parse(raw);
  const body = chatFields(parsed);
  const request = { body: parsed, text: raw, bytes: encoder.encode(raw).length };
  const us = [
    await time(`depth and item bounds of the body's text (${name})`, () => checkJsonShape(raw)),
    await time(`JSON.parse of the request body (${name})`, () => JSON.parse(raw)),
    await time(`check the fields the gateway reads (${name})`, () => chatFields(parsed)),
    await time(`worst-case prompt bound + estimate (${name})`, () => {
      inputTokensBound(request, { tools: false });
      estimatePromptTokens(body);
    }),
    await time(`JSON.stringify of the upstream body (${name})`, () => JSON.stringify(body)),
    await time(`SHA-256 of the body for a cache key (${name})`, () =>
      crypto.subtle.digest("SHA-256", encoder.encode(raw)),
    ),
  ];
  if (name === "1 KB") total += us.reduce((a, b) => a + b, 0);
}
total += await time("JSON.parse of the answer for its usage", () => JSON.parse(answer));
console.log(`${"all of it, 1 KB body (cache key included)".padEnd(58)} ${total.toFixed(2).padStart(8)} µs`);
