import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlToken, startTestEdge, type TestEdge } from '../support/edge.js';
import { waitFor } from '../support/events.js';

const HOUR = 60 * 60 * 1000;
const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

describe('the edge Worker’s webhook URLs (workerd via Miniflare)', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startTestEdge({ HOOK_BODY_LIMIT_BYTES: '2048' });
  });
  afterAll(() => edge?.close());

  /** Sends a POST by hand, writing `parts` one by one, and answers the raw response as text. */
  async function rawPost(path: string, headers: string[], parts: string[]): Promise<string> {
    const { hostname, port } = await edge.mf.ready;
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    let response = '';
    socket.on('data', (data) => (response += data.toString()));
    socket.on('error', () => undefined); // the server may close before it read everything: that is the point
    socket.write(
      `POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: text/plain\r\nconnection: close\r\n${headers.join('\r\n')}\r\n\r\n`,
    );
    for (const part of parts) {
      if (response) break;
      await new Promise((resolve) => socket.write(part, resolve)); // each part on its own, as a slow sender's
    }
    // The Worker reads what is sent of an oversized body for a few seconds before it gives up and answers.
    let closed = false;
    socket.once('close', () => (closed = true));
    await waitFor(
      async () => response,
      (text) => text.includes('\r\n') || closed,
      20_000,
    );
    socket.destroy();
    return response;
  }

  /** The executions waiting in a flow's outbox. */
  async function pending(flowId: string): Promise<number> {
    return ((await (await edge.control('GET', `/control/flows/${flowId}`)).json()) as { data: { pending: number } }).data.pending;
  }

  it('reports that it is up', async () => {
    const res = await edge.fetch('/healthcheck');
    expect(await res.json()).toEqual({ status: 'ok', service: 'edge' });
  });

  it('answers 202 with requestId and flowExecId once the execution is stored', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId });
    const res = await edge.fetch(`/hook/${flowId}`, json({ order: 42 }, { 'x-request-id': 'req-1' }));
    expect(res.status).toBe(202);
    const body = (await res.json()) as { data: { requestId: string; flowExecId: string } };
    expect(body.data.requestId).toBe('req-1');
    expect(body.data.flowExecId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await pending(flowId)).toBe(1);
  });

  it('gives a cron flow no webhook: the same 404 as an unknown flow, and nothing runs', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId, cron: '0 0 1 1 *' });
    for (const method of ['POST', 'GET', 'HEAD']) {
      const res = await edge.fetch(`/hook/${flowId}`, method === 'POST' ? json({ run: 'me' }) : { method });
      expect(res.status).toBe(404);
    }
    expect(await pending(flowId)).toBe(0);
  });

  it('refuses data the control plane could not store with a 400 naming where, and keeps nothing', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId });
    const cases: [RequestInit | string, RegExp][] = [
      [
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"a\\u0000b"}' },
        /^body\.name: contains a NUL character/,
      ],
      [
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"\\ud800"}' },
        /^body\.name: contains a lone surrogate/,
      ],
      [{ method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'a\u0000b' }, /^body: contains a NUL character/],
      [
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '['.repeat(200) + ']'.repeat(200) },
        /^body(\.0)*: nested deeper than 64 levels$/,
      ],
      ['?q=a%00b', /^query\.q: contains a NUL character/],
    ];
    for (const [request, message] of cases) {
      const res =
        typeof request === 'string' ? await edge.fetch(`/hook/${flowId}${request}`) : await edge.fetch(`/hook/${flowId}`, request);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(message);
    }
    expect(await pending(flowId)).toBe(0);
  });

  it('answers unknown, starting and stopped flows with the same 404', async () => {
    const starting = randomUUID();
    await edge.push({ flowId: starting, status: 'starting' });
    const stopped = randomUUID();
    await edge.push({ flowId: stopped });
    expect((await edge.control('DELETE', `/control/flows/${stopped}?version=1000`)).status).toBe(200);
    const answers = await Promise.all(
      [randomUUID(), starting, stopped, 'not-a-flow-id', 'x'.repeat(100)].map(async (id) => {
        const res = await edge.fetch(`/hook/${id}`, json({}));
        return [res.status, await res.text()];
      }),
    );
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]![0]).toBe(404);
    expect(JSON.parse(answers[0]![1] as string)).toEqual({ errors: [{ message: 'No live webhook at this URL', code: 'not_found' }] });
    expect((await edge.fetch(`/hook/${starting}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('answers HEAD 200 for a live flow; GET turns the query into data', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId });
    expect((await edge.fetch(`/hook/${flowId}`, { method: 'HEAD' })).status).toBe(200);
    const res = await edge.fetch(`/hook/${flowId}/orders/new?customer=7&tag=a`, { headers: { 'x-custom': 'yes' } });
    expect(res.status).toBe(202);
    expect(await pending(flowId)).toBe(1);
    expect((await edge.fetch(`/hook/${flowId}`, { method: 'PUT' })).status).toBe(405);
  });

  it('parses JSON, text, form and XML bodies, and refuses malformed ones with 400', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId });
    const post = (type: string, body: string) => edge.fetch(`/hook/${flowId}`, { method: 'POST', headers: { 'content-type': type }, body });
    expect((await post('application/json; charset=utf-8', '{"a":1}')).status).toBe(202);
    expect((await post('text/plain', 'hello')).status).toBe(202);
    expect((await post('application/x-www-form-urlencoded', 'a=1&b=two')).status).toBe(202);
    expect((await post('application/xml', '<order id="1"><total>3</total></order>')).status).toBe(202);
    expect(await pending(flowId)).toBe(4);

    const badJson = await post('application/json', '{"a":');
    expect(badJson.status).toBe(400);
    expect(JSON.stringify(await badJson.json())).toMatch(/not valid JSON/);
    const badXml = await post('application/xml', '<order><total>3</order>');
    expect(badXml.status).toBe(400);
    expect(JSON.stringify(await badXml.json())).toMatch(/not valid XML/);
    expect(await pending(flowId)).toBe(4);
  });

  it('refuses a POST without a content type (415), an unsupported one (415) and a body over the limit without keeping it (413)', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId });
    const none = await edge.fetch(`/hook/${flowId}`, { method: 'POST', body: new Uint8Array([1, 2, 3]) });
    expect(none.status).toBe(415);
    const binary = await edge.fetch(`/hook/${flowId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: 'x',
    });
    expect(binary.status).toBe(415);
    // Raw HTTP, so the test sees the answer even though the server stops reading: a declared
    // Content-Length over the limit is refused with only part of the body ever sent...
    const declared = await rawPost(`/hook/${flowId}`, ['content-length: 4096'], ['x'.repeat(100)]);
    expect(declared).toMatch(/^HTTP\/1\.1 413/);
    // ...and a chunked body with no length is refused once it passes the limit, before its end.
    const chunk = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n`;
    const streamed = await rawPost(
      `/hook/${flowId}`,
      ['transfer-encoding: chunked'],
      Array.from({ length: 6 }, () => chunk('y'.repeat(512))),
    );
    expect(streamed).toMatch(/^HTTP\/1\.1 413/);
    expect(await pending(flowId)).toBe(0);
  });

  it('answers a repeated webhook-id, Idempotency-Key or x-request-id with the first answer, storing one execution', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId });
    for (const header of ['webhook-id', 'idempotency-key', 'x-request-id']) {
      const key = `${header}-${randomUUID()}`;
      const first = await edge.fetch(`/hook/${flowId}`, json({ n: 1 }, { [header]: key }));
      const second = await edge.fetch(`/hook/${flowId}`, json({ n: 2 }, { [header]: key }));
      expect(second.status).toBe(202);
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      expect(await second.json()).toEqual(await first.json());
    }
    expect(await pending(flowId)).toBe(3);
  });

  it('forgets a key once its 24 hours have passed, and only that key', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId });
    const object = await edge.trigger(flowId);
    const call = (key: string) => edge.fetch(`/hook/${flowId}`, json({ key }, { 'idempotency-key': key }));
    expect((await call('early')).status).toBe(202);
    await object.travel(23 * HOUR);
    expect((await call('late')).status).toBe(202);
    await object.travel(2 * HOUR);
    await object.runAlarm();
    const keys = Object.keys(await edge.stored(flowId)).filter((key) => key.startsWith('idem'));
    expect(keys.filter((key) => key.startsWith('idem:'))).toEqual(['idem:late']);
    expect(keys.filter((key) => key.startsWith('idem-at:'))).toHaveLength(1);
    expect((await call('early')).headers.get('idempotent-replayed')).toBeNull();
    expect((await call('late')).headers.get('idempotent-replayed')).toBe('true');
  });

  it('protects its control API with a token signed by the control plane', async () => {
    const flowId = randomUUID();
    const put = (authorization?: string) =>
      edge.fetch(`/control/flows/${flowId}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ flowId, tenant: 't', status: 'live', version: 1 }),
      });
    expect((await put()).status).toBe(401);
    expect((await put(`Bearer ${await controlToken('another-secret-that-is-long-enough')}`)).status).toBe(401);
    expect((await put(`Bearer ${await controlToken(undefined, '-1m')}`)).status).toBe(401);
    expect((await edge.fetch(`/hook/${flowId}`, json({}))).status).toBe(404);
    expect((await put(`Bearer ${await controlToken()}`)).status).toBe(200);
    expect((await edge.fetch(`/hook/${flowId}`, json({}))).status).toBe(202);
  });

  it('applies pushed triggers in version order: a late, older push changes nothing', async () => {
    const flowId = randomUUID();
    const put = (version: number, status: string) =>
      edge.control('PUT', `/control/flows/${flowId}`, { flowId, tenant: 't', status, version });
    expect(await (await put(5, 'live')).json()).toEqual({ data: { applied: true } });
    expect(await (await put(4, 'starting')).json()).toEqual({ data: { applied: false } });
    expect((await edge.fetch(`/hook/${flowId}`, json({}))).status).toBe(202);
    expect(await (await edge.control('DELETE', `/control/flows/${flowId}?version=3`)).json()).toEqual({ data: { removed: false } });
    const bad = await edge.control('PUT', `/control/flows/${flowId}`, { flowId, status: 'running', version: 'x' });
    expect(bad.status).toBe(400);
  });
});
