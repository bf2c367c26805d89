import {
  kGetConnection,
  MultipleErrors,
  type Broker,
  type Callback,
  type ClusterMetadata,
  type Connection,
  type CreateRecordsBatchOptions,
  type MessageRecord,
  type produceV11,
} from '@platformatic/kafka';

type ProduceResponse = ReturnType<typeof produceV11.parseResponse>;
type ProduceResponseTopic = ProduceResponse['responses'][number];

/**
 * Each record of a produce request sent to the leader of its own partition.
 *
 * Why: @platformatic/kafka 2.12 groups a send's records by their partitions' leaders once (producer.js #performSend)
 * and then retries each group (#performSingleDestinationSend) on the leader of its FIRST record's partition, read
 * again from fresh metadata on every attempt, with every record of the group. A broker's partitions do not move
 * together: a controlled shutdown hands each to the next replica of its ISR, and a returning broker takes back only
 * its preferred ones. So after a move the group's retries go to a broker that leads some of its partitions and not
 * the others, and the whole group fails NOT_LEADER_OR_FOLLOWER on every attempt until the retries are spent (a clean
 * rolling restart answered 3-22 of ~8,000 requests 503 this way, `NOT_LEADER_OR_FOLLOWER ×7` on the failed batch).
 *
 * The client hands the Produce request of each attempt to the API the producer looked up (kafka/produce-request.ts
 * OnePassProducer), with the connection it chose; this splits it by the leaders in the same metadata the client just
 * read, sends each part to its leader at once, and answers the client with one merged response. The records keep
 * the producer id, epoch and sequences the client gave them, so a part that was already written is recognised by
 * the broker as a duplicate of its batch (the same offsets come back), exactly as in the client's own retry.
 */

export type ProduceApi = (
  connection: Connection,
  acks: number,
  timeout: number,
  messages: MessageRecord[],
  options: Partial<CreateRecordsBatchOptions>,
  callback: Callback<ProduceResponse | boolean>,
) => void;

/** One part of a request: the leader it goes to (undefined: the connection the client chose) and its records. */
export interface LeaderPart {
  leader: number | undefined;
  messages: MessageRecord[];
}

/**
 * `messages` split by their partitions' leaders, the part of the first record's leader first (the client chose its
 * connection by that record). A record whose leader is unknown stays in the first part: its broker refuses it and
 * the client's retry reads the metadata again.
 */
export function splitByLeader(messages: readonly MessageRecord[], leaderOf: (topic: string, partition: number) => number | undefined): LeaderPart[] {
  const first = messages[0];
  if (first === undefined) return [];
  const known = (leader: number | undefined): leader is number => leader !== undefined && leader >= 0;
  const firstLeader = leaderOf(first.topic, first.partition ?? 0);
  // The common case, every record led by the first one's broker (or unknown): one part, the records as given.
  let i = 1;
  for (; i < messages.length; i++) {
    const leader = leaderOf(messages[i]!.topic, messages[i]!.partition ?? 0);
    if (known(leader) && leader !== firstLeader) break;
  }
  if (i === messages.length) return [{ leader: undefined, messages: messages as MessageRecord[] }];
  const parts = new Map<number | undefined, MessageRecord[]>([[undefined, []]]);
  for (const m of messages) {
    const leader = leaderOf(m.topic, m.partition ?? 0);
    const key = !known(leader) || leader === firstLeader ? undefined : leader;
    const list = parts.get(key);
    if (list === undefined) parts.set(key, [m]);
    else list.push(m);
  }
  return [...parts].map(([leader, list]) => ({ leader, messages: list }));
}

/** One response from the responses of the parts: each topic's partitions together, the longest throttle. */
export function mergeProduceResponses(responses: readonly ProduceResponse[]): ProduceResponse {
  const topics = new Map<string, ProduceResponseTopic>();
  for (const response of responses) {
    for (const topic of response.responses) {
      const found = topics.get(topic.name);
      if (found === undefined) topics.set(topic.name, { ...topic, partitionResponses: [...topic.partitionResponses] });
      else found.partitionResponses.push(...topic.partitionResponses);
    }
  }
  return {
    responses: [...topics.values()],
    throttleTimeMs: Math.max(0, ...responses.map((r) => r.throttleTimeMs)),
    nodeEndpoints: responses.flatMap((r) => r.nodeEndpoints ?? []),
  };
}

/** What the router needs of the producer: its cached metadata and its connection pool. */
export interface RoutingClient {
  readonly currentMetadata: ClusterMetadata | undefined;
  [kGetConnection](broker: Broker, callback: Callback<Connection>): void;
}

/** `api` (a Produce API) that sends each record to its partition's leader in `client`'s metadata. */
export function routeByLeader(api: ProduceApi, client: RoutingClient): ProduceApi {
  return (connection, acks, timeout, messages, options, callback) => {
    const metadata = client.currentMetadata;
    // The topic's partitions looked up when the topic changes, not per record.
    let topic: string | undefined;
    let partitions: ReadonlyArray<{ leader: number } | undefined> | undefined;
    const leaderOf = (name: string, partition: number): number | undefined => {
      if (name !== topic) {
        topic = name;
        partitions = metadata!.topics.get(name)?.partitions;
      }
      return partitions?.[partition]?.leader;
    };
    const parts = metadata === undefined ? [] : splitByLeader(messages, leaderOf);
    if (metadata === undefined || parts.length <= 1) {
      api(connection, acks, timeout, messages, options, callback);
      return;
    }
    const results = new Array<ProduceResponse | boolean | undefined>(parts.length);
    const errors: Error[] = [];
    let pending = parts.length;
    const settle = (index: number, error: Error | null, result?: ProduceResponse | boolean): void => {
      if (error) errors.push(error);
      else results[index] = result;
      if (--pending > 0) return;
      if (errors.length > 0) callback(errors.length === 1 ? errors[0]! : new MultipleErrors('Producing messages failed.', errors));
      else if (results.every((r) => typeof r === 'object')) callback(null, mergeProduceResponses(results as ProduceResponse[]));
      else callback(null, results.every(Boolean)); // acks=0: whether every part was written to its socket
    };
    parts.forEach((part, i) => {
      if (part.leader === undefined) {
        api(connection, acks, timeout, part.messages, options, (error, result) => settle(i, error, result));
        return;
      }
      // A leader missing from the brokers is the pool's to refuse: a retryable stale-metadata error, as in the client.
      client[kGetConnection](metadata.brokers.get(part.leader) as Broker, (error, other) => {
        if (error) settle(i, error);
        else api(other!, acks, timeout, part.messages, options, (e, result) => settle(i, e, result));
      });
    });
  };
}
