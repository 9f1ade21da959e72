// What of the upstream answer's headers a client may see: the content type and AI Gateway's
// own cf-aig-* (log id, cache status). Everything else stays with the gateway.

export function passthroughHeaders(upstream: Response): Headers {
  const headers = new Headers();
  for (const [name, value] of upstream.headers) {
    if (name === "content-type" || name.startsWith("cf-aig-")) headers.set(name, value);
  }
  return headers;
}
