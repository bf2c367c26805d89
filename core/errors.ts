/**
 * Every code a SluiceError may carry: a closed list, so logs, HTTP bodies and
 * dead-letter headers only ever show codes documented here. The registry's
 * codes carry the Confluent error code (`SLUICE_REGISTRY_40401`, ...).
 */
export const ERROR_CODES = [
  // Access control (access/).
  'SLUICE_ACCESS_FILE_INVALID',
  'SLUICE_ACCESS_FILE_MISSING',
  'SLUICE_PERMISSION_INVALID',
  'SLUICE_PASSWORD_TOO_SHORT',
  'SLUICE_PASSWORD_ABORTED',
  'SLUICE_UNAUTHENTICATED',
  'SLUICE_FORBIDDEN',
  'SLUICE_RATE_LIMITED',
  'SLUICE_INSECURE_BIND',
  'SLUICE_TRACING_STARTED',
  'SLUICE_CONFIG_INVALID',
  'SLUICE_TOPOLOGY_INVALID',
  'SLUICE_TOPOLOGY_APPLY_FAILED',
  'SLUICE_TOPOLOGY_STATE_INVALID',
  'SLUICE_TOPOLOGY_STATE_TIMEOUT',
  'SLUICE_PLAN_HAS_ERRORS',
  'SLUICE_TOPIC_EXISTS',
  'SLUICE_SCHEMA_INCOMPATIBLE',
  'SLUICE_VALIDATION_FAILED',
  'SLUICE_RULE_FAILED',
  'SLUICE_MALFORMED_BODY',
  'SLUICE_BAD_REQUEST',
  'SLUICE_INTERNAL',
  'SLUICE_NOT_READY',
  'SLUICE_DECODE_FAILED',
  'SLUICE_SCHEMA_RESOLUTION_FAILED',
  'SLUICE_REGISTRY_UNAVAILABLE',
  'SLUICE_REGISTRY_TOPIC_INVALID',
  'SLUICE_OVERLOADED',
  'SLUICE_PRODUCE_FAILED',
  'SLUICE_HANDLER_RETRYABLE',
  'SLUICE_LOCAL_KAFKA',
  'SLUICE_BODY_TOO_LARGE',
  'SLUICE_UNSUPPORTED_MEDIA_TYPE',
  'SLUICE_NOT_FOUND',
  'SLUICE_SHUTTING_DOWN',
  'SLUICE_WORKER_INVALID',
  'SLUICE_UNKNOWN_WORKER',
  'SLUICE_DLQ_REPLAY',
  'SLUICE_RESERVED_HEADER',
  'SLUICE_TRANSACTION_ABORTED',
  'SLUICE_OUTPUT_TOO_LARGE',
  'SLUICE_SHUTDOWN_TIMEOUT',
  'SLUICE_FILTER_INVALID',
  'SLUICE_TAIL_POSITION',
  'SLUICE_DISCOVERY_UNAVAILABLE',
  'SLUICE_LOCAL_ETCD',
  'SLUICE_BRIDGE',
  'SLUICE_UNKNOWN_BRIDGE',
  'SLUICE_LB',
  'SLUICE_IDEMPOTENCY_KEY_IN_USE',
  'SLUICE_IDEMPOTENCY_KEY_REUSED',
  // Kafka, as classified by kafka/errors.ts (the only place client errors are read).
  'SLUICE_BROKER_UNAVAILABLE',
  'SLUICE_KAFKA_AUTH_FAILED',
  'SLUICE_KAFKA_NOT_AUTHORIZED',
  'SLUICE_KAFKA_TLS_FAILED',
  'SLUICE_KAFKA_UNKNOWN_TOPIC',
  'SLUICE_KAFKA_TOPIC_EXISTS',
  'SLUICE_KAFKA_RECORD_TOO_LARGE',
  'SLUICE_KAFKA_INVALID_REQUEST',
  'SLUICE_KAFKA_CONCURRENT_TRANSACTIONS',
  'SLUICE_KAFKA_FENCED',
  'SLUICE_KAFKA_REBALANCE',
  'SLUICE_KAFKA_GROUP_NOT_EMPTY',
  'SLUICE_KAFKA_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number] | `SLUICE_REGISTRY_${number}`;

/** Whether `code` is one of Sluice's codes (a header or an HTTP body read back). */
export function isErrorCode(code: string): code is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code) || /^SLUICE_REGISTRY_\d+$/.test(code);
}

/**
 * Every error Sluice raises on purpose. Each carries a stable `code` (for logs,
 * HTTP bodies and dead-letter headers) and says whether retrying can help:
 * retryable errors are transient (network, broker, timeouts); fatal ones will
 * fail the same way again (bad input, bad configuration, undecodable bytes).
 */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** HTTP status to answer with when this error reaches an HTTP boundary. */
  readonly statusCode: number;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; statusCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.statusCode = options.statusCode ?? 500;
  }
}

/** A configuration option (environment variable or flag) has a value Sluice cannot use. */
export class ConfigError extends SluiceError {
  readonly option: string;
  constructor(option: string, message: string) {
    super('SLUICE_CONFIG_INVALID', `${option}: ${message}`);
    this.option = option;
  }
}

export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
}

/** The topology file is malformed or refers to something that does not exist. */
export class TopologyError extends SluiceError {
  readonly location: SourceLocation;
  readonly path: string;
  constructor(location: SourceLocation, path: string, message: string) {
    const where = location.line === undefined ? location.file : `${location.file}:${location.line}:${location.column ?? 1}`;
    super('SLUICE_TOPOLOGY_INVALID', `${where}: ${path ? `${path}: ` : ''}${message}`);
    this.location = location;
    this.path = path;
  }
}

export interface FieldViolation {
  /** Path of the offending field, e.g. `items[2].quantity`; empty for the whole value. */
  path: string;
  message: string;
  /** Position of the event within a batch, when the violation belongs to one. */
  index?: number;
}

/** An event does not satisfy its Avro contract. */
export class ValidationError extends SluiceError {
  readonly violations: FieldViolation[];
  constructor(violations: FieldViolation[], message?: string) {
    const first = violations[0];
    super('SLUICE_VALIDATION_FAILED', message ?? (first ? `${first.path || '(root)'}: ${first.message}` : 'invalid event'), {
      statusCode: 400,
    });
    this.violations = violations;
  }
}

/** Where a data-contract rule refused an event: the rule, the subject version it belongs to, the field (CEL_FIELD) and, in a batch, the event's index. */
export interface RuleViolation {
  rule: string;
  subject: string;
  version: number;
  reason: string;
  field?: string;
  index?: number;
}

/** An event broke a rule of its schema's data contract whose action is ERROR (422: the event is well-formed, its meaning is refused). */
export class RuleViolationError extends SluiceError {
  readonly violations: RuleViolation[];
  constructor(violations: RuleViolation[], message: string) {
    super('SLUICE_RULE_FAILED', message, { statusCode: 422 });
    this.violations = violations;
  }
}

/** A request body could not be parsed at all. */
export class MalformedBodyError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_MALFORMED_BODY', message, { statusCode: 400, cause });
  }
}

/** Bytes on a topic are not a Confluent-framed Avro record Sluice can read. */
export class DecodeError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_DECODE_FAILED', message, { cause });
  }
}

/** The writer's schema cannot be resolved to the reader's schema. */
export class SchemaResolutionError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_SCHEMA_RESOLUTION_FAILED', message, { cause });
  }
}

/** The schema registry answered with an error. `errorCode` is the Confluent error code. */
export class RegistryError extends SluiceError {
  readonly errorCode: number;
  readonly httpStatus: number;
  constructor(httpStatus: number, errorCode: number, message: string) {
    super(`SLUICE_REGISTRY_${errorCode}`, message, { retryable: httpStatus >= 500, statusCode: httpStatus });
    this.errorCode = errorCode;
    this.httpStatus = httpStatus;
  }
}

/** The schema registry could not be reached. */
export class RegistryUnavailableError extends SluiceError {
  constructor(url: string, cause?: unknown) {
    super('SLUICE_REGISTRY_UNAVAILABLE', `schema registry at ${url} is unreachable: ${describeCause(cause)}`, {
      retryable: true,
      statusCode: 503,
      cause,
    });
  }
}

/**
 * A Kafka call failed; kafka/errors.ts is the only place that builds one from a
 * client error. `kafkaCode` is the broker's error name (e.g. CONCURRENT_TRANSACTIONS)
 * when the broker answered with one.
 */
export class KafkaError extends SluiceError {
  readonly kafkaCode: string | undefined;
  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; statusCode?: number; cause?: unknown; kafkaCode?: string } = {}) {
    super(code, message, { retryable: options.retryable ?? false, statusCode: options.statusCode ?? 500, cause: options.cause });
    this.kafkaCode = options.kafkaCode;
  }
}

/** Kafka did not acknowledge in time or could not be reached. */
export class BrokerUnavailableError extends KafkaError {
  constructor(message: string, cause?: unknown, kafkaCode?: string) {
    super('SLUICE_BROKER_UNAVAILABLE', message, { retryable: true, statusCode: 503, cause, kafkaCode });
  }
}

/** More work is queued than the process accepts; the caller should back off. */
export class OverloadedError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_OVERLOADED', message, { retryable: true, statusCode: 503 });
  }
}

/** A worker handler asks for the record to be tried again (e.g. a downstream call timed out). */
export class RetryableError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_HANDLER_RETRYABLE', message, { retryable: true, cause });
  }
}

/** The local broker cannot be provisioned or started. */
export class LocalKafkaError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_LOCAL_KAFKA', message, { cause });
  }
}

/** A request body is larger than the configured limit. */
export class PayloadTooLargeError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_BODY_TOO_LARGE', message, { statusCode: 413, cause });
  }
}

/** A request body has a content type the endpoint does not read. */
export class UnsupportedMediaTypeError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_UNSUPPORTED_MEDIA_TYPE', message, { statusCode: 415, cause });
  }
}

/** No endpoint answers this method and path. */
export class NotFoundError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_NOT_FOUND', message, { statusCode: 404 });
  }
}

/** The ingress is shutting down and takes no more events. */
/** A request with the same Idempotency-Key is still being processed (IETF httpapi idempotency-key draft: 409). */
export class IdempotencyKeyInUseError extends SluiceError {
  constructor() {
    super('SLUICE_IDEMPOTENCY_KEY_IN_USE', 'a request with this Idempotency-Key is still in progress; retry once it has been answered', { retryable: true, statusCode: 409 });
  }
}

/** An Idempotency-Key was used before with a different request body (the draft: 422). */
export class IdempotencyKeyReusedError extends SluiceError {
  constructor() {
    super('SLUICE_IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used with a different request; use a new key for a new request', { statusCode: 422 });
  }
}

export class ShuttingDownError extends SluiceError {
  constructor() {
    super('SLUICE_SHUTTING_DOWN', 'the ingress is shutting down; retry against another instance', { retryable: true, statusCode: 503 });
  }
}

/** A worker's declaration cannot be run (e.g. its topics have no schema). */
export class WorkerConfigError extends SluiceError {
  constructor(worker: string, message: string) {
    super('SLUICE_WORKER_INVALID', `worker ${worker}: ${message}`);
  }
}

/** A dead letter cannot be replayed as asked (no original topic header and no --to, or a bad target). */
export class DeadLetterReplayError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_DLQ_REPLAY', message);
  }
}

/**
 * A message from outside (an AMQP message through the bridge) carries headers
 * whose names are reserved for Sluice (`sluice.*`): refused, to the dead-letter
 * topic, since Sluice alone sets them (who produced, where a dead letter came from).
 */
export class ReservedHeaderError extends SluiceError {
  readonly headers: readonly string[];
  constructor(headers: readonly string[], entry: string) {
    super('SLUICE_RESERVED_HEADER', `${entry}: header(s) ${headers.map((h) => JSON.stringify(h.slice(0, 100))).join(', ')} are reserved for Sluice and cannot be set from outside`, {
      statusCode: 400,
    });
    this.headers = headers;
  }
}

/** A Kafka transaction of an exactly-once worker failed and was aborted; its inputs are processed again. */
export class TransactionAbortedError extends SluiceError {
  constructor(transactionalId: string, cause: unknown) {
    super('SLUICE_TRANSACTION_ABORTED', `transaction ${transactionalId} aborted: ${describeCause(cause)}`, { retryable: true, cause });
  }
}

/** A worker record's outputs are too big to be produced in one request; it is dead-lettered rather than retried forever. */
export class OutputTooLargeError extends SluiceError {
  constructor(bytes: number, limitBytes: number) {
    super('SLUICE_OUTPUT_TOO_LARGE', `the record's outputs take ${bytes} bytes, over the worker's limit of ${limitBytes} bytes per chunk (SLUICE_WORKER_BATCH_BYTES)`);
  }
}

/** A graceful stop did not finish within its budget. */
export class ShutdownTimeoutError extends SluiceError {
  constructor(what: string, timeoutMs: number) {
    super('SLUICE_SHUTDOWN_TIMEOUT', `${what} did not stop within ${timeoutMs} ms`);
  }
}

const RETRYABLE_NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

/**
 * Whether an error from anywhere is worth retrying: Sluice's own flag (Kafka
 * errors get theirs in kafka/errors.ts), or a Node network errno.
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof SluiceError) return error.retryable;
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code);
}

/** A short class name for an error, used in logs and dead-letter headers. */
export function errorClass(error: unknown): string {
  if (error instanceof SluiceError) return error.code;
  if (error instanceof Error) return error.name;
  return typeof error;
}

export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    const inner = cause.cause instanceof Error ? ` (${cause.cause.message})` : '';
    return `${typeof code === 'string' ? `${code} ` : ''}${cause.message}${inner}`;
  }
  return String(cause);
}

/**
 * An error Sluice's own schema registry answers with: the HTTP status and the
 * Confluent `error_code`, so Confluent clients read it as they would Confluent's.
 * (RegistryError is the client-side counterpart: an answer received, not sent.)
 */
export class RegistryHttpError extends SluiceError {
  readonly errorCode: number;
  constructor(httpStatus: number, errorCode: number, message: string, cause?: unknown) {
    super(`SLUICE_REGISTRY_${errorCode}`, message, { retryable: httpStatus >= 500, statusCode: httpStatus, cause });
    this.errorCode = errorCode;
  }

  static subjectNotFound(subject: string): RegistryHttpError {
    return new RegistryHttpError(404, 40401, `Subject '${subject}' not found.`);
  }
  static versionNotFound(subject: string, version: number | string): RegistryHttpError {
    return new RegistryHttpError(404, 40402, `Version ${version} not found for subject '${subject}'.`);
  }
  static schemaNotFound(detail = 'Schema not found'): RegistryHttpError {
    return new RegistryHttpError(404, 40403, detail);
  }
  static subjectSoftDeleted(subject: string): RegistryHttpError {
    return new RegistryHttpError(404, 40404, `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently`);
  }
  static subjectNotSoftDeleted(subject: string): RegistryHttpError {
    return new RegistryHttpError(404, 40405, `Subject '${subject}' was not deleted first before being permanently deleted`);
  }
  static versionSoftDeleted(subject: string, version: number): RegistryHttpError {
    return new RegistryHttpError(404, 40406, `Subject '${subject}' Version ${version} was soft deleted. Set permanent=true to delete permanently`);
  }
  static versionNotSoftDeleted(subject: string, version: number): RegistryHttpError {
    return new RegistryHttpError(404, 40407, `Subject '${subject}' Version ${version} was not deleted first before being permanently deleted`);
  }
  static subjectLevelCompatibilityNotConfigured(subject: string): RegistryHttpError {
    return new RegistryHttpError(404, 40408, `Subject '${subject}' does not have subject-level compatibility configured`);
  }
  static incompatible(message: string): RegistryHttpError {
    return new RegistryHttpError(409, 409, message);
  }
  static invalidSchema(message: string, cause?: unknown): RegistryHttpError {
    return new RegistryHttpError(422, 42201, message, cause);
  }
  static invalidVersion(version: string): RegistryHttpError {
    return new RegistryHttpError(422, 42202, `The specified version '${version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`);
  }
  static invalidCompatibilityLevel(level: unknown, valid: readonly string[]): RegistryHttpError {
    return new RegistryHttpError(422, 42203, `Invalid compatibility level ${JSON.stringify(level)}. Valid values are ${valid.join(', ')}`);
  }
  static invalidMode(mode: unknown, valid: readonly string[]): RegistryHttpError {
    return new RegistryHttpError(422, 42204, `Invalid mode ${JSON.stringify(mode)}. Valid values are ${valid.join(', ')}`);
  }
  static operationNotPermitted(message: string): RegistryHttpError {
    return new RegistryHttpError(422, 42205, message);
  }
  static referenceExists(message: string): RegistryHttpError {
    return new RegistryHttpError(422, 42206, message);
  }
  static subjectLevelModeNotConfigured(subject: string): RegistryHttpError {
    return new RegistryHttpError(404, 40409, `Subject '${subject}' does not have subject-level mode configured`);
  }
  static storeError(message: string, cause?: unknown): RegistryHttpError {
    return new RegistryHttpError(500, 50001, message, cause);
  }
  static timeout(message: string, cause?: unknown): RegistryHttpError {
    return new RegistryHttpError(500, 50002, message, cause);
  }
}

/** The service-discovery backend (etcd) could not be reached or refused a request. */
export class DiscoveryUnavailableError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_DISCOVERY_UNAVAILABLE', message, { retryable: true, statusCode: 503, cause });
  }
}

/** The local etcd cannot be started. */
export class LocalEtcdError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_LOCAL_ETCD', message, { cause });
  }
}

/** A RabbitMQ bridge cannot run as declared, or a message cannot cross it. */
export class BridgeError extends SluiceError {
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super('SLUICE_BRIDGE', message, options);
  }
}

/** The load balancer (HAProxy) cannot be configured, started or reloaded. */
export class LoadBalancerError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_LB', message, { cause });
  }
}

/** The access file is malformed; the message names file:line:column. */
export class AccessFileError extends SluiceError {
  constructor(location: SourceLocation, path: string, message: string) {
    const where = location.line === undefined ? location.file : `${location.file}:${location.line}:${location.column ?? 1}`;
    super('SLUICE_ACCESS_FILE_INVALID', `${where}: ${path ? `${path}: ` : ''}${message}`);
  }
}

/** A request came without credentials, or with ones that are not valid. */
export class UnauthenticatedError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_UNAUTHENTICATED', message, { statusCode: 401 });
  }
}

/** A request's principal lacks the permission the route needs. */
export class ForbiddenError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_FORBIDDEN', message, { statusCode: 403 });
  }
}

/** A principal made more requests than its rate limit allows. */
export class RateLimitedError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_RATE_LIMITED', message, { retryable: true, statusCode: 429 });
  }
}

/** An HTTP service would be reachable from other hosts with nobody's access checked. */
export class InsecureBindError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_INSECURE_BIND', message);
  }
}
