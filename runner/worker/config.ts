import { z } from 'zod';
import { stepSpecSchema } from '../../protocol/fleet.js';

/**
 * What a step worker is started with: its secrets (the step token, the broker's URL) as one JSON
 * line on its stdin, which the driver closes after it, so they are never in its environment
 * (`docker inspect`, /proc) nor in its configuration, which it may log; and the step, in
 * HOOKLINE_WORKER (docker) or on that line too (process, whose workers are forked before their step is known).
 */
export const workerConfigSchema = z.object({
  flowId: z.string(),
  tenant: z.string(),
  generation: z.number().int(),
  step: stepSpecSchema,
  retry: z.object({ baseDelayMs: z.number().int(), maxDelayMs: z.number().int(), levels: z.number().int() }),
  /** The deployment's message budget of an execution's first input, and whether outputs carry passthrough (protocol/fleet.ts). */
  maxMessages: z.number().int().min(1),
  passthrough: z.boolean(),
  controlPlaneUrl: z.string(),
  /** The runner's OUTBOUND_ALLOWED_NETWORKS: networks the step's own calls may reach although they are private. */
  outboundAllowedNetworks: z.array(z.string()),
  /** amqp: the worker connects to RabbitMQ itself; ipc: it talks to the runner's in-process broker over the fork channel. */
  broker: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('amqp'), namespace: z.string() }),
    z.object({ kind: z.literal('ipc') }),
  ]),
});
export type WorkerConfig = z.infer<typeof workerConfigSchema>;

export const WORKER_ENV = {
  config: 'HOOKLINE_WORKER',
  /** What the worker imports, which may differ from the component's `module`: where it is in the image (docker), the file it resolved to in a trusted folder (process). */
  componentModule: 'HOOKLINE_COMPONENT_MODULE',
  /** Set on a warm worker (runner/drivers/warm-pool.ts): it waits for its step on stdin, however long that takes. */
  warm: 'HOOKLINE_WORKER_WARM',
} as const;

export const workerSecretsSchema = z.strictObject({ stepToken: z.string().nullable(), amqpUrl: z.string().nullable() });
export type WorkerSecrets = z.infer<typeof workerSecretsSchema>;

/**
 * The step itself, when it comes on stdin with the secrets: the process driver forks its workers
 * before it knows their step (warm-pool.ts), so it gives the step there rather than in HOOKLINE_WORKER.
 */
export const workerStepSchema = z.strictObject({ config: workerConfigSchema, componentModule: z.string() });
export type WorkerStep = z.infer<typeof workerStepSchema>;

export const workerStdinSchema = workerSecretsSchema.extend({ step: workerStepSchema.optional() });

/** The line a driver writes to a worker's stdin: its secrets, and its step when the environment does not hold it. */
export const encodeStdin = (secrets: WorkerSecrets, step?: WorkerStep) => `${JSON.stringify(step ? { ...secrets, step } : secrets)}\n`;

/**
 * A worker says it is ready (it consumes its queue) with a log line holding this mark; both
 * drivers read the worker's output, so neither needs another channel to learn it.
 */
export const READY_MARK = '"hookline":"ready"';

/** A warm worker's line once it has loaded and waits for its step (runner/drivers/warm-pool.ts). */
export const WARM_MARK = '"hookline":"warm"';
