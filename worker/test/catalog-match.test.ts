// Model families offered by pattern: genai-prices' match rules evaluated as genai-prices does
// (lower-cased, first entry in the catalog's order), and the pattern a model id falls under.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { catalogEntry, matches, patternOf } from "../src/pricing/catalog-match";
import type { ModelPattern } from "../src/protocol/policy";

const PRICE = { in: 3_000_000, out: 15_000_000, cachedIn: 300_000, cacheWrite: 3_750_000 };
const CLAUDE: ModelPattern = {
  pattern: "anthropic/claude-*",
  prefix: "anthropic/claude-",
  entries: [
    {
      id: "claude-opus-4-8",
      match: { or: [{ starts_with: "claude-opus-4-8" }, { starts_with: "claude-opus-4.8" }] },
      price: { ...PRICE, in: 5_000_000 },
      window: 200_000,
    },
    {
      id: "claude-sonnet-5",
      match: { or: [{ equals: "claude-sonnet-5" }, { regex: "^claude-sonnet-5-\\d{8}$" }] },
      price: PRICE,
      window: null,
    },
    { id: "claude-v1", match: { and: [{ contains: "v1" }, { ends_with: "-v1" }] }, price: PRICE, window: null },
  ],
};

describe("match rules", () => {
  test("each clause as genai-prices reads it, on the lower-cased id", () => {
    assert.equal(matches({ equals: "Claude-Sonnet-5" }, "claude-sonnet-5"), true);
    assert.equal(matches({ starts_with: "claude-opus-4-8" }, "claude-opus-4-8-20261101"), true);
    assert.equal(matches({ ends_with: "-v1" }, "claude-v1"), true);
    assert.equal(matches({ contains: "sonnet" }, "claude-3-5-sonnet"), true);
    assert.equal(matches({ regex: "^claude-sonnet-5-\\d{8}$" }, "claude-sonnet-5-20261101"), true);
    assert.equal(matches({ regex: "^claude-sonnet-5-\\d{8}$" }, "claude-sonnet-5-2026"), false);
    assert.equal(matches({ and: [{ contains: "v1" }, { ends_with: "x" }] }, "claude-v1"), false);
  });

  test("a dated id is its family's entry; an id the catalog does not know has none", () => {
    assert.equal(catalogEntry("anthropic/claude-opus-4-8-20261101", CLAUDE)?.id, "claude-opus-4-8");
    assert.equal(catalogEntry("anthropic/Claude-Sonnet-5-20261101", CLAUDE)?.price.in, 3_000_000);
    assert.equal(catalogEntry("anthropic/claude-sonnet-5-preview", CLAUDE), null);
    assert.equal(catalogEntry("anthropic/claude-nonexistent-9", CLAUDE), null);
  });

  test("the pattern an id falls under is the one whose prefix it starts with", () => {
    assert.equal(patternOf("anthropic/claude-x", [CLAUDE])?.pattern, "anthropic/claude-*");
    assert.equal(patternOf("openai/gpt-5", [CLAUDE]), null);
    assert.equal(patternOf("anthropic/claud", [CLAUDE]), null);
  });
});
