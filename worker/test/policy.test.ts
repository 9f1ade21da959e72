// A key's policy and model resolution: catalog ∩ org ∩ user in catalog order; the org's
// default, else the stack's, else the first allowed model; aliases; clear refusals.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Policy } from "../src/env";
import { HttpError } from "../src/errors";
import { ALIASES, DEFAULT_MODEL, MODELS } from "../src/generated/settings";
import { getModel, listModels, resolveModel } from "../src/models";
import { effectivePolicy, type KeyEntry, type OrgPolicy } from "../src/policy";

const CATALOG = ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-haiku-4-5"];
const PRICE = { in: 1, out: 2, cachedIn: 1, cacheWrite: 1 };

function entry(allowedModels: string[] | null = null): KeyEntry {
  return {
    keyId: "k",
    userId: "u",
    orgId: "o",
    status: "active",
    expiresAt: null,
    monthlyLimitMicros: 5,
    allowedModels,
  };
}

function org(overrides: Partial<OrgPolicy> = {}): OrgPolicy {
  return {
    monthlyBudgetMicros: 100,
    failureMode: "fail-open",
    fallbackDailyLimitMicros: 7,
    allowedModels: null,
    defaultModel: null,
    cacheTtl: 300,
    priceOverrides: {},
    ...overrides,
  };
}

describe("effectivePolicy", () => {
  test("allows the catalog ∩ the org's list ∩ the user's list, in catalog order", () => {
    assert.deepEqual(effectivePolicy(entry(), org(), CATALOG).allowedModels, CATALOG);
    const narrowed = effectivePolicy(
      entry(["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"]),
      org({ allowedModels: ["anthropic/claude-haiku-4-5", "openai/gpt-4o", "openai/gpt-4o-mini"] }),
      CATALOG,
    );
    assert.deepEqual(narrowed.allowedModels, ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]);
  });

  test("defaults to the org's default model when the key may use it", () => {
    assert.equal(
      effectivePolicy(entry(), org({ defaultModel: "openai/gpt-4o" }), CATALOG).defaultModel,
      "openai/gpt-4o",
    );
  });

  test("falls back to the first allowed model, and to none when nothing is allowed", () => {
    const policy = effectivePolicy(
      entry(["anthropic/claude-haiku-4-5"]),
      org({ defaultModel: "openai/gpt-4o" }),
      CATALOG,
    );
    assert.equal(policy.defaultModel, "anthropic/claude-haiku-4-5");
    const none = effectivePolicy(entry(["openai/gpt-4o"]), org({ allowedModels: ["openai/gpt-4o-mini"] }), CATALOG);
    assert.deepEqual([none.allowedModels, none.defaultModel], [[], null]);
  });

  test("keeps price overrides only for models the key may use", () => {
    const policy = effectivePolicy(
      entry(["openai/gpt-4o"]),
      org({ priceOverrides: { "openai/gpt-4o": PRICE, "openai/gpt-4o-mini": PRICE } }),
      CATALOG,
    );
    assert.deepEqual(Object.keys(policy.priceOverrides), ["openai/gpt-4o"]);
  });

  test("carries the user's limit and the org's budget, failure mode, fallback cap and cache TTL", () => {
    const policy = effectivePolicy(entry(), org(), CATALOG);
    assert.deepEqual(
      [
        policy.userLimitMicros,
        policy.orgBudgetMicros,
        policy.failureMode,
        policy.fallbackDailyLimitMicros,
        policy.cacheTtl,
      ],
      [5, 100, "fail-open", 7, 300],
    );
  });
});

// Model resolution runs against the generated catalog (the dev stack's, `make check` writes it).
const everything: Policy = effectivePolicy(entry(), org());

function refusal(run: () => unknown): HttpError {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof HttpError);
    return err;
  }
  assert.fail("expected an HttpError");
}

describe("resolveModel", () => {
  test("a missing model is the key's default", () => {
    assert.equal(resolveModel(undefined, everything), DEFAULT_MODEL);
    assert.equal(resolveModel("", everything), DEFAULT_MODEL);
  });

  test("an alias resolves to its catalog model", () => {
    const [alias, target] = Object.entries(ALIASES)[0] ?? [];
    assert.ok(alias && target, "the dev stack has aliases");
    assert.equal(resolveModel(alias, everything), target);
  });

  test("an unknown model is 404, one outside the allow-list 403, a non-string 400", () => {
    assert.equal(refusal(() => resolveModel("nope/model", everything)).status, 404);
    const narrow = effectivePolicy(entry([MODELS[0] as string]), org());
    const other = MODELS.find((m) => m !== MODELS[0]) as string;
    const forbidden = refusal(() => resolveModel(other, narrow));
    assert.deepEqual([forbidden.status, forbidden.code], [403, "model_not_allowed"]);
    assert.equal(refusal(() => resolveModel(42, everything)).status, 400);
    assert.equal(refusal(() => resolveModel("constructor", everything)).status, 404);
  });

  test("no model and no default is a 400 naming the parameter", () => {
    const nothing = effectivePolicy(entry([]), org());
    const error = refusal(() => resolveModel(null, nothing));
    assert.deepEqual([error.status, error.param], [400, "model"]);
  });

  test("the model list is what the key may use, in catalog order", () => {
    assert.deepEqual(
      listModels(everything).data.map((m) => m.id),
      [...MODELS],
    );
    assert.equal(getModel(MODELS[0] as string, everything).owned_by, (MODELS[0] as string).split("/")[0]);
  });
});
