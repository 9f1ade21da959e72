// OpenAI's errors (and AI Gateway's own) → our one OpenAI-shaped error. A 4xx the request
// caused keeps its status and OpenAI's fields; a 5xx is a 502; our credentials refused, a 502.

import { HttpError } from "../../lib/errors";
import { cleanMessage, credentialsError, errorJson, gatewayError } from "../gateway";

interface OpenAIError {
  error?: string | { message?: string; type?: string; code?: string | null; param?: string | null };
  message?: string;
}

export async function chatError(response: Response): Promise<HttpError> {
  const body = (await errorJson(response)) as OpenAIError | null;
  const fromGateway = gatewayError(body);
  if (fromGateway) return fromGateway;
  const status = response.status;
  if (status === 401 || status === 403) return credentialsError();
  const detail = body?.error && typeof body.error === "object" ? body.error : undefined;
  const message = cleanMessage(
    (typeof body?.error === "string" ? body.error : (detail?.message ?? body?.message)) ??
      `The model provider answered HTTP ${status}.`,
  );
  if (status >= 500) return new HttpError(502, `Upstream provider error: ${message}`, { code: "upstream_error" });
  return new HttpError(status, message, {
    type: detail?.type,
    code: detail?.code ?? null,
    param: detail?.param ?? null,
  });
}
