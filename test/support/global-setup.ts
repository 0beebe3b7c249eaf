import { migratedPgliteTemplate } from './pglite-template.js';

/** Builds the migrated PGlite template once, before the workers start, so they do not each build it at once. */
export default async function setup(): Promise<void> {
  await migratedPgliteTemplate();
}
