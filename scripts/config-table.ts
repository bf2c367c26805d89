import { OPTIONS } from '../core/config.ts';

/** The README's configuration table, generated from core/config.ts (a unit test keeps them equal). */
export function configTable(): string {
  const rows = Object.values(OPTIONS).map((o) => `| \`${o.env}\` | ${o.default === '' ? '(unset)' : `\`${o.default}\``} | ${o.description.replace(/\|/g, '\\|')} |`);
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${configTable()}\n`);
