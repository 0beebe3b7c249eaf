import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outbox } from '../../control-plane/bus/schema.js';
import { tokens } from '../../control-plane/iam/schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createServiceAccount, createTenant, createUser, type TestUser } from '../support/tenants.js';

describe('/api/v1/tokens', () => {
  let cp: TestControlPlane;
  let admin: string;
  let tenantAdmin: TestUser;
  let otherTenantAdmin: TestUser;
  let events: EventEnvelope[];
  const published = (name: string, id: string, n = 1) =>
    waitFor(
      async () => events.filter((e) => e.headers.name === name && e.payload.id === id),
      (found) => found.length >= n,
    );

  beforeAll(async () => {
    cp = await startTestControlPlane();
    events = await collectEvents(cp, 'iam.token.*');
    admin = await cp.login();
    tenantAdmin = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_ADMIN'] });
    otherTenantAdmin = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_ADMIN'] });
  });
  afterAll(() => cp.close());

  it('mints a token shown once, stored only as a hash, that authenticates as the service account', async () => {
    const account = await createServiceAccount(cp, tenantAdmin.tenantId, { roles: ['TENANT_INTEGRATOR'] });
    const res = await cp.request('POST', '/api/v1/tokens', { token: admin, body: { accountId: account.id, description: 'CI deploys' } });
    expect(res.status).toBe(201);
    const { token, id } = res.body.data;
    expect(token).toMatch(/^hlk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(res.body.data).toMatchObject({
      accountId: account.id,
      tenant: tenantAdmin.tenantId,
      description: 'CI deploys',
      expiresAt: null,
      revokedAt: null,
    });

    const [row] = await cp.services.db.select().from(tokens).where(eq(tokens.id, id));
    expect(JSON.stringify(row)).not.toContain(token.split('_').pop());

    const flows = await cp.request('GET', '/flows', { token });
    expect(flows.status).toBe(200);
    const read = await cp.request('GET', `/api/v1/tokens/${id}`, { token: admin });
    expect(read.body.data).not.toHaveProperty('token');

    const [event] = await published('iam.token.created', id);
    expect(event!.payload).toMatchObject({ id, accountId: account.id, tenant: tenantAdmin.tenantId });
  });

  it('revokes a token at once; revoking again is a 204 that changes nothing', async () => {
    const account = await createServiceAccount(cp, tenantAdmin.tenantId, { roles: ['TENANT_GUEST'] });
    const { body } = await cp.request('POST', '/api/v1/tokens', { token: tenantAdmin.token, body: { accountId: account.id } });
    expect((await cp.request('GET', '/flows', { token: body.data.token })).status).toBe(200);
    expect((await cp.request('DELETE', `/api/v1/tokens/${body.data.id}`, { token: tenantAdmin.token })).status).toBe(204);
    const after = await cp.request('GET', '/flows', { token: body.data.token });
    expect(after.status).toBe(401);
    expect(after.body.errors[0].message).toMatch(/revoked/);
    expect((await cp.request('DELETE', `/api/v1/tokens/${body.data.id}`, { token: tenantAdmin.token })).status).toBe(204);
    await published('iam.token.deleted', body.data.id);
    // Once the outbox is empty, a second event would have been published too.
    await waitFor(
      async () => (await cp.services.db.select().from(outbox)).length,
      (n) => n === 0,
    );
    expect(events.filter((e) => e.headers.name === 'iam.token.deleted' && e.payload.id === body.data.id)).toHaveLength(1);
  });

  it('rejects a token whose secret is wrong, or that has expired', async () => {
    const account = await createServiceAccount(cp, tenantAdmin.tenantId, { roles: ['TENANT_GUEST'] });
    const { body } = await cp.request('POST', '/api/v1/tokens', { token: admin, body: { accountId: account.id } });
    const tampered = body.data.token.slice(0, -4) + (body.data.token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await cp.request('GET', '/flows', { token: tampered })).status).toBe(401);
    await cp.services.db
      .update(tokens)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(tokens.id, body.data.id));
    const expired = await cp.request('GET', '/flows', { token: body.data.token });
    expect(expired.status).toBe(401);
    expect(expired.body.errors[0].message).toMatch(/expired/);
  });

  it('confines tenant admins to their own tenant', async () => {
    const mine = await createServiceAccount(cp, tenantAdmin.tenantId, { roles: ['TENANT_GUEST'] });
    const theirs = await createServiceAccount(cp, otherTenantAdmin.tenantId, { roles: ['TENANT_GUEST'] });
    const created = await cp.request('POST', '/api/v1/tokens', { token: tenantAdmin.token, body: { accountId: mine.id } });
    expect(created.status).toBe(201);
    expect((await cp.request('POST', '/api/v1/tokens', { token: tenantAdmin.token, body: { accountId: theirs.id } })).status).toBe(404);
    expect((await cp.request('GET', `/api/v1/tokens/${created.body.data.id}`, { token: otherTenantAdmin.token })).status).toBe(404);
    expect((await cp.request('DELETE', `/api/v1/tokens/${created.body.data.id}`, { token: otherTenantAdmin.token })).status).toBe(404);
    expect((await cp.request('GET', '/flows', { token: created.body.data.token })).status).toBe(200);

    const listed = await cp.request('GET', '/api/v1/tokens?page[size]=100', { token: otherTenantAdmin.token });
    expect(listed.status).toBe(200);
    expect(listed.body.data.every((t: { tenant: string }) => t.tenant === otherTenantAdmin.tenantId)).toBe(true);
    const all = await cp.request('GET', `/api/v1/tokens?filter[accountId]=${mine.id}`, { token: admin });
    expect(all.body.data.map((t: { id: string }) => t.id)).toEqual([created.body.data.id]);
    expect(all.body.meta).toMatchObject({ total: 1, page: 1 });
  });

  it('lets no tenant admin mint a token that outranks them', async () => {
    const powerful = await createServiceAccount(cp, tenantAdmin.tenantId, { permissions: ['iam.account.create'] });
    const res = await cp.request('POST', '/api/v1/tokens', { token: tenantAdmin.token, body: { accountId: powerful.id } });
    expect(res.status).toBe(403);
    expect(res.body.errors[0].message).toBe(
      `Account ${powerful.username} holds permissions you lack (iam.account.create), so you may not mint tokens for it`,
    );
    expect((await cp.request('POST', '/api/v1/tokens', { token: admin, body: { accountId: powerful.id } })).status).toBe(201);
  });

  it('403 without a token permission, 401 without a token', async () => {
    const guest = await createUser(cp, { tenantId: tenantAdmin.tenantId, roles: ['TENANT_GUEST'] });
    const account = await createServiceAccount(cp, tenantAdmin.tenantId);
    const res = await cp.request('POST', '/api/v1/tokens', { token: guest.token, body: { accountId: account.id } });
    expect(res.status).toBe(403);
    expect(res.body.errors[0].message).toContain('tenant.token.create');
    expect((await cp.request('GET', '/api/v1/tokens', { token: guest.token })).status).toBe(403);
    expect((await cp.request('GET', '/api/v1/tokens')).status).toBe(401);
  });

  it('rejects bad input with a 400 that says what is wrong', async () => {
    const person = await createUser(cp, { tenantId: tenantAdmin.tenantId });
    const account = await createServiceAccount(cp, tenantAdmin.tenantId);
    const cases: [unknown, RegExp][] = [
      ['{"accountId":', /JSON|body/i],
      [{ accountId: 'not-a-uuid' }, /accountId/],
      [{ accountId: account.id, expiresAt: 'tomorrow' }, /expiresAt/],
      [{ accountId: account.id, expiresAt: '2001-01-01T00:00:00Z' }, /future/],
      [{ accountId: account.id, scopes: ['all'] }, /scopes/],
      [{ accountId: person.id }, /person/],
    ];
    for (const [body, message] of cases) {
      const res = await cp.request('POST', '/api/v1/tokens', { token: admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' '), JSON.stringify(body)).toMatch(message);
    }
    expect((await cp.request('POST', '/api/v1/tokens', { token: admin, body: { accountId: randomUUID() } })).status).toBe(404);
    expect((await cp.request('GET', '/api/v1/tokens/nope', { token: admin })).status).toBe(400);
    expect((await cp.request('GET', `/api/v1/tokens/${randomUUID()}`, { token: admin })).status).toBe(404);
    expect(await cp.services.db.select().from(tokens).where(eq(tokens.userId, account.id))).toEqual([]);
  });

  describe('POST /api/v1/tokens/introspect', () => {
    it('tells who a session or service token stands for', async () => {
      const session = await cp.request('POST', '/api/v1/tokens/introspect', { token: admin, body: { token: tenantAdmin.token } });
      expect(session.status).toBe(200);
      expect(session.body.data).toMatchObject({
        active: true,
        tokenKind: 'session',
        user: { id: tenantAdmin.id, username: tenantAdmin.username },
        tenant: tenantAdmin.tenantId,
        roles: ['TENANT_ADMIN'],
      });
      expect(session.body.data.permissions).toContain('tenant.all');
      expect(Date.parse(session.body.data.expiresAt)).toBeGreaterThan(Date.now());

      const account = await createServiceAccount(cp, tenantAdmin.tenantId, { roles: ['TENANT_INTEGRATOR'] });
      const minted = await cp.request('POST', '/api/v1/tokens', { token: admin, body: { accountId: account.id } });
      const service = await cp.request('POST', '/api/v1/tokens/introspect', { token: admin, body: { token: minted.body.data.token } });
      expect(service.body.data).toMatchObject({
        active: true,
        tokenKind: 'service',
        tenant: tenantAdmin.tenantId,
        roles: ['TENANT_INTEGRATOR'],
        expiresAt: null,
      });
      expect(service.body.data.permissions).toContain('flows.control');
    });

    it('answers only active: false for a token that does not authenticate', async () => {
      for (const token of ['garbage', 'hlk_00000000000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', `${admin}x`]) {
        const res = await cp.request('POST', '/api/v1/tokens/introspect', { token: admin, body: { token } });
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ data: { active: false } });
      }
    });

    it('needs iam.token.introspect', async () => {
      const res = await cp.request('POST', '/api/v1/tokens/introspect', { token: tenantAdmin.token, body: { token: tenantAdmin.token } });
      expect(res.status).toBe(403);
      expect(res.body.errors[0].message).toContain('iam.token.introspect');
    });
  });
});
