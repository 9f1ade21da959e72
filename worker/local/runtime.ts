// The local runtime: the rendered Worker in workerd (via miniflare) with its KV seeded from
// the compiled records, and the AI Gateway emulator behind it. Driven by provision/local/runtime.py,
// which writes the spec (same modules, records and bindings that Pulumi deploys).
//
//   node --import tsx/esm worker/local/runtime.ts SPEC.json   (from worker/, where tsx is installed)
// prints one JSON line {"workerUrl", "emulatorUrl"} when ready; SIGHUP re-reads the spec
// (new modules / records, same ports, usage kept) and prints {"reloaded": true}; SIGINT or
// SIGTERM stops everything it started.

import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { Miniflare, type MiniflareOptions, type RemoteProxyConnectionString } from "miniflare";
import { type RunningEmulator, startEmulator } from "./emulator";

/** What provision/local/runtime.py's runtime_spec() writes. */
interface RuntimeSpec {
  host: string;
  port?: number | null;
  /** Module path -> source (miniflareOptions hands miniflare the main module first). */
  modules: Record<string, string>;
  mainModule: string;
  compatibilityDate: string;
  compatibilityFlags?: string[];
  /** The KV namespace's binding name (provision/stack/contract.py) and its records as compiled. */
  kvBinding: string;
  kvRecords: Record<string, string>;
  /** Key prefixes the config owns: a reload deletes their keys that it no longer declares. */
  managedPrefixes: string[];
  /** Plain-text and secret bindings. */
  bindings: Record<string, string>;
  durableObjects?: Record<string, { className: string; useSQLite: boolean }>;
  /** The Workers AI binding's name (e.g. "AI"), when the stack has Workers AI models. */
  aiBinding?: string | null;
  /** The Analytics Engine dataset binding (worker/local/analytics-engine.js provides it). */
  analytics?: { binding: string; dataset: string } | null;
  /** Rate Limiting bindings as wrangler declares them (rate-limit.js counts them, per namespace_id). */
  ratelimits?: Record<string, { namespace_id: string; simple: { limit: number; period: 10 | 60 } }>;
  persistDir?: string | null;
  triggerHandlers?: boolean;
  emulator: { port?: number | null; config: unknown } | null;
}

const specPath = process.argv[2] ?? "";
if (!specPath) {
  console.error("usage: node --import tsx/esm runtime.ts SPEC.json");
  process.exit(2);
}

function readSpec(): RuntimeSpec {
  // Written by provision/local/runtime.py, trusted as is.
  return JSON.parse(readFileSync(specPath, "utf8")) as RuntimeSpec;
}

/** `err?.[name] ?? err`, for whatever was thrown. */
function detailOf(err: unknown, name: "message" | "stack"): unknown {
  return (err !== null && typeof err === "object" ? (err as Record<string, unknown>)[name] : undefined) ?? err;
}

/**
 * The `ai` option: workerd's real AI binding code, its fetches forwarded by miniflare's remote
 * proxy to the emulator (MF-URL / MF-Header-* wrapping; see emulator/binding.ts). Without an
 * emulator there is nothing local to answer, so the binding is left out.
 */
function aiOption(
  spec: RuntimeSpec,
  emulatorUrl: string | null,
): { ai?: { binding: string; remoteProxyConnectionString: RemoteProxyConnectionString } } {
  if (!spec.aiBinding || emulatorUrl === null) return {};
  // miniflare brands the URL type to mark the option semi-internal; any http URL works.
  const remoteProxyConnectionString = new URL(`${emulatorUrl}/`) as RemoteProxyConnectionString;
  return { ai: { binding: spec.aiBinding, remoteProxyConnectionString } };
}

const ANALYTICS_WORKER = "analytics-engine-local";
const analyticsSource = readFileSync(fileURLToPath(new URL("./analytics-engine.js", import.meta.url)), "utf8");
// the Rate Limiting binding as deployed counts on the Worker's machine: rate-limit.js, not
// miniflare's Durable Object round trip per call
const RATE_LIMIT_WORKER = "rate-limit-local";
const rateLimitSource = readFileSync(fileURLToPath(new URL("./rate-limit.js", import.meta.url)), "utf8");

function miniflareOptions(
  spec: RuntimeSpec,
  port: number,
  bindings: Record<string, string>,
  emulatorUrl: string | null,
): MiniflareOptions {
  const modules = Object.entries(spec.modules)
    .sort(([a], [b]) => (a === spec.mainModule ? -1 : b === spec.mainModule ? 1 : a.localeCompare(b)))
    .map(([path, contents]) => ({ type: "ESModule" as const, path, contents }));
  const gateway = {
    modules, // unnamed, as before: local Durable Object and KV state keeps its place
    modulesRoot: "/",
    compatibilityDate: spec.compatibilityDate,
    compatibilityFlags: spec.compatibilityFlags ?? [],
    kvNamespaces: { [spec.kvBinding]: "gateway-kv" },
    durableObjects: spec.durableObjects ?? {},
    bindings,
    ...aiOption(spec, emulatorUrl),
    // a wrapped binding: the dataset module runs inside the gateway's isolate
    // wrapped bindings: each module runs inside the gateway's isolate
    wrappedBindings: {
      ...(spec.analytics
        ? { [spec.analytics.binding]: { scriptName: ANALYTICS_WORKER, bindings: { dataset: spec.analytics.dataset } } }
        : {}),
      ...Object.fromEntries(
        Object.entries(spec.ratelimits ?? {}).map(([name, { namespace_id, simple }]) => [
          name,
          { scriptName: RATE_LIMIT_WORKER, bindings: { namespace: namespace_id, ...simple } },
        ]),
      ),
    },
  };
  const analytics = { name: ANALYTICS_WORKER, modules: true, script: analyticsSource };
  const rateLimit = { name: RATE_LIMIT_WORKER, modules: true, script: rateLimitSource };
  // GATEWAY_INSPECTOR_PORT: workerd's V8 inspector on that port (DevTools, CPU and heap profiles)
  const inspectorPort = Number(process.env.GATEWAY_INSPECTOR_PORT) || undefined;
  return {
    host: spec.host,
    port,
    ...(inspectorPort ? { inspectorPort } : {}),
    kvPersist: spec.persistDir ? `${spec.persistDir}/kv` : false,
    durableObjectsPersist: spec.persistDir ? `${spec.persistDir}/do` : false,
    unsafeTriggerHandlers: spec.triggerHandlers ?? false,
    // Worker logs go to stderr: stdout carries only this runtime's JSON status lines.
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      stdout.pipe(process.stderr);
      stderr.pipe(process.stderr);
    },
    workers: [
      gateway,
      ...(spec.analytics ? [analytics] : []),
      ...(Object.keys(spec.ratelimits ?? {}).length ? [rateLimit] : []),
    ],
  };
}

async function seedKv(
  mf: Miniflare,
  binding: string,
  records: Record<string, string>,
  managedPrefixes: readonly string[],
): Promise<void> {
  const kv = await mf.getKVNamespace(binding);
  // Delete managed records that the config no longer declares; Worker-owned keys stay.
  for (const prefix of managedPrefixes) {
    let cursor: string | undefined;
    do {
      const page = await kv.list({ prefix, cursor });
      for (const { name } of page.keys) if (!(name in records)) await kv.delete(name);
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
  }
  await Promise.all(Object.entries(records).map(([key, value]) => kv.put(key, value)));
}

async function main(): Promise<void> {
  let spec = readSpec();
  let emulator: RunningEmulator | null = null;
  const bindings = () => {
    const values: Record<string, string> = { ...spec.bindings };
    if (emulator) values.AI_GATEWAY_BASE_URL = `${emulator.url}/v1`;
    return values;
  };
  if (spec.emulator) {
    emulator = await startEmulator({ host: spec.host, port: spec.emulator.port ?? 0, config: spec.emulator.config });
  }
  const emulatorUrl = emulator?.url ?? null;
  const mf = new Miniflare(miniflareOptions(spec, spec.port ?? 0, bindings(), emulatorUrl));
  const url = await mf.ready;
  const port = Number(url.port); // keep the same port across reloads
  await seedKv(mf, spec.kvBinding, spec.kvRecords, spec.managedPrefixes);

  let chain = Promise.resolve();
  const stop = async () => {
    await chain.catch(() => {});
    await mf.dispose();
    if (emulator) await emulator.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  process.on("SIGHUP", () => {
    chain = chain.then(async () => {
      try {
        spec = readSpec();
        await mf.setOptions(miniflareOptions(spec, port, bindings(), emulatorUrl));
        await mf.ready;
        await seedKv(mf, spec.kvBinding, spec.kvRecords, spec.managedPrefixes);
        console.log(JSON.stringify({ reloaded: true }));
      } catch (err) {
        console.log(JSON.stringify({ reloaded: false, error: String(detailOf(err, "message")) }));
      }
    });
  });
  // The parent going away (e.g. killed test runner) must not leave workerd behind.
  process.stdin.on("end", stop);
  process.stdin.resume();

  console.log(JSON.stringify({ workerUrl: url.href.replace(/\/$/, ""), emulatorUrl: emulator?.url ?? null }));
}

main().catch((err: unknown) => {
  console.error(String(detailOf(err, "stack")));
  process.exit(1);
});
