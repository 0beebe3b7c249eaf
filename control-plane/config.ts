import { z } from 'zod';
import { EXECUTION_MESSAGE_DEFAULTS } from '../protocol/fleet.js';
import { allowedNetworksSetting } from '../protocol/outbound.js';
import { HEARTBEAT_SECONDS } from '../protocol/runner.js';
import {
  logLevel,
  oneOf,
  parseSettings,
  port,
  seconds,
  settingsError,
  url,
  whole,
  type SettingsOf,
  type SettingsTable,
} from '../protocol/settings.js';

/** `<id>:<32 bytes in base64>`, such as `k2:q0Zk...=`; `openssl rand -base64 32` makes the bytes. */
const masterKey = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=$/, 'must be <id>:<32 bytes in base64>, such as k1:$(openssl rand -base64 32)');
/** The control plane's settings, in the order --help lists them. */
export const CONTROL_PLANE_SETTINGS = {
  PORT: { schema: port.default(3000), help: 'where to listen: the port (0: any free one)' },
  HOST: { schema: z.string().min(1).default('127.0.0.1'), help: 'where to listen: the address' },
  PUBLIC_URL: { schema: url(['http://', 'https://']).optional(), help: 'the URL to print and link to (default http://HOST:PORT)' },
  LOG_LEVEL: {
    schema: logLevel,
    help: 'fatal | error | warn | info | debug | trace | silent',
  },
  DATABASE_URL: {
    schema: url(['postgres://', 'postgresql://']).optional(),
    help: "postgres://... to use PostgreSQL (node-postgres, or Neon's driver with DATABASE_DRIVER=neon); unset: PGlite in PGLITE_DIR",
  },
  DATABASE_DRIVER: {
    schema: oneOf(['pglite', 'pg', 'neon']).optional(),
    help: "pglite | pg | neon (Neon's serverless driver for DATABASE_URL); default: pg with DATABASE_URL, else pglite",
  },
  PGLITE_DIR: { schema: z.string().min(1).default('.hookline/pglite'), help: "PGlite's data folder (memory:// keeps nothing)" },
  NEON_WS_PROXY: {
    schema: z.string().min(1).optional(),
    help: "Neon's WebSocket proxy, for a PostgreSQL server that is not Neon: host:port/path, {host} and {port} replaced",
  },
  AMQP_URL: { schema: url(['amqp://', 'amqps://']).optional(), help: 'amqp://... to use RabbitMQ; unset: the in-process event bus' },
  BUS_NAMESPACE: {
    schema: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, - or _')
      .default('hookline'),
    help: 'prefix of the exchanges and queues',
  },
  BUS_MAX_ATTEMPTS: { schema: whole(1, 100).default(5), help: 'deliveries of one event to a handler before it is dead-lettered' },
  JWT_ALGORITHM: {
    schema: oneOf(['HS256', 'RS256', 'EdDSA']).default('HS256'),
    help: 'HS256 | RS256 | EdDSA: how login tokens are signed',
  },
  JWT_SECRET: {
    schema: z.string().min(32, 'must be at least 32 characters').optional(),
    help: 'the HS256 key, at least 32 characters (default: generated once, kept in the database)',
    secret: true,
  },
  JWT_PRIVATE_KEY: {
    schema: z.string().includes('PRIVATE KEY', { message: 'must be a PKCS#8 PEM private key' }).optional(),
    help: 'the RS256 or EdDSA private key, PKCS#8 PEM (default: a key pair generated once, kept in the database)',
    secret: true,
  },
  TOKEN_TTL_SECONDS: { schema: seconds.default(3600), help: 'lifetime of login tokens' },
  LOGIN_MAX_FAILURES: { schema: whole(1).default(5), help: 'failed logins in a row before the account is locked' },
  LOGIN_LOCK_SECONDS: { schema: seconds.default(300), help: 'how long a locked account stays locked' },
  BODY_LIMIT_BYTES: { schema: whole(1024).default(1024 * 1024), help: 'the largest request body the API takes' },
  ADMIN_USERNAME: {
    schema: z.string().min(3, 'must be at least 3 characters').default('admin@hookline.local'),
    help: 'the first admin, created on the first start',
  },
  ADMIN_PASSWORD: {
    schema: z.string().min(12, 'must be at least 12 characters').optional(),
    help: 'its password, on the first start: 12+ characters, not easy to guess (default: generated, printed once)',
    secret: true,
  },
  SECRETS_MASTER_KEY: {
    schema: masterKey.optional(),
    help: '<id>:<32 bytes in base64>: wraps the per-tenant keys that encrypt secrets (default: generated once into SECRETS_MASTER_KEY_FILE, for one machine only)',
    secret: true,
  },
  SECRETS_OLD_MASTER_KEYS: {
    schema: z
      .string()
      .transform((value) =>
        value
          .split(',')
          .map((key) => key.trim())
          .filter(Boolean),
      )
      .pipe(z.array(masterKey))
      .optional(),
    help: 'former master keys, comma-separated, still accepted until POST /api/v1/secrets/master-key/rotate re-wrapped every data key',
    secret: true,
  },
  SECRETS_MASTER_KEY_FILE: {
    schema: z.string().min(1).default('.hookline/secrets-master.key'),
    help: 'where a generated master key is kept',
  },
  AUDIT_RETENTION_DAYS: { schema: whole(0).default(365), help: 'audit records are kept this many days (by receipt; 0: forever)' },
  RUNNER_HEARTBEAT_SECONDS: {
    schema: seconds.default(HEARTBEAT_SECONDS),
    help: 'how often runners report; one silent for three intervals is lost and its flows move',
  },
  EXECUTION_MAX_MESSAGES: {
    schema: whole(1, EXECUTION_MESSAGE_DEFAULTS.ceiling).default(EXECUTION_MESSAGE_DEFAULTS.maxMessages),
    help: "messages one execution may make between its steps, at most; a flow's flowSettings.maxMessages may lower it",
  },
  SHARED_RUNNER_STEPS_PER_TENANT: { schema: whole(1).default(64), help: 'step workers one tenant may hold on the platform-wide runners' },
  SHARED_RUNNER_FLOWS_PER_TENANT: { schema: whole(1).default(32), help: 'flows one tenant may run on the platform-wide runners' },
  STEP_LOG_RETENTION_DAYS: { schema: whole(1).default(7), help: 'step logs (what step workers wrote) are kept this many days' },
  EDGE_CONTROL_SECRET: {
    schema: z.string().min(32, 'must be at least 32 characters').optional(),
    help: 'shared with the edge Worker (a wrangler secret there): signs the calls between them; unset: the edge bridge is off',
    secret: true,
  },
  EDGE_URL: { schema: url(['http://', 'https://']).optional(), help: "the edge Worker's base URL, where flow triggers are pushed" },
  OUTBOUND_ALLOWED_NETWORKS: {
    schema: allowedNetworksSetting,
    help: "private networks the calls made for tenants may reach (OAuth2 token requests; under npm start the runner's steps too), comma-separated CIDRs such as 127.0.0.1/32,10.0.0.0/8 (default none: loopback, link-local and private addresses are refused, after DNS and at every redirect)",
  },
} satisfies SettingsTable;

export type Config = SettingsOf<typeof CONTROL_PLANE_SETTINGS> & { databaseDriver: 'pglite' | 'pg' | 'neon' };

/** Reads and checks the configuration; a wrong value names the variable and what it expects. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const config = parseSettings(CONTROL_PLANE_SETTINGS, env);
  const databaseDriver = config.DATABASE_DRIVER ?? (config.DATABASE_URL ? 'pg' : 'pglite');
  if (databaseDriver !== 'pglite' && !config.DATABASE_URL)
    throw settingsError([`DATABASE_URL: is required when DATABASE_DRIVER=${databaseDriver}`]);
  if (config.EDGE_URL && !config.EDGE_CONTROL_SECRET)
    throw settingsError(["EDGE_CONTROL_SECRET: is required with EDGE_URL (the same value as the Worker's secret)"]);
  if (config.JWT_ALGORITHM === 'HS256' && config.JWT_PRIVATE_KEY)
    throw settingsError(['JWT_PRIVATE_KEY: is for RS256 or EdDSA; set JWT_ALGORITHM or use JWT_SECRET']);
  return { ...config, databaseDriver };
}
