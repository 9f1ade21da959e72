// A route's model (provision/stack/contract.py ROUTES): the provider's own name on its routes, the
// type and provider each route serves, the routes each model is listed with, and the error
// shapes the routes answer in.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BRIDGED_KINDS, ROUTES } from "../src/generated/contract";
import { EMBEDDING_MODELS, MODELS } from "../src/generated/settings";
import { errorResponse, HttpError } from "../src/lib/errors";
import type { Policy } from "../src/protocol/policy";
import { type Route, resolveRouteModel, routesOf, serves, shownPath, speaks } from "../src/request/models";
import { undeclaredRouting } from "../src/request/policy";

const POLICY: Policy = {
  userLimitMicros: 1,
  keyLimitMicros: null,
  spendRates: [],
  orgBudgetMicros: 1,
  failureMode: "fail-closed",
  fallbackDailyLimitMicros: 0,
  allowedModels: [...MODELS],
  defaultModel: "openai/gpt-4o-mini",
  cacheTtl: 0,
  priceOverrides: {},
  ...undeclaredRouting(),
  version: "v",
};

type GoogleError = { error: { code: number; status: string } };

function routeAt(path: string): Route {
  const found = ROUTES.find((r) => shownPath(r) === path);
  assert.ok(found, path);
  return found;
}

function refused(run: () => unknown): HttpError {
  try {
    run();
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  assert.fail("not refused");
}

describe("resolveRouteModel", () => {
  test("a provider's route takes the provider's own model name, and the catalog id too", () => {
    assert.equal(resolveRouteModel("gpt-4o-mini", routeAt("/openai/chat/completions"), POLICY), "openai/gpt-4o-mini");
    assert.equal(
      resolveRouteModel("claude-sonnet-4-5", routeAt("/v1/messages"), POLICY),
      "anthropic/claude-sonnet-4-5",
    );
    assert.equal(
      resolveRouteModel("@cf/meta/llama-3.1-8b-instruct", routeAt("/workers-ai/@cf/*"), POLICY),
      "workers-ai/@cf/meta/llama-3.1-8b-instruct",
    );
    assert.equal(resolveRouteModel("openai/gpt-4o-mini", routeAt("/v1/responses"), POLICY), "openai/gpt-4o-mini");
  });

  test("a model the route does not serve is a 400 naming what it serves", () => {
    const chatOnEmbeddings = refused(() => resolveRouteModel("openai/gpt-4o-mini", routeAt("/v1/embeddings"), POLICY));
    assert.deepEqual([chatOnEmbeddings.status, chatOnEmbeddings.code], [400, "model_not_supported"]);
    assert.match(chatOnEmbeddings.message, /serves embedding models/);
    const claudeOnResponses = refused(() =>
      resolveRouteModel("anthropic/claude-sonnet-4-5", routeAt("/v1/responses"), POLICY),
    );
    assert.match(claudeOnResponses.message, /chat models of openai/);
  });

  test("only /v1/chat/completions and /v1/responses fall back to the default model", () => {
    assert.equal(resolveRouteModel(undefined, routeAt("/v1/chat/completions"), POLICY), "openai/gpt-4o-mini");
    assert.equal(resolveRouteModel("", routeAt("/v1/responses"), POLICY), "openai/gpt-4o-mini");
    for (const path of ["/v1/embeddings", "/v1/messages", "/openai/chat/completions"]) {
      assert.equal(refused(() => resolveRouteModel(undefined, routeAt(path), POLICY)).param, "model", path);
    }
  });

  test("the allow-list applies on every route", () => {
    const narrow = { ...POLICY, allowedModels: ["openai/gpt-4o-mini"] };
    for (const route of ROUTES) {
      const model =
        route.provider === "anthropic" ? "anthropic/claude-sonnet-4-5" : "workers-ai/@cf/baai/bge-base-en-v1.5";
      if (!serves(route, model)) continue;
      assert.equal(refused(() => resolveRouteModel(model, route, narrow)).status, 403, route.path);
    }
  });
});

test("each model is listed with exactly the routes that serve it", () => {
  for (const model of MODELS) {
    const embedding = EMBEDDING_MODELS.includes(model);
    for (const path of routesOf(model)) {
      const route = routeAt(path);
      // a provider's route serves its models and those speaking its wire (Azure's on OpenAI's,
      // Claude on Bedrock on Anthropic's); /v1/messages every chat model (translated)
      const bridged = !route.native && (BRIDGED_KINDS as readonly string[]).includes(route.kind);
      assert.ok(route.provider === null || bridged || speaks(model, route.provider), `${model} on ${path}`);
      assert.equal(route.kind === "embeddings", embedding && route.kind !== "workers_ai_run", `${model} on ${path}`);
    }
  }
  assert.deepEqual(routesOf("openai/text-embedding-3-small"), ["/v1/embeddings", "/openai/embeddings"]);
  const gpt = routesOf("openai/gpt-4o-mini");
  assert.ok(gpt.includes("/v1/messages") && !gpt.includes("/anthropic/v1/messages"));
  assert.ok(routesOf("workers-ai/@cf/baai/bge-base-en-v1.5").includes("/workers-ai/@cf/*"));
});

describe("error shapes", () => {
  const error = new HttpError(429, "over budget", { code: "budget_exceeded" });
  test("openai", async () => {
    const body = await errorResponse(error).json();
    assert.deepEqual(body, {
      error: { message: "over budget", type: "rate_limit_error", param: null, code: "budget_exceeded" },
    });
  });
  test("anthropic: the type from the status, as Anthropic's SDKs expect", async () => {
    const body = await errorResponse(error, "anthropic").json();
    assert.deepEqual(body, { type: "error", error: { type: "rate_limit_error", message: "over budget" } });
    for (const [status, type] of [
      [401, "authentication_error"],
      [403, "permission_error"],
      [404, "not_found_error"],
      [529, "overloaded_error"],
      [503, "api_error"],
      [405, "invalid_request_error"],
    ] as const) {
      const shaped = (await errorResponse(new HttpError(status, "x"), "anthropic").json()) as {
        error: { type: string };
      };
      assert.equal(shaped.error.type, type, String(status));
    }
  });
  test("google: Gemini's RPC status by the HTTP status, or the provider's own", async () => {
    const body = await errorResponse(error, "google").json();
    assert.deepEqual(body, { error: { code: 429, message: "over budget", status: "RESOURCE_EXHAUSTED" } });
    for (const [status, name] of [
      [400, "INVALID_ARGUMENT"],
      [401, "UNAUTHENTICATED"],
      [403, "PERMISSION_DENIED"],
      [404, "NOT_FOUND"],
      [503, "UNAVAILABLE"],
      [504, "DEADLINE_EXCEEDED"],
    ] as const) {
      const shaped = (await errorResponse(new HttpError(status, "x"), "google").json()) as GoogleError;
      assert.equal(shaped.error.status, name, String(status));
      assert.equal(shaped.error.code, status);
    }
    const refused = new HttpError(400, "x", { providerType: "FAILED_PRECONDITION" });
    const passed = (await errorResponse(refused, "google").json()) as GoogleError;
    assert.equal(passed.error.status, "FAILED_PRECONDITION");
  });

  test("cloudflare: the v4 envelope", async () => {
    const response = errorResponse(error, "cloudflare");
    assert.equal(response.status, 429);
    assert.deepEqual(await response.json(), {
      result: null,
      success: false,
      errors: [{ code: 429, message: "over budget" }],
      messages: [],
    });
  });
});
