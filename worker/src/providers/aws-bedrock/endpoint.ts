// Amazon Bedrock through AI Gateway: Bedrock's own URL with its host replaced
// (`aws-bedrock/bedrock-runtime/{region}/model/{modelId}/converse` or `/converse-stream`; the
// region from the stack's routing.awsBedrock). The credential, providerApiKeys.aws-bedrock, is
// either AWS keys as JSON ({accessKeyId, secretAccessKey[, sessionToken]}: the Worker signs the
// request for Bedrock's own URL with SigV4, through aws4fetch, as AI Gateway's Bedrock page
// shows) or a Bedrock API key (a bearer token); none: AWS keys stored on the gateway, which signs.

import { AwsClient } from "aws4fetch";
import { AWS_BEDROCK } from "../../generated/settings";
import { HttpError } from "../../lib/errors";
import { providerKey } from "../gateway";
import type { UpstreamCall } from "../types";

export const PROVIDER = "aws-bedrock";

function region(): string {
  if (AWS_BEDROCK === null) {
    // config validation makes this unreachable; say so plainly if a render ever disagrees
    throw new HttpError(500, "No AWS region is configured for Bedrock.", { code: "internal_error" });
  }
  return AWS_BEDROCK.region;
}

/** Bedrock's own path of a model's Converse (or ConverseStream) call: the model id encoded, as
 * AWS's SDKs send it (`:` as %3A). */
export function conversePath(model: string, stream: boolean): string {
  return `/model/${encodeURIComponent(model)}/${stream ? "converse-stream" : "converse"}`;
}

/** The same call's path under the gateway. */
export function gatewayPath(bedrockPath: string): string {
  return `${PROVIDER}/bedrock-runtime/${region()}${bedrockPath}`;
}

interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The credential as the stack stores it: AWS keys (JSON), a Bedrock API key, or none. */
export function credential(secret: string | undefined): AwsKeys | { apiKey: string } | null {
  if (!secret) return null;
  if (!secret.trimStart().startsWith("{")) return { apiKey: secret };
  const keys = JSON.parse(secret) as Partial<AwsKeys>;
  if (typeof keys.accessKeyId !== "string" || typeof keys.secretAccessKey !== "string") {
    throw new HttpError(500, "The Bedrock credential is not AWS keys.", { code: "internal_error" });
  }
  return keys as AwsKeys;
}

const clients = new Map<string, AwsClient>();

function clientFor(keys: AwsKeys): AwsClient {
  const id = `${keys.accessKeyId}\n${keys.sessionToken ?? ""}`;
  let client = clients.get(id);
  if (!client) {
    // aws4fetch keeps derived signing keys per day in its cache: one client per credential
    client = new AwsClient({ ...keys, service: "bedrock", region: region() });
    clients.set(id, client);
  }
  return client;
}

/**
 * The headers that authenticate `body` posted to Bedrock's `bedrockPath`: a SigV4 signature for
 * Bedrock's own host (AI Gateway sends the request on to that host unchanged), a bearer API key,
 * or nothing (keys stored on the gateway).
 */
export async function authHeaders(
  call: Pick<UpstreamCall, "env" | "provider">,
  bedrockPath: string,
  body: string,
): Promise<Record<string, string>> {
  const key = credential(providerKey(call.env, call.provider));
  if (key === null) return {};
  if ("apiKey" in key) return { authorization: `Bearer ${key.apiKey}` };
  const url = `https://bedrock-runtime.${region()}.amazonaws.com${bedrockPath}`;
  const signed = await clientFor(key).sign(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const headers: Record<string, string> = {};
  for (const name of ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"]) {
    const value = signed.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  return headers;
}
