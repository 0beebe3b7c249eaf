import type { BrokerToWorker, WorkerToBroker } from '../broker/ipc-protocol.js';
import type { Delivery, PublishProperties, SerializedEvent, WorkerTransport } from './transport.js';

/** A process worker's broker is the runner's in-process one (embedded default), over the fork channel. */
export class IpcTransport implements WorkerTransport {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(): void; reject(error: Error): void }>();
  private onDelivery: ((delivery: Delivery) => void) | undefined;
  private lostCallback: ((error: Error) => void) | undefined;

  constructor() {
    if (!process.send) throw new Error('the ipc broker needs a fork channel: start the worker with child_process.fork');
    process.on('message', (message: BrokerToWorker) => this.receive(message));
    process.once('disconnect', () => {
      const error = new Error('the runner closed the fork channel');
      for (const { reject } of this.waiting.values()) reject(error);
      this.waiting.clear();
      this.lostCallback?.(error);
    });
  }

  private send(message: WorkerToBroker): void {
    process.send!(message);
  }

  private receive(message: BrokerToWorker): void {
    if (message.t === 'confirm') {
      const waiter = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (message.error) waiter?.reject(new Error(message.error));
      else waiter?.resolve();
      return;
    }
    const { tag } = message;
    this.onDelivery?.({
      body: message.body,
      messageId: message.messageId,
      headers: message.headers,
      deliveryCount: message.deliveryCount,
      ack: () => this.send({ t: 'ack', tag }),
      nack: (requeue) => this.send({ t: 'nack', tag, requeue }),
    });
  }

  private publish(to: 'step' | 'retry' | 'event', routingKey: string, body: string, properties: PublishProperties): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.send({ t: 'publish', id, to, routingKey, body, ...properties });
    });
  }

  async consume(prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void> {
    this.onDelivery = onDelivery;
    this.send({ t: 'consume', prefetch });
  }

  publishStep(routingKey: string, body: string, properties: PublishProperties): Promise<void> {
    return this.publish('step', routingKey, body, properties);
  }

  publishRetry(routingKey: string, body: string, properties: PublishProperties): Promise<void> {
    return this.publish('retry', routingKey, body, properties);
  }

  publishEvent(event: SerializedEvent): Promise<void> {
    return this.publish('event', event.headers.name, event.body, { messageId: event.headers.id, headers: {} });
  }

  async cancel(): Promise<void> {
    this.send({ t: 'cancel' });
  }

  async close(): Promise<void> {
    this.onDelivery = undefined;
  }

  onLost(callback: (error: Error) => void): void {
    this.lostCallback = callback;
  }
}
