import { Cron } from 'croner';

/** A slot this late is still run on time; an older one was missed (the Worker was down or slow). */
export const MISFIRE_GRACE_MS = 60_000;
/** Missed slots are counted up to this many (for the log); the walk never goes further. */
const MAX_COUNTED = 1000;

export type MisfirePolicy = 'skip' | 'run-latest';

/** The first slot strictly after `after` (ms), in the schedule's IANA timezone; null when there is none. */
export function nextSlot(cron: string, timezone: string | null, after: number): number | null {
  const next = new Cron(cron, { timezone: timezone ?? 'UTC' }).nextRun(new Date(after));
  return next ? next.getTime() : null;
}

export interface Plan {
  /** The slots to run now, oldest first. */
  fire: number[];
  /** Missed slots not run. */
  skipped: number;
  /** The next slot to wait for. */
  nextDue: number | null;
}

/**
 * What an alarm at `now` runs, from the first slot not yet run (`nextDue`). Slots at most
 * MISFIRE_GRACE_MS late always run. Older ones were missed: `skip` drops them, `run-latest` runs the
 * latest of them once (when no slot in the grace window runs anyway).
 */
export function planSlots(cron: string, timezone: string | null, misfire: MisfirePolicy, nextDue: number, now: number): Plan {
  const graceStart = now - MISFIRE_GRACE_MS;
  let skipped = 0;
  let latestLate: number | null = null;
  if (nextDue < graceStart) {
    const [previous] = new Cron(cron, { timezone: timezone ?? 'UTC' }).previousRuns(1, new Date(graceStart));
    latestLate = previous && previous.getTime() >= nextDue && previous.getTime() < graceStart ? previous.getTime() : null;
    for (
      let slot: number | null = nextDue;
      slot !== null && slot < graceStart && skipped < MAX_COUNTED;
      slot = nextSlot(cron, timezone, slot)
    )
      skipped++;
  }
  const fire: number[] = [];
  let slot: number | null = nextDue >= graceStart ? nextDue : nextSlot(cron, timezone, graceStart - 1);
  for (; slot !== null && slot <= now; slot = nextSlot(cron, timezone, slot)) fire.push(slot);
  if (misfire === 'run-latest' && fire.length === 0 && latestLate !== null)
    return { fire: [latestLate], skipped: skipped - 1, nextDue: slot };
  return { fire, skipped, nextDue: slot };
}
