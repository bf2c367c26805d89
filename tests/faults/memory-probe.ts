import { appendFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

/**
 * Loaded into `sluice up` by the overload soak (NODE_OPTIONS=--import, SLUICE_FAULTS_MEMORY_FILE): once a second, one
 * line of what its RSS is made of (MB), so the report says what grew (V8's young and old generations, buffers outside
 * the heap) and not only that the RSS did.
 */
const file = process.env.SLUICE_FAULTS_MEMORY_FILE;
if (file !== undefined && process.argv.includes('up')) {
  const mb = (bytes: number): number => Math.round(bytes / 1048576);
  setInterval(() => {
    const usage = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, mb(s.space_size)]));
    const line = {
      rss: mb(usage.rss),
      heapUsed: mb(usage.heapUsed),
      newSpace: spaces.new_space ?? 0,
      oldSpace: spaces.old_space ?? 0,
      otherHeap: mb(usage.heapTotal) - (spaces.new_space ?? 0) - (spaces.old_space ?? 0),
      external: mb(usage.external),
      arrayBuffers: mb(usage.arrayBuffers),
    };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 1000).unref();
}
