import { eq } from 'drizzle-orm';
import { unauthorized } from '../http/errors.js';
import type { Services } from '../services.js';
import { checkPasswordAttempt } from './password-attempts.js';
import { DUMMY_HASH, verifyPassword } from './passwords.js';
import { users } from './schema.js';

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
 * An unknown username and a disabled account cost the same hash as an active one and get the same
 * 401 whatever the password, so neither timing nor the answer tells them apart from a wrong password.
 */
export async function login(services: Services, username: string, password: string): Promise<Session> {
  const { db } = services;
  const [user] = await db.select().from(users).where(eq(users.username, username.toLowerCase()));
  if (!user?.passwordHash || user.status !== 'active') {
    await verifyPassword(password, DUMMY_HASH);
    throw unauthorized(WRONG_CREDENTIALS);
  }
  if (!(await checkPasswordAttempt(services, { id: user.id, tenantId: user.tenantId, passwordHash: user.passwordHash }, password))) {
    throw unauthorized(WRONG_CREDENTIALS);
  }

  return db.transaction(async (tx) => {
    await tx.update(users).set({ lastLoginAt: new Date() }).where(eq(users.id, user.id));
    const { token, expiresAt } = await services.tokens.issueSession(tx, user);
    return {
      token,
      tokenType: 'Bearer',
      expiresAt: expiresAt.toISOString(),
      user: { id: user.id, username: user.username, tenant: user.tenantId },
    } as const;
  });
}
