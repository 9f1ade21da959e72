// What today's clients send (tests/clients/corpus, recorded by the client suite from Claude Code,
// Codex, the Vercel AI SDK, the Agents SDK, Pydantic AI and LangChain) passes the gateway's own
// checks: a change that would refuse one of them fails here, in milliseconds, before any client
// runs.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ROUTES } from "../src/generated/contract";
import { checkJsonShape } from "../src/request/body";
import {
  chatFields,
  countTokensFields,
  embeddingsFields,
  messagesFields,
  responsesFields,
} from "../src/request/fields";

const CORPUS = join(import.meta.dirname, "..", "..", "tests", "clients", "corpus");

interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

const CHECKS: Record<string, (body: Record<string, unknown>) => unknown> = {
  chat: chatFields,
  responses: responsesFields,
  embeddings: embeddingsFields,
  messages: messagesFields,
  count_tokens: countTokensFields,
};

function kindOf(path: string): string {
  const bare = path.split("?")[0];
  const route = ROUTES.find((r) => r.path === bare);
  assert.ok(route, `${path} is no route of the gateway's`);
  return route.kind;
}

const files = readdirSync(CORPUS).filter((name) => name.endsWith(".json"));

test("the corpus holds every client of the suite", () => {
  for (const client of ["claude-code", "codex", "vercel-ai", "openai-agents", "pydantic-ai", "langchain"]) {
    assert.ok(
      files.some((name) => name.startsWith(client)),
      `no recorded request of ${client}`,
    );
  }
});

for (const file of files) {
  const requests = JSON.parse(readFileSync(join(CORPUS, file), "utf8")) as Recorded[];
  describe(file, () => {
    for (const [i, request] of requests.entries()) {
      test(`${request.method} ${request.path} #${i}: the gateway's checks take it as it is`, () => {
        const check = CHECKS[kindOf(request.path)];
        assert.ok(check, `no check for ${request.path}`);
        checkJsonShape(JSON.stringify(request.body));
        const body = structuredClone(request.body);
        assert.deepEqual(check(body), request.body);
      });
    }
  });
}
