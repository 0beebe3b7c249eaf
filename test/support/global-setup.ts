import { migratedPgliteTemplate, migratedPgliteTemplateDir } from './pglite-template.js';

/** Builds the migrated PGlite templates once, before the workers start, so they do not each build them at once. */
export default async function setup(): Promise<void> {
  await migratedPgliteTemplate();
  await migratedPgliteTemplateDir();
}
