import { createHash } from 'node:crypto';

/**
 * Ids derived from the input they stem from: a worker that processes an input again (it died
 * before its ack) produces the same result id, output ids and delivery ids, so the control plane
 * applies nothing twice. Shaped as a UUID.
 */
export function derivedId(...parts: (string | number)[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
