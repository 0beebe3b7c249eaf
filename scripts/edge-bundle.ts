import { build, type BuildOptions } from 'esbuild';

/** How the edge Worker is bundled, as wrangler bundles it: ESM, workerd's conditions, `cloudflare:*` left to the runtime. */
export const WORKER_BUILD = {
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  conditions: ['workerd', 'worker', 'browser'],
  mainFields: ['module', 'main'],
  external: ['cloudflare:*'],
  logLevel: 'silent',
} satisfies BuildOptions;

/** Bundles the edge Worker (edge/worker.ts, or `entry`) into `outfile`. */
export async function bundleEdgeWorker(outfile: string, entry = 'edge/worker.ts'): Promise<void> {
  await build({ ...WORKER_BUILD, entryPoints: [entry], outfile });
}
