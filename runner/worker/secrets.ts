import type { z } from 'zod';
import { workerStdinSchema } from './config.js';

/** A sanity bound, far over a step token, a URL and a step's configuration (its flow's body, 1 MiB by default). */
const MAX_BYTES = 16 * 1024 * 1024;
/** Stdin closed with nothing on it: the runner is gone (a warm worker's, most often), and nobody waits for this worker. */
export class RunnerGone extends Error {
  constructor() {
    super('stdin closed before the runner wrote anything: the runner is gone');
  }
}

/** A driver writes the secrets as it starts the worker: this long without them is a broken start. */
const WAIT_MS = 30_000;

/**
 * Reads what its driver writes to stdin (encodeStdin), to the end of stdin: the secrets, and maybe
 * the step. A warm worker waits with no deadline: it ends when its runner does, as stdin closes.
 */
export function readStdin(
  options: { warm: boolean },
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<z.infer<typeof workerStdinSchema>> {
  return new Promise((resolve, reject) => {
    let text = '';
    const fail = (error: Error) => {
      clearTimeout(timer);
      stdin.removeAllListeners('data');
      reject(error);
    };
    const timer = options.warm
      ? undefined
      : setTimeout(
          () => fail(new Error(`no secrets on stdin within ${WAIT_MS / 1000} s: a step worker is started by a runner, not by hand`)),
          WAIT_MS,
        );
    stdin.setEncoding('utf8');
    stdin.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_BYTES) fail(new Error(`the secrets on stdin are over ${MAX_BYTES} bytes`));
    });
    stdin.once('error', fail);
    stdin.once('end', () => {
      clearTimeout(timer);
      if (text === '') return reject(new RunnerGone());
      try {
        resolve(workerStdinSchema.parse(JSON.parse(text)));
      } catch {
        reject(new Error('the secrets on stdin are not the JSON line a runner writes'));
      }
    });
  });
}
