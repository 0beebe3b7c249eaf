import { z } from 'zod';

/** Where a step message came from (elastic.io/OIH `metadata.source`). */
export const messageSourceSchema = z.object({
  name: z.string(),
  type: z.enum(['webhook', 'schedule', 'manual']),
  externalExecId: z.string(),
});

/** The message that travels between steps (elastic.io/OIH-compatible). */
export const stepMessageSchema = z.looseObject({
  id: z.string(),
  data: z.unknown(),
  attachments: z.record(z.string(), z.unknown()).default({}),
  headers: z.record(z.string(), z.unknown()).default({}),
  metadata: z.looseObject({ source: messageSourceSchema.optional() }).default({}),
  passthrough: z.record(z.string(), z.unknown()).default({}),
  // Webhook messages also carry the request's shape.
  method: z.string().optional(),
  query: z.record(z.string(), z.unknown()).optional(),
  url: z.string().optional(),
  pathSuffix: z.string().optional(),
});

export type StepMessage = z.infer<typeof stepMessageSchema>;
