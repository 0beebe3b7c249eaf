import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flows } from '../../control-plane/flows/schema.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createFlow } from '../flows/support.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';

const uniqueName = () => `tenant-${randomUUID().slice(0, 8)}`;

describe('/api/v1/tenants', () => {
  let cp: TestControlPlane;
  let admin: string;
  let tenantAdmin: TestUser;
  let events: EventEnvelope[];

  beforeAll(async () => {
    cp = await startTestControlPlane();
    admin = await cp.login();
    tenantAdmin = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    events = await collectEvents(cp, 'iam.tenant.*');
  });
  afterAll(() => cp.close());

  it('lets an admin create, read, rename and delete a tenant, announcing each change', async () => {
    const name = uniqueName();
    const created = await cp.request('POST', '/api/v1/tenants', { token: admin, body: { name } });
    expect(created.status).toBe(201);
    const { id } = created.body.data;
    expect(created.body.data).toMatchObject({ name, status: 'active' });
    expect((await cp.request('GET', `/api/v1/tenants/${id}`, { token: admin })).body.data.name).toBe(name);
    const renamed = await cp.request('PATCH', `/api/v1/tenants/${id}`, { token: admin, body: { name: `${name}-renamed` } });
    expect(renamed.body.data.name).toBe(`${name}-renamed`);
    expect((await cp.request('DELETE', `/api/v1/tenants/${id}`, { token: admin })).status).toBe(204);
    expect((await cp.request('GET', `/api/v1/tenants/${id}`, { token: admin })).status).toBe(404);
    const names = await waitFor(
      async () => events.filter((e) => e.payload.id === id).map((e) => e.headers.name),
      (n) => n.length === 3,
    );
    expect(names).toEqual(['iam.tenant.created', 'iam.tenant.modified', 'iam.tenant.deleted']);
  });

  it('shows a tenant admin only their own tenant, and lets them rename it but not change its status', async () => {
    const list = await cp.request('GET', '/api/v1/tenants', { token: tenantAdmin.token });
    expect(list.body.data.map((t: { id: string }) => t.id)).toEqual([tenantAdmin.tenantId]);
    expect(list.body.meta.total).toBe(1);
    const otherTenant = (await cp.request('POST', '/api/v1/tenants', { token: admin, body: { name: uniqueName() } })).body.data;
    expect((await cp.request('GET', `/api/v1/tenants/${otherTenant.id}`, { token: tenantAdmin.token })).status).toBe(404);
    expect(
      (await cp.request('PATCH', `/api/v1/tenants/${otherTenant.id}`, { token: tenantAdmin.token, body: { name: 'mine-now' } })).status,
    ).toBe(404);

    const name = uniqueName();
    expect(
      (await cp.request('PATCH', `/api/v1/tenants/${tenantAdmin.tenantId}`, { token: tenantAdmin.token, body: { name } })).body.data.name,
    ).toBe(name);
    const disable = await cp.request('PATCH', `/api/v1/tenants/${tenantAdmin.tenantId}`, {
      token: tenantAdmin.token,
      body: { status: 'disabled' },
    });
    expect(disable.status).toBe(403);
    expect((await cp.request('POST', '/api/v1/tenants', { token: tenantAdmin.token, body: { name: uniqueName() } })).status).toBe(403);
    expect((await cp.request('DELETE', `/api/v1/tenants/${otherTenant.id}`, { token: tenantAdmin.token })).status).toBe(403);
  });

  it('disabling a tenant stops its members’ tokens; enabling it lets them back in', async () => {
    const member = await createTenantWithUser(cp, ['TENANT_GUEST']);
    expect((await cp.request('PATCH', `/api/v1/tenants/${member.tenantId}`, { token: admin, body: { status: 'disabled' } })).status).toBe(
      200,
    );
    const refused = await cp.request('GET', '/flows', { token: member.token });
    expect(refused.status).toBe(401);
    expect(refused.body.errors[0].message).toMatch(/Tenant is disabled/);
    await cp.request('PATCH', `/api/v1/tenants/${member.tenantId}`, { token: admin, body: { status: 'active' } });
    expect((await cp.request('GET', '/flows', { token: member.token })).status).toBe(200);
  });

  it('refuses to delete a tenant with flows that are not inactive, and deletes its flows with it otherwise', async () => {
    const member = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
    const flow = await createFlow(cp, member.token);
    await cp.request('POST', `/flows/${flow.id}/start`, { token: member.token });
    const refused = await cp.request('DELETE', `/api/v1/tenants/${member.tenantId}`, { token: admin });
    expect(refused.status).toBe(409);
    expect(refused.body.errors[0].message).toMatch(/1 flows that are not inactive/);
    expect((await cp.request('GET', `/flows/${flow.id}`, { token: admin })).status).toBe(200);

    const idle = await createFlow(cp, member.token, { name: 'idle' });
    await cp.services.db.update(flows).set({ status: 'inactive' }).where(eq(flows.id, flow.id));
    expect((await cp.request('DELETE', `/api/v1/tenants/${member.tenantId}`, { token: admin })).status).toBe(204);
    expect((await cp.request('GET', `/flows/${idle.id}`, { token: admin })).status).toBe(404);
    expect((await cp.request('GET', '/api/v1/users/me', { token: member.token })).status).toBe(401);
  });

  it('keeps an admin from disabling or deleting their own tenant', async () => {
    const me = (await cp.request('GET', '/api/v1/users/me', { token: admin })).body.data;
    expect((await cp.request('PATCH', `/api/v1/tenants/${me.tenant}`, { token: admin, body: { status: 'disabled' } })).status).toBe(409);
    expect((await cp.request('DELETE', `/api/v1/tenants/${me.tenant}`, { token: admin })).status).toBe(409);
  });

  it('answers bad input with a 400 or 409 that says what is wrong', async () => {
    const name = uniqueName();
    await cp.request('POST', '/api/v1/tenants', { token: admin, body: { name } });
    expect((await cp.request('POST', '/api/v1/tenants', { token: admin, body: { name } })).status).toBe(409);
    for (const body of ['{"name"', {}, { name: '' }, { name: 7 }, { name: 'x', plan: 'gold' }, { name: 'x'.repeat(101) }]) {
      const res = await cp.request('POST', '/api/v1/tenants', { token: admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors[0].message).toBeTruthy();
    }
    expect((await cp.request('PATCH', `/api/v1/tenants/${tenantAdmin.tenantId}`, { token: admin, body: { status: 'gone' } })).status).toBe(
      400,
    );
    expect((await cp.request('GET', '/api/v1/tenants/123', { token: admin })).status).toBe(400);
    expect((await cp.request('DELETE', `/api/v1/tenants/${randomUUID()}`, { token: admin })).status).toBe(404);
    expect((await cp.request('GET', '/api/v1/tenants')).status).toBe(401);
  });
});
