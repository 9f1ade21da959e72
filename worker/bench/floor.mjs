// The floors of `make bench`: Workers in the same local runtime (miniflare, workerd) as the
// gateway, in front of the same emulator, that forward each request to UPSTREAM + its path
// with its headers and send the answer back.
//   pass: the body and the answer streamed through untouched: what any Worker in front of AI
//         Gateway costs, with no authentication, policy, ledger or metering.
//   read: the least a Worker that meters costs: it reads the request's JSON and sends it on
//         re-serialised, reads a complete answer and parses it (the usage is in it), and reads
//         every chunk of a stream in JavaScript (a meter must see each one).
//
//   node worker/bench/floor.mjs UPSTREAM_BASE_URL [pass|read]
// prints one JSON line {"url"} when ready; SIGTERM stops it.

import { Miniflare } from "miniflare";

const [upstream, mode = "pass"] = process.argv.slice(2);
if (!upstream || !["pass", "read"].includes(mode)) {
  console.error("usage: node floor.mjs UPSTREAM_BASE_URL [pass|read]");
  process.exit(2);
}

const pass = `
export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const answer = await fetch(env.UPSTREAM + pathname, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    return new Response(answer.body, answer);
  },
};`;

const read = `
export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const body = JSON.parse(await request.text());
    const answer = await fetch(env.UPSTREAM + pathname, {
      method: request.method,
      headers: request.headers,
      body: JSON.stringify(body),
    });
    if ((answer.headers.get("content-type") ?? "").includes("text/event-stream")) {
      const decoder = new TextDecoder();
      let usage = 0;
      const meter = new TransformStream({
        transform(chunk, controller) {
          if (decoder.decode(chunk, { stream: true }).includes('"usage"')) usage += 1;
          controller.enqueue(chunk);
        },
      });
      return new Response(answer.body.pipeThrough(meter), answer);
    }
    const text = await answer.text();
    JSON.parse(text);
    return new Response(text, answer);
  },
};`;

const script = mode === "read" ? read : pass;

const mf = new Miniflare({
  modules: true,
  script,
  compatibilityDate: "2026-08-01",
  bindings: { UPSTREAM: upstream },
  host: "127.0.0.1",
  port: 0,
});
const url = await mf.ready;
console.log(JSON.stringify({ url: url.toString().replace(/\/$/, "") }));
const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The parent going away (a killed bench) must not leave workerd behind.
process.stdin.on("end", stop);
process.stdin.resume();
