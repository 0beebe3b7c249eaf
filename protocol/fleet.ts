import { z } from 'zod';
import { backoff } from './backoff.js';
import type { StepMessage } from './step-message.js';

/**
 * The runner fleet's contracts: what a step may set in `nodeSettings`, what the control plane
 * wants a runner to run (a deployment per flow) and what a runner reports back.
 * docs/runner-fleet.md tells the whole story.
 */

/** Step ids become words of RabbitMQ routing keys and parts of queue and container names. */
export const STEP_ID = /^[A-Za-z0-9_-]+$/;
export const STEP_ID_MESSAGE = 'must be letters, digits, _ or - (it names the step’s queue)';

/**
 * Limits that hold on every side of the fleet's wires: a flow may have at most MAX_FLOW_STEPS
 * nodes (each is a step worker), so a deployment's spec and a runner's report of it always fit; a
 * runner takes at most MAX_RUNNER_CAPACITY step workers and is given at most
 * MAX_RUNNER_DEPLOYMENTS deployments (cleanups included), so its heartbeat always fits too.
 */
export const MAX_FLOW_STEPS = 50;
export const MAX_FLOW_EDGES = 200;
export const MAX_RUNNER_CAPACITY = 1000;
export const MAX_RUNNER_DEPLOYMENTS = 2000;

export const RETRY_DEFAULTS = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 15 * 60 * 1000 } as const;
export const STEP_DEFAULTS = { timeoutSeconds: 300, concurrency: 1, extraPrefetch: 200, memoryMb: 256, cpus: 0.5 } as const;

/** `nodeSettings` keys Hookline reads; any other key is left to the component. */
export const stepSettingsSchema = z.looseObject({
  /** Tries of one input, the first included, when the component asks for a retry (rebound). */
  retry: z.strictObject({ maxAttempts: z.number().int().min(1).max(10) }).optional(),
  /** One input may take this long; a step over it has failed on that input. */
  timeoutSeconds: z.number().int().min(1).max(3600).optional(),
  /** Inputs the step works on at once (1: one after another, in order). */
  concurrency: z.number().int().min(1).max(100).optional(),
  /**
   * Inputs a worker holds at once: those it works on, and those whose outputs wait for the broker's
   * confirm (default: concurrency + 200). Lower it for a step whose messages are large.
   */
  prefetch: z.number().int().min(1).max(2000).optional(),
  /** Limits of the step's container (docker driver). */
  memoryMb: z.number().int().min(32).max(65_536).optional(),
  cpus: z.number().min(0.05).max(64).optional(),
  /** A JSON Schema of the metadata repository every output is checked against; an invalid output is a step error. */
  outputSchema: z.strictObject({ domainId: z.uuid(), uri: z.string().min(1).max(500) }).optional(),
});
export type StepSettings = z.infer<typeof stepSettingsSchema>;

/** `flowSettings.retry`: the delays between the tries of a rebounded input, doubling from `baseDelayMs`. */
export const retrySettingsSchema = z.strictObject({
  baseDelayMs: z.number().int().min(10).max(3_600_000).optional(),
  maxDelayMs: z
    .number()
    .int()
    .min(10)
    .max(24 * 3_600_000)
    .optional(),
});
export type RetrySettings = z.infer<typeof retrySettingsSchema>;

/** The delay before try `attempt + 1` of an input (attempt 1 failed: the first retry). */
export const retryDelayMs = (retry: { baseDelayMs: number; maxDelayMs: number }, attempt: number): number =>
  backoff(attempt, { firstMs: retry.baseDelayMs, maxMs: retry.maxDelayMs });

/** One step as a runner deploys it: everything its worker needs, resolved by the control plane. */
export const stepSpecSchema = z.object({
  id: z.string().regex(STEP_ID),
  name: z.string().nullable(),
  /** The component function the worker calls, and how to run the component. */
  function: z.string(),
  component: z.object({ id: z.string(), name: z.string(), image: z.string().nullable(), module: z.string().nullable() }),
  fields: z.record(z.string(), z.unknown()),
  credentialsId: z.string().nullable(),
  /** Steps its graph edges lead to: every output goes to each. */
  targets: z.array(z.string()),
  /** The first step takes the executions entering the flow (entryExchange). */
  first: z.boolean(),
  maxAttempts: z.number().int().min(1),
  timeoutSeconds: z.number().int().min(1),
  concurrency: z.number().int().min(1),
  prefetch: z.number().int().min(1),
  memoryMb: z.number().int(),
  cpus: z.number(),
  /** The output schema and every schema it references, by `$id`, for the worker to compile. */
  outputSchema: z.object({ id: z.string(), schemas: z.record(z.string(), z.unknown()) }).nullable(),
});
export type StepSpec = z.infer<typeof stepSpecSchema>;

/**
 * Messages one execution may make between its steps, at most (`flowSettings.maxMessages`, capped by
 * the control plane's EXECUTION_MAX_MESSAGES). Enforced without coordination: each message carries
 * the budget of what may still follow from it (STEP_HEADERS.budget); a step that makes k messages
 * from an input of budget b needs k <= b and gives each floor((b - k) / k), so everything that
 * follows from the first input stays within the cap, however the graph fans out.
 */
export const EXECUTION_MESSAGE_DEFAULTS = { maxMessages: 100_000, ceiling: 10_000_000 } as const;

/** The budget each of `count` messages made from an input of budget `budget` carries on, or null when they do not fit it. */
export function splitBudget(budget: number, count: number): number | null {
  if (count === 0) return 0;
  if (count > budget) return null;
  return Math.floor((budget - count) / count);
}

/** One flow as a runner deploys it. A new start or a move to another runner is a new generation. */
export const deploymentSpecSchema = z.object({
  flowId: z.string(),
  tenant: z.string(),
  generation: z.number().int().min(1),
  retry: z.object({ baseDelayMs: z.number().int(), maxDelayMs: z.number().int(), levels: z.number().int().min(0) }),
  /** The first input's message budget (EXECUTION_MESSAGE_DEFAULTS). */
  maxMessages: z.number().int().min(1).default(EXECUTION_MESSAGE_DEFAULTS.maxMessages),
  /** Whether outputs carry every earlier step's data (`flowSettings.passthrough`); off, messages do not grow step by step. */
  passthrough: z.boolean().default(false),
  steps: z.array(stepSpecSchema).min(1).max(MAX_FLOW_STEPS),
});
export type DeploymentSpec = z.infer<typeof deploymentSpecSchema>;

/** What the control plane wants of a runner: run these flows, or remove what is left of them. */
export const desiredDeploymentSchema = z.object({
  flowId: z.string(),
  generation: z.number().int(),
  desired: z.enum(['running', 'removed']),
  spec: deploymentSpecSchema,
});
export type DesiredDeployment = z.infer<typeof desiredDeploymentSchema>;

/** GET /runners/{id}/deployments: the whole desired state, versioned so a runner can wait for the next change. */
export const desiredStateSchema = z.object({ version: z.number().int(), deployments: z.array(desiredDeploymentSchema) });
export type DesiredState = z.infer<typeof desiredStateSchema>;

export const WORKER_STATES = ['starting', 'ready', 'restarting', 'failed'] as const;
export const DEPLOYMENT_STATES = ['deploying', 'ready', 'failed', 'removing', 'removed'] as const;

const reason = z.string().max(4000);

/** A runner's account of one deployment, in every heartbeat. */
export const deploymentReportSchema = z.strictObject({
  flowId: z.string().min(1).max(64),
  generation: z.number().int().min(0),
  state: z.enum(DEPLOYMENT_STATES),
  /** Why it failed. */
  reason: reason.optional(),
  steps: z
    .array(
      z.strictObject({
        stepId: z.string().min(1).max(30),
        state: z.enum(WORKER_STATES),
        restarts: z.number().int().min(0).default(0),
        /** The last error, such as the end of a crashed worker's output. */
        reason: reason.optional(),
      }),
    )
    .max(MAX_FLOW_STEPS)
    .default([]),
});
export type DeploymentReport = z.infer<typeof deploymentReportSchema>;

/** Characters of one step log line; a runner cuts longer ones. */
export const MAX_LOG_LINE = 8192;

/** One line a step worker wrote, as the runner ships it to the control plane. */
export const stepLogLineSchema = z.strictObject({
  flowId: z.string().min(1).max(64),
  stepId: z.string().min(1).max(30),
  at: z.iso.datetime({ offset: true }),
  stream: z.enum(['stdout', 'stderr']),
  line: z.string().max(MAX_LOG_LINE),
});
export type StepLogLine = z.infer<typeof stepLogLineSchema>;

/** Names of a flow's RabbitMQ exchanges and queues; `namespace` is BUS_NAMESPACE. */
export function flowTopology(namespace: string, flowId: string) {
  const prefix = `${namespace}.flow.${flowId}`;
  return {
    /** Topic exchange every step's input goes through: routing key `step.<stepId>`, or `<level>.<stepId>` coming back from a retry. */
    exchange: prefix,
    /** Topic exchange of the retry queues, routing key `<level>.<stepId>`. */
    retryExchange: `${prefix}.retry`,
    stepQueue: (stepId: string) => `${prefix}.step.${stepId}`,
    /** Holds a rebounded input for the level's delay, then hands it back to `exchange`. */
    retryQueue: (level: number) => `${prefix}.retry.${level}`,
    stepKey: (stepId: string) => `step.${stepId}`,
    retryKey: (level: number, stepId: string) => `${level}.${stepId}`,
    /** Binds a step queue to every key ending in its id. */
    stepBinding: (stepId: string) => `*.${stepId}`,
  };
}

/**
 * Where executions enter their flows: a direct exchange to which each first step's queue is bound by
 * its flow id. The control plane sends each flow.executed there as the first step's input, a step
 * message like every other (entryMessage), so each step queue holds one format.
 */
export const entryExchange = (namespace: string) => `${namespace}.entry`;

/** What declareEntry needs of an AMQP channel (amqplib's fits). */
export interface EntryChannel {
  assertExchange(exchange: string, type: 'direct', options: { durable: boolean }): Promise<unknown>;
  bindQueue(queue: string, exchange: string, routingKey: string): Promise<unknown>;
}

/**
 * Declares the entry, the one declaration every side shares: the control plane before it sends,
 * a runner before it binds a flow's first step queue (`first`) to it.
 */
export async function declareEntry(channel: EntryChannel, namespace: string, first?: { flowId: string; queue: string }): Promise<void> {
  await channel.assertExchange(entryExchange(namespace), 'direct', { durable: true });
  if (first) await channel.bindQueue(first.queue, entryExchange(namespace), first.flowId);
}

/** A message to the entry: routed by its flow id, with its execution in the step headers (STEP_HEADERS). */
export interface EntryMessage {
  routingKey: string;
  body: string;
  messageId: string;
  headers: Record<string, unknown>;
}

/** An execution's first step input as it goes to the entry: the message it carries, its id the delivery id. */
export function entryMessage(executed: { flowId: string; flowExecId: string; tenant: string; message: StepMessage }): EntryMessage {
  return {
    routingKey: executed.flowId,
    body: JSON.stringify(executed.message),
    messageId: executed.message.id,
    headers: { [STEP_HEADERS.flowExecId]: executed.flowExecId, [STEP_HEADERS.tenant]: executed.tenant },
  };
}

/** AMQP headers of a message between steps. */
export const STEP_HEADERS = {
  flowExecId: 'hookline-exec-id',
  tenant: 'hookline-tenant',
  /** The try this delivery is, from 1. */
  attempt: 'hookline-attempt',
  /** The step whose output it is. */
  source: 'hookline-source-step',
  /** How many more messages may follow from this one within its execution (splitBudget). */
  budget: 'hookline-budget',
  /** The results travelling with this message, as JSON (protocol/carried-results.ts). */
  results: 'hookline-results',
} as const;
