import { workerSecretsSchema, type WorkerSecrets } from './config.js';

/** More than a step token and a URL ever take. */
const MAX_BYTES = 64 * 1024;
/** A driver writes the secrets as it starts the worker: this long without them is a broken start. */
const WAIT_MS = 30_000;

/** Reads the secrets its driver writes to stdin (encodeSecrets), to the end of stdin. */
export function readSecrets(stdin: NodeJS.ReadableStream = process.stdin): Promise<WorkerSecrets> {
  return new Promise((resolve, reject) => {
    let text = '';
    const fail = (error: Error) => {
      clearTimeout(timer);
      stdin.removeAllListeners('data');
      reject(error);
    };
    const timer = setTimeout(
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
      try {
        resolve(workerSecretsSchema.parse(JSON.parse(text)));
      } catch {
        reject(new Error('the secrets on stdin are not the JSON line a runner writes'));
      }
    });
  });
}
