import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { pino } from 'pino';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { RabbitBus } from '../../control-plane/bus/rabbitmq.js';
import { PoisonEventError, type EventRoutes } from '../../control-plane/bus/types.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import {
  deleteNamespace,
  privateBrokerAvailable,
  rabbitAvailable,
  rabbitUrl,
  PRIVATE_BROKER_TIMEOUT_MS,
  startPrivateBroker,
  uniqueNamespace,
  type PrivateBroker,
} from '../support/rabbitmq.js';

const logger = pino({ level: 'silent' });
const retry = { maxAttempts: 3, baseDelayMs: 20 };
const event = (name: string, payload: Record<string, unknown> = {}) => createEnvelope(name, payload, 'test');
const sorted = (values: string[]) => [...values].sort();

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** A handler that records the id of every event it is given. */
function recorder(): { ids: string[]; handle: (event: EventEnvelope) => Promise<void> } {
  const ids: string[] = [];
  return { ids, handle: async (e) => void ids.push(e.headers.id) };
}

const available = await rabbitAvailable();

describe.skipIf(!available)('RabbitBus', () => {
  const namespace = uniqueNamespace();
  const services = new Set<string>();
  const buses: RabbitBus[] = [];
  let admin: ChannelModel;
  let channel: Channel;

  const open = async () => {
    const bus = await RabbitBus.connect(rabbitUrl, logger, { namespace, retry });
    buses.push(bus);
    return bus;
  };
  const subscribe = (bus: RabbitBus, service: string, routes: EventRoutes) => {
    services.add(service);
    return bus.subscribe(service, routes);
  };
  const ready = async (queue: string) => (await channel.checkQueue(`${namespace}.${queue}`)).messageCount;
  const deadLettered = (service: string) => ready(`${service}.dead-letter`);
  /** Consumers of a queue, 0 if there is no such queue (on a channel of its own: the broker closes it then). */
  const consumers = async (queue: string) => {
    const probe = await admin.createChannel();
    probe.on('error', () => {});
    const found = await probe.checkQueue(`${namespace}.${queue}`).catch(() => undefined);
    if (found) await probe.close();
    return found?.consumerCount ?? 0;
  };

  beforeAll(async () => {
    admin = await connect(rabbitUrl);
    channel = await admin.createChannel();
  });

  afterAll(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    await admin?.close();
    await deleteNamespace(rabbitUrl, namespace, [...services]);
  });

  it('delivers the envelope intact', async () => {
    const bus = await open();
    const received: EventEnvelope[] = [];
    await subscribe(bus, 'intact', { 'intact.*': async (e) => void received.push(e) });
    const sent = event('intact.created', { nested: { list: [1, 'two', null], flag: true }, amount: 1.5 });
    await bus.publish(sent);
    await eventually(() => received.length === 1);
    expect(received[0]).toEqual(sent);
  });

  it('gives each service its own copy', async () => {
    const bus = await open();
    const [a, b] = [recorder(), recorder()];
    await subscribe(bus, 'copy-a', { 'copies.#': a.handle });
    await subscribe(bus, 'copy-b', { 'copies.#': b.handle });
    const sent = Array.from({ length: 5 }, (_, i) => event('copies.made', { i }));
    await Promise.all(sent.map((e) => bus.publish(e)));
    await eventually(() => a.ids.length === 5 && b.ids.length === 5);
    const ids = sorted(sent.map((e) => e.headers.id));
    expect(sorted(a.ids)).toEqual(ids);
    expect(sorted(b.ids)).toEqual(ids);
  });

  it('lets replicas of one service compete: each event is handled once, by one of them', async () => {
    const [first, second] = [await open(), await open()];
    const [a, b] = [recorder(), recorder()];
    await subscribe(first, 'compete', { 'compete.*': a.handle });
    await subscribe(second, 'compete', { 'compete.*': b.handle });
    const sent = Array.from({ length: 40 }, (_, i) => event('compete.job', { i }));
    await Promise.all(sent.map((e) => first.publish(e)));
    await eventually(() => a.ids.length + b.ids.length >= 40);
    // Closed, nothing more reaches them; a duplicate still on its way would be back in the queue.
    await Promise.all([first.close(), second.close()]);
    expect(await ready('compete')).toBe(0);
    expect(sorted([...a.ids, ...b.ids])).toEqual(sorted(sent.map((e) => e.headers.id)));
    expect(a.ids.length).toBeGreaterThan(0);
    expect(b.ids.length).toBeGreaterThan(0);
  });

  it('declares everything again when the broker drops a consumer (its queue deleted)', async () => {
    const bus = await open();
    const received = recorder();
    await subscribe(bus, 'deleted', { 'deleted.*': received.handle });
    await channel.deleteQueue(`${namespace}.deleted`);
    await eventually(async () => (await consumers('deleted')) === 1);
    const sent = event('deleted.again');
    await bus.publish(sent);
    await eventually(() => received.ids.includes(sent.headers.id));
  });

  it('resolves publish on the broker confirm and loses none of 200 events; rejects once closed', async () => {
    const bus = await open();
    const received = new Set<string>();
    await subscribe(bus, 'bulk', { 'bulk.*': async (e) => void received.add(e.headers.id) });
    const sent = Array.from({ length: 200 }, (_, i) => event('bulk.item', { i }));
    await expect(Promise.all(sent.map((e) => bus.publish(e)))).resolves.toHaveLength(200);
    await eventually(() => received.size === 200);
    expect([...received].sort()).toEqual(sorted(sent.map((e) => e.headers.id)));

    await bus.close();
    expect(bus.health()).toEqual({ kind: 'rabbitmq', connected: false });
    await expect(bus.publish(event('bulk.item'))).rejects.toThrow(/not connected/);
  });

  it('acknowledges only after the handler resolved: a failure is delivered again', async () => {
    const bus = await open();
    let attempts = 0;
    await subscribe(bus, 'flaky', {
      'flaky.*': async () => {
        if (++attempts === 1) throw new Error('transient');
      },
    });
    await bus.publish(event('flaky.run'));
    await eventually(() => attempts === 2);
    await bus.close(); // anything still unacknowledged would now be back in the queue
    expect(attempts).toBe(2);
    expect(await ready('flaky')).toBe(0);
    expect(await deadLettered('flaky')).toBe(0);
  });

  it('keeps an event whose consumer died mid-handling, and dead-letters it after maxAttempts such deliveries', async () => {
    let deliveries = 0;
    const hang = async () => {
      deliveries++;
      await new Promise(() => {}); // still working when its process "dies"
    };
    for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
      const bus = await open();
      await subscribe(bus, 'crashing', { 'crashing.*': hang });
      if (attempt === 1) await bus.publish(event('crashing.run'));
      await eventually(() => deliveries === attempt);
      expect(await ready('crashing')).toBe(0);
      await bus.close();
      // Unacknowledged, so back in the queue, until the broker's delivery limit dead-letters it.
      const back = attempt < retry.maxAttempts ? 1 : 0;
      await eventually(async () => (await ready('crashing')) === back && (await deadLettered('crashing')) === 1 - back);
    }
  });

  it('dead-letters an event whose handler keeps failing after maxAttempts deliveries, then stops', async () => {
    const bus = await open();
    let attempts = 0;
    await subscribe(bus, 'failing', {
      'failing.*': async () => {
        attempts++;
        throw new Error('always');
      },
    });
    const sent = event('failing.run');
    await bus.publish(sent);
    await eventually(async () => (await deadLettered('failing')) === 1);
    await bus.close(); // nothing more reaches the handler; a copy still to be delivered would be in the queue
    expect(await ready('failing')).toBe(0);
    expect(attempts).toBe(retry.maxAttempts);
    const dead = await channel.get(`${namespace}.failing.dead-letter`, { noAck: true });
    expect(dead && JSON.parse(dead.content.toString())).toEqual(sent);
    expect(dead ? dead.properties : null).toMatchObject({
      deliveryMode: 2, // persistent
      contentType: 'application/json',
      messageId: sent.headers.id,
      type: 'failing.run',
      headers: { 'x-first-death-reason': 'rejected' }, // by the bus, not by the broker's delivery limit
    });
  });

  it('holds an event whose handler fails while its dependency does not answer, and handles it once it does, dead-lettering nothing', async () => {
    let databaseUp = false;
    let probes = 0;
    const bus = await RabbitBus.connect(rabbitUrl, logger, {
      namespace,
      retry,
      dependency: async () => {
        probes++;
        if (!databaseUp) throw new Error('the database does not answer');
      },
    });
    buses.push(bus);
    let attempts = 0;
    const handled: string[] = [];
    await subscribe(bus, 'waiting', {
      'waiting.*': async (e) => {
        attempts++;
        if (!databaseUp) throw new Error('connection refused');
        handled.push(e.headers.id);
      },
    });
    const sent = event('waiting.run');
    await bus.publish(sent);
    // The event waits for the dependency, probing it, rather than failing again and again towards the dead-letter queue.
    await eventually(() => probes > retry.maxAttempts + 1);
    expect(attempts).toBe(1);
    databaseUp = true;
    await eventually(() => handled.length === 1);
    expect(handled).toEqual([sent.headers.id]);
    expect(attempts).toBe(2);
    expect(await deadLettered('waiting')).toBe(0);
  });

  it('dead-letters a PoisonEventError at the first attempt', async () => {
    const bus = await open();
    let attempts = 0;
    await subscribe(bus, 'poison', {
      'poison.*': async () => {
        attempts++;
        throw new PoisonEventError('cannot ever handle this');
      },
    });
    await bus.publish(event('poison.pill'));
    await eventually(async () => (await deadLettered('poison')) === 1);
    await bus.close();
    expect(await ready('poison')).toBe(0);
    expect(attempts).toBe(1);
  });

  it('dead-letters malformed messages without calling the handler', async () => {
    const bus = await open();
    let calls = 0;
    await subscribe(bus, 'malformed', { 'malformed.*': async () => void calls++ });
    const raw = await admin.createConfirmChannel();
    raw.publish(`${namespace}.events`, 'malformed.raw', Buffer.from('{ not json'));
    raw.publish(`${namespace}.events`, 'malformed.raw', Buffer.from(JSON.stringify({ hello: 'not an envelope' })));
    await raw.waitForConfirms();
    await raw.close();
    await eventually(async () => (await deadLettered('malformed')) === 2);
    expect(calls).toBe(0);
  });
});

const canStartBroker = await privateBrokerAvailable();

describe.skipIf(!canStartBroker)('RabbitBus across a broker restart', () => {
  let broker: PrivateBroker;
  const buses: RabbitBus[] = [];
  const open = async () => {
    const bus = await RabbitBus.connect(broker.url, logger, { retry });
    buses.push(bus);
    return bus;
  };

  beforeAll(async () => {
    broker = await startPrivateBroker();
  }, PRIVATE_BROKER_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    await broker?.dispose();
  });

  it(
    'reconnects, resumes its subscriptions and keeps the events in durable queues',
    async () => {
      const bus = await open();
      const live = recorder();
      await bus.subscribe('live', { 'restart.*': live.handle });
      // A service that is down over the restart: its queue exists, nobody consumes it.
      const offline = await open();
      await offline.subscribe('offline', { 'restart.*': async () => {} });
      await offline.close();

      const before = event('restart.before');
      await bus.publish(before);
      await eventually(() => live.ids.includes(before.headers.id));

      await broker.stop();
      await eventually(() => !bus.health().connected);
      await expect(bus.publish(event('restart.lost'))).rejects.toThrow(/not connected/);

      await broker.start();
      await eventually(() => bus.health().connected, 60_000);
      const after = event('restart.after');
      await bus.publish(after);
      await eventually(() => live.ids.includes(after.headers.id));

      const back = recorder();
      await (await open()).subscribe('offline', { 'restart.*': back.handle });
      await eventually(() => back.ids.length === 2);
      expect(back.ids).toEqual([before.headers.id, after.headers.id]);
    },
    PRIVATE_BROKER_TIMEOUT_MS,
  );
});
