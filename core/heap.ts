import { setFlagsFromString } from 'node:v8';
import type { SluiceConfig } from './config.ts';

/**
 * Bounds how far a service's old generation grows between full collections (config.ts heapGrowingPercent). V8 reads
 * the factor each time it sets the next full collection's limit, so set once at a service's start it holds for the
 * process. Services only (`serve`, the bench's ingress): a short command such as `sluice tail` keeps V8's own.
 */
export function boundHeapGrowth(config: Pick<SluiceConfig, 'heapGrowingPercent'>): void {
  if (config.heapGrowingPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowingPercent}`);
}
