import { z } from 'zod';
import { and, asc, count, desc, eq, gte, like, lt, type SQL } from 'drizzle-orm';
import { eventEnvelopeSchema, type EventEnvelope, type EventHeaders } from '../../protocol/envelope.js';
import { EVENTS, payloadSchemaFor } from '../../protocol/events.js';
import { escapeLike, type Database } from '../db/index.js';
import { tenantScope } from '../http/auth.js';
import { ApiError, badRequest, conflict, describeIssue, forbidden } from '../http/errors.js';
import type { Principal } from '../iam/tokens.js';
import { auditRecords, type RecordOrigin } from './schema.js';

/** The name the audit log consumes as. */
export const SERVICE_NAME = 'audit-log';

/** The serviceNames of Hookline's own services (each module's SERVICE_NAME): no pushed record may carry one. */
export const SYSTEM_SERVICES: readonly string[] = [
  'audit-log',
  'components',
  'edge-bridge',
  'executions',
  'fleet',
  'flow-repository',
  'iam',
  'metadata',
  'secrets',
];

/** The namespaces of the events Hookline publishes (flow, flowrepo, iam, secrets, ...): no pushed record may take a name in one. */
export const SYSTEM_NAMESPACES: readonly string[] = [...new Set(Object.keys(EVENTS).map((name) => name.split('.')[0]!))];

type AuditRow = typeof auditRecords.$inferSelect;

export interface AuditRecord {
  id: string;
  headers: EventHeaders;
  payload: Record<string, unknown>;
  tenant: string | null;
  receivedAt: string;
  origin: RecordOrigin;
  pushedBy: string | null;
}

export function toRecord(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    headers: row.headers,
    payload: row.payload,
    tenant: row.tenantId,
    receivedAt: row.receivedAt.toISOString(),
    origin: row.origin,
    pushedBy: row.pushedBy,
  };
}

/** An envelope that breaks the envelope schema or its event's payload schema: one message per broken rule. */
export class InvalidRecordError extends ApiError {
  constructor(readonly problems: string[]) {
    super(400, problems.join('; '), 'validation_error');
  }
}

const tenantId = z.guid();

const messageOf = (issue: z.core.$ZodIssue, prefix: string[]) => {
  const located = { ...issue, path: [...prefix, ...issue.path] };
  const where = located.path.map(String).join('.');
  // The envelope schema's own messages already name their field ("headers.id is required").
  return issue.message.startsWith(where) ? issue.message : describeIssue(located, 'envelope');
};

/** Checks an envelope against the envelope schema and, for a known event name, its payload schema. */
export function checkEnvelope(raw: unknown): EventEnvelope {
  const envelope = eventEnvelopeSchema.safeParse(raw);
  if (!envelope.success) throw new InvalidRecordError(envelope.error.issues.map((issue) => messageOf(issue, [])));
  const { headers, payload } = envelope.data;
  const problems: string[] = [];
  const payloadCheck = payloadSchemaFor(headers.name)?.safeParse(payload);
  if (payloadCheck && !payloadCheck.success) {
    problems.push(...payloadCheck.error.issues.map((issue) => `${headers.name}: ${messageOf(issue, ['payload'])}`));
  }
  if (payload.tenant != null && !tenantId.safeParse(payload.tenant).success) {
    problems.push('payload.tenant: must be a tenant id (a UUID) or null');
  }
  if (problems.length > 0) throw new InvalidRecordError(problems);
  return envelope.data;
}

/** The user an event is about or was caused by, as the lifecycle, flow repository and IAM events name them. */
function userOf(payload: Record<string, unknown>): string | null {
  const candidates = [payload.user, payload.startedBy, payload.stoppedBy];
  return (candidates.find((value) => typeof value === 'string' && value.length > 0) as string | undefined) ?? null;
}

/**
 * Stores a checked envelope once, as pushed by `pushedBy` or, when null, as an event; returns null
 * when a record with its event id exists already (a redelivery, or a second push of the same id).
 */
export async function storeRecord(
  db: Database,
  envelope: EventEnvelope,
  tenant: string | null,
  pushedBy: string | null = null,
): Promise<AuditRecord | null> {
  const [row] = await db
    .insert(auditRecords)
    .values({
      eventId: envelope.headers.id,
      name: envelope.headers.name,
      serviceName: envelope.headers.serviceName,
      createdAt: new Date(envelope.headers.createdAt),
      tenantId: tenant,
      userId: userOf(envelope.payload),
      headers: envelope.headers,
      payload: envelope.payload,
      origin: pushedBy === null ? 'event' : 'pushed',
      pushedBy,
    })
    .onConflictDoNothing({ target: auditRecords.eventId })
    .returning();
  return row ? toRecord(row) : null;
}

/** Records an event from the bus under the tenant its payload names. */
export async function recordEvent(db: Database, raw: unknown): Promise<AuditRecord | null> {
  const envelope = checkEnvelope(raw);
  const tenant = typeof envelope.payload.tenant === 'string' ? envelope.payload.tenant : null;
  return storeRecord(db, envelope, tenant);
}

export type PushedEnvelope = { headers: Omit<EventEnvelope['headers'], 'id'> & { id?: string }; payload: Record<string, unknown> };

/** A pushed record may not pose as one of Hookline's own: neither their names nor their services, whoever pushes it. */
function refuseSystemLookalike({ headers }: EventEnvelope): void {
  const namespace = headers.name.split('.')[0]!;
  if (SYSTEM_NAMESPACES.includes(namespace)) {
    throw badRequest(
      `headers.name: ${namespace}.* names are Hookline's own events, which only Hookline records; push under audit.* or a namespace of your own`,
    );
  }
  if (SYSTEM_SERVICES.includes(headers.serviceName)) {
    throw badRequest(
      `headers.serviceName: ${headers.serviceName} is a Hookline service, whose events only Hookline records; name your own service`,
    );
  }
}

/**
 * POST /logs: the record belongs to the caller's tenant and is marked pushed by the caller. A
 * tenant's user may name only their own tenant in payload.tenant (another one is a 403); holders
 * of `all` may name any tenant, or null.
 */
export async function pushRecord(db: Database, principal: Principal, pushed: PushedEnvelope): Promise<AuditRecord> {
  const scope = tenantScope(principal);
  const envelope = checkEnvelope({ ...pushed, headers: { ...pushed.headers, id: pushed.headers.id ?? crypto.randomUUID() } });
  refuseSystemLookalike(envelope);
  const claimed = envelope.payload.tenant as string | null | undefined;
  if (scope !== null && claimed !== undefined && claimed !== scope) {
    throw forbidden(`payload.tenant: you may push records only into your own tenant (${scope}); leave it out or set it to your tenant`);
  }
  const tenant = scope ?? (claimed === undefined ? principal.tenantId : claimed);
  const stored = await storeRecord(db, envelope, tenant, principal.userId);
  if (!stored) throw conflict(`An audit record with headers.id ${envelope.headers.id} exists already`);
  return stored;
}

export interface AuditQuery {
  service?: string;
  origin?: RecordOrigin;
  pushedBy?: string;
  /** An exact event name, or a prefix ending in `*`. */
  name?: string;
  from?: Date;
  to?: Date;
  sort: { field: 'createdAt'; descending: boolean };
  limit: number;
  offset: number;
}

function nameCondition(name: string): SQL {
  return name.endsWith('*') ? like(auditRecords.name, `${escapeLike(name.slice(0, -1))}%`) : eq(auditRecords.name, name);
}

/** The records the caller may see (their tenant's; every tenant's for holders of `all`), filtered, sorted by the event's createdAt and paged. */
export async function listRecords(
  db: Database,
  principal: Principal,
  query: AuditQuery,
): Promise<{ records: AuditRecord[]; total: number }> {
  const scope = tenantScope(principal);
  const where = and(
    scope === null ? undefined : eq(auditRecords.tenantId, scope),
    query.service ? eq(auditRecords.serviceName, query.service) : undefined,
    query.origin ? eq(auditRecords.origin, query.origin) : undefined,
    query.pushedBy ? eq(auditRecords.pushedBy, query.pushedBy) : undefined,
    query.name ? nameCondition(query.name) : undefined,
    query.from ? gte(auditRecords.createdAt, query.from) : undefined,
    query.to ? lt(auditRecords.createdAt, query.to) : undefined,
  );
  const direction = query.sort.descending ? desc : asc;
  const [rows, [counted]] = await Promise.all([
    db
      .select()
      .from(auditRecords)
      .where(where)
      .orderBy(direction(auditRecords.createdAt), direction(auditRecords.receivedAt), direction(auditRecords.id))
      .limit(query.limit)
      .offset(query.offset),
    db.select({ total: count() }).from(auditRecords).where(where),
  ]);
  return { records: rows.map(toRecord), total: counted?.total ?? 0 };
}
