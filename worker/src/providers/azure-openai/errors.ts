// Azure OpenAI's errors: OpenAI's shape with Azure's codes. A prompt or answer its content
// filter blocks is a 400 `content_filter` whose `innererror` (the filter's results per
// category) the client gets as Azure sent it; a deployment Azure does not know is the stack's
// mistake, not the client's (502, said plainly); our key refused, a 502 like every provider's.

import { HttpError } from "../../lib/errors";
import { cleanMessage, credentialsError, errorJson, gatewayError } from "../gateway";

interface AzureError {
  error?: { message?: string; type?: string | null; code?: string | null; param?: string | null; innererror?: unknown };
}

export async function azureError(response: Response): Promise<HttpError> {
  const body = (await errorJson(response)) as AzureError | null;
  const fromGateway = gatewayError(body);
  if (fromGateway) return fromGateway;
  const status = response.status;
  if (status === 401 || status === 403) return credentialsError();
  const detail = body?.error && typeof body.error === "object" ? body.error : undefined;
  const message = cleanMessage(detail?.message ?? `The model provider answered HTTP ${status}.`);
  if (status === 404 && detail?.code === "DeploymentNotFound") {
    return new HttpError(502, `The Azure OpenAI deployment of this model does not exist: ${message}`, {
      code: "upstream_error",
    });
  }
  if (status === 429) return new HttpError(429, message, { type: "rate_limit_error", code: "rate_limit_exceeded" });
  if (status >= 500) return new HttpError(502, `Upstream provider error: ${message}`, { code: "upstream_error" });
  return new HttpError(status, message, {
    type: detail?.type ?? undefined,
    code: detail?.code ?? null,
    param: detail?.param ?? null,
    innererror: detail?.innererror,
  });
}
