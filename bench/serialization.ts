import { createResolvingDecoder, createTypes, encodeAvro } from '../core/formats/avro-types.ts';
import { frame, unframe } from '../core/wire-format.ts';
import { round } from './common.ts';
import type { OrderPlacedInput } from '../tests/support/orders.ts';

/**
 * avsc in the Confluent wire format (what the ingress and workers do per event)
 * against JSON.stringify/parse, on the same events, alternating the contenders
 * in short slices so a noisy neighbour hits both alike.
 */

export interface SerializationFigures {
  avroEncodePerSec: number;
  avroDecodePerSec: number;
  jsonEncodePerSec: number;
  jsonDecodePerSec: number;
  avroBytes: number;
  jsonBytes: number;
}

function opsPerSec(fn: (i: number) => void, ms: number): number {
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let k = 0; k < 256; k++) fn(n++);
    elapsed = performance.now() - start;
  }
  return (n / elapsed) * 1000;
}

export function measureSerialization(events: OrderPlacedInput[], schemaText: string, totalMs: number): SerializationFigures {
  const types = createTypes(schemaText);
  const decoder = createResolvingDecoder(types);
  const encoded = events.map((e) => frame(1, encodeAvro(types, e)));
  const json = events.map((e) => JSON.stringify(e));
  const n = events.length;
  let sink = 0;
  const contenders = {
    avroEncode: (i: number) => (sink += frame(1, encodeAvro(types, events[i % n])).length),
    jsonEncode: (i: number) => (sink += Buffer.from(JSON.stringify(events[i % n]), 'utf8').length),
    avroDecode: (i: number) => (sink += decoder.decode(unframe(encoded[i % n]).payload) === null ? 0 : 1),
    jsonDecode: (i: number) => (sink += JSON.parse(json[i % n]!) === null ? 0 : 1),
  };
  const samples: Record<keyof typeof contenders, number[]> = { avroEncode: [], jsonEncode: [], avroDecode: [], jsonDecode: [] };
  const rounds = 6;
  const slice = totalMs / rounds / 4;
  for (let r = 0; r < rounds; r++) {
    const order = (Object.keys(contenders) as (keyof typeof contenders)[]).slice();
    if (r % 2 === 1) order.reverse();
    for (const name of order) samples[name].push(opsPerSec(contenders[name], slice));
  }
  if (sink < 0) throw new Error('unreachable: keeps the work observable');
  // The first round warms the JIT; the best of the rest is the least disturbed by neighbours.
  const best = (xs: number[]): number => round(Math.max(...xs.slice(1)), 0);
  return {
    avroEncodePerSec: best(samples.avroEncode),
    avroDecodePerSec: best(samples.avroDecode),
    jsonEncodePerSec: best(samples.jsonEncode),
    jsonDecodePerSec: best(samples.jsonDecode),
    avroBytes: Math.round(encoded.reduce((s, b) => s + b.length, 0) / n),
    jsonBytes: Math.round(json.reduce((s, j) => s + Buffer.byteLength(j), 0) / n),
  };
}
