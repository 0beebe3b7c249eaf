import type { PGlite, Transaction } from '@electric-sql/pglite';
import { setImmediate as nextTurn } from 'node:timers/promises';

type Query = PGlite['query'];

/** `target` with its methods bound to it (PGlite keeps its state in private fields), and `query` replaced. */
function withQuery<T extends object>(target: T, query: Query, overrides: Record<string, unknown> = {}): T {
  return new Proxy(target, {
    get(object, property) {
      if (property === 'query') return query;
      if (typeof property === 'string' && property in overrides) return overrides[property];
      const value = Reflect.get(object, property, object);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
}

/**
 * PGlite runs every statement synchronously on this thread, and the transactions queued on its one
 * connection run back to back in microtasks: under load the event loop did not turn for 40–80 ms
 * at a time, and every HTTP request (the edge's deliveries among them) waited that long to be
 * read. This client lets the event loop turn once before each statement, so that requests are read
 * and answered between statements rather than after the whole queue (bench/README.md, e2e).
 */
export function pgliteTakingTurns(client: PGlite): PGlite {
  const turnThen =
    (target: PGlite | Transaction): Query =>
    async (...args: Parameters<Query>) => {
      await nextTurn();
      return target.query(...args);
    };
  const transaction: PGlite['transaction'] = (work) => client.transaction((tx) => work(withQuery(tx, turnThen(tx))));
  return withQuery(client, turnThen(client), { transaction });
}
