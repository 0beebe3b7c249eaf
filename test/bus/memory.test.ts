import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { describe, it, expect, afterEach, vi } from 'vitest';
import { MemoryBus } from '../../control-plane/bus/memory.js';
import { PoisonEventError } from '../../control-plane/bus/types.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';

const retry = { maxAttempts: 3, baseDelayMs: 5 };
const event = (name: string, payload: Record<string, unknown> = {}) => createEnvelope(name, payload, 'test');
const sorted = (values: string[]) => [...values].sort();

async function eventually(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

function recorder(): { ids: string[]; handle: (event: EventEnvelope) => Promise<void> } {
  const ids: string[] = [];
  return { ids, handle: async (e) => void ids.push(e.headers.id) };
}

describe('MemoryBus', () => {
  let bus: MemoryBus;
  const open = () => (bus = new MemoryBus(pino({ level: 'silent' }), retry));
  /**
   * On fake timers, every delivery the bus scheduled (retries with their backoff too) runs until
   * none is left: the bus has nothing more to deliver, known without waiting on the clock.
   */
  const openOnFakeTimers = () => {
    vi.useFakeTimers();
    return open();
  };
  const deliverEverything = () => vi.runAllTimersAsync();

  afterEach(() => {
    vi.useRealTimers();
    return bus.close();
  });

  it('delivers the envelope intact, as a copy', async () => {
    open();
    const received: EventEnvelope[] = [];
    await bus.subscribe('intact', { 'intact.*': async (e) => void received.push(e) });
    const sent = event('intact.created', { nested: { list: [1, 'two', null] } });
    await bus.publish(sent);
    await eventually(() => received.length === 1);
    expect(received[0]).toEqual(sent);
    expect(received[0]).not.toBe(sent);
  });

  it('gives each service its own copy', async () => {
    open();
    const [a, b] = [recorder(), recorder()];
    const seenByB: unknown[] = [];
    await bus.subscribe('copy-a', {
      'copies.#': async (e) => {
        e.payload.changedBy = 'copy-a';
        await a.handle(e);
      },
    });
    await bus.subscribe('copy-b', {
      'copies.#': async (e) => {
        await eventually(() => a.ids.includes(e.headers.id)); // after copy-a changed its copy
        seenByB.push(e.payload.changedBy);
        await b.handle(e);
      },
    });
    const sent = Array.from({ length: 5 }, (_, i) => event('copies.made', { i }));
    await Promise.all(sent.map((e) => bus.publish(e)));
    await eventually(() => a.ids.length === 5 && b.ids.length === 5);
    const ids = sorted(sent.map((e) => e.headers.id));
    expect(sorted(a.ids)).toEqual(ids);
    expect(sorted(b.ids)).toEqual(ids);
    expect(seenByB).toEqual(Array(5).fill(undefined));
  });

  it('lets consumers of one service compete: each event is handled once, by one of them', async () => {
    openOnFakeTimers();
    const [a, b] = [recorder(), recorder()];
    await bus.subscribe('compete', { 'compete.*': a.handle });
    await bus.subscribe('compete', { 'compete.*': b.handle });
    const sent = Array.from({ length: 10 }, (_, i) => event('compete.job', { i }));
    await Promise.all(sent.map((e) => bus.publish(e)));
    await deliverEverything();
    expect(sorted([...a.ids, ...b.ids])).toEqual(sorted(sent.map((e) => e.headers.id)));
    expect(a.ids.length).toBeGreaterThan(0);
    expect(b.ids.length).toBeGreaterThan(0);
  });

  it('delivers a failed event again, until its handler succeeds', async () => {
    openOnFakeTimers();
    let attempts = 0;
    await bus.subscribe('flaky', {
      'flaky.*': async () => {
        if (++attempts === 1) throw new Error('transient');
      },
    });
    await bus.publish(event('flaky.run'));
    await deliverEverything();
    expect(attempts).toBe(2);
    expect(bus.deadLetters).toEqual([]);
  });

  it('dead-letters an event whose handler keeps failing after maxAttempts deliveries, then stops', async () => {
    openOnFakeTimers();
    let attempts = 0;
    await bus.subscribe('failing', {
      'failing.*': async () => {
        attempts++;
        throw new Error('always');
      },
    });
    const sent = event('failing.run');
    await bus.publish(sent);
    await deliverEverything();
    expect(attempts).toBe(retry.maxAttempts);
    expect(bus.deadLetters).toEqual([{ service: 'failing', event: sent, error: 'always' }]);
  });

  it('dead-letters a PoisonEventError at the first attempt', async () => {
    openOnFakeTimers();
    let attempts = 0;
    await bus.subscribe('poison', {
      'poison.*': async () => {
        attempts++;
        throw new PoisonEventError('cannot ever handle this');
      },
    });
    await bus.publish(event('poison.pill'));
    await deliverEverything();
    expect(attempts).toBe(1);
    expect(bus.deadLetters[0]).toMatchObject({ service: 'poison', error: 'cannot ever handle this' });
  });

  it('refuses to publish once closed', async () => {
    open();
    await bus.close();
    expect(bus.health()).toEqual({ kind: 'memory', connected: false });
    await expect(bus.publish(event('closed.bus'))).rejects.toThrow(/closed/);
  });
});
