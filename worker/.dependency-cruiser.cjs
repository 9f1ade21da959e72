// The Worker's import rules (make lint): no circle anywhere in src/ or local/, and imports in
// src/ run one way, from the entry down to the small libraries (docs/architecture.md).
// A room may import rooms below it, never one above; rooms on one rank do not import each other.

/** Rooms from the top (the entry) down; one entry per rank. */
const RANKS = [
  ["entry", "^src/(index|testhooks|testhooks-off)\\.ts$"],
  ["routes", "^src/routes/"],
  ["admin", "^src/admin/"],
  ["request", "^src/request/"],
  ["budget", "^src/budget/"],
  ["facts", "^src/facts/"],
  ["providers", "^src/providers/"],
  ["pricing", "^src/pricing/"],
  ["ledger", "^src/ledger/"],
  ["stack settings", "^src/generated/settings\\.ts$"],
  ["protocol", "^src/protocol/"],
  ["lib", "^src/(lib/|generated/contract\\.ts$)"],
];

const upward = RANKS.flatMap(([name, path], rank) =>
  RANKS.slice(0, rank).map(([above, abovePath]) => ({
    name: `${name}-imports-${above}`,
    comment: `${name} sits below ${above}: it may not import it (docs/architecture.md)`,
    severity: "error",
    from: { path },
    to: { path: abovePath },
  })),
);

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "an import circle: two modules that need each other belong together, or share a third",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    ...upward,
    {
      name: "providers-through-their-index",
      comment: "outside providers/, providers are reached only through an index.ts (the registry's or one provider's)",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/providers/" },
      to: { path: "^src/providers/", pathNot: ["^src/providers/index\\.ts$", "^src/providers/[a-z-]+/index\\.ts$"] },
    },
    {
      name: "ledger-through-its-index",
      comment: "outside ledger/, the Durable Object is reached only through ledger/index.ts",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/ledger/" },
      to: { path: "^src/ledger/", pathNot: "^src/ledger/index\\.ts$" },
    },
    {
      name: "not-to-unresolvable",
      comment: "an import that resolves to nothing",
      severity: "error",
      from: {},
      to: { couldNotResolve: true, pathNot: "^cloudflare:" },
    },
  ],
  options: {
    parser: "swc",
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^src/generated/(?!settings|contract)" },
    enhancedResolveOptions: {
      extensions: [".ts", ".mjs", ".js"],
      exportsFields: ["exports"],
      conditionNames: ["workerd", "worker", "import", "types", "default"],
      mainFields: ["module", "main", "types"],
    },
  },
};
