/**
 * The coordinator's persistent store: one SQLite file holding the roster,
 * every session with its rounds, drops and outcome, and the sums of the
 * completed ones.
 *
 * Durability. Every write method is one transaction, committed before it
 * returns, in WAL mode with `synchronous = FULL`: once a call returned, a
 * `kill -9` of the coordinator (or a power cut, on storage that honours
 * fsync) loses nothing of it, and a crash in the middle of a call leaves the
 * store as it was before the call. Nothing is ever half-written.
 *
 * Sessions. A session is `running` from {@link CoordinatorStore.beginSession}
 * until {@link CoordinatorStore.finishSession} makes it `completed` (with its
 * sum and survivors) or `aborted` (with a code, a message and the round).
 * A finished session never changes again, sessions are never deleted, and a
 * session id (the hex of the session's 32-byte nonce) is never accepted twice,
 * so a nonce is never reused even across restarts. A session still `running`
 * when the store is opened was interrupted by a crash: the coordinator calls
 * {@link CoordinatorStore.recoverInterrupted} once at start-up, which records
 * each as aborted with code `COORDINATOR_RESTART`. Sessions name sites by
 * their site id, not by a reference into the roster: the history outlives
 * changes of the roster.
 *
 * Schema. The schema is versioned: `schema_migrations` has one row per
 * migration applied, and {@link MIGRATIONS} is the ordered list of them. Opening
 * a store applies the pending ones, each in its own transaction together with
 * its row, so a failed migration leaves the store at the previous version. A
 * store whose version is newer than this code is refused (`STORE_ERR_SCHEMA`):
 * an older tally never writes into a schema it does not know. The file is
 * marked as a tally store by `PRAGMA application_id` ({@link STORE_APPLICATION_ID})
 * and a row of the `meta` table; any other SQLite database, or a file that is
 * not SQLite at all or is damaged, is refused (`STORE_ERR_CORRUPT`) without
 * being modified. The schema enforces its own invariants too (CHECK
 * constraints, foreign keys, triggers that keep finished sessions and their
 * rounds and drops immutable), so not even a hand-written SQL statement can
 * make the store inconsistent by accident.
 *
 * Errors. Refusals of a file are `ValidationError`s with `STORE_ERR_SCHEMA` or
 * `STORE_ERR_CORRUPT` (the latter also when SQLite reports corruption later,
 * at any call), wrapping the SQLite error as `cause`. A call that breaks the
 * API contract (an unknown session, a session finished twice, a reused
 * nonce, a malformed argument) is an `InternalError`: the coordinator only
 * passes what it validated, so that is a bug. Failures of the file system
 * (a missing directory, permissions) are Node's system errors, and I/O errors
 * SQLite reports while running (disk full, `SQLITE_IOERR`, `SQLITE_BUSY` past
 * the busy timeout) are better-sqlite3's `SqliteError`; in every case the
 * call's transaction was rolled back.
 *
 * One coordinator per store: other processes may open the same file (WAL
 * lets readers run beside the writer, and writers wait up to the busy timeout
 * for each other), but two coordinators writing sessions into one store is a
 * deployment error the store does not detect.
 *
 * Backups: {@link CoordinatorStore.backup} writes a consistent copy while the
 * coordinator runs. Copying the file with `cp` is not a backup: the most
 * recent commits may still be in the `-wal` file beside it.
 */
import { closeSync, fsyncSync, linkSync, openSync, rmSync, statSync, accessSync, constants as fsConstants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { InternalError, TallyError, ValidationError } from '../errors.js';
import { MAX_CLIENT_ID } from '../secagg/config.js';

/** The `PRAGMA application_id` of a tally coordinator store: the ASCII bytes "TALY". */
export const STORE_APPLICATION_ID = 0x54414c59;
/** The value of the `application` row of the `meta` table. */
const META_APPLICATION = 'tally-coordinator-store';
/** How long a write waits for another connection's lock before it fails with SQLITE_BUSY. */
export const STORE_BUSY_TIMEOUT_MS = 5000;
/** A sum is stored in parts of at most this many bytes (SQLite refuses a BLOB over 1e9 bytes; MAX_DIM sums are 2^30). */
const SUM_PART_BYTES = 1 << 24;
/** The abort code {@link CoordinatorStore.recoverInterrupted} records for a session a crash interrupted. */
export const COORDINATOR_RESTART = 'COORDINATOR_RESTART';

/** One schema migration: an SQL script, applied in one transaction with its `schema_migrations` row. */
export interface Migration {
  /** 1, 2, 3… in order. */
  readonly version: number;
  /** What it changes, in a few words. */
  readonly description: string;
  readonly sql: string;
}

/**
 * The migrations, oldest first. Never edit one that was released: a store
 * that already applied it would not get the change. Add a new one instead.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'roster, sessions, rounds, drops, sums',
    sql: `
PRAGMA application_id = ${STORE_APPLICATION_ID};

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('application', '${META_APPLICATION}');

-- The roster the coordinator serves (replaced as a whole by syncRoster).
CREATE TABLE sites (
  id         TEXT PRIMARY KEY CHECK (length(id) > 0),
  name       TEXT NOT NULL,
  client_id  INTEGER NOT NULL UNIQUE CHECK (client_id BETWEEN 1 AND ${MAX_CLIENT_ID}),
  public_key BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32)
) STRICT;

-- seq is AUTOINCREMENT: a seq is never handed out twice.
CREATE TABLE sessions (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id    TEXT NOT NULL UNIQUE CHECK (length(session_id) = 64 AND session_id NOT GLOB '*[^0-9a-f]*'),
  params        TEXT NOT NULL CHECK (json_valid(params)),
  state         TEXT NOT NULL CHECK (state IN ('running', 'completed', 'aborted')),
  started_at    TEXT NOT NULL CHECK (started_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*Z'),
  ended_at      TEXT CHECK (ended_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*Z'),
  abort_code    TEXT CHECK (length(abort_code) > 0),
  abort_message TEXT,
  abort_round   INTEGER CHECK (abort_round BETWEEN 0 AND 4),
  -- Number of uint32 entries of the sum; the bytes are in sum_parts.
  sum_length    INTEGER CHECK (sum_length >= 0),
  survivors     TEXT CHECK (survivors IS NULL OR CASE WHEN json_valid(survivors) THEN json_type(survivors) = 'array' ELSE 0 END),
  CHECK ((state = 'running') = (ended_at IS NULL)),
  CHECK ((state = 'aborted') = (abort_code IS NOT NULL AND abort_message IS NOT NULL AND abort_round IS NOT NULL)),
  CHECK (state = 'aborted' OR (abort_code IS NULL AND abort_message IS NULL AND abort_round IS NULL)),
  CHECK ((state = 'completed') = (sum_length IS NOT NULL AND survivors IS NOT NULL)),
  CHECK (state = 'completed' OR (sum_length IS NULL AND survivors IS NULL))
) STRICT;
CREATE INDEX sessions_by_state ON sessions (state, seq);

-- The little-endian uint32 sum of a completed session, in parts (part 0, 1, …).
CREATE TABLE sum_parts (
  session_seq INTEGER NOT NULL REFERENCES sessions (seq),
  part        INTEGER NOT NULL CHECK (part >= 0),
  data        BLOB NOT NULL CHECK (length(data) > 0 AND length(data) % 4 = 0),
  PRIMARY KEY (session_seq, part)
) STRICT, WITHOUT ROWID;

-- What the coordinator heard in each closed round: site ids, as a JSON array.
CREATE TABLE rounds (
  session_seq  INTEGER NOT NULL REFERENCES sessions (seq),
  round        INTEGER NOT NULL CHECK (round BETWEEN 0 AND 4),
  participants TEXT NOT NULL CHECK (CASE WHEN json_valid(participants) THEN json_type(participants) = 'array' ELSE 0 END),
  PRIMARY KEY (session_seq, round)
) STRICT, WITHOUT ROWID;

-- Sites that left a session (code SILENT: did not answer in time), at most once each.
CREATE TABLE drops (
  id          INTEGER PRIMARY KEY,
  session_seq INTEGER NOT NULL REFERENCES sessions (seq),
  site        TEXT NOT NULL CHECK (length(site) > 0),
  round       INTEGER NOT NULL CHECK (round BETWEEN 0 AND 4),
  code        TEXT NOT NULL CHECK (length(code) > 0),
  UNIQUE (session_seq, site)
) STRICT;

-- Sessions are never deleted and never change once finished; their identity never changes.
CREATE TRIGGER sessions_no_delete BEFORE DELETE ON sessions
BEGIN SELECT RAISE(ABORT, 'tally store: sessions are never deleted'); END;
CREATE TRIGGER sessions_finished_immutable BEFORE UPDATE ON sessions
WHEN OLD.state <> 'running' OR NEW.seq IS NOT OLD.seq OR NEW.session_id IS NOT OLD.session_id
  OR NEW.params IS NOT OLD.params OR NEW.started_at IS NOT OLD.started_at
BEGIN SELECT RAISE(ABORT, 'tally store: a finished session never changes'); END;
-- Rounds, drops and sum parts are append-only, and only a running session gets them
-- (the sum in the same transaction that completes it, before the state changes).
CREATE TRIGGER rounds_running BEFORE INSERT ON rounds
WHEN (SELECT state FROM sessions WHERE seq = NEW.session_seq) IS NOT 'running'
BEGIN SELECT RAISE(ABORT, 'tally store: rounds are recorded for running sessions only'); END;
CREATE TRIGGER drops_running BEFORE INSERT ON drops
WHEN (SELECT state FROM sessions WHERE seq = NEW.session_seq) IS NOT 'running'
BEGIN SELECT RAISE(ABORT, 'tally store: drops are recorded for running sessions only'); END;
CREATE TRIGGER sum_parts_running BEFORE INSERT ON sum_parts
WHEN (SELECT state FROM sessions WHERE seq = NEW.session_seq) IS NOT 'running'
BEGIN SELECT RAISE(ABORT, 'tally store: a sum is stored when its session completes'); END;
CREATE TRIGGER rounds_append_only BEFORE UPDATE ON rounds
BEGIN SELECT RAISE(ABORT, 'tally store: rounds are append-only'); END;
CREATE TRIGGER rounds_no_delete BEFORE DELETE ON rounds
BEGIN SELECT RAISE(ABORT, 'tally store: rounds are append-only'); END;
CREATE TRIGGER drops_append_only BEFORE UPDATE ON drops
BEGIN SELECT RAISE(ABORT, 'tally store: drops are append-only'); END;
CREATE TRIGGER drops_no_delete BEFORE DELETE ON drops
BEGIN SELECT RAISE(ABORT, 'tally store: drops are append-only'); END;
CREATE TRIGGER sum_parts_append_only BEFORE UPDATE ON sum_parts
BEGIN SELECT RAISE(ABORT, 'tally store: sums are append-only'); END;
CREATE TRIGGER sum_parts_no_delete BEFORE DELETE ON sum_parts
BEGIN SELECT RAISE(ABORT, 'tally store: sums are append-only'); END;
`,
  },
  {
    version: 2,
    description: 'federated fine-tuning checkpoints',
    sql: `
-- One row per completed round of a fine-tuning job: the coordinator's state
-- after it (adapter, optimiser state, ledger, history; a safetensors blob)
-- and the round's summary (JSON). Append-only: a restart continues from the
-- highest round of its job.
CREATE TABLE checkpoints (
  job      TEXT NOT NULL CHECK (length(job) = 64 AND job NOT GLOB '*[^0-9a-f]*'),
  round    INTEGER NOT NULL CHECK (round >= 0),
  saved_at TEXT NOT NULL CHECK (saved_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*Z'),
  summary  TEXT NOT NULL CHECK (json_valid(summary)),
  state    BLOB NOT NULL CHECK (length(state) > 0),
  PRIMARY KEY (job, round)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'tally store: checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'tally store: checkpoints are append-only'); END;
`,
  },
];

/** The schema version this code writes: the latest migration. */
export const STORE_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** A site of the roster as the store keeps it. */
export interface StoredSite {
  readonly id: string;
  readonly name: string;
  /** The site's secure-aggregation client id, in [1, MAX_CLIENT_ID]. */
  readonly clientId: number;
  /** The site's 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/** One session as the store has it. */
export interface StoredSession {
  /** Lowercase hex of the 32-byte session nonce. */
  readonly sessionId: string;
  /** 1, 2, 3… in start order (never reused). */
  readonly seq: number;
  /** The JSON value the coordinator passed to beginSession. */
  readonly params: unknown;
  readonly state: 'running' | 'completed' | 'aborted';
  /** ISO 8601 (UTC). */
  readonly startedAt: string;
  /** ISO 8601 (UTC); undefined while running. */
  readonly endedAt: string | undefined;
  /** Aborted sessions only. */
  readonly abort: { readonly code: string; readonly message: string; readonly round: number } | undefined;
  /** The rounds that closed, in order, each with the site ids heard in it. */
  readonly rounds: readonly { readonly round: number; readonly participants: readonly string[] }[];
  /** Sites that left the session, in the order recorded. */
  readonly dropped: readonly { readonly site: string; readonly round: number; readonly code: string }[];
  /** Site ids whose inputs are in the sum; completed sessions only. */
  readonly survivors: readonly string[] | undefined;
  /** The sum; completed sessions only (and not when listed with `withSums: false`). */
  readonly sum: Uint32Array | undefined;
}

/** How {@link CoordinatorStore.finishSession} ends a session. */
export type SessionEnd =
  | { readonly kind: 'completed'; readonly sum: Uint32Array; readonly survivors: readonly string[]; readonly endedAt?: Date }
  | { readonly kind: 'aborted'; readonly code: string; readonly message: string; readonly round: number; readonly endedAt?: Date };

/** Options of {@link CoordinatorStore.sessions}. */
export interface SessionQuery {
  /** At most this many sessions (a non-negative integer); default all. */
  readonly limit?: number;
  /** Only sessions in this state. */
  readonly state?: StoredSession['state'];
  /** Only sessions older than this seq (paging: pass the last seq of the previous page). */
  readonly beforeSeq?: number;
  /** Load the sums of completed sessions (default true); false leaves `sum` undefined, for listings of large sums. */
  readonly withSums?: boolean;
}

interface SessionRow {
  seq: number; session_id: string; params: string; state: StoredSession['state']; started_at: string; ended_at: string | null;
  abort_code: string | null; abort_message: string | null; abort_round: number | null; sum_length: number | null; survivors: string | null;
}
interface SiteRow { id: string; name: string; client_id: number; public_key: Buffer }

type Db = Database.Database;
type Stmt = Database.Statement;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const SESSION_ID = /^[0-9a-f]{64}$/;

function isSqliteError(e: unknown): e is Error & { code: string } {
  return e instanceof Database.SqliteError;
}

/** SQLite codes that mean the file is not (or no longer) a readable database. */
function isCorruption(e: unknown): e is Error & { code: string } {
  return isSqliteError(e) && (e.code.startsWith('SQLITE_CORRUPT') || e.code.startsWith('SQLITE_NOTADB'));
}

function corrupt(path: string, detail: string, cause?: unknown): ValidationError {
  return new ValidationError('STORE_ERR_CORRUPT', `${path}: ${detail}`, cause === undefined ? undefined : { cause });
}

function tableNames(db: Db): Set<string> {
  return new Set(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[]);
}

/** The applied versions (checked to be 1..n), or 0 without a schema_migrations table. */
function appliedVersion(db: Db, path: string): number {
  if (!tableNames(db).has('schema_migrations')) return 0;
  const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all() as number[];
  versions.forEach((v, i) => {
    if (v !== i + 1) throw corrupt(path, `schema_migrations is not the sequence 1..${versions.length} (has ${versions.join(', ')})`);
  });
  return versions.length;
}

function newerSchema(path: string, version: number, supported: number): ValidationError {
  return new ValidationError('STORE_ERR_SCHEMA',
    `${path}: the store has schema version ${version}, newer than version ${supported}, the latest this tally knows; ` +
    'upgrade tally (an older tally never writes into a newer schema)');
}

/**
 * Brings the database to the latest of `migrations`: each pending one in
 * its own IMMEDIATE transaction with its `schema_migrations` row, re-reading
 * the version inside the transaction (two processes opening a new store at
 * once apply each migration once). Returns the version reached. Exported for
 * tests; {@link CoordinatorStore.open} calls it with {@link MIGRATIONS}.
 * @throws ValidationError `STORE_ERR_SCHEMA` when the database is newer than
 *   `migrations`, or when a migration fails (the database stays at the
 *   version before it; `cause` is the SQLite error).
 */
export function applyMigrations(db: Db, migrations: readonly Migration[] = MIGRATIONS, path: string = db.name): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new InternalError(`migration ${i} has version ${m.version}, expected ${i + 1}`);
  });
  const latest = migrations.length;
  for (const m of migrations) {
    const step = db.transaction(() => {
      db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT');
      const now = appliedVersion(db, path);
      if (now > latest) throw newerSchema(path, now, latest);
      if (now >= m.version) return;
      try {
        db.exec(m.sql);
        const broken = db.pragma('foreign_key_check') as unknown[];
        if (broken.length > 0) throw new Error(`${broken.length} rows violate foreign keys`);
      } catch (err) {
        throw new ValidationError('STORE_ERR_SCHEMA',
          `${path}: migration ${m.version} (${m.description}) failed, the store stays at version ${now}: ${(err as Error).message}`, { cause: err });
      }
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, new Date().toISOString());
    });
    step.immediate();
  }
  return appliedVersion(db, path);
}

function sumToParts(sum: Uint32Array): Buffer[] {
  const bytes = Buffer.allocUnsafe(sum.byteLength);
  if (LITTLE_ENDIAN) bytes.set(new Uint8Array(sum.buffer, sum.byteOffset, sum.byteLength));
  else for (let i = 0; i < sum.length; i++) bytes.writeUInt32LE(sum[i]!, 4 * i);
  const parts: Buffer[] = [];
  for (let off = 0; off < bytes.length; off += SUM_PART_BYTES) parts.push(bytes.subarray(off, Math.min(off + SUM_PART_BYTES, bytes.length)));
  return parts;
}

function partsToSum(parts: readonly Buffer[], length: number, path: string, sessionId: string): Uint32Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  if (total !== 4 * length) throw corrupt(path, `session ${sessionId}: its sum has ${total} bytes, expected ${4 * length}`);
  const out = new Uint32Array(length);
  const view = new Uint8Array(out.buffer);
  let off = 0;
  for (const p of parts) {
    if (LITTLE_ENDIAN) view.set(p, off);
    else for (let i = 0; i < p.length; i += 4) out[(off + i) / 4] = p.readUInt32LE(i);
    off += p.length;
  }
  return out;
}

function iso(d: Date | undefined, what: string): string {
  const t = d ?? new Date();
  if (!(t instanceof Date) || Number.isNaN(t.getTime())) throw new InternalError(`${what} is not a valid Date`);
  return t.toISOString();
}

function checkRound(round: unknown, what: string): number {
  if (!Number.isInteger(round) || (round as number) < 0 || (round as number) > 4) throw new InternalError(`${what}: round ${String(round)} is not in 0..4`);
  return round as number;
}

function checkSiteList(list: unknown, what: string): string[] {
  if (!Array.isArray(list)) throw new InternalError(`${what} is not an array of site ids`);
  const seen = new Set<string>();
  for (const s of list) {
    if (typeof s !== 'string' || s.length === 0) throw new InternalError(`${what} holds ${JSON.stringify(s)}, not a site id`);
    if (seen.has(s)) throw new InternalError(`${what} names site ${s} twice`);
    seen.add(s);
  }
  return list as string[];
}

function nonEmpty(s: unknown, what: string): string {
  if (typeof s !== 'string' || s.length === 0) throw new InternalError(`${what} must be a non-empty string`);
  return s;
}

/** The coordinator's store: see the module comment. Not for concurrent use by two coordinators. */
export class CoordinatorStore {
  /** The path it was opened with (`:memory:` for an in-memory store). */
  readonly path: string;
  private readonly db: Db;
  private pendingBackups = 0;
  private readonly q: {
    version: Stmt; delSites: Stmt; insSite: Stmt; sites: Stmt;
    sessionById: Stmt; insSession: Stmt; running: Stmt; lastRound: Stmt; insRound: Stmt; dropOf: Stmt; insDrop: Stmt;
    complete: Stmt; insPart: Stmt; abort: Stmt; rounds: Stmt; drops: Stmt; parts: Stmt; list: Stmt; lastCompleted: Stmt;
  };

  private constructor(db: Db, path: string) {
    this.db = db;
    this.path = path;
    const p = (sql: string): Stmt => db.prepare(sql);
    const cols = 'seq, session_id, params, state, started_at, ended_at, abort_code, abort_message, abort_round, sum_length, survivors';
    this.q = {
      version: p('SELECT max(version) FROM schema_migrations').pluck(),
      delSites: p('DELETE FROM sites'),
      insSite: p('INSERT INTO sites (id, name, client_id, public_key) VALUES (?, ?, ?, ?)'),
      sites: p('SELECT id, name, client_id, public_key FROM sites ORDER BY client_id'),
      sessionById: p(`SELECT ${cols} FROM sessions WHERE session_id = ?`),
      insSession: p("INSERT INTO sessions (session_id, params, state, started_at) VALUES (?, ?, 'running', ?)"),
      running: p("SELECT seq, session_id FROM sessions WHERE state = 'running' ORDER BY seq"),
      lastRound: p('SELECT max(round) FROM rounds WHERE session_seq = ?').pluck(),
      insRound: p('INSERT INTO rounds (session_seq, round, participants) VALUES (?, ?, ?)'),
      dropOf: p('SELECT round FROM drops WHERE session_seq = ? AND site = ?').pluck(),
      insDrop: p('INSERT INTO drops (session_seq, site, round, code) VALUES (?, ?, ?, ?)'),
      complete: p("UPDATE sessions SET state = 'completed', ended_at = ?, sum_length = ?, survivors = ? WHERE seq = ? AND state = 'running'"),
      insPart: p('INSERT INTO sum_parts (session_seq, part, data) VALUES (?, ?, ?)'),
      abort: p("UPDATE sessions SET state = 'aborted', ended_at = ?, abort_code = ?, abort_message = ?, abort_round = ? WHERE seq = ? AND state = 'running'"),
      rounds: p('SELECT round, participants FROM rounds WHERE session_seq = ? ORDER BY round'),
      drops: p('SELECT site, round, code FROM drops WHERE session_seq = ? ORDER BY id'),
      parts: p('SELECT data FROM sum_parts WHERE session_seq = ? ORDER BY part').pluck(),
      list: p(`SELECT ${cols} FROM sessions WHERE (@state IS NULL OR state = @state) AND (@before IS NULL OR seq < @before) ORDER BY seq DESC LIMIT @limit`),
      lastCompleted: p(`SELECT ${cols} FROM sessions WHERE state = 'completed' ORDER BY seq DESC LIMIT 1`),
    };
  }

  /**
   * Opens the store at `path` (`:memory:` for a throw-away one), creating the
   * file if it does not exist, and applies the pending migrations (each in
   * one transaction). Sets WAL mode, `synchronous = FULL`, foreign keys on
   * and a busy timeout of {@link STORE_BUSY_TIMEOUT_MS}. A file that is
   * refused is left unmodified.
   * @throws ValidationError `STORE_ERR_SCHEMA`: the store's schema is newer
   *   than this code (the message says both versions), or a migration failed.
   * @throws ValidationError `STORE_ERR_CORRUPT`: the file is not a tally
   *   store (another SQLite database, not SQLite at all, a directory) or is
   *   damaged; `cause` is the SQLite error where there is one.
   * @throws Node's system error (ENOENT, EACCES…) when the directory is
   *   missing or the file cannot be read and written.
   */
  static open(path: string): CoordinatorStore {
    if (typeof path !== 'string' || path.length === 0) throw new InternalError('the store path must be a non-empty string');
    const memory = path === ':memory:';
    if (!memory) {
      statSync(dirname(resolve(path)));
      const st = statSync(path, { throwIfNoEntry: false });
      if (st !== undefined) {
        if (!st.isFile()) throw corrupt(path, 'is not a file, so not a tally store');
        accessSync(path, fsConstants.R_OK | fsConstants.W_OK);
      }
    }
    let db: Db;
    try {
      db = new Database(path, { timeout: STORE_BUSY_TIMEOUT_MS });
    } catch (err) {
      throw isCorruption(err) ? corrupt(path, `cannot be opened as an SQLite database: ${err.message}`, err) : err;
    }
    try {
      // Identify the file before writing anything to it.
      const appId = db.pragma('application_id', { simple: true }) as number;
      const tables = tableNames(db);
      const empty = appId === 0 && db.prepare("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").pluck().get() === 0;
      if (!empty) {
        if (appId !== STORE_APPLICATION_ID) {
          throw corrupt(path, `is an SQLite database but not a tally store (application_id 0x${(appId >>> 0).toString(16)}, ` +
            `expected 0x${STORE_APPLICATION_ID.toString(16)}; tables: ${[...tables].sort().join(', ') || 'none'})`);
        }
        if (!tables.has('schema_migrations') || !tables.has('meta')) throw corrupt(path, 'is marked as a tally store but lacks its schema_migrations or meta table');
        const version = appliedVersion(db, path);
        if (version > STORE_SCHEMA_VERSION) throw newerSchema(path, version, STORE_SCHEMA_VERSION);
        const app = db.prepare("SELECT value FROM meta WHERE key = 'application'").pluck().get();
        if (app !== META_APPLICATION) throw corrupt(path, `is marked as a tally store but its meta table says ${JSON.stringify(app ?? null)}`);
      }
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== (memory ? 'memory' : 'wal')) throw corrupt(path, `could not be switched to WAL mode (journal_mode is ${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      applyMigrations(db, MIGRATIONS, path);
      return new CoordinatorStore(db, path);
    } catch (err) {
      db.close();
      if (err instanceof TallyError) throw err;
      if (isCorruption(err)) throw corrupt(path, `is not a readable tally store: ${err.message}`, err);
      throw err;
    }
  }

  /** The schema version of the open store (== {@link STORE_SCHEMA_VERSION}). */
  schemaVersion(): number {
    return this.io(() => this.q.version.get() as number);
  }

  /**
   * Replaces the roster in one transaction (the history of sessions is kept:
   * it names sites by id).
   * @throws InternalError for a malformed roster: an empty or duplicate site
   *   id, a client id outside [1, MAX_CLIENT_ID] or twice, a public key that
   *   is not 32 bytes or appears twice. The old roster is kept.
   */
  syncRoster(sites: readonly StoredSite[]): void {
    if (!Array.isArray(sites)) throw new InternalError('syncRoster expects an array of sites');
    const ids = new Set<string>(), clients = new Set<number>(), keys = new Set<string>();
    for (const s of sites) {
      nonEmpty(s.id, 'a site id');
      if (typeof s.name !== 'string') throw new InternalError(`site ${s.id}: name must be a string`);
      if (!Number.isInteger(s.clientId) || s.clientId < 1 || s.clientId > MAX_CLIENT_ID) throw new InternalError(`site ${s.id}: client id ${s.clientId} is not in [1, ${MAX_CLIENT_ID}]`);
      if (!(s.publicKey instanceof Uint8Array) || s.publicKey.length !== 32) throw new InternalError(`site ${s.id}: the public key must be 32 bytes`);
      const key = Buffer.from(s.publicKey).toString('hex');
      if (ids.has(s.id) || clients.has(s.clientId) || keys.has(key)) throw new InternalError(`site ${s.id}: its id, client id or public key appears twice in the roster`);
      ids.add(s.id); clients.add(s.clientId); keys.add(key);
    }
    this.io(() => this.db.transaction(() => {
      this.q.delSites.run();
      for (const s of sites) this.q.insSite.run(s.id, s.name, s.clientId, Buffer.from(s.publicKey));
    }).immediate());
  }

  /** The roster, by increasing client id; the keys are copies. */
  roster(): StoredSite[] {
    return this.io(() => (this.q.sites.all() as SiteRow[]).map((r) => ({ id: r.id, name: r.name, clientId: r.client_id, publicKey: new Uint8Array(r.public_key) })));
  }

  /**
   * Records every session still `running` as aborted with code
   * `COORDINATOR_RESTART`, in round last-recorded + 1 (at most 4; 0 when no
   * round closed), in one transaction; returns their ids, oldest first.
   * Called once at start-up, before any session begins.
   */
  recoverInterrupted(now?: Date): string[] {
    const at = iso(now, 'now');
    return this.io(() => this.db.transaction(() => {
      const ids: string[] = [];
      for (const r of this.q.running.all() as { seq: number; session_id: string }[]) {
        const last = this.q.lastRound.get(r.seq) as number | null;
        const round = last === null ? 0 : Math.min(last + 1, 4);
        this.q.abort.run(at, COORDINATOR_RESTART, 'the coordinator stopped while the session was running; recorded as aborted at the next start', round, r.seq);
        ids.push(r.session_id);
      }
      return ids;
    }).immediate());
  }

  /**
   * Records a new running session; returns its seq.
   * @throws InternalError when the session id is not 64 lowercase hex
   *   digits, when it was ever used before (a nonce is never reused), or when
   *   `params` is not JSON-serialisable.
   */
  beginSession(s: { sessionId: string; params: unknown; startedAt?: Date }): number {
    if (typeof s.sessionId !== 'string' || !SESSION_ID.test(s.sessionId)) throw new InternalError(`session id ${JSON.stringify(s.sessionId)} is not 64 lowercase hex digits`);
    let params: string | undefined;
    try { params = JSON.stringify(s.params); } catch (err) { throw new InternalError(`session parameters are not JSON: ${(err as Error).message}`); }
    if (params === undefined) throw new InternalError('session parameters are not JSON');
    const at = iso(s.startedAt, 'startedAt');
    return this.io(() => this.db.transaction(() => {
      const old = this.q.sessionById.get(s.sessionId) as SessionRow | undefined;
      if (old !== undefined) throw new InternalError(`session id ${s.sessionId} was already used by session #${old.seq}: a nonce is never reused`);
      return Number(this.q.insSession.run(s.sessionId, params, at).lastInsertRowid);
    }).immediate());
  }

  /**
   * Records a closed round of a running session: the site ids heard in it.
   * Rounds are recorded in increasing order, each once.
   * @throws InternalError for an unknown or finished session, a round not in
   *   0..4 or not after the last one recorded, or a malformed participant list.
   */
  recordRound(sessionId: string, round: { round: number; participants: readonly string[] }): void {
    const r = checkRound(round.round, `session ${sessionId}`);
    const participants = JSON.stringify(checkSiteList(round.participants, `the participants of round ${r}`));
    this.io(() => this.db.transaction(() => {
      const seq = this.runningSeq(sessionId, `record round ${r} of`);
      const last = this.q.lastRound.get(seq) as number | null;
      if (last !== null && r <= last) throw new InternalError(`session ${sessionId}: round ${r} recorded after round ${last}`);
      this.q.insRound.run(seq, r, participants);
    }).immediate());
  }

  /**
   * Records that a site left a running session (`code` SILENT when it did not
   * answer in time). A site drops out of a session once.
   * @throws InternalError for an unknown or finished session, a site already
   *   recorded as dropped, a round not in 0..4 or an empty site or code.
   */
  recordDrop(sessionId: string, d: { site: string; round: number; code: string }): void {
    const site = nonEmpty(d.site, 'the dropped site');
    const round = checkRound(d.round, `session ${sessionId}, drop of ${site}`);
    const code = nonEmpty(d.code, 'the drop code');
    this.io(() => this.db.transaction(() => {
      const seq = this.runningSeq(sessionId, `record a drop of ${site} in`);
      const before = this.q.dropOf.get(seq, site) as number | undefined;
      if (before !== undefined) throw new InternalError(`session ${sessionId}: site ${site} was already recorded as dropped in round ${before}`);
      this.q.insDrop.run(seq, site, round, code);
    }).immediate());
  }

  /**
   * Ends a running session, in one transaction: completed with its sum and
   * survivors, or aborted with its code, message and round (0..4).
   * @throws InternalError for an unknown session, a session that is not
   *   running (finished twice), or a malformed end.
   */
  finishSession(sessionId: string, end: SessionEnd): void {
    const at = iso(end.endedAt, 'endedAt');
    if (end.kind === 'completed') {
      if (!(end.sum instanceof Uint32Array)) throw new InternalError(`session ${sessionId}: the sum must be a Uint32Array`);
      const survivors = JSON.stringify(checkSiteList(end.survivors, `the survivors of session ${sessionId}`));
      const parts = sumToParts(end.sum);
      this.io(() => this.db.transaction(() => {
        const seq = this.runningSeq(sessionId, 'complete');
        parts.forEach((data, i) => this.q.insPart.run(seq, i, data));
        this.q.complete.run(at, end.sum.length, survivors, seq);
      }).immediate());
    } else if (end.kind === 'aborted') {
      const code = nonEmpty(end.code, 'the abort code');
      if (typeof end.message !== 'string') throw new InternalError('the abort message must be a string');
      const round = checkRound(end.round, `session ${sessionId}, abort`);
      this.io(() => this.db.transaction(() => {
        const seq = this.runningSeq(sessionId, 'abort');
        this.q.abort.run(at, code, end.message, round, seq);
      }).immediate());
    } else {
      throw new InternalError(`unknown session end ${JSON.stringify((end as { kind?: unknown }).kind)}`);
    }
  }

  /**
   * Saves the state after round `round` of fine-tuning job `job` (hex SHA-256),
   * durably, before the next round starts.
   * @throws InternalError for a malformed job id or round, or a round saved twice
   */
  saveCheckpoint(job: string, round: number, state: Uint8Array, summary: unknown): void {
    if (!/^[0-9a-f]{64}$/.test(job)) throw new InternalError(`job id ${JSON.stringify(job)} is not 64 lowercase hex digits`);
    if (!Number.isInteger(round) || round < 0) throw new InternalError(`checkpoint round ${round} is not a non-negative integer`);
    const json = JSON.stringify(summary);
    this.io(() => this.db.prepare('INSERT INTO checkpoints (job, round, saved_at, summary, state) VALUES (?, ?, ?, ?, ?)').run(job, round, iso(undefined, 'savedAt'), json, Buffer.from(state.buffer, state.byteOffset, state.byteLength)));
  }

  /** The latest checkpoint of a job, or undefined when it has none. */
  latestCheckpoint(job: string): { round: number; state: Uint8Array; summary: unknown } | undefined {
    return this.io(() => {
      const row = this.db.prepare('SELECT round, state, summary FROM checkpoints WHERE job = ? ORDER BY round DESC LIMIT 1').get(job) as { round: number; state: Buffer; summary: string } | undefined;
      return row === undefined ? undefined : { round: row.round, state: new Uint8Array(row.state), summary: JSON.parse(row.summary) as unknown };
    });
  }

  /** One session, or undefined when the store never had it. */
  session(sessionId: string): StoredSession | undefined {
    return this.io(() => this.db.transaction(() => {
      const row = this.q.sessionById.get(sessionId) as SessionRow | undefined;
      return row === undefined ? undefined : this.toSession(row, true);
    }).deferred());
  }

  /** Sessions, newest first (highest seq first), read in one consistent snapshot. */
  sessions(o: SessionQuery = {}): StoredSession[] {
    const { limit, state, beforeSeq, withSums = true } = o;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw new InternalError(`limit ${limit} is not a non-negative integer`);
    if (state !== undefined && state !== 'running' && state !== 'completed' && state !== 'aborted') throw new InternalError(`unknown session state ${JSON.stringify(state)}`);
    if (beforeSeq !== undefined && !Number.isInteger(beforeSeq)) throw new InternalError(`beforeSeq ${beforeSeq} is not an integer`);
    return this.io(() => this.db.transaction(() => {
      const rows = this.q.list.all({ state: state ?? null, before: beforeSeq ?? null, limit: limit ?? -1 }) as SessionRow[];
      return rows.map((r) => this.toSession(r, withSums));
    }).deferred());
  }

  /** The most recent completed session (the latest result), if any. */
  lastCompleted(): StoredSession | undefined {
    return this.io(() => this.db.transaction(() => {
      const row = this.q.lastCompleted.get() as SessionRow | undefined;
      return row === undefined ? undefined : this.toSession(row, true);
    }).deferred());
  }

  /**
   * Runs SQLite's full integrity check and the foreign-key check (reads the
   * whole file: for a backup procedure or an operator, not for every start).
   * @throws ValidationError `STORE_ERR_CORRUPT` listing the first problems.
   */
  check(): void {
    this.io(() => {
      const problems = (this.db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).filter((m) => m !== 'ok');
      const fk = this.db.pragma('foreign_key_check') as { table: string; rowid: number }[];
      for (const f of fk) problems.push(`${f.table} row ${f.rowid} refers to a missing row`);
      if (problems.length > 0) throw corrupt(this.path, `integrity check failed: ${problems.slice(0, 10).join('; ')}`);
    });
  }

  /**
   * Writes a consistent copy of the store to `path` with SQLite's online
   * backup, while the store stays usable (writes made meanwhile through this
   * store are included). The copy is written beside `path` under a temporary
   * name, flushed to disk, then linked to `path`, so `path` is either absent
   * or a complete copy. The copy opens with {@link CoordinatorStore.open}.
   * Do not close the store before the promise settles.
   * @throws ValidationError `CONSORTIUM_ERR_EXISTS` when `path` exists (a
   *   backup never overwrites a file).
   */
  async backup(path: string): Promise<void> {
    this.ensureOpen();
    const target = resolve(nonEmpty(path, 'the backup path'));
    const exists = (): ValidationError => new ValidationError('CONSORTIUM_ERR_EXISTS', `${path} already exists; a backup never overwrites a file`);
    if (statSync(target, { throwIfNoEntry: false }) !== undefined) throw exists();
    const tmp = `${target}.partial-${process.pid}-${randomBytes(6).toString('hex')}`;
    this.pendingBackups++;
    try {
      try {
        await this.db.backup(tmp);
      } catch (err) {
        if (isCorruption(err)) throw corrupt(this.path, `backup failed: ${err.message}`, err);
        throw err;
      }
      fsyncPath(tmp);
      try {
        linkSync(tmp, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists();
        throw err;
      }
      fsyncPath(dirname(target), true);
    } finally {
      this.pendingBackups--;
      rmSync(tmp, { force: true });
      rmSync(`${tmp}-journal`, { force: true });
    }
  }

  /** Whether the store is open (false after {@link close}). */
  get isOpen(): boolean {
    return this.db.open;
  }

  /**
   * Closes the store (checkpointing the WAL into the file). Idempotent.
   * @throws InternalError while a backup is in progress.
   */
  close(): void {
    if (this.pendingBackups > 0) throw new InternalError('the store was closed while a backup was in progress');
    if (this.db.open) this.db.close();
  }

  private ensureOpen(): void {
    if (!this.db.open) throw new InternalError(`the store ${this.path} is closed`);
  }

  /** Runs `f` on the open database; corruption SQLite reports becomes STORE_ERR_CORRUPT. */
  private io<T>(f: () => T): T {
    this.ensureOpen();
    try {
      return f();
    } catch (err) {
      if (isCorruption(err)) throw corrupt(this.path, `SQLite reports the store damaged: ${err.message}`, err);
      throw err;
    }
  }

  private runningSeq(sessionId: string, action: string): number {
    const row = this.q.sessionById.get(sessionId) as SessionRow | undefined;
    if (row === undefined) throw new InternalError(`cannot ${action} session ${sessionId}: the store has no such session`);
    if (row.state !== 'running') throw new InternalError(`cannot ${action} session ${sessionId}: it is already ${row.state}`);
    return row.seq;
  }

  private toSession(r: SessionRow, withSum: boolean): StoredSession {
    const json = (text: string, what: string): unknown => {
      try { return JSON.parse(text); } catch (err) { throw corrupt(this.path, `session ${r.session_id}: ${what} is not JSON`, err); }
    };
    const completed = r.state === 'completed';
    return {
      sessionId: r.session_id,
      seq: r.seq,
      params: json(r.params, 'params'),
      state: r.state,
      startedAt: r.started_at,
      endedAt: r.ended_at ?? undefined,
      abort: r.state === 'aborted' ? { code: r.abort_code!, message: r.abort_message!, round: r.abort_round! } : undefined,
      rounds: (this.q.rounds.all(r.seq) as { round: number; participants: string }[]).map((x) => ({ round: x.round, participants: json(x.participants, `round ${x.round}`) as string[] })),
      dropped: this.q.drops.all(r.seq) as { site: string; round: number; code: string }[],
      survivors: completed ? json(r.survivors!, 'survivors') as string[] : undefined,
      sum: completed && withSum ? partsToSum(this.q.parts.all(r.seq) as Buffer[], r.sum_length!, this.path, r.session_id) : undefined,
    };
  }
}

/** fsyncs a file, or a directory where the platform allows (some refuse to open or sync one: then nothing). */
function fsyncPath(p: string, directory = false): void {
  let fd: number;
  try {
    fd = openSync(p, 'r');
  } catch (err) {
    if (directory) return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    if (!directory) throw err;
  } finally {
    closeSync(fd);
  }
}
