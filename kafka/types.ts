/**
 * Sluice's Kafka seam: the types every other folder speaks. Only files under
 * kafka/ import a Kafka client library (a unit test over imports keeps it so);
 * the rest of Sluice sees these types and the factories in kafka/index.ts.
 *
 * Offsets are bigint (Kafka's int64), timestamps are epoch milliseconds as
 * bigint, keys and values are raw bytes: encoding (Avro, JSON Schema, Protobuf
 * in the Confluent wire format) is Sluice's business, not the client's.
 */

import type { KafkaRecord, RecordHeaders } from '../core/records.ts';

/** The record read, defined in core/ (tracing reads its headers), is the seam's as much. */
export type { KafkaRecord, RecordHeaders };

/** What one fetch brought of one partition. */
export interface PartitionBatch {
  readonly topic: string;
  readonly partition: number;
  /** In offset order; control records (and with read_committed, aborted transactions) left out. May be empty. */
  readonly records: readonly KafkaRecord[];
  /** The offset the next fetch of this partition starts at (past skipped control and aborted batches too). */
  readonly nextOffset: bigint;
  /** The partition's high watermark when fetched (lag = highWatermark - nextOffset). */
  readonly highWatermark: bigint;
  /** The partition's last stable offset when fetched (where a read_committed reader ends). */
  readonly lastStableOffset: bigint;
  /** Leader epoch of the batch's last record batch (an offset commit carries it, KIP-320); -1 when unknown. */
  readonly leaderEpoch: number;
}

/**
 * A fetched record where it lies (record-codec.ts's walk): its fields are positions in `buffer`, the fetched bytes
 * or a decompressed batch. One view serves every record of a walk: read it during the visitor's call.
 */
export interface RecordView {
  readonly buffer: Buffer;
  readonly baseOffset: bigint;
  /** baseOffset as a number, or -1 past 2^53 - 2^31 (so that it plus offsetDelta is exact): for an output without a bigint per record. */
  readonly baseOffsetNumber: number;
  readonly offsetDelta: number;
  readonly offset: bigint;
  /** Epoch milliseconds. */
  readonly timestampMs: number;
  readonly keyStart: number;
  /** -1: a null key. */
  readonly keyLength: number;
  readonly valueStart: number;
  /** -1: a null value. */
  readonly valueLength: number;
  readonly headerCount: number;
  /** Where the headers start in `buffer`, and where the record ends (its headers are its last field). */
  readonly headersStart: number;
  readonly end: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: RecordHeaders;
  /** Each header's name and value as positions in `buffer` (length -1: null), in order. */
  eachHeader(visit: (nameStart: number, nameLength: number, valueStart: number, valueLength: number) => void): void;
  /** The record as every other reader gets it (copied out of the view). */
  toRecord(topic: string, partition: number): KafkaRecord;
}

/**
 * What one fetch brought of one partition, read in place: the records are walked where they lie, without a
 * KafkaRecord (or key, value and header objects) per record (PartitionReader.runFetched).
 */
export interface FetchedBatch extends Omit<PartitionBatch, 'records'> {
  /**
   * Calls `visitor` for each record in offset order (control records and aborted transactions left out, as in
   * PartitionBatch), at most `limit` of them; returns how many. One RecordView is reused for every record: read it
   * during the call (RecordView.toRecord copies one out).
   */
  visit(visitor: (record: RecordView) => void, limit?: number): number;
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
