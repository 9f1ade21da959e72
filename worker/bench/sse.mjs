// Per-stream cost of reading an OpenAI chat stream: the meter's string operations vs the
// eventsource-parser package (docs/decisions/0013-worker-typescript-hono.md).
// `node worker/bench/sse.mjs`
import { createParser } from "eventsource-parser";

const encoder = new TextEncoder();
const words = "the quick brown fox jumps over the lazy dog and keeps running".split(" ");
let sse = "";
for (let i = 0; i < 200; i += 1) {
  const chunk = {
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 1,
    model: "gpt-4o-mini",
    choices: [{ index: 0, delta: { content: `${words[i % words.length]} ` }, finish_reason: null }],
    usage: null,
  };
  sse += `data: ${JSON.stringify(chunk)}\n\n`;
}
sse += `data: ${JSON.stringify({ id: "chatcmpl-1", choices: [], usage: { prompt_tokens: 9, completion_tokens: 200 } })}\n\n`;
sse += "data: [DONE]\n\n";
// what the network hands over: ~1 KB pieces cut anywhere
const pieces = [];
const bytes = encoder.encode(sse);
for (let i = 0; i < bytes.length; i += 1000) pieces.push(bytes.slice(i, i + 1000));

const CONTENT = /"delta":\{[^{}]*?"content":"((?:[^"\\]|\\.)*)"/g;

function stringOps() {
  const decoder = new TextDecoder();
  let buffer = "";
  let text = "";
  let out = 0;
  for (const piece of pieces) {
    buffer += decoder.decode(piece, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const event = buffer.slice(0, end + 2);
      buffer = buffer.slice(end + 2);
      const data = event.slice(5).trim();
      if (data.includes('"usage":{')) JSON.parse(data);
      else for (const [, c] of data.matchAll(CONTENT)) text += c;
      out += event.length; // passed on as it came
    }
  }
  return text.length + out;
}

function parserWithRegex() {
  const decoder = new TextDecoder();
  let text = "";
  let out = 0;
  const parser = createParser({
    onEvent(event) {
      const data = event.data;
      if (data.includes('"usage":{')) JSON.parse(data);
      else for (const [, c] of data.matchAll(CONTENT)) text += c;
      out += `data: ${data}\n\n`.length; // re-serialised: the parser keeps no raw bytes
    },
  });
  for (const piece of pieces) parser.feed(decoder.decode(piece, { stream: true }));
  return text.length + out;
}

function parserWithJson() {
  const decoder = new TextDecoder();
  let text = "";
  let out = 0;
  const parser = createParser({
    onEvent(event) {
      if (event.data === "[DONE]") return;
      const chunk = JSON.parse(event.data);
      for (const choice of chunk.choices) if (choice.delta?.content) text += choice.delta.content;
      out += `data: ${event.data}\n\n`.length;
    },
  });
  for (const piece of pieces) parser.feed(decoder.decode(piece, { stream: true }));
  return text.length + out;
}

const N = 2_000;
for (const [name, run] of Object.entries({
  "string ops (meter)": stringOps,
  "eventsource-parser + regex": parserWithRegex,
  "eventsource-parser + JSON": parserWithJson,
})) {
  for (let i = 0; i < 200; i += 1) run();
  const times = [];
  for (let r = 0; r < 5; r += 1) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i += 1) run();
    times.push(Number(process.hrtime.bigint() - start) / N / 1000);
  }
  times.sort((a, b) => a - b);
  console.log(`${name.padEnd(28)} median ${times[2].toFixed(1).padStart(7)} µs per 200-chunk stream`);
}
