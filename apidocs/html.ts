import type { Topology } from '../topology/model.ts';
import { schemaTypeOf, topicByName } from '../topology/model.ts';

/** The readable page at /docs: routes, topics and contracts, self-contained (no scripts, no CDN). */

const esc = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function docsPage(topology: Topology): string {
  const routes = topology.routes
    .map(
      (r) =>
        `<tr><td><code>${esc(r.method)} ${esc(r.path)}</code></td><td><code>${esc(r.topic)}</code></td><td><code>${esc(r.key)}</code></td><td>${esc(topicByName(topology, r.topic)?.valueSchema?.subject ?? '')}</td></tr>`,
    )
    .join('\n');
  const topics = topology.topics
    .map(
      (t) =>
        `<tr><td><code>${esc(t.name)}</code></td><td>${t.partitions}</td><td>${t.replicationFactor}</td><td>${esc(t.valueSchema?.subject ?? '(raw bytes)')}</td><td>${esc(t.compatibility ?? '')}</td></tr>`,
    )
    .join('\n');
  const workers = topology.workers
    .map(
      (w) =>
        `<tr><td><code>${esc(w.name)}</code></td><td><code>${esc(w.input)}</code></td><td><code>${esc(w.output)}</code></td><td><code>${esc(w.deadLetter)}</code></td><td><code>${esc(w.groupId)}</code></td></tr>`,
    )
    .join('\n');
  const contracts = topology.topics
    .filter((t) => t.valueSchema)
    .map((t) => {
      const value = t.valueSchema!;
      const text = schemaTypeOf(value) === 'PROTOBUF' ? value.text : JSON.stringify(value.schema, null, 2);
      return `<h3 id="${esc(value.subject)}">${esc(value.subject)} (${schemaTypeOf(value)})</h3>\n<pre>${esc(text)}</pre>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice API: ${esc(topology.name ?? 'topology')}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
pre{background:#f6f8fa;padding:1em;overflow:auto}code{font-size:.95em}
</style></head><body>
<h1>Sluice API: topology ${esc(topology.name ?? '')}</h1>
<p>Machine-readable: <a href="/docs/openapi.json">OpenAPI 3.1</a> (HTTP ingress) and <a href="/docs/asyncapi.json">AsyncAPI 3</a> (topics and contracts).</p>
<h2>HTTP routes</h2>
<p>Send <code>application/json</code> (one event or an array) or <code>application/x-ndjson</code>. Answers: 200 acknowledged by Kafka, 400 invalid, 413 too large, 415 wrong content type, 503 retry later.</p>
<table><tr><th>Route</th><th>Topic</th><th>Key field</th><th>Contract</th></tr>
${routes}
</table>
<h2>Topics</h2>
<table><tr><th>Topic</th><th>Partitions</th><th>Replicas</th><th>Value subject</th><th>Compatibility</th></tr>
${topics}
</table>
<h2>Workers</h2>
<table><tr><th>Worker</th><th>Input</th><th>Output</th><th>Dead letters</th><th>Group</th></tr>
${workers}
</table>
<h2>Contracts (Avro)</h2>
${contracts}
</body></html>
`;
}
