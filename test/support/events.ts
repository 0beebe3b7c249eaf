import { randomUUID } from 'node:crypto';
import type { EventEnvelope } from '../../protocol/envelope.js';
import type { TestControlPlane } from './control-plane.js';

/**
 * Every event matching `pattern` published from now on, collected by a consumer of its own
 * (`service`, so a test on a shared broker can delete its queue afterwards).
 */
export async function collectEvents(cp: TestControlPlane, pattern: string, service = `test-${randomUUID()}`): Promise<EventEnvelope[]> {
  const events: EventEnvelope[] = [];
  await cp.services.bus.subscribe(service, {
    [pattern]: async (event) => {
      events.push(event);
    },
  });
  return events;
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
