import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { backoff } from '../../protocol/backoff.js';
import { flowTopology } from '../../protocol/fleet.js';
import { confirmedPublish } from '../amqp.js';
import { AckCoalescer } from './acks.js';
import type { Delivery, PublishProperties, SerializedEvent, WorkerTransport } from './transport.js';

/** A step worker's own connection to RabbitMQ: one channel to consume its queue, one confirm channel to publish. */
export class AmqpTransport implements WorkerTransport {
  private lostCallback: ((error: Error) => void) | undefined;
  private consumerTag: string | undefined;
  private acks: AckCoalescer | undefined;
  private closing = false;

  private constructor(
    private readonly connection: ChannelModel,
    private readonly consumer: Channel,
    private readonly publisher: ConfirmChannel,
    private readonly names: { queue: string; exchange: string; retryExchange: string; events: string },
  ) {
    const lost = (error?: Error) => {
      if (this.closing) return;
      this.closing = true;
      this.lostCallback?.(error ?? new Error('RabbitMQ closed the connection'));
    };
    connection.on('close', lost);
    connection.on('error', () => {}); // 'close' follows
    consumer.on('close', () => lost(new Error('RabbitMQ closed the consumer channel')));
    publisher.on('close', () => lost(new Error('RabbitMQ closed the publisher channel')));
    consumer.on('error', () => {});
    publisher.on('error', () => {});
  }

  /** Connects, waiting for a broker that is down or starting (`waiting` hears of each failure); a refused login fails at once. */
  static async connect(
    url: string,
    namespace: string,
    flowId: string,
    stepId: string,
    waiting: (error: Error, failures: number) => void = () => {},
  ): Promise<AmqpTransport> {
    const connection = await connectPatiently(url, waiting);
    try {
      const consumer = await connection.createChannel();
      const publisher = await connection.createConfirmChannel();
      const topology = flowTopology(namespace, flowId);
      // Fails at once (and the worker exits) when the runner has not declared the step's queue.
      await consumer.checkQueue(topology.stepQueue(stepId));
      return new AmqpTransport(connection, consumer, publisher, {
        queue: topology.stepQueue(stepId),
        exchange: topology.exchange,
        retryExchange: topology.retryExchange,
        events: `${namespace}.events`,
      });
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
  }

  async consume(prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void> {
    await this.consumer.prefetch(prefetch);
    const acks = (this.acks = new AckCoalescer(this.consumer));
    const { consumerTag } = await this.consumer.consume(this.names.queue, (message) => {
      if (!message) {
        this.lostCallback?.(new Error(`RabbitMQ cancelled the consumer of ${this.names.queue} (was the queue deleted?)`));
        return;
      }
      onDelivery({
        body: message.content.toString('utf8'),
        messageId: message.properties.messageId as string | undefined,
        headers: (message.properties.headers ?? {}) as Record<string, unknown>,
        deliveryCount: Number(message.properties.headers?.['x-delivery-count'] ?? (message.fields.redelivered ? 1 : 0)),
        ...acks.hold(message),
      });
    });
    this.consumerTag = consumerTag;
  }

  publishStep(routingKey: string, body: string, properties: PublishProperties): Promise<void> {
    return confirmedPublish(this.publisher, this.names.exchange, routingKey, body, properties);
  }

  publishRetry(routingKey: string, body: string, properties: PublishProperties): Promise<void> {
    return confirmedPublish(this.publisher, this.names.retryExchange, routingKey, body, properties);
  }

  publishEvent(event: SerializedEvent): Promise<void> {
    return confirmedPublish(this.publisher, this.names.events, event.headers.name, event.body, {
      messageId: event.headers.id,
      type: event.headers.name,
      timestamp: Math.floor(Date.now() / 1000),
    });
  }

  async cancel(): Promise<void> {
    if (this.consumerTag) await this.consumer.cancel(this.consumerTag).catch(() => {});
  }

  async close(): Promise<void> {
    // Acks still waiting for their turn of the event loop, lest a drained worker's inputs come back.
    if (!this.closing) this.acks?.flush();
    this.closing = true;
    await this.connection.close().catch(() => {});
  }

  onLost(callback: (error: Error) => void): void {
    this.lostCallback = callback;
  }
}

/**
 * A worker started while the broker restarts waits for it here, trying every 2 s at most, rather
 * than exiting: the runner's restart backoff (1 s doubling to 30 s) would add its own delay to the outage.
 */
async function connectPatiently(url: string, waiting: (error: Error, failures: number) => void): Promise<ChannelModel> {
  for (let failures = 1; ; failures++) {
    try {
      return await connect(url);
    } catch (error) {
      if (!(error instanceof Error) || /ACCESS.REFUSED|NOT.ALLOWED|Invalid URL/i.test(error.message)) throw error;
      waiting(error, failures);
      await sleep(backoff(failures, { firstMs: 100, maxMs: 2_000, jitter: 0.2 }));
    }
  }
}
