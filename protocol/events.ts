import { z } from 'zod';
import { flowSchema } from './flow.js';
import { stepMessageSchema } from './step-message.js';

/** The lifecycle events that only name a flow carry its tenant too, so the audit log can scope them. */
const flowRef = z.object({ id: z.string().min(1), tenant: z.string().min(1) });
const actor = z.string().nullable().optional();
const flowRepoChange = z.object({ flowId: z.string(), tenant: z.string(), user: actor });
const iamChange = z.object({ id: z.string(), tenant: z.string().nullable(), user: actor });
const secretChange = z.object({ id: z.string(), tenant: z.string(), user: actor });
const metadataChange = z.object({ id: z.string(), tenant: z.string(), user: actor });
const componentChange = z.object({ id: z.string(), tenant: z.string(), user: actor });

export const flowExecutedSchema = z.object({
  flowId: z.string().min(1),
  flowExecId: z.string().min(1),
  tenant: z.string().min(1),
  trigger: z.enum(['webhook', 'schedule', 'manual']),
  message: stepMessageSchema,
  receivedAt: z.iso.datetime({ offset: true }),
});

/** What every execution.* event names. */
const executionRef = z.object({ flowExecId: z.string().min(1).max(200), flowId: z.string().min(1).max(200), tenant: z.string().min(1) });

/**
 * What a step made of one input: its outputs, or the error it gave up with (after any retries).
 * Step workers report results in batches (`execution.step.results`); the control plane keeps one
 * execution record per flowExecId from them (control-plane/executions).
 */
export const stepResultSchema = executionRef.extend({
  /** One per step and input delivery, so a result reported twice (a worker died before its ack) is applied once. */
  id: z.string().min(1).max(200),
  stepId: z.string().min(1).max(100),
  /** The input: flow.executed's message id for the first step, else the delivery's AMQP message id. */
  deliveryId: z.string().min(1).max(200),
  status: z.enum(['succeeded', 'failed']),
  startedAt: z.iso.datetime({ offset: true }),
  durationMs: z.number().int().nonnegative(),
  /** How many times the input was tried (1 without retries). */
  attempts: z.number().int().positive(),
  /** The first outputs, as recorded (a large one replaced by a preview, see capPayload); `outputCount` counts them all. */
  outputs: z.array(z.unknown()).max(100),
  outputCount: z.number().int().nonnegative(),
  /** The ids of the deliveries sent to next steps, one per output and target: the execution is over when each is done. */
  delivered: z.array(z.string().min(1).max(200)).max(100_000),
  error: z.object({ message: z.string(), stack: z.string().optional() }).optional(),
  /** The input that failed (failed results only), as recorded. */
  input: z.unknown().optional(),
});
export type StepResult = z.infer<typeof stepResultSchema>;

/** The execution is over: every delivery of it was handled. Emitted by the control plane's executions module. */
export const executionFinishedSchema = executionRef.extend({
  status: z.enum(['succeeded', 'failed']),
  reason: z.string().max(2000).optional(),
});

export type FlowExecuted = z.input<typeof flowExecutedSchema>;

/** Every event Hookline publishes, with the schema of its payload. `audit.*` names are open. */
export const EVENTS = {
  'flow.starting': flowSchema.extend({ startedBy: z.string().nullable().optional() }),
  'flow.started': flowRef,
  'flow.stopping': flowSchema.extend({ stoppedBy: z.string().nullable().optional() }),
  'flow.stopped': flowRef,
  'flow.failed': flowRef.extend({ reason: z.string().min(1) }),
  'flow.executed': flowExecutedSchema,
  'flowrepo.flow.created': flowRepoChange,
  'flowrepo.flow.modified': flowRepoChange,
  'flowrepo.flow.deleted': flowRepoChange,
  'iam.tenant.created': iamChange,
  'iam.tenant.modified': iamChange,
  'iam.tenant.deleted': iamChange,
  'iam.user.created': iamChange,
  'iam.user.modified': iamChange,
  'iam.user.deleted': iamChange,
  'iam.user.loginFailed': z.object({ id: z.string(), tenant: z.string().nullable(), attempts: z.number().int(), locked: z.boolean() }),
  'iam.role.created': iamChange,
  'iam.role.modified': iamChange,
  'iam.role.deleted': iamChange,
  'iam.token.created': iamChange.extend({ accountId: z.string() }),
  'iam.token.deleted': iamChange.extend({ accountId: z.string() }),
  'secrets.secret.created': secretChange,
  'secrets.secret.modified': secretChange,
  'secrets.secret.deleted': secretChange,
  /** A raw (unmasked) value was given out: to whom, and which secret. */
  'secrets.secret.rawRead': secretChange,
  'secrets.secret.refreshFailed': secretChange.extend({ reason: z.string() }),
  'secrets.authClient.created': secretChange,
  'secrets.authClient.modified': secretChange,
  'secrets.authClient.deleted': secretChange,
  'metadata.domain.created': metadataChange,
  'metadata.domain.modified': metadataChange,
  'metadata.domain.deleted': metadataChange,
  'components.component.created': componentChange,
  'components.component.modified': componentChange,
  'components.component.deleted': componentChange,
  'execution.step.results': z.object({ results: z.array(stepResultSchema).min(1).max(1000) }),
  'execution.finished': executionFinishedSchema,
} as const;

export type EventName = keyof typeof EVENTS;
export type EventPayload<N extends EventName> = z.infer<(typeof EVENTS)[N]>;

export const auditPayloadSchema = z.record(z.string(), z.unknown());

export const isEventName = (name: string): name is EventName => Object.hasOwn(EVENTS, name);

/** The schema a payload of `name` must match, or null for a name Hookline does not know. */
export function payloadSchemaFor(name: string): z.ZodType<Record<string, unknown>> | null {
  if (isEventName(name)) return EVENTS[name] as unknown as z.ZodType<Record<string, unknown>>;
  if (name.startsWith('audit.')) return auditPayloadSchema;
  return null;
}
