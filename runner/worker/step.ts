import type { Logger } from 'pino';
import { CARRY_LIMITS, readCarried } from '../../protocol/carried-results.js';
import type { StepResult } from '../../protocol/events.js';
import { flowTopology, splitBudget, STEP_HEADERS } from '../../protocol/fleet.js';
import { OutboundPolicy } from '../../protocol/outbound.js';
import { capPayload, capSerialized, stepMessageSchema, type StepMessage } from '../../protocol/step-message.js';
import { outboundFetch } from '../outbound.js';
import { Rebound, type OutputExtras, type StepContext, type StepFunction } from '../sdk.js';
import { planCarry } from './carry.js';
import type { WorkerConfig } from './config.js';
import { derivedId } from './ids.js';
import type { OutputCheck } from './output-schema.js';
import { ResultReporter } from './results.js';
import type { Delivery, WorkerTransport } from './transport.js';

/** An output larger than this as JSON fails its input (RabbitMQ and the execution record are not for files). */
export const MAX_OUTPUT_BYTES = 10 * 1024 * 1024;
/** Outputs one input may have. */
export const MAX_OUTPUTS = 10_000;
/** A result records this many outputs; it counts them all. */
const RECORDED_OUTPUTS = 100;
/** An input whose worker died this many times while holding it is failed without running the component again. */
export const MAX_DELIVERIES = 5;

/** An input, read from a delivery. */
interface Input {
  message: StepMessage;
  flowExecId: string;
  tenant: string;
  deliveryId: string;
  attempt: number;
  /** How many messages may still follow from this input within its execution (protocol/fleet.ts splitBudget). */
  budget: number;
  /** Results of earlier steps that travelled with it (protocol/carried-results.ts). */
  carried: StepResult[];
}

type Outcome =
  | { kind: 'outputs'; bodies: string[]; recorded: unknown[]; budget: number }
  | { kind: 'error'; error: Error }
  | { kind: 'rebound'; reason: string };

export interface StepWorkerOptions {
  config: WorkerConfig;
  transport: WorkerTransport;
  fn: StepFunction;
  logger: Logger;
  credentials: () => Promise<Record<string, unknown> | null>;
  checkOutput: OutputCheck | null;
}

/**
 * Runs one step: takes inputs from the step's queue, calls the component function once per input
 * (up to `concurrency` at once, in order), publishes each output to every target step, reports the
 * result, and acknowledges the input only once the broker confirmed all of that.
 */
export class StepWorker {
  private readonly step;
  private readonly topology;
  private readonly reporter;
  private readonly fetch;
  private readonly waiting: Delivery[] = [];
  private readonly settling = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private active = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly options: StepWorkerOptions) {
    this.step = options.config.step;
    this.topology = flowTopology(options.config.broker.kind === 'amqp' ? options.config.broker.namespace : 'memory', options.config.flowId);
    this.reporter = new ResultReporter(options.transport);
    this.fetch = outboundFetch(new OutboundPolicy(options.config.outboundAllowedNetworks));
  }

  async start(): Promise<void> {
    // Inputs held beyond those being worked on keep the pipe full while confirms are on their way.
    await this.options.transport.consume(this.step.prefetch, (delivery) => {
      this.waiting.push(delivery);
      this.pump();
    });
  }

  /** Stops taking inputs, finishes those being worked on and waits for their confirms (up to `graceMs`); the rest go back to the queue. */
  async drain(graceMs: number): Promise<void> {
    this.stopping.abort();
    await this.options.transport.cancel();
    for (const delivery of this.waiting.splice(0)) delivery.nack(true);
    const done = new Promise<void>((resolve) => {
      this.idle = resolve;
      this.checkIdle();
    });
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
  }

  private checkIdle(): void {
    if (this.idle && this.active === 0 && this.settling.size === 0) this.idle();
  }

  private pump(): void {
    while (!this.stopping.signal.aborted && this.active < this.step.concurrency && this.waiting.length > 0) {
      const delivery = this.waiting.shift()!;
      this.active++;
      void this.handle(delivery).finally(() => {
        this.active--;
        this.pump();
        this.checkIdle();
      });
    }
  }

  private async handle(delivery: Delivery): Promise<void> {
    const { logger } = this.options;
    const input = this.read(delivery);
    if (typeof input === 'string') {
      logger.error({ messageId: delivery.messageId }, `dropped a message that names no execution: ${input}`);
      delivery.ack();
      return;
    }
    const target = 'problem' in input ? input.input : input;
    const startedAt = new Date();
    let outcome: Outcome;
    /** The report of what the input carries, when made before the input is settled. */
    let reported: Promise<void> | undefined;
    if ('problem' in input) {
      outcome = { kind: 'error', error: new Error(input.problem) };
    } else if (delivery.deliveryCount >= MAX_DELIVERIES) {
      outcome = {
        kind: 'error',
        error: new Error(
          `the worker stopped ${delivery.deliveryCount} times while working on this input (a crash, or out of memory?); it is not tried again`,
        ),
      };
    } else {
      // A slow call reports what the input carries once it has taken CARRY_LIMITS.slowMs, not at its end.
      let slow: NodeJS.Timeout | undefined;
      if (input.carried.length > 0)
        slow = setTimeout(() => {
          reported = this.reporter.report(input.carried);
          reported.catch(() => {}); // awaited in settle
        }, CARRY_LIMITS.slowMs);
      outcome = await this.invoke(input);
      clearTimeout(slow);
    }
    const settled = this.settle(delivery, target, outcome, startedAt, reported).catch((error: Error) => {
      logger.error({ err: error, flowExecId: target.flowExecId }, 'could not publish the outcome of an input; it goes back to the queue');
      delivery.nack(true);
    });
    this.settling.add(settled);
    void settled.finally(() => {
      this.settling.delete(settled);
      this.checkIdle();
    });
  }

  /** The input a delivery carries: a step message, from the flows' entry (first step) or another step. */
  private read(delivery: Delivery): Input | { problem: string; input: Input } | string {
    const { config } = this.options;
    let body: unknown;
    try {
      body = JSON.parse(delivery.body);
    } catch {
      body = undefined;
    }
    const headers = delivery.headers;
    const flowExecId = headers[STEP_HEADERS.flowExecId];
    const tenant = headers[STEP_HEADERS.tenant];
    if (typeof flowExecId !== 'string' || typeof tenant !== 'string' || !delivery.messageId) return 'no execution id, tenant or message id';
    const attempt = Number(headers[STEP_HEADERS.attempt] ?? 1);
    const budget = Number(headers[STEP_HEADERS.budget] ?? config.maxMessages);
    const parsed = stepMessageSchema.safeParse(body);
    const carried = readCarried(headers[STEP_HEADERS.results], { flowExecId, flowId: config.flowId, tenant }, body, delivery.body);
    if (carried.dropped > 0 && tenant === config.tenant)
      this.options.logger.warn(
        { flowExecId, messageId: delivery.messageId, dropped: carried.dropped },
        'dropped carried results that are not of this execution',
      );
    const input: Input = {
      message: parsed.success
        ? parsed.data
        : {
            id: delivery.messageId,
            data: body ?? delivery.body.slice(0, 1024),
            attachments: {},
            headers: {},
            metadata: {},
            passthrough: {},
          },
      flowExecId,
      tenant,
      deliveryId: delivery.messageId,
      attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : 1,
      budget: Number.isInteger(budget) && budget >= 0 ? Math.min(budget, config.maxMessages) : config.maxMessages,
      carried: carried.results,
    };
    if (!parsed.success)
      return {
        problem: `the input is not a step message: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'message'} ${i.message}`).join('; ')}`,
        input,
      };
    return this.checked(input, config);
  }

  private checked(input: Input, config: WorkerConfig): Input | string {
    return input.tenant === config.tenant ? input : `a message of tenant ${input.tenant} reached a step of tenant ${config.tenant}`;
  }

  /** Calls the component with the input, within the step's timeout; its outputs are checked before anything is published. */
  private async invoke(input: Input): Promise<Outcome> {
    const { config, fn, logger } = this.options;
    const emitted: { data: unknown; extras?: OutputExtras }[] = [];
    let open = true;
    // The signal and the logger are made on first use: most inputs of most steps need neither.
    let controller: AbortController | undefined;
    const signal = () => {
      if (!controller) {
        controller = new AbortController();
        // Read first after the call ended (its timeout passed, say): the call is over, so is the signal.
        if (this.stopping.signal.aborted || !open) controller.abort();
      }
      return controller.signal;
    };
    const abort = () => controller?.abort();
    this.stopping.signal.addEventListener('abort', abort);
    let child: Logger | undefined;
    const log = () => (child ??= logger.child({ flowExecId: input.flowExecId, attempt: input.attempt }));
    const context: StepContext = {
      flowId: config.flowId,
      stepId: this.step.id,
      flowExecId: input.flowExecId,
      tenant: input.tenant,
      attempt: input.attempt,
      get signal() {
        return signal();
      },
      emit(data, extras) {
        if (open) emitted.push({ data, extras });
        else log().warn('emit after the function finished: ignored');
      },
      rebound(reason) {
        throw new Rebound(reason);
      },
      log: {
        debug: (message, details) => log().debug(details ?? {}, message),
        info: (message, details) => log().info(details ?? {}, message),
        warn: (message, details) => log().warn(details ?? {}, message),
        error: (message, details) => log().error(details ?? {}, message),
      },
      credentials: this.options.credentials,
      fetch: this.fetch,
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller?.abort();
        reject(new Error(`the step took longer than its timeout of ${this.step.timeoutSeconds} s`));
      }, this.step.timeoutSeconds * 1000);
    });
    try {
      const returned = await Promise.race([Promise.resolve().then(() => fn(input.message, this.step.fields, context)), timeout]);
      if (returned !== undefined) emitted.push({ data: returned });
      return this.outputs(input, emitted);
    } catch (error) {
      if (error instanceof Rebound || (error as Error)?.name === 'Rebound') return { kind: 'rebound', reason: (error as Error).message };
      return {
        kind: 'error',
        error: error instanceof Error ? error : new Error(`the step threw ${JSON.stringify(error) ?? String(error)}`),
      };
    } finally {
      open = false;
      clearTimeout(timer);
      this.stopping.signal.removeEventListener('abort', abort);
    }
  }

  /**
   * The output messages, serialized once; any output that is not JSON, too large or off its schema
   * fails the input, and so do more messages than the execution's budget leaves.
   */
  private outputs(input: Input, emitted: { data: unknown; extras?: OutputExtras }[]): Outcome {
    if (emitted.length > MAX_OUTPUTS)
      return {
        kind: 'error',
        error: new Error(`the step emitted ${emitted.length} outputs for one input; at most ${MAX_OUTPUTS} are allowed`),
      };
    const made = emitted.length * this.step.targets.length;
    const budget = splitBudget(input.budget, made);
    if (budget === null) {
      return {
        kind: 'error',
        error: new Error(
          `the execution passed its limit of ${this.options.config.maxMessages} messages between steps: this input would make ${made} more, and at most ${input.budget} may follow from it (flowSettings.maxMessages, EXECUTION_MAX_MESSAGES)`,
        ),
      };
    }
    const bodies: string[] = [];
    const recorded: unknown[] = [];
    for (const [index, { data, extras }] of emitted.entries()) {
      const which = emitted.length === 1 ? 'the output' : `output ${index + 1}`;
      if (data === undefined) return { kind: 'error', error: new Error(`${which} has no data (undefined)`) };
      const problem = this.options.checkOutput?.(data);
      if (problem) return { kind: 'error', error: new Error(`${which} ${problem}`) };
      const message: StepMessage = {
        id: derivedId('output', this.step.id, input.deliveryId, index),
        data,
        attachments: extras?.attachments ?? {},
        headers: extras?.headers ?? {},
        metadata: input.message.metadata ?? {},
        // With passthrough on, later steps read what earlier ones made, as in elastic.io; off, messages do not grow step by step.
        passthrough: this.options.config.passthrough ? { ...input.message.passthrough, [this.step.id]: { data } } : {},
      };
      let body: string;
      try {
        body = JSON.stringify(message);
      } catch (error) {
        return { kind: 'error', error: new Error(`${which} is not JSON: ${(error as Error).message}`) };
      }
      if (body.length > MAX_OUTPUT_BYTES)
        return { kind: 'error', error: new Error(`${which} is ${body.length} bytes as JSON; at most ${MAX_OUTPUT_BYTES} are allowed`) };
      bodies.push(body);
      if (recorded.length < RECORDED_OUTPUTS) recorded.push(capSerialized(message, body));
    }
    return { kind: 'outputs', bodies, recorded, budget };
  }

  /**
   * Publishes what came of an input, then acknowledges it: outputs confirmed, with the results at
   * hand travelling on the first (or reported, see planCarry); or the retry queued, and the
   * carried results reported (a retry waits, they need not).
   */
  private async settle(delivery: Delivery, input: Input, outcome: Outcome, startedAt: Date, reported?: Promise<void>): Promise<void> {
    const { config, transport } = this.options;
    const headers = { [STEP_HEADERS.flowExecId]: input.flowExecId, [STEP_HEADERS.tenant]: input.tenant };
    const carried = reported ? [] : input.carried;
    const publishes: Promise<void>[] = reported ? [reported] : [];
    if (outcome.kind === 'rebound' && input.attempt < this.step.maxAttempts) {
      publishes.push(this.reporter.report(carried));
      const retry = transport.publishRetry(this.topology.retryKey(input.attempt, this.step.id), JSON.stringify(input.message), {
        messageId: input.deliveryId,
        headers: {
          ...headers,
          [STEP_HEADERS.attempt]: input.attempt + 1,
          [STEP_HEADERS.source]: delivery.headers[STEP_HEADERS.source] ?? null,
          [STEP_HEADERS.budget]: input.budget,
        },
      });
      await Promise.all([retry, ...publishes]);
      this.options.logger.info(
        { flowExecId: input.flowExecId, attempt: input.attempt, reason: outcome.reason },
        'input rebounded: it is tried again after a delay',
      );
      delivery.ack();
      return;
    }
    const deliveries: { target: string; body: string; messageId: string }[] = [];
    const budget = outcome.kind === 'outputs' ? outcome.budget : 0;
    if (outcome.kind === 'outputs') {
      outcome.bodies.forEach((body, index) => {
        for (const target of this.step.targets)
          deliveries.push({ target, body, messageId: derivedId('delivery', this.step.id, input.deliveryId, index, target) });
      });
    }
    const failure =
      outcome.kind === 'error'
        ? outcome.error
        : outcome.kind === 'rebound'
          ? new Error(`gave up after ${input.attempt} ${input.attempt === 1 ? 'try' : 'tries'}: ${outcome.reason}`)
          : null;
    const result: StepResult = {
      id: derivedId('result', input.flowExecId, this.step.id, input.deliveryId),
      flowExecId: input.flowExecId,
      flowId: config.flowId,
      tenant: input.tenant,
      stepId: this.step.id,
      deliveryId: input.deliveryId,
      status: failure ? 'failed' : 'succeeded',
      startedAt: startedAt.toISOString(),
      durationMs: Math.max(0, Date.now() - startedAt.getTime()),
      attempts: input.attempt,
      outputs: outcome.kind === 'outputs' ? outcome.recorded : [],
      outputCount: outcome.kind === 'outputs' ? outcome.bodies.length : 0,
      delivered: deliveries.map((d) => d.messageId),
      ...(failure
        ? { error: { message: failure.message, ...(failure.stack ? { stack: failure.stack } : {}) }, input: capPayload(input.message) }
        : {}),
    };
    if (failure) this.options.logger.warn({ flowExecId: input.flowExecId, err: failure }, 'the step failed on an input');
    const plan = planCarry(carried, result, deliveries.length > 0);
    deliveries.forEach(({ target, body, messageId }, index) => {
      const travelling = index === 0 && plan.header !== null ? { [STEP_HEADERS.results]: plan.header } : {};
      publishes.push(
        transport.publishStep(this.topology.stepKey(target), body, {
          messageId,
          headers: { ...headers, [STEP_HEADERS.source]: this.step.id, [STEP_HEADERS.budget]: budget, ...travelling },
        }),
      );
    });
    publishes.push(this.reporter.report(plan.report));
    await Promise.all(publishes);
    delivery.ack();
  }
}
