import { describe, expect, it } from 'vitest';
import { MISFIRE_GRACE_MS, nextSlot, planSlots } from '../../edge/schedule.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

describe('schedule slots (edge/schedule.ts)', () => {
  it('evaluates cron, with seconds where given, in the flow’s timezone', () => {
    expect(iso(nextSlot('0 9 * * *', 'America/New_York', at('2026-06-01T12:00:00Z')))).toBe('2026-06-01T13:00:00.000Z');
    expect(iso(nextSlot('0 9 * * *', null, at('2026-06-01T12:00:00Z')))).toBe('2026-06-02T09:00:00.000Z');
    expect(iso(nextSlot('*/15 * * * * *', 'UTC', at('2026-06-01T12:00:01Z')))).toBe('2026-06-01T12:00:15.000Z');
  });

  it('runs every slot due within the grace window, oldest first, and says which is next', () => {
    const plan = planSlots('*/10 * * * * *', 'UTC', 'skip', at('2026-06-01T12:00:00Z'), at('2026-06-01T12:00:25Z'));
    expect(plan.fire.map(iso)).toEqual(['2026-06-01T12:00:00.000Z', '2026-06-01T12:00:10.000Z', '2026-06-01T12:00:20.000Z']);
    expect(plan).toMatchObject({ skipped: 0, nextDue: at('2026-06-01T12:00:30Z') });
  });

  it('skip: slots missed by more than the grace window are not run', () => {
    const now = at('2026-06-01T12:10:30Z');
    const plan = planSlots('* * * * *', 'UTC', 'skip', at('2026-06-01T12:00:00Z'), now);
    expect(plan.fire.map(iso)).toEqual(['2026-06-01T12:10:00.000Z']);
    expect(plan.skipped).toBe(10);
    expect(iso(plan.nextDue)).toBe('2026-06-01T12:11:00.000Z');
    expect(now - plan.fire[0]!).toBeLessThanOrEqual(MISFIRE_GRACE_MS);
  });

  it('run-latest: of the missed slots, the latest runs once', () => {
    const plan = planSlots('0 * * * *', 'UTC', 'run-latest', at('2026-06-01T08:00:00Z'), at('2026-06-01T12:30:00Z'));
    expect(plan.fire.map(iso)).toEqual(['2026-06-01T12:00:00.000Z']);
    expect(plan.skipped).toBe(4);
    const skipped = planSlots('0 * * * *', 'UTC', 'skip', at('2026-06-01T08:00:00Z'), at('2026-06-01T12:30:00Z'));
    expect(skipped.fire).toEqual([]);
  });

  it('after a long outage jumps ahead instead of walking every missed second', () => {
    const now = at('2026-06-10T00:00:00Z');
    const plan = planSlots('* * * * * *', 'UTC', 'skip', at('2026-06-01T00:00:00Z'), now);
    expect(plan.fire.length).toBeLessThanOrEqual(61);
    expect(plan.nextDue).toBe(now + 1000);
  });

  describe('across daylight saving time (Europe/Berlin, 2026)', () => {
    it('spring forward: a slot in the skipped hour runs once, at the first minute after the gap', () => {
      const plan = planSlots(
        '30 2 * * *',
        'Europe/Berlin',
        'skip',
        nextSlot('30 2 * * *', 'Europe/Berlin', at('2026-03-28T12:00:00Z'))!,
        at('2026-03-29T01:00:30Z'),
      );
      expect(plan.fire.map(iso)).toEqual(['2026-03-29T01:00:00.000Z']); // 03:00 CEST
      expect(iso(plan.nextDue)).toBe('2026-03-30T00:30:00.000Z'); // 02:30 CEST the next day
    });

    it('fall back: a daily slot in the repeated hour runs once, at its first occurrence', () => {
      const first = nextSlot('30 2 * * *', 'Europe/Berlin', at('2026-10-24T12:00:00Z'))!;
      expect(iso(first)).toBe('2026-10-25T00:30:00.000Z'); // 02:30 CEST
      const plan = planSlots('30 2 * * *', 'Europe/Berlin', 'skip', first, at('2026-10-25T01:45:00Z'));
      expect(plan.fire.map(iso)).toEqual([]); // 02:30 CET is not a second run
      expect(iso(plan.nextDue)).toBe('2026-10-26T01:30:00.000Z');
    });

    it('interval schedules keep elapsed time: hourly runs in both 02:00 hours', () => {
      const slots: (string | null)[] = [];
      let slot = at('2026-10-24T23:30:00Z');
      for (let i = 0; i < 3; i++) {
        slot = nextSlot('0 * * * *', 'Europe/Berlin', slot)!;
        slots.push(iso(slot));
      }
      expect(slots).toEqual(['2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T02:00:00.000Z']);
    });
  });
});
