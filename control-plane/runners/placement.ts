import type { Services } from '../services.js';
import { lostAfterMs } from './choose.js';
import { rebalance } from './deployments.js';
import { changingDesiredState } from './service.js';

/**
 * Every control plane runs this loop, each heartbeat interval and whenever a runner registers or
 * is forgotten: flows on lost runners move, waiting flows are placed, cleanups find a runner.
 * The rows are claimed with SKIP LOCKED, so replicas share the work and never do it twice.
 * Runners that could not be heard (this control plane was down, or its database) are not lost for
 * it: it moves flows off silent runners only once it has been listening for as long as a runner
 * may be silent, so that an outage of its own does not move every flow.
 */
export class PlacementLoop {
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Since when this loop's passes succeed: its start, or the end of its last failure. */
  private listeningSince = Date.now();

  constructor(private readonly services: Services) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.services.config.RUNNER_HEARTBEAT_SECONDS * 1000);
    this.timer.unref();
  }

  /** Runs a pass soon (several kicks at once make one pass). */
  kick(): void {
    if (this.stopped || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.pass();
    }, 50);
  }

  private async pass(): Promise<void> {
    if (this.running) return;
    this.running = (async () => {
      try {
        // A full page claimed means there may be more.
        const moveFromLost = Date.now() - this.listeningSince >= lostAfterMs(this.services);
        const pass = () => changingDesiredState(this.services, (tx, touched) => rebalance(tx, this.services, touched, moveFromLost));
        while (!this.stopped && (await pass()) === 50);
      } catch (error) {
        this.listeningSince = Date.now();
        this.services.logger.warn({ err: error }, 'placement pass failed; the next one tries again');
      } finally {
        this.running = undefined;
      }
    })();
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    await this.running;
  }
}
