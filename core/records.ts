/**
 * A Kafka record as Sluice reads it, below the seam (kafka/) so core/ (tracing) can speak of it too; kafka/index.ts
 * exports it with the rest of the seam's types. Offsets and timestamps are bigint, keys and values raw bytes.
 */

/**
 * Header values as they are on the wire; a name may repeat (Kafka allows it), so it is a list of pairs, every
 * value in order. A value may be null (Kafka allows it), which is not the same as an empty one. See kafka/record-codec.ts.
 */
export type RecordHeaders = ReadonlyArray<readonly [name: string, value: Buffer | null]>;

/** A record read from Kafka. */
export interface KafkaRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: RecordHeaders;
  /** Epoch milliseconds. */
  readonly timestamp: bigint;
}
