import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { addressSchema, addSchema, countSchemas, createDomain } from './support.js';

describe('/api/v1/domains', () => {
  let cp: TestControlPlane;
  let admin: string;
  let owner: TestUser;
  let guest: TestUser;
  let stranger: TestUser;
  let events: EventEnvelope[];

  beforeAll(async () => {
    cp = await startTestControlPlane();
    admin = await cp.login();
    owner = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    guest = await createUser(cp, { tenantId: owner.tenantId, roles: ['TENANT_GUEST'] });
    stranger = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    events = await collectEvents(cp, 'metadata.domain.*');
  });
  afterAll(() => cp?.close());

  it('creates, reads, lists, changes and deletes a domain, emitting an event for each change', async () => {
    const created = await createDomain(cp, owner.token, {
      name: 'Addresses',
      description: 'Postal data',
      owners: [{ id: 'someone', type: 'user' }],
    });
    expect(created).toMatchObject({ name: 'Addresses', description: 'Postal data', public: false, tenant: owner.tenantId });
    expect(created.owners).toEqual([
      { id: 'someone', type: 'user' },
      { id: owner.id, type: 'user' },
      { id: owner.tenantId, type: 'tenant' },
    ]);

    const read = await cp.request('GET', `/api/v1/domains/${created.id}`, { token: guest.token });
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual(created);

    const list = await cp.request('GET', '/api/v1/domains?page[size]=100', { token: guest.token });
    expect(list.status).toBe(200);
    expect(list.body.data.map((d: { id: string }) => d.id)).toContain(created.id);
    expect(list.body.meta).toMatchObject({ page: 1, perPage: 100, total: list.body.data.length });

    const changed = await cp.request('PUT', `/api/v1/domains/${created.id}`, { token: owner.token, body: { public: true, owners: [] } });
    expect(changed.status).toBe(200);
    expect(changed.body.data).toMatchObject({
      name: 'Addresses',
      description: 'Postal data',
      public: true,
      owners: [{ id: owner.tenantId, type: 'tenant' }],
    });

    expect((await cp.request('DELETE', `/api/v1/domains/${created.id}`, { token: owner.token })).status).toBe(204);
    expect((await cp.request('GET', `/api/v1/domains/${created.id}`, { token: owner.token })).status).toBe(404);

    const names = await waitFor(
      async () => events.filter((e) => e.payload.id === created.id).map((e) => e.headers.name),
      (n) => n.length === 3,
    );
    expect(names).toEqual(['metadata.domain.created', 'metadata.domain.modified', 'metadata.domain.deleted']);
    expect(events.find((e) => e.payload.id === created.id)!.payload).toEqual({ id: created.id, tenant: owner.tenantId, user: owner.id });
  });

  it('pages the list by name', async () => {
    const tenant = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    for (const name of ['c', 'a', 'b']) await createDomain(cp, tenant.token, { name });
    const second = await cp.request('GET', '/api/v1/domains?page[size]=2&page[number]=2', { token: tenant.token });
    // Only public domains of other tenants are visible, and the ones created here are private.
    const own = second.body.data.filter((d: { tenant: string }) => d.tenant === tenant.tenantId);
    expect(own.map((d: { name: string }) => d.name)).toEqual(['c']);
    expect(second.body.meta).toMatchObject({ page: 2, perPage: 2, totalPages: Math.ceil(second.body.meta.total / 2) });
  });

  it('deletes a domain’s schemas with it', async () => {
    const domain = await createDomain(cp, owner.token);
    await addSchema(cp, owner.token, domain.id, { uri: 'address.json', value: addressSchema });
    expect(await countSchemas(cp, domain.id)).toBe(1);
    expect((await cp.request('DELETE', `/api/v1/domains/${domain.id}`, { token: owner.token })).status).toBe(204);
    expect(await countSchemas(cp, domain.id)).toBe(0);
  });

  it('answers 401 without a token and 403 without metadata.domains.crud', async () => {
    const domain = await createDomain(cp, owner.token);
    const routes: [string, string, unknown?][] = [
      ['GET', '/api/v1/domains'],
      ['POST', '/api/v1/domains', { name: 'x' }],
      ['GET', `/api/v1/domains/${domain.id}`],
      ['PUT', `/api/v1/domains/${domain.id}`, { name: 'x' }],
      ['DELETE', `/api/v1/domains/${domain.id}`],
    ];
    for (const [method, path, body] of routes) {
      const res = await cp.request(method, path, { body });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.body.errors[0].code).toBe('unauthorized');
      expect((await cp.request(method, path, { body, token: 'not-a-token' })).status, `${method} ${path}`).toBe(401);
    }
    for (const [method, path, body] of routes.filter(([method]) => method !== 'GET')) {
      const res = await cp.request(method, path, { body, token: guest.token });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.errors[0].message).toBe('Missing permission: metadata.domains.crud');
    }
    expect((await cp.request('GET', `/api/v1/domains/${domain.id}`, { token: guest.token })).status).toBe(200);
  });

  it('hides another tenant’s private domain (404) and lets everyone read, not change, a public one', async () => {
    const hidden = await createDomain(cp, stranger.token, { name: 'Private' });
    const shown = await createDomain(cp, stranger.token, { name: 'Shared', public: true });

    for (const [method, body] of [['GET'], ['PUT', { name: 'mine' }], ['DELETE']] as const) {
      expect((await cp.request(method, `/api/v1/domains/${hidden.id}`, { token: owner.token, body })).status, method).toBe(404);
    }
    const list = await cp.request('GET', '/api/v1/domains?page[size]=100', { token: owner.token });
    const ids = list.body.data.map((d: { id: string }) => d.id);
    expect(ids).toContain(shown.id);
    expect(ids).not.toContain(hidden.id);

    expect((await cp.request('GET', `/api/v1/domains/${shown.id}`, { token: guest.token })).body.data.name).toBe('Shared');
    const change = await cp.request('PUT', `/api/v1/domains/${shown.id}`, { token: owner.token, body: { name: 'mine' } });
    expect(change.status).toBe(403);
    expect(change.body.errors[0].message).toMatch(/another tenant/);
    expect((await cp.request('DELETE', `/api/v1/domains/${shown.id}`, { token: owner.token })).status).toBe(403);

    // Holders of `all` see and change every domain.
    expect((await cp.request('GET', `/api/v1/domains/${hidden.id}`, { token: admin })).status).toBe(200);
    expect((await cp.request('PUT', `/api/v1/domains/${hidden.id}`, { token: admin, body: { description: 'checked' } })).status).toBe(200);
  });

  it('refuses malformed input with clear 4xx messages', async () => {
    const domain = await createDomain(cp, owner.token);
    const cases: [unknown, RegExp][] = [
      ['{"name":', /JSON/i],
      [{}, /name/],
      [{ name: '   ' }, /name/],
      [{ name: 'x', public: 'yes' }, /public/],
      [{ name: 'x', owners: [{ id: 'u', type: 'group' }] }, /owners\.0\.type/],
      [{ name: 'x', color: 'red' }, /color/],
      [{ name: 'x'.repeat(201) }, /name/],
    ];
    for (const [body, message] of cases) {
      const res = await cp.request('POST', '/api/v1/domains', { token: owner.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' | ')).toMatch(message);
    }
    const text = await cp.request('POST', '/api/v1/domains', {
      token: owner.token,
      body: 'name=x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    expect((await cp.request('PUT', `/api/v1/domains/${domain.id}`, { token: owner.token, body: { public: 1 } })).status).toBe(400);
    expect((await cp.request('GET', '/api/v1/domains/abc', { token: owner.token })).body.errors[0].message).toMatch(/^id: /);
    expect((await cp.request('GET', '/api/v1/domains/abc', { token: owner.token })).status).toBe(400);
    expect((await cp.request('GET', `/api/v1/domains/${randomUUID()}`, { token: owner.token })).status).toBe(404);
    expect((await cp.request('GET', '/api/v1/domains?page[size]=0', { token: owner.token })).status).toBe(400);
    expect((await cp.request('GET', '/api/v1/domains?filter[name]=x', { token: owner.token })).status).toBe(400);
  });
});
