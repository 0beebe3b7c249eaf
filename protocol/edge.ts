import { z } from 'zod';

/**
 * The sizes the edge and the control plane agree on, by construction: a webhook body is at most
 * MAX_HOOK_BODY_BYTES (HOOK_BODY_LIMIT_BYTES may lower it); a call becomes an execution only if
 * it is at most MAX_EXECUTION_BYTES as JSON (a body written again as JSON can grow: text is
 * escaped, headers come along); the edge delivers at most DELIVERY_LIMITS.executions executions
 * and DELIVERY_LIMITS.bytes bytes per request, and the control plane's ingest route takes exactly
 * that, whatever its own BODY_LIMIT_BYTES. So no execution the edge accepted is too large to deliver.
 */
export const MAX_HOOK_BODY_BYTES = 1024 * 1024;
export const MAX_EXECUTION_BYTES = 2 * MAX_HOOK_BODY_BYTES;
export const DELIVERY_LIMITS = { executions: 100, bytes: 2 * MAX_EXECUTION_BYTES } as const;
/** `{"executions":[` and `]}` around the executions of a delivery. */
export const DELIVERY_ENVELOPE_BYTES = 64;

/**
 * How a flow's webhook authenticates its callers, as the edge holds it (secrets resolved):
 * - `hmac`: OIH's style, an HMAC of the raw body in a header (`sha256=<hex>` by default, as GitHub sends it);
 * - `standard-webhooks`: the Standard Webhooks spec (webhook-id, webhook-timestamp, webhook-signature;
 *   several secrets for key rotation, a timestamp tolerance);
 * - `bearer`: `Authorization: Bearer <token>`.
 */
export const webhookAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hmac'),
    secret: z.string().min(16, 'must be at least 16 characters (the key of the API_KEY secret the flow names)').max(1000),
    header: z.string().min(1).max(100).default('x-hub-signature-256'),
    algorithm: z.enum(['sha1', 'sha256', 'sha512']).default('sha256'),
    encoding: z.enum(['hex', 'base64']).default('hex'),
    /** Text before the digest in the header, such as `sha256=`. */
    prefix: z.string().max(50).default('sha256='),
  }),
  z.strictObject({
    type: z.literal('standard-webhooks'),
    /** `whsec_<base64>` secrets; every one is tried, so a new one can be added before the old one goes. */
    secrets: z
      .array(z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must be whsec_<base64>'))
      .min(1)
      .max(5),
    toleranceSeconds: z.number().int().min(1).max(3600).default(300),
  }),
  z.strictObject({
    type: z.literal('bearer'),
    token: z.string().min(16, 'must be at least 16 characters (the key of the API_KEY secret the flow names)').max(1000),
  }),
]);
export type WebhookAuth = z.infer<typeof webhookAuthSchema>;

/**
 * `flowSettings.webhooks` as a flow stores it: the auth names its secrets by id (API_KEY secrets of
 * the flow's tenant, their `key` being the secret), so no secret value sits in the flow, its events
 * or the audit log. The control plane resolves them when it pushes the trigger to the edge.
 */
const secretId = z.uuid({ message: 'must be the id of an API_KEY secret of your tenant' });
export const webhookAuthSettingsSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hmac'),
    secretId,
    header: z.string().min(1).max(100).default('x-hub-signature-256'),
    algorithm: z.enum(['sha1', 'sha256', 'sha512']).default('sha256'),
    encoding: z.enum(['hex', 'base64']).default('hex'),
    prefix: z.string().max(50).default('sha256='),
  }),
  z.strictObject({
    type: z.literal('standard-webhooks'),
    secretIds: z.array(secretId).min(1).max(5),
    toleranceSeconds: z.number().int().min(1).max(3600).default(300),
  }),
  z.strictObject({ type: z.literal('bearer'), secretId }),
]);
export type WebhookAuthSettings = z.infer<typeof webhookAuthSettingsSchema>;
export const webhookSettingsSchema = z.strictObject({ auth: webhookAuthSettingsSchema.optional() });

/**
 * `flowSettings.schedule`: what a cron flow does with slots it missed (the Worker was down): `skip`
 * them (the default), or `run-latest` once. Slots up to a minute late always run.
 */
export const scheduleSettingsSchema = z.strictObject({ misfire: z.enum(['skip', 'run-latest']).default('skip') });

/**
 * What the control plane pushes to a flow's Durable Object: recorded on `flow.starting`
 * (status `starting`), live on `flow.started`, deleted on `flow.stopping`. `version` only grows, so a
 * late or repeated push never overwrites a newer one.
 */
export const edgeTriggerSchema = z.strictObject({
  flowId: z.string().min(1).max(64),
  tenant: z.string().min(1),
  status: z.enum(['starting', 'live']),
  version: z.number().int().nonnegative(),
  /** With the secrets resolved: the edge holds them as flow configuration, never in wrangler.toml. */
  webhooks: z.strictObject({ auth: webhookAuthSchema.optional() }).default({}),
  cron: z.string().nullable().default(null),
  timezone: z.string().nullable().default(null),
  misfire: z.enum(['skip', 'run-latest']).default('skip'),
});
export type EdgeTrigger = z.infer<typeof edgeTriggerSchema>;

/**
 * What the edge refuses in a pushed trigger (one message per issue, `webhooks.auth.secret: ...`),
 * or null. The edge answers a push with it, and the control plane refuses a flow's save with the
 * same words, so a setting the edge would refuse is never saved.
 */
export function triggerProblems(trigger: unknown): string | null {
  const parsed = edgeTriggerSchema.safeParse(trigger);
  return parsed.success ? null : parsed.error.issues.map((issue) => `${issue.path.join('.') || 'trigger'}: ${issue.message}`).join('; ');
}
