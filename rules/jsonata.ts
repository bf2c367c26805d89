import jsonata from 'jsonata';
import { RE2JS } from 're2js';
import { MAX_EXPRESSION_LENGTH } from './types.ts';

/**
 * JSONata as Confluent's `JSONATA` executor runs it (migration rules mostly:
 * the expression receives the message and returns the migrated one).
 * Evaluation is bounded with JSONata's own guardrails (a time budget, a
 * stack depth, a sequence size that also caps the range operator), and its
 * regular expressions run on RE2 (linear time) instead of V8's backtracking
 * RegExp, which a rule's author could otherwise stall with `(a+)+$`.
 */

const LIMITS = { timeout: 250, stack: 200, sequence: 100_000 } as const;

/** The subset of RegExp JSONata drives: `lastIndex`, then `exec` returning groups with `index`. */
class Re2Engine {
  lastIndex = 0;
  readonly #re: RE2JS;

  constructor(source: RegExp | string) {
    const pattern = typeof source === 'string' ? source : source.source;
    const flags = typeof source === 'string' ? '' : source.flags;
    this.#re = RE2JS.compile(pattern, (flags.includes('i') ? RE2JS.CASE_INSENSITIVE : 0) | (flags.includes('m') ? RE2JS.MULTILINE : 0));
  }

  exec(text: string): (RegExpExecArray & { index: number }) | null {
    const matcher = this.#re.matcher(text);
    if (this.lastIndex > text.length || !matcher.find(this.lastIndex)) return null;
    const groups: string[] = [];
    for (let i = 0; i <= matcher.groupCount(); i++) groups.push(matcher.group(i) ?? (undefined as unknown as string));
    this.lastIndex = matcher.end();
    return Object.assign(groups, { index: matcher.start(), input: text }) as unknown as RegExpExecArray & { index: number };
  }
}

const OPTIONS = { ...LIMITS, RegexEngine: Re2Engine as unknown as RegExpConstructor };

export interface JsonataProgram {
  evaluate(message: unknown): Promise<unknown>;
}

/** Every regular expression literal in a parsed expression must compile on RE2, so a pattern RE2 cannot bound is refused up front. */
function checkRegexes(node: unknown, seen = new Set<unknown>()): void {
  if (typeof node !== 'object' || node === null || seen.has(node)) return;
  seen.add(node);
  if ((node as { type?: string }).type === 'regex' || (node as { type?: string }).type === 'regexp') {
    const value = (node as { value?: unknown }).value;
    if (value instanceof RegExp) {
      try {
        RE2JS.compile(value.source);
      } catch (error) {
        throw new Error(`regular expression /${value.source}/ cannot run in linear time: ${(error as Error).message}`, { cause: error });
      }
    }
  }
  for (const child of Object.values(node)) checkRegexes(child, seen);
}

/** JSONata's errors are objects with a code and a message; give back an Error with both. */
function asError(error: unknown): Error {
  if (error instanceof Error) return error;
  const e = error as { code?: string; message?: string };
  return new Error(e.message ? `${e.code ?? 'JSONata'}: ${e.message}` : String(e.code ?? error));
}

/**
 * JSONata's results as plain data: its objects have a null prototype and its
 * arrays carry sequence flags, which CEL (a CEL rule after a JSONATA
 * migration) cannot read as a message. Functions (a result that is a lambda)
 * are dropped. Depth is bounded by JSONata's own stack limit.
 */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (typeof v !== 'function') out[k] = plain(v);
    return out;
  }
  return value;
}

export function compileJsonata(expr: string): JsonataProgram {
  if (expr.length > MAX_EXPRESSION_LENGTH) throw new Error(`the expression has ${expr.length} characters; at most ${MAX_EXPRESSION_LENGTH}`);
  let compiled: jsonata.Expression;
  try {
    compiled = jsonata(expr, OPTIONS);
  } catch (error) {
    throw asError(error);
  }
  checkRegexes(compiled.ast());
  return {
    async evaluate(message) {
      try {
        return plain(await compiled.evaluate(message));
      } catch (error) {
        throw asError(error);
      }
    },
  };
}
