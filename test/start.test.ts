import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from './support/events.js';
import { freePort } from './support/ports.js';

const answers = (url: string) =>
  fetch(url).then(
    (r) => r.status,
    () => 0,
  );

/** `npm start`'s script, as a newcomer runs it: the control plane and wrangler dev, wired together. */
describe('npm start', () => {
  let dir: string;
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('starts the control plane, the edge Worker and a runner, prints where they are, and stops them all on Ctrl-C', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hookline-start-'));
    const [port, edgePort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
      env: {
        ...process.env,
        PORT: String(port),
        EDGE_PORT: String(edgePort),
        PGLITE_DIR: join(dir, 'pglite'),
        LOG_LEVEL: 'warn',
        ADMIN_PASSWORD: 'start-test-password',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (data) => (output += data));
    child.stderr.on('data', (data) => (output += data));
    try {
      await waitFor(
        async () => output,
        (text) => text.includes('Log in:') || child.exitCode !== null,
        90_000,
      );
      expect(output).toContain(`API         http://127.0.0.1:${port}`);
      expect(output).toContain(`Webhooks    http://127.0.0.1:${edgePort}/hook/<flowId>`);
      expect(output).toContain('First admin created: admin@hookline.local');
      expect(await answers(`http://127.0.0.1:${port}/healthcheck`)).toBe(200);
      expect(await answers(`http://127.0.0.1:${edgePort}/healthcheck`)).toBe(200);
      expect(await answers(`http://127.0.0.1:${edgePort}/hook/no-such-flow`)).toBe(404);
      expect(output).toContain('Runner      local (process driver');
      const login = await fetch(`http://127.0.0.1:${port}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin@hookline.local', password: 'start-test-password' }),
      });
      const token = ((await login.json()) as { data: { token: string } }).data.token;
      const runners = async () =>
        (
          (await (await fetch(`http://127.0.0.1:${port}/runners`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
            data: { name: string; status: string }[];
          }
        ).data;
      await waitFor(runners, (list) => list.some((r) => r.name === 'local' && r.status === 'alive'), 20_000);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      await exited;
    }
    expect(child.exitCode).toBe(0);
    expect(await answers(`http://127.0.0.1:${port}/healthcheck`)).toBe(0);
    expect(await answers(`http://127.0.0.1:${edgePort}/healthcheck`)).toBe(0);
  }, 120_000);
});
