// One way to declare a route: each method's handler, and 405 with an Allow header for the
// others (Hono answers unmatched methods with 404 by itself).

import type { Handler, Hono } from "hono";
import { type ErrorShape, HttpError } from "../lib/errors";
import type { AppEnv } from "../protocol/env";

type Method = "GET" | "POST";

/** `errors`: the shape every error on this path takes (its 405s, 401s and 400s included). */
export function route(
  app: Hono<AppEnv>,
  path: string,
  methods: Partial<Record<Method, Handler<AppEnv>[] | Handler<AppEnv>>>,
  errors: ErrorShape = "openai",
) {
  const allow = Object.keys(methods).join(", ");
  if (errors !== "openai") {
    app.use(path, async (c, next) => {
      c.set("errors", errors);
      await next();
    });
  }
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
