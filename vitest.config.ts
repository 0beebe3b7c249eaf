import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: a few files at once, each with its own database, bus namespace and port.
    maxWorkers: 3,
  },
});
