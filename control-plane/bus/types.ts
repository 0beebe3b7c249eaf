import { backoff } from '../../protocol/backoff.js';
import type { EventEnvelope } from '../../protocol/envelope.js';

/** Handles one event. Throwing makes the bus retry with backoff; a `PoisonEventError` dead-letters at once. */
export type EventHandler = (event: EventEnvelope) => Promise<void>;

/** Event-name patterns (AMQP topic syntax: `*` one word, `#` any number) and the handler of each; the first match wins. */
export type EventRoutes = Record<string, EventHandler>;

export interface BusHealth {
  kind: 'memory' | 'rabbitmq';
  connected: boolean;
}

/** A message for `EventBus.send`: routed within `exchange` by `routingKey`. */
export interface DirectMessage {
  exchange: string;
  routingKey: string;
  body: string;
  messageId: string;
  headers: Record<string, unknown>;
}

export interface EventBus {
  readonly kind: BusHealth['kind'];
  /**
   * Sends the event when called, so that events published one after another go out in that order,
   * and resolves once the bus has accepted it for delivery (RabbitMQ: the broker's publisher confirm).
   */
  publish(event: EventEnvelope): Promise<void>;
  /**
   * Sends a message that is not an event to an exchange of its own (the flows' entry), in order with
   * the events published around it, and resolves once accepted, as `publish` does. A message no
   * queue is bound for is dropped, as RabbitMQ drops it.
   */
  send(message: DirectMessage): Promise<void>;
  /**
   * Consumes, on the durable queue of `service`, every event a route matches. Replicas that subscribe
   * with the same service name compete for the events; different services each get a copy.
   * An event is acknowledged only after its handler resolved.
   */
  subscribe(service: string, routes: EventRoutes): Promise<void>;
  health(): BusHealth;
  close(): Promise<void>;
}

/** An event that can never be handled (malformed, unknown payload): it goes to the dead-letter queue without retries. */
export class PoisonEventError extends Error {
  override name = 'PoisonEventError';
}

export interface RetryPolicy {
  /** Deliveries of one event before it is dead-lettered. */
  maxAttempts: number;
  /** Delay before the first retry; it doubles with each further attempt, up to 30 s. */
  baseDelayMs: number;
}

export const retryDelay = (policy: RetryPolicy, attempt: number): number =>
  backoff(attempt, { firstMs: policy.baseDelayMs, maxMs: 30_000 });
