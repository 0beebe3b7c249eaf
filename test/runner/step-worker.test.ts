/**
 * StepWorker by itself, through its transport (runner/worker/transport.ts): the broker side is a
 * fake at that seam, so each rule of the worker is seen on its own, without a runner or a broker.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_DELIVERIES } from '../../runner/worker/step.js';
import { waitFor } from '../support/events.js';
import { carriedBy, counting, executedDelivery, startWorker, stepDelivery, TENANT } from './step-worker-support.js';

describe('StepWorker', () => {
  it('publishes each output to every target, its result travelling with the first, and acknowledges the input only once the broker confirmed them', async () => {
    const { fn, calls } = counting(() => ({ doubled: 2 }));
    const { transport } = await startWorker(fn, { targets: ['a', 'b'] });
    transport.confirms = false;
    const delivery = stepDelivery();
    let settled: 'ack' | 'nack' | undefined;
    const settling = transport.deliver(delivery).then((how) => (settled = how));
    // Two outputs, each waiting for its confirm: one publish per delivery, none for the result.
    await waitFor(
      async () => transport.waitingForConfirms,
      (n) => n === 2,
    );
    expect(settled).toBeUndefined();
    transport.release();
    expect(await settling).toBe('ack');
    expect(calls).toHaveLength(1);
    expect(transport.published.map((p) => [p.to, p.routingKey])).toEqual([
      ['step', 'step.a'],
      ['step', 'step.b'],
    ]);
    expect(JSON.parse(transport.published[0]!.body).data).toEqual({ doubled: 2 });
    expect(transport.events).toEqual([]);
    // Without its output: the message it travels with is that output.
    expect(carriedBy(transport.published[0]!)).toMatchObject([
      { status: 'succeeded', deliveryId: delivery.messageId, outputCount: 1, outputs: [], outputIsMessage: true, tenant: TENANT },
    ]);
    expect(carriedBy(transport.published[1]!)).toEqual([]);
  });

  it('fails an input whose component outlives the step timeout, and aborts its signal', async () => {
    const signals: AbortSignal[] = [];
    const { fn, calls } = counting((context) => {
      signals.push(context.signal);
      return new Promise(() => {});
    });
    const { transport } = await startWorker(fn, { timeoutSeconds: 1 });
    expect(await transport.deliver(stepDelivery())).toBe('ack');
    expect(calls).toHaveLength(1);
    expect(signals[0]!.aborted).toBe(true);
    const [result] = transport.results();
    expect(result).toMatchObject({ status: 'failed', outputCount: 0, error: { message: 'the step took longer than its timeout of 1 s' } });
    expect(transport.published).toEqual([]);
  });

  it('gives a component that first reads its signal after the timeout an aborted one', async () => {
    const late: AbortSignal[] = [];
    let timedOut!: () => void;
    const afterTimeout = new Promise<void>((resolve) => (timedOut = resolve));
    const { fn, calls } = counting(async (context) => {
      await afterTimeout;
      late.push(context.signal);
    });
    const { transport } = await startWorker(fn, { timeoutSeconds: 1 });
    expect(await transport.deliver(stepDelivery())).toBe('ack');
    expect(transport.results()).toMatchObject([{ status: 'failed' }]);
    timedOut(); // the component looks at its signal only now
    await waitFor(
      async () => late.length,
      (n) => n === 1,
    );
    expect(calls).toHaveLength(1);
    expect(late[0]!.aborted).toBe(true);
  });

  it(`fails an input whose worker died ${MAX_DELIVERIES} times holding it, without running the component again`, async () => {
    const { fn, calls } = counting();
    const { transport } = await startWorker(fn);
    expect(await transport.deliver(stepDelivery({ deliveryCount: MAX_DELIVERIES - 1 }))).toBe('ack');
    expect(calls).toHaveLength(1);
    expect(await transport.deliver(stepDelivery({ deliveryCount: MAX_DELIVERIES }))).toBe('ack');
    expect(calls).toHaveLength(1);
    const [poisoned] = transport.results();
    expect(poisoned).toMatchObject({ status: 'failed', outputCount: 0 });
    expect(poisoned!.error!.message).toContain(`the worker stopped ${MAX_DELIVERIES} times while working on this input`);
    expect(transport.published).toHaveLength(1); // the first input's output only
  });

  it('drops a message of another tenant, from a step or as flow.executed, without running the component or reporting it', async () => {
    const { fn, calls } = counting();
    const { transport, logs } = await startWorker(fn);
    const other = randomUUID();
    expect(await transport.deliver(stepDelivery({ tenant: other }))).toBe('ack');
    expect(await transport.deliver(executedDelivery(other))).toBe('ack');
    expect(calls).toHaveLength(0);
    expect(transport.events).toEqual([]);
    expect(transport.published).toEqual([]);
    const dropped = logs.filter((l) => l.msg.includes(`a message of tenant ${other} reached a step of tenant ${TENANT}`));
    expect(dropped).toHaveLength(2);
    // The same worker runs its own tenant's input.
    expect(await transport.deliver(executedDelivery(TENANT))).toBe('ack');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.tenant).toBe(TENANT);
  });
});
