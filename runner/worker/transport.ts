import type { EventHeaders } from '../../protocol/envelope.js';

/** An event envelope already serialized (`body` is its JSON), so a batch is turned into JSON once. */
export interface SerializedEvent {
  headers: EventHeaders;
  body: string;
}

/** One message taken from the step's queue. */
export interface Delivery {
  body: string;
  /** AMQP message id: the delivery id (the message's own id at the entry: protocol/fleet.ts entryMessage). */
  messageId: string | undefined;
  headers: Record<string, unknown>;
  /** How many times the broker handed this message out before (a worker died holding it). */
  deliveryCount: number;
  ack(): void;
  /** Back to the queue (requeue) or dropped. */
  nack(requeue: boolean): void;
}

export interface PublishProperties {
  messageId: string;
  headers: Record<string, unknown>;
}

/**
 * How a step worker talks to the broker: RabbitMQ itself (amqp-transport.ts), or the runner's
 * in-process broker over the fork channel (ipc-transport.ts). Every publish resolves once the
 * broker confirmed it.
 */
export interface WorkerTransport {
  /** Starts taking deliveries from the step's queue, at most `prefetch` unacknowledged at once. */
  consume(prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void>;
  /** To the flow exchange: `step.<target>` for an output, as protocol/fleet.ts names it. */
  publishStep(routingKey: string, body: string, properties: PublishProperties): Promise<void>;
  /** To the flow's retry exchange: `<level>.<stepId>`. */
  publishRetry(routingKey: string, body: string, properties: PublishProperties): Promise<void>;
  /** To the events exchange, for the control plane. */
  publishEvent(event: SerializedEvent): Promise<void>;
  /** Takes no more deliveries; those held stay to be settled. */
  cancel(): Promise<void>;
  close(): Promise<void>;
  /** Called once if the connection to the broker is lost: the worker exits and its driver starts it again. */
  onLost(callback: (error: Error) => void): void;
}
