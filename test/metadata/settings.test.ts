import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_UNPACKED_BYTES } from '../../control-plane/metadata/archive.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { addressSchema, addSchema, countSchemas, createDomain, personSchema, postArchive, tarGzOf, zipOf } from './support.js';

let cp: TestControlPlane;
let owner: TestUser;
let domainId: string;

beforeAll(async () => {
  cp = await startTestControlPlane({ env: { PUBLIC_URL: 'https://hub.example.com', BODY_LIMIT_BYTES: '65536' } });
  owner = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  domainId = (await createDomain(cp, owner.token)).id;
});
afterAll(() => cp?.close());

it('rewrites $id to PUBLIC_URL, not the origin the request came to, and resolves references under it', async () => {
  const address = await addSchema(cp, owner.token, domainId, { uri: 'address.json', value: addressSchema });
  expect(address.value.$id).toBe(`https://hub.example.com/api/v1/domains/${domainId}/schemas/address.json`);
  const person = await addSchema(cp, owner.token, domainId, { uri: 'person.json', value: personSchema });
  expect(person.refs).toEqual([address.value.$id]);
  // An absolute $ref to the repository's own URL is a reference within the domain too.
  const order = await addSchema(cp, owner.token, domainId, {
    uri: 'order.json',
    value: { properties: { to: { $ref: address.value.$id } } },
  });
  expect(order.refs).toEqual([address.value.$id]);
  const res = await cp.request('POST', `/api/v1/domains/${domainId}/schemas/order.json/validate`, {
    token: owner.token,
    body: { to: { zip: 1 } },
  });
  expect(res.body.data.errors).toEqual([{ path: '/to/zip', message: 'must be string', keyword: 'type' }]);
});

it('answers 413 to a schema or an archive over BODY_LIMIT_BYTES, and 400 to an archive that unpacks to more than the limit', async () => {
  const before = await countSchemas(cp, domainId);
  const big = await cp.request('POST', `/api/v1/domains/${domainId}/schemas`, {
    token: owner.token,
    body: { uri: 'big.json', value: { description: 'x'.repeat(70_000) } },
  });
  expect(big.status).toBe(413);
  expect(big.body.errors[0].code).toBe('payload_too_large');
  expect((await postArchive(cp, owner.token, domainId, new Uint8Array(70_000), 'application/zip')).status).toBe(413);

  const bomb = `{"description":"${' '.repeat(MAX_UNPACKED_BYTES)}"}`;
  for (const [archive, type] of [
    [zipOf({ 'bomb.json': bomb }), 'application/zip'],
    [await tarGzOf({ 'bomb.json': bomb }), 'application/gzip'],
  ] as const) {
    expect(archive.length).toBeLessThan(65536);
    const res = await postArchive(cp, owner.token, domainId, archive, type);
    expect(res.status, type).toBe(400);
    expect(res.body.errors[0].message).toBe(`The archive unpacks to more than ${MAX_UNPACKED_BYTES} bytes`);
  }
  expect(await countSchemas(cp, domainId)).toBe(before);
});
