import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleEachOnce, handleOnce } from '../../control-plane/bus/inbox.js';
import { MemoryBus } from '../../control-plane/bus/memory.js';
import { emit } from '../../control-plane/bus/outbox.js';
import { OutboxRelay } from '../../control-plane/bus/relay.js';
import { openDatabase, type DatabaseHandle } from '../../control-plane/db/index.js';
import { createEnvelope } from '../../protocol/envelope.js';
import { waitFor } from '../support/events.js';

const logger = pino({ level: 'silent' });
/** Longer than any wait below: an event that goes out in time went out because the relay was kicked. */
const POLL_MS = 600_000;

describe('handleOnce, on PGlite and the in-process bus', () => {
  let database: DatabaseHandle;
  let bus: MemoryBus;
  let relay: OutboxRelay;
  const received: string[] = [];

  beforeAll(async () => {
    database = await openDatabase({ databaseDriver: 'pglite', PGLITE_DIR: 'memory://' }, logger);
    await database.migrate();
    bus = new MemoryBus(logger, { maxAttempts: 1, baseDelayMs: 1 });
    await bus.subscribe('inbox-test', { 'flow.stopped': async (event) => void received.push(event.headers.id) });
    relay = new OutboxRelay(database.db, bus, logger, { pollMs: POLL_MS });
    // The relay's first pass, then it waits out its poll.
    const first = await database.db.transaction(
      async (tx) => (await emit(tx, 'inbox-test', 'flow.stopped', { id: randomUUID(), tenant: 't' })).headers.id,
    );
    relay.start();
    await waitFor(
      async () => received,
      (ids) => ids.includes(first),
      30_000,
    );
  });
  afterAll(async () => {
    await relay?.stop();
    await bus?.close();
    await database?.close();
  });

  it("returns the handler's result the first time, and runs nothing for the same event again", async () => {
    const event = createEnvelope('flow.started', { id: randomUUID(), tenant: 't' }, 'inbox-test');
    let runs = 0;
    const work = async () => ++runs;
    expect(await handleOnce({ db: database.db, relay }, 'inbox-test', event, work)).toEqual({ fresh: true, result: 1 });
    expect(await handleOnce({ db: database.db, relay }, 'inbox-test', event, work)).toEqual({ fresh: false });
    expect(runs).toBe(1);
  });

  it('wakes the relay once the work committed: what it emitted goes out without waiting for the poll', async () => {
    const event = createEnvelope('flow.started', { id: randomUUID(), tenant: 't' }, 'inbox-test');
    const handled = await handleOnce({ db: database.db, relay }, 'inbox-test', event, async (tx) => {
      return (await emit(tx, 'inbox-test', 'flow.stopped', { id: randomUUID(), tenant: 't' })).headers.id;
    });
    expect(handled.fresh).toBe(true);
    const emitted = handled.fresh ? handled.result : '';
    await waitFor(
      async () => received,
      (ids) => ids.includes(emitted),
      60_000,
    );
  });

  it('handles several events in one transaction, each once: work gets those not handled before, a repeated one once', async () => {
    const [seen, fresh, other] = [1, 2, 3].map(() => createEnvelope('flow.started', { id: randomUUID(), tenant: 't' }, 'inbox-test'));
    await handleOnce({ db: database.db, relay }, 'inbox-test', seen!, async () => undefined);
    const given: string[][] = [];
    const handled = await handleEachOnce({ db: database.db, relay }, 'inbox-test', [seen!, fresh!, other!, fresh!], async (_tx, events) => {
      given.push(events.map((event) => event.headers.id));
      return events.length;
    });
    expect(given).toEqual([[fresh!.headers.id, other!.headers.id]]);
    expect(handled).toEqual({ fresh: [fresh, other], result: 2 });
    const again = await handleEachOnce({ db: database.db, relay }, 'inbox-test', [seen!, fresh!], async () => given.push(['ran']));
    expect(again).toEqual({ fresh: [] });
    expect(given).toHaveLength(1);
  });

  it('records none of the events when the work fails, so each is handled when it comes again', async () => {
    const events = [1, 2].map(() => createEnvelope('flow.started', { id: randomUUID(), tenant: 't' }, 'inbox-test'));
    await expect(
      handleEachOnce({ db: database.db, relay }, 'inbox-test', events, async () => {
        throw new Error('the work failed');
      }),
    ).rejects.toThrow('the work failed');
    const handled = await handleEachOnce({ db: database.db, relay }, 'inbox-test', events, async (_tx, fresh) => fresh.length);
    expect(handled.result).toBe(2);
  });
});
