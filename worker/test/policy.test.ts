// A key's policy and model resolution: catalog ∩ org ∩ user in catalog order; the org's
// default, else the stack's, else the first allowed model; aliases; clear refusals.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ROUTES } from "../src/generated/contract";
import { ALIASES, DEFAULT_MODEL, FALLBACKS, MODELS } from "../src/generated/settings";
import { HttpError } from "../src/lib/errors";
import type { Policy } from "../src/protocol/policy";
import { attemptsFor, getModel, listModels, resolveModel } from "../src/request/models";
import { effectivePolicy, type KeyEntry, type OrgPolicy } from "../src/request/policy";

const CATALOG = ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-haiku-4-5"];
const PRICE = { in: 1, out: 2, cachedIn: 1, cacheWrite: 1 };

function entry(allowedModels: string[] | null = null, routing: Partial<KeyEntry> = {}): KeyEntry {
  return {
    keyId: "k",
    userId: "u",
    orgId: "o",
    status: "active",
    expiresAt: null,
    monthlyLimitMicros: 5,
    allowedModels,
    ...routing,
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

// The precedence of the default model and of aliases, written down in README "Routing":
// request model > user > org > stack.
describe("routing precedence", () => {
  const [mini, gpt4o, haiku] = CATALOG as [string, string, string];
  const cases: [string, Partial<KeyEntry>, Partial<OrgPolicy>, string[] | null, string | null][] = [
    // case, user routing, org routing, user allow-list, the default model
    ["the user's default", { defaultModel: haiku }, { defaultModel: gpt4o }, null, haiku],
    ["the org's default", {}, { defaultModel: gpt4o }, null, gpt4o],
    ["the stack's default", {}, {}, null, mini],
    [
      "a user default the key may not use: the org's",
      { defaultModel: haiku },
      { defaultModel: gpt4o },
      [gpt4o, mini],
      gpt4o,
    ],
    ["an org default the key may not use: the stack's", {}, { defaultModel: gpt4o }, [mini, haiku], mini],
    ["no default allowed: the first allowed chat model", {}, { defaultModel: gpt4o }, [haiku], haiku],
  ];
  for (const [name, user, orgRouting, allowed, expected] of cases) {
    test(name, () => {
      const policy = effectivePolicy(entry(allowed, user), org(orgRouting), CATALOG);
      assert.equal(policy.defaultModel, expected);
    });
  }

  test("the request's model wins over every default", () => {
    const policy = effectivePolicy(entry(null, { defaultModel: DEFAULT_MODEL }), org({ defaultModel: DEFAULT_MODEL }));
    const other = MODELS.find((m) => m !== DEFAULT_MODEL && m.startsWith("openai/")) as string;
    assert.equal(resolveModel(other, policy), other);
    assert.equal(resolveModel(undefined, policy), DEFAULT_MODEL);
  });

  test("aliases: the user's over the org's over the stack's, and a tenant alias may shadow a global one", () => {
    const [globalAlias, globalTarget] = Object.entries(ALIASES)[0] as [string, string];
    const other = MODELS.find((m) => m !== globalTarget) as string;
    const last = MODELS.at(-1) as string;
    const stack = effectivePolicy(entry(), org());
    const orgShadow = effectivePolicy(entry(), org({ aliases: { [globalAlias]: other, mine: other } }));
    const userShadow = effectivePolicy(
      entry(null, { aliases: { [globalAlias]: last } }),
      org({ aliases: { [globalAlias]: other, mine: other } }),
    );
    assert.equal(resolveModel(globalAlias, stack), globalTarget);
    assert.equal(resolveModel(globalAlias, orgShadow), other);
    assert.equal(resolveModel(globalAlias, userShadow), last);
    assert.equal(resolveModel("mine", userShadow), other, "the org's other aliases stay");
    assert.equal(refusal(() => resolveModel("mine", stack)).status, 404, "a tenant alias is the tenant's only");
  });

  test("a tenant alias to a model outside the allow-list is refused like the model", () => {
    const policy = effectivePolicy(entry([DEFAULT_MODEL]), org({ aliases: { big: MODELS.at(-1) as string } }));
    assert.equal(refusal(() => resolveModel("big", policy)).code, "model_not_allowed");
  });
});

describe("attemptsFor", () => {
  const chat = ROUTES.find((r) => r.path === "/v1/chat/completions") as (typeof ROUTES)[number];
  const messages = ROUTES.find((r) => r.path === "/v1/messages") as (typeof ROUTES)[number];
  const anthropicOwn = ROUTES.find((r) => r.path === "/anthropic/v1/messages") as (typeof ROUTES)[number];
  const [named, chain] = Object.entries(FALLBACKS).find(([name]) => MODELS.includes(name)) as [string, string[]];
  const everyone = effectivePolicy(entry(), org());

  test("the model, then the stack's chain for it", () => {
    assert.ok(chain.length > 0, "the dev stack declares a fallback chain for a model");
    assert.deepEqual(attemptsFor(named, named, chat, everyone), [named, ...chain]);
  });

  test("the chain named by the alias asked for comes before the resolved model's", () => {
    const [alias, aliasChain] = Object.entries(FALLBACKS).find(([name]) => Object.hasOwn(ALIASES, name)) as [
      string,
      string[],
    ];
    const model = ALIASES[alias] as string;
    assert.deepEqual(attemptsFor(alias, model, chat, everyone), [model, ...aliasChain.filter((m) => m !== model)]);
  });

  test("an org's chain replaces the stack's for the same name", () => {
    const other = MODELS.find((m) => m !== named && !chain.includes(m) && m.startsWith("openai/")) as string;
    const policy = effectivePolicy(entry(), org({ fallbacks: { [named]: [other] } }));
    assert.deepEqual(attemptsFor(named, named, chat, policy), [named, other]);
  });

  test("only models the key may use and the route serves are tried", () => {
    const narrow = effectivePolicy(entry([named]), org());
    assert.deepEqual(attemptsFor(named, named, chat, narrow), [named]);
    const claude = MODELS.find((m) => m.startsWith("anthropic/")) as string;
    const mixed = effectivePolicy(entry(), org({ fallbacks: { [claude]: [DEFAULT_MODEL] } }));
    assert.deepEqual(
      attemptsFor(claude, claude, anthropicOwn, mixed),
      [claude],
      "Anthropic's own path serves Anthropic only",
    );
    assert.deepEqual(
      attemptsFor(claude, claude, messages, mixed),
      [claude, DEFAULT_MODEL],
      "/v1/messages serves every chat model",
    );
    assert.deepEqual(attemptsFor(claude, claude, chat, mixed), [claude, DEFAULT_MODEL]);
  });

  test("a prototype name finds no chain", () => {
    assert.deepEqual(attemptsFor("constructor", named, chat, everyone), [named, ...chain]);
  });
});

describe("policy version", () => {
  const base = effectivePolicy(entry(), org(), CATALOG);
  test("changes with what decides the answering model", () => {
    const [mini] = CATALOG as [string];
    for (const changed of [
      effectivePolicy(entry([mini]), org(), CATALOG),
      effectivePolicy(entry(null, { defaultModel: CATALOG[1] as string }), org(), CATALOG),
      effectivePolicy(entry(null, { aliases: { a: mini } }), org(), CATALOG),
      effectivePolicy(entry(), org({ fallbacks: { [mini]: [CATALOG[1] as string] } }), CATALOG),
    ]) {
      assert.notEqual(changed.version, base.version);
    }
  });
  test("stays with limits, budgets and failure modes (they do not change an answer)", () => {
    const limits = effectivePolicy(
      { ...entry(), monthlyLimitMicros: 999 },
      org({ monthlyBudgetMicros: 1, failureMode: "fail-closed" }),
      CATALOG,
    );
    assert.equal(limits.version, base.version);
  });
});
