// Bedrock's errors: the status, `{"message": …}`, and the error's name in the
// `x-amzn-ErrorType` header (`ValidationException:http://…`). A request Bedrock refuses keeps
// its status and words; our credentials refused (a bad signature, an unknown key, no access) is
// a 502 like every provider's; throttling a 429, a model that timed out a 504, the rest 502.

import { HttpError } from "../../lib/errors";
import { cleanMessage, credentialsError, errorJson, gatewayError } from "../gateway";

const CREDENTIALS = new Set([
  "AccessDeniedException",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignatureException",
  "MissingAuthenticationTokenException",
  "ExpiredTokenException",
]);

/** `ValidationException:http://internal.amazon.com/…` → `ValidationException`. */
export function errorType(header: string | null): string {
  return (header ?? "").split(":")[0] ?? "";
}

export async function bedrockError(response: Response): Promise<HttpError> {
  const type = errorType(response.headers.get("x-amzn-errortype"));
  const body = (await errorJson(response)) as { message?: unknown; Message?: unknown } | null;
  const fromGateway = gatewayError(body);
  if (fromGateway) return fromGateway;
  const status = response.status;
  if (CREDENTIALS.has(type) || status === 401 || status === 403) return credentialsError();
  const said = typeof body?.message === "string" ? body.message : body?.Message;
  const message = cleanMessage(typeof said === "string" ? said : `The model provider answered HTTP ${status}.`);
  if (status === 429) return new HttpError(429, message, { type: "rate_limit_error", code: "rate_limit_exceeded" });
  if (status === 408)
    return new HttpError(504, `Upstream provider timed out: ${message}`, { code: "upstream_timeout" });
  if (status === 503) {
    return new HttpError(503, `The model provider is unavailable: ${message}`, { code: "provider_overloaded" });
  }
  if (status >= 500 || status === 424) {
    return new HttpError(502, `Upstream provider error: ${message}`, { code: "upstream_error" });
  }
  if (status === 404) return new HttpError(404, message, { type: "invalid_request_error", code: "model_not_found" });
  return new HttpError(status, message, { type: "invalid_request_error", code: type || null });
}
