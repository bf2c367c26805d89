import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { MalformedBodyError, ValidationError, type FieldViolation } from '../core/errors.ts';
import { JsonTooDeepError, NonFiniteNumberError, parseJson } from '../core/json.ts';

/**
 * Request bodies as the ingress reads them: a JSON object is one event, a JSON
 * array or an NDJSON body is a batch. Parsing goes through core/json so longs
 * beyond 2^53 arrive as exact BigInts instead of rounded numbers.
 */

export const JSON_TYPE = 'application/json';
export const NDJSON_TYPE = 'application/x-ndjson';

export interface ParsedBody {
  events: unknown[];
  /** Whether the caller sent a batch (and so gets `{results: [...]}` back). */
  batch: boolean;
}

/** A parsed body with the bytes it was parsed from (an Idempotency-Key request's fingerprint is of those). */
export interface ReceivedBody extends ParsedBody {
  raw: Buffer;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A number too large for a double is a field's bad value (400 naming it), not a malformed body. */
function nonFiniteViolation(error: NonFiniteNumberError, batch: boolean, line?: number): ValidationError {
  const message = `number ${error.source.length > 40 ? `${error.source.slice(0, 40)}…` : error.source} is out of range (larger than a double can hold)`;
  // A batch's path starts with the event's index ("[2].amount"): split it off, as validation reports it.
  const indexed = batch && line === undefined ? /^\[(\d+)\]\.?(.*)$/.exec(error.path) : null;
  const index = indexed ? Number(indexed[1]) : line;
  const path = indexed ? indexed[2]! : error.path;
  const violation = index === undefined ? { path, message } : { index, path, message };
  return new ValidationError([violation], `${index === undefined ? '' : `[${index}] `}${path || '(root)'}: ${message}`);
}

/** The default of SLUICE_JSON_MAX_DEPTH, for callers without a config (benches, tests). */
export const DEFAULT_MAX_DEPTH = 128;

export function parseJsonBody(text: string, maxDepth = DEFAULT_MAX_DEPTH): ParsedBody {
  if (text.trim() === '') throw new MalformedBodyError('body is empty; expected a JSON object (one event) or array (a batch)');
  let value: unknown;
  try {
    value = parseJson(text, maxDepth);
  } catch (error) {
    if (error instanceof JsonTooDeepError) throw new MalformedBodyError(`body ${error.message}`, error);
    if (error instanceof NonFiniteNumberError) throw nonFiniteViolation(error, text.trimStart().startsWith('['));
    // V8's message already says where: "... at position 12 (line 1 column 13)".
    throw new MalformedBodyError(`body is not valid JSON: ${reason(error)}`, error);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) throw new MalformedBodyError('body is an empty array; a batch needs at least one event');
    return { events: value, batch: true };
  }
  return { events: [value], batch: false };
}

export function parseNdjsonBody(text: string, maxDepth = DEFAULT_MAX_DEPTH): ParsedBody {
  const events: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    try {
      events.push(parseJson(line, maxDepth));
    } catch (error) {
      if (error instanceof JsonTooDeepError) {
        throw new MalformedBodyError(`line ${i + 1} is nested more than ${error.maxDepth} arrays/objects deep (byte offset ${error.byteOffset} of the line)`, error);
      }
      if (error instanceof NonFiniteNumberError) throw nonFiniteViolation(error, true, events.length);
      throw new MalformedBodyError(`line ${i + 1} is not valid JSON: ${reason(error)}`, error);
    }
  }
  if (events.length === 0) throw new MalformedBodyError('body holds no events; expected one JSON object per line');
  return { events, batch: true };
}

/** The paths of strings holding U+FFFD, where a lossy decode put the bytes it could not read. */
function replacedStrings(value: unknown, path: string, out: string[]): string[] {
  if (typeof value === 'string') {
    if (value.includes('\uFFFD')) out.push(path);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const at = Array.isArray(value) ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
      if (key.includes('\uFFFD')) out.push(at);
      replacedStrings(item, at, out);
    }
  }
  return out;
}

/**
 * The body as text, refusing bytes that are not UTF-8: decoding them would
 * silently replace them with U+FFFD and produce a different string than was sent.
 * The error names the field when the rest of the body can be read.
 */
export function decodeUtf8(body: Buffer, parse: (text: string) => ParsedBody): string {
  if (isUtf8(body)) return body.toString('utf8');
  const message = 'not valid UTF-8 (the invalid bytes would be replaced, changing the text)';
  let violations: FieldViolation[] = [];
  try {
    const { events, batch } = parse(body.toString('utf8'));
    violations = events.flatMap((event, index) => replacedStrings(event, '', []).map((path) => (batch ? { index, path, message } : { path, message })));
  } catch {
    // The rest of the body is malformed too; the UTF-8 problem is reported first.
  }
  const first = violations[0];
  if (!first) throw new MalformedBodyError(`body is ${message}`);
  throw new ValidationError(violations, `${first.index === undefined ? '' : `[${first.index}] `}${first.path}: ${message}`);
}

/**
 * Replaces Fastify's parsers with the two the ingress accepts, so any other
 * content type is a 415 and the body limit applies before parsing starts.
 * Bodies arrive as bytes so that invalid UTF-8 is refused rather than replaced.
 */
export function registerBodyParsers(app: FastifyInstance, maxDepth = DEFAULT_MAX_DEPTH): void {
  app.removeAllContentTypeParsers();
  for (const [type, parseBody] of [
    [JSON_TYPE, parseJsonBody],
    [NDJSON_TYPE, parseNdjsonBody],
  ] as const) {
    const parse = (text: string): ParsedBody => parseBody(text, maxDepth);
    app.addContentTypeParser(type, { parseAs: 'buffer' }, (_request, body, done) => {
      try {
        done(null, receiveBody(body as Buffer, parse));
      } catch (error) {
        done(error as Error, undefined);
      }
    });
  }
}

/** A body's bytes as its content type's parser reads them: the parsers above, and the ingress's direct path (direct-produce.ts). */
export function receiveBody(body: Buffer, parse: (text: string) => ParsedBody): ReceivedBody {
  const { events, batch } = parse(decodeUtf8(body, parse));
  return { events, batch, raw: body };
}

export function isReceivedBody(value: unknown): value is ReceivedBody {
  return typeof value === 'object' && value !== null && Array.isArray((value as ReceivedBody).events) && Buffer.isBuffer((value as ReceivedBody).raw);
}
