import { describe, expect, it } from 'vitest';
import { coalesced } from '../../control-plane/bus/coalesce.js';

/** A run that the test lets finish: each call of `run` waits until `finish()` is called for it. */
function controlledRuns(fail: (items: string[]) => boolean = () => false) {
  const runs: string[][] = [];
  const pending: (() => void)[] = [];
  const run = async (items: string[]) => {
    runs.push(items);
    await new Promise<void>((resolve) => pending.push(resolve));
    if (fail(items)) throw new Error(`run of ${items.join(',')} failed`);
  };
  /** Lets the oldest unfinished run end, once there is one. */
  const finish = async () => {
    while (pending.length === 0) await new Promise((resolve) => setImmediate(resolve));
    pending.shift()!();
  };
  return { runs, run, finish };
}

describe('coalesced', () => {
  it('runs a lone call at once, and the calls that came during a run together in the next, up to the limit by weight', async () => {
    const { runs, run, finish } = controlledRuns();
    const call = coalesced(run, { limit: 5, weight: (item) => Number(item.split(':')[1]) });
    const first = call('a:1');
    expect(runs).toEqual([['a:1']]);
    const later = ['b:2', 'c:2', 'd:2', 'e:9'].map(call);
    await finish();
    await first;
    await finish();
    await finish();
    await finish();
    await Promise.all(later);
    // b and c fit 5 together, d does not; e weighs more than the limit alone and still runs, alone.
    expect(runs).toEqual([['a:1'], ['b:2', 'c:2'], ['d:2'], ['e:9']]);
  });

  it('runs each call of a failed run again alone: only the one that cannot succeed fails', async () => {
    const { runs, run, finish } = controlledRuns((items) => items.includes('bad'));
    const call = coalesced(run, { limit: 10, weight: () => 1 });
    const first = call('first');
    const [good, bad, alsoGood] = ['good', 'bad', 'also good'].map((item) =>
      call(item).then(
        () => 'ok',
        (error: Error) => error.message,
      ),
    );
    await finish();
    await first;
    for (let k = 0; k < 4; k++) await finish();
    expect(await Promise.all([good, bad, alsoGood])).toEqual(['ok', 'run of bad failed', 'ok']);
    expect(runs).toEqual([['first'], ['good', 'bad', 'also good'], ['good'], ['bad'], ['also good']]);
  });

  it('starts again after it went idle', async () => {
    const { runs, run, finish } = controlledRuns();
    const call = coalesced(run, { limit: 10, weight: () => 1 });
    const one = call('one');
    await finish();
    await one;
    const two = call('two');
    await finish();
    await two;
    expect(runs).toEqual([['one'], ['two']]);
  });
});
