// One error vocabulary for the Worker: everything a client sees on failure is OpenAI's
// error shape, {"error": {message, type, param, code}}, with the matching HTTP status.

const TYPE_BY_STATUS = {
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

export class HttpError extends Error {
  constructor(status, message, { type, code = null, param = null, headers = {} } = {}) {
    super(message);
    this.status = status;
    this.type = type ?? TYPE_BY_STATUS[status] ?? "api_error";
    this.code = code;
    this.param = param;
    this.headers = headers;
  }
}

export function errorBody(message, type, code = null, param = null) {
  return { error: { message, type, param, code } };
}

export function jsonResponse(body, status = 200, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function errorResponse(error) {
  const body = errorBody(error.message, error.type, error.code, error.param);
  return jsonResponse(body, error.status, error.headers);
}
