/** A probe that answers in none of this fails: a service that accepts connections but never answers must not hang the file. */
const PROBE_DEADLINE_MS = 15_000;

/**
 * Whether a real service (PostgreSQL, RabbitMQ) answers. Outside CI a missing service skips its
 * tests with a warning; in CI (CI set) it fails the run, so those tests never skip there.
 * Probes run while vitest collects a file, where no test or hook timeout applies: hence their own deadline.
 */
export async function serviceAvailable(name: string, probe: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_DEADLINE_MS / 1000} s`)), PROBE_DEADLINE_MS);
  });
  try {
    await Promise.race([probe(), deadline]);
    return true;
  } catch (error) {
    const reason = (error as Error).message;
    if (process.env.CI) throw new Error(`${name} is required in CI but does not answer: ${reason}`);
    console.warn(`${name} does not answer (${reason}): its tests are skipped here; they never skip in CI`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}
