import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { addressSchema, addSchema, createDomain, personSchema } from './support.js';

describe('POST /api/v1/domains/{id}/schemas/{uri}/validate', () => {
  let cp: TestControlPlane;
  let owner: TestUser;
  let guest: TestUser;
  let domainId: string;

  const validate = (uri: string, document: unknown, token = guest.token) =>
    cp.request('POST', `/api/v1/domains/${domainId}/schemas/${uri}/validate`, { token, body: document });

  beforeAll(async () => {
    cp = await startTestControlPlane();
    owner = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    guest = await createUser(cp, { tenantId: owner.tenantId, roles: ['TENANT_GUEST'] });
    domainId = (await createDomain(cp, owner.token)).id;
    await addSchema(cp, owner.token, domainId, { uri: 'address.json', value: addressSchema });
    await addSchema(cp, owner.token, domainId, {
      uri: 'people/person.json',
      value: {
        ...personSchema,
        additionalProperties: false,
        properties: {
          ...personSchema.properties,
          address: { $ref: '../address.json' },
          tags: { type: 'array', items: { type: 'string' } },
          'a/b': { type: 'integer' },
        },
      },
    });
  });
  afterAll(() => cp?.close());

  it('answers valid: true for a valid document', async () => {
    const res = await validate('people/person.json', { name: 'Ada', email: 'ada@example.com', address: { zip: '12345' }, tags: ['x'] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { valid: true } });
  });

  it('answers 200 with valid: false and every error, each with the JSON pointer of the offending value', async () => {
    const res = await validate('people/person.json', {
      email: 'not-an-email',
      address: { zip: 'x' },
      tags: ['ok', 2],
      extra: true,
      'a/b': 1.5,
    });
    expect(res.status).toBe(200);
    expect(res.body.data.valid).toBe(false);
    const errors = [...res.body.data.errors].sort((a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path));
    expect(errors).toEqual([
      { path: '/a~1b', message: 'must be integer', keyword: 'type' },
      { path: '/address/zip', message: 'must match pattern "^[0-9]{5}$"', keyword: 'pattern' },
      { path: '/email', message: 'must match format "email"', keyword: 'format' },
      { path: '/extra', message: 'must NOT have additional properties', keyword: 'additionalProperties' },
      { path: '/name', message: "must have required property 'name'", keyword: 'required' },
      { path: '/tags/1', message: 'must be string', keyword: 'type' },
    ]);

    const root = await validate('address.json', [1]);
    expect(root.body.data).toEqual({ valid: false, errors: [{ path: '', message: 'must be object', keyword: 'type' }] });
  });

  it('validates against the schema as it is now: a change to it or to what it references applies at once', async () => {
    await addSchema(cp, owner.token, domainId, {
      uri: 'order.json',
      value: { type: 'object', properties: { ship: { $ref: 'address.json' } } },
    });
    const document = { ship: { zip: '12345' } };
    expect((await validate('order.json', document)).body.data.valid).toBe(true);

    const put = await cp.request('PUT', `/api/v1/domains/${domainId}/schemas/address.json`, {
      token: owner.token,
      body: { value: { ...addressSchema, required: ['zip', 'city'] } },
    });
    expect(put.status).toBe(200);
    expect((await validate('order.json', document)).body.data.errors).toEqual([
      { path: '/ship/city', message: "must have required property 'city'", keyword: 'required' },
    ]);

    await cp.request('PUT', `/api/v1/domains/${domainId}/schemas/order.json`, { token: owner.token, body: { value: { type: 'array' } } });
    expect((await validate('order.json', document)).body.data.errors[0].message).toBe('must be array');
  });

  it('refuses a malformed body, an unknown schema and an unknown caller', async () => {
    const malformed = await cp.request('POST', `/api/v1/domains/${domainId}/schemas/address.json/validate`, {
      token: guest.token,
      body: '{"zip":',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors[0].message).toMatch(/JSON/);
    const text = await cp.request('POST', `/api/v1/domains/${domainId}/schemas/address.json/validate`, {
      token: guest.token,
      body: 'zip',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    const missing = await validate('nowhere.json', {});
    expect(missing.status).toBe(404);
    expect(missing.body.errors[0].message).toBe(`No schema nowhere.json in domain ${domainId}`);
    expect((await cp.request('POST', `/api/v1/domains/${domainId}/schemas/address.json/validate`, { body: {} })).status).toBe(401);
    const stranger = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    expect((await validate('address.json', {}, stranger.token)).status).toBe(404);
  });
});
