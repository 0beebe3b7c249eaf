/**
 * Whether a real service (PostgreSQL, RabbitMQ) answers. Outside CI a missing service skips its
 * tests with a warning; in CI (CI set) it fails the run, so those tests never skip there.
 */
export async function serviceAvailable(name: string, probe: () => Promise<unknown>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (error) {
    const reason = (error as Error).message;
    if (process.env.CI) throw new Error(`${name} is required in CI but does not answer: ${reason}`);
    console.warn(`${name} does not answer (${reason}): its tests are skipped here; they never skip in CI`);
    return false;
  }
}
