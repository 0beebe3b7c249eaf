import type { EventEnvelope } from '../../protocol/envelope.js';
import type { Logger } from '../logger.js';
import { routeFor, topicMatches } from './topic.js';
import {
  PoisonEventError,
  retryDelay,
  type BusHealth,
  type DirectMessage,
  type EventBus,
  type EventRoutes,
  type RetryPolicy,
} from './types.js';

interface ServiceQueue {
  patterns: Set<string>;
  consumers: EventRoutes[];
  next: number;
}

export interface DeadLetter {
  service: string;
  event: EventEnvelope;
  error: string;
}

/**
 * The embedded default: the same interface and delivery rules as the RabbitMQ bus (a queue per
 * service, competing consumers, retries with backoff, then a dead-letter list), within one process.
 * Events in flight live in memory; the outbox keeps every event until `publish` has accepted it.
 */
export class MemoryBus implements EventBus {
  readonly kind = 'memory' as const;
  readonly deadLetters: DeadLetter[] = [];
  private readonly queues = new Map<string, ServiceQueue>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The takers of each exchange `send` reaches (the in-process runners' entry: runner/broker/memory.ts). */
  private readonly bound = new Map<string, ((message: DirectMessage) => void)[]>();
  private closed = false;

  constructor(
    private readonly logger: Logger,
    private readonly retry: RetryPolicy = { maxAttempts: 5, baseDelayMs: 200 },
  ) {}

  async publish(event: EventEnvelope): Promise<void> {
    if (this.closed) throw new Error('bus is closed');
    const body = JSON.stringify(event); // as a broker would: each service gets its own copy, no shared references
    for (const [service, queue] of this.queues) {
      if ([...queue.patterns].some((p) => topicMatches(p, event.headers.name))) {
        this.schedule(service, queue, JSON.parse(body) as EventEnvelope, 1, 0);
      }
    }
  }

  async send(message: DirectMessage): Promise<void> {
    if (this.closed) throw new Error('bus is closed');
    for (const take of this.bound.get(message.exchange) ?? []) take(message);
  }

  /** Hands every message sent to `exchange` to `take`, as it is sent. */
  bind(exchange: string, take: (message: DirectMessage) => void): void {
    this.bound.set(exchange, [...(this.bound.get(exchange) ?? []), take]);
  }

  async subscribe(service: string, routes: EventRoutes): Promise<void> {
    const queue = this.queues.get(service) ?? { patterns: new Set<string>(), consumers: [], next: 0 };
    for (const pattern of Object.keys(routes)) queue.patterns.add(pattern);
    queue.consumers.push(routes);
    this.queues.set(service, queue);
  }

  health(): BusHealth {
    return { kind: this.kind, connected: !this.closed };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private schedule(service: string, queue: ServiceQueue, event: EventEnvelope, attempt: number, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) void this.deliver(service, queue, event, attempt);
    }, delayMs);
    this.timers.add(timer);
  }

  private async deliver(service: string, queue: ServiceQueue, event: EventEnvelope, attempt: number): Promise<void> {
    const routes = queue.consumers[queue.next++ % queue.consumers.length]!;
    const handler = routeFor(routes, event.headers.name);
    if (!handler) return;
    try {
      await handler(event);
    } catch (error) {
      const poison = error instanceof PoisonEventError;
      const log = { service, event: event.headers.name, eventId: event.headers.id, attempt, err: error };
      if (poison || attempt >= this.retry.maxAttempts) {
        this.logger.error(log, 'event dead-lettered');
        this.deadLetters.push({ service, event, error: (error as Error).message });
        return;
      }
      this.logger.warn(log, 'event handler failed; retrying');
      this.schedule(service, queue, event, attempt + 1, retryDelay(this.retry, attempt));
    }
  }
}
