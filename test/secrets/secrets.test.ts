import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecords } from '../../control-plane/audit/schema.js';
import { createLogger } from '../../control-plane/logger.js';
import { dataKeys, secrets } from '../../control-plane/secrets/schema.js';
import { MASK } from '../../protocol/secrets.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { createTenant, createUser, type TestUser } from '../support/tenants.js';

const PASSPHRASE = `pass-${randomUUID()}`;

describe('/api/v1/secrets', () => {
  const logged: string[] = [];
  let cp: TestControlPlane;
  let owner: TestUser;
  let colleague: TestUser;
  let stranger: TestUser;
  let reader: TestUser;

  beforeAll(async () => {
    const sink = new Writable({
      write: (chunk, _encoding, done) => {
        logged.push(String(chunk));
        done();
      },
    });
    cp = await startTestControlPlane({ logger: createLogger('debug', sink) });
    const tenant = await createTenant(cp);
    owner = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'] });
    colleague = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'] });
    reader = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'], permissions: ['secrets.secret.readRaw'] });
    stranger = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_INTEGRATOR'] });
  });
  afterAll(() => cp.close());

  const create = (user: TestUser, body: Record<string, unknown>) => cp.request('POST', '/api/v1/secrets', { token: user.token, body });

  it.each([
    ['SIMPLE', { username: 'ada', passphrase: PASSPHRASE }, { username: 'ada', passphrase: MASK }],
    ['API_KEY', { key: PASSPHRASE }, { key: MASK, headerName: 'x-api-key' }],
    ['MIXED', { payload: { host: 'db.example.com', password: PASSPHRASE } }, { payload: { host: MASK, password: MASK } }],
    [
      'OAUTH2',
      { accessToken: PASSPHRASE, refreshToken: 'r', expiresAt: '2099-01-01T00:00:00Z' },
      { accessToken: MASK, refreshToken: MASK, tokenType: 'Bearer', expiresAt: '2099-01-01T00:00:00Z' },
    ],
  ] as const)('stores a %s secret and shows it masked', async (type, value, masked) => {
    const res = await create(owner, { name: `my ${type}`, type, value });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      type,
      tenant: owner.tenantId,
      value: masked,
      raw: false,
      owners: [{ id: owner.id, type: 'user' }],
    });
    const read = await cp.request('GET', `/api/v1/secrets/${res.body.data.id}`, { token: owner.token });
    expect(read.body.data.value).toEqual(masked);
  });

  it('keeps no plaintext in the database, the logs or the audit log', async () => {
    // A username with a '.', which neither the hex of an id nor the base64 of a ciphertext can contain by chance.
    const res = await create(owner, {
      name: 'db',
      type: 'SIMPLE',
      value: { username: 'ada.lovelace', passphrase: PASSPHRASE },
      shared: true,
    });
    expect((await cp.request('GET', `/api/v1/secrets/${res.body.data.id}`, { token: reader.token })).body.data.value.passphrase).toBe(
      PASSPHRASE,
    );
    const [row] = await cp.services.db.select().from(secrets).where(eq(secrets.id, res.body.data.id));
    expect(JSON.stringify(row)).not.toContain(PASSPHRASE);
    expect(JSON.stringify(row)).not.toContain('ada.lovelace');
    const [key] = await cp.services.db.select().from(dataKeys).where(eq(dataKeys.tenantId, owner.tenantId));
    expect(key!.masterKeyId).toBeTruthy();
    expect(Buffer.from(key!.wrapped, 'base64').length).toBe(12 + 16 + 32);
    await waitFor(
      async () => (await cp.services.db.select().from(auditRecords)).filter((r) => r.name === 'secrets.secret.rawRead').length,
      (n) => n >= 1,
    );
    const audit = await cp.services.db.select().from(auditRecords);
    expect(JSON.stringify(audit)).not.toContain(PASSPHRASE);
    expect(logged.join('')).not.toContain(PASSPHRASE);
  });

  it('gives raw values only to holders of secrets.secret.readRaw, and records each such read', async () => {
    const res = await create(reader, {
      name: 'raw',
      type: 'API_KEY',
      value: { key: PASSPHRASE, headerName: 'authorization' },
      shared: true,
    });
    const raw = await cp.request('GET', `/api/v1/secrets/${res.body.data.id}`, { token: reader.token });
    expect(raw.body.data).toMatchObject({ raw: true, value: { key: PASSPHRASE, headerName: 'authorization' } });
    const masked = await cp.request('GET', `/api/v1/secrets/${res.body.data.id}`, { token: colleague.token });
    expect(masked.body.data).toMatchObject({ raw: false, value: { key: MASK } });
    const listed = await cp.request('GET', '/api/v1/secrets?page[size]=100', { token: reader.token });
    expect(JSON.stringify(listed.body)).not.toContain(PASSPHRASE);

    const reads = await waitFor(
      async () =>
        (await cp.services.db.select().from(auditRecords)).filter(
          (r) => r.name === 'secrets.secret.rawRead' && (r.payload as { id: string }).id === res.body.data.id,
        ),
      (found) => found.length === 1,
    );
    expect(reads[0]!.payload).toMatchObject({ user: reader.id, tenant: reader.tenantId });
  });

  it('shows a secret to its owners and, once shared, to the tenant; never to another tenant', async () => {
    const res = await create(owner, { name: 'private', type: 'SIMPLE', value: { username: 'u', passphrase: 'p' } });
    const id = res.body.data.id;
    expect((await cp.request('GET', `/api/v1/secrets/${id}`, { token: colleague.token })).status).toBe(404);
    const shared = await cp.request('PATCH', `/api/v1/secrets/${id}`, { token: owner.token, body: { shared: true } });
    expect(shared.body.data.owners).toEqual([
      { id: owner.id, type: 'user' },
      { id: owner.tenantId, type: 'tenant' },
    ]);
    expect((await cp.request('GET', `/api/v1/secrets/${id}`, { token: colleague.token })).status).toBe(200);
    for (const [method, body] of [['GET'], ['PATCH', { name: 'mine' }], ['DELETE']] as const) {
      expect((await cp.request(method, `/api/v1/secrets/${id}`, { token: stranger.token, body })).status, method).toBe(404);
    }
    const strangerList = await cp.request('GET', '/api/v1/secrets?page[size]=100', { token: stranger.token });
    expect(strangerList.body.data.map((s: { id: string }) => s.id)).not.toContain(id);
  });

  it('adds and removes owners within the tenant, never leaving a secret without one', async () => {
    const { body } = await create(owner, { name: 'owned', type: 'SIMPLE', value: { username: 'u', passphrase: 'p' } });
    const added = await cp.request('POST', `/api/v1/secrets/${body.data.id}/owners`, { token: owner.token, body: { id: colleague.id } });
    expect(added.body.data.owners).toEqual([
      { id: owner.id, type: 'user' },
      { id: colleague.id, type: 'user' },
    ]);
    expect((await cp.request('GET', `/api/v1/secrets/${body.data.id}`, { token: colleague.token })).status).toBe(200);
    expect(
      (await cp.request('POST', `/api/v1/secrets/${body.data.id}/owners`, { token: owner.token, body: { id: stranger.id } })).status,
    ).toBe(400);
    expect((await cp.request('DELETE', `/api/v1/secrets/${body.data.id}/owners/${owner.id}`, { token: colleague.token })).status).toBe(200);
    const last = await cp.request('DELETE', `/api/v1/secrets/${body.data.id}/owners/${colleague.id}`, { token: colleague.token });
    expect(last.status).toBe(409);
  });

  it('replaces a value, checked against its type, and deletes a secret', async () => {
    const { body } = await create(reader, { name: 'rotating', type: 'SIMPLE', value: { username: 'u', passphrase: 'old' } });
    const bad = await cp.request('PATCH', `/api/v1/secrets/${body.data.id}`, { token: reader.token, body: { value: { username: 'u' } } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].message).toMatch(/value.passphrase/);
    await cp.request('PATCH', `/api/v1/secrets/${body.data.id}`, {
      token: reader.token,
      body: { value: { username: 'u', passphrase: 'new' } },
    });
    expect((await cp.request('GET', `/api/v1/secrets/${body.data.id}`, { token: reader.token })).body.data.value.passphrase).toBe('new');
    expect((await cp.request('DELETE', `/api/v1/secrets/${body.data.id}`, { token: reader.token })).status).toBe(204);
    expect((await cp.request('GET', `/api/v1/secrets/${body.data.id}`, { token: reader.token })).status).toBe(404);
  });

  it('deletes a deleted user’s own secrets and re-owns the shared ones', async () => {
    const leaver = await createUser(cp, { tenantId: owner.tenantId, roles: ['TENANT_INTEGRATOR'] });
    const own = (await create(leaver, { name: 'own', type: 'SIMPLE', value: { username: 'u', passphrase: 'p' } })).body.data;
    const shared = (await create(leaver, { name: 'shared', type: 'SIMPLE', value: { username: 'u', passphrase: 'p' }, shared: true })).body
      .data;
    const admin = await cp.login();
    expect((await cp.request('DELETE', `/api/v1/users/${leaver.id}`, { token: admin })).status).toBe(204);
    await waitFor(
      async () => (await cp.services.db.select().from(secrets).where(eq(secrets.id, own.id))).length,
      (n) => n === 0,
    );
    const [kept] = await cp.services.db.select().from(secrets).where(eq(secrets.id, shared.id));
    expect(kept!.owners).toEqual([{ id: owner.tenantId, type: 'tenant' }]);
  });

  it('deletes a deleted tenant’s secrets and data key with it', async () => {
    const admin = await cp.login();
    const tenant = (await cp.request('POST', '/api/v1/tenants', { token: admin, body: { name: `gone-${randomUUID().slice(0, 6)}` } })).body
      .data;
    const member = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'] });
    const secret = (await create(member, { name: 'x', type: 'SIMPLE', value: { username: 'u', passphrase: 'p' } })).body.data;
    expect(await cp.services.db.select().from(dataKeys).where(eq(dataKeys.tenantId, tenant.id))).toHaveLength(1);
    expect((await cp.request('DELETE', `/api/v1/tenants/${tenant.id}`, { token: admin })).status).toBe(204);
    expect(await cp.services.db.select().from(secrets).where(eq(secrets.id, secret.id))).toEqual([]);
    expect(await cp.services.db.select().from(dataKeys).where(eq(dataKeys.tenantId, tenant.id))).toEqual([]);
  });

  it('answers bad input with a 400 that names the problem, and stores nothing', async () => {
    const before = (await cp.services.db.select().from(secrets)).length;
    const cases: [unknown, RegExp][] = [
      ['{"name":', /JSON|body/i],
      [{ name: 'x', type: 'PASSWORD', value: {} }, /type/],
      [{ name: 'x', type: 'SIMPLE', value: 'secret' }, /value/],
      [{ name: 'x', type: 'SIMPLE', value: { username: 'u' } }, /value.passphrase/],
      [{ name: 'x', type: 'API_KEY', value: { key: 'k', extra: 1 } }, /extra/],
      [{ name: 'x', type: 'OAUTH2', value: { accessToken: 'a', expiresAt: 'soon' } }, /expiresAt/],
      [{ name: '', type: 'SIMPLE', value: { username: 'u', passphrase: 'p' } }, /name/],
      [{ name: 'x', type: 'OAUTH2', value: { accessToken: 'a' }, authClientId: randomUUID() }, /no auth client/],
    ];
    for (const [body, message] of cases) {
      const res = await cp.request('POST', '/api/v1/secrets', { token: owner.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' | '), JSON.stringify(body)).toMatch(message);
    }
    expect((await cp.services.db.select().from(secrets)).length).toBe(before);
    expect((await cp.request('GET', '/api/v1/secrets/xyz', { token: owner.token })).status).toBe(400);
    expect((await cp.request('GET', `/api/v1/secrets/${randomUUID()}`, { token: owner.token })).status).toBe(404);
  });

  it('401 without a token, 403 without a secrets permission', async () => {
    const guest = await createUser(cp, { tenantId: owner.tenantId, roles: ['TENANT_GUEST'] });
    expect((await cp.request('GET', '/api/v1/secrets')).status).toBe(401);
    const res = await cp.request('GET', '/api/v1/secrets', { token: guest.token });
    expect(res.status).toBe(403);
    expect(res.body.errors[0].message).toContain('secrets.secret.read');
    expect((await create(guest, { name: 'x', type: 'SIMPLE', value: { username: 'u', passphrase: 'p' } })).status).toBe(403);
  });
});
