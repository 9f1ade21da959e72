// An upstream error's message reaches the client without credentials or the infrastructure
// behind the gateway (issue 22: they came word for word), the provider's words kept.

import assert from "node:assert/strict";
import { test } from "node:test";
import { cleanMessage } from "../../src/providers/gateway";

test("credentials, URLs, addresses and long ids are taken out; the rest stays", () => {
  const raw =
    "Invalid model 'gpt-9' for key sk-proj-abcdefghijklmnop (Authorization: Bearer eyJhbGciOi.x.y) " +
    "at https://gateway.ai.cloudflare.com/v1/0123456789abcdef0123456789abcdef/gw/openai?x=1 from 10.1.2.3:443, " +
    "gateway key gw_live_AAAABBBBCCCCDDDD, trace 0f1e2d3c4b5a69788796a5b4c3d2e1f0aa";
  const clean = cleanMessage(raw);
  for (const secret of ["sk-proj", "eyJ", "cloudflare.com", "0123456789abcdef", "10.1.2.3", "gw_live_", "0f1e2d3c"]) {
    assert.ok(!clean.includes(secret), `${secret} left in: ${clean}`);
  }
  assert.ok(clean.startsWith("Invalid model 'gpt-9' for key <redacted>"), clean);
  assert.ok(clean.includes("at <url> from <address>"), clean);
  assert.equal(cleanMessage("The model `gpt-9` does not exist."), "The model `gpt-9` does not exist.");
});

test("a long message is cut", () => {
  assert.equal(cleanMessage("x".repeat(5000)).length, 1001);
});
