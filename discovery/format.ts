import type { ServiceInstance } from './registry.ts';

/** `sluice services` as a table: one line per live instance. */
export function formatInstances(instances: ServiceInstance[], now = Date.now()): string {
  if (instances.length === 0) return 'no live instances\n';
  const rows = instances.map((i) => [i.kind, i.name, i.port === 0 ? i.address : `${i.address}:${i.port}`, i.healthUrl || '-', i.version, String(i.pid), uptime(now - Date.parse(i.startedAt)), i.id]);
  const header = ['KIND', 'NAME', 'ADDRESS', 'HEALTH', 'VERSION', 'PID', 'UP', 'ID'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function uptime(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}
