import { gzipSync, strToU8, zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { addressSchema, addSchema, countSchemas, createDomain, personSchema, postArchive, tarGzOf, tarOf, zipOf } from './support.js';

describe('POST /api/v1/domains/{id}/schemas/import', () => {
  let cp: TestControlPlane;
  let owner: TestUser;

  const bundle = {
    'address.json': addressSchema,
    'person.json': personSchema,
    'crm/contact.json': { type: 'object', properties: { person: { $ref: '../person.json' } } },
    'README.md': '# not a schema',
    '__MACOSX/._person.json': 'resource fork',
  };
  const uris = ['address.json', 'crm/contact.json', 'person.json'];

  beforeAll(async () => {
    cp = await startTestControlPlane();
    owner = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  });
  afterAll(() => cp?.close());

  it('imports the JSON Schemas of a zip, their paths as uris, references resolved in any order', async () => {
    const domain = await createDomain(cp, owner.token);
    const res = await postArchive(cp, owner.token, domain.id, zipOf(bundle), 'application/zip');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.data.map((s: { uri: string }) => s.uri)).toEqual(uris);
    const person = res.body.data.find((s: { uri: string }) => s.uri === 'person.json');
    expect(person).toMatchObject({ name: 'Person', refs: [`${cp.url}/api/v1/domains/${domain.id}/schemas/address.json`] });
    expect(person.value.$id).toBe(`${cp.url}/api/v1/domains/${domain.id}/schemas/person.json`);

    const check = await cp.request('POST', `/api/v1/domains/${domain.id}/schemas/crm/contact.json/validate`, {
      token: owner.token,
      body: { person: { address: {} } },
    });
    expect(check.body.data.errors.map((e: { path: string }) => e.path).sort()).toEqual(['/person/address/zip', '/person/name']);
  });

  it('imports a tar.gz and a plain tar alike, replacing schemas of the same uri', async () => {
    const domain = await createDomain(cp, owner.token);
    const old = await addSchema(cp, owner.token, domain.id, { uri: 'address.json', value: { type: 'string' } });
    for (const type of ['application/gzip', 'application/x-tar+gzip', 'application/x-gzip']) {
      const res = await postArchive(cp, owner.token, domain.id, await tarGzOf(bundle), type);
      expect(res.status, `${type}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(res.body.data.map((s: { uri: string }) => s.uri)).toEqual(uris);
    }
    const tar = await postArchive(
      cp,
      owner.token,
      domain.id,
      await tarOf({ './extra/note.json': { type: 'string' } }),
      'application/x-tar',
    );
    expect(tar.status).toBe(200);
    expect(tar.body.data.map((s: { uri: string }) => s.uri)).toEqual(['extra/note.json']);
    expect(await countSchemas(cp, domain.id)).toBe(4);
    const address = (await cp.request('GET', `/api/v1/domains/${domain.id}/schemas/address.json`, { token: owner.token })).body.data;
    expect(address).toMatchObject({ id: old.id, value: { type: 'object' } });
  });

  it('changes nothing when the archive or any one schema in it is bad, and says which file and why', async () => {
    const domain = await createDomain(cp, owner.token);
    await addSchema(cp, owner.token, domain.id, { uri: 'address.json', value: addressSchema });
    const cases: [Uint8Array | Promise<Uint8Array>, string, RegExp][] = [
      [strToU8('not a zip at all'), 'application/zip', /^The body is not a valid zip archive: /],
      [strToU8('not gzip'), 'application/gzip', /^The body is not a valid tar\.gz archive: /],
      [gzipSync(strToU8(JSON.stringify(addressSchema))), 'application/gzip', /^The body is not a valid tar\.gz archive: /],
      [zipOf({ 'README.md': 'nothing here' }), 'application/zip', /^The archive holds no \.json files$/],
      [zipOf({ 'address.json': { type: 'string' }, 'broken.json': '{"type":' }), 'application/zip', /^broken\.json: not valid JSON/],
      [
        zipOf({ 'address.json': { type: 'string' }, 'list.json': [1, 2] }),
        'application/zip',
        /^list\.json: a JSON Schema must be an object$/,
      ],
      [zipOf({ 'address.json': { type: 'string' }, 'bad.json': { type: 'strnig' } }), 'application/zip', /^bad\.json: schema is invalid/],
      [
        zipOf({ 'address.json': { type: 'string' }, 'person.json': { $ref: 'nowhere.json' } }),
        'application/zip',
        /^person\.json: \$ref to nowhere\.json, which is not a schema of this domain/,
      ],
      [zipOf({ 'bad name.json': {} }), 'application/zip', /^bad name\.json: the path must be a path/],
      [
        tarGzOf({ 'address.json': { type: 'string' }, 'sub/../../escape.json': {} }),
        'application/gzip',
        /^sub\/\.\.\/\.\.\/escape\.json: the path must be a path/,
      ],
      [tarOf({ 'a.json': {} }).then((tar) => tar.subarray(0, 700)), 'application/x-tar', /^The body is not a valid tar archive/],
    ];
    for (const [archive, type, message] of cases) {
      const res = await postArchive(cp, owner.token, domain.id, await archive, type);
      expect(res.status, String(message)).toBe(400);
      expect(res.body.errors[0].message, String(message)).toMatch(message);
    }
    expect(await countSchemas(cp, domain.id)).toBe(1);
    const address = (await cp.request('GET', `/api/v1/domains/${domain.id}/schemas/address.json`, { token: owner.token })).body.data;
    expect(address.value.type).toBe('object');
  });

  it('refuses another media type (415), a caller without the permission (401/403) and other tenants (404 or 403)', async () => {
    const domain = await createDomain(cp, owner.token);
    const zip = zipSync({ 'a.json': strToU8('{}') });
    const json = await postArchive(cp, owner.token, domain.id, zip, 'application/json');
    expect(json.status).toBe(415);
    expect(json.body.errors[0]).toEqual({
      message: expect.stringMatching(/^Send the archive as one of application\/zip, /),
      code: 'unsupported_media_type',
    });

    expect((await postArchive(cp, undefined, domain.id, zip, 'application/zip')).status).toBe(401);
    const guest = await createUser(cp, { tenantId: owner.tenantId, roles: ['TENANT_GUEST'] });
    expect((await postArchive(cp, guest.token, domain.id, zip, 'application/zip')).status).toBe(403);
    const stranger = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    expect((await postArchive(cp, stranger.token, domain.id, zip, 'application/zip')).status).toBe(404);
    await cp.request('PUT', `/api/v1/domains/${domain.id}`, { token: owner.token, body: { public: true } });
    expect((await postArchive(cp, stranger.token, domain.id, zip, 'application/zip')).status).toBe(403);
    expect(await countSchemas(cp, domain.id)).toBe(0);
  });
});
