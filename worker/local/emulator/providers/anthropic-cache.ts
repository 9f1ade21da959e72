// Anthropic prompt caching: blocks marked `cache_control: {type: "ephemeral", ttl?: "5m"|"1h"}`.
//
// The prompt is read in Anthropic's cache order: tools, then system, then messages. Each tool
// and each content block (a string content is one block) is a block; a block carrying
// cache_control is a breakpoint. The prefix up to and including a breakpoint is identified by
// gateway id, model and the blocks' JSON (with cache_control left out, so moving a marker does
// not change what was cached), and measured with the prompt-token formula applied to the
// prefix: 3 + whole earlier "messages" (tools, system, turns) + 4 + ceil(bytes of its own
// message's text so far / 4).
//  * read     = tokens of the longest breakpoint prefix this gateway has cached (refreshed);
//  * creation = tokens of the last breakpoint's prefix minus read, when that prefix is new
//    (then every breakpoint's prefix is written, with its ttl);
//  * input_tokens = the whole prompt minus both. With one breakpoint this is simply: the
//    first time a prefix is seen it is created, every later identical prefix is read.
// The minimum cacheable length Anthropic applies (1024+ tokens, per model) is not emulated.
import { createHash, type Hash } from "node:crypto";
import { byteTokens, partText, textOf } from "../completion";
import { prop } from "../http";
import type { PromptCache } from "../state";

export interface CacheUsage {
  read: number;
  creation: number;
  /** creation by the ttl of the last breakpoint: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}. */
  creation5m: number;
  creation1h: number;
}

interface Breakpoint {
  key: string;
  tokens: number;
  ttl: "5m" | "1h";
}

/** One "message" of the token formula: its blocks, and whether they are JSON (tools) or text. */
interface Section {
  role: string;
  blocks: readonly unknown[];
  /** The message's text after its first k blocks. */
  textUpTo(k: number): string;
}

const TTL_MS = { "5m": 5 * 60_000, "1h": 60 * 60_000 } as const;
export const NO_CACHE: CacheUsage = { read: 0, creation: 0, creation5m: 0, creation1h: 0 };

function ttlOf(block: unknown): "5m" | "1h" | null {
  const control = prop(block, "cache_control");
  if (prop(control, "type") !== "ephemeral") return null;
  return prop(control, "ttl") === "1h" ? "1h" : "5m";
}

function withoutCacheControl(block: unknown): unknown {
  if (block === null || typeof block !== "object" || Array.isArray(block)) return block;
  const { cache_control: _, ...rest } = block as Record<string, unknown>;
  return rest;
}

function textSection(role: string, content: unknown): Section {
  const blocks: readonly unknown[] = Array.isArray(content) ? content : [content];
  return {
    role,
    blocks,
    textUpTo: (k) => (Array.isArray(content) ? blocks.slice(0, k).map(partText).join("") : textOf(content)),
  };
}

/** The prompt as the cache reads it: tools, system, then each message. */
function sections(tools: unknown, system: unknown, messages: readonly unknown[]): Section[] {
  const out: Section[] = [];
  if (Array.isArray(tools) && tools.length > 0) {
    const list: readonly unknown[] = tools;
    out.push({ role: "tools", blocks: list, textUpTo: (k) => JSON.stringify(list.slice(0, k)) });
  }
  if (system !== undefined && system !== null) out.push(textSection("system", system));
  for (const m of messages) out.push(textSection(String(prop(m, "role") ?? ""), prop(m, "content")));
  return out;
}

/** Every breakpoint of a request, in prompt order. */
export function breakpoints(
  gatewayId: string,
  model: string,
  tools: unknown,
  system: unknown,
  messages: readonly unknown[],
): Breakpoint[] {
  const hash: Hash = createHash("sha256").update(`${gatewayId}\u0000${model}`);
  const out: Breakpoint[] = [];
  let before = 3; // tokens of the whole sections before the current one
  for (const section of sections(tools, system, messages)) {
    hash.update(`\u0002${section.role}`);
    for (const [i, block] of section.blocks.entries()) {
      hash.update(`\u0003${JSON.stringify(withoutCacheControl(block)) ?? ""}`);
      const ttl = ttlOf(block);
      if (ttl === null) continue;
      out.push({ key: hash.copy().digest("hex"), tokens: before + 4 + byteTokens(section.textUpTo(i + 1)), ttl });
    }
    before += 4 + byteTokens(section.textUpTo(section.blocks.length));
  }
  return out;
}

/** Looks the breakpoints up in the gateway's cache and writes new prefixes (see header). */
export function applyPromptCache(cache: PromptCache, points: readonly Breakpoint[], now = Date.now()): CacheUsage {
  const last = points.at(-1);
  if (last === undefined) return NO_CACHE;
  let read = 0;
  for (const p of points) if (cache.hit(p.key, TTL_MS[p.ttl], now)) read = Math.max(read, p.tokens);
  if (read >= last.tokens) return { ...NO_CACHE, read };
  for (const p of points) cache.write(p.key, TTL_MS[p.ttl], now);
  const creation = last.tokens - read;
  return {
    read,
    creation,
    creation5m: last.ttl === "5m" ? creation : 0,
    creation1h: last.ttl === "1h" ? creation : 0,
  };
}
