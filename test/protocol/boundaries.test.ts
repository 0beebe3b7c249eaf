/**
 * The deployables share only protocol/: the control plane, the runner and the edge each import
 * nothing of another, and protocol/ imports none of them, nor Node's own modules (the edge runs it
 * on Workers).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function sources(folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.split(/[\\/]/).includes('node_modules'))
    .map((file) => join(folder, file));
}

/** Every module a file names: static imports and re-exports (types too), side-effect imports and dynamic import(). */
const SPECIFIER = /\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g;
function importsOf(code: string): string[] {
  return [...code.matchAll(SPECIFIER)].map((match) => match[1]!);
}

/** The repository's top-level folder a relative import of `file` lands in, or null for a package. */
function folderOf(file: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  return relative(root, resolve(root, dirname(file), specifier)).split(/[\\/]/)[0]!;
}

/** `file: specifier` for each import of the files in `folder` that lands outside `allowed`. */
function crossings(folder: string, allowed: string[]): string[] {
  return sources(folder).flatMap((file) =>
    importsOf(readFileSync(join(root, file), 'utf8'))
      .filter((specifier) => {
        const target = folderOf(file, specifier);
        return target !== null && !allowed.includes(target);
      })
      .map((specifier) => `${file}: ${specifier}`),
  );
}

describe('what each deployable imports of the repository', () => {
  it('finds every kind of import', () => {
    const code = [
      "import { a } from '../runner/a.js';",
      "import type { B } from '../runner/b.js';",
      "export * from '../runner/c.js';",
      "import '../runner/d.js';",
      "const e = await import('../runner/e.js');",
      'import {\n  f,\n} from "../runner/f.js";',
    ].join('\n');
    expect(importsOf(code)).toEqual(['a', 'b', 'c', 'd', 'e', 'f'].map((name) => `../runner/${name}.js`));
  });

  it.each([
    ['control-plane', ['control-plane', 'protocol']],
    ['runner', ['runner', 'protocol']],
    ['edge', ['edge', 'protocol']],
    ['protocol', ['protocol']],
  ])('%s imports only %j', (folder, allowed) => {
    expect(crossings(folder, allowed)).toEqual([]);
  });

  it('protocol/ imports no module of Node', () => {
    const nodeOnly = sources('protocol').flatMap((file) =>
      importsOf(readFileSync(join(root, file), 'utf8'))
        .filter((specifier) => specifier.startsWith('node:'))
        .map((specifier) => `${file}: ${specifier}`),
    );
    expect(nodeOnly).toEqual([]);
  });
});
