import { createHash } from 'node:crypto';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const STEP_WORKER_ENTRY = join(ROOT, 'runner/worker/main.ts');

/** Bundles a TypeScript entry and everything it imports into one ESM file for Node; `external` packages stay imports. */
export async function bundleForNode(entry: string, options: { external?: string[] } = {}): Promise<Uint8Array> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    outfile: 'out.mjs',
    legalComments: 'none',
    logLevel: 'silent',
    external: options.external ?? [],
    // Bundled CommonJS packages call require() for Node's own modules.
    banner: {
      js: "import { createRequire as __hooklineCreateRequire } from 'node:module';\nconst require = __hooklineCreateRequire(import.meta.url);",
    },
  });
  const output = result.outputFiles.find((file) => file.path.endsWith('.mjs'));
  if (!output) throw new Error(`esbuild produced no bundle of ${entry}`);
  return output.contents;
}

/** The step worker and the built-in components as one file; tsx stays an import, loaded only for a component written in TypeScript. */
export const bundleStepWorker = () => bundleForNode(STEP_WORKER_ENTRY, { external: ['tsx', 'tsx/*'] });

/**
 * The step worker as one file, for the process driver to fork with plain node: a worker starts in
 * a fraction of the time it takes to load its sources through tsx. Kept in node_modules/.cache by
 * content, written atomically, so runners side by side share it.
 */
export async function stepWorkerBundle(): Promise<string> {
  const code = await bundleStepWorker();
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const dir = join(ROOT, 'node_modules', '.cache', 'hookline');
  const file = join(dir, `step-worker-${hash}.mjs`);
  if (
    await stat(file).then(
      () => true,
      () => false,
    )
  )
    return file;
  await mkdir(dir, { recursive: true });
  const partial = `${file}.${process.pid}.${Date.now()}`;
  await writeFile(partial, code);
  await rename(partial, file);
  return file;
}
