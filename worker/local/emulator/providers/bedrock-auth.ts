// How Bedrock authenticates a request: AWS Signature Version 4 (service `bedrock`, the region of
// the path), or a Bedrock API key as a bearer token. The signature is checked as AWS checks it,
// for Bedrock's own host (AI Gateway forwards the signed request there): the canonical request
// (method, the path encoded once more, the sorted query, the signed headers, the body's SHA-256),
// the string to sign with the credential scope, and the HMAC chain from the secret key. Written
// apart from the Worker's signer (aws4fetch) so each checks the other.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { RequestHeaders } from "../types";

export interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export type AuthOutcome = { ok: true } | { ok: false; type: string; message: string };

const MAX_SKEW_MS = 5 * 60_000;
const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

function sha256(data: string): string {
  return createHash("sha256").update(data, "utf8").digest("hex");
}

/** Each path segment as received (already encoded once), encoded again: AWS's non-S3 rule. */
function canonicalPath(rawPath: string): string {
  return rawPath
    .split("/")
    .map((segment) =>
      encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join("/");
}

function canonicalQuery(query: string): string {
  if (query === "") return "";
  return query
    .split("&")
    .map((pair) => pair.split("="))
    .sort(([a = ""], [b = ""]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k = "", v = ""]) => `${k}=${v}`)
    .join("&");
}

/** `x-amz-date` (20261205T110000Z) → epoch ms, or NaN. */
function amzTime(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return Number.NaN;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

export function checkSignature(
  keys: AwsKeys,
  request: { method: string; host: string; rawPath: string; query: string; headers: RequestHeaders; body: string },
  region: string,
  now = Date.now(),
): AuthOutcome {
  const header = request.headers.authorization ?? "";
  const match = AUTH.exec(header);
  if (!match) {
    return {
      ok: false,
      type: "IncompleteSignatureException",
      message: "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
    };
  }
  const [, keyId = "", day = "", scopeRegion = "", service = "", signedNames = "", signature = ""] = match;
  if (keyId !== keys.accessKeyId) {
    return {
      ok: false,
      type: "UnrecognizedClientException",
      message: "The security token included in the request is invalid.",
    };
  }
  const date = request.headers["x-amz-date"] ?? "";
  const at = amzTime(date);
  if (Number.isNaN(at) || Math.abs(now - at) > MAX_SKEW_MS || !date.startsWith(day)) {
    return {
      ok: false,
      type: "InvalidSignatureException",
      message: "Signature expired: the request's date is not within 5 minutes of the server time.",
    };
  }
  if (scopeRegion !== region || service !== "bedrock") {
    return {
      ok: false,
      type: "InvalidSignatureException",
      message: `Credential should be scoped to a valid region and to the service bedrock, not '${scopeRegion}/${service}'.`,
    };
  }
  if (keys.sessionToken !== undefined && request.headers["x-amz-security-token"] !== keys.sessionToken) {
    return {
      ok: false,
      type: "UnrecognizedClientException",
      message: "The security token included in the request is invalid.",
    };
  }
  const names = signedNames.split(";");
  const value = (name: string) =>
    name === "host" ? request.host : (request.headers[name] ?? "").trim().replace(/\s+/g, " ");
  const canonical = [
    request.method,
    canonicalPath(request.rawPath),
    canonicalQuery(request.query),
    ...names.map((name) => `${name}:${value(name)}`),
    "",
    signedNames,
    sha256(request.body),
  ].join("\n");
  const scope = `${day}/${scopeRegion}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${keys.secretAccessKey}`, day), scopeRegion), service), "aws4_request");
  const expected = hmac(key, toSign);
  const given = Buffer.from(signature, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      ok: false,
      type: "InvalidSignatureException",
      message:
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    };
  }
  return { ok: true };
}
