/**
 * Permission names, as OIH spells them. Restricted permissions are covered only by `all` (or held
 * by name); `tenant.all` grants every common permission within the holder's own tenant.
 */
export const RESTRICTED_PERMISSIONS = [
  'all',
  'iam.tenant.create',
  'iam.tenant.read',
  'iam.tenant.update',
  'iam.tenant.delete',
  'iam.account.create',
  'iam.account.read',
  'iam.account.update',
  'iam.account.delete',
  'iam.role.create',
  'iam.role.read',
  'iam.role.update',
  'iam.role.delete',
  'iam.token.create',
  'iam.token.read',
  'iam.token.update',
  'iam.token.delete',
  'iam.token.introspect',
  'secrets.secret.deleteAny',
  'secrets.authClient.deleteAny',
] as const;

export const COMMON_PERMISSIONS = [
  'tenant.all',
  'tenant.account.create',
  'tenant.account.read',
  'tenant.account.update',
  'tenant.account.delete',
  'tenant.roles.create',
  'tenant.roles.read',
  'tenant.roles.update',
  'tenant.roles.delete',
  'tenant.token.create',
  'tenant.token.read',
  'tenant.token.delete',
  'tenant.profile.read',
  'tenant.profile.update',
  'flows.read',
  'flows.write',
  'flows.control',
  'logs.read',
  'logs.push',
  'secrets.secret.read',
  'secrets.secret.write',
  'secrets.secret.readRaw',
  'secrets.authClient.readRaw',
  'metadata.domains.crud',
  'components.read',
  'components.write',
  'runners.read',
  'runners.write',
  'executions.read',
] as const;

export type Permission = (typeof RESTRICTED_PERMISSIONS)[number] | (typeof COMMON_PERMISSIONS)[number];
export const ALL_PERMISSIONS: readonly Permission[] = [...RESTRICTED_PERMISSIONS, ...COMMON_PERMISSIONS];

const common = new Set<string>(COMMON_PERMISSIONS);
export const isPermission = (name: string): name is Permission => (ALL_PERMISSIONS as readonly string[]).includes(name);
export const isCommonPermission = (name: string): boolean => common.has(name);

/** Whether a set of granted permissions covers `needed` (OIH's `hasAll` rule). */
export function grants(granted: Iterable<string>, needed: string): boolean {
  const set = granted instanceof Set ? (granted as Set<string>) : new Set(granted);
  if (set.has('all') || set.has(needed)) return true;
  return set.has('tenant.all') && common.has(needed);
}

/** The permissions among `wanted` that `granted` does not cover, sorted and each once. */
export function lacking(granted: Iterable<string>, wanted: Iterable<string>): string[] {
  const set = granted instanceof Set ? (granted as Set<string>) : new Set(granted);
  return [...new Set(wanted)].filter((permission) => !grants(set, permission)).sort();
}
