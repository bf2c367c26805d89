/** How a code answers at an HTTP boundary, and whether retrying can help (transient) or not (it fails the same way again). */
export interface ErrorSpec {
  readonly status: number;
  readonly retryable: boolean;
}

const fatal = (status = 500): ErrorSpec => ({ status, retryable: false });
const transient = (status = 500): ErrorSpec => ({ status, retryable: true });

/**
 * The catalogue: every code a SluiceError may carry, each declaring its HTTP
 * status and retryability once (as fastify's createError and the Kafka
 * client's `canRetry` codes do), so logs, HTTP bodies and dead-letter headers
 * only ever show codes documented here. The registry's codes carry the
 * Confluent error code (`SLUICE_REGISTRY_40401`, ...) and take their status from it.
 */
export const ERRORS = {
  // Access control (access/).
  SLUICE_ACCESS_FILE_INVALID: fatal(),
  SLUICE_ACCESS_FILE_MISSING: fatal(),
  SLUICE_PERMISSION_INVALID: fatal(),
  SLUICE_PASSWORD_TOO_SHORT: fatal(),
  SLUICE_PASSWORD_ABORTED: fatal(),
  SLUICE_UNAUTHENTICATED: fatal(401),
  SLUICE_FORBIDDEN: fatal(403),
  SLUICE_RATE_LIMITED: transient(429),
  SLUICE_INSECURE_BIND: fatal(),
  SLUICE_TRACING_STARTED: fatal(),
  SLUICE_CONFIG_INVALID: fatal(),
  SLUICE_TOPOLOGY_INVALID: fatal(),
  // Applying again after a failed action is how `apply` recovers (the plan is idempotent).
  SLUICE_TOPOLOGY_APPLY_FAILED: transient(),
  SLUICE_TOPOLOGY_STATE_INVALID: fatal(),
  SLUICE_TOPOLOGY_STATE_TIMEOUT: transient(),
  SLUICE_PLAN_HAS_ERRORS: fatal(),
  SLUICE_TOPIC_EXISTS: fatal(),
  SLUICE_SCHEMA_INCOMPATIBLE: fatal(),
  SLUICE_VALIDATION_FAILED: fatal(400),
  // A data-contract rule (rules/) refused the event: the caller is told which rule, subject, version and field.
  SLUICE_RULE_FAILED: fatal(422),
  SLUICE_MALFORMED_BODY: fatal(400),
  SLUICE_BAD_REQUEST: fatal(400),
  SLUICE_INTERNAL: fatal(),
  SLUICE_NOT_READY: transient(503),
  SLUICE_DECODE_FAILED: fatal(),
  SLUICE_SCHEMA_RESOLUTION_FAILED: fatal(),
  SLUICE_REGISTRY_UNAVAILABLE: transient(503),
  SLUICE_REGISTRY_TOPIC_INVALID: fatal(),
  SLUICE_OVERLOADED: transient(503),
  SLUICE_PRODUCE_FAILED: fatal(),
  SLUICE_HANDLER_RETRYABLE: transient(),
  SLUICE_LOCAL_KAFKA: fatal(),
  SLUICE_BODY_TOO_LARGE: fatal(413),
  SLUICE_UNSUPPORTED_MEDIA_TYPE: fatal(415),
  SLUICE_NOT_FOUND: fatal(404),
  SLUICE_SHUTTING_DOWN: transient(503),
  SLUICE_WORKER_INVALID: fatal(),
  SLUICE_UNKNOWN_WORKER: fatal(),
  // Over HTTP (the console) a replay that cannot be done conflicts with the letter's headers.
  SLUICE_DLQ_REPLAY: fatal(409),
  SLUICE_RESERVED_HEADER: fatal(400),
  SLUICE_TRANSACTION_ABORTED: transient(),
  SLUICE_OUTPUT_TOO_LARGE: fatal(),
  SLUICE_SHUTDOWN_TIMEOUT: fatal(),
  SLUICE_FILTER_INVALID: fatal(),
  SLUICE_TAIL_POSITION: fatal(),
  SLUICE_DISCOVERY_UNAVAILABLE: transient(503),
  SLUICE_LOCAL_ETCD: fatal(),
  SLUICE_BRIDGE: fatal(),
  SLUICE_UNKNOWN_BRIDGE: fatal(),
  SLUICE_LB: fatal(),
  SLUICE_IDEMPOTENCY_KEY_IN_USE: transient(409),
  SLUICE_IDEMPOTENCY_KEY_REUSED: fatal(422),
  // Kafka, as classified by kafka/errors.ts (the only place client errors are read).
  SLUICE_BROKER_UNAVAILABLE: transient(503),
  SLUICE_KAFKA_AUTH_FAILED: fatal(503),
  SLUICE_KAFKA_NOT_AUTHORIZED: fatal(503),
  SLUICE_KAFKA_TLS_FAILED: fatal(503),
  // Retryable: while a topic is being created its partitions appear one by one.
  SLUICE_KAFKA_UNKNOWN_TOPIC: transient(503),
  SLUICE_KAFKA_TOPIC_EXISTS: fatal(),
  SLUICE_KAFKA_RECORD_TOO_LARGE: fatal(413),
  SLUICE_KAFKA_INVALID_REQUEST: fatal(400),
  SLUICE_KAFKA_CONCURRENT_TRANSACTIONS: transient(),
  SLUICE_KAFKA_FENCED: fatal(),
  SLUICE_KAFKA_REBALANCE: transient(),
  SLUICE_KAFKA_GROUP_NOT_EMPTY: fatal(409),
  // Anything else the client raised; whether it can be retried is the client's own `canRetry` (see KafkaError).
  SLUICE_KAFKA_ERROR: fatal(),
} as const satisfies Record<string, ErrorSpec>;

type CatalogueCode = keyof typeof ERRORS;
export type ErrorCode = CatalogueCode | `SLUICE_REGISTRY_${number}`;

export const ERROR_CODES = Object.keys(ERRORS) as readonly CatalogueCode[];

const REGISTRY_CODE = /^SLUICE_REGISTRY_(\d+)$/;

/** Whether `code` is one of Sluice's codes (a header or an HTTP body read back). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code) || REGISTRY_CODE.test(code);
}

/** The HTTP status a Confluent error code stands for: its first three digits (40401 is a 404, 409 a 409). */
export function registryStatus(errorCode: number): number {
  return Number(String(errorCode).slice(0, 3));
}

/** What the catalogue declares for `code`; a registry code's status comes from its Confluent error code, and 5xx ones are transient. */
export function errorSpec(code: ErrorCode): ErrorSpec {
  const registry = REGISTRY_CODE.exec(code);
  if (!registry) return ERRORS[code as CatalogueCode];
  const status = registryStatus(Number(registry[1]));
  return { status, retryable: status >= 500 };
}

/**
 * Only where the answer depends on the case rather than the code: a framework's
 * own 4xx status, or the Kafka client's `canRetry` on an error it raised.
 */
export interface ErrorOverrides {
  retryable?: boolean;
  statusCode?: number;
}

/**
 * Every error Sluice raises on purpose. Each carries a stable `code` (for logs,
 * HTTP bodies and dead-letter headers); its status and retryability are the catalogue's.
 */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** HTTP status to answer with when this error reaches an HTTP boundary. */
  readonly statusCode: number;

  constructor(code: ErrorCode, message: string, options: ErrorOverrides & { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const spec = errorSpec(code);
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? spec.retryable;
    this.statusCode = options.statusCode ?? spec.status;
  }
}

/** A request Sluice cannot serve as asked (a bad parameter, header or query); the message names what. */
export class BadRequestError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_BAD_REQUEST', message, { cause });
  }
}

/** A query parameter (or header) of the HTTP read path has a value it cannot use. */
export class BadParameterError extends BadRequestError {
  readonly parameter: string;
  constructor(parameter: string, message: string) {
    super(`${parameter}: ${message}`);
    this.parameter = parameter;
  }
}

/** An Idempotency-Key header Sluice cannot use. */
export class IdempotencyKeyError extends BadRequestError {
  constructor(message: string) {
    super(`Idempotency-Key: ${message}`);
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
    super('SLUICE_VALIDATION_FAILED', message ?? (first ? `${first.path || '(root)'}: ${first.message}` : 'invalid event'));
    this.violations = violations;
  }
}

/** Where a data-contract rule refused an event: the rule, the subject version it belongs to, the field (CEL_FIELD) and, in a batch, the event's index. */
export interface RuleViolation {
  rule: string;
  subject: string;
  version: number;
  reason: string;
  /** The mode the rule ran in (WRITE, READ, UPGRADE, DOWNGRADE): set by the workers, whose dead letters name it. */
  mode?: string;
  field?: string;
  index?: number;
}

/** An event broke a rule of its schema's data contract whose action is ERROR (422: the event is well-formed, its meaning is refused). */
export class RuleViolationError extends SluiceError {
  readonly violations: RuleViolation[];
  constructor(violations: RuleViolation[], message: string) {
    super('SLUICE_RULE_FAILED', message);
    this.violations = violations;
  }
}

/** A request body could not be parsed at all. */
export class MalformedBodyError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_MALFORMED_BODY', message, { cause });
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

/** The schema registry could not be reached. */
export class RegistryUnavailableError extends SluiceError {
  constructor(url: string, cause?: unknown) {
    super('SLUICE_REGISTRY_UNAVAILABLE', `schema registry at ${url} is unreachable: ${describeCause(cause)}`, { cause });
  }
}

/**
 * A Kafka call failed; kafka/errors.ts is the only place that builds one from a
 * client error. `kafkaCode` is the broker's error name (e.g. CONCURRENT_TRANSACTIONS)
 * when the broker answered with one.
 */
export class KafkaError extends SluiceError {
  readonly kafkaCode: string | undefined;
  constructor(code: ErrorCode, message: string, options: ErrorOverrides & { cause?: unknown; kafkaCode?: string } = {}) {
    super(code, message, options);
    this.kafkaCode = options.kafkaCode;
  }
}

/** Kafka did not acknowledge in time or could not be reached. */
export class BrokerUnavailableError extends KafkaError {
  constructor(message: string, cause?: unknown, kafkaCode?: string) {
    super('SLUICE_BROKER_UNAVAILABLE', message, { cause, kafkaCode });
  }
}

/** More work is queued than the process accepts; the caller should back off. */
export class OverloadedError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_OVERLOADED', message);
  }
}

/** A worker handler asks for the record to be tried again (e.g. a downstream call timed out). */
export class RetryableError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_HANDLER_RETRYABLE', message, { cause });
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
    super('SLUICE_BODY_TOO_LARGE', message, { cause });
  }
}

/** A request body has a content type the endpoint does not read. */
export class UnsupportedMediaTypeError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_UNSUPPORTED_MEDIA_TYPE', message, { cause });
  }
}

/** No endpoint answers this method and path. */
export class NotFoundError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_NOT_FOUND', message);
  }
}

/** A request with the same Idempotency-Key is still being processed (IETF httpapi idempotency-key draft: 409). */
export class IdempotencyKeyInUseError extends SluiceError {
  constructor() {
    super('SLUICE_IDEMPOTENCY_KEY_IN_USE', 'a request with this Idempotency-Key is still in progress; retry once it has been answered');
  }
}

/** An Idempotency-Key was used before with a different request body (the draft: 422). */
export class IdempotencyKeyReusedError extends SluiceError {
  constructor() {
    super('SLUICE_IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used with a different request; use a new key for a new request');
  }
}

/** The ingress is shutting down and takes no more events. */
export class ShuttingDownError extends SluiceError {
  constructor() {
    super('SLUICE_SHUTTING_DOWN', 'the ingress is shutting down; retry against another instance');
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
    super('SLUICE_RESERVED_HEADER', `${entry}: header(s) ${headers.map((h) => JSON.stringify(h.slice(0, 100))).join(', ')} are reserved for Sluice and cannot be set from outside`);
    this.headers = headers;
  }
}

/** A Kafka transaction of an exactly-once worker failed and was aborted; its inputs are processed again. */
export class TransactionAbortedError extends SluiceError {
  constructor(transactionalId: string, cause: unknown) {
    super('SLUICE_TRANSACTION_ABORTED', `transaction ${transactionalId} aborted: ${describeCause(cause)}`, { cause });
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

/**
 * A bug, not a condition: retrying runs into it again (as kafkajs's retrier
 * refuses to). A TypeError with a cause is a library's wrapped failure (fetch's
 * "fetch failed"), not one.
 */
export function isProgrammingError(error: unknown): boolean {
  if (error instanceof TypeError) return error.cause === undefined;
  return error instanceof RangeError || error instanceof ReferenceError || error instanceof SyntaxError || error instanceof EvalError || error instanceof URIError;
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
 * A schema registry error, answered (by Sluice's registry) or received (by its
 * client): the Confluent `error_code`, whose first three digits are the HTTP
 * status, so Confluent clients read it as they would Confluent's.
 */
export class RegistryError extends SluiceError {
  readonly errorCode: number;
  constructor(errorCode: number, message: string, cause?: unknown) {
    super(`SLUICE_REGISTRY_${errorCode}`, message, { cause });
    this.errorCode = errorCode;
  }

  static subjectNotFound(subject: string): RegistryError {
    return new RegistryError(40401, `Subject '${subject}' not found.`);
  }
  static versionNotFound(subject: string, version: number | string): RegistryError {
    return new RegistryError(40402, `Version ${version} not found for subject '${subject}'.`);
  }
  static schemaNotFound(detail = 'Schema not found'): RegistryError {
    return new RegistryError(40403, detail);
  }
  static subjectSoftDeleted(subject: string): RegistryError {
    return new RegistryError(40404, `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently`);
  }
  static subjectNotSoftDeleted(subject: string): RegistryError {
    return new RegistryError(40405, `Subject '${subject}' was not deleted first before being permanently deleted`);
  }
  static versionSoftDeleted(subject: string, version: number): RegistryError {
    return new RegistryError(40406, `Subject '${subject}' Version ${version} was soft deleted. Set permanent=true to delete permanently`);
  }
  static versionNotSoftDeleted(subject: string, version: number): RegistryError {
    return new RegistryError(40407, `Subject '${subject}' Version ${version} was not deleted first before being permanently deleted`);
  }
  static subjectLevelCompatibilityNotConfigured(subject: string): RegistryError {
    return new RegistryError(40408, `Subject '${subject}' does not have subject-level compatibility configured`);
  }
  static incompatible(message: string): RegistryError {
    return new RegistryError(409, message);
  }
  static invalidSchema(message: string, cause?: unknown): RegistryError {
    return new RegistryError(42201, message, cause);
  }
  static invalidVersion(version: string): RegistryError {
    return new RegistryError(42202, `The specified version '${version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`);
  }
  static invalidCompatibilityLevel(level: unknown, valid: readonly string[]): RegistryError {
    return new RegistryError(42203, `Invalid compatibility level ${JSON.stringify(level)}. Valid values are ${valid.join(', ')}`);
  }
  static invalidMode(mode: unknown, valid: readonly string[]): RegistryError {
    return new RegistryError(42204, `Invalid mode ${JSON.stringify(mode)}. Valid values are ${valid.join(', ')}`);
  }
  static operationNotPermitted(message: string): RegistryError {
    return new RegistryError(42205, message);
  }
  static referenceExists(message: string): RegistryError {
    return new RegistryError(42206, message);
  }
  static subjectLevelModeNotConfigured(subject: string): RegistryError {
    return new RegistryError(40409, `Subject '${subject}' does not have subject-level mode configured`);
  }
  static storeError(message: string, cause?: unknown): RegistryError {
    return new RegistryError(50001, message, cause);
  }
  static timeout(message: string, cause?: unknown): RegistryError {
    return new RegistryError(50002, message, cause);
  }
}

/** The service-discovery backend (etcd) could not be reached or refused a request. */
export class DiscoveryUnavailableError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_DISCOVERY_UNAVAILABLE', message, { cause });
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
  /** `retryable` for the bridge's own stops (a closing channel or bridge): the message goes back, not to the dead-letter topic. */
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
    super('SLUICE_UNAUTHENTICATED', message);
  }
}

/** A request's principal lacks the permission the route needs. */
export class ForbiddenError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_FORBIDDEN', message);
  }
}

/** A principal made more requests than its rate limit allows. */
export class RateLimitedError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_RATE_LIMITED', message);
  }
}

/** An HTTP service would be reachable from other hosts with nobody's access checked. */
export class InsecureBindError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_INSECURE_BIND', message);
  }
}

/** A record filter (`--where`, the read path's `where`) cannot be compiled. */
export class FilterError extends SluiceError {
  constructor(expression: string, message: string) {
    super('SLUICE_FILTER_INVALID', `--where ${JSON.stringify(expression)}: ${message}`);
  }
}

/** A tail's start or end position cannot be resolved. */
export class PositionError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_TAIL_POSITION', message);
  }
}
