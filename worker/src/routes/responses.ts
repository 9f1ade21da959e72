// OpenAI's Responses API (`/v1/responses`, `/openai/responses`), passed through to OpenAI's
// native endpoint. Stored state is the caller's own: a stored response's ids, and the code
// interpreter containers any response ran in, are recorded with their owner before its answer
// reaches the client (stored-objects.ts), and a request that names one (`previous_response_id`,
// an `item_reference`, a code_interpreter `container`) is refused as unknown unless its caller
// owns it (or the org shares them); `conversation` ids are never the gateway's to
// hand out (the Conversations API is not served), so each is unknown. A continued request's
// input lives upstream, unseen: it is admitted as if it were the stack's maxContextTokens
// (settled at the real usage).

import type { Context } from "hono";
import { MAX_CONTEXT_TOKENS, MAX_OUTPUT_TOKENS } from "../generated/settings";
import { ledgerFor } from "../ledger";
import { HttpError } from "../lib/errors";
import { estimateInputTokens, inputTokensBound } from "../pricing/estimate";
import { requested } from "../pricing/extras";
import type { AppEnv } from "../protocol/env";
import type { Answer } from "../providers";
import { fetchUpstream, gatewayUrl, postToGateway, tenantMetadata } from "../providers";
import { PROVIDER as AZURE_OPENAI, azureEndpoint } from "../providers/azure-openai";
import {
  authHeaders,
  chatError,
  containerIds,
  type HandedOut,
  meterResponsesStream,
  RESPONSES_PATH,
  responsesAnswer,
  storedIds,
} from "../providers/openai";
import { responsesFields } from "../request/fields";
import { attemptsFor, providerSlug, type Route, resolveRouteModel } from "../request/models";
import { type Exchange, serve } from "../request/serve";
import { passthroughHeaders } from "../request/upstream";
import { boundOf, requestBody, upstreamCall } from "./call";

/** What a request continues: the stored ids and containers it names, as [id, how an unknown one is told]. */
function continued(body: Record<string, unknown>): [string, HttpError][] {
  const named: [string, HttpError][] = [];
  const previous = body.previous_response_id;
  if (typeof previous === "string") {
    named.push([
      previous,
      new HttpError(404, `Previous response with id '${previous}' not found.`, {
        param: "previous_response_id",
        code: "previous_response_not_found",
      }),
    ]);
  }
  const input = Array.isArray(body.input) ? body.input : [];
  for (const [i, item] of input.entries()) {
    const { type, id } = (item ?? {}) as { type?: unknown; id?: unknown };
    if (type !== "item_reference" || typeof id !== "string") continue;
    named.push([
      id,
      new HttpError(404, `Item with id '${id}' not found.`, { param: `input[${i}].id`, code: "item_not_found" }),
    ]);
  }
  // a code interpreter's container (a string id; {type: "auto"} makes a new one)
  const tools = Array.isArray(body.tools) ? body.tools : [];
  for (const tool of tools) {
    const { type, container } = (tool ?? {}) as { type?: unknown; container?: unknown };
    if (type !== "code_interpreter" || typeof container !== "string") continue;
    named.push([
      container,
      new HttpError(404, `Container with id '${container}' not found.`, { code: null, param: null }),
    ]);
  }
  return named;
}

/** Who owns each of these stored ids in the caller's org (503 when the ledger cannot say). */
async function ownersOf(c: Context<AppEnv>, ids: string[]): Promise<Record<string, string>> {
  try {
    return await ledgerFor(c.env, c.get("principal").orgId).storedOwners({ ids });
  } catch (err) {
    console.error(JSON.stringify({ event: "ledger_unavailable", error: String(err) }));
    throw new HttpError(503, "Stored responses cannot be checked right now; try again shortly.", {
      code: "ledger_unavailable",
    });
  }
}

function mayUse(c: Context<AppEnv>, owner: string | undefined): boolean {
  const { userId, policy } = c.get("principal");
  return owner !== undefined && (owner === userId || policy.shareStoredResponses);
}

/**
 * GET /v1/responses/{id}: a stored response (a background run's state and, once it ended, its
 * answer), read from OpenAI for its owner (or a colleague, where the org shares them); anyone
 * else gets the 404 an unknown id gets. Reading is not billed.
 */
export async function retrieveResponse(c: Context<AppEnv>): Promise<Response> {
  const id = c.req.param("id") ?? "";
  const owners = await ownersOf(c, [id]);
  if (!mayUse(c, owners[id])) {
    throw new HttpError(404, `Response with id '${id}' not found.`, { code: null, param: null });
  }
  const { principal } = c.var;
  const query = new URL(c.req.url).search;
  const headers: Record<string, string> = {
    "cf-aig-metadata": JSON.stringify(tenantMetadata(principal, c.get("requestId"))),
    "cf-aig-skip-cache": "true",
    ...authHeaders({ env: c.env, provider: "openai" }),
  };
  if (c.env.AI_GATEWAY_TOKEN) headers["cf-aig-authorization"] = `Bearer ${c.env.AI_GATEWAY_TOKEN}`;
  const url = gatewayUrl(c.env, `${RESPONSES_PATH}/${encodeURIComponent(id)}${query}`);
  const upstream = await fetchUpstream(url, { headers });
  if (!upstream.ok) throw await chatError(upstream);
  return new Response(upstream.body, { status: upstream.status, headers: passthroughHeaders(upstream) });
}

/** Refused, as unknown, unless the caller owns every stored id it names (or its org shares them). */
async function checkOwnership(c: Context<AppEnv>, body: Record<string, unknown>): Promise<void> {
  const conversation = body.conversation;
  if (conversation !== undefined && conversation !== null) {
    const id = typeof conversation === "string" ? conversation : String((conversation as { id?: unknown }).id ?? "");
    throw new HttpError(404, `Conversation with id '${id}' not found.`, {
      param: "conversation",
      code: "conversation_not_found",
    });
  }
  const named = continued(body);
  if (named.length === 0) return;
  const owners = await ownersOf(
    c,
    named.map(([id]) => id),
  );
  for (const [id, unknown] of named) {
    if (!mayUse(c, owners[id])) throw unknown;
  }
}

export async function responses(c: Context<AppEnv>, route: Route): Promise<Response> {
  const request = await requestBody(c);
  const body = responsesFields(request.body);
  const { policy, orgId, userId } = c.get("principal");
  const model = resolveRouteModel(body.model, route, policy);
  await checkOwnership(c, body);
  const asked = requested("responses", body, policy.allowUnpriced);
  const maxOutput = body.max_output_tokens ?? MAX_OUTPUT_TOKENS;
  const seen = { input: body.input, instructions: body.instructions, tools: body.tools, text: body.text };
  const continues = (body.previous_response_id ?? null) !== null;
  const promptTokens =
    inputTokensBound(request, { tools: body.tools !== undefined || body.text !== undefined }) +
    (continues ? MAX_CONTEXT_TOKENS : 0);
  // OpenAI stores a response unless asked not to: its ids are recorded as this user's
  const stores = body.store !== false;
  // a background run (the org allows them: billing.ts) is charged by its ledger when it ends
  const background = body.background === true;
  // a background run is watched through OpenAI's retrieval (ledger/runs): OpenAI's models only
  const attempts = attemptsFor(body.model, model, route, policy).filter(
    (each) => !background || providerSlug(each) !== AZURE_OPENAI,
  );
  if (attempts.length === 0) {
    throw new HttpError(400, `Background responses are not served for ${AZURE_OPENAI} models.`, {
      param: "background",
      code: "unsupported_parameter",
    });
  }
  // what the answer hands out, recorded as this user's: its stored ids (when stored), its containers
  const keep = ({ stored, containers }: HandedOut) => {
    const ids = [...(stores ? stored : []), ...containers];
    return ids.length > 0 ? ledgerFor(c.env, orgId).keepStored({ ids, userId }) : undefined;
  };
  const exchange = (model: string, cap = maxOutput): Exchange => {
    const call = { ...upstreamCall(c, model), uncacheable: stores };
    // Azure: the deployment's Responses endpoint, which takes the deployment as its model
    const azure = call.provider === AZURE_OPENAI ? azureEndpoint(call, "responses") : null;
    const payload = { ...body, model: azure?.deployment ?? call.upstreamModel, max_output_tokens: cap };
    const boundAt = (tokens: number) => boundOf(call, promptTokens, tokens, asked);
    return {
      call,
      bound: boundAt(cap),
      outputCap: { tokens: cap, least: MIN_OUTPUT_TOKENS, boundAt, lowered: (tokens) => exchange(model, tokens) },
      estimatedPromptTokens: estimateInputTokens(seen),
      metered: true,
      send: () => postToGateway(call, azure?.path ?? RESPONSES_PATH, payload, azure?.auth ?? authHeaders(call)),
      error: azure?.error ?? chatError,
      answer: responsesAnswer,
      ...(background ? { heldByLedger: true, running: (answer: Answer) => runningId(answer.text) } : {}),
      // recorded before the answer goes out: the client's next request may name them at once
      answered: async (answer) => {
        const response = parsed(answer.text);
        try {
          await keep({ stored: storedIds(response), containers: containerIds(response) });
        } catch (err) {
          console.error(JSON.stringify({ event: "stored_ids_unrecorded", error: String(err) }));
        }
      },
      stream: (upstream) =>
        meterResponsesStream(upstream, call.signal, (ids) =>
          c.executionCtx.waitUntil(Promise.resolve(keep(ids)).catch(() => {})),
        ),
    };
  };
  return serve(c, { models: attempts, build: (model) => exchange(model) });
}

const RUNNING = new Set(["queued", "in_progress"]);
// OpenAI's least max_output_tokens: a cap lowered to fit a budget stays at or above it
const MIN_OUTPUT_TOKENS = 16;

/** The id of a response that is still running (a background run just queued), else null. */
function runningId(text: string): string | null {
  const response = parsed(text) as { id?: unknown; status?: unknown } | null;
  return typeof response?.id === "string" && RUNNING.has(String(response.status)) ? response.id : null;
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
