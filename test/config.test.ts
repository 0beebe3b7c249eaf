import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONTROL_PLANE_SETTINGS, loadConfig } from '../control-plane/config.js';
import { parseSettings, SettingsError, type SettingsTable } from '../protocol/settings.js';
import { RUNNER_SETTINGS } from '../runner/main.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The message loadConfig throws for `env`, failing if it throws something else or nothing. */
function rejection(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return (error as Error).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('runs on the embedded defaults with nothing set', () => {
    expect(loadConfig({})).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      databaseDriver: 'pglite',
      PGLITE_DIR: '.hookline/pglite',
      BUS_NAMESPACE: 'hookline',
      BUS_MAX_ATTEMPTS: 5,
      JWT_ALGORITHM: 'HS256',
      TOKEN_TTL_SECONDS: 3600,
      ADMIN_USERNAME: 'admin@hookline.local',
    });
    const config = loadConfig({});
    expect(config.OUTBOUND_ALLOWED_NETWORKS).toEqual([]);
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.AMQP_URL).toBeUndefined();
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '', LOG_LEVEL: '' })).toMatchObject({
      PORT: 3000,
      databaseDriver: 'pglite',
      LOG_LEVEL: 'info',
    });
  });

  it('reads the values it is given, and picks node-postgres for a postgres:// URL', () => {
    const config = loadConfig({
      PORT: '8080',
      LOG_LEVEL: 'debug',
      DATABASE_URL: 'postgres://u:p@db:5432/hookline',
      AMQP_URL: 'amqp://mq',
      TOKEN_TTL_SECONDS: '60',
    });
    expect(config).toMatchObject({ PORT: 8080, LOG_LEVEL: 'debug', databaseDriver: 'pg', AMQP_URL: 'amqp://mq', TOKEN_TTL_SECONDS: 60 });
    expect(loadConfig({ DATABASE_URL: 'postgresql://db/x', DATABASE_DRIVER: 'neon' }).databaseDriver).toBe('neon');
  });

  const wrong: [Record<string, string>, string][] = [
    [{ PORT: 'abc' }, 'PORT="abc": must be a port number'],
    [{ PORT: '70000' }, 'PORT="70000": must be 0..65535'],
    [{ PORT: '80.5' }, 'PORT="80.5": must be a whole number'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL="mysql://x": must start with postgres:// or postgresql://'],
    [{ AMQP_URL: 'http://mq' }, 'AMQP_URL="http://mq": must start with amqp:// or amqps://'],
    [{ JWT_SECRET: 'too-short' }, 'JWT_SECRET (9 characters, not shown): must be at least 32 characters'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL="loud": must be one of fatal, error, warn, info, debug, trace, silent'],
    [{ JWT_ALGORITHM: 'none' }, 'JWT_ALGORITHM="none": must be one of HS256, RS256, EdDSA'],
    [{ DATABASE_DRIVER: 'mysql' }, 'DATABASE_DRIVER="mysql": must be one of pglite, pg, neon'],
    [{ DATABASE_DRIVER: 'neon' }, 'DATABASE_URL: is required when DATABASE_DRIVER=neon'],
    [{ DATABASE_DRIVER: 'pg' }, 'DATABASE_URL: is required when DATABASE_DRIVER=pg'],
    [{ BUS_MAX_ATTEMPTS: 'many' }, 'BUS_MAX_ATTEMPTS="many": must be a whole number from 1 to 100'],
    [{ BUS_NAMESPACE: 'Hook Line' }, 'BUS_NAMESPACE="Hook Line": must be lowercase letters, digits, - or _'],
    [{ TOKEN_TTL_SECONDS: '-5' }, 'TOKEN_TTL_SECONDS="-5": must be positive'],
    [{ BODY_LIMIT_BYTES: '100' }, 'BODY_LIMIT_BYTES="100": must be a whole number of at least 1024'],
    [{ ADMIN_PASSWORD: 'short' }, 'ADMIN_PASSWORD (5 characters, not shown): must be at least 12 characters'],
    [
      { JWT_PRIVATE_KEY: 'x'.repeat(40), JWT_ALGORITHM: 'RS256' },
      'JWT_PRIVATE_KEY (40 characters, not shown): must be a PKCS#8 PEM private key',
    ],
    [{ PUBLIC_URL: 'hookline.example' }, 'PUBLIC_URL="hookline.example": must start with http:// or https://'],
    [
      { OUTBOUND_ALLOWED_NETWORKS: '127.0.0.1/32,intranet' },
      'OUTBOUND_ALLOWED_NETWORKS="127.0.0.1/32,intranet": "intranet" is not a network such as 10.0.0.0/8 or fd00::/8: give comma-separated networks in CIDR notation',
    ],
  ];
  it.each(wrong)('refuses %j, naming the variable and what it expects', (env, message) => {
    const text = rejection(env);
    expect(text).toMatch(/^Invalid configuration:\n/);
    expect(text).toContain(message);
  });

  it('lists every wrong variable at once', () => {
    const text = rejection({ PORT: 'abc', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
    expect(
      text
        .split('\n')
        .slice(1)
        .map((line) => line.trim().split(/[=: (]/)[0]),
    ).toEqual(['PORT', 'LOG_LEVEL', 'DATABASE_URL']);
  });

  it('never repeats a secret or the password in a URL', () => {
    const text = rejection({
      JWT_SECRET: 'hunter2-hunter2',
      ADMIN_PASSWORD: 'hunter2',
      DATABASE_URL: 'mysql://root:hunter2@db/x',
      AMQP_URL: 'http://guest:hunter2@mq',
    });
    expect(text).not.toContain('hunter2');
    expect(text).toContain('DATABASE_URL="mysql://root:***@db/x"');
    expect(text).toContain('AMQP_URL="http://guest:***@mq"');
  });

  it('refuses a private key for HS256', () => {
    expect(rejection({ JWT_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----' })).toContain(
      'JWT_PRIVATE_KEY: is for RS256 or EdDSA',
    );
  });
});

/** Runs an entry point (the control plane's by default) with only `env` (and PATH/HOME) set. */
function runMain(
  args: string[],
  env: Record<string, string>,
  entry = 'control-plane/main.ts',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['tsx', entry, ...args],
      { cwd: root, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

describe('control-plane/main.ts', () => {
  it('exits non-zero with a message naming the wrong variable, before starting anything', async () => {
    const run = await runMain([], { PORT: 'abc' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Invalid configuration:\n  PORT="abc": must be a port number');
    expect(run.stderr).toContain('Run with --help to see every setting.');
    expect(run.stdout).not.toContain('is running');
  });

  it('refuses a weak ADMIN_PASSWORD on the first start, without repeating it', async () => {
    const run = await runMain([], { PGLITE_DIR: 'memory://', ADMIN_PASSWORD: 'hooklineadmin', LOG_LEVEL: 'silent' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Invalid configuration:\n  ADMIN_PASSWORD (not shown): too easy to guess. ');
    expect(run.stderr).toContain('Choose another, or leave it unset to have one generated.');
    expect(run.stderr).not.toContain('hooklineadmin');
    expect(run.stderr).not.toMatch(/\bat \S+ \(/); // a message, not a stack trace
    expect(run.stdout).not.toContain('is running');
  }, 150_000); // it opens and migrates a database first: slow on a busy machine

  it('prints the help with --help and exits 0', async () => {
    const run = await runMain(['--help'], { PORT: 'abc' });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage:');
    for (const name of Object.keys(CONTROL_PLANE_SETTINGS)) expect(run.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
  });
});

/** A value each setting refuses. */
const WRONG: Record<string, string> = {
  PORT: '-1',
  PUBLIC_URL: 'ftp://x',
  LOG_LEVEL: 'loud',
  DATABASE_URL: 'mysql://x',
  DATABASE_DRIVER: 'mysql',
  AMQP_URL: 'http://mq',
  BUS_NAMESPACE: 'Hook Line',
  BUS_MAX_ATTEMPTS: '0',
  JWT_ALGORITHM: 'none',
  JWT_SECRET: 'short',
  JWT_PRIVATE_KEY: 'not a key',
  TOKEN_TTL_SECONDS: '0',
  LOGIN_MAX_FAILURES: '0',
  LOGIN_LOCK_SECONDS: 'soon',
  BODY_LIMIT_BYTES: '10',
  ADMIN_USERNAME: 'a',
  ADMIN_PASSWORD: 'short',
  SECRETS_MASTER_KEY: 'k1:short',
  SECRETS_OLD_MASTER_KEYS: 'k1:short',
  AUDIT_RETENTION_DAYS: '-1',
  RUNNER_HEARTBEAT_SECONDS: '1.5',
  EXECUTION_MAX_MESSAGES: '0',
  SHARED_RUNNER_STEPS_PER_TENANT: '0',
  SHARED_RUNNER_FLOWS_PER_TENANT: 'many',
  STEP_LOG_RETENTION_DAYS: '0',
  EDGE_CONTROL_SECRET: 'short',
  EDGE_URL: 'edge.example',
  OUTBOUND_ALLOWED_NETWORKS: 'intranet',
  CONTROL_PLANE_URL: 'not a url',
  RUNNER_TOKEN: 'secret-token',
  RUNNER_NAME: 'my runner',
  RUNNER_DRIVER: 'vm',
  RUNNER_CAPACITY: '100000',
  RUNNER_WARM_WORKERS: '65',
  RUNNER_DEPLOY_TIMEOUT_SECONDS: '0',
  RUNNER_TRUSTED_MODULES: 'crm,./relative',
};
/** Settings that take any text (a folder, an address): none is wrong, so they have no entry in WRONG. */
const ANY_TEXT = new Set(['HOST', 'PGLITE_DIR', 'NEON_WS_PROXY', 'SECRETS_MASTER_KEY_FILE', 'RUNNER_DATA_DIR']);

describe('every setting', () => {
  const tables: [string, SettingsTable][] = [
    ['control plane', CONTROL_PLANE_SETTINGS],
    ['runner', RUNNER_SETTINGS],
  ];
  const named = tables.flatMap(([table, settings]) => Object.keys(settings).map((name) => [table, name, settings] as const));

  it('is tried below: it has a wrong value, or takes any text', () => {
    expect(named.map(([, name]) => name).filter((name) => !(name in WRONG) && !ANY_TEXT.has(name))).toEqual([]);
  });

  it.each(named.filter(([, name]) => name in WRONG))('%s %s: a wrong value is refused with a message naming it', (_, name, settings) => {
    expect(() => parseSettings(settings, { [name]: WRONG[name] })).toThrow(new RegExp(`^  ${name}\\b`, 'm'));
  });

  it('runner/main.ts --help names every runner setting; a wrong one stops it, named, before it starts', async () => {
    const help = await runMain(['--help'], {}, 'runner/main.ts');
    expect(help.code).toBe(0);
    for (const name of Object.keys(RUNNER_SETTINGS)) expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    const wrong = await runMain([], { RUNNER_CAPACITY: 'many' }, 'runner/main.ts');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('RUNNER_CAPACITY="many": must be a whole number from 1 to');
    expect(wrong.stderr).toContain('RUNNER_TOKEN: is required');
    expect(wrong.stderr).toContain('Run with --help to see every setting.');
  });

  it('npm start --help names every setting of the control plane and its own; a wrong one stops it, named, before it starts', async () => {
    const help = await runMain(['--help'], {}, 'scripts/start.ts');
    expect(help.code).toBe(0);
    for (const name of [...Object.keys(CONTROL_PLANE_SETTINGS), 'EDGE_PORT', 'HOOKLINE_DATA_DIR', 'RUNNER_TRUSTED_MODULES'])
      expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    const wrong = await runMain([], { EDGE_PORT: '70000' }, 'scripts/start.ts');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('EDGE_PORT="70000": must be 0..65535');
    expect(wrong.stdout).not.toContain('is running');
  });
});
