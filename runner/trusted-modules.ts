/**
 * RUNNER_TRUSTED_MODULES: the code a process runner's operator lets run as the runner's own user,
 * besides the built-ins. Package names (installed beside the runner; a name trusts its subpaths)
 * and absolute folder paths (a relative module resolves inside them, symbolic links followed).
 * Nothing else runs in a process: no URL of any scheme, no `node:` builtin, no path outside a
 * listed folder. A tenant's component that is not trusted runs in a container (docker driver).
 */
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUILTIN_MODULE_PREFIX, moduleProblem, packageOf } from '../protocol/component.js';
import { isPackageName, TRUSTED_MODULES_SETTING, type TrustedModules } from '../protocol/runner.js';

export interface TrustedModuleList {
  packages: string[];
  /** Absolute paths; `realTrustedFolders` makes them real paths at the runner's start. */
  folders: string[];
}

/** The setting's entries (comma-separated), or the first one that is neither a package name nor an absolute folder path. */
export function parseTrustedModules(value: string | undefined): TrustedModuleList | { wrong: string } {
  const list: TrustedModuleList = { packages: [], folders: [] };
  for (const entry of (value ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    if (isAbsolute(entry)) list.folders.push(entry);
    else if (isPackageName(entry)) list.packages.push(entry);
    else return { wrong: entry };
  }
  return list;
}

/** The folders as real paths (symbolic links followed), so that what resolves inside them is compared with what they are. */
export async function realTrustedFolders(list: TrustedModuleList): Promise<TrustedModuleList> {
  const folders = await Promise.all(
    list.folders.map((folder) =>
      realpath(folder).catch(() => {
        throw new Error(`${TRUSTED_MODULES_SETTING}: the folder ${folder} does not exist`);
      }),
    ),
  );
  return { packages: list.packages, folders };
}

/** What the runner tells placement it trusts. */
export const trustReport = (list: TrustedModuleList): TrustedModules => ({ packages: list.packages, folders: list.folders.length > 0 });

const inside = (folder: string, path: string) => {
  const rest = relative(folder, path);
  return rest !== '' && !rest.startsWith('..') && !isAbsolute(rest);
};

/** What the step worker imports for `module` (a built-in's name, or a file URL), or why this runner does not run it. */
export async function resolveTrustedModule(list: TrustedModuleList, module: string): Promise<{ module: string } | { refused: string }> {
  if (module.startsWith(BUILTIN_MODULE_PREFIX)) return { module };
  const problem = moduleProblem(module);
  const runsOnly = `this runner's process driver runs the built-ins and what ${TRUSTED_MODULES_SETTING} lists`;
  if (problem) return { refused: `module ${module} is refused: it ${problem} (${runsOnly})` };
  const name = packageOf(module);
  if (name !== null) {
    if (!list.packages.includes(name))
      return { refused: `module ${module} is not trusted here: ${runsOnly}, and package ${name} is not among them` };
    let url: string;
    try {
      url = import.meta.resolve(module);
    } catch {
      return { refused: `module ${module} is trusted but cannot be found on this runner: install ${name} beside the runner` };
    }
    // A package named like one of Node's own (fs) resolves to node:fs: no builtin runs as a component.
    if (!url.startsWith('file:')) return { refused: `module ${module} resolves to ${url}, not to a file: refused (${runsOnly})` };
    return { module: url };
  }
  if (list.folders.length === 0) return { refused: `module ${module} is not trusted here: ${runsOnly}, and it lists no folder` };
  for (const folder of list.folders) {
    const real = await realpath(resolve(folder, module)).catch(() => null);
    if (!real) continue;
    if (!list.folders.some((trusted) => inside(trusted, real)))
      return {
        refused: `module ${module} resolves outside the folders ${TRUSTED_MODULES_SETTING} lists (a symbolic link leads out): refused`,
      };
    if (!(await stat(real)).isFile()) continue;
    return { module: pathToFileURL(real).href };
  }
  return { refused: `module ${module} cannot be found in the folders ${TRUSTED_MODULES_SETTING} lists` };
}
