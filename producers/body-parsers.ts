import type { FastifyInstance } from 'fastify';
import { MalformedBodyError } from '../core/errors.ts';
import { parseJson } from '../core/json.ts';

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

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function parseJsonBody(text: string): ParsedBody {
  if (text.trim() === '') throw new MalformedBodyError('body is empty; expected a JSON object (one event) or array (a batch)');
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (error) {
    // V8's message already says where: "... at position 12 (line 1 column 13)".
    throw new MalformedBodyError(`body is not valid JSON: ${reason(error)}`, error);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) throw new MalformedBodyError('body is an empty array; a batch needs at least one event');
    return { events: value, batch: true };
  }
  return { events: [value], batch: false };
}

export function parseNdjsonBody(text: string): ParsedBody {
  const events: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    try {
      events.push(parseJson(line));
    } catch (error) {
      throw new MalformedBodyError(`line ${i + 1} is not valid JSON: ${reason(error)}`, error);
    }
  }
  if (events.length === 0) throw new MalformedBodyError('body holds no events; expected one JSON object per line');
  return { events, batch: true };
}

/**
 * Replaces Fastify's parsers with the two the ingress accepts, so any other
 * content type is a 415 and the body limit applies before parsing starts.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(JSON_TYPE, { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.addContentTypeParser(NDJSON_TYPE, { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseNdjsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

export function isParsedBody(value: unknown): value is ParsedBody {
  return typeof value === 'object' && value !== null && Array.isArray((value as ParsedBody).events);
}
