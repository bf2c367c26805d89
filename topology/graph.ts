import type { Topology } from './model.ts';

/**
 * Lineage of a topology: routes -> topics -> workers -> topics, as Mermaid
 * text and as a self-contained SVG (no renderer or network needed to draw it).
 */

export type NodeKind = 'route' | 'topic' | 'worker';

export interface LineageNode {
  id: string;
  kind: NodeKind;
  label: string;
}

export interface LineageEdge {
  from: string;
  to: string;
  label?: string;
  deadLetter?: boolean;
}

export interface LineageGraph {
  nodes: LineageNode[];
  edges: LineageEdge[];
}

const id = (kind: NodeKind, name: string): string => `${kind}_${name.replace(/[^A-Za-z0-9]/g, '_')}`;

export function lineageGraph(topology: Topology): LineageGraph {
  const nodes: LineageNode[] = [];
  const edges: LineageEdge[] = [];
  for (const route of topology.routes) {
    nodes.push({ id: id('route', `${route.method}${route.path}`), kind: 'route', label: `${route.method} ${route.path}` });
    edges.push({ from: id('route', `${route.method}${route.path}`), to: id('topic', route.topic), label: `key ${route.key}` });
  }
  for (const topic of topology.topics) {
    nodes.push({ id: id('topic', topic.name), kind: 'topic', label: topic.name });
  }
  for (const worker of topology.workers) {
    const w = id('worker', worker.name);
    nodes.push({ id: w, kind: 'worker', label: worker.name });
    edges.push({ from: id('topic', worker.input), to: w, label: worker.groupId });
    edges.push({ from: w, to: id('topic', worker.output) });
    edges.push({ from: w, to: id('topic', worker.deadLetter), label: 'dead letters', deadLetter: true });
  }
  return { nodes, edges };
}

const escapeMermaid = (text: string): string => text.replace(/"/g, '#quot;');

export function toMermaid(graph: LineageGraph): string {
  const shape = (n: LineageNode): string => {
    const label = `"${escapeMermaid(n.label)}"`;
    if (n.kind === 'topic') return `${n.id}[(${label})]`;
    if (n.kind === 'worker') return `${n.id}[[${label}]]`;
    return `${n.id}>${label}]`;
  };
  const lines = ['flowchart LR', ...graph.nodes.map((n) => `  ${shape(n)}`)];
  for (const e of graph.edges) {
    const arrow = e.deadLetter ? '-.->' : '-->';
    lines.push(`  ${e.from} ${arrow}${e.label ? `|"${escapeMermaid(e.label)}"|` : ''} ${e.to}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Column of each node: the longest path from a node nothing points at (cycles are cut where first met). */
function columns(graph: LineageGraph): Map<string, number> {
  const incoming = new Map<string, string[]>();
  for (const e of graph.edges) incoming.set(e.to, [...(incoming.get(e.to) ?? []), e.from]);
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (node: string): number => {
    const known = depth.get(node);
    if (known !== undefined) return known;
    if (visiting.has(node)) return 0;
    visiting.add(node);
    const d = Math.max(-1, ...(incoming.get(node) ?? []).map(visit)) + 1;
    visiting.delete(node);
    depth.set(node, d);
    return d;
  };
  for (const n of graph.nodes) visit(n.id);
  return depth;
}

const escapeXml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const BOX = { width: 190, height: 40, gapX: 90, gapY: 30, margin: 20 };
const FILL: Record<NodeKind, string> = { route: '#e3f2fd', topic: '#fff8e1', worker: '#e8f5e9' };

export function toSvg(graph: LineageGraph): string {
  const column = columns(graph);
  const rows = new Map<number, number>();
  const at = new Map<string, { x: number; y: number }>();
  for (const n of graph.nodes) {
    const c = column.get(n.id) ?? 0;
    const r = rows.get(c) ?? 0;
    rows.set(c, r + 1);
    at.set(n.id, { x: BOX.margin + c * (BOX.width + BOX.gapX), y: BOX.margin + r * (BOX.height + BOX.gapY) });
  }
  const width = BOX.margin * 2 + Math.max(1, rows.size) * (BOX.width + BOX.gapX) - BOX.gapX;
  const height = BOX.margin * 2 + Math.max(1, ...rows.values()) * (BOX.height + BOX.gapY) - BOX.gapY;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
  ];
  for (const e of graph.edges) {
    const a = at.get(e.from);
    const b = at.get(e.to);
    if (!a || !b) continue;
    const [x1, y1, x2, y2] = [a.x + BOX.width, a.y + BOX.height / 2, b.x, b.y + BOX.height / 2];
    const dash = e.deadLetter ? ' stroke-dasharray="5,4"' : '';
    parts.push(`<path d="M ${x1} ${y1} C ${x1 + 40} ${y1}, ${x2 - 40} ${y2}, ${x2} ${y2}" fill="none" stroke="#555"${dash} marker-end="url(#arrow)"/>`);
    if (e.label) parts.push(`<text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 4}" text-anchor="middle" font-size="10" fill="#555">${escapeXml(e.label)}</text>`);
  }
  for (const n of graph.nodes) {
    const p = at.get(n.id);
    if (!p) continue;
    const rx = n.kind === 'topic' ? 18 : n.kind === 'worker' ? 2 : 8;
    parts.push(
      `<g><title>${n.kind} ${escapeXml(n.label)}</title><rect x="${p.x}" y="${p.y}" width="${BOX.width}" height="${BOX.height}" rx="${rx}" fill="${FILL[n.kind]}" stroke="#333"/>`,
      `<text x="${p.x + BOX.width / 2}" y="${p.y + BOX.height / 2 + 4}" text-anchor="middle">${escapeXml(n.label)}</text></g>`,
    );
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export function toHtml(graph: LineageGraph, title: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lineage of ${escapeXml(title)}</title>
<style>body{font-family:sans-serif;margin:2em}pre{background:#f5f5f5;padding:1em;overflow:auto}</style></head>
<body><h1>Lineage of topology ${escapeXml(title)}</h1>
${toSvg(graph)}
<h2>Mermaid source</h2>
<pre>${escapeXml(toMermaid(graph))}</pre>
</body></html>
`;
}
