import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessDriver } from '../../runner/drivers/process.js';
import { loadRunnerConfig, startRunner } from '../../runner/main.js';
import { parseTrustedModules, realTrustedFolders, type TrustedModuleList } from '../../runner/trusted-modules.js';
import { fakeLaunch, recordingObserver } from '../support/docker.js';

const logger = pino({ level: 'silent' });
const launchOf = (module: string) => fakeLaunch({ flowId: randomUUID(), stepId: 'step', generation: 1 }, { module, image: null });

/** The real process driver, trusting what an operator would list: whatever the control plane says, it runs nothing else. */
describe('the process driver runs the built-ins and what RUNNER_TRUSTED_MODULES lists, nothing else', () => {
  let root: string;
  let trustedDir: string;
  let dataDir: string;
  const drivers: ProcessDriver[] = [];
  const driverTrusting = async (list: TrustedModuleList) => {
    const driver = new ProcessDriver({ dataDir, logger, trusted: await realTrustedFolders(list) });
    drivers.push(driver);
    return driver;
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'hookline-trust-'));
    trustedDir = join(root, 'trusted');
    dataDir = join(root, 'data');
    await mkdir(join(trustedDir, 'sub'), { recursive: true });
    await mkdir(join(root, 'outside'));
    const component = 'export const run = (message) => message.data;\n';
    await writeFile(join(trustedDir, 'component.mjs'), component);
    await writeFile(join(trustedDir, 'sub', 'nested.mjs'), component);
    await writeFile(join(root, 'outside', 'evil.mjs'), 'export const run = () => process.env;\n');
    await symlink(join(trustedDir, 'component.mjs'), join(trustedDir, 'alias.mjs'));
    await symlink(join(root, 'outside', 'evil.mjs'), join(trustedDir, 'escape.mjs'));
    await symlink(join(root, 'outside'), join(trustedDir, 'link-out'));
  });
  afterAll(async () => {
    await Promise.all(drivers.map((driver) => driver.close()));
    await rm(root, { recursive: true, force: true });
  });

  it('refuses, in check() and start(), URLs of any scheme, node: builtins, absolute paths, .. paths, links out of the folder and unlisted packages; each reason names the setting', async () => {
    const driver = await driverTrusting({ packages: ['zod'], folders: [trustedDir] });
    const refused: [string, RegExp][] = [
      [
        'data:text/javascript,export const run = () => process.env',
        /is refused: it must be a package name or a relative path \(\.\/\.\.\.\), not a URL: data: modules are refused/,
      ],
      ['node:child_process', /not a URL: node: modules are refused/],
      [`file://${join(trustedDir, 'component.mjs')}`, /not a URL: file: modules are refused/],
      [join(trustedDir, 'component.mjs'), /not an absolute path/],
      ['../outside/evil.mjs', /may not have \. or \.\. segments/],
      ['./sub/../../outside/evil.mjs', /may not have \. or \.\. segments/],
      ['./escape.mjs', /resolves outside the folders RUNNER_TRUSTED_MODULES lists/],
      ['./link-out/evil.mjs', /resolves outside the folders RUNNER_TRUSTED_MODULES lists/],
      [
        'pino',
        /module pino is not trusted here: this runner's process driver runs the built-ins and what RUNNER_TRUSTED_MODULES lists, and package pino is not among them/,
      ],
      ['./missing.mjs', /module \.\/missing\.mjs cannot be found in the folders RUNNER_TRUSTED_MODULES lists/],
    ];
    for (const [module, reason] of refused) {
      const launch = launchOf(module);
      const why = await driver.check(launch.config);
      expect(why, module).toMatch(/^component fake: /);
      expect(why, module).toMatch(reason);
      expect(why, module).toContain('RUNNER_TRUSTED_MODULES');
      await expect(driver.start(launch, recordingObserver()), module).rejects.toThrow(why!);
    }
    // Nothing was started: no worker, no pid file.
    expect(await readdir(join(dataDir, 'workers')).catch(() => [])).toEqual([]);
  });

  it('runs the built-ins, modules inside a listed folder (links within it followed) and listed packages with their subpaths', async () => {
    const driver = await driverTrusting({ packages: ['zod'], folders: [trustedDir] });
    for (const module of ['hookline:http', './component.mjs', './sub/nested.mjs', './alias.mjs', 'zod', 'zod/v4']) {
      expect(await driver.check(launchOf(module).config), module).toBeNull();
    }
  });

  it('a package named like one of Node’s own resolves to a builtin: refused even when listed', async () => {
    const driver = await driverTrusting({ packages: ['fs'], folders: [] });
    expect(await driver.check(launchOf('fs').config)).toMatch(/module fs resolves to node:fs, not to a file: refused/);
    expect(await driver.check(launchOf('left-pad').config)).toMatch(/package left-pad is not among them/);
  });

  it('trusts nothing but the built-ins when the setting is empty', async () => {
    const nothing = parseTrustedModules(undefined);
    expect(nothing).toEqual({ packages: [], folders: [] });
    const driver = await driverTrusting(nothing as TrustedModuleList);
    expect(await driver.check(launchOf('hookline:jsonata').config)).toBeNull();
    expect(await driver.check(launchOf('./component.mjs').config)).toMatch(
      /module \.\/component\.mjs is not trusted here: .*RUNNER_TRUSTED_MODULES lists, and it lists no folder/,
    );
    expect(await driver.check(launchOf('zod').config)).toMatch(/package zod is not among them/);
  });

  it('reads the setting: package names and absolute folders, comma-separated; anything else, or a folder that is not there, stops the runner', async () => {
    const base = { CONTROL_PLANE_URL: 'http://127.0.0.1:9', RUNNER_TOKEN: 'hlk_test' };
    expect(loadRunnerConfig({ ...base, RUNNER_TRUSTED_MODULES: ` zod, @acme/crm ,${trustedDir}` }).RUNNER_TRUSTED_MODULES).toEqual({
      packages: ['zod', '@acme/crm'],
      folders: [trustedDir],
    });
    for (const wrong of ['./components', 'node:fs', 'file:///opt/components', 'zod/v4', '../x']) {
      expect(() => loadRunnerConfig({ ...base, RUNNER_TRUSTED_MODULES: `zod,${wrong}` }), wrong).toThrow(
        `RUNNER_TRUSTED_MODULES=${JSON.stringify(`zod,${wrong}`)}: must be package names (crm, @acme/crm) or absolute folder paths, separated by commas: ${wrong} is neither`,
      );
    }
    const missing = join(root, 'not-there');
    await expect(
      startRunner(loadRunnerConfig({ ...base, RUNNER_TRUSTED_MODULES: missing }), logger, { events: undefined }),
    ).rejects.toThrow(`RUNNER_TRUSTED_MODULES: the folder ${missing} does not exist`);
  });
});
