// What of the upstream answer's headers a client may see: the content type and AI Gateway's
// own cf-aig-* (log id, cache status). Everything else stays with the gateway.

export function passthroughHeaders(upstream: Response): Record<string, string> {
  // a record, handed to the Response whole: each Headers.set is a call into the runtime
  const headers: Record<string, string> = {};
  for (const [name, value] of upstream.headers) {
    if (name === "content-type" || name.startsWith("cf-aig-")) headers[name] = value;
  }
  return headers;
}
