import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { backoff } from '../../protocol/backoff.js';
import { eventEnvelopeSchema, type EventEnvelope } from '../../protocol/envelope.js';
import type { Logger } from '../logger.js';
import { routeFor } from './topic.js';
import {
  PoisonEventError,
  retryDelay,
  type BusHealth,
  type DirectMessage,
  type EventBus,
  type EventHandler,
  type EventRoutes,
  type RetryPolicy,
} from './types.js';

export interface RabbitBusOptions {
  /** Prefix of every exchange and queue name. */
  namespace?: string;
  retry: RetryPolicy;
  /** Unacknowledged messages per consumer. */
  prefetch?: number;
  /**
   * Answers (resolves) while what the handlers need is up (the database). A handler that fails while
   * it does not answer failed for want of it: the event waits, unacknowledged, until it answers, and
   * is handled again without counting an attempt, so an outage dead-letters nothing.
   */
  dependency?: () => Promise<void>;
  /** Declares what messages `send`s need (the flows' entry exchange), on every connect. */
  declare?: (channel: Channel) => Promise<void>;
}

interface Subscription {
  service: string;
  routes: EventRoutes;
}

/** Reconnecting after a drop, and probing a dependency that is down: 100 ms doubling, at most 2 s, so work resumes within seconds. */
const RECONNECT = { firstMs: 100, maxMs: 2_000, jitter: 0.2 };
// Quorum queues replicate across a cluster and count redeliveries in the x-delivery-count header.
const QUORUM = { 'x-queue-type': 'quorum' };

/**
 * The bus on RabbitMQ. Events go to one durable topic exchange, routed by their name, as persistent
 * messages the broker confirms. Each service consumes from its own durable queue, whose failed
 * messages end in the service's dead-letter queue. When the connection drops, the bus reconnects
 * with backoff and declares the topology and every subscription again.
 */
export class RabbitBus implements EventBus {
  readonly kind = 'rabbitmq' as const;
  private readonly namespace: string;
  private readonly exchange: string;
  private readonly deadLetterExchange: string;
  private readonly subscriptions: Subscription[] = [];
  private readonly closing = new AbortController();
  private connection: ChannelModel | undefined;
  private publisher: ConfirmChannel | undefined;
  private reconnecting: Promise<void> | undefined;

  private constructor(
    private readonly url: string,
    private readonly logger: Logger,
    private readonly options: RabbitBusOptions,
  ) {
    this.namespace = options.namespace ?? 'hookline';
    this.exchange = `${this.namespace}.events`;
    this.deadLetterExchange = `${this.namespace}.dead-letter`;
  }

  /** Fails if the broker cannot be reached now; once connected, the bus reconnects by itself until `close()`. */
  static async connect(url: string, logger: Logger, options: RabbitBusOptions): Promise<RabbitBus> {
    const bus = new RabbitBus(url, logger, options);
    await bus.open();
    return bus;
  }

  publish(event: EventEnvelope): Promise<void> {
    return this.confirmed(this.exchange, event.headers.name, Buffer.from(JSON.stringify(event)), {
      messageId: event.headers.id,
      type: event.headers.name,
    });
  }

  send(message: DirectMessage): Promise<void> {
    return this.confirmed(message.exchange, message.routingKey, Buffer.from(message.body), {
      messageId: message.messageId,
      headers: message.headers,
    });
  }

  /** Publishes a persistent JSON message, resolving on the broker's confirm. */
  private confirmed(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: { messageId: string; type?: string; headers?: object },
  ) {
    const publisher = this.publisher;
    if (!publisher) return Promise.reject(new Error('RabbitMQ bus is not connected'));
    return new Promise<void>((resolve, reject) => {
      const options = {
        ...properties,
        persistent: true,
        contentType: 'application/json',
        timestamp: Math.floor(Date.now() / 1000), // AMQP timestamps are in seconds
      };
      publisher.publish(exchange, routingKey, body, options, (err) => (err ? reject(err) : resolve()));
    });
  }

  async subscribe(service: string, routes: EventRoutes): Promise<void> {
    const connection = this.connection;
    if (!connection) throw new Error('RabbitMQ bus is not connected');
    const subscription = { service, routes };
    await this.consume(connection, subscription);
    this.subscriptions.push(subscription);
  }

  health(): BusHealth {
    return { kind: this.kind, connected: this.connection !== undefined };
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    await this.reconnecting;
    const connection = this.connection;
    this.connection = undefined;
    this.publisher = undefined;
    // Closing the connection closes its channels and so cancels their consumers; unacknowledged
    // messages go back to their queues. It may have dropped meanwhile: closed either way.
    await connection?.close().catch(() => {});
  }

  /** Connects and declares everything; the bus counts as connected only once all subscriptions consume again. */
  private async open(): Promise<void> {
    const connection = await connect(this.url);
    connection.on('error', (err: Error) => this.logger.warn({ err }, 'RabbitMQ connection error'));
    connection.on('close', (err?: Error) => this.lost(connection, err));
    try {
      const publisher = await connection.createConfirmChannel();
      publisher.on('error', (err: Error) => this.fail(connection, err));
      await publisher.assertExchange(this.exchange, 'topic', { durable: true });
      await publisher.assertExchange(this.deadLetterExchange, 'direct', { durable: true });
      await this.options.declare?.(publisher);
      for (const subscription of this.subscriptions) await this.consume(connection, subscription);
      this.connection = connection;
      this.publisher = publisher;
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
  }

  private lost(connection: ChannelModel, err?: Error): void {
    if (connection !== this.connection) return; // closed by close(), or never finished opening
    this.connection = undefined;
    this.publisher = undefined;
    this.logger.warn({ err }, 'RabbitMQ connection lost; reconnecting');
    this.reconnecting = this.reconnect();
  }

  private async reconnect(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.pause(backoff(attempt, RECONNECT));
      if (this.closing.signal.aborted) return;
      try {
        await this.open();
        this.logger.info({ attempt }, 'RabbitMQ connection restored');
        return;
      } catch (err) {
        this.logger[attempt === 1 ? 'warn' : 'debug']({ err, attempt }, 'RabbitMQ reconnect failed; trying again');
      }
    }
  }

  /** A channel the broker closed (its exchange or queue deleted, say) is rebuilt with everything else, on a new connection. */
  private fail(connection: ChannelModel, err: Error): void {
    this.logger.error({ err }, 'RabbitMQ channel failed; reconnecting');
    connection.close().catch(() => {}); // the 'close' event starts the reconnect
  }

  private async consume(connection: ChannelModel, { service, routes }: Subscription): Promise<void> {
    const queue = `${this.namespace}.${service}`;
    const deadLetterQueue = `${queue}.dead-letter`;
    const channel = await connection.createChannel();
    channel.on('error', (err: Error) => this.fail(connection, err));
    await channel.assertQueue(deadLetterQueue, { durable: true, arguments: QUORUM });
    await channel.bindQueue(deadLetterQueue, this.deadLetterExchange, queue);
    await channel.assertQueue(queue, {
      durable: true,
      arguments: {
        ...QUORUM,
        'x-dead-letter-exchange': this.deadLetterExchange,
        'x-dead-letter-routing-key': queue,
        // For consumers that crash before they can nack: the broker allows limit + 1 deliveries,
        // then dead-letters. (RabbitMQ refuses to redeclare a queue with another limit.)
        'x-delivery-limit': this.options.retry.maxAttempts - 1,
      },
    });
    for (const pattern of Object.keys(routes)) await channel.bindQueue(queue, this.exchange, pattern);
    await channel.prefetch(this.options.prefetch ?? 10);
    await channel.consume(queue, (message) => {
      if (!message) return this.fail(connection, new Error(`RabbitMQ cancelled the consumer of ${queue}`));
      this.handle(channel, service, routes, message).catch((err: unknown) =>
        this.logger.warn({ err, service }, 'could not settle a message; the broker will deliver it again'),
      );
    });
  }

  /** Acknowledges only after the handler resolved; retries with backoff, then dead-letters. */
  private async handle(channel: Channel, service: string, routes: EventRoutes, message: ConsumeMessage): Promise<void> {
    const event = parseEvent(message.content);
    if (event instanceof Error) {
      this.logger.error({ service, messageId: message.properties.messageId, err: event }, 'malformed event dead-lettered');
      return channel.nack(message, false, false);
    }
    const attempt = Number(message.properties.headers?.['x-delivery-count'] ?? 0) + 1;
    const log = { service, event: event.headers.name, eventId: event.headers.id, attempt };
    const handler = routeFor(routes, event.headers.name);
    if (!handler) {
      this.logger.warn(log, 'no handler for event; acknowledged');
      return channel.ack(message);
    }
    try {
      await this.handleOnceAvailable(handler, event, log);
    } catch (err) {
      if (err instanceof PoisonEventError || attempt >= this.options.retry.maxAttempts) {
        this.logger.error({ ...log, err }, 'event dead-lettered');
        return channel.nack(message, false, false);
      }
      this.logger.warn({ ...log, err }, 'event handler failed; retrying');
      await this.pause(retryDelay(this.options.retry, attempt));
      return channel.nack(message, false, true);
    }
    channel.ack(message);
  }

  /** Runs the handler; while it fails because the dependency is down, waits for the dependency and runs it again. */
  private async handleOnceAvailable(handler: EventHandler, event: EventEnvelope, log: Record<string, unknown>): Promise<void> {
    for (;;) {
      try {
        return await handler(event);
      } catch (err) {
        if (err instanceof PoisonEventError || !(await this.waitForDependency(log))) throw err;
      }
    }
  }

  /** Whether the dependency was down (and is back now, or the bus is closing); false if it answered at once. */
  private async waitForDependency(log: Record<string, unknown>): Promise<boolean> {
    const probe = this.options.dependency;
    if (!probe) return false;
    for (let failures = 0; ; failures++) {
      const up = await probe().then(
        () => true,
        () => false,
      );
      if (up || this.closing.signal.aborted) {
        if (failures > 0) this.logger.info(log, 'the database answers again; handling the event again');
        return failures > 0;
      }
      if (failures === 0) this.logger.warn(log, 'event handler failed while the database does not answer; the event waits for it');
      await this.pause(backoff(failures + 1, RECONNECT));
    }
  }

  /** Waits, but not beyond `close()`. */
  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.closing.signal }).catch(() => {});
  }
}

/** The event in a message body, or why there is none. */
function parseEvent(content: Buffer): EventEnvelope | Error {
  try {
    const parsed = eventEnvelopeSchema.safeParse(JSON.parse(content.toString('utf8')));
    return parsed.success ? parsed.data : parsed.error;
  } catch (error) {
    return error as Error; // not JSON
  }
}
