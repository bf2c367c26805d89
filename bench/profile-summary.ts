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

/** The profile's nodes by id, and each node's parent. */
function indexNodes(profile: CpuProfile): { byId: Map<number, ProfileNode>; parent: Map<number, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  return { byId, parent };
}

export function summarize(profile: CpuProfile): { self: HotFunction[]; total: HotFunction[]; idlePct: number } {
  const { byId, parent } = indexNodes(profile);
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

/** A stage of the ingress's work, recognised by any frame of a sample's stack. */
export interface Stage {
  name: string;
  frame: RegExp;
}

/**
 * The ingress's stages. A sample belongs to the stage of its innermost frame that
 * any stage recognises (an Avro encode inside the route handler is encoding; a
 * socket write is the HTTP answer's or the produce request's by the first frame
 * above Node's socket code). What no frame names is "other" (V8, timers, the event loop).
 */
export const INGRESS_STAGES: readonly Stage[] = [
  { name: 'garbage collection', frame: /^\(garbage collector\)/ },
  { name: 'produce (seam + client, sockets)', frame: /@platformatic\/kafka|@platformatic\/dynamic-buffer|(^| )kafka\/|batching-producer\.ts/ },
  { name: 'encoding (Avro, framing)', frame: /encodeAvro|toBuffer|wire-format\.ts|Tap\.write/ },
  { name: 'validation', frame: /checkEvents|validateAvro|isValid|ajv/ },
  { name: 'body parse (JSON)', frame: /body-parsers\.ts|core\/json\.ts/ },
  { name: 'record building', frame: /toRecords|prepareAtomic|preparePartial/ },
  // The route's WRITE rules (rules/*.ts, another checkout's too, and the CEL functions and field walks they generate, which have no file).
  { name: 'WRITE rules', frame: /(^|[ /])rules\/[a-z-]+\.ts|^(cel|walk)$/ },
  // access/http.ts is the HTTP transport (the pipelining bound, the answers' head), not access control.
  { name: 'authentication, limits, audit, security headers', frame: /(^| )access\/(?!http\.ts)|rate-limit/ },
  { name: 'metrics', frame: /prom-client|http-metrics\.ts/ },
  { name: 'logging', frame: /pino|logger/ },
  { name: 'tracing hooks', frame: /tracing\.ts|@opentelemetry/ },
  // The ingress's direct path (producers/direct-produce.ts) is the HTTP layer of the common produce request.
  { name: 'HTTP (Node, Fastify, direct path)', frame: /node:_http|fastify|find-my-way|^parserOn|direct-produce\.ts|(^| )access\/http\.ts/ },
];

/** Each stage's share of the busy (non-idle) samples, in percent; "other" is the rest. */
export function stageShares(profile: CpuProfile, stages: readonly Stage[]): Record<string, number> {
  const { byId, parent } = indexNodes(profile);
  const time = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const leaf = byId.get(id);
    if (!leaf || leaf.callFrame.functionName === '(idle)') return;
    busy += dt;
    let stage = 'other';
    for (let cur: number | undefined = id; cur !== undefined && stage === 'other'; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      stage = stages.find((s) => s.frame.test(l))?.name ?? 'other';
    }
    time.set(stage, (time.get(stage) ?? 0) + dt);
  });
  const out: Record<string, number> = {};
  for (const name of [...stages.map((s) => s.name), 'other']) out[name] = Number(((100 * (time.get(name) ?? 0)) / Math.max(1, busy)).toFixed(1));
  return out;
}

/** The profile's last `seconds` only (a load's timed rounds, without start-up and warm-up). */
export function lastSeconds(profile: CpuProfile, seconds: number): CpuProfile {
  let remaining = seconds * 1e6;
  let first = profile.samples.length;
  while (first > 0 && remaining > 0) remaining -= profile.timeDeltas[--first] ?? 0;
  return { ...profile, samples: profile.samples.slice(first), timeDeltas: profile.timeDeltas.slice(first) };
}

if (import.meta.main && process.argv.includes('--stages')) {
  // node bench/profile-summary.ts --stages <file.cpuprofile> [cpu µs per event] [--last <seconds>]: each stage's share (and µs per event).
  const argv = process.argv.slice(2);
  const last = argv.indexOf('--last');
  const [file, perEvent] = argv.filter((a, i) => a !== '--stages' && (last < 0 || (i !== last && i !== last + 1)));
  const profile = JSON.parse(readFileSync(file!, 'utf8')) as CpuProfile;
  const shares = stageShares(last < 0 ? profile : lastSeconds(profile, Number(argv[last + 1])), INGRESS_STAGES);
  for (const [name, pct] of Object.entries(shares)) {
    const us = perEvent === undefined ? '' : `  ${((pct / 100) * Number(perEvent)).toFixed(1).padStart(6)} µs`;
    process.stdout.write(`${pct.toFixed(1).padStart(5)}%${us}  ${name}\n`);
  }
} else if (import.meta.main) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node bench/profile-summary.ts <file.cpuprofile> [top]');
  const top = Number(process.argv[3] ?? '25');
  const { self, total, idlePct } = summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const line = (h: HotFunction): string => `${h.selfPct.toFixed(1).padStart(5)}% self ${h.totalPct.toFixed(1).padStart(5)}% total  ${h.name}`;
  process.stdout.write(`${file}: idle ${idlePct}%\n\nBy self time:\n${self.slice(0, top).map(line).join('\n')}\n\nBy total time:\n${total.slice(0, top).map(line).join('\n')}\n`);
}
