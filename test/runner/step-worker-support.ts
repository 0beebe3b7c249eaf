/**
 * A StepWorker on a fake transport (runner/worker/transport.ts): the broker side is a fake at that
 * seam, so each rule of the worker is seen on its own, without a runner or a broker.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { CarriedResult } from '../../protocol/carried-results.js';
import type { StepResult } from '../../protocol/events.js';
import { entryMessage, STEP_HEADERS } from '../../protocol/fleet.js';
import type { StepContext, StepFunction } from '../../runner/sdk.js';
import type { WorkerConfig } from '../../runner/worker/config.js';
import { StepWorker } from '../../runner/worker/step.js';
import type { Delivery, PublishProperties, SerializedEvent, WorkerTransport } from '../../runner/worker/transport.js';

export const TENANT = randomUUID();
export const FLOW = randomUUID();

/** How long a test waits for the worker to settle an input; far longer than any step here takes. */
const SETTLE_DEADLINE_MS = 15_000;

export function workerConfig(step: Partial<WorkerConfig['step']> = {}): WorkerConfig {
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

export type Published = { to: 'step' | 'retry'; routingKey: string; body: string; properties: PublishProperties };

/** The broker as the worker sees it: deliveries handed in by the test, publishes recorded and confirmed when `confirms` lets them. */
export class FakeTransport implements WorkerTransport {
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

  /** Every result reported, in the order of the events. */
  results(): StepResult[] {
    return this.events.flatMap((event) => JSON.parse(event.body).payload.results as StepResult[]);
  }
}

/** The results a published message carries, as they travel (STEP_HEADERS.results). */
export const carriedBy = (published: Published): CarriedResult[] => {
  const header = published.properties.headers[STEP_HEADERS.results];
  return header === undefined ? [] : JSON.parse(String(header));
};

/** A published message as the next step's queue hands it out. */
export const delivered = (published: Published): Omit<Delivery, 'ack' | 'nack'> => ({
  body: published.body,
  messageId: published.properties.messageId,
  headers: published.properties.headers,
  deliveryCount: 0,
});

/** A message from step `before` of an execution of `tenant`, as the worker's queue holds it. */
export function stepDelivery(options: { tenant?: string; deliveryCount?: number; data?: unknown } = {}): Omit<Delivery, 'ack' | 'nack'> {
  const id = randomUUID();
  return {
    body: JSON.stringify({ id, data: options.data ?? { n: 1 }, attachments: {}, headers: {}, metadata: {}, passthrough: {} }),
    messageId: id,
    headers: {
      [STEP_HEADERS.flowExecId]: randomUUID(),
      [STEP_HEADERS.tenant]: options.tenant ?? TENANT,
      [STEP_HEADERS.source]: 'before',
    },
    deliveryCount: options.deliveryCount ?? 0,
  };
}

/** An execution entering the flow, as the entry hands it to the first step (protocol/fleet.ts). */
export function executedDelivery(tenant: string): Omit<Delivery, 'ack' | 'nack'> {
  const message = { id: randomUUID(), data: { n: 1 }, attachments: {}, headers: {}, metadata: {}, passthrough: {} };
  const { body, messageId, headers } = entryMessage({ flowId: FLOW, flowExecId: randomUUID(), tenant, message });
  return { body, messageId, headers, deliveryCount: 0 };
}

/** A started worker running `fn`, with its fake transport and what it logged. */
export async function startWorker(fn: StepFunction, step: Partial<WorkerConfig['step']> = {}) {
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
export function counting(body: (context: StepContext) => unknown = () => ({ ok: true })) {
  const calls: StepContext[] = [];
  const fn: StepFunction = (_message, _fields, context) => {
    calls.push(context);
    return body(context);
  };
  return { fn, calls };
}
