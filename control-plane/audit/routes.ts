import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { guard, type AppEnv } from '../http/auth.js';
import { errorBody, validationHook } from '../http/errors.js';
import { bodyErrors, conflictError, errors, json, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery, sortQuery } from '../http/paging.js';
import { InvalidRecordError, listRecords, pushRecord, SYSTEM_NAMESPACES, SYSTEM_SERVICES } from './service.js';

const auditRecord = z
  .object({
    id: z.uuid(),
    headers: z.looseObject({ id: z.string(), name: z.string(), createdAt: z.string(), serviceName: z.string() }),
    payload: z.record(z.string(), z.unknown()),
    tenant: z.string().nullable().openapi({ description: 'The tenant the record belongs to; null for events about no tenant' }),
    receivedAt: z.string().openapi({ format: 'date-time', description: 'When the audit log stored it' }),
    origin: z.enum(['event', 'pushed']).openapi({
      description: 'event: Hookline published it; pushed: a caller sent it to POST /logs (its headers are what the caller said)',
    }),
    pushedBy: z.string().nullable().openapi({ description: 'The user or service account that pushed it; null for events' }),
  })
  .openapi('AuditRecord');
const recordResponse = z.object({ data: auditRecord }).openapi('AuditRecordResponse');
const recordListResponse = z.object({ data: z.array(auditRecord), meta: pageMetaSchema }).openapi('AuditRecordList');

const pushBody = z
  .strictObject({
    headers: z.strictObject({
      id: z.string().min(1).max(200).optional().openapi({ description: 'Unique event id; generated when left out' }),
      name: z.string().max(200).openapi({ description: 'A dotted event name, such as audit.user.exported' }),
      createdAt: z.string().openapi({ format: 'date-time', description: 'When the event happened (ISO 8601 with offset)' }),
      serviceName: z.string().max(200).openapi({ description: 'The service that reports the event' }),
    }),
    payload: z.record(z.string(), z.unknown()),
  })
  .openapi('AuditPush');

const dateTime = (meaning: string) =>
  z.iso
    .datetime({ offset: true, message: 'must be an ISO 8601 date-time with a zone, such as 2024-05-01T12:00:00Z' })
    .transform((value) => new Date(value))
    .optional()
    .openapi({ description: meaning });

const listQuery = z
  .strictObject({
    ...pagingQuery,
    'filter[service]': z.string().min(1).max(200).optional().openapi({ description: 'Only events of this serviceName' }),
    'filter[origin]': z
      .enum(['event', 'pushed'])
      .optional()
      .openapi({ description: 'Only what Hookline published (event), or only what callers pushed (pushed)' }),
    'filter[pushedBy]': z.string().min(1).max(200).optional().openapi({ description: 'Only records this user or service account pushed' }),
    'filter[name]': z
      .string()
      .regex(/^[A-Za-z0-9_.-]+\*?$/, 'must be an event name, or a prefix ending in * such as flow.*')
      .optional()
      .openapi({ description: 'An event name, or a prefix ending in * (flow.* matches flow.started)' }),
    'filter[from]': dateTime('Only events created at or after this time'),
    'filter[to]': dateTime('Only events created before this time'),
    sort: sortQuery(['createdAt'], '-createdAt').openapi({
      description: "createdAt (oldest first) or -createdAt (newest first, the default): the event's headers.createdAt",
    }),
  })
  // Runs on the raw strings too when a date is malformed, so it compares only dates it could read.
  .refine(({ 'filter[from]': from, 'filter[to]': to }) => !(from instanceof Date && to instanceof Date) || from <= to, {
    message: 'filter[from] must not be later than filter[to]',
  });

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['audit'],
  summary: 'Read the audit log',
  description:
    "Your tenant's records (holders of `all`: every tenant's), filtered, sorted by the event's createdAt and paged; totals count the filtered records.",
  security,
  middleware: guard('logs.read'),
  request: { query: listQuery },
  responses: { 200: json(recordListResponse, 'A page of records'), ...errors },
});

const push = createRoute({
  method: 'post',
  path: '/',
  tags: ['audit'],
  summary: 'Add a record to the audit log',
  description: `One event envelope, stored with \`origin: pushed\` and \`pushedBy\` you. The record belongs to your tenant: payload.tenant may be left out or name your tenant, any other is a 403 (holders of \`all\` may name any tenant). A name in the namespaces of Hookline's own events (${SYSTEM_NAMESPACES.map((namespace) => `${namespace}.*`).join(', ')}) or the serviceName of one of its services (${SYSTEM_SERVICES.join(', ')}) is a 400: a pushed record cannot pose as one of Hookline's.`,
  security,
  middleware: guard('logs.push'),
  request: { body: { required: true, content: { 'application/json': { schema: pushBody } } } },
  responses: {
    201: json(recordResponse, 'The record as stored'),
    ...errors,
    ...conflictError('A record with that headers.id exists already'),
    ...bodyErrors,
  },
});

/** The audit log: `GET /logs` and `POST /logs`. */
export function auditRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      const paging = page(query);
      const { records, total } = await listRecords(c.get('services').db, c.get('principal'), {
        service: query['filter[service]'],
        origin: query['filter[origin]'],
        pushedBy: query['filter[pushedBy]'],
        name: query['filter[name]'],
        from: query['filter[from]'],
        to: query['filter[to]'],
        sort: query.sort,
        limit: paging.limit,
        offset: paging.offset,
      });
      return c.json({ data: records, meta: paging.meta(total) }, 200);
    })
    .openapi(push, async (c) => {
      try {
        const record = await pushRecord(c.get('services').db, c.get('principal'), c.req.valid('json'));
        return c.json({ data: record }, 201);
      } catch (error) {
        if (!(error instanceof InvalidRecordError)) throw error;
        return c.json(errorBody(...error.problems.map((message) => ({ message, code: 'validation_error' }))), 400);
      }
    });
}
