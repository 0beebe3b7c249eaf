import { PoisonEventError, type EventHandler } from '../bus/types.js';
import type { Services } from '../services.js';
import { InvalidRecordError, recordEvent, SERVICE_NAME } from './service.js';

/**
 * What the audit log keeps. Not flow.executed: one per webhook call would flood it. `secrets.#`
 * matches what the secret service publishes (OIH's audit log listened for `secret-service.*`, which nothing sends).
 */
export const AUDITED_EVENTS = [
  'audit.#',
  'flow.starting',
  'flow.started',
  'flow.stopping',
  'flow.stopped',
  'flow.failed',
  'flowrepo.#',
  'components.#',
  'iam.#',
  'secrets.#',
] as const;

/** Stores every audited event once; an envelope or payload that breaks its schema is dead-lettered, not stored. */
export async function subscribeAuditLog(services: Services) {
  const record: EventHandler = async (event) => {
    try {
      await recordEvent(services.db, event);
    } catch (error) {
      if (error instanceof InvalidRecordError) throw new PoisonEventError(`audit record refused: ${error.message}`);
      throw error;
    }
  };
  await services.bus.subscribe(SERVICE_NAME, Object.fromEntries(AUDITED_EVENTS.map((pattern) => [pattern, record])));
}
