/**
 * Wakes the long polls of runners whose desired state changed on this replica. A change made on
 * another replica is found by the poll re-reading the database every second, so this is a
 * shortcut, never the only way.
 */
export class DesiredStateNotifier {
  private readonly waiters = new Map<string, Set<() => void>>();

  notify(runnerIds: Iterable<string>): void {
    for (const id of runnerIds) for (const wake of this.waiters.get(id) ?? []) wake();
  }

  /** Resolves when `runnerId` is notified, or after `ms`. */
  wait(runnerId: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const waiters = this.waiters.get(runnerId) ?? new Set<() => void>();
      this.waiters.set(runnerId, waiters);
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0) this.waiters.delete(runnerId);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waiters.add(wake);
    });
  }
}
