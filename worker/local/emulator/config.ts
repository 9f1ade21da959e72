// Emulator configuration: validated once, merged at runtime, masked for display.
import { entriesOf, isJsonObject, prop } from "./http";
import type { EmulatorConfig, GatewayConfig, JsonObject, MaskedConfig, RateLimitTechnique } from "./types";

const GATEWAY_DEFAULTS: GatewayConfig = {
  authentication: false,
  token: null,
  cacheTtl: 0,
  collectLogs: true,
  rateLimit: { limit: 0, interval: 0, technique: "fixed" },
  byokProviders: [],
};

/** A gateway with every setting at its default (e.g. the auto-created "default" gateway). */
export function defaultGateway(): GatewayConfig {
  return { ...GATEWAY_DEFAULTS, rateLimit: { ...GATEWAY_DEFAULTS.rateLimit }, byokProviders: [] };
}

const TECHNIQUES: readonly unknown[] = ["fixed", "sliding"] satisfies RateLimitTechnique[];

export class ConfigError extends Error {}

function fail(path: string, message: string): never {
  throw new ConfigError(`config.${path} ${message}`);
}

function nonNegativeNumber(value: unknown, path: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) fail(path, "must be a number >= 0");
  return value;
}

// Object spread takes any JS value (null/undefined and most primitives add nothing), which is
// what a config patch relies on; the type system only allows objects, hence this one cast.
function spreadable(value: unknown): object | undefined {
  return value as object | undefined;
}

export function normalizeGateway(raw: unknown, id: string): GatewayConfig {
  const path = `gateways.${id}`;
  if (!isJsonObject(raw)) fail(path, "must be an object");
  const rateLimit: JsonObject = { ...GATEWAY_DEFAULTS.rateLimit, ...spreadable(raw.rateLimit) };
  const gateway: JsonObject = { ...GATEWAY_DEFAULTS, ...raw, rateLimit };
  if (typeof gateway.authentication !== "boolean") fail(`${path}.authentication`, "must be a boolean");
  if (gateway.authentication && (typeof gateway.token !== "string" || gateway.token === "")) {
    fail(`${path}.token`, "is required when authentication is true");
  }
  nonNegativeNumber(gateway.cacheTtl, `${path}.cacheTtl`);
  if (typeof gateway.collectLogs !== "boolean") fail(`${path}.collectLogs`, "must be a boolean");
  nonNegativeNumber(rateLimit.limit, `${path}.rateLimit.limit`);
  nonNegativeNumber(rateLimit.interval, `${path}.rateLimit.interval`);
  if (!TECHNIQUES.includes(rateLimit.technique)) {
    fail(`${path}.rateLimit.technique`, 'must be "fixed" or "sliding"');
  }
  const byok = gateway.byokProviders;
  if (!Array.isArray(byok) || !byok.every((p) => typeof p === "string")) {
    fail(`${path}.byokProviders`, "must be a list of provider slugs");
  }
  // Every field GatewayConfig declares was checked above.
  return gateway as unknown as GatewayConfig;
}

/**
 * {accountId, gateways: {id: gateway}, providerKeys: {provider: key}, streamChunkDelayMs}.
 * providerKeys is keyed by AI Gateway provider slug: "openai", "anthropic", "workers-ai",
 * and for the OpenAI-compatible routes "groq", "mistral", "deepseek", "grok" (xAI) and
 * "google-ai-studio" (compat's model prefixes use the same slugs). A provider without a key
 * rejects every request that presents one; a gateway's byokProviders may omit it.
 * `customProviders` lists the account's custom providers (`custom-<slug>`, what `pulumi up`
 * creates from routing.customProviders); a path under another custom-* slug is AI Gateway's 400.
 * `streamChunkDelayMs` (emulator-only, default 0) pauses between streamed chunks.
 */
export function normalizeConfig(input: unknown): EmulatorConfig {
  if (input === null || typeof input !== "object") throw new ConfigError("config must be a JSON object");
  const raw = input as JsonObject; // an array gets here too, and fails on accountId
  if (typeof raw.accountId !== "string" || raw.accountId === "") fail("accountId", "is required (string)");
  const gateways: Record<string, GatewayConfig> = {};
  for (const [id, gateway] of entriesOf(raw.gateways ?? {})) gateways[id] = normalizeGateway(gateway, id);
  const providerKeys: JsonObject = { ...spreadable(raw.providerKeys ?? {}) };
  for (const [provider, key] of entriesOf(providerKeys)) {
    if (typeof key !== "string") fail(`providerKeys.${provider}`, "must be a string");
  }
  const streamChunkDelayMs = nonNegativeNumber(raw.streamChunkDelayMs ?? 0, "streamChunkDelayMs");
  const custom = raw.customProviders ?? [];
  if (!Array.isArray(custom) || !custom.every((slug) => typeof slug === "string" && slug.startsWith("custom-"))) {
    fail("customProviders", "must be a list of custom-<slug> names");
  }
  // providerKeys: every value was checked to be a string above.
  return {
    accountId: raw.accountId,
    gateways,
    providerKeys: providerKeys as Record<string, string>,
    customProviders: custom as string[],
    streamChunkDelayMs,
  };
}

/**
 * Applies a runtime patch {gateways?, providerKeys?, streamChunkDelayMs?}: gateway settings
 * merge into the existing gateway (rateLimit merges too), `null` deletes a gateway. Returns
 * the new config and the ids of gateways that changed; throws ConfigError, leaving `config` as is.
 */
export function mergeConfig(config: EmulatorConfig, patch: unknown): { config: EmulatorConfig; changed: string[] } {
  if (!isJsonObject(patch)) throw new ConfigError("config patch must be a JSON object");
  const gateways: Record<string, Partial<GatewayConfig>> = { ...config.gateways };
  const changed: string[] = [];
  for (const [id, update] of entriesOf(patch.gateways ?? {})) {
    changed.push(id);
    if (update === null) {
      delete gateways[id];
      continue;
    }
    const current = gateways[id] ?? {};
    gateways[id] = normalizeGateway(
      {
        ...current,
        ...spreadable(update),
        rateLimit: { ...current.rateLimit, ...spreadable(prop(update, "rateLimit")) },
      },
      id,
    );
  }
  const next = normalizeConfig({
    accountId: config.accountId,
    gateways,
    providerKeys: { ...config.providerKeys, ...spreadable(patch.providerKeys ?? {}) },
    customProviders: patch.customProviders ?? config.customProviders,
    streamChunkDelayMs: patch.streamChunkDelayMs ?? config.streamChunkDelayMs,
  });
  return { config: next, changed };
}

function mask(secret: unknown): unknown {
  return typeof secret === "string" && secret !== "" ? `${secret.slice(0, 3)}***` : secret;
}

/** The config with gateway tokens and provider keys masked. */
export function maskedConfig(config: EmulatorConfig): MaskedConfig {
  const gateways: Record<string, GatewayConfig> = {};
  for (const [id, gateway] of Object.entries(config.gateways)) {
    gateways[id] = { ...gateway, token: mask(gateway.token) };
  }
  const providerKeys: Record<string, unknown> = {};
  for (const [provider, key] of Object.entries(config.providerKeys)) providerKeys[provider] = mask(key);
  return { ...config, gateways, providerKeys };
}
