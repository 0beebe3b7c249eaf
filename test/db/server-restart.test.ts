import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { startPostgresCluster, type PostgresCluster } from '../support/pg-cluster.js';
import { postgresAvailable } from '../support/postgres.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { flowBody } from '../flows/support.js';

/** A whole PostgreSQL restart under a running control plane (its relay, placement loop and janitor all hold connections). */
describe.skipIf(!(await postgresAvailable()))('the control plane across a PostgreSQL restart', () => {
  let cluster: PostgresCluster;
  let cp: TestControlPlane;
  let user: TestUser;

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    cp = await startTestControlPlane({ env: { DATABASE_URL: cluster.url } });
    user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
    await cluster?.stop();
  });

  it('stays up while the server restarts, with a transaction open, and works again once it is back', async () => {
    // A transaction that holds its connection across the restart, as the outbox relay's does while it waits for the broker.
    const held = cp.services.db.transaction(async (tx) => {
      await tx.execute('select 1');
      await cluster.restart();
      await tx.execute('select 1');
    });
    await expect(held).rejects.toThrow();
    const healthy = await waitFor(
      () => cp.request('GET', '/healthcheck'),
      (r) => r.status === 200,
      30_000,
    );
    expect(healthy.body.database.ok).toBe(true);
    const created = await cp.request('POST', '/flows', { token: user.token, body: flowBody() });
    expect(created.status).toBe(201);
  }, 60_000);
});
