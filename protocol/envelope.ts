import { z } from 'zod';

/** The seed's event envelope, plus `headers.id` so consumers can drop duplicates. */
export const eventHeadersSchema = z.looseObject({
  id: z.string().min(1, 'headers.id is required'),
  name: z.string().regex(/^[a-z0-9_-]+(\.[a-zA-Z0-9_-]+)+$/, 'headers.name must be a dotted event name such as flow.started'),
  createdAt: z.iso.datetime({ offset: true, message: 'headers.createdAt must be an ISO 8601 date-time' }),
  serviceName: z.string().min(1, 'headers.serviceName is required'),
});

export const eventEnvelopeSchema = z.object({
  headers: eventHeadersSchema,
  payload: z.record(z.string(), z.unknown()),
});

export type EventHeaders = z.infer<typeof eventHeadersSchema>;
export type EventEnvelope<P = Record<string, unknown>> = { headers: EventHeaders; payload: P };

export function createEnvelope<P extends Record<string, unknown>>(name: string, payload: P, serviceName: string): EventEnvelope<P> {
  return {
    headers: { id: crypto.randomUUID(), name, createdAt: new Date().toISOString(), serviceName },
    payload,
  };
}
