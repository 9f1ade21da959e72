// Gemini's errors (Google's RPC shape, `{"error": {"code", "message", "status", "details"}}`) and
// AI Gateway's own → our one OpenAI-shaped error with the status OpenAI clients expect. A key
// Google refuses (400 API_KEY_INVALID, 403 PERMISSION_DENIED) is the gateway's credentials.

import { HttpError } from "../../lib/errors";
import { cleanMessage, credentialsError, errorJson, gatewayError } from "../gateway";

interface GoogleError {
  error?: { code?: number; message?: string; status?: string; details?: { reason?: string }[] };
}

/** The error object of a Google error body (a list of one, as some endpoints send it, too). */
export function googleError(body: unknown): GoogleError["error"] | null {
  const first = Array.isArray(body) ? body[0] : body;
  const error = (first as GoogleError | null)?.error;
  return error && typeof error === "object" ? error : null;
}

export async function geminiError(response: Response): Promise<HttpError> {
  const body = await errorJson(response);
  const fromGateway = gatewayError(body);
  if (fromGateway) return fromGateway;
  const status = response.status;
  const error = googleError(body);
  const message = cleanMessage(error?.message ?? `The model provider answered HTTP ${status}.`);
  const reasons = (error?.details ?? []).map((d) => d?.reason);
  if (status === 401 || status === 403 || reasons.includes("API_KEY_INVALID")) return credentialsError();
  if (status === 429) return new HttpError(429, message, { type: "rate_limit_error", code: "rate_limit_exceeded" });
  if (status === 503) {
    return new HttpError(503, `The model provider is overloaded: ${message}`, { code: "provider_overloaded" });
  }
  if (status === 504)
    return new HttpError(504, `Upstream provider timed out: ${message}`, { code: "upstream_timeout" });
  if (status >= 500) return new HttpError(502, `Upstream provider error: ${message}`, { code: "upstream_error" });
  if (status === 404) return new HttpError(404, message, { type: "invalid_request_error", code: "model_not_found" });
  return new HttpError(status, message, { type: "invalid_request_error", code: error?.status ?? null });
}
