import { z } from 'zod';

/**
 * How a flow's webhook authenticates its callers (`flowSettings.webhooks.auth`):
 * - `hmac`: OIH's style, an HMAC of the raw body in a header (`sha256=<hex>` by default, as GitHub sends it);
 * - `standard-webhooks`: the Standard Webhooks spec (webhook-id, webhook-timestamp, webhook-signature;
 *   several secrets for key rotation, a timestamp tolerance);
 * - `bearer`: `Authorization: Bearer <token>`.
 */
export const webhookAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hmac'),
    secret: z.string().min(16).max(1000),
    header: z.string().min(1).max(100).default('x-hub-signature-256'),
    algorithm: z.enum(['sha1', 'sha256', 'sha512']).default('sha256'),
    encoding: z.enum(['hex', 'base64']).default('hex'),
    /** Text before the digest in the header, such as `sha256=`. */
    prefix: z.string().max(50).default('sha256='),
  }),
  z.strictObject({
    type: z.literal('standard-webhooks'),
    /** `whsec_<base64>` secrets; every one is tried, so a new one can be added before the old one goes. */
    secrets: z.array(z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must be whsec_<base64>')).min(1).max(5),
    toleranceSeconds: z.number().int().min(1).max(3600).default(300),
  }),
  z.strictObject({ type: z.literal('bearer'), token: z.string().min(16).max(1000) }),
]);
export type WebhookAuth = z.infer<typeof webhookAuthSchema>;

export const webhookSettingsSchema = z.strictObject({ auth: webhookAuthSchema.optional() });
export type WebhookSettings = z.infer<typeof webhookSettingsSchema>;

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
  webhooks: webhookSettingsSchema.default({}),
  cron: z.string().nullable().default(null),
  timezone: z.string().nullable().default(null),
  misfire: z.enum(['skip', 'run-latest']).default('skip'),
});
export type EdgeTrigger = z.infer<typeof edgeTriggerSchema>;
