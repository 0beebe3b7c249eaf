import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EDGE_RUNTIMES, startLocalEdge, type LocalEdge } from '../../scripts/local-edge.js';
import { controlToken, EDGE_CONTROL_SECRET } from '../support/edge.js';
import { waitFor } from '../support/events.js';
import { freePort } from '../support/ports.js';

/**
 * The edge as it runs on one machine: under the real `wrangler dev` (its proxy in front of
 * workerd), where an answer given before the body was read used to leave "Can't read from request
 * stream after response has been sent" behind and fail the next request with a 503; and under
 * workerd itself, as a self-hoster runs it.
 */
describe.each(EDGE_RUNTIMES)('the edge Worker under %s', (kind) => {
  let dir: string;
  let dev: LocalEdge;
  const log = () => readFile(join(dir, 'edge.log'), 'utf8');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `hookline-${kind}-`));
    dev = await startLocalEdge(kind, {
      port: await freePort(),
      vars: { EDGE_CONTROL_SECRET, HOOK_BODY_LIMIT_BYTES: '1048576', CONTROL_PLANE_URL: 'http://127.0.0.1:9' },
      dataDir: dir,
      logFile: join(dir, 'edge.log'),
      timeoutMs: 90_000,
    });
  }, 120_000);
  afterAll(async () => {
    await dev?.stop();
    if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
  });

  const push = async (flowId: string, version: number) =>
    fetch(`${dev.url}/control/flows/${flowId}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${await controlToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ flowId, tenant: 'tenant-1', status: 'live', version }),
    });

  it('skips a reconcile while the control plane is unreachable, with a warning, instead of failing', async () => {
    // No control plane at CONTROL_PLANE_URL: nothing listens on port 9.
    if (kind === 'wrangler') {
      const res = await fetch(`${dev.url}/__scheduled?cron=*+*+*+*+*`);
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      await waitFor(log, (text) => text.includes('reconcile skipped, trying again at the next Cron Trigger'), 10_000);
    } else {
      // workerd has no cron: whoever runs it calls the control API's reconcile every minute.
      const res = await fetch(`${dev.url}/control/reconcile`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await controlToken()}` },
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/^reconcile skipped: /);
      expect((await fetch(`${dev.url}/control/reconcile`, { method: 'POST' })).status).toBe(401);
    }
  });

  it('answers early (404, 415, 413, 405) without leaving the body half read: no uncaught error, no 503 for what comes next', async () => {
    const unknown = randomUUID();
    const live = randomUUID();
    const big = new Uint8Array(30 * 1024 * 1024);
    const statuses: number[] = [];
    const send = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${dev.url}${path}`, init);
      await res.arrayBuffer();
      statuses.push(res.status);
      return res.status;
    };
    for (let round = 0; round < 2; round++) {
      expect(await send(`/hook/${unknown}`, { method: 'POST', body: 'x=1', headers: { 'content-type': '' } })).toBe(415);
      expect(await send(`/hook/${unknown}`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })).toBe(
        404,
      );
      expect(await send(`/hook/${unknown}`, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } })).toBe(413);
      // Chunked, so the size is found while streaming rather than from Content-Length.
      const stream = new Blob([big]).stream();
      expect(
        await send(`/hook/${unknown}`, {
          method: 'POST',
          body: stream,
          headers: { 'content-type': 'application/json' },
          duplex: 'half',
        } as RequestInit),
      ).toBe(413);
      expect(await send(`/hook/${unknown}`, { method: 'PUT', body: 'x' })).toBe(405);
      expect((await push(live, round + 1)).status).toBe(200);
      expect(await send(`/hook/${live}`, { method: 'POST', body: '{"order":1}', headers: { 'content-type': 'application/json' } })).toBe(
        202,
      );
    }
    expect(statuses).not.toContain(503);
    expect(await log()).not.toMatch(/Uncaught|Can't read from request stream/);
  });
});

/** `npm run edge`: what a self-hoster runs in production. */
describe('npm run edge', () => {
  it('serves the Worker on workerd until it is stopped, and says what it needs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hookline-edge-'));
    const port = await freePort();
    const run = (env: Record<string, string>) =>
      spawn(process.execPath, ['--import', 'tsx', 'scripts/edge.ts'], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    try {
      const missing = run({ EDGE_CONTROL_SECRET: '' });
      let said = '';
      missing.stderr.on('data', (data) => (said += data));
      await once(missing, 'exit');
      expect(missing.exitCode).toBe(2);
      expect(said).toMatch(/EDGE_CONTROL_SECRET \(at least 32 characters\) and CONTROL_PLANE_URL are required/);

      const edge = run({ EDGE_CONTROL_SECRET, CONTROL_PLANE_URL: 'http://127.0.0.1:9', EDGE_PORT: String(port), EDGE_DATA_DIR: dir });
      let output = '';
      edge.stdout.on('data', (data) => (output += data));
      edge.stderr.on('data', (data) => (output += data));
      await waitFor(
        async () => output,
        (text) => text.includes('Hookline edge on workerd') || edge.exitCode !== null,
        90_000,
      );
      expect(await fetch(`http://127.0.0.1:${port}/healthcheck`).then((r) => r.status)).toBe(200);
      // No control plane listens: the first reconcile says so and the edge stays up.
      await waitFor(
        async () => output,
        (text) => text.includes('reconcile skipped (503)'),
        10_000,
      );
      const exited = once(edge, 'exit');
      edge.kill('SIGTERM');
      await exited;
      expect(edge.exitCode).toBe(0);
      expect(
        await fetch(`http://127.0.0.1:${port}/healthcheck`).then(
          (r) => r.status,
          () => 0,
        ),
      ).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
