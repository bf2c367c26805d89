import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: fault tests on a three-node local cluster the suite
 * starts itself (tests/faults/setup.ts). One file at a time, one worker: the
 * three JVMs and the platform under test already fill two cores, and every test
 * kills or stops brokers the others would depend on.
 */
export default defineConfig({
  test: {
    // The overload soak keeps an outcome per request (twice the capacity for five minutes: over ten million at
    // ~20,000/s); V8's default heap limit (~4 GB here) left no room for the analysis after it.
    execArgv: ['--disable-warning=TimeoutNegativeWarning', '--max-old-space-size=8192'],
    include: ['tests/faults/**/*.test.ts'],
    globalSetup: ['tests/faults/setup.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    sequence: { concurrent: false },
    testTimeout: 180_000,
    hookTimeout: 240_000,
  },
});
