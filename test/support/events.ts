import { randomUUID } from 'node:crypto';
import { count } from 'drizzle-orm';
import { outbox } from '../../control-plane/bus/schema.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import type { TestControlPlane } from './control-plane.js';

interface Collector {
  cp: TestControlPlane;
  /** The name of the markers `settled` sends to this collector's queue alone. */
  marker: string;
  markers: Set<string>;
}

const collectors = new WeakMap<EventEnvelope[], Collector>();

/**
 * Every event matching `pattern` published from now on, collected by a consumer of its own
 * (`service`, so a test on a shared broker can delete its queue afterwards).
 */
export async function collectEvents(cp: TestControlPlane, pattern: string, service = `test-${randomUUID()}`): Promise<EventEnvelope[]> {
  const events: EventEnvelope[] = [];
  const collector: Collector = { cp, marker: `test-settled.${service}`, markers: new Set() };
  await cp.services.bus.subscribe(service, {
    [collector.marker]: async (event) => void collector.markers.add(event.headers.id),
    [pattern]: async (event) => {
      events.push(event);
    },
  });
  collectors.set(events, collector);
  return events;
}

/**
 * Resolves once every event the control plane emitted so far has reached the collector of `events`:
 * its outbox is empty (all published), then a marker published after them arrives on the same
 * queue, which delivers in order. What `events` holds then is all there is, without waiting on the clock.
 */
export async function settled(events: EventEnvelope[]): Promise<void> {
  const collector = collectors.get(events);
  if (!collector) throw new Error('settled() takes what collectEvents() answered');
  const { db, bus } = collector.cp.services;
  await waitFor(
    async () => (await db.select({ n: count() }).from(outbox))[0]!.n,
    (n) => n === 0,
  );
  const marker = createEnvelope(collector.marker, {}, 'test');
  await bus.publish(marker);
  await waitFor(
    async () => collector.markers.has(marker.headers.id),
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
