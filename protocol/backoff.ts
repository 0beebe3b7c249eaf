/** How long to wait before another try: the first delay, doubling with each failure, at most the longest. */
export interface Backoff {
  firstMs: number;
  maxMs: number;
  /** Spread each delay over [delay × (1 − jitter), delay] so that many waiters do not come back at once. */
  jitter?: number;
}

/** The delay after `failures` failures in a row (1 for the first): firstMs, 2 × firstMs ... at most maxMs. */
export const backoff = (failures: number, { firstMs, maxMs, jitter = 0 }: Backoff): number => {
  const delay = Math.min(maxMs, firstMs * 2 ** Math.max(0, Math.min(failures - 1, 52)));
  return jitter > 0 ? delay * (1 - jitter * Math.random()) : delay;
};
