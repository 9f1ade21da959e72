// Emulator configuration: validated once, merged at runtime, masked for display.

const GATEWAY_DEFAULTS = {
  authentication: false,
  token: null,
  cacheTtl: 0,
  collectLogs: true,
  rateLimit: { limit: 0, interval: 0, technique: "fixed" },
  byokProviders: [],
};

export class ConfigError extends Error {}

function fail(path, message) {
  throw new ConfigError(`config.${path} ${message}`);
}

function nonNegativeNumber(value, path) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) fail(path, "must be a number >= 0");
  return value;
}

export function normalizeGateway(raw, id) {
  const path = `gateways.${id}`;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail(path, "must be an object");
  const gateway = { ...GATEWAY_DEFAULTS, ...raw, rateLimit: { ...GATEWAY_DEFAULTS.rateLimit, ...raw.rateLimit } };
  if (typeof gateway.authentication !== "boolean") fail(`${path}.authentication`, "must be a boolean");
  if (gateway.authentication && (typeof gateway.token !== "string" || gateway.token === "")) {
    fail(`${path}.token`, "is required when authentication is true");
  }
  nonNegativeNumber(gateway.cacheTtl, `${path}.cacheTtl`);
  if (typeof gateway.collectLogs !== "boolean") fail(`${path}.collectLogs`, "must be a boolean");
  nonNegativeNumber(gateway.rateLimit.limit, `${path}.rateLimit.limit`);
  nonNegativeNumber(gateway.rateLimit.interval, `${path}.rateLimit.interval`);
  if (!["fixed", "sliding"].includes(gateway.rateLimit.technique)) {
    fail(`${path}.rateLimit.technique`, 'must be "fixed" or "sliding"');
  }
  if (!Array.isArray(gateway.byokProviders) || !gateway.byokProviders.every((p) => typeof p === "string")) {
    fail(`${path}.byokProviders`, "must be a list of provider slugs");
  }
  return gateway;
}

/**
 * {accountId, gateways: {id: gateway}, providerKeys: {provider: key}, streamChunkDelayMs}.
 * `streamChunkDelayMs` (emulator-only, default 0) pauses between streamed chunks.
 */
export function normalizeConfig(raw) {
  if (raw === null || typeof raw !== "object") throw new ConfigError("config must be a JSON object");
  if (typeof raw.accountId !== "string" || raw.accountId === "") fail("accountId", "is required (string)");
  const gateways = {};
  for (const [id, gateway] of Object.entries(raw.gateways ?? {})) gateways[id] = normalizeGateway(gateway, id);
  const providerKeys = { ...(raw.providerKeys ?? {}) };
  for (const [provider, key] of Object.entries(providerKeys)) {
    if (typeof key !== "string") fail(`providerKeys.${provider}`, "must be a string");
  }
  const streamChunkDelayMs = nonNegativeNumber(raw.streamChunkDelayMs ?? 0, "streamChunkDelayMs");
  return { accountId: raw.accountId, gateways, providerKeys, streamChunkDelayMs };
}

/**
 * Applies a runtime patch {gateways?, providerKeys?, streamChunkDelayMs?}: gateway settings
 * merge into the existing gateway (rateLimit merges too), `null` deletes a gateway. Returns
 * the new config and the ids of gateways that changed; throws ConfigError, leaving `config` as is.
 */
export function mergeConfig(config, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) throw new ConfigError("config patch must be a JSON object");
  const gateways = { ...config.gateways };
  const changed = [];
  for (const [id, update] of Object.entries(patch.gateways ?? {})) {
    changed.push(id);
    if (update === null) {
      delete gateways[id];
      continue;
    }
    const current = gateways[id] ?? {};
    gateways[id] = normalizeGateway({ ...current, ...update, rateLimit: { ...current.rateLimit, ...update?.rateLimit } }, id);
  }
  const next = normalizeConfig({
    accountId: config.accountId,
    gateways,
    providerKeys: { ...config.providerKeys, ...(patch.providerKeys ?? {}) },
    streamChunkDelayMs: patch.streamChunkDelayMs ?? config.streamChunkDelayMs,
  });
  return { config: next, changed };
}

function mask(secret) {
  return typeof secret === "string" && secret !== "" ? `${secret.slice(0, 3)}***` : secret;
}

/** The config with gateway tokens and provider keys masked. */
export function maskedConfig(config) {
  const gateways = {};
  for (const [id, gateway] of Object.entries(config.gateways)) gateways[id] = { ...gateway, token: mask(gateway.token) };
  const providerKeys = {};
  for (const [provider, key] of Object.entries(config.providerKeys)) providerKeys[provider] = mask(key);
  return { ...config, gateways, providerKeys };
}
