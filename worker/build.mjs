// Bundles the Worker with esbuild: the TypeScript sources in src/ plus the modules the stack
// decides (rendered from templates/ by provision.stack.render and handed over here, never written
// into the source tree), into ONE ES module. Same input, same bytes.
//
//   node worker/build.mjs < {"generated": {"settings": "<ts>", "contract": "<ts>"}, "testHooks": false}
//   -> the bundle on stdout
//
// Test hooks: a render that asks for them bundles src/testhooks.ts; every other one bundles
// src/testhooks-off.ts in its place, so a deployment contains no test path at all.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = dirname(fileURLToPath(import.meta.url));
const SRC = join(ROOT, "src");

/**
 * @typedef {object} BuildRequest
 * @property {Record<string, string>} generated name (as imported from ./generated/) → TypeScript
 * @property {boolean} [testHooks] bundle src/testhooks.ts instead of src/testhooks-off.ts
 */

/**
 * @param {BuildRequest} request
 * @returns {import("esbuild").Plugin}
 */
function plugin({ generated, testHooks }) {
  return {
    name: "gateway",
    setup(b) {
      // ./generated/<name>: the stack's rendered module, from memory
      b.onResolve({ filter: /(^|\/)generated\/[a-z-]+$/ }, (args) => {
        const name = args.path.split("/").pop() ?? "";
        if (!(name in generated)) return { errors: [{ text: `no generated module '${name}' was rendered` }] };
        return { path: name, namespace: "generated" };
      });
      b.onLoad({ filter: /.*/, namespace: "generated" }, (args) => ({
        contents: generated[args.path],
        loader: "ts",
        resolveDir: join(SRC, "generated"),
      }));
      b.onResolve({ filter: /^\.\/testhooks$/ }, () => ({
        path: join(SRC, testHooks ? "testhooks.ts" : "testhooks-off.ts"),
      }));
    },
  };
}

/**
 * The Worker as one ES module.
 * @param {BuildRequest} request
 * @returns {Promise<string>}
 */
export async function bundle({ generated, testHooks = false }) {
  const result = await build({
    entryPoints: [join(SRC, "index.ts")],
    absWorkingDir: ROOT,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    conditions: ["workerd", "worker", "import"],
    external: ["cloudflare:*"],
    write: false,
    charset: "utf8",
    legalComments: "none",
    logLevel: "silent",
    plugins: [plugin({ generated, testHooks })],
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error("esbuild wrote no output");
  return output.text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const input = JSON.parse(readFileSync(0, "utf8"));
  bundle(input).then(
    (code) => process.stdout.write(code),
    (err) => {
      for (const error of err.errors ?? [err]) {
        const at = error.location;
        const where = at
          ? `${at.namespace === "generated" ? "generated/" : ""}${at.file}:${at.line}:${at.column}: `
          : "";
        console.error(`${where}${error.text ?? String(error)}${at ? `\n    ${at.lineText}` : ""}`);
      }
      process.exit(1);
    },
  );
}
