import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: fault tests on a three-node local cluster the suite
 * starts itself (tests/faults/setup.ts). One file at a time, one worker: the
 * three JVMs and the platform under test already fill two cores, and every test
 * kills or stops brokers the others would depend on.
 */
export default defineConfig({
  test: {
    execArgv: ['--disable-warning=TimeoutNegativeWarning'],
    include: ['tests/faults/**/*.test.ts'],
    globalSetup: ['tests/faults/setup.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    sequence: { concurrent: false },
    testTimeout: 180_000,
    hookTimeout: 240_000,
  },
});
