import { spawnSync } from 'node:child_process';

/** kcat (librdkafka): an independent, non-Node client for reading what Sluice wrote. */

export const hasKcat = (() => {
  const result = spawnSync('kcat', ['-V'], { stdio: 'ignore' });
  return !result.error && result.status === 0;
})();

export interface RawRecord {
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
}

/**
 * Every record of `topic` from the beginning to the current end, raw bytes.
 * The format length-prefixes key and value so binary Avro (which may hold any
 * byte, newlines included) splits unambiguously.
 */
export function kcatReadAll(brokers: string[], topic: string): RawRecord[] {
  const result = spawnSync('kcat', ['-C', '-b', brokers.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p|%o|%K|%k%S|%s'], {
    maxBuffer: 256 * 1024 * 1024,
    timeout: 30_000,
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`kcat exited ${result.status}: ${result.stderr.toString()}`);
  const out = result.stdout;
  const records: RawRecord[] = [];
  let pos = 0;
  const field = (): number => {
    const end = out.indexOf(0x7c, pos); // '|'
    const n = Number(out.subarray(pos, end).toString('latin1'));
    pos = end + 1;
    return n;
  };
  const bytes = (length: number): Buffer | null => {
    if (length < 0) return null;
    const b = out.subarray(pos, pos + length);
    pos += length;
    return Buffer.from(b);
  };
  while (pos < out.length) {
    const partition = field();
    const offset = field();
    const key = bytes(field());
    const value = bytes(field());
    records.push({ partition, offset, key, value });
  }
  return records;
}
