import { connect } from 'node:net';

/**
 * A Kafka Metadata request (v4, understood by Kafka 1.0 through 4.x) over a
 * plain socket: the launcher's readiness and ISR checks. The launcher must not
 * depend on the client seam (kafka/), which starts and stops with the platform
 * it serves, and a JVM tool would add seconds to every check.
 */

export interface PartitionMetadata {
  partition: number;
  errorCode: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

export interface TopicMetadata {
  name: string;
  errorCode: number;
  partitions: PartitionMetadata[];
}

export interface ClusterMetadata {
  brokers: { id: number; host: string; port: number }[];
  clusterId: string | null;
  topics: TopicMetadata[];
}

const METADATA = 3;
const VERSION = 4;

function encodeRequest(topics: string[], correlationId: number): Buffer {
  const clientId = Buffer.from('sluice-launcher');
  const names = topics.map((t) => Buffer.from(t));
  const bodySize = 2 + 2 + 4 + 2 + clientId.length + 4 + names.reduce((n, b) => n + 2 + b.length, 0) + 1;
  const buf = Buffer.alloc(4 + bodySize);
  let o = buf.writeInt32BE(bodySize, 0);
  o = buf.writeInt16BE(METADATA, o);
  o = buf.writeInt16BE(VERSION, o);
  o = buf.writeInt32BE(correlationId, o);
  o = buf.writeInt16BE(clientId.length, o);
  o += clientId.copy(buf, o);
  o = buf.writeInt32BE(names.length, o);
  for (const name of names) {
    o = buf.writeInt16BE(name.length, o);
    o += name.copy(buf, o);
  }
  buf.writeInt8(0, o); // allow_auto_topic_creation: false
  return buf;
}

class Reader {
  private offset = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  int8(): number {
    return this.buf.readInt8((this.offset += 1) - 1);
  }
  int16(): number {
    return this.buf.readInt16BE((this.offset += 2) - 2);
  }
  int32(): number {
    return this.buf.readInt32BE((this.offset += 4) - 4);
  }
  string(): string | null {
    const length = this.int16();
    if (length < 0) return null;
    return this.buf.toString('utf8', this.offset, (this.offset += length));
  }
  array<T>(item: () => T): T[] {
    const length = this.int32();
    return Array.from({ length: Math.max(0, length) }, item);
  }
}

function decodeResponse(body: Buffer): ClusterMetadata {
  const r = new Reader(body);
  r.int32(); // correlation id
  r.int32(); // throttle time
  const brokers = r.array(() => {
    const id = r.int32();
    const host = r.string() ?? '';
    const port = r.int32();
    r.string(); // rack
    return { id, host, port };
  });
  const clusterId = r.string();
  r.int32(); // controller id: in KRaft a random broker, not the active controller (see tools.ts)
  const topics = r.array(() => {
    const errorCode = r.int16();
    const name = r.string() ?? '';
    r.int8(); // is_internal
    const partitions = r.array(() => ({
      errorCode: r.int16(),
      partition: r.int32(),
      leader: r.int32(),
      replicas: r.array(() => r.int32()),
      isr: r.array(() => r.int32()),
    }));
    return { name, errorCode, partitions };
  });
  return { brokers, clusterId, topics };
}

/** Asks one broker for the cluster's brokers and the partitions of `topics` (none: brokers only). */
export function fetchMetadata(broker: string, topics: string[] = [], timeoutMs = 2000): Promise<ClusterMetadata> {
  const [host, port] = [broker.slice(0, broker.lastIndexOf(':')), Number(broker.slice(broker.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let received = Buffer.alloc(0);
    const fail = (error: Error): void => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no metadata from ${broker} within ${timeoutMs} ms`)));
    socket.once('error', fail);
    socket.once('connect', () => socket.write(encodeRequest(topics, 1)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      socket.destroy();
      try {
        resolve(decodeResponse(received.subarray(4, 4 + received.readInt32BE(0))));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    socket.once('close', () => reject(new Error(`${broker} closed the connection before answering`)));
  });
}

/** The brokers registered in the cluster, as seen by `broker`; empty when it does not answer. */
export async function registeredBrokers(broker: string, timeoutMs = 2000): Promise<number[]> {
  try {
    return (await fetchMetadata(broker, [], timeoutMs)).brokers.map((b) => b.id);
  } catch {
    return [];
  }
}
