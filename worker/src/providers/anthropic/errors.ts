// Anthropic's errors (`{"type":"error","error":{"type","message"}}`) and AI Gateway's own →
// our one OpenAI-shaped error with the status OpenAI clients expect.

import { HttpError } from "../../lib/errors";
import { cleanMessage, credentialsError, errorJson, gatewayError } from "../gateway";

interface AnthropicError {
  error?: { type?: string; message?: string };
}

export async function messagesError(response: Response): Promise<HttpError> {
  const body = (await errorJson(response)) as AnthropicError | null;
  const fromGateway = gatewayError(body);
  if (fromGateway) return fromGateway;
  const status = response.status;
  const message = cleanMessage(body?.error?.message ?? `The model provider answered HTTP ${status}.`);
  const type = body?.error?.type;
  if (status === 401 || status === 403) return credentialsError();
  if (status === 429) return new HttpError(429, message, { type: "rate_limit_error", code: "rate_limit_exceeded" });
  if (status === 529) {
    return new HttpError(503, `The model provider is overloaded: ${message}`, { code: "provider_overloaded" });
  }
  if (status === 504)
    return new HttpError(504, `Upstream provider timed out: ${message}`, { code: "upstream_timeout" });
  if (status >= 500) return new HttpError(502, `Upstream provider error: ${message}`, { code: "upstream_error" });
  return new HttpError(status, message, { type: "invalid_request_error", code: type ?? null });
}
