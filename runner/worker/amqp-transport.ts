import { connect, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { flowTopology } from '../../protocol/fleet.js';
import { confirmedPublish } from '../amqp.js';
import type { Delivery, PublishProperties, SerializedEvent, WorkerTransport } from './transport.js';

/** A step worker's own connection to RabbitMQ: one channel to consume its queue, one confirm channel to publish. */
export class AmqpTransport implements WorkerTransport {
  private lostCallback: ((error: Error) => void) | undefined;
  private consumerTag: string | undefined;
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

  static async connect(url: string, namespace: string, flowId: string, stepId: string): Promise<AmqpTransport> {
    const connection = await connect(url);
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
    const { consumerTag } = await this.consumer.consume(this.names.queue, (message) => {
      if (!message) {
        this.lostCallback?.(new Error(`RabbitMQ cancelled the consumer of ${this.names.queue} (was the queue deleted?)`));
        return;
      }
      onDelivery({
        body: message.content.toString('utf8'),
        messageId: message.properties.messageId as string | undefined,
        type: message.properties.type as string | undefined,
        headers: (message.properties.headers ?? {}) as Record<string, unknown>,
        deliveryCount: Number(message.properties.headers?.['x-delivery-count'] ?? (message.fields.redelivered ? 1 : 0)),
        ack: () => this.consumer.ack(message),
        nack: (requeue) => this.consumer.nack(message, false, requeue),
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
    this.closing = true;
    await this.connection.close().catch(() => {});
  }

  onLost(callback: (error: Error) => void): void {
    this.lostCallback = callback;
  }
}
