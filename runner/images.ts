/** The images `npm run images` builds (scripts/build-images.ts); no registry is needed. STEP_WORKER_IMAGE is in protocol/builtins.ts. */

/** The host's node binary and the libraries it links, imported as an image. */
export const NODE_BASE_IMAGE = `hookline/node:${process.versions.node}`;

/** Where the step worker's bundle is inside STEP_WORKER_IMAGE, and where a component image on top puts its module. */
export const WORKER_ENTRY_IN_IMAGE = '/hookline/worker.mjs';
export const COMPONENT_MODULE_IN_IMAGE = '/component/index.mjs';

/** Who a step worker runs as in its container, whatever its image says: no one (no root, no login), the same uid:gid on every engine. */
export const WORKER_USER = { uid: 10001, gid: 10001, name: 'hookline' } as const;
