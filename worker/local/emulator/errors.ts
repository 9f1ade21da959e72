// Gateway-originated errors (cf-contract.md 1.7): the AiGatewayError envelope and its codes.

/** The JSON body AI Gateway sends for its own errors. */
export interface GatewayErrorBody {
  success: false;
  result: [];
  messages: [];
  error: [{ code: number; message: string }];
  name: "AiGatewayError";
  httpCode: number;
  internalCode: number;
  description: string;
}

/**
 * Known gateway codes -> [HTTP status, message]. Codes 2990-2996 are chosen by the emulator
 * for situations whose real code we could not find (all UNCONFIRMED); they sit in a range
 * no documented code uses so a test can never mistake them for a real one.
 */
export const GATEWAY_ERRORS: Readonly<Record<number, readonly [status: number, message: string]>> = {
  2001: [400, "Please configure AI Gateway in the Cloudflare dashboard"],
  2003: [429, "Rate limited"],
  2005: [400, "Failed to get response from provider"], // 400 (sic) per cloudflare/ai#436
  2009: [401, "Unauthorized"],
  2016: [424, "Prompt blocked due to security configurations"],
  2017: [424, "Response blocked due to security configurations"],
  2019: [400, "Chat completion bad format"], // status UNCONFIRMED (likely 400)
  2021: [402, "Guardrails scanner needs more credits"],
  7013: [503, "Guardrails scanner unavailable"],
  // Emulator-chosen, UNCONFIRMED:
  2990: [404, "Not Found"], // unknown path under the gateway
  2991: [405, "Method Not Allowed"],
  2992: [400, "Invalid cf-aig-metadata header"], // not JSON, not an object, or an object value
  2993: [400, "Invalid cf-aig-custom-cost header"],
  2994: [400, "Unsupported provider"], // compat model prefix names no known provider
  2995: [504, "Request timeout"], // cf-aig-request-timeout elapsed before the first byte
  2996: [400, "Invalid universal request body"], // body is not a JSON array of steps
};

/** The envelope AI Gateway uses for its own errors; `status` overrides the code's default. */
export function gatewayErrorBody(
  code: number,
  status?: number,
  message?: string,
): { status: number; body: GatewayErrorBody } {
  const [defaultStatus, defaultMessage] = GATEWAY_ERRORS[code] ?? [500, "Internal error"];
  const httpCode = status ?? defaultStatus;
  const text = message ?? defaultMessage;
  return {
    status: httpCode,
    body: {
      success: false,
      result: [],
      messages: [],
      error: [{ code, message: text }],
      name: "AiGatewayError",
      httpCode,
      internalCode: code,
      description: text,
    },
  };
}
