// Best-effort generator of a string matching a JSON Schema `pattern` (an ECMA-262 regex).
//
// Supports what tool schemas use in practice: literals and escapes, `.`, classes ([a-z0-9_],
// negated classes, \d \w \s and their negations), groups ((...), (?:...), named groups),
// alternation (the first branch), quantifiers (* + ? {n} {n,} {n,m}, lazy or not) and anchors.
// Lookarounds and backreferences are skipped. The caller checks the result with RegExp and
// falls back when it does not match, so an unsupported construct never yields a wrong value.

type Rng = () => number;

interface Cursor {
  src: string;
  pos: number;
}

const DIGITS = "0123456789";
const WORD_CHARS = "abcdefghijklmnopqrstuvwxyz";
// Candidates for `.` and negated classes: letters first, so samples look like words.
const PRINTABLE = `${WORD_CHARS}ABCDEFGHIJKLMNOPQRSTUVWXYZ${DIGITS}-_.~ `;
const MAX_REPEAT_EXTRA = 3; // open-ended quantifiers repeat at most min + 3 times
const MAX_OUTPUT = 4096;

function pick(rng: Rng, chars: string): string {
  return chars.charAt(Math.floor(rng() * chars.length));
}

/** The character an escape (after the backslash) stands for, as a class of candidates. */
function escapeChars(cur: Cursor): string {
  const c = cur.src.charAt(cur.pos++);
  switch (c) {
    case "d":
      return DIGITS;
    case "w":
      return WORD_CHARS;
    case "s":
      return " ";
    case "D":
    case "W":
    case "S":
      return c === "W" ? "-" : "x";
    case "n":
      return "\n";
    case "t":
      return "\t";
    case "r":
      return "\r";
    case "x": {
      const hex = cur.src.slice(cur.pos, cur.pos + 2);
      cur.pos += 2;
      return String.fromCharCode(Number.parseInt(hex, 16));
    }
    case "u": {
      const hex = cur.src.slice(cur.pos, cur.pos + 4);
      cur.pos += 4;
      return String.fromCharCode(Number.parseInt(hex, 16));
    }
    case "p":
    case "P": {
      // \p{Name}: a character of the common general categories; \P{...}: one outside them.
      let name = "";
      if (cur.src.charAt(cur.pos) === "{") {
        const end = cur.src.indexOf("}", cur.pos);
        name = cur.src.slice(cur.pos + 1, end === -1 ? undefined : end);
        cur.pos = end === -1 ? cur.src.length : end + 1;
      }
      if (c === "P") return /^(N|Nd|Number)$/.test(name) ? "a" : "1";
      if (/^(Lu|Uppercase_Letter|Upper)$/.test(name)) return "A";
      if (/^(N|Nd|Number|Decimal_Number|digit)$/.test(name)) return DIGITS;
      if (/^(P|Punctuation)$/.test(name)) return ".";
      if (/^(Z|Zs|White_Space)$/.test(name)) return " ";
      return WORD_CHARS; // L, Ll, Letter, Alphabetic, ...
    }
    default:
      return c; // an escaped literal: \. \- \/ \\ ...
  }
}

/** Characters a class [...] admits; for a negated class, printable ones it does not. */
function classChars(cur: Cursor): string {
  const negated = cur.src.charAt(cur.pos) === "^";
  if (negated) cur.pos++;
  let chars = "";
  let first = true;
  while (cur.pos < cur.src.length && (cur.src.charAt(cur.pos) !== "]" || first)) {
    first = false;
    let c = cur.src.charAt(cur.pos++);
    if (c === "\\") c = escapeChars(cur);
    if (cur.src.charAt(cur.pos) === "-" && cur.src.charAt(cur.pos + 1) !== "]" && c.length === 1) {
      cur.pos++;
      let end = cur.src.charAt(cur.pos++);
      if (end === "\\") end = escapeChars(cur).charAt(0);
      for (let code = c.charCodeAt(0); code <= end.charCodeAt(0) && code - c.charCodeAt(0) < 256; code++) {
        chars += String.fromCharCode(code);
      }
    } else {
      chars += c;
    }
  }
  cur.pos++; // the closing ]
  if (!negated) return chars;
  const outside = [...PRINTABLE].filter((ch) => !chars.includes(ch)).join("");
  return outside || "?";
}

function quantifier(cur: Cursor, rng: Rng): [min: number, max: number] | null {
  const c = cur.src.charAt(cur.pos);
  let range: [number, number] | null = null;
  if (c === "*") range = [0, MAX_REPEAT_EXTRA];
  else if (c === "+") range = [1, 1 + MAX_REPEAT_EXTRA];
  else if (c === "?")
    range = [1, 1]; // include the optional part: samples look fuller
  else if (c === "{") {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(cur.src.slice(cur.pos));
    if (m) {
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] ? Number(m[3]) : min + MAX_REPEAT_EXTRA;
      cur.pos += m[0].length - 1;
      range = [min, Math.max(min, max)];
    }
  }
  if (range === null) return null;
  cur.pos++;
  if (cur.src.charAt(cur.pos) === "?") cur.pos++; // lazy: same set of matches
  const [min, max] = range;
  const hi = Math.min(max, min + MAX_REPEAT_EXTRA);
  const n = min === hi ? min : min + Math.floor(rng() * (hi - min + 1));
  return [n, n];
}

/** Generates one alternative sequence until `)` or end; alternation takes the first branch. */
function sequence(cur: Cursor, rng: Rng): string {
  let out = "";
  while (cur.pos < cur.src.length && out.length < MAX_OUTPUT) {
    const c = cur.src.charAt(cur.pos);
    if (c === ")") return out;
    if (c === "|") {
      skipAlternatives(cur);
      return out;
    }
    const start = cur.pos;
    const atom = atomGenerator(cur, rng);
    const q = quantifier(cur, rng);
    const times = q === null ? 1 : q[0];
    for (let i = 0; i < times; i++) {
      if (i > 0) {
        const again = { src: cur.src, pos: start };
        out += atomGenerator(again, rng)();
      } else {
        out += atom();
      }
    }
  }
  return out;
}

/** Skips `|branch|branch...` up to (not including) the `)` closing the current group. */
function skipAlternatives(cur: Cursor): void {
  let depth = 0;
  while (cur.pos < cur.src.length) {
    const c = cur.src.charAt(cur.pos);
    if (c === "\\") cur.pos += 2;
    else if (c === "[") {
      cur.pos++;
      classChars(cur);
    } else if (c === "(") {
      depth++;
      cur.pos++;
    } else if (c === ")") {
      if (depth === 0) return;
      depth--;
      cur.pos++;
    } else cur.pos++;
  }
}

/** Parses one atom at the cursor and returns a function producing one sample of it. */
function atomGenerator(cur: Cursor, rng: Rng): () => string {
  const c = cur.src.charAt(cur.pos++);
  if (c === "^" || c === "$") return () => "";
  if (c === ".") return () => pick(rng, WORD_CHARS);
  if (c === "[") {
    const chars = classChars(cur);
    return () => pick(rng, chars);
  }
  if (c === "\\") {
    const next = cur.src.charAt(cur.pos);
    if (next === "b" || next === "B") {
      cur.pos++;
      return () => "";
    }
    if (/[1-9]/.test(next)) {
      cur.pos++;
      return () => ""; // backreference: unsupported, the caller's check decides
    }
    const chars = escapeChars(cur);
    return () => pick(rng, chars);
  }
  if (c === "(") {
    let lookaround = false;
    if (cur.src.charAt(cur.pos) === "?") {
      const kind = cur.src.charAt(cur.pos + 1);
      if (kind === ":") cur.pos += 2;
      else if (kind === "<" && cur.src.charAt(cur.pos + 2) !== "=" && cur.src.charAt(cur.pos + 2) !== "!") {
        cur.pos = cur.src.indexOf(">", cur.pos) + 1; // named group
      } else {
        lookaround = true;
        cur.pos += kind === "<" ? 3 : 2;
      }
    }
    const groupStart = cur.pos;
    const first = sequence(cur, rng);
    cur.pos++; // the closing )
    const groupEnd = cur.pos;
    if (lookaround) return () => "";
    let used = false;
    return () => {
      if (!used) {
        used = true;
        return first;
      }
      const again = { src: cur.src.slice(0, groupEnd - 1), pos: groupStart };
      return sequence(again, rng);
    };
  }
  return () => c;
}

/**
 * A string meant to match `pattern`, or null when it does not (unsupported syntax or an
 * invalid pattern). JSON Schema patterns are unanchored; the sample matches as a whole.
 */
export function samplePattern(pattern: string, rng: Rng): string | null {
  let regex: RegExp;
  try {
    regex = new RegExp(pattern, "u");
  } catch {
    try {
      regex = new RegExp(pattern);
    } catch {
      return null;
    }
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const cur = { src: pattern, pos: 0 };
    let out = "";
    while (cur.pos < cur.src.length) {
      out += sequence(cur, rng);
      if (cur.src.charAt(cur.pos) === ")") cur.pos++; // a stray ) in an invalid-but-accepted pattern
    }
    if (regex.test(out)) return out;
  }
  return null;
}
