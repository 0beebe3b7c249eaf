import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { countFlows, createFlow, flowBody, handledByRepository, placed, publishAsRunner, silentRunner } from '../flows/support.js';
import { createTenant, createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';

describe('step tokens: a deployed step reads its own credential and nothing else', () => {
  let cp: TestControlPlane;
  let integrator: TestUser;
  let runner: { id: string; token: string; stop(): void };
  let idleRunner: { id: string; token: string; stop(): void };
  let otherRunner: { id: string; token: string; stop(): void };
  let person: TestUser;
  let credential: string;
  let unrelated: string;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    const tenant = await createTenant(cp);
    integrator = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'] });
    runner = await silentRunner(cp, tenant.id);
    otherRunner = await silentRunner(cp, (await createTenant(cp)).id);
    person = await createUser(cp, { tenantId: tenant.id, permissions: ['runners.write'] });
    const secret = (body: Record<string, unknown>) => cp.request('POST', '/api/v1/secrets', { token: integrator.token, body });
    credential = (await secret({ name: 'crm', type: 'API_KEY', value: { key: 'the-crm-key' } })).body.data.id;
    unrelated = (await secret({ name: 'other', type: 'API_KEY', value: { key: 'not-for-steps' } })).body.data.id;
  });
  afterAll(async () => {
    for (const r of [runner, idleRunner, otherRunner]) r?.stop();
    await cp?.close();
  });

  /** A started two-step flow whose second step names the credential. */
  async function startedFlow() {
    const flow = await createFlow(cp, integrator.token, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'push', componentId: 'http', function: 'request', credentials_id: credential },
        ],
        edges: [{ source: 'receive', target: 'push' }],
      },
    });
    expect((await cp.request('POST', `/flows/${flow.id}/start`, { token: integrator.token })).status).toBe(200);
    await placed(cp, flow.id);
    return flow;
  }

  const mint = (token: string, flowId: string, stepId: string) => cp.request('POST', `/flows/${flowId}/steps/${stepId}/token`, { token });
  const read = (token: string, id: string) => cp.request('GET', `/api/v1/secrets/${id}`, { token });

  it('reads, unmasked, the credential its step names; the read is audited', async () => {
    const flow = await startedFlow();
    const minted = await mint(runner.token, flow.id, 'push');
    expect(minted.status).toBe(201);
    expect(minted.body.data).toMatchObject({ flowId: flow.id, stepId: 'push', credentialId: credential });
    expect(minted.body.data.token).toMatch(/^hls_/);
    const res = await read(minted.body.data.token, credential);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ raw: true, value: { key: 'the-crm-key' } });
    const admin = await cp.login();
    await waitFor(
      async () =>
        (await cp.request('GET', '/logs?filter[name]=secrets.secret.rawRead', { token: admin })).body.data.filter(
          (r: { payload: { id: string } }) => r.payload.id === credential,
        ),
      (found) => found.length >= 1,
    );
  });

  it('reads no other secret, and calls no other route', async () => {
    const flow = await startedFlow();
    const { token } = (await mint(runner.token, flow.id, 'push')).body.data;
    const other = await read(token, unrelated);
    expect(other.status).toBe(403);
    expect(other.body.errors[0].message).toMatch(/only the credential of step push/);
    const receive = (await mint(runner.token, flow.id, 'receive')).body.data.token;
    expect((await read(receive, credential)).status).toBe(403);
    for (const [method, path] of [
      ['GET', '/api/v1/secrets'],
      ['GET', '/flows'],
      ['GET', `/flows/${flow.id}`],
      ['GET', '/api/v1/users/me'],
    ] as const) {
      const res = await cp.request(method, path, { token });
      expect(res.status, path).toBe(403);
    }
  });

  it('stops working when the flow stops', async () => {
    const flow = await startedFlow();
    const { token } = (await mint(runner.token, flow.id, 'push')).body.data;
    expect((await read(token, credential)).status).toBe(200);
    await cp.request('POST', `/flows/${flow.id}/stop`, { token: integrator.token });
    const stopped = await publishAsRunner(cp, 'flow.stopped', { id: flow.id, tenant: integrator.tenantId });
    await handledByRepository(cp, stopped.headers.id);
    const after = await read(token, credential);
    expect(after.status).toBe(401);
    expect(after.body.errors[0].message).toMatch(/revoked/);
  });

  it('is minted only by the runner the flow is placed on, for a step that exists of a flow that runs', async () => {
    const flow = await startedFlow();
    // Placed on `runner`; a second runner of the tenant, registered later, has room too but not the flow.
    idleRunner = await silentRunner(cp, integrator.tenantId);
    expect((await mint(integrator.token, flow.id, 'push')).status).toBe(403);
    for (const caller of [otherRunner.token, idleRunner.token, person.token]) {
      const refused = await mint(caller, flow.id, 'push');
      expect(refused.status).toBe(404);
      expect(refused.body.errors[0].message).toMatch(/not placed on a runner of this account/);
    }
    const missing = await mint(runner.token, flow.id, 'nope');
    expect(missing.status).toBe(404);
    expect(missing.body.errors[0].message).toMatch(/no step nope/);
    const idle = await createFlow(cp, integrator.token);
    expect((await mint(runner.token, idle.id, 'receive')).status).toBe(404);
    await cp.request('POST', `/flows/${flow.id}/stop`, { token: integrator.token });
    await waitFor(
      () => mint(runner.token, flow.id, 'push'),
      (res) => res.status === 404,
    );
    expect((await cp.request('POST', `/flows/${flow.id}/steps/push/token`)).status).toBe(401);
  });
});

describe('a step reads only secrets the user who started its flow may read', () => {
  let cp: TestControlPlane;
  let runner: { id: string; token: string; stop(): void };
  let ann: TestUser;
  let bob: TestUser;
  let bobsPrivate: string;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    const tenant = await createTenant(cp);
    ann = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'] });
    bob = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'] });
    runner = await silentRunner(cp, tenant.id);
    bobsPrivate = await secretOf(bob, { name: 'bob only', type: 'API_KEY', value: { key: 'bobs-key' } });
  });
  afterAll(async () => {
    runner?.stop();
    await cp?.close();
  });

  async function secretOf(user: TestUser, body: Record<string, unknown>): Promise<string> {
    const res = await cp.request('POST', '/api/v1/secrets', { token: user.token, body });
    expect(res.status).toBe(201);
    return res.body.data.id;
  }
  const graph = (credential: string) => ({
    nodes: [
      { id: 'receive', componentId: 'webhook', function: 'receive' },
      { id: 'push', componentId: 'http', function: 'request', credentials_id: credential },
    ],
    edges: [{ source: 'receive', target: 'push' }],
  });
  const saving = (token: string, credential: string) =>
    cp.request('POST', '/flows', { token, body: flowBody({ graph: graph(credential) }) });
  const noSecret = (id: string) =>
    `graph.nodes: node "push": credentials_id: no secret ${id} that you may read (a step reads only secrets you own or your tenant shares)`;

  it('refuses to save a flow naming another user’s private secret, as it refuses an unknown one', async () => {
    const before = await countFlows(cp);
    const otherTenants = await secretOf(await createTenantWithUser(cp, ['TENANT_INTEGRATOR']), {
      name: 'x',
      type: 'API_KEY',
      value: { key: 'k' },
    });
    for (const id of [bobsPrivate, randomUUID(), otherTenants, 'not-a-uuid']) {
      const res = await saving(ann.token, id);
      expect(res.status, id).toBe(400);
      expect(res.body.errors[0].message).toBe(noSecret(id));
    }
    const annsFlow = await createFlow(cp, ann.token);
    const patched = await cp.request('PATCH', `/flows/${annsFlow.id}`, { token: ann.token, body: { graph: graph(bobsPrivate) } });
    expect(patched.status).toBe(400);
    expect(patched.body.errors[0].message).toBe(noSecret(bobsPrivate));
    expect(await countFlows(cp)).toBe(before + 1);
    expect((await saving(bob.token, bobsPrivate)).status).toBe(201);
  });

  it('keys a webhook only with secrets its author may read, and says so before anything of the secret', async () => {
    const bobsKey = await secretOf(bob, {
      name: 'bob’s webhook key',
      type: 'API_KEY',
      value: { key: `bobs-long-webhook-key-${randomUUID()}` },
    });
    const hmac = (secretId: string) => flowBody({ flowSettings: { webhooks: { auth: { type: 'hmac', secretId } } } });
    const refused = await cp.request('POST', '/flows', { token: ann.token, body: hmac(bobsKey) });
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0].message).toBe(
      `flowSettings.webhooks.auth: no secret ${bobsKey} that you may read (a webhook's keys are secrets you own or your tenant shares)`,
    );
    const bobsFlow = await cp.request('POST', '/flows', { token: bob.token, body: hmac(bobsKey) });
    expect(bobsFlow.status).toBe(201);
    const started = await cp.request('POST', `/flows/${bobsFlow.body.data.id}/start`, { token: ann.token });
    expect(started.status).toBe(403);
    expect(started.body.errors[0].message).toMatch(
      new RegExp(
        `^You may not start flow ${bobsFlow.body.data.id}: flowSettings.webhooks.auth names secret ${bobsKey}, which you may not read`,
      ),
    );
  });

  it('lets no one else change or start a flow that names a private secret', async () => {
    const bobsFlow = (await saving(bob.token, bobsPrivate)).body.data;
    const renamed = await cp.request('PATCH', `/flows/${bobsFlow.id}`, { token: ann.token, body: { name: 'renamed by ann' } });
    expect(renamed.status).toBe(400);
    expect(renamed.body.errors[0].message).toBe(noSecret(bobsPrivate));
    const started = await cp.request('POST', `/flows/${bobsFlow.id}/start`, { token: ann.token });
    expect(started.status).toBe(403);
    expect(started.body.errors[0].message).toMatch(
      new RegExp(
        `^You may not start flow ${bobsFlow.id}: graph.nodes: node "push": credentials_id names secret ${bobsPrivate}, which you may not read`,
      ),
    );
    expect((await cp.request('GET', `/flows/${bobsFlow.id}`, { token: bob.token })).body.data.status).toBe('inactive');
    expect((await cp.request('POST', `/flows/${bobsFlow.id}/start`, { token: bob.token })).status).toBe(200);
    await placed(cp, bobsFlow.id);
    const { token } = (await cp.request('POST', `/flows/${bobsFlow.id}/steps/push/token`, { token: runner.token })).body.data;
    expect((await cp.request('GET', `/api/v1/secrets/${bobsPrivate}`, { token })).body.data.value).toEqual({
      key: 'bobs-key',
      headerName: 'x-api-key',
    });
  });

  it('stops giving a secret to a running step once the user it acts for may no longer read it', async () => {
    const shared = await secretOf(bob, { name: 'team key', type: 'API_KEY', value: { key: 'team-key' }, shared: true });
    const flow = (await saving(ann.token, shared)).body.data;
    expect((await cp.request('POST', `/flows/${flow.id}/start`, { token: ann.token })).status).toBe(200);
    await placed(cp, flow.id);
    const { token } = (await cp.request('POST', `/flows/${flow.id}/steps/push/token`, { token: runner.token })).body.data;
    const read = () => cp.request('GET', `/api/v1/secrets/${shared}`, { token });
    expect((await read()).body.data.value.key).toBe('team-key');

    expect((await cp.request('PATCH', `/api/v1/secrets/${shared}`, { token: bob.token, body: { shared: false } })).status).toBe(200);
    const refused = await read();
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0].message).toBe(
      `The user this step acts for (who started the flow) may not read secret ${shared}: a step reads only secrets that user owns or the tenant shares`,
    );
    expect(JSON.stringify(refused.body)).not.toContain('team-key');

    expect((await cp.request('PATCH', `/api/v1/secrets/${shared}`, { token: bob.token, body: { shared: true } })).status).toBe(200);
    expect((await read()).status).toBe(200);
    expect((await cp.request('DELETE', `/api/v1/secrets/${shared}`, { token: bob.token })).status).toBe(204);
    expect((await read()).status).toBe(403);
  });
});
