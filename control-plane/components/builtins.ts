import { and, inArray, isNull, not, sql } from 'drizzle-orm';
import { BUILTIN_MODULE_PREFIX, componentCreateSchema } from '../../protocol/component.js';
import { BUILTIN_COMPONENTS, type BuiltinComponent } from '../../protocol/builtins.js';
import type { Database } from '../db/index.js';
import { components } from './schema.js';

export interface SeedResult {
  created: string[];
  updated: string[];
  removed: string[];
}

/** The advisory lock the seeding holds for its transaction (any fixed number, unique among Hookline's). */
const SEED_LOCK = 7_326_001;

/**
 * Makes the repository's built-ins (tenant null, public, no owners) exactly `builtins`: inserted
 * by their fixed ids, updated where this version's definition differs (updatedAt moves only
 * then), and built-ins this version no longer has deleted. Called at every start, after the
 * migrations; idempotent, and safe with several replicas starting at once (one transaction
 * under an advisory lock, upserts by id). It emits no events: a deploy is not anyone's change to audit.
 */
export async function seedBuiltinComponents(db: Database, builtins: readonly BuiltinComponent[] = BUILTIN_COMPONENTS): Promise<SeedResult> {
  for (const builtin of builtins) {
    const { id: _, module, ...definition } = builtin;
    // A built-in's module is its `hookline:` name, which a client may not write; the rest is checked as a client's would be.
    const checked = componentCreateSchema.safeParse({ ...definition, access: 'public' });
    if (!checked.success) throw new Error(`Built-in component ${builtin.name} is not a valid component: ${checked.error.message}`);
    if (!module.startsWith(BUILTIN_MODULE_PREFIX))
      throw new Error(`Built-in component ${builtin.name} is not a valid component: its module must be ${BUILTIN_MODULE_PREFIX}<name>`);
  }
  return db.transaction(async (tx) => {
    // Replicas starting at once seed one after another: concurrent upserts by id can still collide
    // on the unique index of built-in names, which ON CONFLICT (id) does not arbitrate.
    await tx.execute(sql`select pg_advisory_xact_lock(${SEED_LOCK})`);
    const ids = builtins.map((b) => b.id);
    const removed = await tx
      .delete(components)
      .where(and(isNull(components.tenantId), ids.length > 0 ? not(inArray(components.id, ids)) : undefined))
      .returning({ name: components.name });
    const result: SeedResult = { created: [], updated: [], removed: removed.map((r) => r.name) };
    for (const builtin of builtins) {
      const [row] = await tx
        .insert(components)
        .values({
          id: builtin.id,
          tenantId: null,
          name: builtin.name,
          description: builtin.description,
          access: 'public',
          owners: [],
          image: builtin.image,
          module: builtin.module,
          functions: builtin.functions,
        })
        .onConflictDoUpdate({
          target: components.id,
          set: {
            tenantId: sql`excluded.tenant_id`,
            name: sql`excluded.name`,
            description: sql`excluded.description`,
            access: sql`excluded.access`,
            owners: sql`excluded.owners`,
            image: sql`excluded.image`,
            module: sql`excluded.module`,
            functions: sql`excluded.functions`,
            updatedAt: sql`now()`,
          },
          // Unchanged built-ins are left alone, so a restart writes nothing and updatedAt says when the definition last changed.
          setWhere: sql`(${components.tenantId}, ${components.name}, ${components.description}, ${components.access}, ${components.owners}, ${components.image}, ${components.module}, ${components.functions})
            is distinct from (excluded.tenant_id, excluded.name, excluded.description, excluded.access, excluded.owners, excluded.image, excluded.module, excluded.functions)`,
        })
        // xmax is 0 for a row this statement inserted, set for one it updated.
        .returning({ inserted: sql<boolean>`(xmax = 0)` });
      if (row) (row.inserted ? result.created : result.updated).push(builtin.name);
    }
    return result;
  });
}
