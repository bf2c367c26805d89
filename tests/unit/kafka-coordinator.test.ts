import { MultipleErrors, NetworkError, ProtocolError, ResponseError, TimeoutError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { errorTrail, isCoordinatorUnreachable, isStaleMetadata, toSluiceError } from '../../kafka/errors.ts';
import { CoordinatorRoute } from '../../kafka/group-consumer.ts';

const protocol = (id: string): ProtocolError => new ProtocolError(id, null);
const response = (id: string): ResponseError => new ResponseError(28, 3, { '/topics/0/partitions/0': [protocol(id).apiCode as number, null] }, {});
/** What the client raises for a node that left the cluster's metadata (connection-pool.js). */
const notInMetadata = (): NetworkError => new NetworkError('Cannot get a connection: the broker is not available in the current cluster metadata.', { canRetry: true, hasStaleMetadata: true });

describe('isCoordinatorUnreachable: when a transaction asks FindCoordinator again', () => {
  it.each([
    ['NOT_COORDINATOR', () => response('NOT_COORDINATOR')],
    ['COORDINATOR_NOT_AVAILABLE', () => response('COORDINATOR_NOT_AVAILABLE')],
    ['COORDINATOR_LOAD_IN_PROGRESS', () => response('COORDINATOR_LOAD_IN_PROGRESS')],
    ['a node gone from the metadata, under retries', () => new MultipleErrors('commit failed 11 times.', [notInMetadata(), notInMetadata()])],
    ['a refused connection', () => new NetworkError('Connection to 127.0.0.1:1 failed.', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) })],
    ['a request timeout', () => new TimeoutError('Request timed out')],
  ])('%s: yes', (_name, make) => {
    expect(isCoordinatorUnreachable(make())).toBe(true);
  });

  it.each([
    ['ILLEGAL_GENERATION (a rebalance)', () => response('ILLEGAL_GENERATION')],
    ['INVALID_PRODUCER_EPOCH (fenced)', () => response('INVALID_PRODUCER_EPOCH')],
    ['CONCURRENT_TRANSACTIONS', () => new MultipleErrors('addPartitionsToTransaction failed 11 times.', [response('CONCURRENT_TRANSACTIONS')])],
    ['a closed client', () => new NetworkError('Client is closed.', { canRetry: false, closed: true })],
    ['a plain error', () => new Error('boom')],
  ])('%s: no', (_name, make) => {
    expect(isCoordinatorUnreachable(make())).toBe(false);
  });
});

describe('errorTrail: what each retry got, once per distinct cause', () => {
  it('lists protocol answers and network failures with their counts, not the "failed 11 times" wrapper', () => {
    const refused = () => new NetworkError('Connection to 127.0.0.1:49192 failed.', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:49192'), { code: 'ECONNREFUSED' }) });
    const error = new MultipleErrors('commit failed 4 times.', [refused(), refused(), notInMetadata(), response('NOT_COORDINATOR')]);
    expect(errorTrail(error)).toEqual([
      'PLT_KFK_NETWORK Connection to 127.0.0.1:49192 failed. (ECONNREFUSED) ×2',
      'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:49192 ×2',
      'PLT_KFK_NETWORK Cannot get a connection: the broker is not available in the current cluster metadata.',
      'NOT_COORDINATOR',
    ]);
  });
});

describe('CoordinatorRoute: where a group offset commit goes', () => {
  const lookups = (answers: number[]) => {
    const calls: number[] = [];
    const lookup = async () => {
      const next = answers.shift();
      if (next === undefined) throw new Error('no more answers');
      calls.push(next);
      return next;
    };
    return { lookup, calls };
  };

  it("follows the library's coordinator while commits succeed, without asking the cluster", async () => {
    const { lookup, calls } = lookups([]);
    const route = new CoordinatorRoute(lookup);
    expect(await route.node(1)).toBe(1);
    expect(await route.node(2)).toBe(2);
    expect(calls).toEqual([]);
  });

  it('after a failed commit asks the cluster, and keeps its answer while the library still names the dead node', async () => {
    const { lookup, calls } = lookups([2]);
    const route = new CoordinatorRoute(lookup);
    expect(await route.node(1)).toBe(1);
    route.failed();
    expect(await route.node(1)).toBe(2);
    expect(await route.node(1)).toBe(2);
    expect(calls).toEqual([2]);
  });

  it('goes back to the library once it learns a coordinator of its own', async () => {
    const { lookup } = lookups([2]);
    const route = new CoordinatorRoute(lookup);
    route.failed();
    expect(await route.node(1)).toBe(2);
    expect(await route.node(3)).toBe(3);
    expect(await route.node(3)).toBe(3);
  });

  it('asks again after each failure, and after a failed lookup', async () => {
    const route = new CoordinatorRoute(async () => {
      throw new Error('no broker answers');
    });
    route.failed();
    await expect(route.node(1)).rejects.toThrow('no broker answers');
    await expect(route.node(1)).rejects.toThrow('no broker answers');
    const { lookup, calls } = lookups([2, 3]);
    const other = new CoordinatorRoute(lookup);
    other.failed();
    expect(await other.node(1)).toBe(2);
    other.failed();
    expect(await other.node(1)).toBe(3);
    expect(calls).toEqual([2, 3]);
  });

  it('asks the cluster when the library has no coordinator yet', async () => {
    const { lookup } = lookups([3]);
    expect(await new CoordinatorRoute(lookup).node(null)).toBe(3);
  });
});

describe('isStaleMetadata: when a retry must ask for the leaders again', () => {
  it.each([
    ['NOT_LEADER_OR_FOLLOWER under a produce failure', () => new MultipleErrors('Producing messages failed.', [response('NOT_LEADER_OR_FOLLOWER')]), true],
    ['a node no longer in the metadata', notInMetadata, true],
    ['CONCURRENT_TRANSACTIONS', () => response('CONCURRENT_TRANSACTIONS'), false],
    ['a refused connection', () => new NetworkError('Connection to 127.0.0.1:1 failed.'), false],
  ])('%s: %s', (_name, make, stale) => {
    expect(isStaleMetadata(make())).toBe(stale);
  });
});

describe('errorTrail under Sluice errors', () => {
  it('leaves out the Sluice wrapper and shows what each attempt of the client got', () => {
    const wrapped = toSluiceError(
      new MultipleErrors('Producing messages failed.', [
        new MultipleErrors('produce failed 3 times.', [response('NOT_LEADER_OR_FOLLOWER'), response('NOT_LEADER_OR_FOLLOWER'), response('NOT_LEADER_OR_FOLLOWER')]),
      ]),
    );
    expect(errorTrail(wrapped)).toEqual(['NOT_LEADER_OR_FOLLOWER ×3']);
  });
});
