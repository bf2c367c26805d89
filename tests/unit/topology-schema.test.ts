import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { TopologyError } from '../../core/errors.ts';
import { lineageGraph, toMermaid, toSvg } from '../../topology/graph.ts';
import { loadTopology } from '../../topology/load.ts';
import { checkAgainstSchema } from '../../topology/validate-schema.ts';
import { parse } from 'yaml';

const projectFile = join(PROJECT_ROOT, 'topology/sluice.topology.yaml');
const dir = mkdtempSync(join(tmpdir(), 'sluice-topology-schema-'));
copyFileSync(join(PROJECT_ROOT, 'schemas/OrderPlaced.avsc'), join(dir, 'OrderPlaced.avsc'));

function errorFor(text: string): TopologyError {
  const file = join(dir, `s-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  try {
    loadTopology(file);
  } catch (error) {
    expect(error).toBeInstanceOf(TopologyError);
    return error as TopologyError;
  }
  throw new Error('expected a TopologyError');
}

describe('topology.schema.json', () => {
  it('accepts the project topology, which points editors at it', () => {
    const text = readFileSync(projectFile, 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=topology.schema.json');
    expect(checkAgainstSchema(parse(text))).toBeUndefined();
    expect(loadTopology(projectFile)).toMatchObject({ name: 'sluice', topics: [{ name: 'orders.placed', compatibility: 'BACKWARD' }, {}, {}] });
  });

  it.each([
    [
      'a bad compatibility level',
      'topics:\n  - name: a\n    valueSchema: OrderPlaced.avsc\n    compatibility: SIDEWAYS\n',
      4,
      'topics[0].compatibility',
      /expected one of "NONE", "BACKWARD",.*got string "SIDEWAYS"/,
    ],
    ['a missing required key', 'topics:\n  - partitions: 2\n', 2, 'topics[0]', /missing required key "name"/],
    ['a route method other than POST', 'topics:\n  - name: a\nroutes:\n  - method: GET\n    path: /a\n    topic: a\n    key: id\n', 4, 'routes[0].method', /expected "POST", got string "GET"/],
    ['a config that is a list', 'topics:\n  - name: a\n    configs:\n      retention.ms: [1]\n', 4, 'topics[0].configs.retention.ms', /expected a string or a number or true or false, got a list/],
    ['an unknown top-level key', 'topics: []\ntopcis: []\n', 2, 'topcis', /unknown key "topcis" \(expected one of: name, topics, routes, workers, bridges\)/],
  ])('refuses %s with file:line:col and what was expected', (_name, text, line, path, message) => {
    const error = errorFor(text);
    expect(error.path).toBe(path);
    expect(error.location.line).toBe(line);
    expect(error.location.column).toBeGreaterThan(0);
    expect(error.message).toMatch(message);
  });
});

describe('lineage graph', () => {
  const graph = lineageGraph(loadTopology(projectFile));

  it('draws routes -> topics -> workers -> topics in Mermaid', () => {
    const mermaid = toMermaid(graph);
    expect(mermaid.startsWith('flowchart LR\n')).toBe(true);
    expect(mermaid).toContain('route_POST_v1_orders -->|"key orderId"| topic_orders_placed');
    expect(mermaid).toContain('topic_orders_placed -->|"sluice.score-orders"| worker_score_orders');
    expect(mermaid).toContain('worker_score_orders --> topic_orders_scored');
    expect(mermaid).toContain('worker_score_orders -.->|"dead letters"| topic_orders_placed_dlq');
  });

  it('writes a self-contained SVG with one box per node', () => {
    const svg = toSvg(graph);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<rect /g)).toHaveLength(graph.nodes.length);
    expect(svg).toContain('>orders.scored</text>');
  });
});
