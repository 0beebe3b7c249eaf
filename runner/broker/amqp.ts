import { connect, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { declareEntry, flowTopology, retryDelayMs, type DeploymentSpec } from '../../protocol/fleet.js';
import { QUORUM } from '../amqp.js';
import type { FleetBroker } from './types.js';

/**
 * Each flow's topology on RabbitMQ (names and routing in protocol/fleet.ts): a topic exchange, a
 * quorum queue per step, and retry queues whose TTL hands rebounded inputs back after their delay.
 */
export class AmqpFleetBroker implements FleetBroker {
  readonly kind = 'amqp' as const;
  readonly workerBroker;
  private connection: ChannelModel | undefined;
  private channel: ConfirmChannel | undefined;

  constructor(
    private readonly url: string,
    private readonly namespace: string,
  ) {
    this.workerBroker = { kind: 'amqp' as const, namespace };
  }

  get workerUrl(): string {
    return this.url;
  }

  /** A channel, opened again if the last one closed (a declare that failed closes it, as does a broker restart). */
  private async open(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    const connection = this.connection ?? (await connect(this.url));
    if (!this.connection) {
      this.connection = connection;
      connection.on('error', () => {});
      connection.on('close', () => {
        this.connection = undefined;
        this.channel = undefined;
      });
    }
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => {});
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    // The same declaration as the control plane's bus, so whichever comes first makes it.
    await channel.assertExchange(`${this.namespace}.events`, 'topic', { durable: true });
    this.channel = channel;
    return channel;
  }

  async declareFlow(spec: DeploymentSpec): Promise<void> {
    const channel = await this.open();
    const names = flowTopology(this.namespace, spec.flowId);
    await channel.assertExchange(names.exchange, 'topic', { durable: true });
    await channel.assertExchange(names.retryExchange, 'topic', { durable: true });
    // A queue and its bindings each on a channel of their own, all at once: a channel runs one
    // declaration at a time, and the broker sets up quorum queues side by side (start → active).
    const steps = spec.steps.map((step) =>
      this.onChannel(async (ch) => {
        const queue = names.stepQueue(step.id);
        await ch.assertQueue(queue, { durable: true, arguments: QUORUM });
        await ch.bindQueue(queue, names.exchange, names.stepBinding(step.id));
        if (step.first) await declareEntry(ch, this.namespace, { flowId: spec.flowId, queue });
      }),
    );
    const levels = Array.from({ length: spec.retry.levels }, (_, i) => i + 1).map((level) =>
      this.onChannel(async (ch) => {
        const queue = names.retryQueue(level);
        await ch.assertQueue(queue, {
          durable: true,
          arguments: {
            ...QUORUM,
            'x-message-ttl': retryDelayMs(spec.retry, level),
            'x-dead-letter-exchange': names.exchange,
            // At-least-once dead-lettering: a retry is not lost on its way back.
            'x-dead-letter-strategy': 'at-least-once',
            'x-overflow': 'reject-publish',
          },
        });
        await ch.bindQueue(queue, names.retryExchange, `${level}.*`);
      }),
    );
    await Promise.all([...steps, ...levels]);
  }

  /** Runs `work` on a channel opened for it (a declaration that fails closes only that one). */
  private async onChannel(work: (channel: Channel) => Promise<void>): Promise<void> {
    await this.open();
    if (!this.connection) throw new Error('lost the connection to RabbitMQ while declaring');
    const channel = await this.connection.createChannel();
    channel.on('error', () => {});
    try {
      await work(channel);
    } finally {
      await channel.close().catch(() => {});
    }
  }

  async deleteFlow(spec: DeploymentSpec): Promise<void> {
    const channel = await this.open();
    const names = flowTopology(this.namespace, spec.flowId);
    for (const step of spec.steps) await channel.deleteQueue(names.stepQueue(step.id));
    for (let level = 1; level <= spec.retry.levels; level++) await channel.deleteQueue(names.retryQueue(level));
    await channel.deleteExchange(names.retryExchange);
    await channel.deleteExchange(names.exchange);
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.channel = undefined;
    await connection?.close().catch(() => {});
  }
}
