import { defineConfig } from 'vitest/config';

// kafkajs schedules a negative timeout on Node >= 23 (harmless; Node clamps it to 1 ms).
const execArgv = ['--disable-warning=TimeoutNegativeWarning'];

export default defineConfig({
  test: {
    execArgv,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          globalSetup: ['tests/setup/kafka.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          // Two cores: one for the broker, one for the tests.
          maxWorkers: 2,
        },
      },
    ],
  },
});
