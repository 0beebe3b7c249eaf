import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { addressSchema, addSchema, countSchemas, createDomain, personSchema } from './support.js';

describe('/api/v1/domains/{id}/schemas', () => {
  let cp: TestControlPlane;
  let owner: TestUser;
  let guest: TestUser;
  let stranger: TestUser;

  const url = (domainId: string, uri: string) => `${cp.url}/api/v1/domains/${domainId}/schemas/${uri}`;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    owner = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    guest = await createUser(cp, { tenantId: owner.tenantId, roles: ['TENANT_GUEST'] });
    stranger = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  });
  afterAll(() => cp?.close());

  it('stores a schema with its $id rewritten to where the repository serves it, and reads, lists, replaces and deletes it', async () => {
    const domain = await createDomain(cp, owner.token);
    const created = await addSchema(cp, owner.token, domain.id, {
      uri: 'address.json',
      description: 'Postal',
      value: { $id: 'https://example.com/address', ...addressSchema },
    });
    expect(created).toMatchObject({
      domainId: domain.id,
      uri: 'address.json',
      name: 'address.json',
      description: 'Postal',
      refs: [],
      tenant: owner.tenantId,
    });
    expect(created.value).toEqual({ $id: url(domain.id, 'address.json'), ...addressSchema });

    const read = await cp.request('GET', `/api/v1/domains/${domain.id}/schemas/address.json`, { token: guest.token });
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual(created);

    const raw = await cp.request('GET', `/api/v1/domains/${domain.id}/schemas/address.json`, {
      token: guest.token,
      headers: { accept: 'application/schema+json' },
    });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe('application/schema+json');
    expect(raw.body).toEqual(created.value);

    const replaced = await cp.request('PUT', `/api/v1/domains/${domain.id}/schemas/address.json`, {
      token: owner.token,
      body: { name: 'Address', value: { $id: 'https://elsewhere.example/other.json', type: 'object' } },
    });
    expect(replaced.status).toBe(200);
    // The $id never changes: it is where the schema lives.
    expect(replaced.body.data).toMatchObject({
      id: created.id,
      uri: 'address.json',
      name: 'Address',
      description: null,
      value: { $id: url(domain.id, 'address.json'), type: 'object' },
    });

    await addSchema(cp, owner.token, domain.id, { uri: 'crm/contact.json', value: { type: 'object' } });
    const list = await cp.request('GET', `/api/v1/domains/${domain.id}/schemas?page[size]=1`, { token: guest.token });
    expect(list.status).toBe(200);
    expect(list.body.data.map((s: { uri: string }) => s.uri)).toEqual(['address.json']);
    expect(list.body.meta).toEqual({ total: 2, page: 1, perPage: 1, totalPages: 2 });

    expect((await cp.request('DELETE', `/api/v1/domains/${domain.id}/schemas/address.json`, { token: owner.token })).status).toBe(204);
    expect((await cp.request('GET', `/api/v1/domains/${domain.id}/schemas/address.json`, { token: owner.token })).status).toBe(404);
  });

  it('takes the uri from the path of the schema’s own $id when none is given, slashes and all', async () => {
    const domain = await createDomain(cp, owner.token);
    const absolute = await addSchema(cp, owner.token, domain.id, {
      value: { $id: 'https://example.com/crm/contact.json', title: 'Contact', type: 'object' },
    });
    expect(absolute).toMatchObject({ uri: 'crm/contact.json', name: 'Contact' });
    const relative = await addSchema(cp, owner.token, domain.id, { name: 'Order', value: { $id: 'shop/v1/order.json', type: 'object' } });
    expect(relative.value.$id).toBe(url(domain.id, 'shop/v1/order.json'));

    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await cp.request(method, `/api/v1/domains/${domain.id}/schemas/shop/v1/order.json`, {
        token: owner.token,
        body: method === 'PUT' ? { value: { type: 'object' } } : undefined,
      });
      expect(res.status, method).toBe(method === 'DELETE' ? 204 : 200);
    }
    const none = await cp.request('POST', `/api/v1/domains/${domain.id}/schemas`, {
      token: owner.token,
      body: { value: { type: 'object' } },
    });
    expect(none.status).toBe(400);
    expect(none.body.errors[0].message).toMatch(/^uri: give a uri, or an \$id/);
    const duplicate = await cp.request('POST', `/api/v1/domains/${domain.id}/schemas`, {
      token: owner.token,
      body: { uri: 'crm/contact.json', value: {} },
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.errors[0].message).toMatch(/crm\/contact.json already; PUT/);
  });

  it('resolves references between the schemas of a domain, relative to the referring schema', async () => {
    const domain = await createDomain(cp, owner.token);
    const before = await cp.request('POST', `/api/v1/domains/${domain.id}/schemas`, {
      token: owner.token,
      body: { uri: 'person.json', value: personSchema },
    });
    expect(before.status).toBe(400);
    expect(before.body.errors[0].message).toBe(
      'value: $ref to address.json, which is not a schema of this domain; add it first, or import both together',
    );
    expect(await countSchemas(cp, domain.id)).toBe(0);

    await addSchema(cp, owner.token, domain.id, { uri: 'address.json', value: addressSchema });
    const person = await addSchema(cp, owner.token, domain.id, { uri: 'person.json', value: personSchema });
    expect(person.refs).toEqual([url(domain.id, 'address.json')]);
    expect(person.value.properties.address).toEqual({ $ref: 'address.json' });

    const contact = await addSchema(cp, owner.token, domain.id, {
      uri: 'crm/contact.json',
      value: { type: 'object', properties: { person: { $ref: '../person.json' }, zip: { $ref: '../address.json#/properties/zip' } } },
    });
    expect(contact.refs).toEqual([url(domain.id, 'person.json'), url(domain.id, 'address.json')]);

    const validate = (document: unknown) =>
      cp.request('POST', `/api/v1/domains/${domain.id}/schemas/crm/contact.json/validate`, { token: guest.token, body: document });
    expect((await validate({ person: { name: 'Ada', address: { zip: '12345' } }, zip: '54321' })).body.data).toEqual({ valid: true });
    expect(
      (await validate({ person: { name: 'Ada', address: { zip: 'x' } }, zip: 'y' })).body.data.errors
        .map((e: { path: string }) => e.path)
        .sort(),
    ).toEqual(['/person/address/zip', '/zip']);

    // A referenced schema cannot go while others refer to it, nor point anywhere but the domain.
    const remove = await cp.request('DELETE', `/api/v1/domains/${domain.id}/schemas/address.json`, { token: owner.token });
    expect(remove.status).toBe(409);
    expect(remove.body.errors[0].message).toBe('address.json is referenced by crm/contact.json, person.json; change or delete those first');
    const outside = await cp.request('PUT', `/api/v1/domains/${domain.id}/schemas/person.json`, {
      token: owner.token,
      body: { value: { $ref: 'https://example.com/address.json' } },
    });
    expect(outside.status).toBe(400);
    expect(outside.body.errors[0].message).toMatch(/points outside this domain/);
    const dangling = await cp.request('PUT', `/api/v1/domains/${domain.id}/schemas/person.json`, {
      token: owner.token,
      body: { value: { $ref: 'missing.json' } },
    });
    expect(dangling.status).toBe(400);
    expect((await cp.request('GET', `/api/v1/domains/${domain.id}/schemas/person.json`, { token: owner.token })).body.data.value).toEqual(
      person.value,
    );
  });

  it('refuses a schema that is not a valid JSON Schema, and malformed input, with clear messages', async () => {
    const domain = await createDomain(cp, owner.token);
    await addSchema(cp, owner.token, domain.id, { uri: 'address.json', value: addressSchema });
    const post = (body: unknown) => cp.request('POST', `/api/v1/domains/${domain.id}/schemas`, { token: owner.token, body });
    const cases: [unknown, RegExp][] = [
      ['{"value":', /JSON/i],
      [{ uri: 'a.json', value: { type: 'strnig' } }, /^value: schema is invalid: data\/type/],
      [{ uri: 'a.json', value: { properties: { x: { minimum: 'one' } } } }, /^value: schema is invalid/],
      [{ uri: 'a.json', value: [] }, /^value: /],
      [{ uri: 'a.json', value: 'string' }, /^value: /],
      [{ uri: 'a.json' }, /^value: /],
      [{ uri: '../a.json', value: {} }, /^uri: must be a path/],
      [{ uri: '/a.json', value: {} }, /^uri: must be a path/],
      [{ uri: 'a b.json', value: {} }, /^uri: must be a path/],
      [{ value: { $id: '../up.json' } }, /^uri: the path of \$id \.\.\/up\.json must be a path/],
      [{ uri: 'a.json', value: {}, owner: 'me' }, /owner/],
      [{ uri: 'a.json', value: { $ref: 'http://[bad' } }, /is not a valid URI reference/],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' | '), JSON.stringify(body)).toMatch(message);
    }
    expect(await countSchemas(cp, domain.id)).toBe(1);

    const base = `/api/v1/domains/${domain.id}/schemas`;
    expect((await cp.request('GET', `${base}/missing.json`, { token: owner.token })).status).toBe(404);
    expect((await cp.request('PUT', `${base}/missing.json`, { token: owner.token, body: { value: {} } })).status).toBe(404);
    expect((await cp.request('DELETE', `${base}/missing.json`, { token: owner.token })).status).toBe(404);
    expect((await cp.request('GET', `${base}/a%20b.json`, { token: owner.token })).status).toBe(400);
    expect((await cp.request('GET', `/api/v1/domains/abc/schemas/address.json`, { token: owner.token })).status).toBe(400);
    expect((await cp.request('GET', `/api/v1/domains/${randomUUID()}/schemas`, { token: owner.token })).status).toBe(404);
    expect((await cp.request('PUT', `${base}/address.json`, { token: owner.token, body: { uri: 'b.json', value: {} } })).status).toBe(400);
  });

  it('answers 401 without a token, 403 without metadata.domains.crud, and keeps other tenants out', async () => {
    const domain = await createDomain(cp, owner.token);
    await addSchema(cp, owner.token, domain.id, { uri: 'address.json', value: addressSchema });
    const base = `/api/v1/domains/${domain.id}/schemas`;
    const reads: [string, string, unknown?][] = [
      ['GET', base],
      ['GET', `${base}/address.json`],
      ['POST', `${base}/address.json/validate`, { zip: '12345' }],
    ];
    const writes: [string, string, unknown?][] = [
      ['POST', base, { uri: 'b.json', value: {} }],
      ['PUT', `${base}/address.json`, { value: {} }],
      ['DELETE', `${base}/address.json`],
    ];
    for (const [method, path, body] of [...reads, ...writes]) {
      expect((await cp.request(method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
    for (const [method, path, body] of writes) {
      expect((await cp.request(method, path, { body, token: guest.token })).status, `${method} ${path}`).toBe(403);
    }
    for (const [method, path, body] of [...reads, ...writes]) {
      expect((await cp.request(method, path, { body, token: stranger.token })).status, `${method} ${path}`).toBe(404);
    }

    // Public: everyone reads and validates; only the tenant writes.
    await cp.request('PUT', `/api/v1/domains/${domain.id}`, { token: owner.token, body: { public: true } });
    for (const [method, path, body] of reads) {
      expect((await cp.request(method, path, { body, token: stranger.token })).status, `${method} ${path}`).toBe(200);
    }
    for (const [method, path, body] of writes) {
      expect((await cp.request(method, path, { body, token: stranger.token })).status, `${method} ${path}`).toBe(403);
    }
    expect(await countSchemas(cp, domain.id)).toBe(1);
  });
});
