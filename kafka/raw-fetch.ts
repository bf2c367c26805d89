import {
  Consumer,
  createAPI,
  fetchV12,
  fetchV13,
  fetchV14,
  fetchV15,
  fetchV16,
  fetchV17,
  kGetApi,
  kPerformWithRetry,
  readKnownTaggedFields,
  ResponseError,
  UnsupportedApiError,
  type API,
  type Callback,
  type CallbackWithPromise,
  type Reader,
} from '@platformatic/kafka';

/**
 * A Consumer whose Fetch responses keep each partition's records as the bytes the broker sent (Kafka's record
 * batches, in `records`), for record-codec.ts to walk. The client parses every record into an object with its own
 * key, value, header arrays and bigints before anyone looks at it: for `sluice tail` that parsing and its garbage
 * were most of the CPU per record. Everything else about the client's fetch is kept as it is (metadata, leaders,
 * fetch sessions, retries, errors): only the Fetch API it picks is swapped for one with the same request and this
 * response parser. read_committed filtering is the codec's (the client's own filter skips a partition without parsed
 * records).
 */

/** One partition of a Fetch response as this consumer returns it. */
export interface RawFetchedPartition {
  partitionIndex: number;
  errorCode: number;
  highWatermark: bigint;
  lastStableOffset: bigint;
  logStartOffset: bigint;
  abortedTransactions: { producerId: bigint; firstOffset: bigint }[] | null;
  preferredReadReplica: number;
  /**
   * The partition's record batches as fetched (the last one may be cut short by the size limits): one Buffer, or the
   * pieces they arrived in (socket chunks, in order); null when none.
   */
  records: Buffer | readonly Buffer[] | null;
}

export interface RawFetchResponse {
  throttleTimeMs: number;
  errorCode: number;
  sessionId: number;
  nodeEndpoints: { nodeId: number; host: string; port: number; rack: string | null }[];
  responses: { topicId: string; partitions: RawFetchedPartition[] }[];
}

/** The flexible Fetch versions (Kafka 2.7+): one response layout; up to v12 topics are named, from v13 identified by id. */
const REQUESTS = new Map<number, (...args: never[]) => unknown>([
  [12, fetchV12.createRequest],
  [13, fetchV13.createRequest],
  [14, fetchV14.createRequest],
  [15, fetchV15.createRequest],
  [16, fetchV16.createRequest],
  [17, fetchV17.createRequest],
]);

function parser(version: number) {
  return (_correlationId: number, apiKey: number, apiVersion: number, reader: Reader): RawFetchResponse => {
    const errors: [string, [number, null]][] = [];
    const throttleTimeMs = reader.readInt32();
    const errorCode = reader.readInt16();
    if (errorCode !== 0) errors.push(['', [errorCode, null]]);
    const response: RawFetchResponse = {
      throttleTimeMs,
      errorCode,
      sessionId: reader.readInt32(),
      nodeEndpoints: [],
      responses: reader.readArray((r, i) => ({
        topicId: version >= 13 ? r.readUUID() : r.readString(),
        partitions: r.readArray(
          (r, j) => {
            const partition: RawFetchedPartition = {
              partitionIndex: r.readInt32(),
              errorCode: r.readInt16(),
              highWatermark: r.readInt64(),
              lastStableOffset: r.readInt64(),
              logStartOffset: r.readInt64(),
              abortedTransactions: r.readNullableArray((r) => ({ producerId: r.readInt64(), firstOffset: r.readInt64() })),
              preferredReadReplica: r.readInt32(),
              records: null,
            };
            if (partition.errorCode !== 0) errors.push([`/responses/${i}/partitions/${j}`, [partition.errorCode, null]]);
            // COMPACT_RECORDS: length + 1, 0 for null.
            const size = r.readUnsignedVarInt() - 1;
            if (size > 0) {
              // Views of the socket chunks the bytes arrived in, not a copy of them into one Buffer: that copy (and the
              // garbage collections its memory brought on) was a tenth of the read path's CPU. FetchedRecords copies
              // only the batches that span two chunks.
              const pieces = r.buffer.subarray(r.position, r.position + size).buffers;
              partition.records = pieces.length === 1 ? pieces[0]! : pieces;
              r.skip(size);
            }
            // diverging_epoch, current_leader and snapshot_id: nothing a reader here uses.
            readKnownTaggedFields(r, {});
            return partition;
            // Compact, and the partition's tagged fields are read above (not discarded by readArray).
          },
          true,
          false,
        ),
      })),
    };
    readKnownTaggedFields(reader, {
      0: (r) => {
        response.nodeEndpoints = r.readArray((r) => ({ nodeId: r.readInt32(), host: r.readString(), port: r.readInt32(), rack: r.readNullableString() }));
      },
    });
    if (errors.length > 0) throw new ResponseError(apiKey, apiVersion, Object.fromEntries(errors), response);
    return response;
  };
}

const rawApis = new Map<number, API<unknown[], RawFetchResponse>>();

function rawFetchApi(version: number): API<unknown[], RawFetchResponse> | undefined {
  const createRequest = REQUESTS.get(version);
  if (createRequest === undefined) return undefined;
  let api = rawApis.get(version);
  if (api === undefined) {
    api = createAPI(1, version, createRequest as (...args: unknown[]) => never, parser(version) as never) as unknown as API<unknown[], RawFetchResponse>;
    rawApis.set(version, api);
  }
  return api;
}

type FetchOptions = Parameters<Consumer['fetch']>[0];

export class RawFetchConsumer extends Consumer {
  /**
   * Whether each fetch() is one attempt (the caller retries, having planned again by the leaders it reads then). The
   * client's own retry of a fetch re-resolves the partitions' leader on every attempt but keeps the one call: after a
   * broker stopped, the call its reader had made to it went on to the new leader, beside the reader's own call there,
   * and the two shared the client's fetch session for that broker (KIP-227: one request at a time), so the broker
   * answered INVALID_FETCH_SESSION_EPOCH to every attempt of the one or the other until the retries ran out: a
   * worker's partitions from the stopped broker read nothing for 54 s in a rolling restart (2026-12-08).
   */
  singleAttemptFetch = false;

  override [kPerformWithRetry]<ReturnType>(
    operationId: string,
    operation: (callback: Callback<ReturnType>, attempt: number) => void,
    callback: CallbackWithPromise<ReturnType>,
    attempt?: number,
    errors?: Error[],
    shouldSkipRetry?: (e: Error) => boolean,
    retryLimit?: number,
  ): void | Promise<ReturnType> {
    const limit = this.singleAttemptFetch && operationId === 'fetch' ? 0 : retryLimit;
    return super[kPerformWithRetry](operationId, operation, callback, attempt, errors, shouldSkipRetry, limit);
  }

  override [kGetApi]<RequestArguments extends Array<unknown>, ResponseType>(name: string, callback: Callback<API<RequestArguments, ResponseType>>): void {
    if (name !== 'Fetch') {
      super[kGetApi](name, callback);
      return;
    }
    super[kGetApi]<RequestArguments, ResponseType>(name, (error, api) => {
      if (error) {
        callback(error, undefined as never);
        return;
      }
      const raw = rawFetchApi(api!.version);
      if (raw === undefined) {
        callback(new UnsupportedApiError(`Sluice reads with Fetch v12 or later (Kafka 2.7+); the broker offers v${api!.version}`), undefined as never);
        return;
      }
      callback(null, raw as unknown as API<RequestArguments, ResponseType>);
    });
  }

  /** Consumer.fetch, typed as what this consumer's Fetch returns. */
  fetchRaw(options: FetchOptions): Promise<RawFetchResponse>;
  fetchRaw(options: FetchOptions, callback: (error: Error | null, response: RawFetchResponse | undefined) => void): void;
  fetchRaw(options: FetchOptions, callback?: (error: Error | null, response: RawFetchResponse | undefined) => void): Promise<RawFetchResponse> | void {
    if (callback === undefined) return this.fetch(options) as unknown as Promise<RawFetchResponse>;
    this.fetch(options, callback as never);
  }
}
