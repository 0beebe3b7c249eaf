import { eq } from 'drizzle-orm';
import { auditRecords } from '../../control-plane/audit/schema.js';
import type { MemoryBus } from '../../control-plane/bus/memory.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import type { TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';

/** The stored rows of one event id (0 or 1 of them). */
export const recordsOf = (cp: TestControlPlane, eventId: string) =>
  cp.services.db.select().from(auditRecords).where(eq(auditRecords.eventId, eventId));

export const recordsOfService = (cp: TestControlPlane, serviceName: string) =>
  cp.services.db.select().from(auditRecords).where(eq(auditRecords.serviceName, serviceName));

/** Waits until the audit log has stored `eventId` and returns its row. */
export async function storedRecord(cp: TestControlPlane, eventId: string) {
  const rows = await waitFor(
    () => recordsOf(cp, eventId),
    (found) => found.length === 1,
  );
  return rows[0]!;
}

/** Publishes an envelope on the control plane's bus, as another service would. */
export async function publish(
  cp: TestControlPlane,
  name: string,
  payload: Record<string, unknown>,
  serviceName = 'test-publisher',
): Promise<EventEnvelope> {
  const event = createEnvelope(name, payload, serviceName);
  await cp.services.bus.publish(event);
  return event;
}

/** The events the audit log dead-lettered (the in-process bus keeps them in a list). */
export const auditDeadLetters = (cp: TestControlPlane) =>
  (cp.services.bus as MemoryBus).deadLetters.filter((letter) => letter.service === 'audit-log');

/** Waits until the audit log has dead-lettered `eventId` and returns why. */
export async function deadLettered(cp: TestControlPlane, eventId: string): Promise<string> {
  const [letter] = await waitFor(
    async () => auditDeadLetters(cp).filter((l) => l.event.headers.id === eventId),
    (found) => found.length === 1,
  );
  return letter!.error;
}

/** An envelope for POST /logs; `headers` and the payload replace the defaults. */
export const pushed = (headers: Record<string, unknown> = {}, payload: Record<string, unknown> = { action: 'exported' }) => ({
  headers: { name: 'audit.report.exported', createdAt: '2024-03-01T10:00:00.000Z', serviceName: 'reports', ...headers },
  payload,
});
