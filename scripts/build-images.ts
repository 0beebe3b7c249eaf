/**
 * `npm run images`: builds the images the docker driver runs, without a registry (nothing can be
 * pulled): the host's node binary as a base image, the step worker on top of it, and an example
 * component on top of that. Each build is skipped when its image is already there and up to date
 * (a content hash in the label `hookline.content`), unless --force. The functions are exported for
 * tests and benchmarks.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { bundleForNode, bundleStepWorker } from '../runner/bundle.js';
import { HOOKLINE_VERSION, STEP_WORKER_IMAGE } from '../protocol/builtins.js';
import { COMPONENT_MODULE_IN_IMAGE, NODE_BASE_IMAGE, WORKER_ENTRY_IN_IMAGE, WORKER_USER } from '../runner/images.js';
import { WORKER_ENV } from '../runner/worker/config.js';

/** The example component's image: runner/components/examples/greeter.ts, function `greet`. */
export const EXAMPLE_GREETER_IMAGE = 'hookline/example-greeter:1';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONTENT_LABEL = 'hookline.content';

export interface BuildOptions {
  /** The engine to build on (default: DOCKER_HOST, else the default socket). */
  docker?: Docker;
  /** Build again even when the image is there and up to date. */
  force?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Images already seen to in this run (buildImages shares one), so that a prerequisite is looked at once. */
  session?: Map<string, Promise<BuiltImage>>;
}

/** Runs `build` once per image and session. */
function once(image: string, options: BuildOptions, build: () => Promise<BuiltImage>): Promise<BuiltImage> {
  const session = options.session;
  if (!session) return build();
  let pending = session.get(image);
  if (!pending) session.set(image, (pending = build()));
  return pending;
}

export interface BuiltImage {
  image: string;
  /** False when it was already there and up to date. */
  built: boolean;
}

/** The image's inspect answer, or null when the engine does not have it. */
export async function inspectImage(docker: Docker, image: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await docker.getImage(image).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw error;
  }
}

/** Reads a progress stream (import, build) to its end; rejects with the first error it reports. */
async function followProgress(stream: NodeJS.ReadableStream, onItem?: (item: Record<string, unknown>) => void): Promise<void> {
  let buffered = '';
  let failure = null as string | null;
  const handle = (line: string) => {
    if (!line.trim()) return;
    let item: Record<string, unknown>;
    try {
      item = JSON.parse(line) as Record<string, unknown>;
    } catch {
      item = { stream: line };
    }
    if (item.error || item.errorDetail) failure ??= String(item.error ?? (item.errorDetail as { message?: string }).message);
    onItem?.(item);
  };
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let at: number;
      while ((at = buffered.indexOf('\n')) >= 0) {
        handle(buffered.slice(0, at));
        buffered = buffered.slice(at + 1);
      }
    });
    stream.on('error', reject);
    stream.on('end', () => resolve());
  });
  handle(buffered);
  if (failure) throw new Error(failure.trim());
}

/** Removes the image a build replaced, unless something still uses it (a container, an image built on it, another tag). */
async function removeReplaced(docker: Docker, id: string, image: string): Promise<void> {
  const now = await inspectImage(docker, image);
  if (!now || now.Id === id) return;
  await docker
    .getImage(id)
    .remove()
    .catch(() => {});
}

const sha256 = (...parts: (string | Uint8Array)[]) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
};

const splitTag = (image: string) => {
  const at = image.lastIndexOf(':');
  return at > image.lastIndexOf('/') ? { repo: image.slice(0, at), tag: image.slice(at + 1) } : { repo: image, tag: 'latest' };
};

/** The shared libraries `ldd` lists for a binary (none for a static one), as absolute paths. */
function sharedLibraries(binary: string): string[] {
  let listing: string;
  try {
    listing = execFileSync('ldd', [binary], { encoding: 'utf8' });
  } catch {
    return [];
  }
  const paths = new Set<string>();
  for (const line of listing.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (match) paths.add(match[1]!);
  }
  return [...paths];
}

const BASE_PASSWD = 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
const BASE_GROUP = 'root:x:0:\nnogroup:x:65534:\n';

/**
 * NODE_BASE_IMAGE: the host's node binary (at /usr/local/bin/node) and the libraries `ldd` lists,
 * at the paths the binary looks for them, imported as an image of its own (`docker import`).
 */
export function buildNodeBaseImage(options: BuildOptions = {}): Promise<BuiltImage> {
  return once(NODE_BASE_IMAGE, options, () => importNodeBaseImage(options));
}

async function importNodeBaseImage(options: BuildOptions): Promise<BuiltImage> {
  const docker = options.docker ?? new Docker();
  const log = options.log ?? (() => {});
  const existing = await inspectImage(docker, NODE_BASE_IMAGE);
  if (!options.force && existing) {
    log(`${NODE_BASE_IMAGE}: up to date`);
    return { image: NODE_BASE_IMAGE, built: false };
  }
  const node = await realpath(process.execPath);
  const libraries = sharedLibraries(node);
  const files: { name: string; mode: number; content: Buffer }[] = [
    { name: 'usr/local/bin/node', mode: 0o755, content: await readFile(node) },
  ];
  for (const library of libraries) files.push({ name: library.slice(1), mode: 0o755, content: await readFile(await realpath(library)) });
  const text = (name: string, content: string) => files.push({ name, mode: 0o644, content: Buffer.from(content) });
  text('etc/passwd', BASE_PASSWD);
  text('etc/group', BASE_GROUP);
  text('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');

  const bytes = files.reduce((sum, file) => sum + file.content.length, 0);
  log(
    `${NODE_BASE_IMAGE}: importing node ${process.version} (${node}) and ${libraries.length} libraries, ${(bytes / 1048576).toFixed(0)} MB`,
  );
  const archive = pack();
  const mtime = new Date();
  for (const dir of ['etc', 'root', 'tmp', 'usr', 'usr/local', 'usr/local/bin', 'hookline']) {
    archive.entry({ name: dir, type: 'directory', mode: dir === 'tmp' ? 0o1777 : 0o755, mtime });
  }
  for (const file of files) archive.entry({ name: file.name, mode: file.mode, mtime }, file.content);
  archive.finalize();
  const { repo, tag } = splitTag(NODE_BASE_IMAGE);
  const stream = await docker.importImage(archive as unknown as NodeJS.ReadableStream, {
    repo,
    tag,
    message: `node ${process.version} from the host, by npm run images`,
    changes: ['ENV PATH=/usr/local/bin:/usr/bin:/bin', 'CMD ["node"]', `LABEL hookline.node=${process.version}`],
  });
  await followProgress(stream);
  if (existing) await removeReplaced(docker, existing.Id, NODE_BASE_IMAGE);
  return { image: NODE_BASE_IMAGE, built: true };
}

export interface ImageRecipe {
  /** The image to build (repo:tag). */
  image: string;
  /** The image it is built FROM (it must be there: it is part of the content hash). */
  from: string;
  /** Dockerfile lines after `FROM`. */
  instructions: string[];
  /** The build context: path in the context -> content. */
  files: Record<string, string | Uint8Array>;
  labels?: Record<string, string>;
}

/**
 * Builds an image with the legacy builder (no BuildKit) from files in memory. Skipped when an image
 * of that name was built from the same base, Dockerfile and files (label `hookline.content`).
 */
export async function buildImageFromFiles(recipe: ImageRecipe, options: BuildOptions = {}): Promise<BuiltImage> {
  const docker = options.docker ?? new Docker();
  const log = options.log ?? (() => {});
  const base = await inspectImage(docker, recipe.from);
  if (!base) throw new Error(`${recipe.image} is built FROM ${recipe.from}, which is not on this Docker engine`);
  const dockerfile = [`FROM ${recipe.from}`, ...recipe.instructions, ''].join('\n');
  const names = Object.keys(recipe.files).sort();
  const content = sha256(base.Id, dockerfile, JSON.stringify(recipe.labels ?? {}), ...names.flatMap((name) => [name, recipe.files[name]!]));
  const existing = await inspectImage(docker, recipe.image);
  if (!options.force && existing?.Config?.Labels?.[CONTENT_LABEL] === content) {
    log(`${recipe.image}: up to date`);
    return { image: recipe.image, built: false };
  }
  log(`${recipe.image}: building FROM ${recipe.from}`);
  const context = pack();
  context.entry({ name: 'Dockerfile', mode: 0o644 }, dockerfile);
  for (const name of names) context.entry({ name, mode: 0o644 }, recipe.files[name]!);
  context.finalize();
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
    t: recipe.image,
    labels: { ...recipe.labels, [CONTENT_LABEL]: content },
    rm: true,
    forcerm: true,
  });
  await followProgress(stream, (item) => {
    if (typeof item.stream === 'string' && /^Step \d+\/\d+/.test(item.stream)) log(`  ${item.stream.trim()}`);
  });
  if (existing) await removeReplaced(docker, existing.Id, recipe.image);
  return { image: recipe.image, built: true };
}

export const EXAMPLE_GREETER_ENTRY = join(ROOT, 'runner/components/examples/greeter.ts');

/**
 * STEP_WORKER_IMAGE: NODE_BASE_IMAGE plus runner/worker/main.ts bundled (with the built-in
 * components) at WORKER_ENTRY_IN_IMAGE, run as WORKER_USER (the docker driver says so too, for
 * images built on others).
 */
export function buildStepWorkerImage(options: BuildOptions = {}): Promise<BuiltImage> {
  return once(STEP_WORKER_IMAGE, options, () => bundleStepWorkerImage(options));
}

async function bundleStepWorkerImage(options: BuildOptions): Promise<BuiltImage> {
  const docker = options.docker ?? new Docker();
  await buildNodeBaseImage({ ...options, docker, force: false });
  (options.log ?? (() => {}))(`${STEP_WORKER_IMAGE}: bundling runner/worker/main.ts`);
  const worker = await bundleStepWorker();
  return buildImageFromFiles(
    {
      image: STEP_WORKER_IMAGE,
      from: NODE_BASE_IMAGE,
      instructions: [
        `COPY worker.mjs ${WORKER_ENTRY_IN_IMAGE}`,
        'COPY passwd group /etc/',
        'ENV NODE_ENV=production',
        `USER ${WORKER_USER.uid}:${WORKER_USER.gid}`,
        `CMD ["node", "${WORKER_ENTRY_IN_IMAGE}"]`,
      ],
      files: {
        'worker.mjs': worker,
        passwd: `${BASE_PASSWD}${WORKER_USER.name}:x:${WORKER_USER.uid}:${WORKER_USER.gid}:step worker:/nonexistent:/usr/sbin/nologin\n`,
        group: `${BASE_GROUP}${WORKER_USER.name}:x:${WORKER_USER.gid}:\n`,
      },
      labels: { 'hookline.version': HOOKLINE_VERSION },
    },
    { ...options, docker },
  );
}

/** A component image: STEP_WORKER_IMAGE plus one component module (a TypeScript entry, bundled) at COMPONENT_MODULE_IN_IMAGE. */
export function buildComponentImage(image: string, entry: string, options: BuildOptions = {}): Promise<BuiltImage> {
  return once(image, options, () => bundleComponentImage(image, entry, options));
}

async function bundleComponentImage(image: string, entry: string, options: BuildOptions): Promise<BuiltImage> {
  const docker = options.docker ?? new Docker();
  await buildStepWorkerImage({ ...options, docker, force: false });
  (options.log ?? (() => {}))(`${image}: bundling ${entry.startsWith(ROOT) ? entry.slice(ROOT.length) : entry}`);
  const component = await bundleForNode(entry);
  return buildImageFromFiles(
    {
      image,
      from: STEP_WORKER_IMAGE,
      instructions: [`COPY index.mjs ${COMPONENT_MODULE_IN_IMAGE}`, `ENV ${WORKER_ENV.componentModule}=${COMPONENT_MODULE_IN_IMAGE}`],
      files: { 'index.mjs': component },
      labels: { 'hookline.version': HOOKLINE_VERSION },
    },
    { ...options, docker },
  );
}

/** EXAMPLE_GREETER_IMAGE: the example component runner/components/examples/greeter.ts (function `greet`). */
export const buildExampleImage = (options: BuildOptions = {}) => buildComponentImage(EXAMPLE_GREETER_IMAGE, EXAMPLE_GREETER_ENTRY, options);

export const IMAGE_TARGETS = { base: buildNodeBaseImage, worker: buildStepWorkerImage, example: buildExampleImage } as const;
export type ImageTarget = keyof typeof IMAGE_TARGETS;

/** Builds the targets in order (default all: base, worker, example). */
export async function buildImages(
  targets: ImageTarget[] = ['base', 'worker', 'example'],
  options: BuildOptions = {},
): Promise<BuiltImage[]> {
  const built: BuiltImage[] = [];
  options = { ...options, session: options.session ?? new Map() };
  for (const target of (['base', 'worker', 'example'] as const).filter((name) => targets.includes(name)))
    built.push(await IMAGE_TARGETS[target](options));
  return built;
}

const HELP = `Usage: npm run images [-- --force] [-- --only base|worker|example ...]

Builds the images the docker driver runs, on the engine DOCKER_HOST names (else the default
socket), without a registry:
  ${NODE_BASE_IMAGE.padEnd(30)} this host's node binary and the libraries it links (docker import)
  ${STEP_WORKER_IMAGE.padEnd(30)} the step worker (runner/worker/main.ts, bundled) at ${WORKER_ENTRY_IN_IMAGE}
  ${EXAMPLE_GREETER_IMAGE.padEnd(30)} the example component (runner/components/examples/greeter.ts) at ${COMPONENT_MODULE_IN_IMAGE}
An image already there and up to date is skipped.

  --force, -f   build again even when up to date
  --only NAME   build only base, worker or example (and what it needs); may repeat
  --help, -h    this text

A runner on another host: docker save ${STEP_WORKER_IMAGE} | ssh host docker load`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { help: { type: 'boolean', short: 'h' }, force: { type: 'boolean', short: 'f' }, only: { type: 'string', multiple: true } },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const targets = (values.only ?? ['base', 'worker', 'example']) as ImageTarget[];
  const unknown = targets.filter((target) => !(target in IMAGE_TARGETS));
  if (unknown.length) {
    console.error(`Unknown image ${unknown.join(', ')}: one of base, worker, example.\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  const docker = new Docker();
  try {
    await docker.ping();
  } catch (error) {
    console.error(`[images] no Docker engine answers (${(error as Error).message}): set DOCKER_HOST, such as unix:///run/docker.sock`);
    process.exitCode = 1;
    return;
  }
  const started = Date.now();
  const log = (line: string) => console.log(`[images] ${line}`);
  try {
    const built = await buildImages(targets, { docker, force: values.force, log });
    log(
      `done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${built.map((image) => `${image.image}${image.built ? ' (built)' : ''}`).join(', ')}`,
    );
  } catch (error) {
    console.error(`[images] failed: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
