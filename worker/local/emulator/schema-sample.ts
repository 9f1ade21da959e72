// Deterministic JSON value from a JSON Schema: the fake model's tool-call arguments and
// structured outputs. The value must VALIDATE against the schema (clients parse it with
// pydantic / zod), so every choice prefers the plainest valid value:
//  * $ref (JSON pointers into the root: #/$defs/X, #/definitions/X, #), allOf (merged),
//    anyOf / oneOf (the first branch; past SOFT_DEPTH a "null" branch when there is one, so
//    recursive models terminate), const, enum (the first value; the i-th for uniqueItems).
//  * type lists ["string", "null"]: the first non-null type. No type: inferred from keywords.
//  * object: every property (past SOFT_DEPTH only the required ones), never extra keys unless
//    minProperties needs them and additionalProperties allows it.
//  * array: 2 items clamped to minItems / maxItems (past SOFT_DEPTH minItems), prefixItems /
//    tuple items, contains, uniqueItems.
//  * string: format (date, date-time, time, email, uri, uuid, hostname, ipv4, ipv6, duration),
//    pattern (best effort, see regex-sample.ts), else fake-model words; minLength / maxLength.
//  * integer / number: inside minimum / maximum / exclusive bounds, on multipleOf.
//  * boolean from the PRNG; null.
import { samplePattern } from "./regex-sample";

type Rng = () => number;
type Schema = Record<string, unknown>;

const SOFT_DEPTH = 6; // past this, only what the schema requires
const HARD_DEPTH = 48; // a guard against $ref cycles that nothing can end
const DEFAULT_ITEMS = 2;
const DEFAULT_SPAN = 100;

function isSchema(value: unknown): value is Schema {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** JSON pointer lookup ("#/$defs/Pet"); undefined when the ref is not local or not found. */
function resolvePointer(root: unknown, ref: string): unknown {
  if (ref === "#" || ref === "") return root;
  if (!ref.startsWith("#/")) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    let key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    try {
      key = decodeURIComponent(key);
    } catch {
      // keep the raw key
    }
    if (!isSchema(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
    if (node === undefined) return undefined;
  }
  return node;
}

/** Merges schemas keyword by keyword: properties and required unite, other keywords: last wins. */
function merge(schemas: readonly Schema[]): Schema {
  const out: Schema = {};
  const properties: Schema = {};
  const required = new Set<string>();
  for (const s of schemas) {
    for (const [k, v] of Object.entries(s)) {
      if (k === "properties" && isSchema(v)) Object.assign(properties, v);
      else if (k === "required" && Array.isArray(v)) for (const r of v) required.add(String(r));
      else out[k] = v;
    }
  }
  if (Object.keys(properties).length > 0) out.properties = properties;
  if (required.size > 0) out.required = [...required];
  return out;
}

function without(schema: Schema, ...keys: string[]): Schema {
  const copy = { ...schema };
  for (const k of keys) delete copy[k];
  return copy;
}

function inferType(s: Schema): string {
  if (isSchema(s.properties) || Array.isArray(s.required) || s.additionalProperties !== undefined) return "object";
  if (s.items !== undefined || s.prefixItems !== undefined || s.minItems !== undefined) return "array";
  if (s.minimum !== undefined || s.maximum !== undefined || s.multipleOf !== undefined) return "number";
  return "string";
}

export class SchemaSampler {
  private readonly root: unknown;
  private readonly rng: Rng;
  private readonly words: (rng: Rng, n: number) => string;

  /** `words(rng, n)` returns n fake-model words joined by spaces (the model's vocabulary). */
  constructor(root: unknown, rng: Rng, words: (rng: Rng, n: number) => string) {
    this.root = root;
    this.rng = rng;
    this.words = words;
  }

  sample(node: unknown = this.root, depth = 0, variant = 0): unknown {
    if (node === false) return null; // nothing validates; null is as good as anything
    if (!isSchema(node)) return this.words(this.rng, 2); // `true` / {}: anything goes
    if (depth > HARD_DEPTH) return null;
    if (typeof node.$ref === "string") {
      const target = resolvePointer(this.root, node.$ref);
      const rest = without(node, "$ref");
      const resolved = isSchema(target) ? (Object.keys(rest).length ? merge([target, rest]) : target) : rest;
      return this.sample(resolved, depth + 1, variant);
    }
    if (Array.isArray(node.allOf) && node.allOf.length > 0) {
      const parts = node.allOf.map((p) => this.deref(p)).filter(isSchema);
      return this.sample(merge([without(node, "allOf"), ...parts]), depth + 1, variant);
    }
    for (const key of ["anyOf", "oneOf"] as const) {
      const branches = node[key];
      if (Array.isArray(branches) && branches.length > 0) {
        const derefd = branches.map((b) => this.deref(b));
        let branch = derefd[0];
        if (depth > SOFT_DEPTH) branch = derefd.find((b) => isSchema(b) && b.type === "null") ?? branch;
        if (variant > 0 && derefd.length > 1) branch = derefd[variant % derefd.length];
        const rest = without(node, key);
        return this.sample(isSchema(branch) ? merge([rest, branch]) : rest, depth + 1, variant);
      }
    }
    if ("const" in node) return node.const;
    if (Array.isArray(node.enum) && node.enum.length > 0) return node.enum[variant % node.enum.length];
    return this.typed(node, depth, variant);
  }

  /** A $ref resolved one level (for branch selection); anything else as is. */
  private deref(node: unknown): unknown {
    if (isSchema(node) && typeof node.$ref === "string") {
      const target = resolvePointer(this.root, node.$ref);
      if (isSchema(target)) return merge([target, without(node, "$ref")]);
    }
    return node;
  }

  private typed(node: Schema, depth: number, variant: number): unknown {
    let type: unknown = node.type;
    if (Array.isArray(type)) {
      const types: unknown[] = type;
      const nonNull = types.filter((t) => t !== "null");
      type = depth > SOFT_DEPTH && types.includes("null") ? "null" : (nonNull[0] ?? "null");
    }
    if (typeof type !== "string") type = inferType(node);
    switch (type) {
      case "object":
        return this.object(node, depth);
      case "array":
        return this.array(node, depth);
      case "integer":
        return this.number(node, true);
      case "number":
        return this.number(node, false);
      case "boolean":
        return variant > 0 ? variant % 2 === 1 : this.rng() < 0.5;
      case "null":
        return null;
      default:
        return this.string(node, variant);
    }
  }

  private object(node: Schema, depth: number): Record<string, unknown> {
    const properties = isSchema(node.properties) ? node.properties : {};
    const required = new Set(Array.isArray(node.required) ? node.required.map(String) : []);
    const out: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(properties)) {
      if (required.has(key) || depth < SOFT_DEPTH) out[key] = this.sample(schema, depth + 1);
    }
    const extra = node.additionalProperties;
    const extraSchema = isSchema(extra) ? extra : {};
    for (const key of required) if (!(key in out)) out[key] = this.sample(extraSchema, depth + 1);
    const minProps = num(node.minProperties) ?? 0;
    for (let i = 1; Object.keys(out).length < minProps && extra !== false && i < 1000; i++) {
      const key = `key${i}`;
      if (!(key in out)) out[key] = this.sample(extraSchema, depth + 1);
    }
    const maxProps = num(node.maxProperties);
    if (maxProps !== undefined) {
      for (const key of Object.keys(out)) {
        if (Object.keys(out).length <= maxProps) break;
        if (!required.has(key)) delete out[key];
      }
    }
    return out;
  }

  private array(node: Schema, depth: number): unknown[] {
    // prefixItems (2020-12) or an items array (draft 7 tuples) fix the leading positions.
    const prefix: unknown[] = Array.isArray(node.prefixItems)
      ? node.prefixItems
      : Array.isArray(node.items)
        ? node.items
        : [];
    const rest = Array.isArray(node.items) ? node.additionalItems : node.items;
    const min = num(node.minItems) ?? 0;
    const max = num(node.maxItems) ?? Number.POSITIVE_INFINITY;
    let count = depth >= SOFT_DEPTH ? min : Math.max(min, Math.min(DEFAULT_ITEMS, max));
    if (rest === false) count = Math.min(count, prefix.length);
    count = Math.max(count, Math.min(prefix.length, max), isSchema(node.contains) ? 1 : 0);
    const unique = node.uniqueItems === true;
    const out: unknown[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
      const schema = i < prefix.length ? prefix[i] : i === 0 && isSchema(node.contains) ? node.contains : rest;
      let value = this.sample(schema, depth + 1, unique ? i : 0);
      for (let tries = 0; unique && seen.has(JSON.stringify(value)) && tries < 8; tries++) {
        value = this.sample(schema, depth + 1, i + tries + 1);
      }
      seen.add(JSON.stringify(value));
      out.push(value);
    }
    return out;
  }

  private number(node: Schema, integer: boolean): number {
    // draft 4: exclusiveMinimum/Maximum are booleans on minimum/maximum; 6+: numbers.
    const exMin = num(node.exclusiveMinimum);
    const exMax = num(node.exclusiveMaximum);
    let lo = num(node.minimum);
    let hi = num(node.maximum);
    let loOpen = node.exclusiveMinimum === true;
    let hiOpen = node.exclusiveMaximum === true;
    if (exMin !== undefined && (lo === undefined || exMin >= lo)) [lo, loOpen] = [exMin, true];
    if (exMax !== undefined && (hi === undefined || exMax <= hi)) [hi, hiOpen] = [exMax, true];
    if (lo === undefined && hi === undefined) lo = integer ? 1 : 0;
    lo ??= (hi as number) - DEFAULT_SPAN;
    hi ??= lo + DEFAULT_SPAN;
    const fits = (v: number) => (loOpen ? v > lo : v >= lo) && (hiOpen ? v < hi : v <= hi);
    const step = num(node.multipleOf);
    if (step !== undefined && step > 0) {
      // k * step, with k from the range; the same division check Python's jsonschema does.
      const onStep = (v: number) => Number.isInteger(v / step) && (!integer || Number.isInteger(v));
      const first = Math.ceil(lo / step);
      const last = Math.floor(hi / step);
      const span = Math.max(0, Math.min(last - first, DEFAULT_SPAN));
      const start = first + Math.floor(this.rng() * (span + 1));
      for (let i = 0; i <= span + 1; i++) {
        for (const k of [start + i, start - i]) {
          const v = Number((k * step).toPrecision(12));
          if (fits(v) && onStep(v)) return v;
        }
      }
      return Number((first * step).toPrecision(12));
    }
    if (integer) {
      const a = Math.ceil(loOpen ? lo + 1e-9 : lo);
      const b = Math.floor(hiOpen ? hi - 1e-9 : hi);
      if (b < a) return a;
      return a + Math.floor(this.rng() * Math.min(b - a + 1, DEFAULT_SPAN + 1));
    }
    const span = Math.min(hi - lo, DEFAULT_SPAN);
    const v = Math.round((lo + this.rng() * span) * 100) / 100;
    return fits(v) ? v : (lo + hi) / 2;
  }

  private string(node: Schema, variant: number): string {
    const min = num(node.minLength) ?? 0;
    const max = num(node.maxLength);
    let s = this.formatted(node.format, variant);
    if (s === null && typeof node.pattern === "string") s = samplePattern(node.pattern, this.rng);
    if (s === null) {
      s = this.words(this.rng, 2 + (variant % 3));
      while ([...s].length < min) s += ` ${this.words(this.rng, 1)}`;
    }
    if (max !== undefined && [...s].length > max) s = [...s].slice(0, max).join("");
    return s;
  }

  private formatted(format: unknown, variant: number): string | null {
    const day = 1 + ((Math.floor(this.rng() * 28) + variant) % 28);
    const dd = String(day).padStart(2, "0");
    switch (format) {
      case "date":
        return `2024-05-${dd}`;
      case "date-time":
        return `2024-05-${dd}T09:30:00Z`;
      case "time":
        return "09:30:00Z";
      case "email":
      case "idn-email":
        return `${this.words(this.rng, 1)}${variant || ""}@example.com`;
      case "uri":
      case "url":
      case "iri":
      case "uri-reference":
      case "iri-reference":
        return `https://example.com/${this.words(this.rng, 1)}${variant || ""}`;
      case "hostname":
      case "idn-hostname":
        return `${this.words(this.rng, 1)}${variant || ""}.example.com`;
      case "ipv4":
        return `192.0.2.${1 + (variant % 254)}`;
      case "ipv6":
        return `2001:db8::${(1 + variant).toString(16)}`;
      case "uuid": {
        const hex = Array.from({ length: 32 }, () => Math.floor(this.rng() * 16).toString(16)).join("");
        return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
      }
      case "duration":
        return `P${day}D`;
      default:
        return null;
    }
  }
}
