// OpenAI's strict mode (Structured Outputs) rules for a JSON Schema, as far as the Responses API
// rejects a schema up front (a function tool with `strict: true`, a `text.format` json_schema
// with `strict: true`). Checked here:
//  * the root is an object schema;
//  * every object schema (under properties, items, anyOf, $defs / definitions) has
//    `additionalProperties: false` and a `required` array naming exactly its properties.
// The problem is reported as OpenAI words it: "In context=('properties', 'address'), ..." (the
// path as a Python tuple). Other strict-mode limits (unsupported keywords, nesting depth, sizes)
// are not checked (UNCONFIRMED which OpenAI enforces, and how it words them).
import { isJsonObject } from "./http";

type Path = readonly (string | number)[];

/** A path as Python prints a tuple: (), ('items',), ('properties', 'a', 'anyOf', 0). */
function context(path: Path): string {
  const parts = path.map((p) => (typeof p === "number" ? String(p) : `'${p}'`));
  return parts.length === 1 ? `(${parts[0]},)` : `(${parts.join(", ")})`;
}

function isObjectSchema(node: Record<string, unknown>): boolean {
  const type = node.type;
  return type === "object" || (Array.isArray(type) && type.includes("object")) || isJsonObject(node.properties);
}

function objectProblem(node: Record<string, unknown>, path: Path): string | null {
  const where = `In context=${context(path)}`;
  if (node.additionalProperties !== false) {
    return `${where}, 'additionalProperties' is required to be supplied and to be false.`;
  }
  const keys = isJsonObject(node.properties) ? Object.keys(node.properties) : [];
  const required: readonly unknown[] = Array.isArray(node.required) ? node.required : [];
  const rule = `${where}, 'required' is required to be supplied and to be an array including every key in properties.`;
  if (!Array.isArray(node.required)) return keys.length > 0 ? rule : null;
  const missing = keys.find((k) => !required.includes(k));
  if (missing !== undefined) return `${rule} Missing '${missing}'.`;
  const extra = required.find((k) => typeof k !== "string" || !keys.includes(k));
  if (extra !== undefined) return `${rule} Extra required key '${String(extra)}' supplied.`;
  return null;
}

function walk(node: unknown, path: Path, depth: number): string | null {
  if (!isJsonObject(node) || depth > 64) return null;
  if (isObjectSchema(node)) {
    const problem = objectProblem(node, path);
    if (problem !== null) return problem;
  }
  const children: [unknown, Path][] = [];
  for (const key of ["properties", "$defs", "definitions"]) {
    const group = node[key];
    if (isJsonObject(group)) for (const [k, v] of Object.entries(group)) children.push([v, [...path, key, k]]);
  }
  if (node.items !== undefined) children.push([node.items, [...path, "items"]]);
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    const list = node[key];
    if (Array.isArray(list)) for (const [i, v] of list.entries()) children.push([v as unknown, [...path, key, i]]);
  }
  for (const [child, at] of children) {
    const problem = walk(child, at, depth + 1);
    if (problem !== null) return problem;
  }
  return null;
}

/** Why `schema` breaks strict mode (OpenAI's wording), or null when it complies. */
export function strictSchemaProblem(schema: unknown): string | null {
  if (!isJsonObject(schema) || schema.type !== "object") {
    const type = isJsonObject(schema) ? schema.type : undefined;
    return `schema must be a JSON Schema of 'type: "object"', got 'type: "${typeof type === "string" ? type : "None"}"'.`;
  }
  return walk(schema, [], 0);
}
