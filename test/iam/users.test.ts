import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { ADMIN, startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createTenant, createUser, type TestUser } from '../support/tenants.js';

const person = (overrides: Record<string, unknown> = {}) => ({
  username: `Person-${randomUUID().slice(0, 8)}@Example.com`,
  password: 'a-long-enough-password',
  ...overrides,
});

describe('/api/v1/users', () => {
  let cp: TestControlPlane;
  let admin: string;
  let tenantAdmin: TestUser;
  let other: TestUser;
  let events: EventEnvelope[];

  beforeAll(async () => {
    cp = await startTestControlPlane();
    admin = await cp.login();
    tenantAdmin = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_ADMIN'] });
    other = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_ADMIN'] });
    events = await collectEvents(cp, 'iam.user.*');
  });
  afterAll(() => cp.close());

  it('creates a person who can log in, in the tenant admin’s tenant, and announces it', async () => {
    const body = person({ firstname: 'Ada', roles: ['TENANT_INTEGRATOR'] });
    const res = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      username: body.username.toLowerCase(),
      kind: 'person',
      firstname: 'Ada',
      tenant: tenantAdmin.tenantId,
      roles: ['TENANT_INTEGRATOR'],
      status: 'active',
    });
    expect(JSON.stringify(res.body)).not.toContain('password');
    const token = await cp.login(body.username, body.password);
    expect((await cp.request('GET', '/flows', { token })).status).toBe(200);
    const [event] = await waitFor(
      async () => events.filter((e) => e.headers.name === 'iam.user.created' && e.payload.id === res.body.data.id),
      (f) => f.length === 1,
    );
    expect(event!.payload).toMatchObject({ tenant: tenantAdmin.tenantId, user: tenantAdmin.id });
  });

  it('answers GET /me for any valid token, without a permission', async () => {
    const guest = await createUser(cp, { tenantId: tenantAdmin.tenantId, roles: ['TENANT_GUEST'] });
    const res = await cp.request('GET', '/api/v1/users/me', { token: guest.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ id: guest.id, username: guest.username, roles: ['TENANT_GUEST'] });
    expect((await cp.request('GET', '/api/v1/users/me')).status).toBe(401);
  });

  it('lists only the tenant admin’s tenant; admins see everyone and can filter and search', async () => {
    const mine = await cp.request('GET', '/api/v1/users?page[size]=100', { token: tenantAdmin.token });
    expect(mine.status).toBe(200);
    expect(mine.body.data.length).toBeGreaterThan(0);
    expect(mine.body.data.every((u: { tenant: string }) => u.tenant === tenantAdmin.tenantId)).toBe(true);

    const filtered = await cp.request('GET', `/api/v1/users?filter[tenant]=${other.tenantId}`, { token: admin });
    expect(filtered.body.data.map((u: { id: string }) => u.id)).toEqual([other.id]);
    const searched = await cp.request('GET', `/api/v1/users?search=${encodeURIComponent(ADMIN.username.slice(0, 5))}`, { token: admin });
    expect(searched.body.data.map((u: { username: string }) => u.username)).toContain(ADMIN.username);
    // A tenant admin's filter never widens their view.
    const widened = await cp.request('GET', `/api/v1/users?filter[tenant]=${other.tenantId}`, { token: tenantAdmin.token });
    expect(widened.body.data).toEqual([]);
  });

  it('hides other tenants’ users from a tenant admin: 404 to read, change or delete them', async () => {
    for (const [method, body] of [['GET'], ['PATCH', { firstname: 'X' }], ['DELETE']] as const) {
      const res = await cp.request(method, `/api/v1/users/${other.id}`, { token: tenantAdmin.token, body });
      expect(res.status, method).toBe(404);
    }
    const forbidden = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body: person({ tenant: other.tenantId }) });
    expect(forbidden.status).toBe(403);
    expect((await cp.request('GET', `/api/v1/users/${other.id}`, { token: other.token })).status).toBe(200);
  });

  it('lets no tenant admin grant restricted permissions or the ADMIN role, or touch an account that outranks them', async () => {
    const grantAll = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body: person({ permissions: ['all'] }) });
    expect(grantAll.status).toBe(403);
    expect(grantAll.body.errors[0].message).toBe('You may grant only permissions you hold; you lack all');
    const grantAdmin = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body: person({ roles: ['ADMIN'] }) });
    expect(grantAdmin.status).toBe(403);
    const adminRole = (await cp.request('GET', '/api/v1/roles?page[size]=100', { token: admin })).body.data.find(
      (r: { name: string }) => r.name === 'ADMIN',
    );
    const grantAdminById = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body: person({ roles: [adminRole.id] }) });
    expect(grantAdminById.status).toBe(403);
    expect(grantAdminById.body.errors[0].message).toBe('You may assign only roles whose permissions you hold: ADMIN (you lack all)');

    const [adminUser] = (await cp.request('GET', `/api/v1/users?search=${encodeURIComponent(ADMIN.username)}`, { token: admin })).body.data;
    const defaultAdmin = await createUser(cp, { tenantId: adminUser.tenant, roles: ['TENANT_ADMIN'] });
    const hijack = await cp.request('PATCH', `/api/v1/users/${adminUser.id}`, {
      token: defaultAdmin.token,
      body: { password: 'taken-over-password' },
    });
    expect(hijack.status).toBe(403);
    expect((await cp.request('DELETE', `/api/v1/users/${adminUser.id}`, { token: defaultAdmin.token })).status).toBe(403);
    await cp.login(); // the admin's password is unchanged

    const byAdmin = await cp.request('POST', '/api/v1/users', {
      token: admin,
      body: person({ tenant: tenantAdmin.tenantId, permissions: ['iam.account.read'] }),
    });
    expect(byAdmin.status).toBe(201);
  });

  it('disabling a user or changing their password ends their sessions at once', async () => {
    const user = await createUser(cp, { tenantId: tenantAdmin.tenantId, roles: ['TENANT_GUEST'] });
    const disabled = await cp.request('PATCH', `/api/v1/users/${user.id}`, { token: tenantAdmin.token, body: { status: 'disabled' } });
    expect(disabled.status).toBe(200);
    expect(disabled.body.data.status).toBe('disabled');
    expect((await cp.request('GET', '/flows', { token: user.token })).status).toBe(401);
    expect((await cp.request('POST', '/login', { body: { username: user.username, password: user.password } })).status).toBe(401);

    await cp.request('PATCH', `/api/v1/users/${user.id}`, { token: tenantAdmin.token, body: { status: 'active' } });
    const session = await cp.login(user.username, user.password);
    const changed = await cp.request('PATCH', `/api/v1/users/${user.id}`, {
      token: tenantAdmin.token,
      body: { password: 'a-brand-new-password' },
    });
    expect(changed.status).toBe(200);
    expect((await cp.request('GET', '/flows', { token: session })).status).toBe(401);
    await cp.login(user.username, 'a-brand-new-password');
  });

  it('lets users change their own names and password, but not their roles, permissions or status', async () => {
    const user = await createUser(cp, { tenantId: tenantAdmin.tenantId, roles: ['TENANT_GUEST'] });
    const body = { firstname: 'Grace', password: 'my-own-new-password', currentPassword: user.password };
    const own = await cp.request('PATCH', `/api/v1/users/${user.id}`, { token: user.token, body });
    expect(own.status).toBe(200);
    expect(own.body.data.firstname).toBe('Grace');
    const fresh = await cp.login(user.username, 'my-own-new-password');
    const promote = await cp.request('PATCH', `/api/v1/users/${user.id}`, { token: fresh, body: { roles: ['TENANT_ADMIN'] } });
    expect(promote.status).toBe(403);
    expect(promote.body.errors[0].message).toContain('tenant.account.update');
  });

  it('replaces roles and permissions on PATCH, effective on the next request', async () => {
    const user = await createUser(cp, { tenantId: tenantAdmin.tenantId, roles: ['TENANT_GUEST'] });
    expect((await cp.request('POST', '/flows', { token: user.token, body: {} })).status).toBe(403);
    const developer = (await cp.request('GET', '/api/v1/roles?page[size]=100', { token: tenantAdmin.token })).body.data.find(
      (r: { name: string }) => r.name === 'TENANT_DEVELOPER',
    );
    // Roles may be named by id as well as by name; naming one both ways assigns it once.
    const res = await cp.request('PATCH', `/api/v1/users/${user.id}`, {
      token: tenantAdmin.token,
      body: { roles: [developer.id, 'TENANT_DEVELOPER'], permissions: ['flows.control'] },
    });
    expect(res.body.data).toMatchObject({ roles: ['TENANT_DEVELOPER'], permissions: ['flows.control'] });
    expect((await cp.request('POST', '/flows', { token: user.token, body: {} })).status).toBe(400);
  });

  it('creates service accounts without a password, and refuses a person without one', async () => {
    const service = await cp.request('POST', '/api/v1/users', {
      token: tenantAdmin.token,
      body: { username: `svc-${randomUUID().slice(0, 6)}`, kind: 'service' },
    });
    expect(service.status).toBe(201);
    expect(service.body.data.kind).toBe('service');
    const noPassword = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body: person({ password: undefined }) });
    expect(noPassword.status).toBe(400);
    expect(noPassword.body.errors[0].message).toMatch(/password/);
    const servicePassword = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body: person({ kind: 'service' }) });
    expect(servicePassword.status).toBe(400);
  });

  it('creates an account of no tenant for an admin who asks for one (tenant: null), which registers a platform-wide runner', async () => {
    const body = { username: `runner-${randomUUID().slice(0, 6)}`, kind: 'service', tenant: null, permissions: ['runners.write'] };
    const res = await cp.request('POST', '/api/v1/users', { token: admin, body });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({ tenant: null, kind: 'service', permissions: ['runners.write'] });
    const token = (await cp.request('POST', '/api/v1/tokens', { token: admin, body: { accountId: res.body.data.id } })).body.data.token;
    const runner = await cp.request('POST', '/runners', {
      token,
      body: { name: 'shared-1', host: 'rack-1', driver: 'process', capacity: 4 },
    });
    expect(runner.status).toBe(201);
    expect(runner.body.data.tenant).toBeNull();

    const refused = await cp.request('POST', '/api/v1/users', {
      token: tenantAdmin.token,
      body: { ...body, username: `x-${body.username}` },
    });
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0].message).toBe('Only admins create accounts of no tenant');
  });

  it('refuses a taken username (409), self-deletion and self-disabling (409)', async () => {
    const body = person();
    expect((await cp.request('POST', '/api/v1/users', { token: admin, body: { ...body, tenant: tenantAdmin.tenantId } })).status).toBe(201);
    const again = await cp.request('POST', '/api/v1/users', {
      token: tenantAdmin.token,
      body: { ...body, username: body.username.toUpperCase() },
    });
    expect(again.status).toBe(409);
    const rename = await cp.request('PATCH', `/api/v1/users/${other.id}`, { token: other.token, body: { username: body.username } });
    expect(rename.status).toBe(409);
    expect((await cp.request('DELETE', `/api/v1/users/${tenantAdmin.id}`, { token: tenantAdmin.token })).status).toBe(409);
    expect(
      (await cp.request('PATCH', `/api/v1/users/${tenantAdmin.id}`, { token: tenantAdmin.token, body: { status: 'disabled' } })).status,
    ).toBe(409);
  });

  it('deletes a user with their tokens', async () => {
    const user = await createUser(cp, { tenantId: tenantAdmin.tenantId });
    expect((await cp.request('DELETE', `/api/v1/users/${user.id}`, { token: tenantAdmin.token })).status).toBe(204);
    expect((await cp.request('GET', `/api/v1/users/${user.id}`, { token: tenantAdmin.token })).status).toBe(404);
    expect((await cp.request('GET', '/api/v1/users/me', { token: user.token })).status).toBe(401);
    await waitFor(
      async () => events.filter((e) => e.headers.name === 'iam.user.deleted' && e.payload.id === user.id),
      (f) => f.length === 1,
    );
  });

  it('answers bad input with a 400 that names the problem, and creates nothing', async () => {
    const before = (await cp.request('GET', '/api/v1/users', { token: admin })).body.meta.total;
    const inTenant = (overrides: Record<string, unknown>) => person({ tenant: tenantAdmin.tenantId, ...overrides });
    const cases: [unknown, RegExp][] = [
      ['{"username":', /JSON|body/i],
      [inTenant({ password: 'short' }), /password: must be at least 12/],
      [inTenant({ username: 42 }), /username/],
      [inTenant({ roles: 'ADMIN' }), /roles/],
      [inTenant({ isAdmin: true }), /isAdmin/],
      [inTenant({ permissions: ['flows.fly'] }), /Unknown permissions: flows.fly/],
      [inTenant({ roles: ['NO_SUCH_ROLE', randomUUID()] }), /Unknown roles: NO_SUCH_ROLE, [0-9a-f-]{36}/],
      [person(), /tenant: name the tenant/],
      [inTenant({ tenant: 'nope' }), /tenant/],
      [inTenant({ tenant: randomUUID() }), /no tenant/],
    ];
    for (const [body, message] of cases) {
      const res = await cp.request('POST', '/api/v1/users', { token: admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' | '), JSON.stringify(body)).toMatch(message);
    }
    expect((await cp.request('GET', '/api/v1/users', { token: admin })).body.meta.total).toBe(before);
    expect((await cp.request('GET', '/api/v1/users/not-a-uuid', { token: admin })).status).toBe(400);
    expect((await cp.request('GET', `/api/v1/users/${randomUUID()}`, { token: admin })).status).toBe(404);
    expect((await cp.request('PATCH', `/api/v1/users/${other.id}`, { token: admin, body: { status: 'paused' } })).status).toBe(400);
  });

  it('401 without a token, 403 without an account permission', async () => {
    const guest = await createUser(cp, { tenantId: tenantAdmin.tenantId, roles: ['TENANT_GUEST'] });
    expect((await cp.request('GET', '/api/v1/users')).status).toBe(401);
    const res = await cp.request('GET', '/api/v1/users', { token: guest.token });
    expect(res.status).toBe(403);
    expect(res.body.errors[0].message).toBe('Missing permission: iam.account.read or tenant.account.read');
    expect((await cp.request('POST', '/api/v1/users', { token: guest.token, body: person() })).status).toBe(403);
  });
});
