import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { applyResults, deliver, createFlowRow, executedPayload, executionRef, output, runningExecution, stepResult } from './support.js';

describe('/executions', () => {
  let cp: TestControlPlane;
  let admin: string;
  let guest: TestUser;
  let stranger: TestUser;
  let outsider: TestUser;
  let flowId: string;
  const ids: string[] = [];

  beforeAll(async () => {
    cp = await startTestControlPlane();
    admin = await cp.login();
    guest = await createTenantWithUser(cp, ['TENANT_GUEST']);
    stranger = await createTenantWithUser(cp, ['TENANT_GUEST']);
    outsider = await createUser(cp, { tenantId: guest.tenantId, roles: [] });
    flowId = await createFlowRow(cp, guest.tenantId);
    // Three executions of one flow (step_1 done, step_2 still to come; the last one's step_2 failed), one of another flow, one of another tenant.
    for (let i = 0; i < 3; i++) {
      const ref = executionRef(guest.tenantId, flowId);
      const executed = executedPayload(ref, { order: i }, new Date(Date.UTC(2020, 0, 1, 0, i)));
      await deliver(cp, executed);
      await applyResults(cp, stepResult(ref, 'step_1', executed.message.id, { outputs: [output(i)], delivered: [`d${i}`] }));
      if (i === 2) await applyResults(cp, stepResult(ref, 'step_2', `d${i}`, { error: { message: 'refused' } }));
      ids.push(ref.flowExecId);
    }
    const other = await runningExecution(cp, guest.tenantId);
    await deliver(cp, executedPayload(other));
    ids.push(other.flowExecId);
    const theirs = await runningExecution(cp, stranger.tenantId);
    await deliver(cp, executedPayload(theirs));
    ids.push(theirs.flowExecId);
  });
  afterAll(() => cp?.close());

  const list = (query: string, token = guest.token) => cp.request('GET', `/executions${query}`, { token });

  it('lists a flow’s executions newest first, paged, without payloads', async () => {
    const res = await list(`?filter[flowId]=${flowId}`);
    expect(res.status).toBe(200);
    expect(res.body.data.map((e: { flowExecId: string }) => e.flowExecId)).toEqual([ids[2], ids[1], ids[0]]);
    expect(res.body.meta).toEqual({ total: 3, page: 1, perPage: 10, totalPages: 1 });
    expect(res.body.data[0]).toMatchObject({
      ...{ flowId, tenant: guest.tenantId, status: 'failed', reason: 'step step_2 failed: refused' },
      steps: { step_1: { in: 1, out: 1, errors: 0 }, step_2: { in: 1, out: 0, errors: 1 } },
    });
    expect(res.body.data[1]).toMatchObject({
      status: 'running',
      reason: null,
      finishedAt: null,
      steps: { step_1: { in: 1, out: 1, errors: 0 } },
    });
    expect(res.body.data[0]).not.toHaveProperty('outputs');
    expect(res.body.data[0]).not.toHaveProperty('input');
    expect(res.body.data[0]).not.toHaveProperty('errors');

    const page = await list(`?filter[flowId]=${flowId}&page[size]=2&page[number]=2`);
    expect(page.body.data.map((e: { flowExecId: string }) => e.flowExecId)).toEqual([ids[0]]);
    expect(page.body.meta).toEqual({ total: 3, page: 2, perPage: 2, totalPages: 2 });
  });

  it('filters by status, and lists every execution of the tenant without filter[flowId]', async () => {
    const failed = await list(`?filter[flowId]=${flowId}&filter[status]=failed`);
    expect(failed.body.data.map((e: { flowExecId: string }) => e.flowExecId)).toEqual([ids[2]]);
    const running = await list('?filter[status]=running&page[size]=100');
    expect(running.body.data.map((e: { flowExecId: string }) => e.flowExecId).sort()).toEqual([ids[0], ids[1], ids[3]].sort());
    const all = await list('?page[size]=100');
    expect(all.body.data.map((e: { flowExecId: string }) => e.flowExecId).sort()).toEqual(ids.slice(0, 4).sort());
  });

  it('reads an execution by flowExecId or by record id', async () => {
    const byExecId = await cp.request('GET', `/executions/${ids[2]}`, { token: guest.token });
    expect(byExecId.status).toBe(200);
    expect(byExecId.body.data).toMatchObject({
      ...{ flowExecId: ids[2], status: 'failed', input: { data: { order: 2 } } },
      outputs: [{ stepId: 'step_1', message: { data: 2 } }],
      errors: [{ stepId: 'step_2', messageId: 'd2', error: { message: 'refused' } }],
    });
    const byId = await cp.request('GET', `/executions/${byExecId.body.data.id}`, { token: guest.token });
    expect(byId.body.data).toEqual(byExecId.body.data);
  });

  it('keeps tenants apart: another tenant’s execution is a 404 and never listed; holders of `all` see every one', async () => {
    const res = await cp.request('GET', `/executions/${ids[4]}`, { token: guest.token });
    expect(res.status).toBe(404);
    expect(res.body.errors[0].message).toBe(`No execution ${ids[4]} that you may see`);
    expect((await list('?page[size]=100', stranger.token)).body.data.map((e: { flowExecId: string }) => e.flowExecId)).toEqual([ids[4]]);
    expect((await cp.request('GET', `/executions/${ids[4]}`, { token: admin })).status).toBe(200);
    const everyone = await list('?page[size]=100', admin);
    expect(everyone.body.data.map((e: { flowExecId: string }) => e.flowExecId)).toEqual(expect.arrayContaining(ids));
  });

  it('answers 401 without a valid token and 403 without executions.read', async () => {
    expect((await cp.request('GET', '/executions')).status).toBe(401);
    expect((await cp.request('GET', `/executions/${ids[0]}`)).status).toBe(401);
    expect((await cp.request('GET', '/executions', { token: 'not-a-token' })).status).toBe(401);
    for (const path of ['/executions', `/executions/${ids[0]}`]) {
      const res = await cp.request('GET', path, { token: outsider.token });
      expect(res.status, path).toBe(403);
      expect(res.body.errors[0].message).toBe('Missing permission: executions.read');
    }
  });

  it('refuses bad queries with clear messages, and answers 404 for an unknown id', async () => {
    const status = await list('?filter[status]=done');
    expect(status.status).toBe(400);
    expect(status.body.errors[0].message).toMatch(/^filter\[status\]: /);
    const unknown = await list('?filter[flow]=x');
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors[0].message).toMatch(/filter\[flow\]/);
    const size = await list('?page[size]=0');
    expect(size.status).toBe(400);
    expect(size.body.errors[0].message).toMatch(/^page\[size\]: /);
    for (const id of [randomUUID(), 'no-such-execution']) {
      const res = await cp.request('GET', `/executions/${id}`, { token: guest.token });
      expect(res.status, id).toBe(404);
      expect(res.body.errors[0].message).toBe(`No execution ${id} that you may see`);
    }
    const long = await cp.request('GET', `/executions/${'x'.repeat(201)}`, { token: guest.token });
    expect(long.status).toBe(400);
    expect(long.body.errors[0].message).toMatch(/^id: /);
  });
});
