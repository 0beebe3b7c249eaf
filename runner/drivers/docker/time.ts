/** Docker's RFC 3339 times (nanoseconds, UTC), as its logs API takes them and in an order that sorts. */

/** A Docker time as [whole seconds, nanoseconds]; null for its zero time or anything else. */
function parseStamp(time: string | undefined): [number, string] | null {
  if (!time || time.startsWith('0001-')) return null;
  const match = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!match) return null;
  const seconds = Math.floor(Date.parse(`${match[1]}${match[3]}`) / 1000);
  return Number.isFinite(seconds) ? [seconds, (match[2] ?? '').padEnd(9, '0').slice(0, 9)] : null;
}

/** A Docker time as the logs API's `since` (seconds.nanoseconds). */
export function sinceOf(time: string | undefined): string | undefined {
  const stamp = parseStamp(time);
  return stamp ? `${stamp[0]}.${stamp[1]}` : undefined;
}

/** A Docker time as a string that sorts in time order (empty for none). */
export function stampKey(time: string | undefined): string {
  const stamp = parseStamp(time);
  return stamp ? `${String(stamp[0]).padStart(12, '0')}.${stamp[1]}` : '';
}

/** The later of two Docker times. */
export const later = (a: string | undefined, b: string | undefined) => (stampKey(a) >= stampKey(b) ? a : b);
