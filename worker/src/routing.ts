// One way to declare a route: each method's handler, and 405 with an Allow header for the
// others (Hono answers unmatched methods with 404 by itself).

import type { Handler, Hono } from "hono";
import type { AppEnv } from "./env";
import { HttpError } from "./errors";

type Method = "GET" | "POST";

export function route(
  app: Hono<AppEnv>,
  path: string,
  methods: Partial<Record<Method, Handler<AppEnv>[] | Handler<AppEnv>>>,
) {
  const allow = Object.keys(methods).join(", ");
  for (const [method, handlers] of Object.entries(methods)) {
    app.on([method], [path], ...(Array.isArray(handlers) ? handlers : [handlers]));
  }
  app.all(path, (c) => {
    throw new HttpError(405, `Method ${c.req.method} is not allowed on ${new URL(c.req.url).pathname}.`, {
      code: "method_not_allowed",
      headers: { allow },
    });
  });
}
