import { sql } from 'drizzle-orm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../control-plane/db/index.js';

describe('PGlite taking turns with the event loop', () => {
  let database: DatabaseHandle;
  beforeAll(async () => {
    database = await openDatabase({ databaseDriver: 'pglite', PGLITE_DIR: 'memory://' }, pino({ level: 'silent' }));
    await database.ping(); // started: what follows measures statements, not PGlite's start
  });
  afterAll(() => database?.close());

  it('lets a callback of the event loop run between queued statements and transactions, not after all of them', async () => {
    const statements = 40;
    let done = 0;
    const queued = Array.from({ length: statements }, (_, k) =>
      k % 2 === 0
        ? database.db.execute(sql`select 1`).then(() => done++)
        : database.db.transaction(async (tx) => {
            await tx.execute(sql`select 1`);
            await tx.execute(sql`select 2`);
            done++;
          }),
    );
    // An I/O callback's stand-in: it runs at the event loop's next turn.
    const seen = await new Promise<number>((resolve) => setImmediate(() => resolve(done)));
    await Promise.all(queued);
    expect(done).toBe(statements);
    expect(seen).toBeLessThan(statements / 4);
  });

  it('still keeps a transaction whole: one that fails leaves nothing behind', async () => {
    await database.db.execute(sql`create table turns (n int)`);
    await expect(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`insert into turns values (1)`);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await database.db.transaction(async (tx) => tx.execute(sql`insert into turns values (2)`));
    const result = await database.db.execute(sql`select n from turns`);
    expect((result as unknown as { rows: { n: number }[] }).rows).toEqual([{ n: 2 }]);
  });
});
