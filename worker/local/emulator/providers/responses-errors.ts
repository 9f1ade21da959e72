// Building blocks of the Responses API's request checks (responses-request.ts, responses-tools.ts):
// OpenAI's 400 {error: {message, type, param, code}} in its own words, thrown as Invalid and
// turned into the answer by parseRequest.
import type { BufferedResult, JsonObject } from "../types";
import { errorResult } from "./openai";

/** Thrown inside parseRequest with the 400 to answer. */
export class Invalid {
  constructor(readonly result: BufferedResult) {}
}

export function fail(message: string, param: string | null, code: string | null = null): never {
  throw new Invalid(errorResult(400, message, "invalid_request_error", code, param));
}

export function missing(param: string): never {
  fail(`Missing required parameter: '${param}'.`, param, "missing_required_parameter");
}

/** How OpenAI names a JSON value's type in its messages. */
export function typeWord(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  if (typeof value === "string") return "a string";
  if (typeof value === "boolean") return "a boolean";
  return "an object";
}

export function badType(param: string, expected: string, value: unknown): never {
  fail(`Invalid type for '${param}': expected ${expected}, but got ${typeWord(value)} instead.`, param, "invalid_type");
}

/** 'a', 'b', and 'c' */
export function listed(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`);
  if (quoted.length <= 2) return quoted.join(" and ");
  return `${quoted.slice(0, -1).join(", ")}, and ${quoted.at(-1)}`;
}

export function badValue(param: string, value: unknown, supported: readonly string[]): never {
  const shown = typeof value === "string" ? value : JSON.stringify(value);
  fail(`Invalid value: '${shown}'. Supported values are: ${listed(supported)}.`, param, "invalid_value");
}

/** `value` unless it is null (OpenAI treats an explicit null as absent). */
export function given(value: unknown): unknown {
  return value === null ? undefined : value;
}

export function optionalBoolean(body: JsonObject, param: string): boolean | undefined {
  const value = given(body[param]);
  if (value !== undefined && typeof value !== "boolean") badType(param, "a boolean", value);
  return value;
}

export function optionalString(body: JsonObject, param: string): string | undefined {
  const value = given(body[param]);
  if (value !== undefined && typeof value !== "string") badType(param, "a string", value);
  return value;
}

export function numberIn(body: JsonObject, param: string, min: number, max: number): void {
  const value = given(body[param]);
  if (value === undefined) return;
  if (typeof value !== "number") badType(param, "a decimal", value);
  if (value < min) {
    fail(
      `Invalid '${param}': decimal below minimum value. Expected a value >= ${min}, but got ${value} instead.`,
      param,
      "decimal_below_min_value",
    );
  }
  if (value > max) {
    fail(
      `Invalid '${param}': decimal above maximum value. Expected a value <= ${max}, but got ${value} instead.`,
      param,
      "decimal_above_max_value",
    );
  }
}

export function requiredString(item: JsonObject, key: string, at: string): string {
  const value = item[key];
  if (value === undefined || value === null) missing(`${at}.${key}`);
  if (typeof value !== "string") badType(`${at}.${key}`, "a string", value);
  return value;
}
