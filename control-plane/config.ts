import { z } from 'zod';
import { EXECUTION_MESSAGE_DEFAULTS } from '../protocol/fleet.js';
import { allowedNetworksSetting } from '../protocol/outbound.js';
import { HEARTBEAT_SECONDS } from '../protocol/runner.js';

const port = z.coerce
  .number({ message: 'must be a port number' })
  .int('must be a whole number')
  .min(0, 'must be 0..65535 (0: any free port)')
  .max(65535, 'must be 0..65535 (0: any free port)');
const seconds = z.coerce.number({ message: 'must be a number of seconds' }).int('must be a whole number').positive('must be positive');
const url = (protocols: string[]) =>
  z.string().refine((v) => protocols.some((p) => v.startsWith(p)), `must start with ${protocols.join(' or ')}`);
const whole = (min: number, max?: number) => {
  const expected = max === undefined ? `a whole number of at least ${min}` : `a whole number from ${min} to ${max}`;
  const number = z.coerce
    .number({ message: `must be ${expected}` })
    .int(`must be ${expected}`)
    .min(min, `must be ${expected}`);
  return max === undefined ? number : number.max(max, `must be ${expected}`);
};
/** `<id>:<32 bytes in base64>`, such as `k2:q0Zk...=`; `openssl rand -base64 32` makes the bytes. */
const masterKey = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=$/, 'must be <id>:<32 bytes in base64>, such as k1:$(openssl rand -base64 32)');
const oneOf = <const V extends readonly [string, ...string[]]>(values: V) =>
  z.enum(values, { message: `must be one of ${values.join(', ')}` });

const schema = z.object({
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  PUBLIC_URL: url(['http://', 'https://']).optional(),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Unset: PGlite in PGLITE_DIR. postgres:// or postgresql://: node-postgres, or Neon's driver with DATABASE_DRIVER=neon. */
  DATABASE_URL: url(['postgres://', 'postgresql://']).optional(),
  DATABASE_DRIVER: oneOf(['pglite', 'pg', 'neon']).optional(),
  PGLITE_DIR: z.string().min(1).default('.hookline/pglite'),
  /** Neon's WebSocket proxy, for a PostgreSQL server that is not Neon: host:port/path, {host} and {port} replaced. */
  NEON_WS_PROXY: z.string().min(1).optional(),
  /** Unset: the in-process bus. amqp:// or amqps://: RabbitMQ. */
  AMQP_URL: url(['amqp://', 'amqps://']).optional(),
  BUS_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, - or _')
    .default('hookline'),
  BUS_MAX_ATTEMPTS: whole(1, 100).default(5),
  JWT_ALGORITHM: oneOf(['HS256', 'RS256', 'EdDSA']).default('HS256'),
  /** HS256 key (at least 32 characters). Unset: one is generated once and kept in the database. */
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** RS256/EdDSA private key, PKCS#8 PEM. Unset: a key pair is generated once and kept in the database. */
  JWT_PRIVATE_KEY: z.string().includes('PRIVATE KEY', { message: 'must be a PKCS#8 PEM private key' }).optional(),
  TOKEN_TTL_SECONDS: seconds.default(3600),
  LOGIN_MAX_FAILURES: whole(1).default(5),
  LOGIN_LOCK_SECONDS: seconds.default(300),
  BODY_LIMIT_BYTES: whole(1024).default(1024 * 1024),
  ADMIN_USERNAME: z.string().min(3, 'must be at least 3 characters').default('admin@hookline.local'),
  /** Unset on first start: a password is generated and printed once. */
  ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  /** Wraps the per-tenant keys that encrypt secrets. Unset: generated once into SECRETS_MASTER_KEY_FILE (one machine only). */
  SECRETS_MASTER_KEY: masterKey.optional(),
  /** Former master keys, comma-separated, still accepted until POST /api/v1/secrets/master-key/rotate re-wrapped every data key. */
  SECRETS_OLD_MASTER_KEYS: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((key) => key.trim())
        .filter(Boolean),
    )
    .pipe(z.array(masterKey))
    .optional(),
  SECRETS_MASTER_KEY_FILE: z.string().min(1).default('.hookline/secrets-master.key'),
  /** Audit records older than this many days (by receipt) are deleted; 0 keeps them forever. */
  AUDIT_RETENTION_DAYS: whole(0).default(365),
  /** How often runners send a heartbeat; one silent for three intervals is lost and its flows move. */
  RUNNER_HEARTBEAT_SECONDS: seconds.default(HEARTBEAT_SECONDS),
  /** Messages one execution may make between its steps, at most; a flow's `flowSettings.maxMessages` may lower it. */
  EXECUTION_MAX_MESSAGES: whole(1, EXECUTION_MESSAGE_DEFAULTS.ceiling).default(EXECUTION_MESSAGE_DEFAULTS.maxMessages),
  /** What one tenant may hold on the platform-wide runners, all together, so that it cannot take a shared fleet for itself. */
  SHARED_RUNNER_STEPS_PER_TENANT: whole(1).default(64),
  SHARED_RUNNER_FLOWS_PER_TENANT: whole(1).default(32),
  /** Step logs (what step workers wrote) older than this many days are deleted. */
  STEP_LOG_RETENTION_DAYS: whole(1).default(7),
  /** Shared with the edge Worker (a wrangler secret there): signs the calls between them. Unset: the edge bridge is off. */
  EDGE_CONTROL_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** The edge Worker's base URL, where flow triggers are pushed. */
  EDGE_URL: url(['http://', 'https://']).optional(),
  /** Private networks the calls made on a tenant's behalf (OAuth2 token requests) may reach: CIDRs, comma-separated. Unset: none. */
  OUTBOUND_ALLOWED_NETWORKS: allowedNetworksSetting,
});

export type Config = z.infer<typeof schema> & { databaseDriver: 'pglite' | 'pg' | 'neon' };

export class ConfigError extends Error {}

const SECRETS = new Set([
  'JWT_SECRET',
  'JWT_PRIVATE_KEY',
  'ADMIN_PASSWORD',
  'SECRETS_MASTER_KEY',
  'SECRETS_OLD_MASTER_KEYS',
  'EDGE_CONTROL_SECRET',
]);

/** `NAME="value"` for an error message; secrets and the passwords in URLs are not repeated, since such messages end up in logs. */
function shown(name: string, value: string): string {
  if (SECRETS.has(name)) return `${name} (${value.length} character${value.length === 1 ? '' : 's'}, not shown)`;
  return `${name}=${JSON.stringify(value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@'))}`;
}

/** Reads and checks the configuration; a wrong value names the variable and what it expects. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      return `  ${shown(name, cleaned[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  const databaseDriver = config.DATABASE_DRIVER ?? (config.DATABASE_URL ? 'pg' : 'pglite');
  if (databaseDriver !== 'pglite' && !config.DATABASE_URL) {
    throw new ConfigError(`Invalid configuration:\n  DATABASE_URL: is required when DATABASE_DRIVER=${databaseDriver}`);
  }
  if (config.EDGE_URL && !config.EDGE_CONTROL_SECRET) {
    throw new ConfigError(
      "Invalid configuration:\n  EDGE_CONTROL_SECRET: is required with EDGE_URL (the same value as the Worker's secret)",
    );
  }
  if (config.JWT_ALGORITHM === 'HS256' && config.JWT_PRIVATE_KEY) {
    throw new ConfigError('Invalid configuration:\n  JWT_PRIVATE_KEY: is for RS256 or EdDSA; set JWT_ALGORITHM or use JWT_SECRET');
  }
  return { ...config, databaseDriver };
}
