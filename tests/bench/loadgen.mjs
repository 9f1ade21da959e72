// Closed-loop load generator for `make bench`: N requests at concurrency C against one URL,
// printing one JSON summary line. node:http with keep-alive (Node's fetch costs several times
// more per request), so the client stays cheap next to what it measures.
//
//   node loadgen.mjs '{"url": ..., "headers": {...}, "body": {...}, "requests": 500,
//                      "concurrency": 32, "warmup": 50, "record": false, "rotate": [{...}, ...]}'
//
// With "record": true the summary also lists each measured request's start and every piece of
// its answer with the wall-clock time it arrived (epoch ms), and its x-request-id and
// cf-aig-log-id: what `make bench` pairs with the emulator's own send times, event by event.

import http from "node:http";

const spec = JSON.parse(process.argv[2]);
const payload = Buffer.from(JSON.stringify(spec.body));
const url = new URL(spec.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
const headers = { ...spec.headers, "content-length": payload.length };

const wallClock = () => performance.timeOrigin + performance.now();

// "rotate": a list of header sets, request i (warm-up included) sending the i-th (modulo) on top
// of "headers": many users and isolates, each pair seen once while the list lasts
const rotate = spec.rotate ?? [];
let sent = 0;

function one() {
  const extra = rotate.length ? rotate[sent % rotate.length] : {};
  sent += 1;
  return new Promise((resolve) => {
    // a request the connection failed (reset, hung up): an error of the run, status 0, not a crash
    const failed = (err) =>
      resolve({ ms: performance.now() - start, ttfb: null, status: 0, error: err.code ?? String(err), ledger: null, calledLedger: null, recorded: null });
    const start = performance.now();
    const startedAt = wallClock();
    let firstByte = null;
    const pieces = spec.record ? [] : null;
    const req = http.request(url, { method: "POST", headers: { ...headers, ...extra }, agent }, (res) => {
      if (pieces) res.setEncoding("utf8");
      res.on("data", (piece) => {
        if (firstByte === null) firstByte = performance.now() - start;
        pieces?.push([wallClock(), piece]);
      });
      // the gateway's admission: "ledger;dur=" when it awaited the ledger, "lease;dur=" or
      // "pool;dur=" (this isolate's cold-start pool) when not
      const timing = /(ledger|lease|pool);dur=([\d.]+)/.exec(res.headers["server-timing"] ?? "");
      const ledger = timing ? Number(timing[2]) : null;
      const calledLedger = timing ? timing[1] === "ledger" : null;
      const recorded = pieces && {
        startedAt,
        pieces,
        requestId: res.headers["x-request-id"] ?? null,
        logId: res.headers["cf-aig-log-id"] ?? null,
      };
      res.on("end", () =>
        resolve({
          ms: performance.now() - start,
          ttfb: firstByte,
          status: res.statusCode,
          ledger,
          calledLedger,
          recorded,
        }),
      );
      res.on("error", failed);
    });
    req.on("error", failed);
    req.end(payload);
  });
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
// what the failed requests were: their status, or the connection's error code
const errorKinds = {};
for (const r of results) if (r.status !== 200) errorKinds[r.error ?? r.status] = (errorKinds[r.error ?? r.status] ?? 0) + 1;
const ledger = results.map((r) => r.ledger).filter((v) => v !== null).sort((a, b) => a - b);
const admitted = results.filter((r) => r.calledLedger !== null);
agent.destroy();
console.log(
  JSON.stringify({
    requests: results.length,
    errors,
    errorKinds,
    rps: results.length / seconds,
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    ttfbP50: percentile(ttfb, 50),
    ledgerP50: ledger.length ? percentile(ledger, 50) : null,
    ledgerP99: ledger.length ? percentile(ledger, 99) : null,
    // share of requests whose admission awaited a ledger call (null: not the gateway)
    ledgerShare: admitted.length ? admitted.filter((r) => r.calledLedger).length / admitted.length : null,
    ...(spec.record ? { recorded: results.map((r) => r.recorded) } : {}),
  }),
);
