// Workers AI's errors through the binding (`{name, internalCode, description}` and the v4
// `errors` list) and AI Gateway's own → our one OpenAI-shaped error. The binding holds the
// account's own authority, so an authentication error is ours (502), never the client's.

import { HttpError } from "../../lib/errors";
import { cleanMessage, credentialsError, errorJson, gatewayError } from "../gateway";

interface WorkersAIError {
  internalCode?: unknown;
  description?: unknown;
  errors?: { code?: unknown; message?: unknown }[];
}

export async function runError(response: Response): Promise<HttpError> {
  const body = (await errorJson(response)) as WorkersAIError | null;
  const fromGateway = gatewayError(body);
  if (fromGateway) return fromGateway;
  const status = response.status;
  const first = Array.isArray(body?.errors) ? body.errors[0] : undefined;
  const message = cleanMessage(String(body?.description ?? first?.message ?? `Workers AI answered HTTP ${status}.`));
  if (status === 401 || status === 403) return credentialsError();
  if (status === 429) return new HttpError(429, message, { type: "rate_limit_error", code: "rate_limit_exceeded" });
  if (status === 504) return new HttpError(504, `Workers AI timed out: ${message}`, { code: "upstream_timeout" });
  if (status >= 500) return new HttpError(502, `Workers AI error: ${message}`, { code: "upstream_error" });
  if (status === 404)
    return new HttpError(502, `Workers AI does not serve this model: ${message}`, {
      code: "upstream_model_not_found",
    });
  return new HttpError(status, message, { code: String(body?.internalCode ?? first?.code ?? "invalid_request") });
}
