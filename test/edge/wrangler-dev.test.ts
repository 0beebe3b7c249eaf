import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWranglerDev, type WranglerDev } from '../../scripts/wrangler-dev.js';
import { controlToken, EDGE_CONTROL_SECRET } from '../support/edge.js';
import { waitFor } from '../support/events.js';
import { freePort } from '../support/ports.js';

/**
 * The edge under the real `wrangler dev` (its proxy in front of workerd), where an answer given
 * before the body was read used to leave "Can't read from request stream after response has been
 * sent" behind and fail the next request with a 503.
 */
describe('the edge Worker under wrangler dev', () => {
  let dir: string;
  let dev: WranglerDev;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hookline-wrangler-'));
    dev = await startWranglerDev({
      port: await freePort(),
      vars: { EDGE_CONTROL_SECRET, HOOK_BODY_LIMIT_BYTES: '1048576', CONTROL_PLANE_URL: 'http://127.0.0.1:9' },
      dataDir: dir,
      logFile: join(dir, 'wrangler.log'),
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

  it('skips a reconcile while the control plane is unreachable, with a warning, instead of failing the Cron Trigger', async () => {
    // No control plane at CONTROL_PLANE_URL: nothing listens on port 9.
    const res = await fetch(`${dev.url}/__scheduled?cron=*+*+*+*+*`);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    await waitFor(
      () => readFile(join(dir, 'wrangler.log'), 'utf8'),
      (log) => log.includes('reconcile skipped, trying again at the next Cron Trigger'),
      10_000,
    );
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
    expect(await readFile(join(dir, 'wrangler.log'), 'utf8')).not.toMatch(/Uncaught|Can't read from request stream/);
  }, 60_000);
});
