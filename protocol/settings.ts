import { z } from 'zod';

/**
 * One setting of an entry point (an environment variable): how its value is read (zod, with the
 * messages a wrong value gets), what --help says of it, and whether it is a secret, never repeated
 * in a message. Each entry point has one table of them; `--help` is made from it, so it names every one.
 */
export interface Setting<S extends z.ZodType = z.ZodType> {
  schema: S;
  help: string;
  secret?: boolean;
  /** The default as --help tells it, when the schema's own is computed (such as the host name). */
  shownDefault?: string;
}

export type SettingsTable = Record<string, Setting>;
export type SettingsOf<T extends SettingsTable> = z.output<z.ZodObject<{ [K in keyof T]: T[K]['schema'] }>>;

// The kinds of value settings take, each with the message a wrong value gets.
export const port = z.coerce
  .number({ message: 'must be a port number' })
  .int('must be a whole number')
  .min(0, 'must be 0..65535 (0: any free port)')
  .max(65535, 'must be 0..65535 (0: any free port)');
export const seconds = z.coerce
  .number({ message: 'must be a number of seconds' })
  .int('must be a whole number')
  .positive('must be positive');
export const url = (protocols: string[]) =>
  z.string().refine((v) => protocols.some((p) => v.startsWith(p)), `must start with ${protocols.join(' or ')}`);
export const whole = (min: number, max?: number) => {
  const expected = max === undefined ? `a whole number of at least ${min}` : `a whole number from ${min} to ${max}`;
  const number = z.coerce
    .number({ message: `must be ${expected}` })
    .int(`must be ${expected}`)
    .min(min, `must be ${expected}`);
  return max === undefined ? number : number.max(max, `must be ${expected}`);
};
export const oneOf = <const V extends readonly [string, ...string[]]>(values: V) =>
  z.enum(values, { message: `must be one of ${values.join(', ')}` });
export const logLevel = oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

/** A setting is wrong: the message names each wrong one and what it expects. */
export class SettingsError extends Error {}

/** The error for settings found wrong together, after each was read (one needs another). */
export const settingsError = (problems: string[]) =>
  new SettingsError(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);

/** `NAME="value"` for a message; a secret and the password in a URL are not repeated, since such messages end up in logs. */
function shown(name: string, value: string | undefined, secret: boolean): string {
  if (value === undefined) return name;
  if (secret) return `${name} (${value.length} character${value.length === 1 ? '' : 's'}, not shown)`;
  return `${name}=${JSON.stringify(value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@'))}`;
}

/** Reads the table's settings from `env` (an empty variable is unset); a wrong value throws, naming every wrong one. */
export function parseSettings<T extends SettingsTable>(table: T, env: Record<string, string | undefined>): SettingsOf<T> {
  const given = Object.fromEntries(
    Object.entries(env).filter(([name, value]) => Object.hasOwn(table, name) && value !== undefined && value !== ''),
  );
  const schema = z.object(Object.fromEntries(Object.entries(table).map(([name, setting]) => [name, setting.schema])));
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data as SettingsOf<T>;
  throw settingsError(
    parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      return `${shown(name, given[name], table[name]?.secret === true)}: ${issue.message}`;
    }),
  );
}

const HELP_WIDTH = 100;
const NAME_COLUMN = 26;

/** What --help says of each setting, in the table's order: its name, its help and its default. */
export function settingsHelp(table: SettingsTable): string {
  return Object.entries(table)
    .map(([name, setting]) => {
      const schema = setting.schema as z.ZodType;
      const value = setting.shownDefault ?? (schema instanceof z.ZodDefault ? String(schema.def.defaultValue) : undefined);
      const fallback = value === undefined ? '' : ` (default ${value})`;
      const head = `  ${name.padEnd(NAME_COLUMN - 3)} `;
      return wrap(`${setting.help}${fallback}`, HELP_WIDTH - Math.max(head.length, NAME_COLUMN))
        .map((line, index) => (index === 0 ? head : ' '.repeat(NAME_COLUMN)) + line)
        .join('\n');
    })
    .join('\n');
}

/** `text` in lines of at most `width` characters, broken at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}
