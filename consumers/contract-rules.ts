import { RegistryError, RuleViolationError, type RuleViolation } from '../core/errors.ts';
import type { AvroTypes } from '../core/formats/avro-types.ts';
import type { AnyCodec } from '../core/formats/index.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { createCodecEncoder, type EventEncoder } from '../core/serde.ts';
import { CompiledContract, CONTRACT_REFRESH_MS, migrate, runWriteRules, SubjectContracts, type Metadata, type RuleFailure, type RuleSet, type RunMode, type SubjectBinding } from '../rules/index.ts';

/**
 * Data contracts in a stream worker, as Confluent's deserializer and
 * serializer run them around a consumer's and a producer's code:
 *
 * - Input: a record's writer schema id is looked up as a version of the input
 *   subject. The worker's reader version is the version of the topology's
 *   input schema under the subject's current contract or, for a worker pinned
 *   by `input.useLatestWithMetadata` (Confluent's use.latest.with.metadata),
 *   the latest version whose metadata properties hold the pinned ones, read
 *   from the registry with that version's own schema. When it differs from the
 *   writer's, the migration rules of the versions between run in order: each
 *   later version's UPGRADE rules when the writer is older, each version's
 *   DOWNGRADE rules from the writer's down when it is newer (Confluent's
 *   getMigrations). Then the READ (and WRITEREAD) domain rules of the reader
 *   version run, the writer's when the worker has no version in the subject
 *   (Confluent runs the reader's rules whenever it has a reader schema).
 * - Output: every value the handler emits runs the WRITE rules of the output
 *   subject's current contract, the very code the ingress runs
 *   (rules/subject-contracts.ts), and is framed with that version's id.
 *
 * A rule that fails with action ERROR or DLQ, or a migration that fails, is a
 * RuleViolationError: the record processor dead-letters the input record (its
 * bytes as read, so it can be replayed) with `__rule.*` headers naming the
 * rule, mode, subject, version and field, in the same transaction as the
 * offset commit. A worker's failures all go to its one dead-letter topic, the
 * one `sluice dlq replay` knows, so a rule's `dlq.topic` is not used here.
 * NONE passes; disabled rules are skipped (the engine's doing).
 */

/**
 * The schema a worker reads with: the codec a migrated record must fit and, for Avro, the reader schema
 * records are resolved to (`key` tells decoders of different readers apart); undefined for JSON Schema and
 * Protobuf, which are read as written.
 */
export interface ReaderSchema {
  readonly codec: Pick<AnyCodec, 'validate'>;
  readonly avro: { readonly types: AvroTypes; readonly key: string } | undefined;
}

/** The version a pinned worker reads with (`GET /subjects/{subject}/metadata`). */
interface PinnedReader extends ReaderSchema {
  readonly version: number;
  readonly id: number;
}

/** What the rules do to records of one writer schema id, for the reader version current when it was planned. */
export interface InputPlan {
  readonly writerVersion: number;
  readonly readerVersion: number;
  /** The versions whose migration rules run, writer's to reader's (empty when none has a rule for the direction). */
  readonly steps: readonly CompiledContract[];
  /** The version whose READ rules run, when it has any. */
  readonly read: CompiledContract | undefined;
}

/** The input after the rules: the value for the handler, or the rule that refused it. */
export type InputVerdict = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: RuleViolationError };

interface VersionAnswer {
  id: number;
  version: number;
  metadata?: Metadata;
  ruleSet?: RuleSet;
}

/** Plans kept per writer id; a worker sees a handful. Past this, the oldest is dropped. */
const MAX_PLANS = 1024;

const migrationMode = (writer: number, reader: number): RunMode => (writer < reader ? 'UPGRADE' : 'DOWNGRADE');

/**
 * The versions whose migration rules take a record from `writer` to `reader`,
 * in the order they run (as rules/engine.ts's migrate): each version after
 * the writer's up to the reader's, or the writer's and each one down to just
 * above the reader's.
 */
function migrationSteps(versions: readonly CompiledContract[], writer: number, reader: number): CompiledContract[] {
  const upgrading = writer < reader;
  return versions
    .filter((v) => (upgrading ? v.version > writer && v.version <= reader : v.version <= writer && v.version > reader))
    .sort((a, b) => (upgrading ? a.version - b.version : b.version - a.version));
}

export function ruleError(failure: RuleFailure): RuleViolationError {
  const violation: RuleViolation = {
    rule: failure.rule,
    subject: failure.subject,
    version: failure.version,
    mode: failure.mode,
    reason: failure.reason,
    ...(failure.field !== undefined ? { field: failure.field } : {}),
  };
  const where = `${failure.mode} rule '${failure.rule}' of ${failure.subject} version ${failure.version}${failure.field !== undefined ? ` on field ${failure.field}` : ''}`;
  return new RuleViolationError([violation], `${where}: ${failure.reason}`);
}

/**
 * Runs the migrations and READ rules of `plan` on a decoded input value
 * (pure: no registry, no Kafka). An Avro record is then resolved into the
 * reader's schema as Avro resolution would a record of that shape (`readerTypes`:
 * a missing field with a default takes it, an undeclared one is dropped). A
 * migrated value that does not fit the reader's schema is charged to the last
 * migration rule that ran.
 */
export async function applyInputRules(plan: InputPlan, value: unknown, readerCodec: Pick<AnyCodec, 'validate'> | undefined, readerTypes?: AvroTypes): Promise<InputVerdict> {
  let current = value;
  if (plan.steps.length > 0) {
    const migrated = await migrate(plan.steps, plan.writerVersion, plan.readerVersion, current);
    if (!migrated.ok) return { ok: false, error: ruleError(migrated.failure) };
    current = migrated.message;
    if (readerTypes) current = resolveInto(readerTypes, current);
    const broken = readerCodec?.validate(current)[0];
    if (broken) {
      const mode = migrationMode(plan.writerVersion, plan.readerVersion);
      // The last version whose migration rules ran: the highest when upgrading, the lowest when downgrading.
      const last = migrationSteps(plan.steps, plan.writerVersion, plan.readerVersion)
        .filter((s) => s.has(mode))
        .at(-1);
      return {
        ok: false,
        error: ruleError({
          rule: last?.lastTransform(mode) ?? '(migration)',
          subject: last?.subject ?? '',
          version: last?.version ?? plan.readerVersion,
          mode,
          action: 'ERROR',
          reason: `the migrated record does not fit version ${plan.readerVersion}: ${broken.path || '(root)'}: ${broken.message}`,
          field: broken.path,
        }),
      };
    }
  }
  if (plan.read) {
    const run = plan.read.run('READ', current);
    const verdict = run instanceof Promise ? await run : run;
    if (!verdict.ok) return { ok: false, error: ruleError(verdict.failure) };
    current = verdict.message;
  }
  return { ok: true, value: current };
}

/** avsc's copy into the reader's types fills defaults and drops undeclared fields; what it cannot copy is left for the validation to name. */
function resolveInto(types: AvroTypes, value: unknown): unknown {
  try {
    return types.wide.clone(value);
  } catch {
    return value;
  }
}

export interface WorkerContractsOptions {
  registry: RegistryClient;
  /** The topology's input schema (its text finds the reader version, unless the worker is pinned). */
  input: SubjectBinding & { readonly codec: AnyCodec };
  /** The Avro reader of the topology's input schema, records resolved to it (unless the worker is pinned). */
  inputReader?: ReaderSchema['avro'];
  /** The metadata properties the worker's reader version is pinned by (the topology's `input.useLatestWithMetadata`). */
  useLatestWithMetadata?: Readonly<Record<string, string>>;
  /** The topology's output schema and the id it was registered with. */
  output: SubjectBinding & { readonly codec: AnyCodec };
  log: Logger;
}

/** A worker's contracts: its input subject's versions and its output subject's current WRITE rules. */
export class WorkerContracts {
  readonly #o: WorkerContractsOptions;
  readonly #current: SubjectContracts;
  readonly #versions = new Map<number, Promise<CompiledContract>>();
  readonly #writerVersions = new Map<number, Promise<number | undefined>>();
  /** Settled plans by writer id for the reader version `#plansReader`, read without an await on the hot path; undefined: no rule touches that writer's records. */
  readonly #plans = new Map<number, InputPlan | undefined>();
  #plansReader: number | undefined;
  #encoder: EventEncoder;
  /** The output contract `#writes` was computed for: asked per record, computed per contract. */
  #outputContract: CompiledContract | undefined;
  #writes = false;
  readonly #topologyReader: ReaderSchema;
  /** Set by start() when the worker is pinned; replaced when the registry names another version. */
  #pinned: PinnedReader | undefined;
  #pinTimer: NodeJS.Timeout | undefined;

  constructor(options: WorkerContractsOptions) {
    this.#o = options;
    // A pinned worker's reader version comes from the metadata look-up, not from the topology's input schema.
    this.#current = new SubjectContracts(options.registry, options.useLatestWithMetadata ? [options.output] : [options.input, options.output], options.log);
    this.#encoder = createCodecEncoder(options.output.subject, options.output.schemaId, options.output.codec);
    this.#topologyReader = { codec: options.input.codec, avro: options.inputReader };
  }

  /**
   * Loads both subjects' current contracts and, for a pinned worker, its reader version (a registry
   * without a version of those properties fails the start), then keeps them current (every 2 s, as the ingress).
   */
  async start(intervalMs = CONTRACT_REFRESH_MS): Promise<void> {
    if (this.#o.useLatestWithMetadata) {
      await this.#resolvePin();
      this.#pinTimer = setInterval(
        () =>
          void this.#resolvePin().catch((error: unknown) =>
            // The registry down or the version gone: keep reading with the version last found.
            this.#o.log.debug({ err: error, subject: this.#o.input.subject }, 'pinned reader refresh failed; keeping the current version'),
          ),
        intervalMs,
      ).unref();
    }
    await this.#current.start(intervalMs);
  }

  stop(): void {
    clearInterval(this.#pinTimer);
    this.#current.stop();
  }

  /**
   * The latest version of the input subject whose metadata properties hold the pinned ones, as Confluent's
   * deserializer finds its reader (getLatestWithMetadata, soft-deleted versions included).
   */
  async #resolvePin(): Promise<void> {
    const { subject } = this.#o.input;
    const query = Object.entries(this.#o.useLatestWithMetadata!)
      .map(([key, value]) => `&key=${encodeURIComponent(key)}&value=${encodeURIComponent(value)}`)
      .join('');
    const answer = await this.#o.registry.request<VersionAnswer>('GET', `/subjects/${encodeURIComponent(subject)}/metadata?deleted=true${query}`);
    if (this.#pinned?.id === answer.id && this.#pinned.version === answer.version) return;
    const codec = await this.#o.registry.codecById(answer.id);
    const avro = codec.schemaType === 'AVRO' ? { types: codec.types, key: `${subject}@${answer.id}` } : undefined;
    const from = this.#pinned?.version;
    this.#pinned = { version: answer.version, id: answer.id, codec, avro };
    this.#o.log.info(
      { subject, version: answer.version, schemaId: answer.id, useLatestWithMetadata: this.#o.useLatestWithMetadata, ...(from === undefined ? {} : { from }) },
      'worker reads with a new pinned version',
    );
  }

  /**
   * The schema records are read with now. Read it in the same turn as plan(), which plans for the reader
   * version of that moment, so a record's migration and its check against the reader agree.
   */
  reader(): ReaderSchema {
    return this.#pinned ?? this.#topologyReader;
  }

  /** The plan for records of writer schema `id`: synchronously when known (undefined, no rules), else a Promise. */
  plan(id: number): InputPlan | undefined | Promise<InputPlan | undefined> {
    const reader = this.#pinned ? this.#pinned.version : this.#current.of(this.#o.input).version;
    if (reader !== this.#plansReader) {
      // The reader version moved (a new contract registered): every plan is made again against it.
      this.#plans.clear();
      this.#plansReader = reader;
    }
    if (this.#plans.has(id)) return this.#plans.get(id);
    return this.#plan(id, reader).then((plan) => {
      if (reader !== this.#plansReader) return plan;
      if (this.#plans.size >= MAX_PLANS) this.#plans.delete(this.#plans.keys().next().value!);
      this.#plans.set(id, plan);
      return plan;
    });
  }

  async #plan(id: number, reader: number | undefined): Promise<InputPlan | undefined> {
    const writer = await this.#writerVersion(id);
    if (writer === undefined) return undefined;
    const target = reader ?? writer;
    let steps: CompiledContract[] = [];
    if (target !== writer) {
      const mode = migrationMode(writer, target);
      const [low, high] = writer < target ? [writer + 1, target] : [target + 1, writer];
      const between: Promise<CompiledContract | undefined>[] = [];
      for (let v = low; v <= high; v++) between.push(this.#version(v).catch(absentVersion));
      steps = (await Promise.all(between)).filter((c): c is CompiledContract => c !== undefined);
      // No migration rule between them: the record is read as before (Avro resolved to the reader's schema).
      if (!steps.some((s) => s.has(mode))) steps = [];
    }
    const read = await this.#version(target).catch(absentVersion);
    if (steps.length === 0 && !read?.has('READ')) return undefined;
    return { writerVersion: writer, readerVersion: target, steps, read: read?.has('READ') ? read : undefined };
  }

  /** The version of the input subject that writer id `id` is (the highest, if the subject has it twice); undefined when it is none. */
  #writerVersion(id: number): Promise<number | undefined> {
    return once(this.#writerVersions, id, async () => {
      const uses = await this.#o.registry.request<{ subject: string; version: number }[]>('GET', `/schemas/ids/${id}/versions`);
      const versions = uses.filter((u) => u.subject === this.#o.input.subject).map((u) => u.version);
      return versions.length === 0 ? undefined : Math.max(...versions);
    }).catch(absentVersion); // an unknown id: the decoder says so, in its own words
  }

  /** Version `version` of the input subject, its rules compiled once (a version never changes). */
  #version(version: number): Promise<CompiledContract> {
    const subject = this.#o.input.subject;
    return once(this.#versions, version, async () => {
      const answer = await this.#o.registry.request<VersionAnswer>('GET', `/subjects/${encodeURIComponent(subject)}/versions/${version}?deleted=true`);
      const codec = await this.#o.registry.codecById(answer.id);
      return new CompiledContract({ subject, version: answer.version, id: answer.id, codec, metadata: answer.metadata, ruleSet: answer.ruleSet });
    });
  }

  /** Whether emitted values run WRITE rules now. */
  get writes(): boolean {
    const contract = this.#current.of(this.#o.output).contract;
    if (contract !== this.#outputContract) {
      this.#outputContract = contract;
      this.#writes = contract?.has('WRITE') === true;
    }
    return this.#writes;
  }

  /** Runs the output subject's WRITE rules on the handler's values: the values to encode, transformed, or a RuleViolationError for the first refused one. */
  async write(values: readonly unknown[]): Promise<unknown[]> {
    const contract = this.#current.of(this.#o.output).contract;
    if (!contract?.has('WRITE')) return [...values];
    const results = await runWriteRules(contract, values, this.#o.output.codec);
    for (let i = 0; i < values.length; i++) {
      const failure = results.refused.get(i) ?? results.deadLettered.get(i);
      if (failure) throw ruleError(failure);
    }
    return results.events;
  }

  /** The encoder of the output subject's current version (its id frames the outputs). */
  encoder(): EventEncoder {
    const { schemaId } = this.#current.of(this.#o.output);
    if (schemaId !== this.#encoder.schemaId) this.#encoder = createCodecEncoder(this.#o.output.subject, schemaId, this.#o.output.codec);
    return this.#encoder;
  }
}

/** A version deleted for good (404) has no rules to run; any other failure (the registry down) is the caller's. */
function absentVersion(error: unknown): undefined {
  if (error instanceof RegistryError && error.statusCode === 404) return undefined;
  throw error;
}

/** One load per key; a failed one is forgotten, so the next record tries again. */
function once<K, T>(cache: Map<K, Promise<T>>, key: K, load: () => Promise<T>): Promise<T> {
  let pending = cache.get(key);
  if (!pending) {
    pending = load();
    pending.catch(() => cache.delete(key));
    cache.set(key, pending);
  }
  return pending;
}
