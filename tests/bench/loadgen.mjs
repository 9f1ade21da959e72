// Closed-loop load generator for `make bench`: N requests at concurrency C against one URL,
// printing one JSON summary line. Written in Node (undici keep-alive) so that the client is
// cheap next to what it measures.
//
//   node loadgen.mjs '{"url": ..., "headers": {...}, "body": {...}, "requests": 500,
//                      "concurrency": 32, "warmup": 50, "stream": false}'

const spec = JSON.parse(process.argv[2]);
const payload = JSON.stringify(spec.body);

async function one() {
  const start = performance.now();
  const response = await fetch(spec.url, { method: "POST", headers: spec.headers, body: payload });
  let firstByte = null;
  const reader = response.body.getReader();
  for (;;) {
    const { done } = await reader.read();
    if (firstByte === null) firstByte = performance.now() - start;
    if (done) break;
  }
  return { ms: performance.now() - start, ttfb: firstByte, status: response.status };
}

async function run(total, concurrency) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next += 1;
      results.push(await one());
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { results, seconds: (performance.now() - start) / 1000 };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

await run(spec.warmup ?? 0, spec.concurrency);
const { results, seconds } = await run(spec.requests, spec.concurrency);
const ms = results.map((r) => r.ms).sort((a, b) => a - b);
const ttfb = results.map((r) => r.ttfb).sort((a, b) => a - b);
const errors = results.filter((r) => r.status !== 200).length;
console.log(
  JSON.stringify({
    requests: results.length,
    errors,
    rps: results.length / seconds,
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    ttfbP50: percentile(ttfb, 50),
  }),
);
