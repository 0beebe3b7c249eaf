import { and, asc, count, eq, inArray, or, sql } from 'drizzle-orm';
import { isUniqueViolation, type Database } from '../db/index.js';
import { badRequest, conflict, notFound } from '../http/errors.js';
import type { Principal } from '../iam/tokens.js';
import { transact, type Services } from '../services.js';
import type { ArchiveFile } from './archive.js';
import { findDomain } from './domains.service.js';
import {
  compile,
  describeErrors,
  referencedUrls,
  schemaUrl,
  URI_PATTERN,
  URI_RULE,
  uriFromId,
  uriOf,
  validators,
  withId,
  type JsonSchema,
  type ValidationError,
} from './json-schema.js';
import { domains, schemas } from './schema.js';

export interface Schema {
  id: string;
  domainId: string;
  uri: string;
  name: string;
  description: string | null;
  value: JsonSchema;
  refs: string[];
  tenant: string;
  createdAt: string;
  updatedAt: string;
}

export interface SchemaInput {
  name?: string;
  description?: string;
  value: JsonSchema;
}

type SchemaRow = typeof schemas.$inferSelect;

const toSchema = (row: SchemaRow): Schema => ({
  id: row.id,
  domainId: row.domainId,
  uri: row.uri,
  name: row.name,
  description: row.description,
  value: row.value,
  refs: row.refs,
  tenant: row.tenantId,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** Where the repository serves schemas: PUBLIC_URL, or the origin the request came to. */
type Base = string;

/** What one schema is stored as, and how errors about it name it (`value` or an archive's file). */
interface Prepared {
  uri: string;
  name: string;
  description: string | null;
  value: JsonSchema;
  refs: string[];
  where: string;
}

function prepare(base: Base, domainId: string, uri: string, input: SchemaInput, where: string): Prepared {
  const id = schemaUrl(base, domainId, uri);
  const value = withId(input.value, id);
  const prefix = schemaUrl(base, domainId, '');
  const refs = referencedUrls(value, id).map(({ ref, url }) => {
    if (!url.startsWith(prefix))
      throw badRequest(
        `${where}: $ref ${JSON.stringify(ref)} points outside this domain (${url}); only schemas of the same domain can be referenced`,
      );
    return url;
  });
  const title = typeof input.value.title === 'string' ? input.value.title : undefined;
  return { uri, name: input.name ?? title ?? uri, description: input.description ?? null, value, refs, where };
}

/** `start` and every schema it references, directly or not, among `rows` of the domain. */
function closure<R extends { uri: string; refs: string[] }>(rows: R[], domainId: string, start: R): R[] {
  const byUri = new Map(rows.map((row) => [row.uri, row]));
  const seen = new Map([[start.uri, start]]);
  for (const row of seen.values()) {
    for (const ref of row.refs) {
      const dep = byUri.get(uriOf(ref, domainId) ?? '');
      if (dep && !seen.has(dep.uri)) seen.set(dep.uri, dep);
    }
  }
  return [...seen.values()];
}

/** After writing: every ref of the written schemas names a schema of the domain, and each compiles with what it references. */
async function check(tx: Database, base: Base, domainId: string, written: Prepared[]): Promise<void> {
  const rows = await tx
    .select({ uri: schemas.uri, value: schemas.value, refs: schemas.refs })
    .from(schemas)
    .where(eq(schemas.domainId, domainId));
  const uris = new Set(rows.map((row) => row.uri));
  for (const schema of written) {
    for (const ref of schema.refs) {
      const uri = uriOf(ref, domainId)!;
      if (!uris.has(uri))
        throw badRequest(`${schema.where}: $ref to ${uri}, which is not a schema of this domain; add it first, or import both together`);
    }
    const row = rows.find((candidate) => candidate.uri === schema.uri)!;
    compile(base, domainId, row, closure(rows, domainId, row), schema.where);
  }
}

const columns = ({ uri, name, description, value, refs }: Prepared) => ({ uri, name, description, value, refs });

const missing = (domainId: string, uri: string) => notFound(`No schema ${uri} in domain ${domainId}`);

async function findSchema(db: Database, domainId: string, uri: string): Promise<SchemaRow> {
  const [row] = await db
    .select()
    .from(schemas)
    .where(and(eq(schemas.domainId, domainId), eq(schemas.uri, uri)));
  if (!row) throw missing(domainId, uri);
  return row;
}

export async function listSchemas(
  db: Database,
  principal: Principal,
  domainId: string,
  query: { limit: number; offset: number },
): Promise<{ schemas: Schema[]; total: number }> {
  await findDomain(db, principal, domainId, 'read');
  const where = eq(schemas.domainId, domainId);
  const [rows, [counted]] = await Promise.all([
    db.select().from(schemas).where(where).orderBy(asc(schemas.uri)).limit(query.limit).offset(query.offset),
    db.select({ total: count() }).from(schemas).where(where),
  ]);
  return { schemas: rows.map(toSchema), total: counted?.total ?? 0 };
}

export async function getSchema(db: Database, principal: Principal, domainId: string, uri: string): Promise<Schema> {
  await findDomain(db, principal, domainId, 'read');
  return toSchema(await findSchema(db, domainId, uri));
}

/** The uri is `input.uri`, else the path of the schema's own `$id`. */
export async function createSchema(
  services: Services,
  principal: Principal,
  base: Base,
  domainId: string,
  input: SchemaInput & { uri?: string },
): Promise<Schema> {
  return transact(services, async (tx) => {
    const domain = await findDomain(tx, principal, domainId, 'write');
    const schema = prepare(base, domainId, input.uri ?? uriFromId(input.value), input, 'value');
    const [row] = await tx
      .insert(schemas)
      .values({ ...columns(schema), domainId, tenantId: domain.tenantId })
      .returning()
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? conflict(`Domain ${domainId} has a schema ${schema.uri} already; PUT to change it`) : error;
      });
    await check(tx, base, domainId, [schema]);
    return toSchema(row!);
  });
}

/** Replaces a schema's name, description and value; its uri and `$id` stay. */
export async function updateSchema(
  services: Services,
  principal: Principal,
  base: Base,
  domainId: string,
  uri: string,
  input: SchemaInput,
): Promise<Schema> {
  return transact(services, async (tx) => {
    await findDomain(tx, principal, domainId, 'write');
    const existing = await findSchema(tx, domainId, uri);
    const schema = prepare(base, domainId, uri, input, 'value');
    const [row] = await tx
      .update(schemas)
      .set({ name: schema.name, description: schema.description, value: schema.value, refs: schema.refs, updatedAt: new Date() })
      .where(eq(schemas.id, existing.id))
      .returning();
    await check(tx, base, domainId, [schema]);
    return toSchema(row!);
  });
}

/** Refused (409) while other schemas of the domain reference it: their refs would dangle. */
export async function deleteSchema(services: Services, principal: Principal, domainId: string, uri: string): Promise<void> {
  await transact(services, async (tx) => {
    await findDomain(tx, principal, domainId, 'write');
    const existing = await findSchema(tx, domainId, uri);
    const rows = await tx
      .select({ uri: schemas.uri, refs: schemas.refs })
      .from(schemas)
      .where(eq(schemas.domainId, domainId))
      .orderBy(asc(schemas.uri));
    const referrers = rows.filter((row) => row.uri !== uri && row.refs.some((ref) => uriOf(ref, domainId) === uri)).map((row) => row.uri);
    if (referrers.length > 0) throw conflict(`${uri} is referenced by ${referrers.join(', ')}; change or delete those first`);
    await tx.delete(schemas).where(eq(schemas.id, existing.id));
    validators.forget(existing.id);
  });
}

function parseFile(file: ArchiveFile): JsonSchema {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.bytes));
  } catch (error) {
    throw badRequest(`${file.path}: not valid JSON (${(error as Error).message})`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw badRequest(`${file.path}: a JSON Schema must be an object`);
  return value as JsonSchema;
}

/**
 * Imports every `*.json` of an archive, its path in the archive being its uri; a schema of the same
 * uri is replaced. One transaction: the first bad file fails the import and nothing changes.
 */
export async function importSchemas(
  services: Services,
  principal: Principal,
  base: Base,
  domainId: string,
  files: ArchiveFile[],
): Promise<Schema[]> {
  return transact(services, async (tx) => {
    const domain = await findDomain(tx, principal, domainId, 'write');
    const seen = new Set<string>();
    const prepared = files.map((file) => {
      if (!URI_PATTERN.test(file.path)) throw badRequest(`${file.path}: the path ${URI_RULE}`);
      if (seen.has(file.path)) throw badRequest(`${file.path}: the archive holds it twice`);
      seen.add(file.path);
      const value = parseFile(file);
      const description = typeof value.description === 'string' ? value.description : undefined;
      return prepare(base, domainId, file.path, { value, description }, file.path);
    });
    const rows = await tx
      .insert(schemas)
      .values(prepared.map((schema) => ({ ...columns(schema), domainId, tenantId: domain.tenantId })))
      .onConflictDoUpdate({
        target: [schemas.domainId, schemas.uri],
        set: {
          name: sql`excluded.name`,
          description: sql`excluded.description`,
          value: sql`excluded.value`,
          refs: sql`excluded.refs`,
          updatedAt: new Date(),
        },
      })
      .returning();
    await check(tx, base, domainId, prepared);
    return rows.map(toSchema).sort((a, b) => a.uri.localeCompare(b.uri));
  });
}

/**
 * A step's output schema as the runner fleet ships it to a worker: the schema and every one it
 * references, keyed by `$id` (set from `base`). Null when the tenant may not read the domain
 * (its own, or a public one) or it has no such schema.
 */
export async function outputSchemaBundle(
  db: Database,
  base: Base,
  tenantId: string,
  domainId: string,
  uri: string,
): Promise<{ id: string; schemas: Record<string, JsonSchema> } | null> {
  const [domain] = await db
    .select({ id: domains.id })
    .from(domains)
    .where(and(eq(domains.id, domainId), or(eq(domains.tenantId, tenantId), eq(domains.public, true))));
  if (!domain) return null;
  const rows = await db
    .select({ uri: schemas.uri, value: schemas.value, refs: schemas.refs })
    .from(schemas)
    .where(eq(schemas.domainId, domainId));
  const target = rows.find((row) => row.uri === uri);
  if (!target) return null;
  const bundle: Record<string, JsonSchema> = {};
  for (const row of closure(rows, domainId, target))
    bundle[schemaUrl(base, domainId, row.uri)] = withId(row.value, schemaUrl(base, domainId, row.uri));
  return { id: schemaUrl(base, domainId, uri), schemas: bundle };
}

export type Validation = { valid: true } | { valid: false; errors: ValidationError[] };

/** Validates `document` against a schema, with the validator compiled once per version of the schema and what it references. */
export async function validateDocument(
  db: Database,
  principal: Principal,
  base: Base,
  domainId: string,
  uri: string,
  document: unknown,
): Promise<Validation> {
  await findDomain(db, principal, domainId, 'read');
  const rows = await db
    .select({ id: schemas.id, uri: schemas.uri, refs: schemas.refs, updatedAt: schemas.updatedAt })
    .from(schemas)
    .where(eq(schemas.domainId, domainId));
  const target = rows.find((row) => row.uri === uri);
  if (!target) throw missing(domainId, uri);
  const needed = closure(rows, domainId, target);
  const fingerprint = [base, ...needed.map((row) => `${row.id}@${row.updatedAt.getTime()}`).sort()].join(' ');
  let validate = validators.get(target.id, fingerprint);
  if (!validate) {
    const sources = await db
      .select({ uri: schemas.uri, value: schemas.value })
      .from(schemas)
      .where(
        inArray(
          schemas.id,
          needed.map((row) => row.id),
        ),
      );
    validate = compile(base, domainId, sources.find((source) => source.uri === uri)!, sources);
    validators.set(target.id, fingerprint, validate);
  }
  return validate(document) ? { valid: true } : { valid: false, errors: describeErrors(validate.errors) };
}
