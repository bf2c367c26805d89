import { BrokerUnavailableError, KafkaError, SluiceError, type ErrorCode } from '../core/errors.ts';

/**
 * The one place client errors become Sluice's coded errors. @platformatic/kafka
 * nests its errors (a MultipleErrors of every retry, a NetworkError caused by an
 * AuthenticationError, a ResponseError holding one ProtocolError per failed
 * partition); this walks the whole tree and names the most telling cause.
 */

/** What the classification may mention: the SASL mechanism and user (never a secret). */
export interface ErrorContext {
  /** What was being done, e.g. `produce to orders.placed`; prefixes the message. */
  operation?: string;
  sasl?: { mechanism: string; username?: string | undefined };
}

interface ClientErrorShape {
  code?: unknown;
  apiId?: unknown;
  canRetry?: unknown;
  message?: unknown;
  serverErrorMessage?: unknown;
  errors?: unknown;
  cause?: unknown;
}

/** Broker error names (Kafka's protocol errors) that need more than "retryable or not"; each code's status and retryability are the catalogue's (core/errors.ts). */
const PROTOCOL_RULES: Record<string, ErrorCode> = {
  SASL_AUTHENTICATION_FAILED: 'SLUICE_KAFKA_AUTH_FAILED',
  ILLEGAL_SASL_STATE: 'SLUICE_KAFKA_AUTH_FAILED',
  UNSUPPORTED_SASL_MECHANISM: 'SLUICE_KAFKA_AUTH_FAILED',
  TOPIC_AUTHORIZATION_FAILED: 'SLUICE_KAFKA_NOT_AUTHORIZED',
  GROUP_AUTHORIZATION_FAILED: 'SLUICE_KAFKA_NOT_AUTHORIZED',
  CLUSTER_AUTHORIZATION_FAILED: 'SLUICE_KAFKA_NOT_AUTHORIZED',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'SLUICE_KAFKA_NOT_AUTHORIZED',
  UNKNOWN_TOPIC_OR_PARTITION: 'SLUICE_KAFKA_UNKNOWN_TOPIC',
  UNKNOWN_TOPIC_ID: 'SLUICE_KAFKA_UNKNOWN_TOPIC',
  TOPIC_ALREADY_EXISTS: 'SLUICE_KAFKA_TOPIC_EXISTS',
  MESSAGE_TOO_LARGE: 'SLUICE_KAFKA_RECORD_TOO_LARGE',
  RECORD_LIST_TOO_LARGE: 'SLUICE_KAFKA_RECORD_TOO_LARGE',
  CONCURRENT_TRANSACTIONS: 'SLUICE_KAFKA_CONCURRENT_TRANSACTIONS',
  INVALID_PRODUCER_EPOCH: 'SLUICE_KAFKA_FENCED',
  PRODUCER_FENCED: 'SLUICE_KAFKA_FENCED',
  TRANSACTION_COORDINATOR_FENCED: 'SLUICE_KAFKA_FENCED',
  FENCED_INSTANCE_ID: 'SLUICE_KAFKA_FENCED',
  REBALANCE_IN_PROGRESS: 'SLUICE_KAFKA_REBALANCE',
  ILLEGAL_GENERATION: 'SLUICE_KAFKA_REBALANCE',
  UNKNOWN_MEMBER_ID: 'SLUICE_KAFKA_REBALANCE',
  FENCED_MEMBER_EPOCH: 'SLUICE_KAFKA_REBALANCE',
  STALE_MEMBER_EPOCH: 'SLUICE_KAFKA_REBALANCE',
  NON_EMPTY_GROUP: 'SLUICE_KAFKA_GROUP_NOT_EMPTY',
  INVALID_PARTITIONS: 'SLUICE_KAFKA_INVALID_REQUEST',
  INVALID_REPLICATION_FACTOR: 'SLUICE_KAFKA_INVALID_REQUEST',
  INVALID_REPLICA_ASSIGNMENT: 'SLUICE_KAFKA_INVALID_REQUEST',
  INVALID_CONFIG: 'SLUICE_KAFKA_INVALID_REQUEST',
  INVALID_TOPIC_EXCEPTION: 'SLUICE_KAFKA_INVALID_REQUEST',
  POLICY_VIOLATION: 'SLUICE_KAFKA_INVALID_REQUEST',
  INVALID_REQUEST: 'SLUICE_KAFKA_INVALID_REQUEST',
  INVALID_RECORD: 'SLUICE_KAFKA_INVALID_REQUEST',
  TOPIC_DELETION_DISABLED: 'SLUICE_KAFKA_INVALID_REQUEST',
};

/** Node's TLS failures (a wrong CA, an expired or misnamed certificate) never heal by retrying. */
const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_OSSL_)/;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Broker answers meaning "ask FindCoordinator again": the coordinator moved, or is still loading its state after a move. */
const COORDINATOR_MOVED = new Set(['NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS']);

/**
 * True when a call to a coordinator failed in a way a fresh FindCoordinator can fix: the broker said it is not (or not yet)
 * the coordinator, or it could not be reached at all (refused, timed out, gone from the cluster's metadata). A protocol
 * refusal of the request itself (fenced, illegal generation) is not: asking again for the coordinator changes nothing.
 */
export function isCoordinatorUnreachable(error: unknown): boolean {
  for (const e of walk(error)) {
    if (typeof e.apiId === 'string' && COORDINATOR_MOVED.has(e.apiId)) return true;
    if (e.code === 'PLT_KFK_NETWORK' || e.code === 'PLT_KFK_TIMEOUT' || (typeof e.code === 'string' && NETWORK_CODES.has(e.code))) {
      if ((e as { closed?: unknown }).closed === true) continue;
      return true;
    }
  }
  return false;
}

/**
 * True when the client marked an error as coming from stale metadata (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
 * LEADER_NOT_AVAILABLE, FENCED_LEADER_EPOCH, or a node no longer in the metadata): the cached leaders are wrong.
 */
export function isStaleMetadata(error: unknown): boolean {
  for (const e of walk(error)) if ((e as { hasStaleMetadata?: unknown }).hasStaleMetadata === true) return true;
  return false;
}

/** Every error in the tree under `error` (itself, its causes, the errors it aggregates), depth first. */
function* walk(error: unknown, seen = new Set<unknown>()): Generator<ClientErrorShape & Error> {
  if (typeof error !== 'object' || error === null || seen.has(error)) return;
  seen.add(error);
  yield error as ClientErrorShape & Error;
  const e = error as ClientErrorShape;
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* walk(inner, seen);
  yield* walk(e.cause, seen);
}

function detail(e: ClientErrorShape): string {
  const server = typeof e.serverErrorMessage === 'string' && e.serverErrorMessage !== '' ? ` (${e.serverErrorMessage})` : '';
  return `${typeof e.apiId === 'string' ? `${e.apiId}: ` : ''}${String(e.message)}${server}`;
}

function prefixed(context: ErrorContext, message: string): string {
  return context.operation === undefined ? message : `${context.operation}: ${message}`;
}

function authMessage(context: ErrorContext, cause: string): string {
  const sasl = context.sasl;
  const who = sasl === undefined ? 'SASL authentication' : `SASL ${sasl.mechanism} authentication${sasl.username === undefined ? '' : ` as "${sasl.username}"`}`;
  return `${who} failed: ${cause}; check KAFKA_SASL_MECHANISM and the credentials`;
}

/** The SluiceError for any error a Kafka call raised (a SluiceError passes through unchanged). */
export function toSluiceError(error: unknown, context: ErrorContext = {}): SluiceError {
  if (error instanceof SluiceError) return error;
  const nodes = [...walk(error)];
  // Authentication first: it hides under a NetworkError the client would retry forever.
  const auth = nodes.find((e) => e.code === 'PLT_KFK_AUTHENTICATION' || e.apiId === 'SASL_AUTHENTICATION_FAILED');
  if (auth)
    return new KafkaError('SLUICE_KAFKA_AUTH_FAILED', prefixed(context, authMessage(context, detail(nodes.find((e) => e.apiId === 'SASL_AUTHENTICATION_FAILED') ?? auth))), {
      cause: error,
      kafkaCode: 'SASL_AUTHENTICATION_FAILED',
    });
  const tls = nodes.find((e) => (typeof e.code === 'string' && TLS_CODES.test(e.code)) || /TLS/.test(String(e.message)));
  if (tls) return new KafkaError('SLUICE_KAFKA_TLS_FAILED', prefixed(context, `TLS with the broker failed: ${describeNode(tls)}; check KAFKA_SECURITY_PROTOCOL and KAFKA_SSL_*`), { cause: error });
  // Used after close(): a bug or a shutdown race, never something a retry fixes.
  const closed = nodes.find((e) => (e as { closed?: unknown }).closed === true);
  if (closed) return new KafkaError('SLUICE_KAFKA_ERROR', prefixed(context, 'the Kafka client is closed'), { cause: error });
  // The client's own verdict after its metadata retries: the topic is not in the cluster's metadata.
  const unknownTopic = nodes.find((e) => e.code === 'PLT_KFK_USER' && /^Unknown topic/.test(String(e.message)));
  if (unknownTopic) return new KafkaError('SLUICE_KAFKA_UNKNOWN_TOPIC', prefixed(context, String(unknownTopic.message)), { cause: error, kafkaCode: 'UNKNOWN_TOPIC_OR_PARTITION' });
  const protocol = nodes.find((e) => typeof e.apiId === 'string' && PROTOCOL_RULES[e.apiId] !== undefined) ?? nodes.find((e) => typeof e.apiId === 'string');
  if (protocol && typeof protocol.apiId === 'string') {
    const code = PROTOCOL_RULES[protocol.apiId];
    if (code) return new KafkaError(code, prefixed(context, detail(protocol)), { cause: error, kafkaCode: protocol.apiId });
    const message = prefixed(context, detail(protocol));
    return protocol.canRetry === false ? new KafkaError('SLUICE_KAFKA_ERROR', message, { cause: error, kafkaCode: protocol.apiId }) : new BrokerUnavailableError(message, error, protocol.apiId);
  }
  const network = nodes.find((e) => e.code === 'PLT_KFK_NETWORK' || e.code === 'PLT_KFK_TIMEOUT' || (typeof e.code === 'string' && NETWORK_CODES.has(e.code)));
  if (network) return new BrokerUnavailableError(prefixed(context, `Kafka is unreachable: ${describeTree(nodes)}`), error);
  const root = nodes[0];
  const message = prefixed(context, root === undefined ? String(error) : describeTree(nodes));
  // SLUICE_KAFKA_ERROR's one case-by-case retryability: the client's own canRetry.
  return new KafkaError('SLUICE_KAFKA_ERROR', message, { retryable: nodes.some((e) => e.canRetry === true) && !nodes.some((e) => e.canRetry === false), cause: error });
}

function describeNode(e: ClientErrorShape): string {
  return `${typeof e.code === 'string' && !e.code.startsWith('PLT_KFK_') ? `${e.code} ` : ''}${String(e.message)}`;
}

/** The first message and the deepest distinct one: "Connection to h:p failed. (connect ECONNREFUSED h:p)". */
function describeTree(nodes: ClientErrorShape[]): string {
  const first = nodes[0];
  if (first === undefined) return 'unknown error';
  const last = nodes.at(-1)!;
  const firstText = describeNode(first);
  const lastText = describeNode(last);
  return last === first || lastText === firstText ? firstText : `${firstText} (${lastText})`;
}

/**
 * One line per distinct leaf of the client's error tree ("NOT_COORDINATOR", "PLT_KFK_NETWORK Connection to h:p failed.
 * (ECONNREFUSED)"), so a log shows what each retry of a MultipleErrors actually got instead of "failed 11 times".
 */
export function errorTrail(error: unknown, limit = 12): string[] {
  const lines = new Map<string, number>();
  for (const e of walk(error)) {
    // Aggregates and Sluice's own wrappers only repeat what is under them.
    const isBranch = (Array.isArray(e.errors) && e.errors.length > 0) || (e.cause !== undefined && (e.code === 'PLT_KFK_MULTIPLE' || e instanceof SluiceError));
    if (isBranch) continue;
    const cause = e.cause as ClientErrorShape | undefined;
    const causeCode = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
    const line =
      typeof e.apiId === 'string'
        ? `${e.apiId}${typeof e.serverErrorMessage === 'string' && e.serverErrorMessage ? `: ${e.serverErrorMessage}` : ''}`
        : `${String(e.code ?? e.name)} ${String(e.message)}${causeCode}`;
    lines.set(line, (lines.get(line) ?? 0) + 1);
  }
  return [...lines].slice(0, limit).map(([line, n]) => (n > 1 ? `${line} ×${n}` : line));
}
