/**
 * StepWorker by itself, through its transport (runner/worker/transport.ts): the broker side is a
 * fake at that seam, so each rule of the worker is seen on its own, without a runner or a broker.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { StepResult } from '../../protocol/events.js';
import { STEP_HEADERS } from '../../protocol/fleet.js';
import type { StepContext, StepFunction } from '../../runner/sdk.js';
import type { WorkerConfig } from '../../runner/worker/config.js';
import { MAX_DELIVERIES, StepWorker } from '../../runner/worker/step.js';
import type { Delivery, PublishProperties, SerializedEvent, WorkerTransport } from '../../runner/worker/transport.js';
import { waitFor } from '../support/events.js';

const TENANT = randomUUID();
const FLOW = randomUUID();

/** How long a test waits for the worker to settle an input; far longer than any step here takes. */
const SETTLE_DEADLINE_MS = 15_000;

function workerConfig(step: Partial<WorkerConfig['step']> = {}): WorkerConfig {
  return {
    flowId: FLOW,
    tenant: TENANT,
    generation: 1,
    step: {
      id: 'work',
      name: null,
      function: 'run',
      component: { id: randomUUID(), name: 'test', image: null, module: null },
      fields: {},
      credentialsId: null,
      targets: ['next'],
      first: false,
      maxAttempts: 1,
      timeoutSeconds: 30,
      concurrency: 1,
      prefetch: 4,
      memoryMb: 256,
      cpus: 0.5,
      outputSchema: null,
      ...step,
    },
    retry: { baseDelayMs: 1000, maxDelayMs: 60_000, levels: 3 },
    maxMessages: 1000,
    passthrough: false,
    controlPlaneUrl: 'http://127.0.0.1:1',
    outboundAllowedNetworks: [],
    broker: { kind: 'ipc' },
  };
}

type Published = { to: 'step' | 'retry'; routingKey: string; body: string; properties: PublishProperties };

/** The broker as the worker sees it: deliveries handed in by the test, publishes recorded and confirmed when `confirms` lets them. */
class FakeTransport implements WorkerTransport {
  readonly published: Published[] = [];
  readonly events: SerializedEvent[] = [];
  private onDelivery: ((delivery: Delivery) => void) | undefined;
  private held: (() => void)[] = [];
  /** Off: publishes wait for release(), as they wait for a broker's confirms. */
  confirms = true;

  async consume(_prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void> {
    this.onDelivery = onDelivery;
  }

  private confirm(): Promise<void> {
    if (this.confirms) return Promise.resolve();
    return new Promise((resolve) => this.held.push(resolve));
  }

  release(): void {
    for (const confirm of this.held.splice(0)) confirm();
  }

  get waitingForConfirms(): number {
    return this.held.length;
  }

  publishStep(routingKey: string, body: string, properties: PublishProperties): Promise<void> {
    this.published.push({ to: 'step', routingKey, body, properties });
    return this.confirm();
  }

  publishRetry(routingKey: string, body: string, properties: PublishProperties): Promise<void> {
    this.published.push({ to: 'retry', routingKey, body, properties });
    return this.confirm();
  }

  publishEvent(event: SerializedEvent): Promise<void> {
    this.events.push(event);
    return this.confirm();
  }

  async cancel(): Promise<void> {
    this.onDelivery = undefined;
  }

  async close(): Promise<void> {}

  onLost(): void {}

  /** Hands the worker a delivery; resolves with how the worker settled it (ack or nack), or rejects past the deadline. */
  deliver(delivery: Omit<Delivery, 'ack' | 'nack'>): Promise<'ack' | 'nack'> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the worker never settled the input')), SETTLE_DEADLINE_MS);
      const settle = (how: 'ack' | 'nack') => {
        clearTimeout(timer);
        resolve(how);
      };
      this.onDelivery!({ ...delivery, ack: () => settle('ack'), nack: () => settle('nack') });
    });
  }

  results(): StepResult[] {
    return this.events.flatMap((event) => JSON.parse(event.body).payload.results as StepResult[]);
  }
}

/** A message from step `before` of an execution of `tenant`, as the worker's queue holds it. */
function stepDelivery(options: { tenant?: string; deliveryCount?: number; data?: unknown } = {}): Omit<Delivery, 'ack' | 'nack'> {
  const id = randomUUID();
  return {
    body: JSON.stringify({ id, data: options.data ?? { n: 1 }, attachments: {}, headers: {}, metadata: {}, passthrough: {} }),
    messageId: id,
    type: undefined,
    headers: {
      [STEP_HEADERS.flowExecId]: randomUUID(),
      [STEP_HEADERS.tenant]: options.tenant ?? TENANT,
      [STEP_HEADERS.source]: 'before',
    },
    deliveryCount: options.deliveryCount ?? 0,
  };
}

/** An execution entering the flow: the first step's flow.executed event. */
function executedDelivery(tenant: string): Omit<Delivery, 'ack' | 'nack'> {
  const message = { id: randomUUID(), data: { n: 1 }, attachments: {}, headers: {}, metadata: {}, passthrough: {} };
  const payload = { flowId: FLOW, flowExecId: randomUUID(), tenant, trigger: 'webhook', message, receivedAt: new Date().toISOString() };
  return { body: JSON.stringify({ headers: {}, payload }), messageId: randomUUID(), type: 'flow.executed', headers: {}, deliveryCount: 0 };
}

/** A started worker running `fn`, with its fake transport and what it logged. */
async function startWorker(fn: StepFunction, step: Partial<WorkerConfig['step']> = {}) {
  const logs: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const transport = new FakeTransport();
  const worker = new StepWorker({
    config: workerConfig(step),
    transport,
    fn,
    logger: pino({ level: 'info' }, sink),
    credentials: async () => null,
    checkOutput: null,
  });
  await worker.start();
  return { worker, transport, logs };
}

/** A component function that counts its calls and does what `body` says. */
function counting(body: (context: StepContext) => unknown = () => ({ ok: true })) {
  const calls: StepContext[] = [];
  const fn: StepFunction = (_message, _fields, context) => {
    calls.push(context);
    return body(context);
  };
  return { fn, calls };
}

describe('StepWorker', () => {
  it('publishes each output to every target and its result, and acknowledges the input only once the broker confirmed them', async () => {
    const { fn, calls } = counting(() => ({ doubled: 2 }));
    const { transport } = await startWorker(fn, { targets: ['a', 'b'] });
    transport.confirms = false;
    const delivery = stepDelivery();
    let settled: 'ack' | 'nack' | undefined;
    const settling = transport.deliver(delivery).then((how) => (settled = how));
    // Two outputs and the result, each waiting for its confirm.
    await waitFor(
      async () => transport.waitingForConfirms,
      (n) => n === 3,
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
    expect(transport.results()).toMatchObject([{ status: 'succeeded', deliveryId: delivery.messageId, outputCount: 1, tenant: TENANT }]);
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
    const [, poisoned] = transport.results();
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
