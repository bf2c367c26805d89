import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { PROJECT_ROOT } from '../core/config.ts';

/**
 * The hottest functions of a V8 .cpuprofile (from `npm run bench -- --cpu-prof`),
 * by self time and by inclusive time, for reading profiles without a browser:
 *
 *   node bench/profile-summary.ts bench/results/ingress-123.cpuprofile [top]
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  name: string;
  selfPct: number;
  totalPct: number;
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.startsWith('file://') ? relative(PROJECT_ROOT, new URL(url).pathname) : url;
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
}

export function summarize(profile: CpuProfile): { self: HotFunction[]; total: HotFunction[]; idlePct: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfTime = new Map<string, number>();
  const totalTime = new Map<string, number>();
  let all = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    all += dt;
    const node = byId.get(id);
    if (!node) return;
    if (node.callFrame.functionName === '(idle)') idle += dt;
    const name = label(node);
    selfTime.set(name, (selfTime.get(name) ?? 0) + dt);
    // Each function once per sample, however deep the recursion.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const l = label(n);
      if (seen.has(l)) continue;
      seen.add(l);
      totalTime.set(l, (totalTime.get(l) ?? 0) + dt);
    }
  });
  const pct = (t: number): number => Number(((100 * t) / Math.max(1, all)).toFixed(1));
  const rows = (m: Map<string, number>, other: Map<string, number>, selfFirst: boolean): HotFunction[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, t]) => (selfFirst ? { name, selfPct: pct(t), totalPct: pct(other.get(name) ?? 0) } : { name, selfPct: pct(other.get(name) ?? 0), totalPct: pct(t) }));
  return { self: rows(selfTime, totalTime, true), total: rows(totalTime, selfTime, false), idlePct: pct(idle) };
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node bench/profile-summary.ts <file.cpuprofile> [top]');
  const top = Number(process.argv[3] ?? '25');
  const { self, total, idlePct } = summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const line = (h: HotFunction): string => `${h.selfPct.toFixed(1).padStart(5)}% self ${h.totalPct.toFixed(1).padStart(5)}% total  ${h.name}`;
  process.stdout.write(`${file}: idle ${idlePct}%\n\nBy self time:\n${self.slice(0, top).map(line).join('\n')}\n\nBy total time:\n${total.slice(0, top).map(line).join('\n')}\n`);
}
