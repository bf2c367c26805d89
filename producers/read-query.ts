import { BadParameterError, FilterError } from '../core/errors.ts';
import { compileFilter, type RecordFilter } from '../reads/filter.ts';

/**
 * The query of `GET /v1/topics/{topic}/records`, checked before anything is
 * read: a bad parameter is a 400 that names it.
 */

export type ReadStart = { kind: 'beginning' } | { kind: 'end' } | { kind: 'offset'; offset: bigint } | { kind: 'time'; timestamp: bigint };

export interface ReadQuery {
  start: ReadStart;
  partition?: number;
  /** Stop after this many records (after the filter); without it the stream follows the topic until the client leaves. */
  max?: number;
  where?: RecordFilter;
  /** From `Last-Event-ID`: the next offset of every partition, overriding `from`. */
  resume?: Map<number, bigint>;
}

/** Largest `max`: one request is a stream, not an export. */
export const MAX_RECORDS = 1_000_000;
/** A `where` longer than this is refused: the expression is compiled per request. */
export const MAX_WHERE_LENGTH = 1024;

const OFFSET = /^\d{1,19}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/;
const EVENT_ID = /^p(\d{1,9}):(\d{1,19})$/;

function single(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadParameterError(name, 'given more than once');
  return value;
}

export function parseStart(text: string | undefined): ReadStart {
  if (text === undefined || text === 'end') return { kind: 'end' };
  if (text === 'beginning') return { kind: 'beginning' };
  if (OFFSET.test(text)) return { kind: 'offset', offset: BigInt(text) };
  if (ISO_TIME.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return { kind: 'time', timestamp: BigInt(ms) };
  }
  throw new BadParameterError('from', `${JSON.stringify(text)} is not beginning, end, an offset or an ISO-8601 time (2026-11-30T10:00:00Z)`);
}

function wholeNumber(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,10}$/.test(text) || Number(text) < min || Number(text) > max) throw new BadParameterError(name, `${JSON.stringify(text)} is not a whole number from ${min} to ${max}`);
  return Number(text);
}

/** An SSE event id: the next offset of every partition read, e.g. `p0:124,p1:45`. */
export function formatEventId(positions: ReadonlyMap<number, bigint>): string {
  return [...positions].map(([partition, offset]) => `p${partition}:${offset}`).join(',');
}

export function parseEventId(text: string): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const part of text.split(',')) {
    const match = EVENT_ID.exec(part.trim());
    if (!match) throw new BadParameterError('Last-Event-ID', `${JSON.stringify(text)} is not a list of positions such as p0:124,p1:45`);
    out.set(Number(match[1]), BigInt(match[2]!));
  }
  return out;
}

export function parseReadQuery(query: Record<string, unknown>, lastEventId?: string): ReadQuery {
  const out: ReadQuery = { start: parseStart(single(query, 'from')) };
  const partition = wholeNumber('partition', single(query, 'partition'), 0, 1_000_000);
  if (partition !== undefined) out.partition = partition;
  const max = wholeNumber('max', single(query, 'max'), 1, MAX_RECORDS);
  if (max !== undefined) out.max = max;
  const where = single(query, 'where');
  if (where !== undefined) {
    if (where.length > MAX_WHERE_LENGTH) throw new BadParameterError('where', `longer than ${MAX_WHERE_LENGTH} characters`);
    try {
      out.where = compileFilter(where);
    } catch (error) {
      if (error instanceof FilterError) throw new BadParameterError('where', error.message.replace(/^--where /, ''));
      throw error;
    }
  }
  if (lastEventId !== undefined && lastEventId !== '') out.resume = parseEventId(lastEventId);
  return out;
}
