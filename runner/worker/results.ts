import { createEnvelope } from '../../protocol/envelope.js';
import type { StepResult } from '../../protocol/events.js';
import { Serialized } from '../../protocol/step-message.js';
import type { WorkerTransport } from './transport.js';

/** A batch stays under this size, unless one result alone is larger. */
const MAX_BATCH_BYTES = 1024 * 1024;
const MAX_BATCH_RESULTS = 1000;
/** Batches on their way to the broker at once: more keep inputs from waiting on one confirm after another. */
const IN_FLIGHT = 4;

interface Pending {
  /** The result as JSON: serialized once, when it is reported. */
  json: string;
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Reports results as `execution.step.results`, in batches: a result waits only while IN_FLIGHT
 * batches are being confirmed, so a lone input is reported at once and a busy step sends one
 * event for many inputs. `report` resolves when the broker confirmed the batches holding the results.
 */
export class ResultReporter {
  private queue: Pending[] = [];
  private sending = 0;

  constructor(private readonly transport: WorkerTransport) {}

  report(results: StepResult[]): Promise<void> {
    if (results.length === 0) return Promise.resolve();
    // All queued before a batch is made, so that results reported together go together.
    const confirmed = results.map(
      (result) => new Promise<void>((resolve, reject) => this.queue.push({ json: serializeResult(result), resolve, reject })),
    );
    if (this.sending < IN_FLIGHT) void this.send();
    return Promise.all(confirmed).then(() => {});
  }

  private async send(): Promise<void> {
    this.sending++;
    while (this.queue.length > 0) {
      const batch: Pending[] = [];
      let bytes = 0;
      while (
        this.queue.length > 0 &&
        batch.length < MAX_BATCH_RESULTS &&
        (batch.length === 0 || bytes + this.queue[0]!.json.length <= MAX_BATCH_BYTES)
      ) {
        const next = this.queue.shift()!;
        bytes += next.json.length;
        batch.push(next);
      }
      // The envelope of createEnvelope, written around the results' JSON rather than serializing them again.
      const { headers } = createEnvelope('execution.step.results', {}, 'runner');
      const body = `{"headers":${JSON.stringify(headers)},"payload":{"results":[${batch.map((p) => p.json).join(',')}]}}`;
      try {
        await this.transport.publishEvent({ headers, body });
        for (const pending of batch) pending.resolve();
      } catch (error) {
        for (const pending of batch) pending.reject(error as Error);
      }
    }
    this.sending--;
  }
}

/** A result's JSON, with the outputs whose JSON is at hand (Serialized) written as they are rather than serialized again. */
export function serializeResult(result: StepResult): string {
  const { outputs, ...rest } = result;
  const head = JSON.stringify(rest);
  const items = outputs.map((output) => (output instanceof Serialized ? output.json : (JSON.stringify(output) ?? 'null')));
  return `${head.slice(0, -1)},"outputs":[${items.join(',')}]}`;
}
