/**
 * Calls that arrive while a run is in flight wait and go together in the next run, up to `limit`
 * by `weight`: a lone call runs at once, and under load one transaction does the work of many
 * events (fewer statements per event, and fewer transactions queued on PGlite's one connection).
 * Each call settles with its run. When a run of several fails, each of its calls runs again alone,
 * so that one call that cannot succeed fails alone and takes no other with it.
 */
export function coalesced<T>(run: (items: T[]) => Promise<void>, options: { limit: number; weight: (item: T) => number }) {
  interface Waiting {
    item: T;
    resolve: () => void;
    reject: (error: unknown) => void;
  }
  const waiting: Waiting[] = [];
  let running = false;

  /** The next run's calls: the first always, then as many as fit `limit`. */
  const take = (): Waiting[] => {
    let total = options.weight(waiting[0]!.item);
    let count = 1;
    while (count < waiting.length && total + options.weight(waiting[count]!.item) <= options.limit)
      total += options.weight(waiting[count++]!.item);
    return waiting.splice(0, count);
  };

  const settle = async (calls: Waiting[]) => {
    try {
      await run(calls.map((call) => call.item));
      for (const call of calls) call.resolve();
    } catch (error) {
      if (calls.length === 1) calls[0]!.reject(error);
      else for (const call of calls) await settle([call]);
    }
  };

  const drain = async () => {
    running = true;
    while (waiting.length > 0) await settle(take());
    running = false;
  };

  return (item: T): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (!running) void drain();
    });
}
