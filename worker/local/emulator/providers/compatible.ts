// OpenAI-compatible providers behind AI Gateway (cf-contract-2 1.1): groq, mistral, deepseek,
// grok (xAI) and google-ai-studio's OpenAI endpoint speak OpenAI's chat wire format
// (openai-chat.ts), but each has its own error bodies. The shapes below are what each API
// is known to return for a bad key and for generic failures; UNCONFIRMED (no captured
// responses in the contract), so they are kept in one place.
import { randomBytes } from "node:crypto";
import { jsonResult } from "../http";
import type { BufferedResult } from "../types";
import * as openai from "./openai";

/** Error shapes of one provider: a generic failure for a status, and the bad-key answer. */
export interface ErrorShapes {
  defaultErrorResult(status: number): BufferedResult;
  keyErrorResult(presentedKey?: string): BufferedResult;
}

/** "****abcd" / "xa***cd": how providers echo a rejected key (never the whole key). */
function tail(key: string | undefined, visible: number): string {
  return key === undefined ? "" : key.slice(-visible);
}

// Google's RPC status names, by HTTP status (gemini.ts answers with them too).
export const GOOGLE_STATUS: Readonly<Record<number, string>> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

function googleError(status: number, message: string, details?: unknown[]): BufferedResult {
  const error = {
    code: status,
    message,
    status: GOOGLE_STATUS[status] ?? (status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION"),
    ...(details ? { details } : {}),
  };
  // The OpenAI-compatible Gemini endpoint wraps its error object in a one-element list.
  return jsonResult(status, [{ error }]);
}

function generic(status: number): string {
  if (status === 429) return "Rate limit exceeded.";
  return status >= 500 ? "Internal server error." : `Request failed with status ${status}.`;
}

export const groq: ErrorShapes = {
  defaultErrorResult: openai.defaultErrorResult,
  keyErrorResult: () => openai.errorResult(401, "Invalid API Key", "invalid_request_error", "invalid_api_key"),
};

export const deepseek: ErrorShapes = {
  defaultErrorResult: openai.defaultErrorResult,
  keyErrorResult: (key) =>
    openai.errorResult(
      401,
      `Authentication Fails, Your api key: ****${tail(key, 4)} is invalid`,
      "authentication_error",
      "invalid_request_error",
    ),
};

export const mistral: ErrorShapes = {
  defaultErrorResult: (status) =>
    jsonResult(status, {
      object: "error",
      message: generic(status),
      type: status === 429 ? "rate_limited" : status >= 500 ? "internal_server_error" : "invalid_request_error",
      param: null,
      code: String(status),
    }),
  keyErrorResult: () => jsonResult(401, { message: "Unauthorized", request_id: randomBytes(16).toString("hex") }),
};

// xAI answers a bad key with HTTP 400 and a {code, error} body.
export const grok: ErrorShapes = {
  defaultErrorResult: (status) =>
    jsonResult(status, {
      code: status >= 500 ? "Internal error" : "Client specified an invalid argument",
      error: generic(status),
    }),
  keyErrorResult: (key) =>
    jsonResult(400, {
      code: "Client specified an invalid argument",
      error: `Incorrect API key provided: ${key ? `${key.slice(0, 2)}***${tail(key, 2)}` : "***"}. You can obtain an API key from https://console.x.ai.`,
    }),
};

export const googleAiStudio: ErrorShapes = {
  defaultErrorResult: (status) => googleError(status, generic(status)),
  keyErrorResult: () =>
    googleError(400, "API key not valid. Please pass a valid API key.", [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "API_KEY_INVALID",
        domain: "googleapis.com",
        metadata: { service: "generativelanguage.googleapis.com" },
      },
    ]),
};

// A custom provider's server, as vLLM (the usual one behind custom-*) answers: its
// `{"object": "error", …}` body, the HTTP status as `code`; a key it was started with
// (`--api-key`) refused as {"error": "Unauthorized"}.
export const custom: ErrorShapes = {
  defaultErrorResult: (status) =>
    jsonResult(status, {
      object: "error",
      message: generic(status),
      type: status >= 500 ? "InternalServerError" : status === 429 ? "TooManyRequests" : "BadRequestError",
      param: null,
      code: status,
    }),
  keyErrorResult: () => jsonResult(401, { error: "Unauthorized" }),
};
