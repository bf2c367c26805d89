import type { Logger } from '../core/logger.ts';

/**
 * The contract between the worker runtime and a worker's handler module.
 *
 * A handler module's default export is a handler, best written with
 * `defineWorker` so its event and output types are checked:
 *
 *   export default defineWorker<OrderPlaced, OrderScored>((order, ctx) => score(order, ctx.timestamp));
 *
 * What a handler returns is what the worker emits to its output topic:
 * - `undefined` (or `[]`): nothing; the input is consumed.
 * - a value: one record with the input's key and no extra headers.
 * - `emit(value, { key, headers })`: one record with its own key and/or headers.
 * - an array of either: several records, produced in that order.
 *
 * Custom keys and headers are wrapped by `emit` rather than recognised by shape,
 * so an output schema that happens to have `key` and `value` fields is never
 * mistaken for an envelope.
 *
 * Throwing sends the input to the dead-letter topic, except a retryable error
 * (`RetryableError` from core/errors.ts, or a network/broker error) which makes
 * the runtime retry the batch from the last committed offset.
 */

export interface HandlerContext {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offset as a decimal string (offsets are 64-bit). */
  readonly offset: string;
  /** The record key as UTF-8, or null for an unkeyed record. */
  readonly key: string | null;
  /** Record timestamp in epoch milliseconds; use it instead of the clock so re-processing is deterministic. */
  readonly timestamp: number;
  /** Record headers as UTF-8 (the last value when a header repeats; a null value reads as ''). */
  readonly headers: Readonly<Record<string, string>>;
  /** The input's correlation id, or `<topic>/<partition>/<offset>` when it has none. */
  readonly correlationId: string;
  /** A child logger already bound to topic, partition, offset, key and correlation id. */
  readonly log: Logger;
}

const EMITTED = Symbol('sluice.emitted');

export interface Emitted<Out> {
  readonly [EMITTED]: true;
  readonly value: Out;
  /** Overrides the input's key; `null` produces an unkeyed record. */
  readonly key?: string | null;
  readonly headers?: Readonly<Record<string, string>>;
}

export type HandlerOutput<Out> = Out | Emitted<Out>;
export type HandlerResult<Out> = HandlerOutput<Out> | HandlerOutput<Out>[] | undefined;

export type Handler<In = unknown, Out = unknown> = (event: In, context: HandlerContext) => HandlerResult<Out> | Promise<HandlerResult<Out>>;

/** Types a handler module's default export; returns the handler unchanged. */
export function defineWorker<In, Out>(handler: Handler<In, Out>): Handler<In, Out> {
  return handler;
}

/** One output record with its own key and/or extra headers. */
export function emit<Out>(value: Out, options: { key?: string | null; headers?: Record<string, string> } = {}): Emitted<Out> {
  return { [EMITTED]: true, value, ...options };
}

export function isEmitted(value: unknown): value is Emitted<unknown> {
  return typeof value === 'object' && value !== null && (value as { [EMITTED]?: unknown })[EMITTED] === true;
}

/** A handler of any event type, as the runtime holds one loaded from a module. */
export type AnyHandler = Handler<never, unknown>;

export interface NormalizedOutput<K> {
  /** The input's key (as given, so its bytes are kept) unless the handler chose another. */
  key: K | string | null;
  value: unknown;
  headers: Record<string, string>;
}

/** Turns whatever a handler returned into the records to produce, in order. */
export function normalizeOutputs<K>(result: HandlerResult<unknown>, inputKey: K): NormalizedOutput<K>[] {
  if (result === undefined) return [];
  const list: unknown[] = Array.isArray(result) ? result : [result];
  return list.map((item) => {
    if (isEmitted(item)) {
      return { key: item.key === undefined ? inputKey : item.key, value: item.value, headers: { ...item.headers } };
    }
    return { key: inputKey, value: item, headers: {} };
  });
}
