import { stringifyJson } from '../core/json.ts';
// rules/types.ts, not the rules' index: that loads the rule engines (CEL, JSONata), a fifth of `sluice tail`'s start-up.
import { RULE_HEADERS } from '../rules/types.ts';
import type { TailHeaders, TailRecord } from './decode.ts';

export const FORMATS = ['ndjson', 'pretty', 'table'] as const;
export type TailFormat = (typeof FORMATS)[number];

export interface FormatOptions {
  headers: boolean;
  /** Terminal width for the table format. */
  columns?: number;
}

/** Turns records into output text; `header` is written once before the first record. */
export interface Formatter {
  header(): string;
  format(record: TailRecord): string;
}

/** The data-contract rule that sent a record to a dead-letter topic, from its `__rule.*` headers (the ingress's and the workers'). */
export interface RuleOutcome {
  rule: string;
  mode?: string;
  subject?: string;
  version?: number;
  field?: string;
  reason?: string;
}

const RULE_FIELDS: Record<string, keyof RuleOutcome> = {
  [RULE_HEADERS.name]: 'rule',
  [RULE_HEADERS.mode]: 'mode',
  [RULE_HEADERS.subject]: 'subject',
  [RULE_HEADERS.version]: 'version',
  [RULE_HEADERS.field]: 'field',
  [RULE_HEADERS.exception]: 'reason',
};

/** The rule outcome a record's headers name, if any (the last value of each header counts). */
export function ruleOutcome(headers: TailHeaders): RuleOutcome | undefined {
  let out: Partial<Record<keyof RuleOutcome, string | number>> | undefined;
  for (const [name, value] of headers) {
    if (value === null || name.charCodeAt(0) !== 95 /* _ */) continue;
    const field = RULE_FIELDS[name];
    if (field === undefined) continue;
    out ??= {};
    out[field] = field === 'version' && /^\d{1,9}$/.test(value) ? Number(value) : value;
  }
  return out?.rule === undefined ? undefined : (out as unknown as RuleOutcome);
}

/** One line for a person: `rule 'positive' (READ) of orders-value version 2 on field ssn: reason`. */
function describeRule(rule: RuleOutcome): string {
  const mode = rule.mode === undefined ? '' : ` (${rule.mode})`;
  const where = rule.subject === undefined ? '' : ` of ${rule.subject}${rule.version === undefined ? '' : ` version ${rule.version}`}`;
  const field = rule.field === undefined ? '' : ` on field ${rule.field}`;
  return `rule '${rule.rule}'${mode}${where}${field}${rule.reason === undefined ? '' : `: ${rule.reason}`}`;
}

/** The record as one JSON object in a fixed field order (what ndjson prints and the console streams). */
export function recordObject(record: TailRecord, headers: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: new Date(record.timestamp).toISOString(),
    key: record.key,
    value: record.value,
  };
  const rule = ruleOutcome(record.headers);
  if (rule) out.rule = rule;
  if (headers) out.headers = record.headers;
  if (record.error) {
    out.error = record.error;
    out.valueHex = record.valueHex;
  }
  return out;
}

/**
 * Plain JSON.stringify is several times faster than a replacer; it is only
 * unsafe for BigInt (it throws, so fall back) and Buffers (known per schema).
 */
export function toJson(value: unknown, binary: boolean, indent?: number): string {
  if (binary) return stringifyJson(value, indent);
  try {
    return JSON.stringify(value, undefined, indent);
  } catch (error) {
    if (error instanceof TypeError && /BigInt/.test(error.message)) return stringifyJson(value, indent);
    throw error;
  }
}

function ndjson(options: FormatOptions): Formatter {
  // The hot path of a backlog read: the line is assembled as text (same fields and order as
  // recordObject) so only the key, value and headers go through JSON.stringify.
  const topics = new Map<string, string>();
  // Records produced together share a millisecond; toISOString is a measurable share of a line.
  let lastTimestamp = Number.NaN;
  let lastIso = '';
  return {
    header: () => '',
    format(r) {
      if (r.error) return `${toJson(recordObject(r, options.headers), r.binary)}\n`;
      let topic = topics.get(r.topic);
      if (topic === undefined) topics.set(r.topic, (topic = JSON.stringify(r.topic)));
      if (r.timestamp !== lastTimestamp) {
        lastTimestamp = r.timestamp;
        lastIso = new Date(r.timestamp).toISOString();
      }
      const headers = options.headers ? `,"headers":${JSON.stringify(r.headers)}` : '';
      const outcome = r.headers.length > 0 ? ruleOutcome(r.headers) : undefined;
      const rule = outcome ? `,"rule":${JSON.stringify(outcome)}` : '';
      return `{"topic":${topic},"partition":${r.partition},"offset":"${r.offset}","timestamp":"${lastIso}","key":${toJson(r.key, r.binary)},"value":${toJson(r.value, r.binary)}${rule}${headers}}\n`;
    },
  };
}

function pretty(options: FormatOptions): Formatter {
  return {
    header: () => '',
    format(r) {
      const where = `${r.topic}[${r.partition}]@${r.offset}  ${new Date(r.timestamp).toISOString()}  key=${toJson(r.key, r.binary)}`;
      const headers = options.headers && r.headers.length > 0 ? `\n  headers: ${r.headers.map(([name, value]) => `${name}=${value === null ? '(null)' : JSON.stringify(value)}`).join(' ')}` : '';
      const outcome = ruleOutcome(r.headers);
      const rule = outcome ? `\n  ${describeRule(outcome)}` : '';
      if (r.error) return `${where}${rule}${headers}\n  UNDECODABLE (${r.error.code}): ${r.error.message}\n  hex: ${r.valueHex}\n\n`;
      return `${where}${rule}${headers}\n${toJson(r.value, r.binary, 2)}\n\n`;
    },
  };
}

function cell(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

function table(options: FormatOptions): Formatter {
  const widths = { partition: 4, offset: 10, timestamp: 24, key: 28 };
  const fixed = widths.partition + widths.offset + widths.timestamp + widths.key + 4;
  const valueWidth = Math.max(20, (options.columns ?? 160) - fixed);
  return {
    header: () => `${cell('PART', widths.partition)} ${cell('OFFSET', widths.offset)} ${cell('TIMESTAMP', widths.timestamp)} ${cell('KEY', widths.key)} VALUE\n`,
    format(r) {
      const key = typeof r.key === 'string' ? r.key : toJson(r.key, r.binary);
      const outcome = ruleOutcome(r.headers);
      const rule = outcome ? `[rule ${outcome.rule}${outcome.mode === undefined ? '' : ` ${outcome.mode}`}] ` : '';
      const value = rule + (r.error ? `UNDECODABLE ${r.error.message} hex:${r.valueHex ?? ''}` : toJson(r.value, r.binary));
      const row = `${cell(String(r.partition), widths.partition)} ${cell(r.offset, widths.offset)} ${cell(new Date(r.timestamp).toISOString(), widths.timestamp)} ${cell(key, widths.key)} ${cell(value, valueWidth).trimEnd()}`;
      return `${row}\n`;
    },
  };
}

/** Smallest buffer a LineEncoder keeps, so that small batches do not each allocate. */
const MIN_LINE_BUFFER = 1024 * 1024;

/**
 * A batch's lines as one Buffer, for one write: each line is encoded where it goes. Concatenating them first builds
 * a rope of the whole batch that writing must flatten (a fifth of a backlog tail's CPU), and a fresh multi-megabyte
 * Buffer per batch made the garbage collector a quarter of it: the buffers are kept (two at most, one being written
 * while the next is filled) and reused once their write has completed.
 */
export class LineEncoder {
  readonly #free: Buffer[] = [];

  /** `release` hands the buffer back: call it from the write's callback, once the bytes have left. */
  encode(lines: readonly string[]): { bytes: Buffer; release: () => void } {
    let length = 0;
    for (const line of lines) length += line.length;
    // A UTF-16 code unit takes at most 3 bytes of UTF-8.
    const need = length * 3;
    let buffer = this.#free.pop();
    if (buffer === undefined || buffer.length < need) buffer = Buffer.allocUnsafeSlow(Math.max(need, MIN_LINE_BUFFER));
    let at = 0;
    for (const line of lines) at += buffer.write(line, at, 'utf8');
    return { bytes: buffer.subarray(0, at), release: releaser(this.#free, buffer) };
  }
}

/**
 * Hands `buffer` back to `free` (two kept at most), once however often it is called: a writer calls it as soon as
 * the bytes have left (a pipe's write completes at once) and the write's callback calls it again later.
 */
export function releaser(free: Buffer[], buffer: Buffer): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (free.length < 2) free.push(buffer);
  };
}

export function createFormatter(format: TailFormat, options: FormatOptions): Formatter {
  switch (format) {
    case 'ndjson':
      return ndjson(options);
    case 'pretty':
      return pretty(options);
    case 'table':
      return table(options);
  }
}
