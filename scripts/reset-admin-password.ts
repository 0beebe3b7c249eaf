/**
 * `npm run reset-admin-password`: a new password for the admin (ADMIN_USERNAME), for when the one
 * printed on the first start is lost. Uses the same configuration as the control plane (DATABASE_URL
 * or PGlite in PGLITE_DIR; stop a PGlite control plane first: PGlite allows one process).
 */
import { and, eq, isNull } from 'drizzle-orm';
import { parseArgs } from 'node:util';
import { adminPasswordProblem } from '../control-plane/iam/bootstrap.js';
import { configOrExit } from '../control-plane/main.js';
import { openDatabase } from '../control-plane/db/index.js';
import { generatePassword, hashPassword } from '../control-plane/iam/passwords.js';
import { tokens, users } from '../control-plane/iam/schema.js';
import { createLogger } from '../control-plane/logger.js';

const { values: args } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } } });
if (args.help) {
  console.log(`Usage: npm run reset-admin-password

Sets a new password for ADMIN_USERNAME (default admin@hookline.local): ADMIN_PASSWORD if set, else a
generated one, printed once; a weak ADMIN_PASSWORD is refused. Unlocks the account and ends its
login sessions. Reads the same settings as the control plane (npx tsx control-plane/main.ts --help).`);
  process.exit(0);
}

const config = configOrExit();
const weak = config.ADMIN_PASSWORD && (await adminPasswordProblem(config.ADMIN_PASSWORD, config.ADMIN_USERNAME));
if (weak) {
  console.error(weak);
  process.exit(1);
}
const database = await openDatabase(config, createLogger('warn'));
try {
  await database.migrate();
  const username = config.ADMIN_USERNAME.toLowerCase();
  const password = config.ADMIN_PASSWORD ?? generatePassword();
  const changed = await database.db.transaction(async (tx) => {
    const [user] = await tx
      .update(users)
      .set({ passwordHash: await hashPassword(password), failedLogins: 0, lockedUntil: null, status: 'active', updatedAt: new Date() })
      .where(eq(users.username, username))
      .returning({ id: users.id });
    if (!user) return false;
    await tx
      .update(tokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(tokens.userId, user.id), eq(tokens.kind, 'session'), isNull(tokens.revokedAt)));
    return true;
  });
  if (!changed) {
    console.error(`No account ${username}: set ADMIN_USERNAME to the admin's username.`);
    process.exitCode = 1;
  } else {
    console.log(
      config.ADMIN_PASSWORD ? `Password of ${username} set to ADMIN_PASSWORD.` : `New password of ${username}: ${password}   (shown once)`,
    );
  }
} finally {
  await database.close();
}
