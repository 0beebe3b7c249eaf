import { createHash } from 'node:crypto';
import { existsSync, openAsBlob, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const migrationsFolder = fileURLToPath(new URL('../../migrations', import.meta.url));
const packageJson = fileURLToPath(new URL('../../package.json', import.meta.url));

/** Every file under `dir`, sorted, so the hash does not depend on the order the file system lists them in. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .flatMap((path) => (statSync(path).isDirectory() ? filesUnder(path) : [path]))
    .sort();
}

/** Changes with any migration and with PGlite's version (its data folder format), so either rebuilds the template. */
function templateKey(): string {
  const hash = createHash('sha256');
  const { dependencies } = JSON.parse(readFileSync(packageJson, 'utf8')) as { dependencies: Record<string, string> };
  hash.update(`pglite ${dependencies['@electric-sql/pglite']}\n`);
  for (const file of filesUnder(migrationsFolder)) hash.update(`${relative(migrationsFolder, file)}\n`).update(readFileSync(file));
  return hash.digest('hex').slice(0, 16);
}

/** Runs initdb and every migration once, and keeps the data folder where the next boot finds it. */
async function buildTemplate(path: string): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  const client = new PGlite('memory://');
  await migrate(drizzle({ client }), { migrationsFolder });
  const dump = await client.dumpDataDir('none');
  await client.close();
  // Written aside and renamed: files building it at once never read a half-written template.
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
  renameSync(partial, path);
}

const templatePath = () => join(tmpdir(), `hookline-test-pglite-${templateKey()}`);

let template: Promise<Blob> | undefined;
let templateDir: Promise<string> | undefined;

/**
 * A migrated PGlite data folder for a control plane to boot from: initdb and the migrations run
 * once per change of migrations/, not in every boot. Kept in the temporary folder, outside the checkout.
 */
export function migratedPgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const path = `${templatePath()}.tar`;
    if (!existsSync(path)) await buildTemplate(path);
    return openAsBlob(path);
  })();
  return template;
}

/**
 * The same, as a data folder to copy for a control plane on PGlite on disk: PGlite writes a
 * loaded dump through its virtual file system, many times slower than copying the files.
 */
export function migratedPgliteTemplateDir(): Promise<string> {
  templateDir ??= (async () => {
    const path = templatePath();
    if (existsSync(path)) return path;
    const { PGlite } = await import('@electric-sql/pglite');
    const partial = `${path}.${process.pid}.partial`;
    rmSync(partial, { recursive: true, force: true });
    const client = new PGlite({ dataDir: partial, loadDataDir: await migratedPgliteTemplate() });
    await client.close();
    try {
      renameSync(partial, path);
    } catch (error) {
      // Another file built it meanwhile: theirs is as good.
      if (!existsSync(path)) throw error;
      rmSync(partial, { recursive: true, force: true });
    }
    return path;
  })();
  return templateDir;
}
