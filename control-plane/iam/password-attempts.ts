import { and, eq, isNull, lte, or, sql } from 'drizzle-orm';
import { emit } from '../bus/outbox.js';
import { tooManyRequests } from '../http/errors.js';
import { transact, type Services } from '../services.js';
import { verifyPassword } from './passwords.js';
import { users } from './schema.js';
import { SERVICE_NAME } from './service.js';

/**
 * Checks a password of an account under the lockout rule, and says whether it is right. The attempt
 * is claimed before the hash is compared, in one UPDATE that a lock refuses: of any number of
 * concurrent guesses at most LOGIN_MAX_FAILURES are compared, the rest (and every attempt until the
 * lock ends, whatever the password) get the 429. The claim that reaches the limit sets the lock;
 * a right password lifts it and clears the count, a wrong one is an `iam.user.loginFailed` event.
 */
export async function checkPasswordAttempt(
  services: Services,
  user: { id: string; tenantId: string | null; passwordHash: string },
  password: string,
): Promise<boolean> {
  const { db, config } = services;
  const now = new Date();
  const reachesLimit = sql`${users.failedLogins} + 1 >= ${config.LOGIN_MAX_FAILURES}`;
  const lockEnd = new Date(now.getTime() + config.LOGIN_LOCK_SECONDS * 1000).toISOString();
  const [claimed] = await db
    .update(users)
    .set({
      failedLogins: sql`case when ${reachesLimit} then 0 else ${users.failedLogins} + 1 end`,
      lockedUntil: sql`case when ${reachesLimit} then ${lockEnd}::timestamptz else null end`,
    })
    .where(and(eq(users.id, user.id), or(isNull(users.lockedUntil), lte(users.lockedUntil, now))))
    .returning({ failedLogins: users.failedLogins, lockedUntil: users.lockedUntil });
  if (!claimed) {
    const [row] = await db.select({ lockedUntil: users.lockedUntil }).from(users).where(eq(users.id, user.id));
    if (!row) return false; // deleted meanwhile
    const seconds = Math.max(1, Math.ceil(((row.lockedUntil?.getTime() ?? 0) - Date.now()) / 1000));
    throw tooManyRequests(`Too many failed logins: this account is locked for ${seconds} more seconds`, seconds);
  }

  if (await verifyPassword(password, user.passwordHash)) {
    await db.update(users).set({ failedLogins: 0, lockedUntil: null }).where(eq(users.id, user.id));
    return true;
  }
  const locked = claimed.lockedUntil !== null;
  const attempts = locked ? config.LOGIN_MAX_FAILURES : claimed.failedLogins;
  await transact(services, (tx) =>
    emit(tx, SERVICE_NAME, 'iam.user.loginFailed', { id: user.id, tenant: user.tenantId, attempts, locked }),
  );
  return false;
}
