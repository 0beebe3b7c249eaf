import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataKeys } from '../../control-plane/secrets/schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createUser, type TestUser } from '../support/tenants.js';

const key = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

describe('the master key', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hookline-master-key-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A control plane on PGlite data that survives it, so the next one finds the secrets. */
  const start = (env: Record<string, string>) => startTestControlPlane({ env: { PGLITE_DIR: join(dir, 'pglite'), ...env } });

  it('rotates without losing a secret: old key still accepted, data keys re-wrapped, then the old key dropped', async () => {
    const k1 = key('k1');
    const k2 = key('k2');
    let cp: TestControlPlane = await start({ SECRETS_MASTER_KEY: k1 });
    const admin = await cp.login();
    const tenant = (await cp.request('POST', '/api/v1/tenants', { token: admin, body: { name: 'rotation' } })).body.data;
    const user: TestUser = await createUser(cp, {
      tenantId: tenant.id,
      roles: ['TENANT_INTEGRATOR'],
      permissions: ['secrets.secret.readRaw'],
    });
    const created = await cp.request('POST', '/api/v1/secrets', {
      token: user.token,
      body: { name: 'db', type: 'SIMPLE', value: { username: 'u', passphrase: 'before-rotation' } },
    });
    const read = async () =>
      (await cp.request('GET', `/api/v1/secrets/${created.body.data.id}`, { token: user.token })).body.data.value.passphrase;
    expect(await read()).toBe('before-rotation');
    await cp.close();

    cp = await start({ SECRETS_MASTER_KEY: k2, SECRETS_OLD_MASTER_KEYS: k1 });
    expect(await read()).toBe('before-rotation');
    const rotated = await cp.request('POST', '/api/v1/secrets/master-key/rotate', { token: await cp.login() });
    expect(rotated.status).toBe(200);
    expect(rotated.body.data).toEqual({ masterKeyId: 'k2', rewrapped: 1 });
    expect((await cp.services.db.select().from(dataKeys)).map((row) => row.masterKeyId)).toEqual(['k2']);
    expect(await read()).toBe('before-rotation');
    const again = await cp.request('POST', '/api/v1/secrets/master-key/rotate', { token: await cp.login() });
    expect(again.body.data.rewrapped).toBe(0);
    expect((await cp.request('POST', '/api/v1/secrets/master-key/rotate', { token: user.token })).status).toBe(403);
    await cp.close();

    cp = await start({ SECRETS_MASTER_KEY: k2 });
    expect(await read()).toBe('before-rotation');
    await cp.close();

    await expect(start({ SECRETS_MASTER_KEY: k1 })).rejects.toThrow(
      /master key "k2", which is neither SECRETS_MASTER_KEY nor in SECRETS_OLD_MASTER_KEYS/,
    );
  });

  it('is generated once into SECRETS_MASTER_KEY_FILE, readable only by its owner, when none is configured', async () => {
    const file = join(dir, 'generated', 'master.key');
    const first = await startTestControlPlane({ env: { SECRETS_MASTER_KEY_FILE: file } });
    await first.close();
    const content = await readFile(file, 'utf8');
    expect(content).toMatch(/^local:[A-Za-z0-9+/]{43}=\n$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await startTestControlPlane({ env: { SECRETS_MASTER_KEY_FILE: file } });
    await second.close();
    expect(await readFile(file, 'utf8')).toBe(content);
  });

  it('refuses a malformed key at start, naming the variable without repeating it', async () => {
    await expect(startTestControlPlane({ env: { SECRETS_MASTER_KEY: 'k1:tooshort' } })).rejects.toThrow(
      /SECRETS_MASTER_KEY \(11 characters, not shown\): must be <id>:<32 bytes in base64>/,
    );
  });
});
