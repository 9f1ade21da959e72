// Model families offered by pattern (routing.modelPatterns, e.g. `anthropic/claude-*`): a
// requested id under a pattern is served when the price catalog, compiled into the Worker when
// the stack was deployed, has an entry whose match rules take it (a dated id such as
// `claude-opus-4-8-20261101` is its family's entry), at that entry's price; refused otherwise.
// The rules are genai-prices' own (equals, starts_with, ends_with, contains, regex, or, and), on
// the lower-cased name, first entry in the catalog's order wins, as genai-prices decides.

import { MODEL_PATTERNS } from "../generated/settings";
import type { MatchLogic, ModelPattern, Price } from "../protocol/policy";

const compiled = new Map<string, RegExp>();

function regex(source: string): RegExp {
  let found = compiled.get(source);
  if (!found) {
    found = new RegExp(source);
    compiled.set(source, found);
  }
  return found;
}

/** Whether genai-prices' match rules take `name` (already lower-cased). */
export function matches(logic: MatchLogic, name: string): boolean {
  if ("equals" in logic) return name === logic.equals.toLowerCase();
  if ("starts_with" in logic) return name.startsWith(logic.starts_with.toLowerCase());
  if ("ends_with" in logic) return name.endsWith(logic.ends_with.toLowerCase());
  if ("contains" in logic) return name.includes(logic.contains.toLowerCase());
  if ("regex" in logic) return regex(logic.regex).test(name);
  if ("or" in logic) return logic.or.some((clause) => matches(clause, name));
  return logic.and.every((clause) => matches(clause, name));
}

/** The pattern a model id falls under (its prefix), or null. */
export function patternOf(model: string, patterns: readonly ModelPattern[] = MODEL_PATTERNS): ModelPattern | null {
  return patterns.find((p) => model.startsWith(p.prefix)) ?? null;
}

/** The catalog entry (id and price) a model id under `pattern` is, or null when it has none. */
export function catalogEntry(
  model: string,
  pattern: ModelPattern,
): { id: string; price: Price; window: number | null } | null {
  const name = model.slice(model.indexOf("/") + 1).toLowerCase();
  return pattern.entries.find((entry) => matches(entry.match, name)) ?? null;
}
