import { kGetConnection, type Broker, type ClusterMetadata, type Connection, type MessageRecord } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { mergeProduceResponses, routeByLeader, splitByLeader, type ProduceApi } from '../../kafka/produce-routing.ts';

const message = (topic: string, partition: number): MessageRecord => ({ topic, partition, value: Buffer.from(`${topic}-${partition}`) });

/** Leaders per partition of topic `t` (index = partition), brokers 1..3 on ports 9001..9003. */
function metadata(leaders: number[]): ClusterMetadata {
  return {
    id: 'c',
    controllerId: 1,
    lastUpdate: 0,
    brokers: new Map([1, 2, 3].map((id) => [id, { host: '127.0.0.1', port: 9000 + id, rack: null }])),
    topics: new Map([
      ['t', { id: 't', partitionsCount: leaders.length, lastUpdate: 0, partitions: leaders.map((leader) => ({ leader, leaderEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3], offlineReplicas: [] })) }],
    ]),
  };
}

/** A Produce API that answers each partition from the broker its connection points at: ok when that broker leads it. */
function fakeCluster(leaders: number[]) {
  const sent: { port: number; partitions: number[] }[] = [];
  const api: ProduceApi = (connection, _acks, _timeout, messages, _options, callback) => {
    const port = (connection as unknown as { port: number }).port;
    sent.push({ port, partitions: messages.map((m) => m.partition!) });
    const wrong = messages.filter((m) => leaders[m.partition!] !== port - 9000);
    if (wrong.length > 0) callback(Object.assign(new Error('NOT_LEADER_OR_FOLLOWER'), { hasStaleMetadata: true }));
    else
      callback(null, {
        throttleTimeMs: 0,
        responses: [
          {
            name: 't',
            partitionResponses: [...new Set(messages.map((m) => m.partition!))].map((index) => ({
              index,
              errorCode: 0,
              baseOffset: BigInt(index * 100),
              logAppendTimeMs: -1n,
              logStartOffset: 0n,
              recordErrors: [],
              errorMessage: null,
              currentLeader: { leaderId: -1, leaderEpoch: -1 },
            })),
          },
        ],
      });
  };
  const client = {
    currentMetadata: metadata(leaders) as ClusterMetadata | undefined,
    [kGetConnection](broker: Broker, callback: (error: Error | null, connection?: Connection) => void) {
      callback(null, { port: broker.port } as unknown as Connection);
    },
  };
  return { api, client, sent };
}

describe('produce routing: each record to the leader of its own partition', () => {
  it('splits by leader, the first record’s leader first; unknown leaders stay with the first part', () => {
    const leaders = new Map([
      [0, 1],
      [1, 2],
      [2, 1],
      [3, -1],
      [4, 3],
    ]);
    const parts = splitByLeader(
      [0, 1, 2, 3, 4, 1].map((p) => message('t', p)),
      (_t, p) => leaders.get(p),
    );
    expect(parts.map((p) => [p.leader, p.messages.map((m) => m.partition)])).toEqual([
      [undefined, [0, 2, 3]],
      [2, [1, 1]],
      [3, [4]],
    ]);
    expect(splitByLeader([], () => 1)).toEqual([]);
    // One leader (unknown ones aside): one part, the records as given.
    const one = [0, 2, 3, 0].map((p) => message('t', p));
    const [only, ...more] = splitByLeader(one, (_t, p) => leaders.get(p));
    expect(more).toEqual([]);
    expect(only).toEqual({ leader: undefined, messages: one });
  });

  it("a group the client retries on its first record's leader succeeds when its partitions moved apart", async () => {
    // Broker 1 led partitions 0 and 1; a controlled shutdown gave 0 to broker 2 and 1 to broker 3.
    const { api, client, sent } = fakeCluster([2, 3]);
    const messages = [message('t', 0), message('t', 1), message('t', 0)];
    const unrouted = await new Promise<unknown>((resolve) => api({ port: 9002 } as unknown as Connection, -1, 1000, messages, {}, (error) => resolve(error)));
    expect(unrouted).toBeInstanceOf(Error);
    sent.length = 0;
    const response = await new Promise<unknown>((resolve, reject) =>
      routeByLeader(api, client)({ port: 9002 } as unknown as Connection, -1, 1000, messages, {}, (error, result) => (error ? reject(error) : resolve(result))),
    );
    expect(sent).toEqual([
      { port: 9002, partitions: [0, 0] },
      { port: 9003, partitions: [1] },
    ]);
    expect(response).toMatchObject({
      responses: [
        {
          name: 't',
          partitionResponses: [
            { index: 0, baseOffset: 0n },
            { index: 1, baseOffset: 100n },
          ],
        },
      ],
    });
  });

  it("one request when every partition has the connection's leader, or without metadata; a failed part fails the request", async () => {
    const { api, client, sent } = fakeCluster([2, 2]);
    const routed = routeByLeader(api, client);
    await new Promise((resolve) => routed({ port: 9002 } as unknown as Connection, -1, 1000, [message('t', 0), message('t', 1)], {}, resolve));
    client.currentMetadata = undefined;
    await new Promise((resolve) => routed({ port: 9002 } as unknown as Connection, -1, 1000, [message('t', 0), message('t', 1)], {}, resolve));
    expect(sent).toHaveLength(2);

    // The client's metadata says broker 3 leads partition 1, but the broker says otherwise: the request fails (and is retried).
    const stale = fakeCluster([2, 1]);
    stale.client.currentMetadata = metadata([2, 3]);
    const error = await new Promise((resolve) => routeByLeader(stale.api, stale.client)({ port: 9002 } as unknown as Connection, -1, 1000, [message('t', 0), message('t', 1)], {}, resolve));
    expect(error).toMatchObject({ hasStaleMetadata: true });
  });

  it('merges the parts’ responses per topic, with the longest throttle', () => {
    const part = (name: string, index: number, throttleTimeMs: number) => ({ throttleTimeMs, responses: [{ name, partitionResponses: [{ index } as never] }] });
    expect(mergeProduceResponses([part('a', 0, 5), part('b', 1, 0), part('a', 2, 9)])).toEqual({
      throttleTimeMs: 9,
      nodeEndpoints: [],
      responses: [
        { name: 'a', partitionResponses: [{ index: 0 }, { index: 2 }] },
        { name: 'b', partitionResponses: [{ index: 1 }] },
      ],
    });
  });
});
