// The production stand-in for testhooks.ts (worker/build.mjs bundles one or the other): no
// fault header is read and no test route exists.

import type { Hono } from "hono";
import type { AppEnv, Fault } from "./protocol/env";

export function faultOf(_request: Request): Fault {
  return null;
}

export function isolateOf(_request: Request): string {
  return "";
}

export function registerTestRoutes(_app: Hono<AppEnv>): void {}
