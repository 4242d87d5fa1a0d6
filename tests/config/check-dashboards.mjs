// Checks Grafana dashboards (deploy/grafana/dashboards/*.json) without a Grafana: each is a
// dashboard Grafana 10/11 imports as it is, with current panel types only (no "graph",
// "singlestat" or "table-old"), unique panel ids, a position for every panel, and every query
// on the provisioned Prometheus (uid "prometheus") with an expression. Whether the queries
// return data is checked against a live Prometheus by stack_integration_test.
//   node tests/config/check-dashboards.mjs deploy/grafana/dashboards/*.json
import { readFileSync } from 'node:fs';

const current = new Set(['timeseries', 'stat', 'gauge', 'bargauge', 'table', 'text', 'logs',
  'heatmap', 'state-timeline', 'status-history', 'piechart', 'barchart', 'row']);
let failed = 0;
for (const file of process.argv.slice(2)) {
  const errors = [];
  let d;
  try {
    d = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    errors.push(`not JSON: ${e.message}`);
  }
  if (d) {
    for (const key of ['uid', 'title', 'panels', 'schemaVersion']) {
      if (d[key] === undefined) errors.push(`no "${key}"`);
    }
    if (typeof d.schemaVersion === 'number' && d.schemaVersion < 36) {
      errors.push(`schemaVersion ${d.schemaVersion}: older than Grafana 9`);
    }
    const ids = new Set();
    for (const p of d.panels ?? []) {
      const where = `panel ${p.id} "${p.title}"`;
      if (ids.has(p.id)) errors.push(`${where}: id used twice`);
      ids.add(p.id);
      if (!current.has(p.type)) errors.push(`${where}: panel type "${p.type}" is not current`);
      const g = p.gridPos ?? {};
      if (![g.x, g.y, g.w, g.h].every(Number.isInteger)) errors.push(`${where}: no gridPos`);
      if (p.type === 'row' || p.type === 'text') continue;
      if (!p.targets?.length) errors.push(`${where}: no query`);
      for (const t of p.targets ?? []) {
        if (t.datasource?.uid !== 'prometheus') errors.push(`${where} ${t.refId}: not on uid "prometheus"`);
        if (!t.expr?.trim()) errors.push(`${where} ${t.refId}: empty expression`);
      }
    }
  }
  if (errors.length) {
    failed++;
    for (const e of errors) console.error(`${file}: ${e}`);
  } else {
    console.log(`${file}: ${d.panels.length} panels`);
  }
}
process.exit(failed ? 1 : 0);
