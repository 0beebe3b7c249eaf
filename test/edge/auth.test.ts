import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEdge, type TestEdge } from '../support/edge.js';

const HMAC_SECRET = 'hmac-secret-0123456789abcdef';
const BEARER = 'bearer-token-0123456789abcdef';
const whsec = () => randomBytes(24);

describe('webhook authentication at the edge', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startTestEdge();
  });
  afterAll(() => edge?.close());

  const post = (flowId: string, body: string, headers: Record<string, string>) =>
    edge.fetch(`/hook/${flowId}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const executions = async (flowId: string) =>
    (
      (await (await edge.control('GET', `/control/flows/${flowId}`)).json()) as {
        data: { executions: { message: { headers: Record<string, string> } }[] };
      }
    ).data.executions;

  it('HMAC of the raw body (OIH/GitHub style): accepts the right digest only; the header is not passed on', async () => {
    const flowId = randomUUID();
    await edge.push({
      flowId,
      webhooks: {
        auth: { type: 'hmac', secret: HMAC_SECRET, header: 'x-hub-signature-256', algorithm: 'sha256', encoding: 'hex', prefix: 'sha256=' },
      },
    });
    const body = '{"event":"push"}';
    const digest = createHmac('sha256', HMAC_SECRET).update(body).digest('hex');
    expect((await post(flowId, body, {})).status).toBe(401);
    expect((await post(flowId, body, { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` })).status).toBe(403);
    expect((await post(flowId, `${body} `, { 'x-hub-signature-256': `sha256=${digest}` })).status).toBe(403);
    expect((await post(flowId, body, { 'x-hub-signature-256': `sha256=zz` })).status).toBe(403);
    expect((await post(flowId, body, { 'x-hub-signature-256': `sha256=${digest}` })).status).toBe(202);
    const [execution] = await executions(flowId);
    expect(execution!.message.headers).not.toHaveProperty('x-hub-signature-256');
  });

  it('HMAC of a GET covers its path and query: one signature cannot carry another query; HEAD needs the credential too', async () => {
    const flowId = randomUUID();
    await edge.push({
      flowId,
      webhooks: { auth: { type: 'hmac', secret: HMAC_SECRET, header: 'x-signature', algorithm: 'sha256', encoding: 'hex', prefix: '' } },
    });
    const sign = (target: string) => createHmac('sha256', HMAC_SECRET).update(target).digest('hex');
    const target = `/hook/${flowId}/orders?customer=7`;
    const get = (path: string, signature?: string, method = 'GET') =>
      edge.fetch(path, { method, headers: signature ? { 'x-signature': signature } : {} });
    expect((await get(target)).status).toBe(401);
    // The empty body's digest, which was all a GET's signature covered before: refused.
    expect((await get(target, sign(''))).status).toBe(403);
    expect((await get(`/hook/${flowId}/orders?customer=8`, sign(target))).status).toBe(403);
    expect((await get(target, sign(target))).status).toBe(202);
    expect((await get(target, undefined, 'HEAD')).status).toBe(401);
    expect((await get(target, sign(target), 'HEAD')).status).toBe(200);
    const [execution] = (await executions(flowId)) as unknown as { message: { data: unknown } }[];
    expect(execution!.message.data).toEqual({ customer: '7' });
    expect(await executions(flowId)).toHaveLength(1);
  });

  it('bearer on HEAD: no token, no answer', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId, webhooks: { auth: { type: 'bearer', token: BEARER } } });
    expect((await edge.fetch(`/hook/${flowId}`, { method: 'HEAD' })).status).toBe(401);
    expect((await edge.fetch(`/hook/${flowId}`, { method: 'HEAD', headers: { authorization: `Bearer ${BEARER}` } })).status).toBe(200);
  });

  it('Standard Webhooks: any of several secrets, within the timestamp tolerance', async () => {
    const flowId = randomUUID();
    const [oldKey, newKey] = [whsec(), whsec()];
    await edge.push({
      flowId,
      webhooks: {
        auth: {
          type: 'standard-webhooks',
          secrets: [`whsec_${oldKey.toString('base64')}`, `whsec_${newKey.toString('base64')}`],
          toleranceSeconds: 300,
        },
      },
    });
    const body = '{"type":"invoice.paid"}';
    const sign = (key: Buffer, id: string, ts: number) => `v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}`;
    const now = Math.floor(Date.now() / 1000);
    const headers = (id: string, ts: number, signature: string) => ({
      'webhook-id': id,
      'webhook-timestamp': String(ts),
      'webhook-signature': signature,
    });

    expect((await post(flowId, body, {})).status).toBe(401);
    expect((await post(flowId, body, headers('msg_1', now, sign(newKey, 'msg_1', now)))).status).toBe(202);
    // Key rotation: the old key still works, and a header with several signatures passes if one does.
    expect((await post(flowId, body, headers('msg_2', now, sign(oldKey, 'msg_2', now)))).status).toBe(202);
    expect((await post(flowId, body, headers('msg_3', now, `v1,AAAA ${sign(newKey, 'msg_3', now)}`))).status).toBe(202);
    // Wrong key, tampered id, stale or future timestamp.
    expect((await post(flowId, body, headers('msg_4', now, sign(whsec(), 'msg_4', now)))).status).toBe(403);
    expect((await post(flowId, body, headers('msg_5', now, sign(newKey, 'other', now)))).status).toBe(403);
    expect((await post(flowId, body, headers('msg_6', now - 600, sign(newKey, 'msg_6', now - 600)))).status).toBe(403);
    expect((await post(flowId, body, headers('msg_7', now + 600, sign(newKey, 'msg_7', now + 600)))).status).toBe(403);
    expect(await executions(flowId)).toHaveLength(3);
  });

  it('bearer token: the exact token, nothing else; the authorization header is not passed on', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId, webhooks: { auth: { type: 'bearer', token: BEARER } } });
    expect((await post(flowId, '{}', {})).status).toBe(401);
    expect((await post(flowId, '{}', { authorization: `Bearer ${BEARER}x` })).status).toBe(403);
    expect((await post(flowId, '{}', { authorization: `Bearer ${BEARER.slice(0, -1)}` })).status).toBe(403);
    const wrong = await post(flowId, '{}', { authorization: 'Basic abc' });
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toEqual({ errors: [{ message: 'Authentication failed', code: 'forbidden' }] });
    expect((await post(flowId, '{}', { authorization: `Bearer ${BEARER}` })).status).toBe(202);
    const [execution] = await executions(flowId);
    expect(execution!.message.headers).not.toHaveProperty('authorization');
  });

  it('checks the signature before the idempotency key, so an unsigned replay learns nothing', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId, webhooks: { auth: { type: 'bearer', token: BEARER } } });
    const key = randomUUID();
    expect((await post(flowId, '{}', { authorization: `Bearer ${BEARER}`, 'idempotency-key': key })).status).toBe(202);
    const replay = await post(flowId, '{}', { 'idempotency-key': key });
    expect(replay.status).toBe(401);
  });

  it('builds the message as OIH does: GET query as data, request headers as headers, the path suffix kept', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId });
    await edge.fetch(`/hook/${flowId}/orders/new?customer=7`, { headers: { 'x-shop': 'north' } });
    await edge.fetch(`/hook/${flowId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/xml' },
      body: '<order id="1"><total>3</total></order>',
    });
    const [get, xml] = (await executions(flowId)) as unknown as { flowId: string; trigger: string; message: Record<string, any> }[];
    expect(get).toMatchObject({
      flowId,
      trigger: 'webhook',
      message: { data: { customer: '7' }, method: 'GET', pathSuffix: 'orders/new', query: { customer: '7' } },
    });
    expect(get!.message.headers['x-shop']).toBe('north');
    expect(xml!.message.data).toEqual({ order: { '@id': '1', total: 3 } });
  });
});
