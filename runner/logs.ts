import type { Logger } from 'pino';
import { MAX_LOG_LINE, type StepLogLine } from '../protocol/fleet.js';
import type { ControlPlaneClient } from './control-plane.js';
import type { WorkerLogLine } from './drivers/types.js';

const FLUSH_MS = 1000;
const BATCH_LINES = 500;
/** Lines kept while the control plane cannot be reached; older ones go first. */
const BUFFER_LINES = 5000;
/** Per step and second: a step that logs more has the rest dropped, and a line says how many. */
const LINES_PER_SECOND = 100;

/** Ships what step workers write to the control plane (GET /flows/{id}/steps/{stepId}/logs reads it), in batches. */
export class LogShipper {
  private buffer: StepLogLine[] = [];
  private readonly rates = new Map<string, { second: number; count: number; dropped: number }>();
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;

  constructor(
    private readonly client: ControlPlaneClient,
    private readonly runnerId: string,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  add(flowId: string, stepId: string, { stream, line, at }: WorkerLogLine): void {
    const key = `${flowId}/${stepId}`;
    const second = Math.floor(at.getTime() / 1000);
    const rate = this.rates.get(key) ?? { second, count: 0, dropped: 0 };
    if (rate.second !== second) {
      if (rate.dropped > 0)
        this.push({
          flowId,
          stepId,
          at: at.toISOString(),
          stream: 'stderr',
          line: `[hookline] ${rate.dropped} lines dropped: a step may log ${LINES_PER_SECOND} lines a second`,
        });
      Object.assign(rate, { second, count: 0, dropped: 0 });
    }
    this.rates.set(key, rate);
    if (++rate.count > LINES_PER_SECOND) {
      rate.dropped++;
      return;
    }
    this.push({
      flowId,
      stepId,
      at: at.toISOString(),
      stream,
      line: line.length > MAX_LOG_LINE ? `${line.slice(0, MAX_LOG_LINE - 1)}…` : line,
    });
  }

  private push(line: StepLogLine): void {
    this.buffer.push(line);
    if (this.buffer.length > BUFFER_LINES) this.buffer.splice(0, this.buffer.length - BUFFER_LINES);
    if (this.buffer.length >= BATCH_LINES) void this.flush();
  }

  async flush(): Promise<void> {
    if (this.sending) return this.sending;
    if (this.buffer.length === 0) return;
    const batch = this.buffer.splice(0, BATCH_LINES);
    this.sending = this.client
      .shipLogs(this.runnerId, batch)
      .catch((error: Error) => {
        this.buffer.unshift(...batch);
        this.logger.debug({ err: error.message }, 'could not ship step logs; keeping them for the next try');
      })
      .finally(() => {
        this.sending = undefined;
      });
    return this.sending;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
