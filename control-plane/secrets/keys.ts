import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { eq, ne } from 'drizzle-orm';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import { open, seal } from './crypto.js';
import { dataKeys } from './schema.js';

export interface MasterKey {
  id: string;
  key: Buffer;
}

const parse = (spec: string): MasterKey => {
  const [id, base64] = spec.split(':') as [string, string];
  return { id, key: Buffer.from(base64, 'base64') };
};

/**
 * The current master key (SECRETS_MASTER_KEY, else one generated once into SECRETS_MASTER_KEY_FILE)
 * and the former ones that may still unwrap data keys.
 */
export function loadMasterKeys(config: Pick<Config, 'SECRETS_MASTER_KEY' | 'SECRETS_OLD_MASTER_KEYS' | 'SECRETS_MASTER_KEY_FILE'>): {
  current: MasterKey;
  former: MasterKey[];
} {
  const former = (config.SECRETS_OLD_MASTER_KEYS ?? []).map(parse);
  if (config.SECRETS_MASTER_KEY) return { current: parse(config.SECRETS_MASTER_KEY), former };
  const file = config.SECRETS_MASTER_KEY_FILE;
  try {
    return { current: parse(readFileSync(file, 'utf8').trim()), former };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dirname(file), { recursive: true });
  try {
    // 'wx': of two processes starting at once, one writes and both read the same key.
    writeFileSync(file, `local:${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return { current: parse(readFileSync(file, 'utf8').trim()), former };
}

const context = (tenantId: string) => `data-key:${tenantId}`;

/** Per-tenant data keys: created on first use, wrapped by the master key, cached unwrapped in memory. */
export class KeyRing {
  private readonly masters: Map<string, Buffer>;
  private readonly cache = new Map<string, Buffer>();

  constructor(private readonly master: { current: MasterKey; former: MasterKey[] }) {
    this.masters = new Map([...master.former, master.current].map((m) => [m.id, m.key]));
  }

  get currentMasterKeyId(): string {
    return this.master.current.id;
  }

  /** Fails the start, naming the key, when data keys are wrapped by a master key this configuration lacks. */
  async assertMasterKeysKnown(db: Database): Promise<void> {
    const used = await db.selectDistinct({ id: dataKeys.masterKeyId }).from(dataKeys);
    const unknown = used.map((row) => row.id).filter((id) => !this.masters.has(id));
    if (unknown.length > 0) {
      throw new Error(
        `Secrets are encrypted under master key ${unknown.map((id) => `"${id}"`).join(', ')}, which is neither SECRETS_MASTER_KEY nor in SECRETS_OLD_MASTER_KEYS: set it, or they cannot be read`,
      );
    }
  }

  async dataKey(db: Database, tenantId: string): Promise<Buffer> {
    const cached = this.cache.get(tenantId);
    if (cached) return cached;
    let [row] = await db.select().from(dataKeys).where(eq(dataKeys.tenantId, tenantId));
    if (!row) {
      const wrapped = seal(this.master.current.key, randomBytes(32), context(tenantId));
      await db.insert(dataKeys).values({ tenantId, masterKeyId: this.master.current.id, wrapped }).onConflictDoNothing();
      [row] = await db.select().from(dataKeys).where(eq(dataKeys.tenantId, tenantId));
    }
    const key = open(this.masterKey(row!.masterKeyId), row!.wrapped, context(tenantId));
    this.cache.set(tenantId, key);
    return key;
  }

  /**
   * Re-wraps every data key not wrapped by the current master key. The data keys themselves do not
   * change, so no secret is re-encrypted and every reader keeps working throughout.
   */
  async rewrapAll(db: Database): Promise<number> {
    const stale = await db.select().from(dataKeys).where(ne(dataKeys.masterKeyId, this.master.current.id));
    for (const row of stale) {
      const key = open(this.masterKey(row.masterKeyId), row.wrapped, context(row.tenantId));
      await db
        .update(dataKeys)
        .set({
          masterKeyId: this.master.current.id,
          wrapped: seal(this.master.current.key, key, context(row.tenantId)),
          rewrappedAt: new Date(),
        })
        .where(eq(dataKeys.tenantId, row.tenantId));
    }
    return stale.length;
  }

  private masterKey(id: string): Buffer {
    const key = this.masters.get(id);
    if (!key)
      throw new Error(
        `A data key is wrapped by master key "${id}", which is configured neither as SECRETS_MASTER_KEY nor in SECRETS_OLD_MASTER_KEYS`,
      );
    return key;
  }
}
