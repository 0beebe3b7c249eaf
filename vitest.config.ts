import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Generous on purpose: on a busy 2-core machine a boot or a broker start takes several times
    // what it takes on an idle one. A limit only catches what never finishes; waits poll for conditions.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // A worker that does not stop within this is reported by vitest, which then kills it.
    teardownTimeout: 30_000,
    // Two cores: a few files at once, each with its own database, bus namespace and port.
    maxWorkers: 3,
  },
});
