import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { users } from '../../control-plane/iam/schema.js';
import { HEARTBEAT_SECONDS } from '../../protocol/runner.js';
import { runners } from '../../control-plane/runners/schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { rabbitUrl } from '../support/rabbitmq.js';
import { createTenant, createUser, type TestUser } from '../support/tenants.js';

describe('/runners: the runner fleet’s registry', () => {
  let cp: TestControlPlane;
  let admin: string;
  let operator: TestUser;
  let tenantId: string;

  /** A service account with runners.write and a token for it. */
  async function runnerAccount(tenant = tenantId): Promise<string> {
    const [account] = await cp.services.db
      .insert(users)
      .values({
        username: `runner-${randomUUID().slice(0, 8)}`,
        kind: 'service',
        tenantId: tenant,
        permissions: ['runners.write', 'runners.read'],
      })
      .returning();
    return (await cp.request('POST', '/api/v1/tokens', { token: admin, body: { accountId: account!.id } })).body.data.token;
  }
  const registration = (name = 'node-1') => ({ name, host: 'rack-7', driver: 'process', capacity: 8 });

  beforeAll(async () => {
    cp = await startTestControlPlane();
    admin = await cp.login();
    tenantId = (await createTenant(cp)).id;
    operator = await createUser(cp, { tenantId, roles: ['TENANT_INTEGRATOR'] });
  });
  afterAll(() => cp.close());

  it('registers a runner, and the same account and name again as the same runner', async () => {
    const token = await runnerAccount();
    const first = await cp.request('POST', '/runners', { token, body: registration() });
    expect(first.status).toBe(201);
    expect(first.body.data).toMatchObject({
      name: 'node-1',
      host: 'rack-7',
      driver: 'process',
      capacity: 8,
      status: 'alive',
      deployments: [],
      workers: 0,
      tenant: tenantId,
      heartbeatSeconds: HEARTBEAT_SECONDS,
    });
    const again = await cp.request('POST', '/runners', { token, body: { ...registration(), capacity: 12 } });
    expect(again.status).toBe(200);
    expect(again.body.data).toMatchObject({ id: first.body.data.id, capacity: 12 });
  });

  it('takes heartbeats with what a runner runs, and shows a silent runner as lost', async () => {
    const token = await runnerAccount();
    const { id } = (await cp.request('POST', '/runners', { token, body: registration('node-2') })).body.data;
    const deployments = [{ flowId: randomUUID(), generation: 1, state: 'ready', steps: [{ stepId: 'map', state: 'ready', restarts: 0 }] }];
    const beat = await cp.request('POST', `/runners/${id}/heartbeat`, { token, body: { deployments } });
    expect(beat.status).toBe(200);
    expect(beat.body.data).toMatchObject({ deployments, status: 'alive', heartbeatSeconds: HEARTBEAT_SECONDS });
    expect((await cp.request('GET', `/runners/${id}`, { token: operator.token })).body.data.deployments).toEqual(deployments);

    await cp.services.db
      .update(runners)
      .set({ lastSeenAt: new Date(Date.now() - 31_000) })
      .where(eq(runners.id, id));
    expect((await cp.request('GET', `/runners/${id}`, { token: operator.token })).body.data.status).toBe('lost');
    await cp.request('POST', `/runners/${id}/heartbeat`, { token, body: {} });
    expect((await cp.request('GET', `/runners/${id}`, { token: operator.token })).body.data.status).toBe('alive');
  });

  it('lets only the runner’s own account heartbeat it, and only service accounts register', async () => {
    const mine = await runnerAccount();
    const other = await runnerAccount();
    const { id } = (await cp.request('POST', '/runners', { token: mine, body: registration('node-3') })).body.data;
    expect((await cp.request('POST', `/runners/${id}/heartbeat`, { token: other, body: {} })).status).toBe(404);
    const person = await createUser(cp, { tenantId, permissions: ['runners.write'] });
    const refused = await cp.request('POST', '/runners', { token: person.token, body: registration('node-4') });
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0].message).toMatch(/service-account token/);
    expect((await cp.request('POST', '/runners', { token: operator.token, body: registration('node-5') })).status).toBe(403);
  });

  it('shows a tenant its own runners only; admins see every one', async () => {
    const elsewhere = await runnerAccount((await createTenant(cp)).id);
    const { id } = (await cp.request('POST', '/runners', { token: elsewhere, body: registration('far-away') })).body.data;
    const mine = await cp.request('GET', '/runners?page[size]=100', { token: operator.token });
    expect(mine.body.data.map((r: { id: string }) => r.id)).not.toContain(id);
    expect((await cp.request('GET', `/runners/${id}`, { token: operator.token })).status).toBe(404);
    const all = await cp.request('GET', '/runners?page[size]=100', { token: admin });
    expect(all.body.data.map((r: { id: string }) => r.id)).toContain(id);
    expect((await cp.request('DELETE', `/runners/${id}`, { token: admin })).status).toBe(204);
    expect((await cp.request('GET', `/runners/${id}`, { token: admin })).status).toBe(404);
  });

  it('answers bad input with a 400 that names the field', async () => {
    const token = await runnerAccount();
    for (const [body, field] of [
      ['{"name":', /JSON|body/i],
      [{ ...registration(), driver: 'kubernetes' }, /driver/],
      [{ ...registration(), capacity: 0 }, /capacity/],
      [{ ...registration(), name: 'has space' }, /name/],
      [{ ...registration(), extra: true }, /extra/],
    ] as const) {
      const res = await cp.request('POST', '/runners', { token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' ')).toMatch(field);
    }
    expect(
      (
        await cp.request('POST', `/runners/${randomUUID()}/heartbeat`, {
          token,
          body: { deployments: [{ flowId: 'f', generation: 1, state: 'dancing' }] },
        })
      ).status,
    ).toBe(400);
    expect((await cp.request('GET', '/runners')).status).toBe(401);
  });

  it('a runner process registers itself, and refuses to start without its settings', async () => {
    const token = await runnerAccount();
    const name = `proc-${randomUUID().slice(0, 6)}`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'runner/main.ts'], {
      env: { ...process.env, CONTROL_PLANE_URL: cp.url, RUNNER_TOKEN: token, RUNNER_NAME: name, AMQP_URL: rabbitUrl, LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    try {
      const listed = await waitFor(
        async () =>
          (await cp.request('GET', '/runners?page[size]=100', { token: admin })).body.data.filter((r: { name: string }) => r.name === name),
        (found) => found.length === 1,
        20_000,
      );
      expect(listed[0]).toMatchObject({ driver: 'process', capacity: 16, status: 'alive' });
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      await exited;
    }
    expect(child.exitCode).toBe(0);

    const bad = spawn(process.execPath, ['--import', 'tsx', 'runner/main.ts'], {
      env: { ...process.env, CONTROL_PLANE_URL: 'not a url', RUNNER_TOKEN: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    bad.stderr.on('data', (data) => (stderr += data));
    await once(bad, 'exit');
    expect(bad.exitCode).toBe(1);
    expect(stderr).toMatch(/CONTROL_PLANE_URL/);
    expect(stderr).toMatch(/RUNNER_TOKEN/);
    expect(stderr).toMatch(/AMQP_URL/);
  });

  it('answers a runner’s long poll at once when its desired state is newer, else when it changes, and only to its own account', async () => {
    const token = await runnerAccount();
    const { id } = (await cp.request('POST', '/runners', { token, body: registration('poller') })).body.data;
    const now = await cp.request('GET', `/runners/${id}/deployments?after=-1&wait=10`, { token });
    expect(now.status).toBe(200);
    expect(now.body.data).toEqual({ version: 0, deployments: [] });
    const began = Date.now();
    const idle = await cp.request('GET', `/runners/${id}/deployments?after=0&wait=1`, { token });
    expect(idle.body.data.version).toBe(0);
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);

    const polls = vi.spyOn(cp.services.notifier, 'wait');
    const waiting = cp.request('GET', `/runners/${id}/deployments?after=0&wait=20`, { token });
    // The change comes while the poll waits for it, not before the poll read the state.
    await waitFor(
      async () => polls.mock.calls.some(([runner]) => runner === id),
      (polling) => polling,
    );
    polls.mockRestore();
    await cp.services.db.update(runners).set({ desiredVersion: 1 }).where(eq(runners.id, id));
    cp.services.notifier.notify([id]);
    expect((await waiting).body.data.version).toBe(1);

    expect((await cp.request('GET', `/runners/${id}/deployments`, { token: await runnerAccount() })).status).toBe(404);
    expect((await cp.request('GET', `/runners/${id}/deployments`, { token: admin })).status).toBe(404);
    expect((await cp.request('GET', `/runners/${id}/deployments`, { token: operator.token })).status).toBe(403);
    for (const query of ['wait=61', 'wait=-1', 'after=x', 'later=1'])
      expect((await cp.request('GET', `/runners/${id}/deployments?${query}`, { token })).status, query).toBe(400);
  });

  it('keeps only the log lines of flows placed on the shipping runner, and refuses malformed ones', async () => {
    const token = await runnerAccount();
    const { id } = (await cp.request('POST', '/runners', { token, body: registration('shipper') })).body.data;
    const line = { flowId: randomUUID(), stepId: 'map', at: new Date().toISOString(), stream: 'stdout', line: 'hello' };
    const shipped = await cp.request('POST', `/runners/${id}/logs`, { token, body: { lines: [line] } });
    expect(shipped.status).toBe(202);
    expect(shipped.body.data).toEqual({ stored: 0, dropped: 1 });
    for (const lines of [
      [{ ...line, stream: 'stdin' }],
      [{ ...line, line: 'x'.repeat(9000) }],
      [{ ...line, at: 'yesterday' }],
      'not a list',
    ]) {
      expect((await cp.request('POST', `/runners/${id}/logs`, { token, body: { lines } })).status).toBe(400);
    }
    expect((await cp.request('POST', `/runners/${id}/logs`, { token: await runnerAccount(), body: { lines: [line] } })).status).toBe(404);
  });
});
