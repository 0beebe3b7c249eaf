import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DELIVERY_LIMITS, MAX_HOOK_BODY_BYTES } from '../../protocol/edge.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { EDGE_CONTROL_SECRET } from '../support/edge.js';
import { collectEntries, settled } from '../support/events.js';
import { createFlow } from '../flows/support.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';

const edgeToken = (secret = EDGE_CONTROL_SECRET, issuer = 'hookline-edge') =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(issuer)
    .setAudience('hookline-control-plane')
    .setIssuedAt()
    .setExpirationTime('1m')
    .sign(new TextEncoder().encode(secret));

describe('POST /api/v1/edge/executions', () => {
  let cp: TestControlPlane;
  let user: TestUser;
  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { EDGE_CONTROL_SECRET } });
    user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
  });
  afterAll(() => cp.close());

  const execution = (flowId: string, tenant = user.tenantId) => ({
    flowId,
    flowExecId: randomUUID(),
    tenant,
    trigger: 'webhook',
    receivedAt: new Date().toISOString(),
    message: { id: randomUUID(), data: { ok: true } },
  });
  const send = async (body: unknown, token?: string) =>
    cp.request('POST', '/api/v1/edge/executions', { body, headers: { authorization: `Bearer ${token ?? (await edgeToken())}` } });

  it('publishes each new execution once, reports repeats as duplicates and rejects the impossible, recording those it can as failed', async () => {
    const flow = await createFlow(cp, user.token);
    const entered = await collectEntries(cp, flow.id);
    const good = execution(flow.id);
    const otherTenant = execution(flow.id, randomUUID());
    const unknownFlow = execution(randomUUID());
    const first = await send({ executions: [good, otherTenant, unknownFlow, { flowExecId: 'broken' }] });
    expect(first.status).toBe(200);
    expect(first.body.data.accepted).toEqual([good.flowExecId]);
    expect(first.body.data.rejected.map((r: { flowExecId: string }) => r.flowExecId).sort()).toEqual(
      ['broken', otherTenant.flowExecId, unknownFlow.flowExecId].sort(),
    );
    // The execution of a flow the tenant does not have is recorded as failed, with the reason, for that tenant to see.
    const record = await cp.request('GET', `/executions/${unknownFlow.flowExecId}`, { token: user.token });
    expect(record.body.data).toMatchObject({
      status: 'failed',
      trigger: 'webhook',
      reason: `no flow ${unknownFlow.flowId} in this tenant when the execution arrived (it was deleted, or never was)`,
    });
    expect(record.body.data.input).toMatchObject({ data: { ok: true } });
    // A tenant that does not exist gets no record.
    expect((await cp.request('GET', `/executions/${otherTenant.flowExecId}`, { token: await cp.login() })).status).toBe(404);
    const again = await send({ executions: [good] });
    expect(again.body.data).toEqual({ accepted: [], duplicates: [good.flowExecId], rejected: [] });
    // Within one batch too: the first of a flowExecId counts, new ones are published in the batch's order.
    const [second, third] = [execution(flow.id), execution(flow.id)];
    const mixed = await send({ executions: [second, second, third, good] });
    expect(mixed.body.data).toEqual({
      accepted: [second.flowExecId, third.flowExecId],
      duplicates: [second.flowExecId, good.flowExecId],
      rejected: [],
    });
    await settled(entered);
    expect(entered.map((e) => e.flowExecId)).toEqual([good.flowExecId, second.flowExecId, third.flowExecId]);
  });

  it('accepts only calls signed by the edge', async () => {
    const body = { executions: [execution(randomUUID())] };
    expect((await cp.request('POST', '/api/v1/edge/executions', { body })).status).toBe(401);
    expect((await send(body, await edgeToken('a-different-secret-that-is-long-enough'))).status).toBe(401);
    expect((await send(body, await edgeToken(EDGE_CONTROL_SECRET, 'hookline-control-plane'))).status).toBe(401);
    expect((await send(body, await cp.login())).status).toBe(401);
  });

  it('takes a delivery over BODY_LIMIT_BYTES up to the size the edge cuts its batches by, and refuses one over that', async () => {
    const limited = await startTestControlPlane({ env: { EDGE_CONTROL_SECRET, BODY_LIMIT_BYTES: '1024' } });
    try {
      const big = { ...execution(randomUUID()), message: { id: randomUUID(), data: { text: 'x'.repeat(MAX_HOOK_BODY_BYTES) } } };
      const headers = { authorization: `Bearer ${await edgeToken()}` };
      expect((await limited.request('POST', '/api/v1/edge/executions', { body: { executions: [big] }, headers })).status).toBe(200);
      const over = { executions: Array.from({ length: 5 }, () => big) };
      expect(JSON.stringify(over).length).toBeGreaterThan(DELIVERY_LIMITS.bytes);
      expect((await limited.request('POST', '/api/v1/edge/executions', { body: over, headers })).status).toBe(413);
      // Every other route keeps BODY_LIMIT_BYTES.
      expect((await limited.request('POST', '/login', { body: { username: 'x'.repeat(2000), password: 'y' } })).status).toBe(413);
    } finally {
      await limited.close();
    }
  });

  it('refuses what is not a batch of 1 to 100 executions', async () => {
    expect((await send('{"executions":')).status).toBe(400);
    expect((await send({ executions: [] })).status).toBe(400);
    expect((await send({ executions: Array.from({ length: 101 }, () => execution(randomUUID())) })).status).toBe(400);
    expect((await send({ executions: [], extra: 1 })).status).toBe(400);
  });

  it('is off (503) without EDGE_CONTROL_SECRET', async () => {
    const plain = await startTestControlPlane();
    try {
      const res = await plain.request('POST', '/api/v1/edge/executions', {
        body: { executions: [] },
        headers: { authorization: `Bearer ${await edgeToken()}` },
      });
      expect(res.status).toBe(503);
      expect(res.body.errors[0].message).toMatch(/EDGE_CONTROL_SECRET/);
    } finally {
      await plain.close();
    }
  });
});
