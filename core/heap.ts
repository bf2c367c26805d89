import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import type { SluiceConfig } from './config.ts';

/** How often a service compiles a one-token script (letMemoryReducerRun). */
const REDUCER_NUDGE_MS = 5000;

/**
 * V8 settings of a long-running service (`serve`, the bench's ingress); a short command such as `sluice tail` keeps
 * V8's own.
 */
export function tuneServiceHeap(config: Pick<SluiceConfig, 'heapGrowingPercent'>): void {
  boundHeapGrowth(config);
  letMemoryReducerRun();
}

/**
 * Bounds how far a service's old generation grows between full collections (config.ts heapGrowingPercent). V8 reads
 * the factor each time it sets the next full collection's limit, so set once at a service's start it holds for the
 * process.
 */
function boundHeapGrowth(config: Pick<SluiceConfig, 'heapGrowingPercent'>): void {
  if (config.heapGrowingPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowingPercent}`);
}

/**
 * Lets V8's memory reducer give a burst's memory back once the load is gone. Node 24's V8 (13.6) keeps the pages a
 * collection frees in a pool for reuse, returned to the system only by a memory-reducing collection, and the memory
 * reducer starts one only when every allocation rate it samples is low, the embedder's (cppgc) among them. A process
 * that never allocates on cppgc has that rate at exactly 0, which V8 reads as the highest there is
 * (`--trace-memory-reducer`: "high alloc" at every check): the RSS stays at the burst's peak (a script's 1.4 GB burst,
 * with a service's trickle of timers: 2,268 MB still 40 s after it; tests/unit/heap.test.ts's smaller burst: 878 MB
 * 30 s after). Compiling a vm.Script allocates on cppgc (Node's ContextifyScript), so one every REDUCER_NUDGE_MS keeps
 * that rate small and above 0: the script's burst was down to 94 MB 15 s after it, the test's under a third of its
 * peak within ~15 s. Under load nothing changes: the other rates are high then.
 */
function letMemoryReducerRun(): void {
  // Unreferenced: it never holds a process open.
  setInterval(() => new Script('0'), REDUCER_NUDGE_MS).unref();
}
