import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { entryExchange, retryDelayMs, type DeploymentSpec, type EntryMessage } from '../../protocol/fleet.js';
import type { BrokerToWorker, WorkerToBroker } from './ipc-protocol.js';
import type { FleetBroker } from './types.js';

/** The event bus a runner inside the control plane's process shares (the control plane's in-process bus fits). */
export interface EventPort {
  publish(event: EventEnvelope): Promise<void>;
  /** Hands each message sent to `exchange` to `take` (the flows' entry, protocol/fleet.ts). */
  bind(exchange: string, take: (message: EntryMessage) => void): void;
}

interface Message {
  body: string;
  messageId?: string;
  headers: Record<string, unknown>;
  deliveryCount: number;
}

interface Consumer {
  child: ChildProcess;
  prefetch: number;
  unacked: Map<number, Message>;
}

class Queue {
  readonly messages: Message[] = [];
  readonly consumers: Consumer[] = [];
  private next = 0;

  /** Hands waiting messages to consumers with room, in turn. */
  dispatch(tags: { next: number }): void {
    while (this.messages.length > 0) {
      const ready = this.consumers.filter((c) => c.unacked.size < c.prefetch && c.child.connected);
      if (ready.length === 0) return;
      const consumer = ready[this.next++ % ready.length]!;
      const message = this.messages.shift()!;
      const tag = tags.next++;
      consumer.unacked.set(tag, message);
      const deliver: BrokerToWorker = {
        t: 'deliver',
        tag,
        body: message.body,
        messageId: message.messageId,
        headers: message.headers,
        deliveryCount: message.deliveryCount,
      };
      consumer.child.send(deliver);
    }
  }

  /** A consumer that is gone gives back what it held, counted as delivered once more. */
  remove(consumer: Consumer): void {
    const at = this.consumers.indexOf(consumer);
    if (at >= 0) this.consumers.splice(at, 1);
    const held = [...consumer.unacked.values()].map((m) => ({ ...m, deliveryCount: m.deliveryCount + 1 }));
    consumer.unacked.clear();
    this.messages.unshift(...held);
  }
}

interface Flow {
  spec: DeploymentSpec;
  queues: Map<string, Queue>;
  timers: Set<NodeJS.Timeout>;
}

/**
 * The embedded default's data plane: the queues of every flow in the runner's memory, with the
 * RabbitMQ semantics the workers rely on (prefetch, ack, requeue on a lost consumer, retry delays),
 * and the executions entering each flow taken from the in-process bus. What is in it is lost with the process,
 * as with the in-process bus (docs/decisions.md).
 */
export class MemoryFleetBroker implements FleetBroker {
  readonly kind = 'memory' as const;
  readonly workerBroker = { kind: 'ipc' as const };
  readonly workerUrl = null;
  private readonly flows = new Map<string, Flow>();
  private readonly tags = { next: 1 };

  constructor(
    private readonly events: EventPort,
    private readonly namespace: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Takes every execution entering a flow whose first step is here. Each broker binds a taker of its
   * own, so that every one sees each execution, as each first step's queue is bound to the entry,
   * and the one that runs the flow takes it.
   */
  start(): void {
    this.events.bind(entryExchange(this.namespace), (message) => {
      const flow = this.flows.get(message.routingKey);
      const first = flow?.spec.steps.find((s) => s.first);
      if (!flow || !first) {
        this.logger.debug({ flowId: message.routingKey, messageId: message.messageId }, 'an execution of a flow this runner does not run');
        return;
      }
      this.enqueue(flow, first.id, { body: message.body, messageId: message.messageId, headers: message.headers, deliveryCount: 0 });
    });
  }

  async declareFlow(spec: DeploymentSpec): Promise<void> {
    const flow = this.flows.get(spec.flowId) ?? { spec, queues: new Map<string, Queue>(), timers: new Set<NodeJS.Timeout>() };
    flow.spec = spec;
    for (const step of spec.steps) if (!flow.queues.has(step.id)) flow.queues.set(step.id, new Queue());
    this.flows.set(spec.flowId, flow);
  }

  async deleteFlow(spec: DeploymentSpec): Promise<void> {
    const flow = this.flows.get(spec.flowId);
    if (!flow) return;
    for (const timer of flow.timers) clearTimeout(timer);
    this.flows.delete(spec.flowId);
  }

  attach(child: ChildProcess, flowId: string, stepId: string): void {
    let consumer: Consumer | undefined;
    const queue = () => this.flows.get(flowId)?.queues.get(stepId);
    child.on('message', (message: WorkerToBroker) => {
      switch (message.t) {
        case 'consume':
          consumer = { child, prefetch: message.prefetch, unacked: new Map() };
          queue()?.consumers.push(consumer);
          break;
        case 'cancel':
          if (consumer) queue()?.remove(consumer);
          consumer = undefined;
          break;
        case 'ack':
          consumer?.unacked.delete(message.tag);
          break;
        case 'nack': {
          const held = consumer?.unacked.get(message.tag);
          consumer?.unacked.delete(message.tag);
          if (held && message.requeue) queue()?.messages.unshift({ ...held, deliveryCount: held.deliveryCount + 1 });
          break;
        }
        case 'publish':
          this.publish(flowId, message).then(
            () => child.connected && child.send({ t: 'confirm', id: message.id } satisfies BrokerToWorker),
            (error: Error) =>
              child.connected && child.send({ t: 'confirm', id: message.id, error: error.message } satisfies BrokerToWorker),
          );
          return;
      }
      queue()?.dispatch(this.tags);
    });
    const gone = () => {
      if (consumer) queue()?.remove(consumer);
      consumer = undefined;
      queue()?.dispatch(this.tags);
    };
    child.once('exit', gone);
    child.once('disconnect', gone);
  }

  private async publish(flowId: string, message: Extract<WorkerToBroker, { t: 'publish' }>): Promise<void> {
    if (message.to === 'event') return this.events.publish(JSON.parse(message.body) as EventEnvelope);
    const flow = this.flows.get(flowId);
    if (!flow) throw new Error(`flow ${flowId} has no queues here`);
    const [word, stepId] = message.routingKey.split('.') as [string, string];
    const stored = { body: message.body, messageId: message.messageId, headers: message.headers, deliveryCount: 0 };
    if (message.to === 'step') return this.enqueue(flow, stepId, stored);
    // A retry waits for its level's delay, as in a RabbitMQ retry queue.
    const timer = setTimeout(
      () => {
        flow.timers.delete(timer);
        this.enqueue(flow, stepId, stored);
      },
      retryDelayMs(flow.spec.retry, Number(word)),
    );
    flow.timers.add(timer);
  }

  private enqueue(flow: Flow, stepId: string, message: Message): void {
    const queue = flow.queues.get(stepId);
    if (!queue) throw new Error(`flow ${flow.spec.flowId} has no step ${stepId}`);
    queue.messages.push(message);
    queue.dispatch(this.tags);
  }

  async close(): Promise<void> {
    for (const flow of this.flows.values()) for (const timer of flow.timers) clearTimeout(timer);
    this.flows.clear();
  }
}
