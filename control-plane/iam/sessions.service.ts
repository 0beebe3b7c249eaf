import { eq, sql } from 'drizzle-orm';
import { emit } from '../bus/outbox.js';
import { tooManyRequests, unauthorized } from '../http/errors.js';
import { transact, type Services } from '../services.js';
import { DUMMY_HASH, verifyPassword } from './passwords.js';
import { users } from './schema.js';
import { SERVICE_NAME } from './service.js';

const WRONG_CREDENTIALS = 'Wrong username or password';

export interface Session {
  token: string;
  tokenType: 'Bearer';
  expiresAt: string;
  user: { id: string; username: string; tenant: string | null };
}

/**
 * Checks a password and opens a session. Failures count per account: after LOGIN_MAX_FAILURES in a
 * row the account is locked for LOGIN_LOCK_SECONDS (429 with Retry-After), whoever is guessing.
 * An unknown username costs the same hash as a known one, so timing does not tell them apart.
 */
export async function login(services: Services, username: string, password: string): Promise<Session> {
  const { db, config } = services;
  const [user] = await db.select().from(users).where(eq(users.username, username.toLowerCase()));
  if (!user || !user.passwordHash) {
    await verifyPassword(password, DUMMY_HASH);
    throw unauthorized(WRONG_CREDENTIALS);
  }
  const lockedFor = user.lockedUntil ? Math.ceil((user.lockedUntil.getTime() - Date.now()) / 1000) : 0;
  if (lockedFor > 0) throw tooManyRequests(`Too many failed logins: this account is locked for ${lockedFor} more seconds`, lockedFor);

  if (!(await verifyPassword(password, user.passwordHash))) {
    await transact(services, async (tx) => {
      // Counted in SQL so concurrent guesses cannot overwrite each other's increments.
      const [counted] = await tx
        .update(users)
        .set({ failedLogins: sql`${users.failedLogins} + 1` })
        .where(eq(users.id, user.id))
        .returning({ attempts: users.failedLogins });
      const attempts = counted!.attempts;
      const locked = attempts >= config.LOGIN_MAX_FAILURES;
      if (locked) {
        await tx
          .update(users)
          .set({ failedLogins: 0, lockedUntil: new Date(Date.now() + config.LOGIN_LOCK_SECONDS * 1000) })
          .where(eq(users.id, user.id));
      }
      await emit(tx, SERVICE_NAME, 'iam.user.loginFailed', { id: user.id, tenant: user.tenantId, attempts, locked });
    });
    throw unauthorized(WRONG_CREDENTIALS);
  }
  if (user.status !== 'active') throw unauthorized('Account is disabled');

  return db.transaction(async (tx) => {
    await tx.update(users).set({ failedLogins: 0, lockedUntil: null, lastLoginAt: new Date() }).where(eq(users.id, user.id));
    const { token, expiresAt } = await services.tokens.issueSession(tx, user);
    return {
      token,
      tokenType: 'Bearer',
      expiresAt: expiresAt.toISOString(),
      user: { id: user.id, username: user.username, tenant: user.tenantId },
    } as const;
  });
}
