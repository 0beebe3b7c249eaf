import { and, asc, count, eq, or } from 'drizzle-orm';
import type { Owner } from '../../protocol/flow.js';
import { emit } from '../bus/outbox.js';
import type { Database } from '../db/index.js';
import { forbidden, notFound } from '../http/errors.js';
import type { Principal } from '../iam/tokens.js';
import { transact, type Services } from '../services.js';
import { domains } from './schema.js';

export const SERVICE_NAME = 'metadata';

export interface Domain {
  id: string;
  name: string;
  description: string | null;
  public: boolean;
  owners: Owner[];
  tenant: string;
  createdAt: string;
  updatedAt: string;
}

export interface DomainInput {
  name?: string;
  description?: string | null;
  public?: boolean;
  owners?: Owner[];
}

export type DomainRow = typeof domains.$inferSelect;

const toDomain = (row: DomainRow): Domain => ({
  id: row.id,
  name: row.name,
  description: row.description,
  public: row.public,
  owners: row.owners,
  tenant: row.tenantId,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** Public domains, and those of the caller's tenant; every one for holders of `all`. */
const readable = (principal: Principal) =>
  principal.isAdmin ? undefined : or(eq(domains.public, true), principal.tenantId ? eq(domains.tenantId, principal.tenantId) : undefined);

/**
 * A domain the caller may read (else 404, as if it did not exist). To write, it must be of their
 * tenant (a public domain of another is a 403), and it stays locked until the transaction ends,
 * so that schema changes within one domain (reference checks) never interleave.
 */
export async function findDomain(db: Database, principal: Principal, id: string, access: 'read' | 'write'): Promise<DomainRow> {
  const query = db
    .select()
    .from(domains)
    .where(and(eq(domains.id, id), readable(principal)));
  const [row] = access === 'write' ? await query.for('update') : await query;
  if (!row) throw notFound(`No domain ${id} that you may see`);
  if (access === 'write' && !principal.isAdmin && row.tenantId !== principal.tenantId) {
    throw forbidden(`Domain ${id} belongs to another tenant: it is public, so you may read it, not change it`);
  }
  return row;
}

/** Owners as given, plus those that must be there, each once. */
function withOwners(given: Owner[] | undefined, ...required: Owner[]): Owner[] {
  const owners: Owner[] = [];
  for (const owner of [...(given ?? []), ...required]) {
    if (!owners.some((o) => o.id === owner.id && o.type === owner.type)) owners.push(owner);
  }
  return owners;
}

export async function listDomains(
  db: Database,
  principal: Principal,
  query: { limit: number; offset: number },
): Promise<{ domains: Domain[]; total: number }> {
  const where = readable(principal);
  const [rows, [counted]] = await Promise.all([
    db.select().from(domains).where(where).orderBy(asc(domains.name), asc(domains.id)).limit(query.limit).offset(query.offset),
    db.select({ total: count() }).from(domains).where(where),
  ]);
  return { domains: rows.map(toDomain), total: counted?.total ?? 0 };
}

export async function getDomain(db: Database, principal: Principal, id: string): Promise<Domain> {
  return toDomain(await findDomain(db, principal, id, 'read'));
}

/** The domain belongs to the caller's tenant; the caller and the tenant are among its owners. */
export async function createDomain(services: Services, principal: Principal, input: DomainInput & { name: string }): Promise<Domain> {
  const tenantId = principal.tenantId;
  if (!tenantId) throw forbidden('Your account belongs to no tenant, and a domain belongs to one');
  return transact(services, async (tx) => {
    const [row] = await tx
      .insert(domains)
      .values({
        name: input.name,
        description: input.description ?? null,
        public: input.public ?? false,
        owners: withOwners(input.owners, { id: principal.userId, type: 'user' }, { id: tenantId, type: 'tenant' }),
        tenantId,
      })
      .returning();
    await emit(tx, SERVICE_NAME, 'metadata.domain.created', { id: row!.id, tenant: tenantId, user: principal.userId });
    return toDomain(row!);
  });
}

/** Changes the fields given (OIH's PUT); the tenant stays among the owners. */
export async function updateDomain(services: Services, principal: Principal, id: string, input: DomainInput): Promise<Domain> {
  return transact(services, async (tx) => {
    const row = await findDomain(tx, principal, id, 'write');
    const owners = input.owners && withOwners(input.owners, { id: row.tenantId, type: 'tenant' });
    const [updated] = await tx
      .update(domains)
      .set({ ...input, owners, updatedAt: new Date() })
      .where(eq(domains.id, id))
      .returning();
    await emit(tx, SERVICE_NAME, 'metadata.domain.modified', { id, tenant: row.tenantId, user: principal.userId });
    return toDomain(updated!);
  });
}

/** Deletes the domain with its schemas. */
export async function deleteDomain(services: Services, principal: Principal, id: string): Promise<void> {
  await transact(services, async (tx) => {
    const row = await findDomain(tx, principal, id, 'write');
    await tx.delete(domains).where(eq(domains.id, id));
    await emit(tx, SERVICE_NAME, 'metadata.domain.deleted', { id, tenant: row.tenantId, user: principal.userId });
  });
}
