// The floor of `make bench`: a pass-through Worker in the same local runtime (miniflare,
// workerd) as the gateway, in front of the same emulator. It forwards each request to
// UPSTREAM + its path with its headers and streams the answer back: what any Worker in front
// of AI Gateway costs, with no authentication, policy, ledger or metering.
//
//   node worker/bench/floor.mjs UPSTREAM_BASE_URL
// prints one JSON line {"url"} when ready; SIGTERM stops it.

import { Miniflare } from "miniflare";

const upstream = process.argv[2];
if (!upstream) {
  console.error("usage: node floor.mjs UPSTREAM_BASE_URL");
  process.exit(2);
}

const script = `
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
