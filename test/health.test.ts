import { randomUUID } from 'node:crypto';
import { count } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../control-plane/bus/outbox.js';
import { outbox } from '../control-plane/bus/schema.js';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.js';
import { waitFor } from './support/events.js';

describe('GET /healthcheck on a healthy control plane', () => {
  let cp: TestControlPlane;
  beforeAll(async () => {
    cp = await startTestControlPlane();
  });
  afterAll(() => cp?.close());

  it('answers 200 ok with the database, the bus and the outbox, without a token', async () => {
    const res = await cp.request('GET', '/healthcheck');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      database: { driver: 'pglite', ok: true },
      bus: { kind: 'memory', connected: true },
      outbox: { pending: expect.any(Number) },
    });
  });

  it('counts the events waiting in the outbox', async () => {
    await cp.services.relay.stop();
    await cp.services.db.transaction(async (tx) => {
      await emit(tx, 'health-test', 'flow.stopped', { id: randomUUID(), tenant: randomUUID() });
      await emit(tx, 'health-test', 'flow.stopped', { id: randomUUID(), tenant: randomUUID() });
    });
    const res = await cp.request('GET', '/healthcheck');
    expect(res.body.outbox).toEqual({ pending: 2 });
    cp.services.relay.start();
    await waitFor(
      async () => (await cp.services.db.select({ n: count() }).from(outbox))[0]!.n,
      (n) => n === 0,
    );
    expect((await cp.request('GET', '/healthcheck')).body.outbox).toEqual({ pending: 0 });
  });
});

describe('GET /healthcheck when a part is down', () => {
  let cp: TestControlPlane;
  beforeAll(async () => {
    cp = await startTestControlPlane();
  });
  // The test closed its database, which close() closes again.
  afterAll(() => cp?.close().catch((error: Error) => void expect(error.message).toBe('PGlite is closed')));

  it('answers 503 degraded when the bus is closed', async () => {
    await cp.services.bus.close();
    const res = await cp.request('GET', '/healthcheck');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'degraded', database: { ok: true }, bus: { kind: 'memory', connected: false } });
  });

  it('answers 503 degraded, saying why, when the database is closed', async () => {
    await cp.services.relay.stop();
    await cp.services.database.close();
    const res = await cp.request('GET', '/healthcheck');
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      status: 'degraded',
      database: { driver: 'pglite', ok: false, error: expect.any(String) },
      bus: { kind: 'memory', connected: false },
      outbox: { pending: null },
    });
    expect(res.body.database.error.length).toBeGreaterThan(0);
  });
});
