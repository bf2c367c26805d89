/**
 * Sluice's Kafka seam: the types every other folder speaks. Only files under
 * kafka/ import a Kafka client library (a unit test over imports keeps it so);
 * the rest of Sluice sees these types and the factories in kafka/index.ts.
 *
 * Offsets are bigint (Kafka's int64), timestamps are epoch milliseconds as
 * bigint, keys and values are raw bytes: encoding (Avro, JSON Schema, Protobuf
 * in the Confluent wire format) is Sluice's business, not the client's.
 */

/** Header values as they are on the wire; a name may repeat (Kafka allows it), so it is a list of pairs. */
export type RecordHeaders = ReadonlyArray<readonly [name: string, value: Buffer]>;

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

/** A record to write. Without `partition` the seam applies Kafka's default partitioner (murmur2 of the key, as the Java client). */
export interface OutgoingRecord {
  topic: string;
  partition?: number;
  key?: Buffer | null;
  value: Buffer | null;
  headers?: RecordHeaders;
  /** Epoch milliseconds; the broker's clock when omitted. */
  timestamp?: bigint;
}

/** Where one written record landed. Same order as the records sent. */
export interface RecordMetadata {
  topic: string;
  partition: number;
  offset: bigint;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  offset: bigint;
}

/** `all` = acks=-1 (every in-sync replica), `leader` = acks=1, `none` = acks=0. */
export type Acks = 'all' | 'leader' | 'none';
