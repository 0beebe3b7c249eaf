import { and, count, eq, isNull } from 'drizzle-orm';
import { SettingsError } from '../../protocol/settings.js';
import type { Database } from '../db/index.js';
import { passwordWeakness } from './password-policy.js';
import { generatePassword, hashPassword } from './passwords.js';
import { roles, tenants, userRoles, users } from './schema.js';

/** The global roles every installation has (OIH's system and membership roles). */
export const SYSTEM_ROLES = {
  ADMIN: ['all'],
  USER: [],
  TENANT_ADMIN: ['tenant.all'],
  TENANT_INTEGRATOR: [
    'flows.read',
    'flows.write',
    'flows.control',
    'logs.read',
    'secrets.secret.read',
    'secrets.secret.write',
    'components.read',
    'executions.read',
    'runners.read',
    'tenant.profile.read',
  ],
  TENANT_DEVELOPER: [
    'flows.read',
    'flows.write',
    'logs.read',
    'components.read',
    'components.write',
    'executions.read',
    'tenant.profile.read',
  ],
  TENANT_GUEST: ['flows.read', 'logs.read', 'executions.read', 'tenant.profile.read'],
} as const;

export const DEFAULT_TENANT = 'default';

const ADMIN_FIRSTNAME = 'Admin';

/** Why ADMIN_PASSWORD fails the password policy (without repeating it), or null when it passes. */
export async function adminPasswordProblem(password: string, username: string): Promise<string | null> {
  const weakness = await passwordWeakness(password, [username, ADMIN_FIRSTNAME]);
  return (
    weakness && `Invalid configuration:\n  ADMIN_PASSWORD (not shown): ${weakness} Choose another, or leave it unset to have one generated.`
  );
}

/**
 * Creates the system roles, and on the very first start the default tenant and the first admin.
 * Safe with several replicas starting at once: every insert is insert-if-absent.
 * Returns the admin's generated password only to the replica that created the admin.
 */
export async function bootstrapIam(
  db: Database,
  admin: { username: string; password?: string },
): Promise<{ created: false } | { created: true; username: string; password: string; generated: boolean }> {
  await db
    .insert(roles)
    .values(
      Object.entries(SYSTEM_ROLES).map(([name, permissions]) => ({ name, permissions: [...permissions], isSystem: true, tenantId: null })),
    )
    .onConflictDoNothing();
  const [{ users: existing } = { users: 0 }] = await db.select({ users: count() }).from(users);
  if (existing > 0) return { created: false };
  const problem = admin.password && (await adminPasswordProblem(admin.password, admin.username));
  if (problem) throw new SettingsError(problem);

  return db.transaction(async (tx) => {
    await tx.insert(tenants).values({ name: DEFAULT_TENANT }).onConflictDoNothing();
    const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.name, DEFAULT_TENANT));
    const password = admin.password ?? generatePassword();
    const [user] = await tx
      .insert(users)
      .values({
        username: admin.username.toLowerCase(),
        passwordHash: await hashPassword(password),
        tenantId: tenant!.id,
        firstname: ADMIN_FIRSTNAME,
      })
      .onConflictDoNothing()
      .returning({ id: users.id });
    if (!user) return { created: false } as const;
    const [adminRole] = await tx
      .select({ id: roles.id })
      .from(roles)
      .where(and(eq(roles.name, 'ADMIN'), isNull(roles.tenantId)));
    await tx.insert(userRoles).values({ userId: user.id, roleId: adminRole!.id });
    return { created: true, username: admin.username.toLowerCase(), password, generated: !admin.password } as const;
  });
}
