// What Anthropic's Messages API checks of a request before it generates, each failure in its
// own words (an invalid_request_error whose message names the field's path, pydantic style):
// the fields and beta flags it knows, the roles and where a mid-conversation system message may
// stand, the sampling parameters each model takes, thinking, output_config (effort and a JSON
// Schema answer format) and context_management. What a client sends that the API takes is taken
// here too: an emulator that refused it would hide a client that works, one that took what the
// API refuses would hide a gateway that breaks it.

import { isJsonObject, prop } from "../http";
import type { JsonObject } from "../types";

// Every body field of the anthropic SDK's beta MessageCreateParams (anthropic-python 2.17.0,
// `betas` excluded: that is the header), plus `stream` and the sampling parameters older models
// still take (the SDK dropped them; the API refuses them on newer models, see SAMPLING below).
// biome-ignore format: a compact list of names
export const KNOWN_FIELDS = new Set([
  "billing_policy", "cache_control", "compaction", "container", "context_management", "diagnostics",
  "fallback_credit_token", "fallbacks", "inference_geo", "max_tokens", "mcp_servers", "messages", "metadata",
  "model", "output_config", "service_tier", "speed", "stop_sequences", "system", "thinking", "thread",
  "tool_choice", "tools", "user_profile_id", "workspace_id", "stream", "temperature", "top_k", "top_p",
]);

// The anthropic-beta values the API knows: the SDK's AnthropicBetaParam (2.17.0), and the ones
// current clients send that it does not list (Claude Code 2.1.332: claude-code, per-turn-control,
// advanced-tool-use, effort; the mid-conversation system message's early-access flag).
// biome-ignore format: a compact list of names
export const KNOWN_BETAS = new Set([
  "computer-use-2024-10-22", "computer-use-2025-01-24", "output-128k-2025-02-19", "mcp-client-2025-04-04",
  "mcp-client-2025-11-20", "dev-full-thinking-2025-05-14", "interleaved-thinking-2025-05-14",
  "code-execution-2025-05-22", "context-1m-2025-08-07", "context-management-2025-06-27",
  "model-context-window-exceeded-2025-08-26", "fast-mode-2026-02-01", "output-300k-2026-03-24",
  "user-profiles-2026-03-24", "user-profiles-2026-08-18", "user-profiles-2026-09-04", "advisor-tool-2026-03-01",
  "managed-agents-2026-04-01", "dreaming-2026-04-21", "thinking-token-count-2026-05-13",
  "server-side-fallback-2026-06-01", "server-side-fallback-2026-07-01", "fallback-credit-2026-06-01",
  "fallback-credit-2026-07-01", "agent-memory-2026-07-22", "mid-conversation-tool-changes-2026-07-01",
  "compact-2026-01-12", "computer-use-2025-11-24", "mcp-tunnels-2026-06-22", "structured-outputs-2025-11-13",
  "task-budgets-2026-03-13", "thinking-display-updates-2026-08-18", "mid-conversation-output-config-2026-07-01",
  "thinking-binding-controls-2026-08-01", "mid-conversation-system-clear-at-2026-08-21", "compact-2026-09-04",
  "inline-tools-2026-09-15", "mcp-client-2026-09-15", "ce-plugins-2026-09-01", "spend-limit-reads-2026-09-26",
  "telemetry-destinations-2026-08-11", "webhooks-2026-10-07", "admin-user-sign-out-2026-10-08",
  "message-threads-2026-08-12", "analytics-usage-cost-2026-08-24", "experimental-claude-tag-2026-10-21",
  "message-batches-2024-09-24", "prompt-caching-2024-07-31", "pdfs-2024-09-25", "token-counting-2024-11-01",
  "token-efficient-tools-2025-02-19", "files-api-2025-04-14", "extended-cache-ttl-2025-04-11", "skills-2025-10-02",
  "cache-diagnosis-2026-04-07", "ce-user-management-2026-07-13", "ce-claude-code-managed-settings-2026-10-06",
  "efs-2026-10-01", "google-managed-data-controls-2026-09-01", "user-profiles-billing-2026-10-01",
  "claude-code-20250219", "per-turn-control-2026-07-01", "advanced-tool-use-2025-11-20", "effort-2025-11-24",
  "mid-conversation-system-2026-04-07",
]);

// Mid-conversation `role: "system"` messages: Claude Opus 4.8 (platform.claude.com's page on
// them), and the Claude 5 models (Claude Code sends them to each, so the API takes them there).
const MID_CONVERSATION_SYSTEM = /^claude-(opus-4-8|(opus|sonnet|haiku)-5)/;
// Models that take only the default sampling (temperature 1; no top_p, no top_k): the Claude 5
// models (the SDK no longer has the fields). UNCONFIRMED: the wording of the refusal.
const DEFAULT_SAMPLING_ONLY = /^claude-(opus|sonnet|haiku)-5/;
// Claude Opus 5, Sonnet 5.5 and Fable 5.1 take adaptive thinking only, and no forced tool choice
// (`any`, `tool`): what langchain-anthropic 1.7.10 knows of them (_supports_forced_tool_choice,
// its thinking checks). UNCONFIRMED: the wording of the refusals.
const ADAPTIVE_ONLY = /^claude-(opus-5|sonnet-5-5|fable-5-1)/;
const EFFORTS = ["low", "medium", "high", "xhigh", "max"];
const THINKING_DISPLAYS = ["summarized", "omitted"];
const MIN_THINKING_BUDGET = 1_024;
const CONTEXT_EDITS = ["clear_tool_uses_20250919", "clear_thinking_20251015"];

/** What a request's checks found: the refusal's message, or the JSON Schema its answer follows. */
export type Checked = { error: string } | { format: JsonObject | null };

function betasOf(header: string | string[] | undefined): string[] {
  const raw = Array.isArray(header) ? header.join(",") : (header ?? "");
  return raw
    .split(",")
    .map((beta) => beta.trim())
    .filter((beta) => beta !== "");
}

function textOnly(content: unknown): boolean {
  if (typeof content === "string") return true;
  return Array.isArray(content) && content.every((block) => prop(block, "type") === "text");
}

function endsInServerToolUse(message: unknown): boolean {
  const content = prop(message, "content");
  return Array.isArray(content) && prop(content.at(-1), "type") === "server_tool_use";
}

/** The roles, and where each `system` message stands (the placement rules of its page). */
function checkRoles(messages: readonly unknown[], model: string): string | null {
  for (const [i, message] of messages.entries()) {
    const role = prop(message, "role");
    if (role === "user" || role === "assistant") continue;
    if (role !== "system" || !MID_CONVERSATION_SYSTEM.test(model)) {
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    }
    const before = messages[i - 1];
    const after = messages[i + 1];
    if (i === 0) return `messages.${i}: a system message cannot be the first message; use the top-level system field`;
    if (prop(before, "role") === "system" || prop(after, "role") === "system") {
      return `messages.${i}: consecutive system messages are not allowed`;
    }
    if (prop(before, "role") !== "user" && !endsInServerToolUse(before)) {
      return `messages.${i}: a system message must follow a user message or an assistant message that ends in server tool use`;
    }
    if (after !== undefined && prop(after, "role") !== "assistant") {
      return `messages.${i}: a system message must be the last message or be followed by an assistant message`;
    }
    if (!textOnly(prop(message, "content"))) return `messages.${i}.content: system messages take text blocks only`;
  }
  return null;
}

function checkSampling(body: JsonObject, model: string): string | null {
  const ranges: [string, number, number][] = [
    ["temperature", 0, 1],
    ["top_p", 0, 1],
  ];
  for (const [field, min, max] of ranges) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number") return `${field}: Input should be a valid number`;
    if (value < min) return `${field}: Input should be greater than or equal to ${min}`;
    if (value > max) return `${field}: Input should be less than or equal to ${max}`;
  }
  const topK = body.top_k;
  if (topK !== undefined && topK !== null && !(Number.isInteger(topK) && (topK as number) >= 0)) {
    return "top_k: Input should be greater than or equal to 0";
  }
  if (DEFAULT_SAMPLING_ONLY.test(model)) {
    for (const field of ["temperature", "top_p", "top_k"]) {
      const value = body[field];
      if (value === undefined || value === null || (field === "temperature" && value === 1)) continue;
      return `${field}: this model takes only the default sampling; remove '${field}'`;
    }
  }
  return null;
}

function checkThinking(thinking: unknown, maxTokens: unknown, model: string): string | null {
  if (thinking === undefined || thinking === null) return null;
  const type = prop(thinking, "type");
  if (type === "enabled" && ADAPTIVE_ONLY.test(model)) {
    return "thinking.type: 'enabled' is not supported for this model; use 'adaptive' and output_config.effort";
  }
  if (type === "disabled") return null;
  if (type === "adaptive") {
    const display = prop(thinking, "display");
    if (display !== undefined && !THINKING_DISPLAYS.includes(String(display))) {
      return "thinking.adaptive.display: Input should be 'summarized' or 'omitted'";
    }
    return null;
  }
  if (type !== "enabled") {
    return "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'";
  }
  const budget = prop(thinking, "budget_tokens");
  if (typeof budget !== "number" || !Number.isInteger(budget)) return "thinking.enabled.budget_tokens: Field required";
  if (budget < MIN_THINKING_BUDGET) {
    return `thinking.enabled.budget_tokens: Input should be greater than or equal to ${MIN_THINKING_BUDGET}`;
  }
  if (typeof maxTokens === "number" && budget >= maxTokens) {
    return "`max_tokens` must be greater than `thinking.budget_tokens`";
  }
  return null;
}

/** output_config: an effort level and an answer format (a JSON Schema the text must follow). */
function checkOutputConfig(config: unknown): { error: string } | { format: JsonObject | null } {
  if (config === undefined || config === null) return { format: null };
  if (!isJsonObject(config)) return { error: "output_config: Input should be a valid dictionary" };
  for (const key of Object.keys(config)) {
    if (key !== "effort" && key !== "format") return { error: `output_config.${key}: Extra inputs are not permitted` };
  }
  if (config.effort !== undefined && config.effort !== null && !EFFORTS.includes(String(config.effort))) {
    return { error: `output_config.effort: Input should be ${EFFORTS.map((e) => `'${e}'`).join(", ")}` };
  }
  const format = config.format;
  if (format === undefined || format === null) return { format: null };
  if (prop(format, "type") !== "json_schema") {
    return { error: "output_config.format: Input tag does not match any of the expected tags: 'json_schema'" };
  }
  const schema = prop(format, "schema");
  if (!isJsonObject(schema)) return { error: "output_config.format.json_schema.schema: Field required" };
  return { format: schema };
}

/** A tool choice that forces a call (`any`, `tool`): not with thinking, not on every model. */
function checkForcedTool(body: JsonObject, model: string): string | null {
  const forced = ["any", "tool"].includes(String(prop(body.tool_choice, "type")));
  if (!forced) return null;
  const thinking = String(prop(body.thinking, "type"));
  if (thinking === "enabled" || thinking === "adaptive")
    return "Thinking may not be enabled when tool_choice forces tool use.";
  if (ADAPTIVE_ONLY.test(model)) return "tool_choice: 'any' and 'tool' are not supported for this model; use 'auto'";
  return null;
}

function checkContextManagement(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const edits = prop(value, "edits");
  if (edits === undefined) return null;
  if (!Array.isArray(edits)) return "context_management.edits: Input should be a valid list";
  for (const [i, edit] of edits.entries()) {
    if (!CONTEXT_EDITS.includes(String(prop(edit, "type")))) {
      return `context_management.edits.${i}: Input tag does not match any of the expected tags: ${CONTEXT_EDITS.map((e) => `'${e}'`).join(", ")}`;
    }
  }
  return null;
}

/**
 * The checks of a Messages (or count_tokens) request past its model, max_tokens and messages
 * (anthropic.ts checks those): unknown fields and betas, roles, sampling, thinking, output_config,
 * context_management.
 */
export function checkRequest(body: JsonObject, betaHeader: string | string[] | undefined, model: string): Checked {
  for (const key of Object.keys(body)) {
    if (!KNOWN_FIELDS.has(key)) return { error: `${key}: Extra inputs are not permitted` };
  }
  const unknown = betasOf(betaHeader).filter((beta) => !KNOWN_BETAS.has(beta));
  if (unknown.length > 0) {
    return {
      error: `Unexpected value(s) \`${unknown.join("`, `")}\` for the \`anthropic-beta\` header. Please consult our documentation at docs.claude.com or try again without the header.`,
    };
  }
  const messages: readonly unknown[] = Array.isArray(body.messages) ? body.messages : [];
  const problem =
    checkRoles(messages, model) ??
    checkSampling(body, model) ??
    checkThinking(body.thinking, body.max_tokens, model) ??
    checkForcedTool(body, model) ??
    checkContextManagement(body.context_management);
  if (problem !== null) return { error: problem };
  return checkOutputConfig(body.output_config);
}
