// The local Rate Limiting binding (a wrapped binding, worker/local/runtime.ts). Cloudflare's
// counts in a cache on the machine the Worker runs on, "not waiting on a network request"
// (developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit, Performance); miniflare's
// own sends every limit() to a Durable Object as a subrequest, so each request of a tiered user
// paid a round trip no deployment pays (make bench's tiered rows). This one counts inside the
// isolate by miniflare's rule: a fixed window of `period` seconds per key, the counters shared
// by every binding of one namespace_id, the options checked as miniflare checks them.

const OPTION_KEYS = ["key", "limit", "period"];
const PERIODS = [10, 60];

/** namespace_id → { epoch, window start, counts per key } */
const namespaces = new Map();

/** @param {unknown} test @param {string} message */
function check(test, message) {
  if (!test) throw new Error(message);
}

/**
 * @param {{ namespace: string; limit: number; period: number }} env
 */
export default function rateLimit(env) {
  return {
    /** @param {{ key?: string; limit?: number; period?: number }} options */
    async limit(options) {
      check(typeof options === "object" && options !== null, "invalid rate limit options");
      const unknown = Object.keys(options).filter((name) => !OPTION_KEYS.includes(name));
      check(unknown.length === 0, `bad rate limit options: [${unknown.join(",")}]`);
      const { key = "", limit = env.limit, period = env.period } = options;
      check(typeof key === "string", `invalid key: ${key}`);
      check(typeof limit === "number", `limit must be a number: ${limit}`);
      check(typeof period === "number", `period must be a number: ${period}`);
      check(PERIODS.includes(period), `unsupported period: ${period}`);
      const epoch = Math.floor(Date.now() / (period * 1000));
      let counters = namespaces.get(env.namespace);
      if (!counters || counters.epoch !== epoch) {
        counters = { epoch, counts: new Map() };
        namespaces.set(env.namespace, counters);
      }
      const count = counters.counts.get(key) ?? 0;
      if (count >= limit) return { success: false };
      counters.counts.set(key, count + 1);
      return { success: true };
    },
  };
}
