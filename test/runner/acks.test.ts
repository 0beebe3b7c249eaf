import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUORUM } from '../../runner/amqp.js';
import { AckCoalescer } from '../../runner/worker/acks.js';
import { waitFor } from '../support/events.js';
import { rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';

const available = await rabbitAvailable();

describe.skipIf(!available)('acknowledging deliveries together (AckCoalescer) on RabbitMQ', () => {
  let amqp: ChannelModel;
  let admin: Channel;
  const queues: string[] = [];

  beforeAll(async () => {
    amqp = await connect(rabbitUrl);
    admin = await amqp.createChannel();
  });
  afterAll(async () => {
    for (const queue of queues) await admin.deleteQueue(queue);
    await amqp?.close();
  });

  /** A queue of `count` messages, held by a consumer of its own channel: the deliveries in order, and the coalescer settling them. */
  async function held(count: number) {
    const queue = `${uniqueNamespace('acks')}.q`;
    queues.push(queue);
    await admin.assertQueue(queue, { durable: true, arguments: QUORUM });
    for (let i = 1; i <= count; i++) admin.sendToQueue(queue, Buffer.from(String(i)), { persistent: true });
    const channel = await amqp.createChannel();
    await channel.prefetch(count);
    const acks = new AckCoalescer(channel);
    const deliveries: ({ message: ConsumeMessage } & ReturnType<AckCoalescer['hold']>)[] = [];
    await channel.consume(queue, (message) => deliveries.push({ message: message!, ...acks.hold(message!) }));
    await waitFor(
      async () => deliveries.length,
      (n) => n === count,
    );
    return {
      deliveries,
      acks,
      /**
       * Waits until `expected` messages are back in the queue once the channel closed: its
       * unacknowledged deliveries return. `flushFirst` closes without waiting for the turn of the event loop.
       */
      left: async (expected: number, flushFirst = false) => {
        if (flushFirst) acks.flush();
        else await new Promise((resolve) => setImmediate(resolve));
        await channel.close();
        return waitFor(
          async () => (await admin.checkQueue(queue)).messageCount,
          (n) => n === expected,
        );
      },
    };
  }

  it('acks a run of settled deliveries', async () => {
    const { deliveries, left } = await held(5);
    for (const d of deliveries.slice(0, 3)) d.ack();
    expect(await left(2)).toBe(2);
  });

  it('sends the acks at hand at once when flushed, as the transport does before it closes', async () => {
    const { deliveries, left } = await held(5);
    for (const d of deliveries.slice(0, 3)) d.ack();
    expect(await left(2, true)).toBe(2);
  });

  it('holds back the acks of deliveries settled before an earlier one', async () => {
    const { deliveries, left } = await held(5);
    // 2 to 5 are done, 1 is not: acking "up to 5" would take 1 with them.
    for (const d of deliveries.slice(1)) d.ack();
    expect(await left(5)).toBe(5);
  });

  it('acks past a nacked delivery without acking it', async () => {
    const { deliveries, left } = await held(5);
    const [first, second, third, ...rest] = deliveries;
    first!.ack();
    third!.nack(true); // back to the queue at once
    for (const d of rest) d.ack();
    second!.ack();
    // 1, 2, 4 and 5 acked; 3 requeued by its nack.
    expect(await left(1)).toBe(1);
  });
});
