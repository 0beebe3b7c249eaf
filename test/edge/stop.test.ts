import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeTrigger } from '../../protocol/edge.js';
import { startTestEdge, type TestEdge } from '../support/edge.js';

const HMAC_SECRET = `hmac-${randomUUID()}`;
const BEARER = `bearer-${randomUUID()}`;
const WHSEC = [randomBytes(24).toString('base64'), randomBytes(24).toString('base64')];

/** What a stopped flow's Durable Object may keep: the tombstone version, the outbox and its counter (until delivered), idempotency keys and their expiry entries (until they expire). */
const ALLOWED_AFTER_STOP = /^(removedAt|seq|failures|retryAt|outbox:\d+|idem:.+|idem-at:\d{15}:.+)$/;

describe('what a stopped flow leaves in its Durable Object (workerd via Miniflare)', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startTestEdge();
  });
  afterAll(() => edge?.close());

  const control = async (method: string, path: string, body?: unknown) =>
    (await (await edge.control(method, path, body)).json()) as { data: Record<string, unknown> };
  /** Every stored value as text, and the keys. */
  const storage = async (flowId: string) => {
    const stored = await edge.stored(flowId);
    return { keys: Object.keys(stored).sort(), text: JSON.stringify(stored), removedAt: stored.removedAt };
  };

  const auths: [string, EdgeTrigger['webhooks']['auth'], string[], (body: string) => Record<string, string>][] = [
    [
      'hmac',
      { type: 'hmac', secret: HMAC_SECRET, header: 'x-hub-signature-256', algorithm: 'sha256', encoding: 'hex', prefix: 'sha256=' },
      [HMAC_SECRET],
      (body) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', HMAC_SECRET).update(body).digest('hex')}` }),
    ],
    ['bearer', { type: 'bearer', token: BEARER }, [BEARER], () => ({ authorization: `Bearer ${BEARER}` })],
    [
      'standard-webhooks',
      { type: 'standard-webhooks', secrets: WHSEC.map((key) => `whsec_${key}`), toleranceSeconds: 300 },
      WHSEC,
      (body) => {
        const ts = Math.floor(Date.now() / 1000);
        return {
          'webhook-id': 'msg_1',
          'webhook-timestamp': String(ts),
          'webhook-signature': `v1,${createHmac('sha256', Buffer.from(WHSEC[1]!, 'base64')).update(`msg_1.${ts}.${body}`).digest('base64')}`,
        };
      },
    ],
  ];

  it.each(auths)(
    '%s: the control API never shows the keys; the stop push removes the trigger and its keys; only the tombstone, the outbox and idempotency keys stay',
    async (_type, auth, secrets, sign) => {
      const flowId = randomUUID();
      await edge.push({ flowId, webhooks: { auth }, version: 100 });
      const body = '{"paid":true}';
      const call = await edge.fetch(`/hook/${flowId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `key-${flowId}`, ...sign(body) },
        body,
      });
      expect(call.status).toBe(202);
      const live = await storage(flowId);
      for (const secret of secrets) expect(live.text).toContain(secret);
      // The control API shows the trigger, never its keys.
      const shown = JSON.stringify(await control('GET', `/control/flows/${flowId}`));
      for (const secret of secrets) expect(shown).not.toContain(secret);
      expect(shown).toContain('[hidden]');

      expect(await control('DELETE', `/control/flows/${flowId}?version=200`)).toEqual({ data: { removed: true } });
      const stopped = await storage(flowId);
      for (const secret of secrets) expect(stopped.text).not.toContain(secret);
      expect(stopped.keys).not.toContain('trigger');
      expect(stopped.keys.filter((key) => !ALLOWED_AFTER_STOP.test(key))).toEqual([]);
      expect(stopped.keys).toContain('removedAt');
      expect(stopped.keys.some((key) => key.startsWith('idem:'))).toBe(true);
      expect(stopped.removedAt).toBe(200);
      expect((await edge.fetch(`/hook/${flowId}`, { method: 'HEAD' })).status).toBe(404);
    },
  );

  it('a stop that arrives before its flow’s start leaves a tombstone, so the late start stores no keys and opens nothing', async () => {
    const flowId = randomUUID();
    expect(await control('DELETE', `/control/flows/${flowId}?version=200`)).toEqual({ data: { removed: false } });
    for (const status of ['starting', 'live'] as const) {
      const late = await control('PUT', `/control/flows/${flowId}`, {
        flowId,
        tenant: 't',
        status,
        version: 150,
        webhooks: { auth: { type: 'bearer', token: BEARER } },
      });
      expect(late).toEqual({ data: { applied: false } });
    }
    const { keys, text } = await storage(flowId);
    expect(keys).toEqual(['removedAt']);
    expect(text).not.toContain(BEARER);
    expect((await edge.fetch(`/hook/${flowId}`, { headers: { authorization: `Bearer ${BEARER}` } })).status).toBe(404);

    // A later start (a newer version) is a new start, and works.
    await edge.push({ flowId, webhooks: { auth: { type: 'bearer', token: BEARER } }, version: 300 });
    expect(
      (
        await edge.fetch(`/hook/${flowId}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${BEARER}` },
          body: '{}',
        })
      ).status,
    ).toBe(202);
  });

  it('an older stop keeps the newer tombstone', async () => {
    const flowId = randomUUID();
    await control('DELETE', `/control/flows/${flowId}?version=200`);
    await control('DELETE', `/control/flows/${flowId}?version=100`);
    expect((await storage(flowId)).removedAt).toBe(200);
    expect(await control('PUT', `/control/flows/${flowId}`, { flowId, tenant: 't', status: 'live', version: 150 })).toEqual({
      data: { applied: false },
    });
  });
});
