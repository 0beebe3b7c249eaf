import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { count } from 'drizzle-orm';
import { MemoryBus } from '../../control-plane/bus/memory.js';
import { outbox } from '../../control-plane/bus/schema.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import { declareEntry, entryExchange, entryMessage, STEP_HEADERS } from '../../protocol/fleet.js';
import type { StepMessage } from '../../protocol/step-message.js';
import type { TestControlPlane } from './control-plane.js';

/** How `settled` makes sure a collection holds everything emitted so far: a marker sent after it, and whether it arrived. */
interface Collector {
  cp: TestControlPlane;
  sendMarker(): Promise<string>;
  markers: Set<string>;
}

const collectors = new WeakMap<object[], Collector>();

/**
 * Every event matching `pattern` published from now on, collected by a consumer of its own
 * (`service`, so a test on a shared broker can delete its queue afterwards).
 */
export async function collectEvents(cp: TestControlPlane, pattern: string, service = `test-${randomUUID()}`): Promise<EventEnvelope[]> {
  const events: EventEnvelope[] = [];
  const marker = `test-settled.${service}`;
  const collector: Collector = {
    cp,
    markers: new Set(),
    async sendMarker() {
      const envelope = createEnvelope(marker, {}, 'test');
      await cp.services.bus.publish(envelope);
      return envelope.headers.id;
    },
  };
  await cp.services.bus.subscribe(service, {
    [marker]: async (event) => void collector.markers.add(event.headers.id),
    [pattern]: async (event) => {
      events.push(event);
    },
  });
  collectors.set(events, collector);
  return events;
}

/** An execution entering its flow, as the first step's queue receives it. */
export interface Entered {
  flowId: string;
  flowExecId: string;
  tenant: string;
  message: StepMessage;
}

/**
 * Every execution entering flow `flowId` from now on, as its first step's queue receives it: a queue
 * of the test's own bound to the entry beside the step's (RabbitMQ; exclusive, so it goes with its
 * connection, closed with the control plane), or a taker of the in-process bus.
 */
export async function collectEntries(cp: TestControlPlane, flowId: string): Promise<Entered[]> {
  const entered: Entered[] = [];
  const markers = new Set<string>();
  const take = (message: { body: string; messageId: string; headers: Record<string, unknown> }) => {
    const body = JSON.parse(message.body) as StepMessage & { marker?: boolean };
    if (body.marker) return void markers.add(message.messageId);
    entered.push({
      flowId,
      flowExecId: String(message.headers[STEP_HEADERS.flowExecId]),
      tenant: String(message.headers[STEP_HEADERS.tenant]),
      message: body,
    });
  };
  const { bus, config } = cp.services;
  const exchange = entryExchange(config.BUS_NAMESPACE);
  if (bus instanceof MemoryBus) bus.bind(exchange, (message) => message.routingKey === flowId && take(message));
  else {
    const connection = await connect(config.AMQP_URL!);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await declareEntry(channel, config.BUS_NAMESPACE, { flowId, queue });
    await channel.consume(queue, (delivered) => {
      if (!delivered) return;
      take({
        body: delivered.content.toString('utf8'),
        messageId: String(delivered.properties.messageId),
        headers: (delivered.properties.headers ?? {}) as Record<string, unknown>,
      });
      channel.ack(delivered);
    });
    cp.onClose(() => connection.close());
  }
  collectors.set(entered, {
    cp,
    markers,
    async sendMarker() {
      const message = { id: randomUUID(), data: {}, attachments: {}, headers: {}, metadata: {}, passthrough: {}, marker: true };
      const send = () => bus.send({ exchange, ...entryMessage({ flowId, flowExecId: 'marker', tenant: 'marker', message }) });
      // RabbitMQ (3.10) drops the connection of a publish that reaches a quorum queue as it is deleted
      // (a flow just stopped): the bus reconnects, as the relay's sends go again, and so does the marker.
      await waitFor(
        () =>
          send().then(
            () => true,
            () => false,
          ),
        (sent) => sent,
      );
      return message.id;
    },
  });
  return entered;
}

/**
 * Resolves once everything the control plane emitted so far has reached the collection
 * (collectEvents, collectEntries): its outbox is empty (all sent), then a marker sent after it arrives
 * on the same queue, which delivers in order. What the collection holds then is all there is,
 * without waiting on the clock.
 */
export async function settled(collection: object[]): Promise<void> {
  const collector = collectors.get(collection);
  if (!collector) throw new Error('settled() takes what collectEvents() or collectEntries() answered');
  await waitFor(
    async () => (await collector.cp.services.db.select({ n: count() }).from(outbox))[0]!.n,
    (n) => n === 0,
  );
  const marker = await collector.sendMarker();
  await waitFor(
    async () => collector.markers.has(marker),
    (arrived) => arrived,
  );
}

/** Polls `read` until `done` holds for its result, failing after `timeoutMs`. */
export async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
