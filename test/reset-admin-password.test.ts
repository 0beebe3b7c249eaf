import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startTestControlPlane } from './support/control-plane.js';

const run = promisify(execFile);

describe('npm run reset-admin-password', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hookline-reset-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const reset = (env: Record<string, string> = {}) =>
    run(process.execPath, ['--import', 'tsx', 'scripts/reset-admin-password.ts'], {
      env: { ...process.env, PGLITE_DIR: join(dir, 'pglite'), LOG_LEVEL: 'silent', ADMIN_PASSWORD: '', ...env },
    });

  it('gives the admin a new password, shown once; the old one and its sessions stop working', async () => {
    let cp = await startTestControlPlane({ env: { PGLITE_DIR: join(dir, 'pglite') } });
    const session = await cp.login();
    await cp.close();

    const { stdout } = await reset();
    const password = /New password of admin@hookline\.local: (\S+)/.exec(stdout)?.[1];
    expect(password).toBeTruthy();

    cp = await startTestControlPlane({ env: { PGLITE_DIR: join(dir, 'pglite') } });
    try {
      expect((await cp.request('POST', '/login', { body: { username: ADMIN.username, password: ADMIN.password } })).status).toBe(401);
      expect((await cp.request('GET', '/api/v1/users/me', { token: session })).status).toBe(401);
      const token = await cp.login(ADMIN.username, password);
      expect((await cp.request('GET', '/api/v1/users/me', { token })).body.data.username).toBe(ADMIN.username);
    } finally {
      await cp.close();
    }
  });

  it('refuses a weak ADMIN_PASSWORD before opening the database', async () => {
    const failed = await reset({ ADMIN_PASSWORD: 'aaaaaaaaaaaaaaaa' }).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/ADMIN_PASSWORD \(not shown\): too easy to guess\. Repeated characters/);
    expect(failed?.stderr).not.toContain('aaaaaaaaaaaaaaaa');
  });

  it('says so, and exits 1, for an account that does not exist', async () => {
    const failed = await reset({ ADMIN_USERNAME: 'nobody@hookline.local' }).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/No account nobody@hookline.local/);
  });
});
