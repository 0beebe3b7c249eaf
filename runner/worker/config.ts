import { z } from 'zod';
import { stepSpecSchema } from '../../protocol/fleet.js';

/**
 * What a step worker is started with, by either driver: the step (HOOKLINE_WORKER, JSON) and its
 * secrets in variables of their own (HOOKLINE_STEP_TOKEN, HOOKLINE_AMQP_URL), so the worker can
 * log its configuration without them.
 */
export const workerConfigSchema = z.object({
  flowId: z.string(),
  tenant: z.string(),
  generation: z.number().int(),
  step: stepSpecSchema,
  retry: z.object({ baseDelayMs: z.number().int(), maxDelayMs: z.number().int(), levels: z.number().int() }),
  controlPlaneUrl: z.string(),
  /** The runner's OUTBOUND_ALLOWED_NETWORKS: networks the step's own calls may reach although they are private. */
  outboundAllowedNetworks: z.array(z.string()),
  /** amqp: the worker connects to RabbitMQ itself; ipc: it talks to the runner's in-process broker over the fork channel. */
  broker: z.discriminatedUnion('kind', [z.object({ kind: z.literal('amqp'), namespace: z.string() }), z.object({ kind: z.literal('ipc') })]),
});
export type WorkerConfig = z.infer<typeof workerConfigSchema>;

export const WORKER_ENV = {
  config: 'HOOKLINE_WORKER',
  stepToken: 'HOOKLINE_STEP_TOKEN',
  amqpUrl: 'HOOKLINE_AMQP_URL',
  /** Docker driver: where the component's module is inside the image, which may differ from the component's `module`. */
  componentModule: 'HOOKLINE_COMPONENT_MODULE',
} as const;

/**
 * A worker says it is ready (it consumes its queue) with a log line holding this mark; both
 * drivers read the worker's output, so neither needs another channel to learn it.
 */
export const READY_MARK = '"hookline":"ready"';
