import { constants as osConstants } from 'node:os';
import type { WorkerExit } from '../types.js';

/** How many of a run's last output lines make the `output` of a crash, and its longest length. */
export const TAIL_LINES = 50;
const TAIL_CHARS = 4000;

/** The signal an exit code of 128 + n stands for (Docker's init reports a signalled worker so). */
export function signalOf(code: number | null): string | null {
  if (code === null || code <= 128) return null;
  const found = Object.entries(osConstants.signals).find(([, number]) => number === code - 128);
  return found ? found[0] : null;
}

/** How a container's run ended, as a crash reports it: its code and signal, and the end of its output with why Docker ended it. */
export function exitOf(run: { code: number | null; oom: boolean; gone: boolean; tail: string[]; memoryBytes: number }): WorkerExit {
  let output = run.tail.join('\n');
  if (run.oom) output = `${output}\n(killed: out of memory, over its limit of ${Math.round(run.memoryBytes / 1048576)} MB)`;
  if (run.gone) output = `${output}\n(its container was removed)`;
  output = output.trim();
  if (output.length > TAIL_CHARS) output = output.slice(-TAIL_CHARS);
  return { code: run.gone ? null : run.code, signal: run.oom ? 'SIGKILL' : signalOf(run.code), output };
}

/** A Docker API error's HTTP status, and its message. */
export const statusOf = (error: unknown) => (error as { statusCode?: number } | null)?.statusCode;
export const messageOf = (error: unknown) => {
  const json = (error as { json?: { message?: string } } | null)?.json;
  return (json?.message ?? (error as Error)?.message ?? String(error)).trim();
};
