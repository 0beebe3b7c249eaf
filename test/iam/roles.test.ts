import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_PERMISSIONS } from '../../protocol/permissions.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import type { EventEnvelope } from '../../protocol/envelope.js';

const roleName = () => `ROLE_${randomUUID().slice(0, 8)}`;

describe('/api/v1/roles and /api/v1/permissions', () => {
  let cp: TestControlPlane;
  let admin: string;
  let tenantAdmin: TestUser;
  let other: TestUser;
  let events: EventEnvelope[];

  beforeAll(async () => {
    cp = await startTestControlPlane();
    admin = await cp.login();
    tenantAdmin = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    other = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    events = await collectEvents(cp, 'iam.role.*');
  });
  afterAll(() => cp.close());

  it('lists every permission, marking the restricted ones', async () => {
    const res = await cp.request('GET', '/api/v1/permissions', { token: tenantAdmin.token });
    expect(res.status).toBe(200);
    expect(res.body.data.map((p: { name: string }) => p.name)).toEqual(ALL_PERMISSIONS);
    expect(res.body.data.find((p: { name: string }) => p.name === 'all').restricted).toBe(true);
    expect(res.body.data.find((p: { name: string }) => p.name === 'flows.read').restricted).toBe(false);
  });

  it('lets a tenant admin create a role in their tenant that grants its holders its permissions', async () => {
    const name = roleName();
    const created = await cp.request('POST', '/api/v1/roles', {
      token: tenantAdmin.token,
      body: { name, permissions: ['flows.read', 'logs.read'] },
    });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({
      name,
      tenant: tenantAdmin.tenantId,
      isSystem: false,
      permissions: ['flows.read', 'logs.read'],
    });

    const holder = await createUser(cp, { tenantId: tenantAdmin.tenantId });
    expect((await cp.request('GET', '/flows', { token: holder.token })).status).toBe(403);
    await cp.request('PATCH', `/api/v1/users/${holder.id}`, { token: tenantAdmin.token, body: { roles: [name] } });
    expect((await cp.request('GET', '/flows', { token: holder.token })).status).toBe(200);

    // Changing the role changes what its holders may do at their next request.
    await cp.request('PATCH', `/api/v1/roles/${created.body.data.id}`, { token: tenantAdmin.token, body: { permissions: ['logs.read'] } });
    expect((await cp.request('GET', '/flows', { token: holder.token })).status).toBe(403);
    expect((await cp.request('DELETE', `/api/v1/roles/${created.body.data.id}`, { token: tenantAdmin.token })).status).toBe(204);
    expect((await cp.request('GET', '/api/v1/users/me', { token: holder.token })).body.data.roles).toEqual([]);

    const names = await waitFor(
      async () => events.filter((e) => e.payload.id === created.body.data.id).map((e) => e.headers.name),
      (n) => n.length === 3,
    );
    expect(names).toEqual(['iam.role.created', 'iam.role.modified', 'iam.role.deleted']);
  });

  it('shows a tenant admin the global roles and their own, never another tenant’s', async () => {
    const theirs = (await cp.request('POST', '/api/v1/roles', { token: other.token, body: { name: roleName() } })).body.data;
    const mine = (await cp.request('POST', '/api/v1/roles', { token: tenantAdmin.token, body: { name: roleName() } })).body.data;
    const list = await cp.request('GET', '/api/v1/roles?page[size]=100', { token: tenantAdmin.token });
    const ids = list.body.data.map((r: { id: string }) => r.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(theirs.id);
    expect(list.body.data.filter((r: { tenant: string | null }) => r.tenant === null).map((r: { name: string }) => r.name)).toEqual(
      expect.arrayContaining(['ADMIN', 'TENANT_ADMIN', 'TENANT_GUEST']),
    );
    for (const [method, body] of [['GET'], ['PATCH', { description: 'x' }], ['DELETE']] as const) {
      expect((await cp.request(method, `/api/v1/roles/${theirs.id}`, { token: tenantAdmin.token, body })).status, method).toBe(404);
    }
    const all = await cp.request('GET', `/api/v1/roles?filter[tenant]=${other.tenantId}`, { token: admin });
    expect(all.body.data.map((r: { id: string }) => r.id)).toEqual([theirs.id]);
  });

  it('keeps restricted permissions, other tenants and global roles out of a tenant admin’s reach', async () => {
    const restricted = await cp.request('POST', '/api/v1/roles', {
      token: tenantAdmin.token,
      body: { name: roleName(), permissions: ['iam.account.create'] },
    });
    expect(restricted.status).toBe(403);
    expect(restricted.body.errors[0].message).toContain('iam.account.create');
    expect(
      (await cp.request('POST', '/api/v1/roles', { token: tenantAdmin.token, body: { name: roleName(), tenant: other.tenantId } })).status,
    ).toBe(403);

    const global = await cp.request('POST', '/api/v1/roles', { token: admin, body: { name: roleName(), permissions: ['flows.read'] } });
    expect(global.status).toBe(201);
    expect(global.body.data.tenant).toBeNull();
    expect(
      (
        await cp.request('PATCH', `/api/v1/roles/${global.body.data.id}`, {
          token: tenantAdmin.token,
          body: { permissions: ['flows.write'] },
        })
      ).status,
    ).toBe(403);
    expect(
      (await cp.request('PATCH', `/api/v1/roles/${global.body.data.id}`, { token: admin, body: { permissions: ['flows.write'] } })).status,
    ).toBe(200);
  });

  it('keeps system roles as they are, even for admins', async () => {
    const list = await cp.request('GET', '/api/v1/roles?page[size]=100', { token: admin });
    const adminRole = list.body.data.find((r: { name: string; tenant: string | null }) => r.name === 'ADMIN' && r.tenant === null);
    expect(adminRole.isSystem).toBe(true);
    const change = await cp.request('PATCH', `/api/v1/roles/${adminRole.id}`, { token: admin, body: { permissions: [] } });
    expect(change.status).toBe(409);
    expect(change.body.errors[0].message).toMatch(/system role/);
    expect((await cp.request('DELETE', `/api/v1/roles/${adminRole.id}`, { token: admin })).status).toBe(409);
  });

  it('refuses duplicate names, a global role’s name, unknown permissions and malformed input', async () => {
    const name = roleName();
    expect((await cp.request('POST', '/api/v1/roles', { token: tenantAdmin.token, body: { name } })).status).toBe(201);
    expect((await cp.request('POST', '/api/v1/roles', { token: tenantAdmin.token, body: { name } })).status).toBe(409);
    expect((await cp.request('POST', '/api/v1/roles', { token: other.token, body: { name } })).status).toBe(201);
    const shadow = await cp.request('POST', '/api/v1/roles', { token: tenantAdmin.token, body: { name: 'ADMIN' } });
    expect(shadow.status).toBe(409);
    expect(shadow.body.errors[0].message).toMatch(/global role/);

    const cases: [unknown, RegExp][] = [
      ['{"name":', /JSON|body/i],
      [{ name: 'has space' }, /name/],
      [{ name: roleName(), permissions: ['flows.fly'] }, /Unknown permissions: flows.fly/],
      [{ name: roleName(), permissions: 'flows.read' }, /permissions/],
      [{ name: roleName(), level: 3 }, /level/],
    ];
    for (const [body, message] of cases) {
      const res = await cp.request('POST', '/api/v1/roles', { token: tenantAdmin.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' | ')).toMatch(message);
    }
    expect((await cp.request('GET', '/api/v1/roles/abc', { token: admin })).status).toBe(400);
    expect((await cp.request('GET', `/api/v1/roles/${randomUUID()}`, { token: admin })).status).toBe(404);
  });

  it('401 without a token, 403 without a role permission', async () => {
    const guest = await createTenantWithUser(cp, ['TENANT_GUEST']);
    expect((await cp.request('GET', '/api/v1/roles')).status).toBe(401);
    expect((await cp.request('GET', '/api/v1/permissions')).status).toBe(401);
    const res = await cp.request('GET', '/api/v1/roles', { token: guest.token });
    expect(res.status).toBe(403);
    expect(res.body.errors[0].message).toBe('Missing permission: iam.role.read or tenant.roles.read');
  });
});
