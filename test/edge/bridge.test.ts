import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { edgeExecutions } from '../../control-plane/edge/schema.js';
import { flows } from '../../control-plane/flows/schema.js';
import { MAX_HOOK_BODY_BYTES } from '../../protocol/edge.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { EDGE_CONTROL_SECRET, startTestEdge, type TestEdge } from '../support/edge.js';
import { collectEntries, settled, waitFor } from '../support/events.js';
import { createFlow, flowBody, handledByRepository, publishAsRunner } from '../flows/support.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { freePort } from '../support/ports.js';

interface EdgeState {
  trigger: ({ status: string; version: number } & Record<string, unknown>) | null;
  pending: number;
  failures: number;
}
const status = async (edge: TestEdge, flowId: string) =>
  ((await (await edge.control('GET', `/control/flows/${flowId}`)).json()) as { data: EdgeState }).data;

describe('the edge bridge: control plane and edge Worker together', () => {
  let dir: string;
  let port: number;
  let edge: TestEdge;
  let cp: TestControlPlane;
  let user: TestUser;

  const logs: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });

  const startControlPlane = async () => {
    const edgeUrl = (await edge.mf.ready).toString();
    cp = await startTestControlPlane({
      env: { PORT: String(port), PGLITE_DIR: join(dir, 'pglite'), EDGE_CONTROL_SECRET, EDGE_URL: edgeUrl },
      logger: pino({ level: 'info' }, sink),
    });
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hookline-bridge-'));
    port = await freePort();
    edge = await startTestEdge({ CONTROL_PLANE_URL: `http://127.0.0.1:${port}` });
    await startControlPlane();
    user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
  });
  afterAll(async () => {
    await cp?.close();
    await edge?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts a flow; a test stands in for the runner fleet by reporting flow.started. */
  async function liveFlow(overrides: Record<string, unknown> = {}) {
    const flow = await createFlow(cp, user.token, overrides);
    await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token });
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.trigger?.status === 'starting',
      10_000,
    );
    expect((await edge.fetch(`/hook/${flow.id}`, { method: 'HEAD' })).status).toBe(404);
    const started = await publishAsRunner(cp, 'flow.started', { id: flow.id, tenant: user.tenantId });
    await handledByRepository(cp, started.headers.id);
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.trigger?.status === 'live',
      10_000,
    );
    return flow;
  }

  it('start → the webhook goes live → a call enters the flow exactly once → stop → 404', async () => {
    const flow = await liveFlow();
    const entered = await collectEntries(cp, flow.id);
    const res = await edge.fetch(`/hook/${flow.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'order-1' },
      body: '{"order":1}',
    });
    expect(res.status).toBe(202);
    const { flowExecId } = ((await res.json()) as { data: { flowExecId: string } }).data;
    // The same call again (a retrying sender): no second execution.
    await edge.fetch(`/hook/${flow.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'order-1' },
      body: '{"order":1}',
    });

    const [entry] = await waitFor(
      async () => entered,
      (found) => found.length === 1,
      10_000,
    );
    expect(entry).toMatchObject({ flowExecId, tenant: user.tenantId, message: { data: { order: 1 } } });
    expect((await cp.request('GET', `/executions/${flowExecId}`, { token: user.token })).body.data.trigger).toBe('webhook');
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.pending === 0,
    );
    await settled(entered); // the edge delivers nothing more, and what it delivered has all come
    expect(entered).toHaveLength(1);

    await cp.request('POST', `/flows/${flow.id}/stop`, { token: user.token });
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.trigger === null,
      10_000,
    );
    expect(
      (await edge.fetch(`/hook/${flow.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status,
    ).toBe(404);
  });

  it('delivers a body at the limit and a small one after it: both become executions (the limits agree on both sides)', async () => {
    const flow = await liveFlow();
    const entered = await collectEntries(cp, flow.id);
    const filler = 'x'.repeat(MAX_HOOK_BODY_BYTES - '{"big":""}'.length);
    const big = `{"big":"${filler}"}`;
    expect(big.length).toBe(MAX_HOOK_BODY_BYTES);
    const post = (body: string, type = 'application/json') =>
      edge.fetch(`/hook/${flow.id}`, { method: 'POST', headers: { 'content-type': type }, body });
    expect((await post(big)).status).toBe(202);
    expect((await post('{"small":true}')).status).toBe(202);
    // A body under the limit that would grow past what an execution may carry once written as JSON: refused, not accepted and stuck.
    const escaped = await post('\u0001'.repeat(MAX_HOOK_BODY_BYTES / 2), 'text/plain');
    expect(escaped.status).toBe(413);
    expect(((await escaped.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/more than the \d+ one may carry/);

    const found = await waitFor(
      async () => entered,
      (entries) => entries.length === 2,
      20_000,
    );
    expect(found.map((e) => Object.keys(e.message.data as object)[0])).toEqual(['big', 'small']);
    expect((found[0]!.message.data as { big: string }).big).toHaveLength(filler.length);
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.pending === 0,
      10_000,
    );
  });

  it('resolves webhook secrets from the secret store for the edge; no secret value in the flow, its events or the audit log', async () => {
    const key = `hmac-key-${randomUUID()}`;
    const secret = await cp.request('POST', '/api/v1/secrets', {
      token: user.token,
      body: { name: 'shop webhook', type: 'API_KEY', value: { key } },
    });
    const flow = await liveFlow({ flowSettings: { webhooks: { auth: { type: 'hmac', secretId: secret.body.data.id } } } });
    const body = '{"order":9}';
    const sign = (k: string) => `sha256=${createHmac('sha256', k).update(body).digest('hex')}`;
    const post = (signature: string) =>
      edge.fetch(`/hook/${flow.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
        body,
      });
    expect((await post(sign('a-wrong-key-0123456789'))).status).toBe(403);
    expect((await post(sign(key))).status).toBe(202);

    const admin = await cp.login();
    const logs = await cp.request('GET', '/logs?page[size]=100', { token: admin });
    expect(JSON.stringify(logs.body)).toContain(flow.id);
    expect(JSON.stringify(logs.body)).not.toContain(key);
    expect(JSON.stringify((await cp.request('GET', `/flows/${flow.id}`, { token: user.token })).body)).not.toContain(key);
  });

  it('stops a flow: its webhook key leaves the edge, and a flow.started reported after the stop does not bring it back', async () => {
    const key = `hmac-key-${randomUUID()}`;
    const secret = await cp.request('POST', '/api/v1/secrets', {
      token: user.token,
      body: { name: 'stopped webhook', type: 'API_KEY', value: { key } },
    });
    const flow = await liveFlow({ flowSettings: { webhooks: { auth: { type: 'hmac', secretId: secret.body.data.id } } } });
    const body = '{"order":10}';
    const signature = `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
    const call = await edge.fetch(`/hook/${flow.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature, 'idempotency-key': 'stop-1' },
      body,
    });
    expect(call.status).toBe(202);
    expect(JSON.stringify(await edge.stored(flow.id))).toContain(key);
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.pending === 0,
      10_000,
    );

    await cp.request('POST', `/flows/${flow.id}/stop`, { token: user.token });
    await waitFor(
      () => cp.request('GET', `/flows/${flow.id}`, { token: user.token }),
      (r) => r.body.data.status === 'inactive',
      10_000,
    );
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.trigger === null,
      10_000,
    );
    const stopped = await edge.stored(flow.id);
    expect(JSON.stringify(stopped)).not.toContain(key);
    // Delivered, so no outbox: the tombstone, the outbox's counter and the idempotency key (with its expiry entry) until it expires.
    expect(Object.keys(stopped).sort()).toEqual([expect.stringMatching(/^idem-at:\d{15}:stop-1$/), 'idem:stop-1', 'removedAt', 'seq']);

    const late = await publishAsRunner(cp, 'flow.started', { id: flow.id, tenant: user.tenantId });
    await waitFor(
      async () => logs.filter((line) => line.flowId === flow.id && /flow\.started for a flow that is not starting/.test(line.msg)),
      (found) => found.length === 1,
      10_000,
    );
    expect(Date.parse(late.headers.createdAt)).toBeGreaterThan(stopped.removedAt as number);
    expect(JSON.stringify(await edge.stored(flow.id))).not.toContain(key);
    expect((await edge.fetch(`/hook/${flow.id}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('refuses to save a webhook the edge would refuse, in its words; a key changed after the save fails the start with the reason', async () => {
    const short = await cp.request('POST', '/api/v1/secrets', {
      token: user.token,
      body: { name: 'short key', type: 'API_KEY', value: { key: 'too-short' } },
    });
    const hmac = (secretId: string) => ({ flowSettings: { webhooks: { auth: { type: 'hmac', secretId } } } });
    const refused = await cp.request('POST', '/flows', { token: user.token, body: flowBody(hmac(short.body.data.id)) });
    expect(refused.status).toBe(400);
    const message = 'webhooks.auth.secret: must be at least 16 characters (the key of the API_KEY secret the flow names)';
    expect(refused.body.errors[0].message).toBe(`flowSettings.webhooks.auth: the edge would refuse this webhook: ${message}`);
    // The edge says the same to such a push.
    const pushed = await edge.control('PUT', `/control/flows/${randomUUID()}`, {
      flowId: 'x',
      tenant: 't',
      status: 'live',
      version: 1,
      webhooks: { auth: { type: 'hmac', secret: 'too-short' } },
    });
    expect(((await pushed.json()) as { errors: { message: string }[] }).errors[0]!.message).toBe(message);

    const good = await cp.request('POST', '/api/v1/secrets', {
      token: user.token,
      body: { name: 'good key', type: 'API_KEY', value: { key: `long-enough-key-${randomUUID()}` } },
    });
    const flow = await createFlow(cp, user.token, hmac(good.body.data.id));
    const changed = await cp.request('PATCH', `/api/v1/secrets/${good.body.data.id}`, {
      token: user.token,
      body: { value: { key: 'now-short' } },
    });
    expect(changed.status).toBe(200);
    await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token });
    const failed = await waitFor(
      () => cp.request('GET', `/flows/${flow.id}`, { token: user.token }),
      (r) => r.body.data.status === 'inactive' && r.body.data.statusReason !== null,
      15_000,
    );
    expect(failed.body.data.statusReason).toBe(`the edge refused the flow's trigger: ${message}`);
  });

  it('reconciles every minute: a flow whose push was lost goes live, one whose stop was lost is removed', async () => {
    // Lost pushes, simulated by changing the database behind the bridge's back.
    const lost = await createFlow(cp, user.token);
    await cp.services.db.update(flows).set({ status: 'active', updatedAt: new Date() }).where(eq(flows.id, lost.id));
    const stale = await liveFlow();
    await cp.services.db.update(flows).set({ status: 'inactive', updatedAt: new Date() }).where(eq(flows.id, stale.id));
    expect((await status(edge, lost.id)).trigger).toBeNull();
    expect((await status(edge, stale.id)).trigger?.status).toBe('live');

    await (await edge.mf.getWorker()).scheduled({ cron: '* * * * *' });

    expect((await status(edge, lost.id)).trigger?.status).toBe('live');
    expect((await edge.fetch(`/hook/${lost.id}`, { method: 'HEAD' })).status).toBe(200);
    expect((await status(edge, stale.id)).trigger).toBeNull();
    expect((await edge.fetch(`/hook/${stale.id}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('never lets a late push undo a newer removal', async () => {
    const flow = await liveFlow();
    const { trigger } = await status(edge, flow.id);
    await edge.control('DELETE', `/control/flows/${flow.id}?version=${Date.now()}`);
    const late = await edge.control('PUT', `/control/flows/${flow.id}`, { ...trigger!, version: trigger!.version + 1 });
    expect(await late.json()).toEqual({ data: { applied: false } });
    expect((await edge.fetch(`/hook/${flow.id}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('keeps executions while the control plane is down and delivers each once when it is back', async () => {
    const flow = await liveFlow();
    await cp.close();
    for (const n of [1, 2, 3]) {
      const res = await edge.fetch(`/hook/${flow.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ n }),
      });
      expect(res.status).toBe(202);
    }
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.failures >= 2,
      15_000,
    );
    expect((await status(edge, flow.id)).pending).toBe(3);

    await startControlPlane();
    const entered = await collectEntries(cp, flow.id);
    await waitFor(
      () => status(edge, flow.id),
      (s) => s.pending === 0 && s.failures === 0,
      20_000,
    );
    await waitFor(
      async () => entered,
      (found) => found.length === 3,
      10_000,
    );
    expect(entered.map((e) => (e.message.data as { n: number }).n)).toEqual([1, 2, 3]);
    const recorded = await cp.services.db.select().from(edgeExecutions);
    expect(recorded.filter((r) => r.flowId === flow.id)).toHaveLength(3);
  });
});
