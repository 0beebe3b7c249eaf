import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { asc, count } from 'drizzle-orm';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../control-plane/bus/memory.js';
import { emit } from '../../control-plane/bus/outbox.js';
import { OutboxRelay } from '../../control-plane/bus/relay.js';
import { outbox } from '../../control-plane/bus/schema.js';
import type { BusHealth, DirectMessage, EventBus, EventRoutes } from '../../control-plane/bus/types.js';
import { openDatabase, type Database, type DatabaseHandle } from '../../control-plane/db/index.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import pg from 'pg';
import { createTestDatabase, postgresAdminUrl, postgresAvailable } from '../support/postgres.js';
import { waitFor } from '../support/events.js';

const logger = pino({ level: 'silent' });
const hasPostgres = await postgresAvailable();

/**
 * The in-process bus with an outage switch: while `down`, publish rejects as a broker that does not
 * answer would. It also counts what it accepted, and can take its time, as a broker's confirm does.
 */
class SwitchableBus implements EventBus {
  readonly kind = 'memory' as const;
  down = false;
  publishDelayMs = 0;
  /** While set, publish sends and then waits for it: a broker that holds its confirm. `held` counts those waiting. */
  hold: Promise<void> | null = null;
  held = 0;
  readonly accepted: string[] = [];

  constructor(private readonly inner: MemoryBus) {}

  async publish(event: EventEnvelope): Promise<void> {
    if (this.down) throw new Error('bus unreachable');
    if (this.publishDelayMs > 0) await sleep(this.publishDelayMs);
    await this.inner.publish(event);
    if (this.hold) {
      this.held++;
      await this.hold;
    }
    this.accepted.push(event.headers.id);
  }

  send(message: DirectMessage): Promise<void> {
    return this.inner.send(message);
  }

  subscribe(service: string, routes: EventRoutes): Promise<void> {
    return this.inner.subscribe(service, routes);
  }

  health(): BusHealth {
    return { kind: this.kind, connected: !this.down };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Everything delivered to a consumer of `flow.stopped`, in delivery order. */
async function consumer(bus: EventBus): Promise<string[]> {
  const received: string[] = [];
  await bus.subscribe(`outbox-test-${randomUUID()}`, { 'flow.stopped': async (event) => void received.push(event.headers.id) });
  return received;
}

/** Emits one event in a transaction of its own that commits; returns its id. */
async function emitted(db: Database, n: number): Promise<string> {
  return db.transaction(async (tx) => (await emit(tx, 'outbox-test', 'flow.stopped', { id: randomUUID(), tenant: `${n}` })).headers.id);
}

const rows = (db: Database) => db.select().from(outbox).orderBy(asc(outbox.seq));
const pending = async (db: Database) => (await db.select({ n: count() }).from(outbox))[0]!.n;

describe('the outbox and its relay, on PGlite and the in-process bus', () => {
  let database: DatabaseHandle;
  let db: Database;
  let bus: SwitchableBus;
  let relay: OutboxRelay;

  beforeAll(async () => {
    database = await openDatabase({ databaseDriver: 'pglite', PGLITE_DIR: 'memory://' }, logger);
    await database.migrate();
    db = database.db;
  });
  afterAll(() => database?.close());

  const setUp = () => {
    bus = new SwitchableBus(new MemoryBus(logger, { maxAttempts: 1, baseDelayMs: 1 }));
    relay = new OutboxRelay(db, bus, logger, { pollMs: 10, maxBackoffMs: 40, batchSize: 3 });
  };
  afterEach(async () => {
    await relay.stop();
    await bus.close();
    await db.delete(outbox);
  });

  it('publishes nothing from a transaction that rolled back', async () => {
    setUp();
    const received = await consumer(bus);
    let rolledBack = '';
    await expect(
      db.transaction(async (tx) => {
        rolledBack = (await emit(tx, 'outbox-test', 'flow.stopped', { id: randomUUID(), tenant: 't' })).headers.id;
        throw new Error('the state change failed');
      }),
    ).rejects.toThrow('the state change failed');
    expect(await pending(db)).toBe(0);
    expect(await relay.publishBatch()).toBe(0);

    relay.start();
    const after = await emitted(db, 1);
    relay.kick();
    await waitFor(
      async () => [...received],
      (ids) => ids.includes(after),
    );
    expect(received).toEqual([after]);
    expect(bus.accepted).not.toContain(rolledBack);
  });

  it('publishes a committed event once and deletes its row', async () => {
    setUp();
    const received = await consumer(bus);
    const id = await emitted(db, 1);
    const [row] = await rows(db);
    expect(row).toMatchObject({ eventId: id, name: 'flow.stopped', attempts: 0, lastError: null });
    expect(row!.envelope.headers).toMatchObject({ id, name: 'flow.stopped', serviceName: 'outbox-test' });

    relay.start();
    relay.kick();
    await waitFor(
      () => pending(db),
      (n) => n === 0,
    );
    await waitFor(
      async () => [...received],
      (ids) => ids.length === 1,
    );
    expect(await relay.publishBatch()).toBe(0);
    const marker = await emitted(db, 2);
    relay.kick();
    await waitFor(
      async () => [...received],
      (ids) => ids.includes(marker),
    );
    expect(received).toEqual([id, marker]);
    expect(bus.accepted).toEqual([id, marker]);
  });

  it('keeps events in the outbox while the bus is down, counting attempts, then publishes them all in order, each once', async () => {
    setUp();
    const received = await consumer(bus);
    bus.down = true;
    const ids: string[] = [];
    for (let n = 0; n < 7; n++) ids.push(await emitted(db, n));

    await expect(relay.publishBatch()).rejects.toThrow('bus unreachable');
    const afterOne = await rows(db);
    expect(afterOne.map((r) => r.eventId)).toEqual(ids);
    expect(afterOne.slice(0, 3).map((r) => [r.attempts, r.lastError])).toEqual(Array(3).fill([1, 'bus unreachable']));
    expect(afterOne.slice(3).every((r) => r.attempts === 0)).toBe(true);

    relay.start();
    await waitFor(
      () => rows(db),
      (found) => found[0]!.attempts >= 3,
    );
    expect(await pending(db)).toBe(7);
    expect(received).toEqual([]);
    expect(bus.accepted).toEqual([]);

    bus.down = false;
    await waitFor(
      () => pending(db),
      (n) => n === 0,
    );
    await relay.stop(); // it publishes nothing more: a duplicate would be among what the bus accepted
    await waitFor(
      async () => [...received],
      (found) => found.length >= bus.accepted.length,
    );
    expect(received).toEqual(ids);
    expect(bus.accepted).toEqual(ids);
  });
});

async function connectionsTo(database: string): Promise<number> {
  const client = new pg.Client({ connectionString: postgresAdminUrl });
  await client.connect();
  try {
    const result = await client.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = $1', [database]);
    return result.rows[0]!.n;
  } finally {
    await client.end();
  }
}

describe.skipIf(!hasPostgres)('two relays on one PostgreSQL database', () => {
  let testDatabase: Awaited<ReturnType<typeof createTestDatabase>>;
  const handles: DatabaseHandle[] = [];
  const relays: OutboxRelay[] = [];

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
  });
  afterEach(async () => {
    for (const relay of relays.splice(0)) await relay.stop();
  });
  afterAll(async () => {
    for (const handle of handles) await handle.close();
    // pool.end() resolves before its connections have closed; dropping the database under them would crash their sockets.
    await waitFor(
      () => connectionsTo(testDatabase.name),
      (n) => n === 0,
    );
    await testDatabase?.drop();
  });

  const open = async () => {
    const handle = await openDatabase({ databaseDriver: 'pg', DATABASE_URL: testDatabase.url, PGLITE_DIR: 'unused' }, logger);
    handles.push(handle);
    return handle;
  };

  it('publish every event exactly once between them (FOR UPDATE SKIP LOCKED)', async () => {
    const first = await open();
    await first.migrate();
    const second = await open();

    // One broker, two control-plane replicas, each with its own connection and relay.
    const broker = new MemoryBus(logger, { maxAttempts: 1, baseDelayMs: 1 });
    const buses = [new SwitchableBus(broker), new SwitchableBus(broker)];
    for (const bus of buses) bus.publishDelayMs = 2;
    const received = await consumer(broker);
    relays.push(
      new OutboxRelay(first.db, buses[0]!, logger, { pollMs: 5, batchSize: 5 }),
      new OutboxRelay(second.db, buses[1]!, logger, { pollMs: 5, batchSize: 5 }),
    );

    const ids: string[] = [];
    for (let n = 0; n < 60; n++) ids.push(await emitted(first.db, n));
    for (const relay of relays) relay.start();
    // More events while both relays run, from both replicas.
    const more = await Promise.all(Array.from({ length: 60 }, (_, n) => emitted((n % 2 === 0 ? first : second).db, 60 + n)));
    ids.push(...more);

    await waitFor(
      () => pending(first.db),
      (n) => n === 0,
    );
    for (const relay of relays) await relay.stop(); // they publish nothing more: a duplicate would be among what they published
    const published = [...buses[0]!.accepted, ...buses[1]!.accepted];
    await waitFor(
      async () => [...received],
      (found) => found.length >= published.length,
    );
    expect(published.length).toBe(ids.length);
    expect(new Set(published)).toEqual(new Set(ids));
    expect(received.length).toBe(ids.length);
    expect(new Set(received)).toEqual(new Set(ids));
    expect(buses[0]!.accepted.length, 'the first relay published some').toBeGreaterThan(0);
    expect(buses[1]!.accepted.length, 'the second relay published some').toBeGreaterThan(0);
  });

  it('does not lose a kick that comes while a batch is being published', async () => {
    const handle = await open();
    await handle.migrate();
    const { db } = handle;
    const bus = new SwitchableBus(new MemoryBus(logger, { maxAttempts: 1, baseDelayMs: 1 }));
    // Polled once an hour: only a kick gets the second event out in time.
    const relay = new OutboxRelay(db, bus, logger, { pollMs: 3_600_000 });
    relays.push(relay);
    const received = await consumer(bus);
    let release!: () => void;
    bus.hold = new Promise((resolve) => (release = resolve));
    relay.start();
    const first = await emitted(db, 1);
    relay.kick();
    await waitFor(
      async () => bus.held,
      (n) => n === 1,
    );
    // Committed after the relay read the outbox, and kicked while it waits for the broker's confirm.
    const second = await emitted(db, 2);
    relay.kick();
    bus.hold = null;
    release();
    await waitFor(
      async () => [...received],
      (ids) => ids.includes(second),
    );
    expect(received).toEqual([first, second]);
  });

  it('sends the next batch while the one before waits for its confirm, in order, and deletes both once confirmed', async () => {
    const handle = await open();
    await handle.migrate();
    const { db } = handle;
    const bus = new SwitchableBus(new MemoryBus(logger, { maxAttempts: 1, baseDelayMs: 1 }));
    const relay = new OutboxRelay(db, bus, logger, { pollMs: 3_600_000, batchSize: 2 });
    relays.push(relay);
    const received = await consumer(bus);
    const ids: string[] = [];
    for (let n = 0; n < 4; n++) ids.push(await emitted(db, n));
    let release!: () => void;
    bus.hold = new Promise((resolve) => (release = resolve));
    relay.start();
    // Both batches out while the first one's confirm is still held.
    await waitFor(
      async () => bus.held,
      (n) => n === 4,
    );
    await waitFor(
      async () => [...received],
      (found) => found.length === 4,
    );
    expect(received).toEqual(ids);
    expect(await pending(db)).toBe(4);
    bus.hold = null;
    release();
    await waitFor(
      () => pending(db),
      (n) => n === 0,
    );
    expect(bus.accepted).toEqual(ids);
  });
});
