#!/usr/bin/env node
/**
 * Builds dist/ only when a build input is newer than the last successful
 * build: `npm start` and `npm run bench` run this instead of a full `tsc`
 * every time. The inputs are what tsconfig.json compiles (src/, test/,
 * bench/, examples/) plus tsconfig.json, package.json and package-lock.json; the last
 * build is dist/.build-stamp, dated when that build started (so an edit made
 * during the build triggers the next one). The build itself is incremental
 * (dist/.tsbuildinfo), so after a small edit only the affected files are
 * checked again. `--force` builds regardless. A failed build (type errors)
 * leaves the stamp as it was and exits with tsc's status.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');
const SOURCE_DIRS = ['src', 'test', 'bench', 'examples'];
const FILES = ['tsconfig.json', 'package.json', 'package-lock.json'];

/** Newest mtime (ms) of the .ts files under `dir`, 0 when there are none. */
function newestTs(dir) {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return undefined;
  }
}

const built = mtime(stamp);
const newest = Math.max(...SOURCE_DIRS.map((d) => newestTs(join(root, d))), ...FILES.map((f) => mtime(join(root, f)) ?? 0));
if (!process.argv.includes('--force') && built !== undefined && newest <= built) process.exit(0);

const started = new Date();
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--incremental', '--tsBuildInfoFile', join(root, 'dist', '.tsbuildinfo')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
spawnSync(process.execPath, [join(root, 'scripts', 'prune-dist.mjs')], { stdio: 'inherit' });
mkdirSync(dirname(stamp), { recursive: true });
closeSync(openSync(stamp, 'w'));
utimesSync(stamp, started, started);
