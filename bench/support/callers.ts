import { setTimeout as sleep } from 'node:timers/promises';
import { ORDER } from './wrk.js';

export interface Calls {
  /** flowExecId → when its call was sent (epoch ms), for every call the edge accepted. */
  accepted: Map<string, number>;
  /** Calls answered otherwise, or not answered within 10 s. */
  refused: number;
}

/**
 * `callers` concurrent callers POSTing the bench's order to `url`, each sending its next call when
 * its last one was answered, for `seconds`. A refused call is followed by a pause of 100 ms, so that
 * an edge that is down is not called in a busy loop.
 */
export async function call(url: string, options: { callers: number; seconds: number }): Promise<Calls> {
  const calls: Calls = { accepted: new Map(), refused: 0 };
  const end = Date.now() + options.seconds * 1000;
  const caller = async () => {
    while (Date.now() < end) {
      const sentAt = Date.now();
      const id = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: ORDER,
        signal: AbortSignal.timeout(10_000),
      }).then(
        async (response) => {
          const body = (await response.json().catch(() => ({}))) as { data?: { flowExecId?: string } };
          return response.ok ? body.data?.flowExecId : undefined;
        },
        () => undefined,
      );
      if (id) calls.accepted.set(id, sentAt);
      else {
        calls.refused++;
        await sleep(100);
      }
    }
  };
  await Promise.all(Array.from({ length: options.callers }, caller));
  return calls;
}
