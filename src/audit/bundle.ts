/**
 * Audit bundles (transcript-v1 §7): the directory a run leaves for a privacy
 * officer.
 *
 *     <bundle>/bundle.json          manifest: format, run id, the coordinator's key, software
 *     <bundle>/transcript.jsonl     the coordinator's transcript
 *     <bundle>/sites/<site>.jsonl   a site's own log (when the site writes it there:
 *                                   `tally demo` does; a real site keeps its own and
 *                                   hands it to the officer, `audit verify --site-log`)
 *
 * Every record goes to its file as it is appended (one `appendFileSync` of
 * one line), so a crash loses at most the record being written, and a
 * reader sees each line whole or not at all. Nothing here decides what is
 * recorded: the session driver's listener and the federation loop do
 * (`auditListener`, `src/federation/`).
 * @module
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { ValidationError } from '../errors.js';
import { packageRoot } from '../vectors/common.js';
import { Transcript, type AuditPolicy, type SoftwareInfo } from './transcript.js';

/** The manifest's `format`. */
export const BUNDLE_FORMAT = 'tally-audit-bundle/1';

/** `bundle.json`. */
export interface BundleManifest {
  readonly format: typeof BUNDLE_FORMAT;
  /** The run id (hex, 16 bytes), as in the transcript's `run` record. */
  readonly run: string;
  /** The coordinator's Ed25519 public key (hex): it signs the transcript's checkpoints. */
  readonly coordinatorKey: string;
  readonly software: SoftwareInfo;
  /** When the run began (ISO 8601). */
  readonly created: string;
}

/** The software writing a log: tally's version from its package.json and the Node.js version. */
export function softwareInfo(): SoftwareInfo {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version, node: process.version };
}

/** A fresh run id: 16 random bytes, hex. */
export function newRunId(): string {
  return randomBytes(16).toString('hex');
}

/** What the coordinator's transcript starts with. */
export interface CoordinatorLogOptions {
  /** The coordinator's Ed25519 seed (32 bytes): it signs every checkpoint. */
  readonly signingSeed: Uint8Array;
  /** The run configuration (plain JSON: the consortium's configuration, the job): the `config` record. */
  readonly config: unknown;
  readonly policy: AuditPolicy;
  /** Default: a fresh one. */
  readonly run?: string;
}

/**
 * A transcript's sink into `file`, opened once for appending:
 * each record is one write call of its whole line, so the file always ends
 * on a record boundary unless the disk refuses a write, which then fails the
 * record (AUDIT_ERR_WRITE). {@link Transcript.close} closes the file.
 */
function fileSink(file: string): { sink: (line: string) => void; close: () => void } {
  const fd = openSync(file, 'a');
  let open = true;
  return {
    sink: (line) => {
      // Never write through a closed descriptor: its number may since name another file.
      if (!open) throw new Error(`${file} is closed`);
      const bytes = Buffer.from(`${line}\n`, 'utf8');
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
    },
    close: () => { if (open) { open = false; closeSync(fd); } },
  };
}

/**
 * Creates a bundle directory (it must not hold a transcript yet) and opens
 * the coordinator's transcript in it: the `run` and `config` records and a
 * first checkpoint are written at once.
 */
export function openCoordinatorLog(dir: string, o: CoordinatorLogOptions): Transcript {
  const file = join(dir, 'transcript.jsonl');
  if (existsSync(file)) throw new ValidationError('AUDIT_ERR_BAD_BUNDLE', `${dir} already holds a transcript: an audit bundle is written once`);
  mkdirSync(join(dir, 'sites'), { recursive: true });
  const run = o.run ?? newRunId();
  const software = softwareInfo();
  // The file is the record: the transcript keeps only its compact range in memory (retain: false).
  const t = new Transcript({ signingSeed: o.signingSeed, ...fileSink(file), retain: false });
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT, run, coordinatorKey: Buffer.from(t.publicKey).toString('hex'), software, created: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  t.run({ run, role: 'coordinator', software, policy: o.policy });
  t.config(o.config);
  t.checkpoint();
  return t;
}

/**
 * Opens a site's own log at `file` (appending to a file that exists is
 * refused: one log per run): its `run` record is written at once, signed by
 * the site's identity key at each checkpoint.
 */
export function openSiteLog(file: string, o: { readonly seed: Uint8Array; readonly site: string; readonly run?: string }): Transcript {
  if (existsSync(file)) throw new ValidationError('AUDIT_ERR_BAD_BUNDLE', `${file} exists: a site log is written once per run`);
  mkdirSync(dirname(file), { recursive: true });
  const t = new Transcript({ signingSeed: o.seed, ...fileSink(file), retain: false });
  t.run({ run: o.run ?? newRunId(), role: 'site', site: o.site, software: softwareInfo() });
  t.checkpoint();
  return t;
}

/** A bundle as read from disk. */
export interface Bundle {
  readonly dir: string;
  readonly manifest: BundleManifest;
  /** The coordinator's transcript, one record a line (no newlines). */
  readonly transcript: readonly string[];
  /** Site logs found in `sites/`, by site id (the file name without `.jsonl`). */
  readonly siteLogs: ReadonlyMap<string, readonly string[]>;
}

/** The lines of a JSON-lines file (a final newline ends the last line; an empty line elsewhere is kept, and fails verification). */
export function readJsonLines(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Reads a bundle directory. @throws ValidationError AUDIT_ERR_BAD_BUNDLE when the manifest or transcript is missing or unreadable. */
export function readBundle(dir: string): Bundle {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as BundleManifest;
  } catch (err) {
    throw new ValidationError('AUDIT_ERR_BAD_BUNDLE', `${dir}: no readable bundle.json (${(err as Error).message})`, { cause: err });
  }
  if (manifest === null || typeof manifest !== 'object' || manifest.format !== BUNDLE_FORMAT) {
    throw new ValidationError('AUDIT_ERR_BAD_BUNDLE', `${dir}/bundle.json: format is not ${BUNDLE_FORMAT}`);
  }
  let transcript: string[];
  try {
    transcript = readJsonLines(join(dir, 'transcript.jsonl'));
  } catch (err) {
    throw new ValidationError('AUDIT_ERR_BAD_BUNDLE', `${dir}: no readable transcript.jsonl (${(err as Error).message})`, { cause: err });
  }
  const siteLogs = new Map<string, string[]>();
  const sites = join(dir, 'sites');
  if (existsSync(sites)) {
    for (const f of readdirSync(sites).filter((x) => x.endsWith('.jsonl')).sort()) siteLogs.set(basename(f, '.jsonl'), readJsonLines(join(sites, f)));
  }
  return { dir, manifest, transcript, siteLogs };
}
