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

/** A recorded payload (an output, a failing input) larger than this as JSON is replaced by a preview. */
export const MAX_RECORDED_PAYLOAD_BYTES = 16 * 1024;
const PREVIEW_CHARS = 1024;
const encoder = new TextEncoder();

/** A payload as execution records keep it: itself, or when too large `{ truncated: true, bytes, preview }` with the start of its JSON. */
export function capPayload(value: unknown): unknown {
  if (value === undefined) return null;
  const capped = capSerialized(value, JSON.stringify(value));
  return capped instanceof Serialized ? capped.value : capped;
}

/**
 * A recorded payload whose JSON is at hand: serializeResult writes `json` as it is instead of
 * serializing the value again (a step's outputs are serialized once, to be published). Anything
 * else that serializes it gets the value (toJSON).
 */
export class Serialized {
  constructor(
    readonly value: unknown,
    readonly json: string,
  ) {}

  toJSON(): unknown {
    return this.value;
  }
}

/** capPayload for a value whose JSON is at hand already: the value kept with its JSON, or the preview. */
export function capSerialized(value: unknown, json: string): Serialized | { truncated: true; bytes: number; preview: string } {
  // A UTF-16 unit is at most 3 bytes of UTF-8: short JSON needs no counting.
  if (json.length * 3 <= MAX_RECORDED_PAYLOAD_BYTES) return new Serialized(value, json);
  const bytes = encoder.encode(json).length;
  return bytes <= MAX_RECORDED_PAYLOAD_BYTES
    ? new Serialized(value, json)
    : { truncated: true, bytes, preview: json.slice(0, PREVIEW_CHARS) };
}
