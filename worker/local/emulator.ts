// Local Cloudflare AI Gateway emulator: serves /v1/{account_id}/{gateway_id}/... like
// gateway.ai.cloudflare.com, with deterministic fake providers behind it, plus test controls
// under /__emulator/. Plain node:http, no dependencies.
//
//   import { startEmulator } from "./emulator";
//   const { url, close } = await startEmulator({ config });        // url = http://127.0.0.1:PORT
//   node --import tsx/esm worker/local/emulator.ts --config cfg.json [--port 0] [--host 127.0.0.1]
//     (run from worker/, where tsx is installed)
//     -> prints one line {"emulatorUrl":"http://127.0.0.1:PORT"}, serves until SIGINT/SIGTERM.
//
// Deterministic completions (the Worker's tests rely on these exact rules):
//  * Reply = words from a fixed list, seeded by SHA-256 of the model (without provider prefix)
//    and the messages' roles and texts: the same request always gets the same reply.
//  * 12 words by default; exactly N when the LAST user message contains `emulate:tokens=N`.
//  * One word = one completion token. max_tokens / max_completion_tokens (OpenAI; Anthropic
//    max_tokens) below that count truncate the reply: finish_reason "length" (Anthropic
//    stop_reason "max_tokens"), else "stop" / "end_turn".
//  * prompt_tokens = 3 + sum over messages of (4 + ceil(utf8_bytes(text) / 4)); text = string
//    content or the concatenated `text` of content parts; Anthropic `system` counts as one
//    message. Anthropic input_tokens uses the same formula.
//  * Streams split the reply into one chunk per word: first word bare, later words " word".
//  * Embeddings: 8 deterministic dims per input (k/32768 values, exact in float32);
//    prompt_tokens = sum of ceil(utf8_bytes / 4) per string input (token arrays: length).
//  * Tool definitions (OpenAI `tools`, Anthropic `tools`, Workers AI `tools`) add one more
//    "message" to the prompt: 4 + ceil(utf8_bytes(JSON of the tools) / 4). Anthropic
//    tool_use / tool_result blocks count as the JSON of their input / the text of their content.
//
// Tool calls and structured output (emulator/reply.ts, emulator/schema-sample.ts):
//  * OpenAI wire (/openai, /compat, /workers-ai/v1 and groq, mistral, deepseek, grok,
//    google-ai-studio): with function `tools`, tool_choice not "none" and a last message that
//    is not a `tool` result, the answer is ONE tool call: to the tool named by
//    tool_choice {type: "function", function: {name}}, else the first tool ("auto" and
//    "required" alike). content null, tool_calls [{id: "call_<24 hex>", type: "function",
//    function: {name, arguments}}], finish_reason "tool_calls". After a tool result: words.
//  * `arguments` is JSON generated from the tool's parameters schema: deterministic (seeded
//    by model, messages and tool name) and valid against it (what is supported: see
//    schema-sample.ts). response_format json_schema: content is such JSON for its `schema`;
//    json_object: {"answer": "<the usual words>"} (OpenAI's own routes refuse json_object
//    unless a message says "json", like OpenAI).
//  * completion_tokens of a JSON answer (arguments or content) = ceil(utf8_bytes / 4); a
//    max-tokens cap below that cuts the JSON text to its first cap * 4 bytes and the finish
//    reason becomes "length" (Anthropic "max_tokens").
//  * Streams: a tool call as cf-contract-2 4.1 (id + name with arguments "" first, then the
//    arguments in 16-code-point pieces, then delta {} with finish_reason "tool_calls", then
//    the usage chunk if asked); JSON content in 16-code-point pieces after the role chunk.
//  * Anthropic /v1/messages: custom tools [{name, input_schema}] with tool_choice
//    auto | any | tool (name) | none: unless the last user turn holds a tool_result block,
//    the answer is one tool_use block {id: "toolu_01<22 base62>", name, input} with
//    stop_reason "tool_use"; streamed as cf-contract-2 2.3 (input_json_delta pieces, the first
//    one ""). Prompt caching (cache_control on tools / system / message blocks): see
//    emulator/providers/anthropic-cache.ts; usage always carries cache_creation_input_tokens
//    and cache_read_input_tokens, and input_tokens excludes both. /v1/messages/count_tokens
//    answers {input_tokens} by the same count (no caching).
//
// OpenAI Responses API (/openai/responses, /openai/v1/responses; emulator/providers/openai-responses.ts):
//  * Same fake model: words, a function_call item (flat function tools, same rules as chat's tool
//    calls, not after a function_call_output) or JSON for text.format; reasoning models (o<digit>...,
//    gpt-5...) add a reasoning item and reasoning tokens by reasoning.effort; max_output_tokens
//    (>= 16) covers both and makes the response "incomplete".
//  * input_tokens = chat's prompt_tokens over instructions (a system message), the
//    previous_response_id chain's inputs and outputs and this input, plus the tools' JSON.
//  * Responses are stored per gateway unless store is false (reset clears them); SSE as OpenAI
//    sends it (event: + data: with sequence_number, no [DONE]).
//  * Fault errorAfterChunks: k events, then `event: error` or (errorEvent) `response.failed`;
//    on other streams the provider's own in-band error.
//
// Workers AI binding: miniflare's `ai` binding with remoteProxyConnectionString pointing here
// forwards env.AI.run calls (MF-URL / MF-Header-*); they run through the gateway pipeline and
// get the bare model output {response, tool_calls?, usage} or the Workers AI SSE stream. The
// wire protocol and its evidence: emulator/binding.ts.
// Details live in emulator/completion.ts; the gateway pipeline in emulator/gateway.ts; the
// routes (incl. /openai/v1/..., the OpenAI-compatible providers' paths) in emulator/routes.ts.
import { readFileSync, realpathSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { handleBinding, isBindingCall } from "./emulator/binding";
import { normalizeConfig } from "./emulator/config";
import { handleControl } from "./emulator/control";
import { handleGateway } from "./emulator/gateway";
import { BodyTooLarge, gatewayErrorResult, jsonResult, prop, writeResult } from "./emulator/http";
import { ulid } from "./emulator/ids";
import type { EmulatorState } from "./emulator/state";
import {
  AnswerLog,
  FaultBook,
  PromptCache,
  RateLimiter,
  RequestLog,
  ResponseCache,
  ResponseStore,
} from "./emulator/state";
import type { EmulatorConfig } from "./emulator/types";

export interface StartOptions {
  host?: string;
  port?: number;
  /** The raw config (parsed JSON); validated by normalizeConfig. */
  config?: unknown;
}

export interface RunningEmulator {
  /** http://HOST:PORT, no trailing slash. */
  url: string;
  state: EmulatorState;
  /** Stops listening and ends every open socket; the same promise on every call. */
  close(): Promise<void>;
}

// Keep idle keep-alive connections longer than clients (undici, httpx) expect to reuse them,
// so a benchmark does not pay a reconnect every few seconds.
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const CONTROL_PREFIX = "/__emulator/";
const GATEWAY_PREFIX = "/v1/";

function createEmulatorState(config: EmulatorConfig): EmulatorState {
  const emu: EmulatorState = {
    config,
    log: new RequestLog(),
    faults: new FaultBook(),
    cache: new ResponseCache(),
    promptCache: new PromptCache(),
    responses: new ResponseStore(),
    answers: new AnswerLog(),
    limiters: new Map(),
    limiterFor(gatewayId, gateway) {
      let limiter = emu.limiters.get(gatewayId);
      if (limiter === undefined) {
        limiter = new RateLimiter(gateway.rateLimit);
        emu.limiters.set(gatewayId, limiter);
      }
      return limiter;
    },
    replaceConfig(next, changedGatewayIds) {
      emu.config = next;
      for (const id of changedGatewayIds) emu.limiters.delete(id);
    },
    reset() {
      emu.log.clear();
      emu.faults.clear();
      emu.cache.clear();
      emu.promptCache.clear();
      emu.responses.clear();
      emu.answers.clear();
      emu.limiters.clear();
    },
  };
  return emu;
}

function decodeSegments(path: string): string[] {
  const segments = path.slice(GATEWAY_PREFIX.length).split("/");
  while (segments.length > 0 && segments[segments.length - 1] === "") segments.pop();
  return segments.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
}

async function dispatch(emu: EmulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  if (isBindingCall(req)) return handleBinding(emu, req, res);
  if (path.startsWith(GATEWAY_PREFIX)) return handleGateway(emu, req, res, path, decodeSegments(path));
  if (path.startsWith(CONTROL_PREFIX)) {
    const query = new URLSearchParams(q === -1 ? "" : url.slice(q + 1));
    return handleControl(emu, req, res, path.slice(CONTROL_PREFIX.length), query);
  }
  // Anything else (including miniflare's GET /?MF-Binding=AI WebSocket probes) is not a gateway path.
  const logId = ulid();
  await writeResult(res, gatewayErrorResult(2990), { "cf-aig-log-id": logId, "cf-aig-request-id": logId });
}

/** `err?.message ?? err`, for whatever was thrown. */
function messageOf(err: unknown): unknown {
  return prop(err, "message") ?? err;
}

function answerCrash(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const result =
    err instanceof BodyTooLarge
      ? jsonResult(413, { error: err.message })
      : jsonResult(500, { error: `emulator error: ${messageOf(err)}` });
  res.setHeader("connection", "close");
  writeResult(res, result, {}).catch(() => res.destroy());
}

/**
 * Starts an emulator. `config` is the config object (see README of the brief / config.ts).
 * Resolves to {url, close}; close() stops listening and ends every open socket.
 */
export async function startEmulator({
  host = "127.0.0.1",
  port = 0,
  config,
}: StartOptions = {}): Promise<RunningEmulator> {
  const emu = createEmulatorState(normalizeConfig(config));
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    dispatch(emu, req, res).catch((err: unknown) => answerCrash(res, err));
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 5_000;
  server.on("connection", (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // A TCP listener: address() is never a pipe name or null here.
  const address = server.address() as AddressInfo;
  const shownHost = address.address.includes(":") ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}`,
    state: emu,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
    },
  });
  if (!values.config) throw new Error("--config <path to config.json> is required");
  const config: unknown = JSON.parse(readFileSync(values.config, "utf8"));
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be 0-65535, got ${values.port}`);
  }
  const emulator = await startEmulator({ host: values.host, port, config });
  process.stdout.write(`${JSON.stringify({ emulatorUrl: emulator.url })}\n`);
  const stop = () => {
    emulator.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

// Also true under `node --import tsx/esm emulator.ts`: tsx keeps the .ts file URL as import.meta.url.
const invokedAsScript =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (invokedAsScript) {
  main().catch((err: unknown) => {
    process.stderr.write(`emulator: ${messageOf(err)}\n`);
    process.exit(1);
  });
}
