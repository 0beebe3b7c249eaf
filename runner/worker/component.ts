import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadBuiltinModule } from '../components/index.js';
import type { StepFunction } from '../sdk.js';

const BUILTIN = 'hookline:';

/**
 * How `import()` finds a component's module: a file URL (what the process driver resolved in a
 * trusted folder), a path from the working directory (the image's, under the docker driver) or a
 * package name.
 */
export function moduleSpecifier(module: string): string {
  if (isAbsolute(module) || module.startsWith('./') || module.startsWith('../')) return pathToFileURL(resolve(module)).href;
  return module;
}

/** The function a step calls: `hookline:<name>` is a built-in component, anything else a module to import. */
export async function loadStepFunction(module: string, name: string): Promise<StepFunction> {
  // A component in TypeScript, run by the process driver: tsx compiles it (and only it) on import.
  if (/\.[cm]?tsx?$/.test(module)) (await import('tsx/esm/api')).register();
  const loaded = (
    module.startsWith(BUILTIN) ? await loadBuiltinModule(module.slice(BUILTIN.length)) : await import(moduleSpecifier(module))
  ) as Record<string, unknown>;
  const fn = loaded[name];
  if (typeof fn !== 'function') {
    const offered = Object.keys(loaded).filter((key) => typeof loaded[key] === 'function');
    throw new Error(
      `component module ${module} exports no function "${name}"${offered.length ? ` (it exports ${offered.join(', ')})` : ''}`,
    );
  }
  return fn as StepFunction;
}
