// One error vocabulary for the Worker, four shapes: OpenAI's {"error": {message, type, param,
// code}} on OpenAI-style routes, Anthropic's {"type": "error", "error": {type, message}} on the
// Messages routes, Cloudflare's v4 envelope on Workers AI's own run route, Google's
// {"error": {code, message, status}} on Gemini's own routes (the shape is the route's:
// provision/stack/contract.py ROUTE_KINDS). Errors are thrown as HttpError (a Hono
// HTTPException) and become a response in one place, the app's onError (worker/src/index.ts).

import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

const TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request_error",
  401: "invalid_request_error",
  403: "permission_error",
  404: "invalid_request_error",
  405: "invalid_request_error",
  413: "invalid_request_error",
  429: "rate_limit_error",
  500: "api_error",
  502: "api_error",
  503: "service_unavailable",
  504: "timeout_error",
};

export interface ErrorOptions {
  type?: string | undefined;
  /** The provider's own error type, kept in that provider's shape (Anthropic's, passed through). */
  providerType?: string | undefined;
  code?: string | null | undefined;
  param?: string | null | undefined;
  headers?: Record<string, string>;
  /** The provider's own detail, passed on in OpenAI's shape (Azure's content filter results). */
  innererror?: unknown;
}

export class HttpError extends HTTPException {
  readonly type: string;
  readonly providerType: string | undefined;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;
  readonly innererror: unknown;

  constructor(
    status: number,
    message: string,
    { type, providerType, code = null, param = null, headers = {}, innererror }: ErrorOptions = {},
  ) {
    super(status as ContentfulStatusCode, { message });
    this.type = type ?? TYPE_BY_STATUS[status] ?? "api_error";
    this.providerType = providerType;
    this.code = code ?? null;
    this.param = param ?? null;
    this.headers = headers;
    this.innererror = innererror;
  }
}

export function errorBody(message: string, type: string, code: string | null = null, param: string | null = null) {
  return { error: { message, type, param, code } };
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export type ErrorShape = "openai" | "anthropic" | "cloudflare" | "google";

// Google's RPC status names by HTTP status (Gemini's own API answers errors with them).
const GOOGLE_STATUS_BY_STATUS: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  405: "INVALID_ARGUMENT",
  409: "ABORTED",
  413: "INVALID_ARGUMENT",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

// Anthropic's error types by status (its SDKs pick the exception class from the status).
const ANTHROPIC_TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  504: "timeout_error",
  529: "overloaded_error",
};

function anthropicType(status: number): string {
  return ANTHROPIC_TYPE_BY_STATUS[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
}

export function errorResponse(error: HttpError, shape: ErrorShape = "openai"): Response {
  let body: unknown;
  if (shape === "anthropic") {
    body = {
      type: "error",
      error: { type: error.providerType ?? anthropicType(error.status), message: error.message },
    };
  } else if (shape === "google") {
    const status =
      error.providerType ??
      GOOGLE_STATUS_BY_STATUS[error.status] ??
      (error.status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION");
    body = { error: { code: error.status, message: error.message, status } };
  } else if (shape === "cloudflare") {
    body = { result: null, success: false, errors: [{ code: error.status, message: error.message }], messages: [] };
  } else {
    const openai = errorBody(error.message, error.type, error.code, error.param);
    body = error.innererror === undefined ? openai : { error: { ...openai.error, innererror: error.innererror } };
  }
  return jsonResponse(body, error.status, error.headers);
}
