/**
 * Results travelling with the messages between steps (protocol/carried-results.ts), through real
 * StepWorkers on fake transports: each step's message is handed to the next as its queue would,
 * and what reaches the control plane is exactly what the steps would have reported one by one.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CARRY_LIMITS, readCarried } from '../../protocol/carried-results.js';
import type { StepResult } from '../../protocol/events.js';
import { STEP_HEADERS } from '../../protocol/fleet.js';
import { capSerialized } from '../../protocol/step-message.js';
import type { StepFunction } from '../../runner/sdk.js';
import { serializeResult } from '../../runner/worker/results.js';
import { waitFor } from '../support/events.js';
import { carriedBy, counting, delivered, FLOW, startWorker, stepDelivery, TENANT } from './step-worker-support.js';

const pass: StepFunction = (message) => message.data;

/** A delivery from step `before` carrying `results`. */
function carrying(results: unknown[]) {
  const delivery = stepDelivery();
  return { ...delivery, headers: { ...delivery.headers, [STEP_HEADERS.results]: JSON.stringify(results) } };
}

/** A succeeded result of step `before` for the execution of `delivery`, as a step reports it. */
function earlier(delivery: { headers: Record<string, unknown> }, index: number): StepResult {
  return {
    id: randomUUID(),
    flowExecId: String(delivery.headers[STEP_HEADERS.flowExecId]),
    flowId: FLOW,
    tenant: TENANT,
    stepId: `before${index}`,
    deliveryId: randomUUID(),
    status: 'succeeded',
    startedAt: new Date().toISOString(),
    durationMs: 1,
    attempts: 1,
    outputs: [{ n: index }],
    outputCount: 1,
    delivered: [randomUUID()],
  };
}

describe('carried results', () => {
  it('a chain of three: the last step reports every result, outputs given back from the messages they travelled with', async () => {
    const a = await startWorker(pass, { id: 'a', targets: ['b'] });
    const b = await startWorker(() => ({ mapped: true }), { id: 'b', targets: ['c'] });
    const c = await startWorker(pass, { id: 'c', targets: [] });
    const input = stepDelivery({ data: { n: 3 } });
    expect(await a.transport.deliver(input)).toBe('ack');
    expect(await b.transport.deliver(delivered(a.transport.published[0]!))).toBe('ack');
    expect(await c.transport.deliver(delivered(b.transport.published[0]!))).toBe('ack');
    expect([a.transport.events, b.transport.events]).toEqual([[], []]);
    const reported = c.transport.results();
    expect(reported.map((r) => r.stepId)).toEqual(['a', 'b', 'c']);
    // What a and b recorded: the very messages they published.
    expect(reported[0]!.outputs).toEqual([JSON.parse(a.transport.published[0]!.body)]);
    expect(reported[1]!.outputs).toEqual([JSON.parse(b.transport.published[0]!.body)]);
    expect(reported[0]).toMatchObject({ deliveryId: input.messageId, delivered: [a.transport.published[0]!.properties.messageId] });
    expect(reported[1]).toMatchObject({ deliveryId: a.transport.published[0]!.properties.messageId, outputCount: 1 });
    expect(reported[2]).toMatchObject({ deliveryId: b.transport.published[0]!.properties.messageId, delivered: [] });
    expect(reported.every((r) => r.flowExecId === input.headers[STEP_HEADERS.flowExecId])).toBe(true);
  });

  it('a fan-out: the results travel down one branch, and both branches report what they carry', async () => {
    const a = await startWorker(pass, { id: 'a', targets: ['left', 'right'] });
    const left = await startWorker(pass, { id: 'left', targets: [] });
    const right = await startWorker(pass, { id: 'right', targets: [] });
    const input = carrying([]);
    const before = earlier(input, 1);
    input.headers[STEP_HEADERS.results] = JSON.stringify([before]);
    expect(await a.transport.deliver(input)).toBe('ack');
    expect(await left.transport.deliver(delivered(a.transport.published[0]!))).toBe('ack');
    expect(await right.transport.deliver(delivered(a.transport.published[1]!))).toBe('ack');
    const reported = [...left.transport.results(), ...right.transport.results()];
    expect(reported.map((r) => r.stepId).sort()).toEqual(['a', 'before1', 'left', 'right']);
    expect(reported.find((r) => r.stepId === 'before1')).toEqual(before);
    expect(reported.find((r) => r.stepId === 'a')!.delivered).toEqual(a.transport.published.map((p) => p.properties.messageId));
  });

  it('a failure mid-chain and a filter that drops its input report what they carry with their own result', async () => {
    const failing = await startWorker(
      () => {
        throw new Error('mid-chain');
      },
      { id: 'fails', targets: ['next'] },
    );
    const dropping = await startWorker(() => undefined, { id: 'drops', targets: ['next'] });
    for (const [worker, status] of [
      [failing, 'failed'],
      [dropping, 'succeeded'],
    ] as const) {
      const input = carrying([]);
      const before = earlier(input, 1);
      input.headers[STEP_HEADERS.results] = JSON.stringify([before]);
      expect(await worker.transport.deliver(input)).toBe('ack');
      expect(worker.transport.published).toEqual([]);
      expect(worker.transport.results()).toEqual([before, expect.objectContaining({ status, outputCount: 0, delivered: [] })]);
      // Reported together, in one batch.
      expect(worker.transport.events).toHaveLength(1);
    }
  });

  it(`carries at most ${CARRY_LIMITS.results} results: beyond, the step reports what it carries and carries on its own`, async () => {
    const { transport } = await startWorker(pass, { targets: ['next'] });
    const input = carrying([]);
    const before = Array.from({ length: CARRY_LIMITS.results }, (_, i) => earlier(input, i));
    input.headers[STEP_HEADERS.results] = JSON.stringify(before);
    expect(await transport.deliver(input)).toBe('ack');
    expect(transport.results()).toEqual(before);
    expect(carriedBy(transport.published[0]!)).toMatchObject([{ stepId: 'work', deliveryId: input.messageId }]);
  });

  it(`reports a result that would make the carried header larger than ${CARRY_LIMITS.bytes} bytes, and carries nothing`, async () => {
    // 30 outputs of 2 KiB: the result records them all, more than may travel.
    const { transport } = await startWorker(
      (_message, _fields, context) => {
        for (let i = 0; i < 30; i++) context.emit({ i, blob: 'x'.repeat(2048) });
      },
      { targets: ['next'] },
    );
    const input = stepDelivery();
    expect(await transport.deliver(input)).toBe('ack');
    expect(transport.published).toHaveLength(30);
    expect(transport.published.every((p) => carriedBy(p).length === 0)).toBe(true);
    expect(transport.results()).toMatchObject([{ deliveryId: input.messageId, outputCount: 30 }]);
    expect(transport.results()[0]!.outputs).toHaveLength(30);
  });

  it(`a step whose call takes longer than ${CARRY_LIMITS.slowMs} ms reports what it carries while it works`, async () => {
    let finish!: () => void;
    const { transport } = await startWorker(() => new Promise((resolve) => (finish = () => resolve({ late: true }))), {
      targets: ['next'],
    });
    const input = carrying([]);
    const before = earlier(input, 1);
    input.headers[STEP_HEADERS.results] = JSON.stringify([before]);
    const settled = transport.deliver(input);
    await waitFor(
      async () => transport.results(),
      (results) => results.length === 1,
      15_000,
    );
    expect(transport.results()).toEqual([before]);
    finish();
    expect(await settled).toBe('ack');
    expect(carriedBy(transport.published[0]!).map((r) => r.stepId)).toEqual(['work']);
    expect(transport.results()).toEqual([before]);
  });

  it('a rebounded input reports what it carries; its retry carries nothing', async () => {
    const { fn, calls } = counting((context) => context.rebound('later'));
    const { transport } = await startWorker(fn, { targets: ['next'], maxAttempts: 3 });
    const input = carrying([]);
    const before = earlier(input, 1);
    input.headers[STEP_HEADERS.results] = JSON.stringify([before]);
    expect(await transport.deliver(input)).toBe('ack');
    expect(calls).toHaveLength(1);
    expect(transport.results()).toEqual([before]);
    expect(transport.published.map((p) => [p.to, carriedBy(p)])).toEqual([['retry', []]]);
  });

  it('drops carried results of another execution, tenant or flow, and a header that is not a JSON array, and says so', async () => {
    const { transport, logs } = await startWorker(pass, { targets: [] });
    const input = carrying([]);
    const own = earlier(input, 1);
    const strangers = [
      { ...earlier(input, 2), flowExecId: randomUUID() },
      { ...earlier(input, 3), tenant: randomUUID() },
      { ...earlier(input, 4), flowId: randomUUID() },
      'not a result',
    ];
    input.headers[STEP_HEADERS.results] = JSON.stringify([own, ...strangers]);
    expect(await transport.deliver(input)).toBe('ack');
    expect(transport.results().map((r) => r.stepId)).toEqual(['before1', 'work']);
    const garbled = carrying([]);
    garbled.headers[STEP_HEADERS.results] = '{"not": "an array"';
    expect(await transport.deliver(garbled)).toBe('ack');
    expect(transport.results().map((r) => r.stepId)).toEqual(['before1', 'work', 'work']);
    expect(logs.filter((l) => l.msg === 'dropped carried results that are not of this execution').map((l) => l.dropped)).toEqual([4, 1]);
  });
});

describe('the JSON of a reported result (serializeResult)', () => {
  it('writes outputs serialized once as they are, and is the JSON of the result', () => {
    const message = { id: 'm', data: { text: 'é "quoted" \u2028' } };
    const result = {
      ...earlier(stepDelivery(), 1),
      outputs: [
        capSerialized(message, JSON.stringify(message)),
        { plain: true },
        capSerialized('x'.repeat(20_000), `"${'x'.repeat(20_000)}"`),
      ],
    };
    const json = serializeResult(result);
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(result)));
    expect(JSON.parse(json).outputs).toEqual([message, { plain: true }, expect.objectContaining({ truncated: true, bytes: 20_002 })]);
  });

  it('records a carried message whose body is not JSON as its text', () => {
    const delivery = stepDelivery();
    const execution = { flowExecId: String(delivery.headers[STEP_HEADERS.flowExecId]), flowId: FLOW, tenant: TENANT };
    const travelling = { ...earlier(delivery, 1), outputs: [], outputIsMessage: true };
    const { results } = readCarried(JSON.stringify([travelling]), execution, undefined, 'not {json');
    expect(JSON.parse(serializeResult(results[0]!)).outputs).toEqual(['not {json']);
  });
});
