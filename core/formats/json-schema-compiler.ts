import { Worker } from 'node:worker_threads';
import { OverloadedError } from '../errors.ts';
import { instantiateJsonValidator, jsonSchemaCodecOf, jsonSchemaDocument, type JsonSchemaCodec } from './json-schema.ts';
import type { CompileAnswer, CompileJob } from './json-schema-worker.ts';
import type { ResolvedSchema } from './types.ts';

/**
 * JSON Schema compilation off the event loop. ajv's compile time grows faster than the schema: a schema
 * within the registry's bounds (2,000 subschemas) takes 0.5-3 s, and the registry, the ingress and the
 * workers of `sluice up` share one event loop, so a compile there would hold every health check and
 * every request for as long. One worker thread compiles (json-schema-worker.ts returns ajv's standalone
 * code), one schema at a time; the caller's thread only instantiates the code (milliseconds).
 */

/**
 * Over this, a schema is refused as too complex rather than compiled (the worker is replaced). Wall time, so
 * with room for a busy machine: the heaviest schema within the registry's bounds took 1-3 s of CPU and, on 2
 * cores at load 17, over 10 s.
 */
export const COMPILE_TIME_LIMIT_MS = 30_000;
/** Compilations waiting for the worker at most; more are refused as overload (503), not queued without bound. */
export const COMPILE_QUEUE_LIMIT = 32;

/** ajv refused the schema, or it could not be compiled within the time limit: the schema is at fault, not the service. */
export class JsonSchemaCompileError extends Error {}

interface Pending {
  job: CompileJob;
  resolve: (code: string) => void;
  reject: (error: Error) => void;
}

export interface CompilerOptions {
  timeLimitMs?: number;
  queueLimit?: number;
}

export class JsonSchemaCompiler {
  readonly #timeLimitMs: number;
  readonly #queueLimit: number;
  #worker: Worker | undefined;
  #current: (Pending & { timer: NodeJS.Timeout }) | undefined;
  readonly #queue: Pending[] = [];
  #nextId = 1;

  constructor(options: CompilerOptions = {}) {
    this.#timeLimitMs = options.timeLimitMs ?? COMPILE_TIME_LIMIT_MS;
    this.#queueLimit = options.queueLimit ?? COMPILE_QUEUE_LIMIT;
  }

  /** The validator code of `resolved`, compiled on the worker; rejects with JsonSchemaCompileError when ajv refuses it or it takes too long. */
  code(resolved: ResolvedSchema): Promise<string> {
    if (this.#queue.length >= this.#queueLimit) {
      return Promise.reject(new OverloadedError(`${this.#queue.length} JSON Schemas are waiting to be compiled: try again shortly`));
    }
    return new Promise<string>((resolve, reject) => {
      this.#queue.push({ job: { id: this.#nextId++, resolved: { schemaType: resolved.schemaType, schema: resolved.schema, references: resolved.references } }, resolve, reject });
      this.#next();
    });
  }

  /** The codec of `resolved`: parsed here (linear), compiled on the worker, instantiated here. */
  async codec(resolved: ResolvedSchema): Promise<JsonSchemaCodec> {
    const document = jsonSchemaDocument(resolved);
    return jsonSchemaCodecOf(document, instantiateJsonValidator(await this.code(resolved)));
  }

  /** Stops the worker; compilations still waiting are refused. */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    for (const pending of this.#queue.splice(0)) pending.reject(new OverloadedError('the JSON Schema compiler is closing'));
    this.#finish()?.reject(new OverloadedError('the JSON Schema compiler is closing'));
    await worker?.terminate();
  }

  #next(): void {
    if (this.#current !== undefined) return;
    const pending = this.#queue.shift();
    if (pending === undefined) {
      // Idle: the worker does not keep a process alive that has nothing else to do.
      this.#worker?.unref();
      return;
    }
    const worker = this.#spawn();
    worker.ref();
    const timer = setTimeout(() => this.#timedOut(), this.#timeLimitMs);
    this.#current = { ...pending, timer };
    worker.postMessage(pending.job);
  }

  #spawn(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(new URL('./json-schema-worker.ts', import.meta.url));
    worker.on('message', (answer: CompileAnswer) => {
      if (this.#current?.job.id !== answer.id) return;
      const pending = this.#finish()!;
      if ('code' in answer) pending.resolve(answer.code);
      else pending.reject(new JsonSchemaCompileError(answer.error));
      this.#next();
    });
    // A worker that dies (out of memory, a crash) fails the schema it was compiling; the next one gets a fresh worker.
    worker.on('error', (error) => this.#lost(worker, error.message));
    worker.on('exit', (code) => this.#lost(worker, `the compiler thread exited with code ${code}`));
    this.#worker = worker;
    return worker;
  }

  #finish(): Pending | undefined {
    const current = this.#current;
    if (current === undefined) return undefined;
    clearTimeout(current.timer);
    this.#current = undefined;
    return current;
  }

  #timedOut(): void {
    const pending = this.#finish();
    const worker = this.#worker;
    this.#worker = undefined;
    void worker?.terminate();
    pending?.reject(new JsonSchemaCompileError(`it is too complex: ajv did not compile it within ${this.#timeLimitMs} ms`));
    this.#next();
  }

  #lost(worker: Worker, reason: string): void {
    if (this.#worker !== worker) return; // already replaced (timed out or closed)
    this.#worker = undefined;
    this.#finish()?.reject(new JsonSchemaCompileError(`it could not be compiled: ${reason}`));
    this.#next();
  }
}

/** The process's compiler: one worker for every service `sluice up` runs in it. */
export const jsonSchemaCompiler = new JsonSchemaCompiler();
