import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DELIVERY_LIMITS, MAX_HOOK_BODY_BYTES } from '../../protocol/edge.js';
import { startTestEdge, type TestEdge } from '../support/edge.js';
import { waitFor } from '../support/events.js';

interface Execution {
  flowExecId: string;
  message: { data: { poison?: boolean } };
}

/**
 * The edge's delivery against a peer that behaves as no control plane of this version can: one
 * that refuses batches as they are. It stands in for a control plane of another version, so the
 * edge's answer to that (one at a time, then setting aside what is refused alone) is tested.
 */
describe('delivery from the edge to a control plane that refuses', () => {
  let server: Server;
  let edge: TestEdge;
  let available = false;
  const requests: { bytes: number; executions: Execution[] }[] = [];
  const received = new Set<string>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const { executions } = JSON.parse(body.toString()) as { executions: Execution[] };
        requests.push({ bytes: body.byteLength, executions });
        const answer = (status: number, payload: unknown) =>
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
        if (!available) return answer(503, { errors: [{ message: 'down', code: 'unavailable' }] });
        if (executions.some((e) => e.message.data.poison))
          return answer(400, { errors: [{ message: 'execution: unreadable', code: 'validation_error' }] });
        for (const e of executions) received.add(e.flowExecId);
        answer(200, { data: { accepted: executions.map((e) => e.flowExecId), duplicates: [], rejected: [] } });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    edge = await startTestEdge({ CONTROL_PLANE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    await edge?.close();
    server?.close();
  });

  const state = async (flowId: string) =>
    (
      (await (await edge.control('GET', `/control/flows/${flowId}`)).json()) as {
        data: { pending: number; failures: number; setAside: { reason: string; execution: Execution }[] };
      }
    ).data;
  const post = (flowId: string, data: unknown) =>
    edge.fetch(`/hook/${flowId}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(data) });

  it('cuts batches by bytes as well as by count, so large executions travel in several requests, none over the limit', async () => {
    available = false;
    const flowId = randomUUID();
    await edge.push({ flowId });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await post(flowId, { n: i, text: 'x'.repeat(MAX_HOOK_BODY_BYTES - 100) });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { data: { flowExecId: string } }).data.flowExecId);
    }
    await waitFor(
      () => state(flowId),
      (s) => s.failures >= 1 && s.pending === 5,
      15_000,
    );
    const before = requests.length;
    available = true;
    await waitFor(
      () => state(flowId),
      (s) => s.pending === 0,
      30_000,
    );
    const delivered = requests.slice(before).filter((r) => r.executions.some((e) => ids.includes(e.flowExecId)));
    expect(delivered.length).toBeGreaterThan(1);
    for (const request of delivered) expect(request.bytes).toBeLessThanOrEqual(DELIVERY_LIMITS.bytes);
    expect(ids.every((id) => received.has(id))).toBe(true);
  }, 60_000);

  it('sends a refused batch again one at a time, and sets aside, with the reason, only what is refused alone', async () => {
    available = false;
    const flowId = randomUUID();
    await edge.push({ flowId });
    const ids: string[] = [];
    for (const data of [{ n: 1 }, { poison: true }, { n: 3 }])
      ids.push(((await (await post(flowId, data)).json()) as { data: { flowExecId: string } }).data.flowExecId);
    await waitFor(
      () => state(flowId),
      (s) => s.failures >= 1,
      15_000,
    );
    available = true;
    const done = await waitFor(
      () => state(flowId),
      (s) => s.pending === 0,
      30_000,
    );
    expect(done.setAside).toHaveLength(1);
    expect(done.setAside[0]).toMatchObject({
      execution: { flowExecId: ids[1] },
      reason: expect.stringMatching(/^control plane answered 400: .*unreadable/),
    });
    expect([ids[0], ids[2]].every((id) => received.has(id!))).toBe(true);
    // The next call is delivered as usual: nothing is held up behind what was set aside.
    const next = ((await (await post(flowId, { n: 4 })).json()) as { data: { flowExecId: string } }).data.flowExecId;
    await waitFor(async () => received.has(next), Boolean, 15_000);
  }, 60_000);
});
