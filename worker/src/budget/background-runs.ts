// Background runs (`background: true` on the Responses API): the provider answers "queued" at
// once and bills the run when it ends, after the request is over. An org that allows it
// (allowUnpriced) has each run watched by its ledger (one writer, and a Durable Object alarm
// that outlives every request): the run's reservation is held until the run ends, the ledger
// polls the provider for it (GET responses/{id} through AI Gateway), and charges the usage the
// finished run reports to the user who started it, as any answer is charged (outcome.ts). A run
// that cannot be observed to its end (gone, or past WATCH_MS) is charged its worst case.

import type { RunPoll } from "../ledger";
import type { Env } from "../protocol/env";
import type { WatchedRun } from "../protocol/ledger";
import { gatewayUrl } from "../providers";
import { authHeaders, containerIds, RESPONSES_PATH, responsesAnswer, storedIds } from "../providers/openai";
import { outcomeOf, worstCaseOutcome } from "./outcome";
import { settlementOf } from "./quota";

const TERMINAL = new Set(["completed", "incomplete", "failed", "cancelled"]);
const POLL_TIMEOUT_MS = 30_000;

/** A run nobody could see to its end: charged its worst case (never less than it may cost). */
function unobserved(run: WatchedRun, reason: string): RunPoll {
  const record = settlementOf(run.requestId, run.userId, run.keyId, run.month, worstCaseOutcome(run.bound));
  return { state: "unobserved", record, reason };
}

/**
 * Looks at the run upstream once (the ledger's alarm calls it: UsageLedger.watchRunsWith). A
 * provider or network failure is "running": look again.
 */
export async function pollRun(env: Env, run: WatchedRun, deadline: number, now: number): Promise<RunPoll> {
  if (now >= deadline) return unobserved(run, "still running");
  const headers: Record<string, string> = {
    "cf-aig-metadata": JSON.stringify({
      requestId: run.requestId,
      userId: run.userId,
      orgId: run.orgId,
      keyId: run.keyId,
    }),
    "cf-aig-skip-cache": "true",
    ...authHeaders({ env, provider: "openai" }),
  };
  if (env.AI_GATEWAY_TOKEN) headers["cf-aig-authorization"] = `Bearer ${env.AI_GATEWAY_TOKEN}`;
  let response: Response;
  try {
    const url = gatewayUrl(env, `${RESPONSES_PATH}/${encodeURIComponent(run.responseId)}`);
    response = await fetch(url, { headers, signal: AbortSignal.timeout(POLL_TIMEOUT_MS) });
  } catch {
    return { state: "running" };
  }
  const raw = await response.text().catch(() => "");
  if (response.status === 404) return unobserved(run, "gone");
  if (!response.ok) return { state: "running" };
  let status: unknown;
  let body: unknown;
  try {
    body = JSON.parse(raw);
    status = (body as { status?: unknown } | null)?.status;
  } catch {
    return { state: "running" };
  }
  if (!TERMINAL.has(String(status))) return { state: "running" };
  const answer = responsesAnswer(raw);
  const subject = {
    requestId: run.requestId,
    model: run.model,
    price: run.price,
    estimatedPromptTokens: run.estimatedPromptTokens,
  };
  const metered = { usage: answer.usage, text: answer.said, complete: true, extras: answer.extras };
  const outcome = { ...outcomeOf(metered, subject, false, run.bound), fallback: run.fallback, standIn: run.standIn };
  const record = settlementOf(run.requestId, run.userId, run.keyId, run.month, outcome);
  return { state: "done", record, ids: [...storedIds(body), ...containerIds(body)] };
}
