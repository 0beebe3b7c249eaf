import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../control-plane/iam/schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createServiceAccount, createTenant, createUser, type TestUser } from '../support/tenants.js';

/** The accounts of issue 10 in one tenant: a tenant admin, an integrator, a developer, and two holding one account permission each. */
interface Crew {
  admin: TestUser;
  integrator: TestUser;
  developer: TestUser;
  updater: TestUser;
  creator: TestUser;
}

const person = (overrides: Record<string, unknown> = {}) => ({
  username: `p-${randomUUID().slice(0, 8)}@example.com`,
  password: 'a-long-enough-password',
  ...overrides,
});

describe('nobody grants what they do not hold, or touches an account that holds more', () => {
  let cp: TestControlPlane;
  let root: string;
  let crew: Crew;
  let otherAdmin: TestUser;

  async function startCrew(): Promise<Crew> {
    const tenantId = (await createTenant(cp)).id;
    return {
      admin: await createUser(cp, { tenantId, roles: ['TENANT_ADMIN'] }),
      integrator: await createUser(cp, { tenantId, roles: ['TENANT_INTEGRATOR'] }),
      developer: await createUser(cp, { tenantId, roles: ['TENANT_DEVELOPER'] }),
      updater: await createUser(cp, { tenantId, permissions: ['tenant.account.update'] }),
      creator: await createUser(cp, { tenantId, permissions: ['tenant.account.create'] }),
    };
  }

  /** An account as an admin reads it: what is really stored. */
  const stored = async (user: { id: string }) => (await cp.request('GET', `/api/v1/users/${user.id}`, { token: root })).body.data;
  const patch = (token: string, user: { id: string }, body: unknown) => cp.request('PATCH', `/api/v1/users/${user.id}`, { token, body });
  const loginStatus = async (username: string, password: string) =>
    (await cp.request('POST', '/login', { body: { username, password } })).status;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    root = await cp.login();
    crew = await startCrew();
    otherAdmin = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_ADMIN'] });
  });
  afterAll(() => cp.close());

  it('an account with only tenant.account.update cannot grant itself a permission or a role it lacks', async () => {
    const { updater } = crew;
    const raw = await patch(updater.token, updater, { permissions: ['tenant.account.update', 'secrets.secret.readRaw'] });
    expect(raw.status).toBe(403);
    expect(raw.body.errors[0].message).toBe('You may grant only permissions you hold; you lack secrets.secret.readRaw');
    const admin = await patch(updater.token, updater, { roles: ['TENANT_ADMIN'] });
    expect(admin.status).toBe(403);
    expect(admin.body.errors[0].message).toBe('You may assign only roles whose permissions you hold: TENANT_ADMIN (you lack tenant.all)');
    const everything = await patch(updater.token, updater, { permissions: ['tenant.all'] });
    expect(everything.status).toBe(403);
    expect(await stored(updater)).toMatchObject({ roles: [], permissions: ['tenant.account.update'] });
    expect((await cp.request('GET', '/api/v1/secrets', { token: updater.token })).status).toBe(403);
  });

  it('an account with only tenant.account.update cannot reset, disable or demote the tenant admin, nor raise others', async () => {
    const { updater, admin, developer } = crew;
    const attempts: [TestUser, Record<string, unknown>][] = [
      [admin, { password: 'taken-over-password' }],
      [admin, { status: 'disabled' }],
      [admin, { roles: [] }],
      [admin, { permissions: ['tenant.account.update'] }],
      [admin, { firstname: 'Mallory' }],
      [developer, { password: 'taken-over-password' }],
      [developer, { permissions: ['secrets.secret.readRaw'] }],
    ];
    for (const [target, body] of attempts) {
      const res = await patch(updater.token, target, body);
      expect(res.status, JSON.stringify(body)).toBe(403);
    }
    const reset = await patch(updater.token, admin, { password: 'taken-over-password' });
    expect(reset.body.errors[0].message).toBe(
      `Account ${admin.username} holds permissions you lack (tenant.all), so you may not change it`,
    );
    expect((await patch(updater.token, developer, { roles: ['TENANT_ADMIN'] })).status).toBe(403);

    expect(await stored(admin)).toMatchObject({ status: 'active', roles: ['TENANT_ADMIN'], permissions: [], firstname: null });
    expect(await stored(developer)).toMatchObject({ roles: ['TENANT_DEVELOPER'], permissions: [] });
    expect(await loginStatus(admin.username, admin.password)).toBe(200);
    expect(await loginStatus(admin.username, 'taken-over-password')).toBe(401);
    expect(await loginStatus(developer.username, developer.password)).toBe(200);
    const deleter = await createUser(cp, { tenantId: admin.tenantId, permissions: ['tenant.account.delete'] });
    const deleted = await cp.request('DELETE', `/api/v1/users/${admin.id}`, { token: deleter.token });
    expect(deleted.status).toBe(403);
    expect(deleted.body.errors[0].message).toBe(
      `Account ${admin.username} holds permissions you lack (tenant.all), so you may not delete it`,
    );
    expect(await stored(admin)).toMatchObject({ id: admin.id });
  });

  it('an account with only tenant.account.create cannot create a TENANT_ADMIN, or an account holding more than it', async () => {
    const { creator } = crew;
    const cases: [Record<string, unknown>, string][] = [
      [{ roles: ['TENANT_ADMIN'] }, 'You may assign only roles whose permissions you hold: TENANT_ADMIN (you lack tenant.all)'],
      [
        { roles: ['TENANT_DEVELOPER'] },
        'You may assign only roles whose permissions you hold: TENANT_DEVELOPER (you lack components.read, components.write, executions.read, flows.read, flows.write, logs.read, tenant.profile.read)',
      ],
      [{ permissions: ['tenant.all'] }, 'You may grant only permissions you hold; you lack tenant.all'],
      [
        { permissions: ['tenant.account.create', 'tenant.account.update'] },
        'You may grant only permissions you hold; you lack tenant.account.update',
      ],
    ];
    for (const [grant, message] of cases) {
      const body = person(grant);
      const res = await cp.request('POST', '/api/v1/users', { token: creator.token, body });
      expect(res.status, JSON.stringify(grant)).toBe(403);
      expect(res.body.errors[0].message).toBe(message);
      expect(await loginStatus(body.username, body.password)).toBe(401);
      expect((await cp.request('GET', `/api/v1/users?search=${encodeURIComponent(body.username)}`, { token: root })).body.data).toEqual([]);
    }
    // What it holds, it may give: a plain account, or one with its own permission.
    const plain = await cp.request('POST', '/api/v1/users', {
      token: creator.token,
      body: person({ permissions: ['tenant.account.create'] }),
    });
    expect(plain.status).toBe(201);
    expect(plain.body.data).toMatchObject({ tenant: creator.tenantId, roles: [], permissions: ['tenant.account.create'] });
  });

  it('an integrator and a developer cannot raise themselves or create accounts', async () => {
    for (const user of [crew.integrator, crew.developer]) {
      expect((await patch(user.token, user, { roles: ['TENANT_ADMIN'] })).status).toBe(403);
      expect((await patch(user.token, user, { permissions: ['secrets.secret.readRaw'] })).status).toBe(403);
      expect((await cp.request('POST', '/api/v1/users', { token: user.token, body: person() })).status).toBe(403);
      expect(
        (
          await cp.request('POST', '/api/v1/roles', {
            token: user.token,
            body: { name: `R_${randomUUID().slice(0, 8)}`, permissions: ['flows.read'] },
          })
        ).status,
      ).toBe(403);
    }
    expect(await stored(crew.integrator)).toMatchObject({ roles: ['TENANT_INTEGRATOR'], permissions: [] });
    expect(await stored(crew.developer)).toMatchObject({ roles: ['TENANT_DEVELOPER'], permissions: [] });
  });

  it('grants of what one holds still work: tenant.all covers every common permission, not the restricted ones', async () => {
    const { admin, integrator } = crew;
    const res = await patch(admin.token, integrator, {
      roles: ['TENANT_INTEGRATOR', 'TENANT_DEVELOPER'],
      permissions: ['secrets.secret.readRaw'],
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ roles: ['TENANT_DEVELOPER', 'TENANT_INTEGRATOR'], permissions: ['secrets.secret.readRaw'] });
    const deputy = await cp.request('POST', '/api/v1/users', { token: admin.token, body: person({ roles: ['TENANT_ADMIN'] }) });
    expect(deputy.status).toBe(201);
    const restricted = await patch(admin.token, integrator, { permissions: ['iam.account.read'] });
    expect(restricted.status).toBe(403);
    expect(restricted.body.errors[0].message).toBe('You may grant only permissions you hold; you lack iam.account.read');

    // An account with a few permissions gives exactly those, to accounts holding no more than it.
    const tenantId = admin.tenantId;
    const lead = await createUser(cp, { tenantId, permissions: ['tenant.account.update', 'flows.read', 'flows.write'] });
    const newcomer = await createUser(cp, { tenantId, roles: ['USER'] });
    const given = await patch(lead.token, newcomer, { permissions: ['flows.read'] });
    expect(given.status).toBe(200);
    expect((await cp.request('GET', '/flows', { token: newcomer.token })).status).toBe(200);
    expect((await patch(lead.token, newcomer, { password: 'a-brand-new-password' })).status).toBe(200);
    expect(await loginStatus(newcomer.username, 'a-brand-new-password')).toBe(200);
  });

  it('an admin of another tenant is out of reach: 404', async () => {
    expect((await patch(crew.updater.token, otherAdmin, { password: 'taken-over-password' })).status).toBe(404);
    expect(await loginStatus(otherAdmin.username, otherAdmin.password)).toBe(200);
  });

  describe('roles', () => {
    const roleName = () => `ROLE_${randomUUID().slice(0, 8)}`;
    const createRole = (token: string, permissions: string[]) =>
      cp.request('POST', '/api/v1/roles', { token, body: { name: roleName(), permissions } });

    it('hold only what their author holds, on creation and on change', async () => {
      const author = await createUser(cp, {
        tenantId: crew.admin.tenantId,
        permissions: ['tenant.roles.create', 'tenant.roles.update', 'tenant.account.update', 'flows.read'],
      });
      const created = await createRole(author.token, ['flows.read', 'secrets.secret.readRaw']);
      expect(created.status).toBe(403);
      expect(created.body.errors[0].message).toBe('You may grant only permissions you hold; you lack secrets.secret.readRaw');
      expect((await createRole(author.token, ['tenant.all'])).status).toBe(403);

      const own = await createRole(author.token, ['flows.read']);
      expect(own.status).toBe(201);
      const raised = await cp.request('PATCH', `/api/v1/roles/${own.body.data.id}`, {
        token: author.token,
        body: { permissions: ['flows.read', 'secrets.secret.readRaw'] },
      });
      expect(raised.status).toBe(403);
      expect(raised.body.errors[0].message).toBe('You may grant only permissions you hold; you lack secrets.secret.readRaw');
      expect((await cp.request('GET', `/api/v1/roles/${own.body.data.id}`, { token: root })).body.data.permissions).toEqual(['flows.read']);
      // ...so assigning it to oneself gives nothing new.
      expect((await patch(author.token, author, { roles: [own.body.data.name] })).status).toBe(200);
      expect((await cp.request('GET', '/api/v1/secrets', { token: author.token })).status).toBe(403);
    });

    it('that outrank the author, or are held by accounts that do, it may neither change nor delete', async () => {
      const author = await createUser(cp, {
        tenantId: crew.admin.tenantId,
        permissions: ['tenant.roles.update', 'tenant.roles.delete', 'flows.read'],
      });
      const strong = await createRole(crew.admin.token, ['flows.read', 'secrets.secret.readRaw']);
      const rename = await cp.request('PATCH', `/api/v1/roles/${strong.body.data.id}`, {
        token: author.token,
        body: { permissions: ['flows.read'] },
      });
      expect(rename.status).toBe(403);
      expect(rename.body.errors[0].message).toBe(
        `Role ${strong.body.data.name} holds permissions you lack (secrets.secret.readRaw), so you may not change or delete it`,
      );
      expect((await cp.request('DELETE', `/api/v1/roles/${strong.body.data.id}`, { token: author.token })).status).toBe(403);

      // A role within the author's reach, but held by the tenant admin: changing it would change them.
      const shared = await createRole(crew.admin.token, ['flows.read']);
      const deputy = await createUser(cp, { tenantId: crew.admin.tenantId, roles: ['TENANT_ADMIN'] });
      expect((await patch(crew.admin.token, deputy, { roles: ['TENANT_ADMIN', shared.body.data.name] })).status).toBe(200);
      const emptied = await cp.request('PATCH', `/api/v1/roles/${shared.body.data.id}`, { token: author.token, body: { permissions: [] } });
      expect(emptied.status).toBe(403);
      expect(emptied.body.errors[0].message).toBe(
        `Role ${shared.body.data.name} is held by accounts with permissions you lack (tenant.all), so you may not change or delete it`,
      );
      expect((await cp.request('DELETE', `/api/v1/roles/${shared.body.data.id}`, { token: author.token })).status).toBe(403);
      for (const role of [strong, shared]) {
        expect((await cp.request('GET', `/api/v1/roles/${role.body.data.id}`, { token: root })).body.data.permissions).toEqual(
          role.body.data.permissions,
        );
      }

      // Held only by accounts within its reach, it may.
      const mine = await createRole(crew.admin.token, ['flows.read']);
      const reader = await createUser(cp, { tenantId: crew.admin.tenantId });
      expect((await patch(crew.admin.token, reader, { roles: [mine.body.data.name] })).status).toBe(200);
      expect(
        (await cp.request('PATCH', `/api/v1/roles/${mine.body.data.id}`, { token: author.token, body: { description: 'readers' } })).status,
      ).toBe(200);
      expect((await cp.request('DELETE', `/api/v1/roles/${mine.body.data.id}`, { token: author.token })).status).toBe(204);
    });
  });

  describe('service tokens', () => {
    it('never outrank their minter, whatever the minter’s scope', async () => {
      const minter = await createUser(cp, { tenantId: crew.admin.tenantId, permissions: ['tenant.token.create', 'flows.read'] });
      const integration = await createServiceAccount(cp, crew.admin.tenantId, { roles: ['TENANT_INTEGRATOR'] });
      const refused = await cp.request('POST', '/api/v1/tokens', { token: minter.token, body: { accountId: integration.id } });
      expect(refused.status).toBe(403);
      const lacked =
        'components.read, executions.read, flows.control, flows.write, logs.read, runners.read, secrets.secret.read, secrets.secret.write, tenant.profile.read';
      expect(refused.body.errors[0].message).toBe(
        `Account ${integration.username} holds permissions you lack (${lacked}), so you may not mint tokens for it`,
      );
      const reader = await createServiceAccount(cp, crew.admin.tenantId, { permissions: ['flows.read'] });
      expect((await cp.request('POST', '/api/v1/tokens', { token: minter.token, body: { accountId: reader.id } })).status).toBe(201);
      expect((await cp.request('POST', '/api/v1/tokens', { token: crew.admin.token, body: { accountId: integration.id } })).status).toBe(
        201,
      );

      // A global minter without `all` cannot mint a token for an account holding it.
      const [defaultTenant] = await cp.services.db
        .select({ tenantId: users.tenantId })
        .from(users)
        .where(eq(users.username, 'admin@hookline.local'));
      const operator = await createUser(cp, { tenantId: defaultTenant!.tenantId!, permissions: ['iam.token.create'] });
      const almighty = await createServiceAccount(cp, defaultTenant!.tenantId, { roles: ['ADMIN'] });
      const global = await cp.request('POST', '/api/v1/tokens', { token: operator.token, body: { accountId: almighty.id } });
      expect(global.status).toBe(403);
      expect(global.body.errors[0].message).toBe(
        `Account ${almighty.username} holds permissions you lack (all), so you may not mint tokens for it`,
      );
      expect((await cp.request('GET', `/api/v1/tokens?filter[accountId]=${almighty.id}`, { token: root })).body.data).toEqual([]);
    });
  });
});
