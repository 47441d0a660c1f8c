import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { InternalError, TallyError, ValidationError } from '../../src/errors.js';
import {
  applyMigrations, CoordinatorStore, MIGRATIONS, STORE_APPLICATION_ID, STORE_SCHEMA_VERSION, type Migration, type StoredSession,
} from '../../src/federation/store.js';
import { crashRoster, crashSessionId, crashSum } from './_store-crash-child.js';

const CHILD = fileURLToPath(new URL('./_store-crash-child.js', import.meta.url));

const sid = (n: number): string => n.toString(16).padStart(64, '0');
const key = (b: number): Uint8Array => new Uint8Array(32).fill(b);
const site = (i: number, name = `Site ${i}`) => ({ id: `site-${i}`, name, clientId: i, publicKey: key(i) });

/** Runs `f` and returns what it threw (failing when it did not throw). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  expect.fail('expected an error');
}

function expectCode(f: () => unknown, cls: new (...a: never[]) => TallyError, code: string): TallyError {
  const err = thrown(f);
  expect(err).to.be.instanceOf(cls);
  expect((err as TallyError).code).to.equal(code);
  return err as TallyError;
}

function expectInternal(f: () => unknown, pattern: RegExp): void {
  const err = thrown(f);
  expect(err).to.be.instanceOf(InternalError);
  expect((err as Error).message).to.match(pattern);
}

describe('federation/store', function () {
  let dir: string;
  let n = 0;
  const file = (): string => join(dir, `store-${++n}.db`);
  const opened: CoordinatorStore[] = [];
  const open = (path: string): CoordinatorStore => {
    const s = CoordinatorStore.open(path);
    opened.push(s);
    return s;
  };

  before(() => { dir = mkdtempSync(join(tmpdir(), 'tally-store-')); });
  afterEach(() => { for (const s of opened.splice(0)) if (s.isOpen) s.close(); });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  describe('opening and migrations', () => {
    it('creates a new store at the latest schema: migrations, application id, WAL', () => {
      const path = file();
      const s = open(path);
      expect(STORE_SCHEMA_VERSION).to.equal(MIGRATIONS.length);
      expect(s.schemaVersion()).to.equal(STORE_SCHEMA_VERSION);
      expect(s.path).to.equal(path);
      s.close();
      const db = new Database(path, { readonly: true });
      try {
        const rows = db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all() as { version: number; applied_at: string }[];
        expect(rows.map((r) => r.version)).to.deep.equal(MIGRATIONS.map((m) => m.version));
        for (const r of rows) expect(new Date(r.applied_at).toISOString()).to.equal(r.applied_at);
        expect(db.pragma('application_id', { simple: true })).to.equal(STORE_APPLICATION_ID);
        expect(db.pragma('journal_mode', { simple: true })).to.equal('wal');
        expect(db.prepare("SELECT value FROM meta WHERE key = 'application'").pluck().get()).to.equal('tally-coordinator-store');
        const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
        expect(tables).to.include.members(['schema_migrations', 'meta', 'sites', 'sessions', 'rounds', 'drops', 'sum_parts']);
      } finally {
        db.close();
      }
    });

    it('opens an in-memory store, and an empty (0-byte) file as a new store', () => {
      expect(open(':memory:').schemaVersion()).to.equal(STORE_SCHEMA_VERSION);
      const path = file();
      writeFileSync(path, '');
      expect(open(path).schemaVersion()).to.equal(STORE_SCHEMA_VERSION);
    });

    it('applies each pending migration in its own transaction; a failing one rolls back alone', () => {
      const path = file();
      const db = new Database(path);
      try {
        const extra: Migration[] = [
          ...MIGRATIONS,
          { version: STORE_SCHEMA_VERSION + 1, description: 'an extra table', sql: 'CREATE TABLE extra (x INTEGER) STRICT;' },
          { version: STORE_SCHEMA_VERSION + 2, description: 'a broken script', sql: 'CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);' },
        ];
        const err = expectCode(() => applyMigrations(db, extra, path), ValidationError, 'STORE_ERR_SCHEMA');
        expect(err.message).to.contain(`migration ${STORE_SCHEMA_VERSION + 2} (a broken script) failed`);
        expect(err.message).to.contain(`stays at version ${STORE_SCHEMA_VERSION + 1}`);
        expect(err.cause).to.be.instanceOf(Database.SqliteError);
        const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
        expect(tables).to.include('extra').and.not.include('half');
        expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).to.equal(STORE_SCHEMA_VERSION + 1);
        // Applying again is a no-op up to where it stopped.
        expect(applyMigrations(db, extra.slice(0, -1), path)).to.equal(STORE_SCHEMA_VERSION + 1);
        expectInternal(() => applyMigrations(db, [MIGRATIONS[0]!, { version: 3, description: 'gap', sql: '' }], path), /version 3, expected 2/);
      } finally {
        db.close();
      }
      // That store is now newer than this code.
      expectCode(() => open(path), ValidationError, 'STORE_ERR_SCHEMA');
    });

    it('refuses a store whose schema is newer, saying which versions, and leaves it unmodified', () => {
      const path = file();
      open(path).close();
      const db = new Database(path);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(STORE_SCHEMA_VERSION + 1, new Date().toISOString());
      db.close();
      const before = readFileSync(path);
      const err = expectCode(() => open(path), ValidationError, 'STORE_ERR_SCHEMA');
      expect(err.message).to.contain(`schema version ${STORE_SCHEMA_VERSION + 1}`).and.contain(`version ${STORE_SCHEMA_VERSION}, the latest`);
      expect(readFileSync(path).equals(before)).to.equal(true);
    });

    it('refuses another application\'s SQLite database with STORE_ERR_CORRUPT, without touching it', () => {
      const path = file();
      const db = new Database(path);
      db.exec('CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES (\'hello\');');
      db.close();
      const before = readFileSync(path);
      const err = expectCode(() => open(path), ValidationError, 'STORE_ERR_CORRUPT');
      expect(err.message).to.contain('not a tally store').and.contain('notes');
      expect(readFileSync(path).equals(before)).to.equal(true);
      expect(existsSync(`${path}-wal`)).to.equal(false);
      // Same for a database that bears another application id even without tables.
      const other = file();
      const db2 = new Database(other);
      db2.pragma('application_id = 1234');
      db2.close();
      expectCode(() => open(other), ValidationError, 'STORE_ERR_CORRUPT');
    });

    it('refuses a garbage file, a damaged store and a directory with STORE_ERR_CORRUPT, never a raw SQLite error', () => {
      const garbage = file();
      writeFileSync(garbage, Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919 + 13) & 0xff)));
      const err = expectCode(() => open(garbage), ValidationError, 'STORE_ERR_CORRUPT');
      expect(err.cause).to.be.instanceOf(Database.SqliteError);
      expect((err.cause as { code: string }).code).to.equal('SQLITE_NOTADB');

      // A tally store whose pages were overwritten after the header.
      const damaged = file();
      const s = open(damaged);
      s.syncRoster([site(1), site(2)]);
      s.close();
      const bytes = readFileSync(damaged);
      bytes.fill(0xa5, 100, bytes.length);
      writeFileSync(damaged, bytes);
      const e2 = thrown(() => open(damaged));
      expect(e2).to.be.instanceOf(ValidationError);
      expect((e2 as TallyError).code).to.equal('STORE_ERR_CORRUPT');

      // The tally application id without the tables is not a store either.
      const marked = file();
      const db = new Database(marked);
      db.pragma(`application_id = ${STORE_APPLICATION_ID}`);
      db.exec('CREATE TABLE t (x)');
      db.close();
      expect(expectCode(() => open(marked), ValidationError, 'STORE_ERR_CORRUPT').message).to.contain('lacks');

      expectCode(() => open(dir), ValidationError, 'STORE_ERR_CORRUPT');
    });

    it('reports a missing directory as the system error', () => {
      const err = thrown(() => open(join(dir, 'no-such-dir', 'store.db'))) as NodeJS.ErrnoException;
      expect(err.code).to.equal('ENOENT');
      expect(err.syscall).to.be.a('string');
    });

    it('keeps everything across a reopen', () => {
      const path = file();
      const s = open(path);
      s.syncRoster([site(1), site(2), site(3)]);
      s.beginSession({ sessionId: sid(1), params: { dim: 3 } });
      s.finishSession(sid(1), { kind: 'completed', sum: new Uint32Array([1, 2, 0xffffffff]), survivors: ['site-1', 'site-2'] });
      s.beginSession({ sessionId: sid(2), params: null });
      s.recordRound(sid(2), { round: 0, participants: ['site-1'] });
      const sessions = s.sessions();
      const roster = s.roster();
      s.close();
      const t = open(path);
      expect(t.schemaVersion()).to.equal(STORE_SCHEMA_VERSION);
      expect(t.roster()).to.deep.equal(roster);
      expect(t.sessions()).to.deep.equal(sessions);
      expect(t.beginSession({ sessionId: sid(3), params: {} })).to.equal(3);
    });
  });

  describe('roster', () => {
    it('replaces the roster as a whole', () => {
      const s = open(':memory:');
      expect(s.roster()).to.deep.equal([]);
      s.syncRoster([site(2), site(1), site(3)]);
      expect(s.roster().map((r) => r.id)).to.deep.equal(['site-1', 'site-2', 'site-3']);
      const first = s.roster()[0]!;
      expect(first).to.deep.equal({ id: 'site-1', name: 'Site 1', clientId: 1, publicKey: key(1) });
      expect(first.publicKey).to.be.instanceOf(Uint8Array);
      // A site leaves, one is renamed, one joins (reusing a client id and a key freed in the same sync).
      s.syncRoster([site(2, 'Renamed'), { id: 'site-9', name: 'New', clientId: 1, publicKey: key(1) }]);
      expect(s.roster()).to.deep.equal([
        { id: 'site-9', name: 'New', clientId: 1, publicKey: key(1) },
        { id: 'site-2', name: 'Renamed', clientId: 2, publicKey: key(2) },
      ]);
      s.syncRoster([]);
      expect(s.roster()).to.deep.equal([]);
    });

    it('refuses a malformed roster and keeps the old one', () => {
      const s = open(':memory:');
      s.syncRoster([site(1), site(2)]);
      const before = s.roster();
      expectInternal(() => s.syncRoster([site(1), { ...site(2), publicKey: new Uint8Array(31) }]), /32 bytes/);
      expectInternal(() => s.syncRoster([site(1), { ...site(2), clientId: 1 }]), /twice/);
      expectInternal(() => s.syncRoster([site(1), { ...site(2), publicKey: key(1) }]), /twice/);
      expectInternal(() => s.syncRoster([site(1), { ...site(2), id: 'site-1' }]), /twice/);
      expectInternal(() => s.syncRoster([{ ...site(1), clientId: 0 }]), /client id/);
      expectInternal(() => s.syncRoster([{ ...site(1), id: '' }]), /site id/);
      expect(s.roster()).to.deep.equal(before);
    });
  });

  describe('sessions', () => {
    const big = (): Uint32Array => {
      const backing = new Uint32Array(4099);
      for (let i = 0; i < backing.length; i++) backing[i] = (Math.imul(i, 2654435761) ^ (i << 7)) >>> 0;
      backing[10] = 0xffffffff; backing[11] = 0x80000000; backing[12] = 0x7fffffff; backing[13] = 0;
      return backing.subarray(3); // a view at an offset into its buffer
    };

    it('records a completed session: rounds, drops, survivors, and the sum bit-exact', () => {
      const s = open(':memory:');
      const params = { clientIds: [1, 2, 3, 4], threshold: 3, bits: 32, dim: 4096, nested: { a: [true, null, 'x'] } };
      const started = new Date('2025-03-01T10:00:00.000Z');
      expect(s.beginSession({ sessionId: sid(0xa1), params, startedAt: started })).to.equal(1);
      let got = s.session(sid(0xa1))!;
      expect(got).to.deep.equal({
        sessionId: sid(0xa1), seq: 1, params, state: 'running', startedAt: '2025-03-01T10:00:00.000Z', endedAt: undefined,
        abort: undefined, rounds: [], dropped: [], survivors: undefined, sum: undefined,
      });
      const all = ['site-1', 'site-2', 'site-3', 'site-4'];
      s.recordRound(sid(0xa1), { round: 0, participants: all });
      s.recordRound(sid(0xa1), { round: 1, participants: all });
      s.recordDrop(sid(0xa1), { site: 'site-4', round: 2, code: 'SILENT' });
      s.recordRound(sid(0xa1), { round: 2, participants: all.slice(0, 3) });
      s.recordDrop(sid(0xa1), { site: 'site-3', round: 3, code: 'SECAGG_ERR_BAD_SIGNATURE' });
      s.recordRound(sid(0xa1), { round: 3, participants: all.slice(0, 2) });
      s.recordRound(sid(0xa1), { round: 4, participants: all.slice(0, 2) });
      const sum = big();
      const ended = new Date('2025-03-01T10:00:05.250Z');
      s.finishSession(sid(0xa1), { kind: 'completed', sum, survivors: ['site-1', 'site-2', 'site-3'], endedAt: ended });
      got = s.session(sid(0xa1))!;
      expect(got.state).to.equal('completed');
      expect(got.endedAt).to.equal('2025-03-01T10:00:05.250Z');
      expect(got.abort).to.equal(undefined);
      expect(got.rounds).to.deep.equal([
        { round: 0, participants: all }, { round: 1, participants: all }, { round: 2, participants: all.slice(0, 3) },
        { round: 3, participants: all.slice(0, 2) }, { round: 4, participants: all.slice(0, 2) },
      ]);
      expect(got.dropped).to.deep.equal([{ site: 'site-4', round: 2, code: 'SILENT' }, { site: 'site-3', round: 3, code: 'SECAGG_ERR_BAD_SIGNATURE' }]);
      expect(got.survivors).to.deep.equal(['site-1', 'site-2', 'site-3']);
      expect(got.sum).to.be.instanceOf(Uint32Array);
      expect(got.sum!.length).to.equal(sum.length);
      expect(Buffer.from(got.sum!.buffer, got.sum!.byteOffset, got.sum!.byteLength).equals(Buffer.from(sum.buffer, sum.byteOffset, sum.byteLength))).to.equal(true);
      expect(got.sum![7]).to.equal(0xffffffff);
      expect(got.sum![8]).to.equal(0x80000000);
      expect(s.lastCompleted()).to.deep.equal(got);
    });

    it('stores the sum as little-endian uint32 bytes', () => {
      const path = file();
      const s = open(path);
      s.beginSession({ sessionId: sid(1), params: {} });
      s.finishSession(sid(1), { kind: 'completed', sum: new Uint32Array([0x01020304, 0xfffffffe]), survivors: [] });
      s.close();
      const db = new Database(path, { readonly: true });
      try {
        expect(db.prepare('SELECT data FROM sum_parts').pluck().get()).to.deep.equal(Buffer.from([4, 3, 2, 1, 0xfe, 0xff, 0xff, 0xff]));
      } finally {
        db.close();
      }
      expect(Array.from(open(path).session(sid(1))!.sum!)).to.deep.equal([0x01020304, 0xfffffffe]);
    });

    it('stores a sum larger than one BLOB part (16 MiB) in parts and reads it back whole', () => {
      const path = file();
      const s = open(path);
      const sum = new Uint32Array((1 << 22) + 5);
      for (let i = 0; i < sum.length; i++) sum[i] = Math.imul(i, 2654435761) >>> 0;
      s.beginSession({ sessionId: sid(1), params: {} });
      s.finishSession(sid(1), { kind: 'completed', sum, survivors: ['a'] });
      const got = s.session(sid(1))!.sum!;
      expect(got.length).to.equal(sum.length);
      expect(Buffer.from(got.buffer).equals(Buffer.from(sum.buffer))).to.equal(true);
      s.close();
      const db = new Database(path, { readonly: true });
      try {
        expect(db.prepare('SELECT part, length(data) AS n FROM sum_parts ORDER BY part').all()).to.deep.equal([{ part: 0, n: 1 << 24 }, { part: 1, n: 20 }]);
      } finally {
        db.close();
      }
    });

    it('records an aborted session', () => {
      const s = open(':memory:');
      s.beginSession({ sessionId: sid(7), params: { x: 1 } });
      s.recordRound(sid(7), { round: 0, participants: ['a', 'b', 'c'] });
      s.recordDrop(sid(7), { site: 'c', round: 1, code: 'SILENT' });
      s.recordDrop(sid(7), { site: 'b', round: 1, code: 'SILENT' });
      s.finishSession(sid(7), { kind: 'aborted', code: 'SECAGG_ERR_BELOW_THRESHOLD', message: 'only 1 of 3 left, threshold 2', round: 1, endedAt: new Date(0) });
      const got = s.session(sid(7))!;
      expect(got).to.deep.include({
        state: 'aborted', endedAt: '1970-01-01T00:00:00.000Z', survivors: undefined, sum: undefined,
        abort: { code: 'SECAGG_ERR_BELOW_THRESHOLD', message: 'only 1 of 3 left, threshold 2', round: 1 },
      });
      expect(got.dropped.map((d) => d.site)).to.deep.equal(['c', 'b']);
      expect(s.lastCompleted()).to.equal(undefined);
    });

    it('refuses finishing twice, writing to a finished or unknown session, and malformed records', () => {
      const s = open(':memory:');
      s.beginSession({ sessionId: sid(1), params: {} });
      s.recordRound(sid(1), { round: 0, participants: ['a'] });
      expectInternal(() => s.recordRound(sid(1), { round: 0, participants: ['a'] }), /round 0 recorded after round 0/);
      expectInternal(() => s.recordRound(sid(1), { round: 5, participants: [] }), /not in 0\.\.4/);
      expectInternal(() => s.recordRound(sid(1), { round: 1, participants: ['a', 'a'] }), /twice/);
      s.recordDrop(sid(1), { site: 'b', round: 0, code: 'SILENT' });
      expectInternal(() => s.recordDrop(sid(1), { site: 'b', round: 1, code: 'SILENT' }), /already recorded as dropped/);
      expectInternal(() => s.finishSession(sid(1), { kind: 'aborted', code: 'X', message: 'm', round: -1 }), /not in 0\.\.4/);
      s.finishSession(sid(1), { kind: 'completed', sum: new Uint32Array([5]), survivors: ['a'] });
      const done = s.session(sid(1));
      expectInternal(() => s.finishSession(sid(1), { kind: 'completed', sum: new Uint32Array([6]), survivors: ['a'] }), /already completed/);
      expectInternal(() => s.finishSession(sid(1), { kind: 'aborted', code: 'X', message: 'm', round: 0 }), /already completed/);
      expectInternal(() => s.recordRound(sid(1), { round: 1, participants: ['a'] }), /already completed/);
      expectInternal(() => s.recordDrop(sid(1), { site: 'a', round: 1, code: 'SILENT' }), /already completed/);
      expect(s.session(sid(1))).to.deep.equal(done);
      expect(s.session(sid(2))).to.equal(undefined);
      expectInternal(() => s.recordRound(sid(2), { round: 0, participants: [] }), /no such session/);
      expectInternal(() => s.recordDrop(sid(2), { site: 'a', round: 0, code: 'SILENT' }), /no such session/);
      expectInternal(() => s.finishSession(sid(2), { kind: 'aborted', code: 'X', message: 'm', round: 0 }), /no such session/);
    });

    it('never accepts a session id twice, even after the session ended or a reopen', () => {
      const path = file();
      const s = open(path);
      s.beginSession({ sessionId: sid(1), params: {} });
      expectInternal(() => s.beginSession({ sessionId: sid(1), params: {} }), /already used by session #1/);
      s.finishSession(sid(1), { kind: 'aborted', code: 'X', message: 'm', round: 0 });
      expectInternal(() => s.beginSession({ sessionId: sid(1), params: {} }), /never reused/);
      s.close();
      const t = open(path);
      expectInternal(() => t.beginSession({ sessionId: sid(1), params: {} }), /never reused/);
      expectInternal(() => t.beginSession({ sessionId: sid(0xabc).toUpperCase(), params: {} }), /lowercase hex/);
      expectInternal(() => t.beginSession({ sessionId: 'abcd', params: {} }), /64 lowercase hex/);
      expectInternal(() => t.beginSession({ sessionId: sid(2), params: undefined }), /not JSON/);
      expectInternal(() => t.beginSession({ sessionId: sid(2), params: { n: 1n } }), /not JSON/);
      expect(t.beginSession({ sessionId: sid(2), params: {} })).to.equal(2);
      expect(t.sessions().map((x) => x.seq)).to.deep.equal([2, 1]);
    });

    it('lists sessions newest first, by state, with a limit and pages, with or without sums', () => {
      const s = open(':memory:');
      for (let i = 1; i <= 6; i++) {
        s.beginSession({ sessionId: sid(i), params: { i } });
        if (i % 3 === 1) s.finishSession(sid(i), { kind: 'completed', sum: new Uint32Array([i]), survivors: [] });
        if (i % 3 === 2) s.finishSession(sid(i), { kind: 'aborted', code: 'X', message: 'm', round: 0 });
      }
      const seqs = (list: StoredSession[]): number[] => list.map((x) => x.seq);
      expect(seqs(s.sessions())).to.deep.equal([6, 5, 4, 3, 2, 1]);
      expect(seqs(s.sessions({ limit: 2 }))).to.deep.equal([6, 5]);
      expect(seqs(s.sessions({ limit: 0 }))).to.deep.equal([]);
      expect(seqs(s.sessions({ limit: 2, beforeSeq: 5 }))).to.deep.equal([4, 3]);
      expect(seqs(s.sessions({ state: 'completed' }))).to.deep.equal([4, 1]);
      expect(seqs(s.sessions({ state: 'aborted', limit: 1 }))).to.deep.equal([5]);
      expect(seqs(s.sessions({ state: 'running' }))).to.deep.equal([6, 3]);
      expect(s.sessions({ state: 'completed' }).map((x) => x.sum![0])).to.deep.equal([4, 1]);
      expect(s.sessions({ state: 'completed', withSums: false }).map((x) => x.sum)).to.deep.equal([undefined, undefined]);
      expect(s.lastCompleted()!.seq).to.equal(4);
      expectInternal(() => s.sessions({ limit: -1 }), /limit/);
    });

    it('recoverInterrupted aborts the running sessions (COORDINATOR_RESTART) and leaves finished ones intact', () => {
      const s = open(':memory:');
      s.beginSession({ sessionId: sid(1), params: {} });
      s.finishSession(sid(1), { kind: 'completed', sum: new Uint32Array([0xdeadbeef]), survivors: ['a'] });
      s.beginSession({ sessionId: sid(2), params: {} });
      s.finishSession(sid(2), { kind: 'aborted', code: 'SECAGG_ERR_ABORTED', message: 'm', round: 3 });
      s.beginSession({ sessionId: sid(3), params: {} }); // no round closed
      s.beginSession({ sessionId: sid(4), params: {} });
      s.recordRound(sid(4), { round: 0, participants: ['a'] });
      s.recordRound(sid(4), { round: 1, participants: ['a'] });
      s.beginSession({ sessionId: sid(5), params: {} }); // every round closed, then the crash
      for (let r = 0; r <= 4; r++) s.recordRound(sid(5), { round: r, participants: ['a'] });
      const finished = [s.session(sid(1)), s.session(sid(2))];
      const now = new Date('2030-01-02T03:04:05.000Z');
      expect(s.recoverInterrupted(now)).to.deep.equal([sid(3), sid(4), sid(5)]);
      expect([s.session(sid(1)), s.session(sid(2))]).to.deep.equal(finished);
      const rounds = [3, 4, 5].map((i) => s.session(sid(i))!);
      for (const x of rounds) {
        expect(x.state).to.equal('aborted');
        expect(x.endedAt).to.equal('2030-01-02T03:04:05.000Z');
        expect(x.abort!.code).to.equal('COORDINATOR_RESTART');
      }
      expect(rounds.map((x) => x.abort!.round)).to.deep.equal([0, 2, 4]);
      expect(s.recoverInterrupted()).to.deep.equal([]);
    });

    it('the schema itself refuses what the API refuses', () => {
      const path = file();
      const s = open(path);
      s.beginSession({ sessionId: sid(1), params: {} });
      s.finishSession(sid(1), { kind: 'completed', sum: new Uint32Array([1]), survivors: [] });
      s.beginSession({ sessionId: sid(2), params: {} });
      s.close();
      const db = new Database(path);
      try {
        const refused = (sql: string, pattern: RegExp): void => {
          const err = thrown(() => db.exec(sql));
          expect(err).to.be.instanceOf(Database.SqliteError);
          expect((err as Error).message).to.match(pattern);
        };
        refused(`INSERT INTO sites VALUES ('x', 'x', 1, zeroblob(31))`, /CHECK/);
        refused(`INSERT INTO sites VALUES ('x', 'x', 0, zeroblob(32))`, /CHECK/);
        refused("UPDATE sessions SET state = 'paused' WHERE seq = 2", /CHECK/);
        refused("UPDATE sessions SET state = 'aborted' WHERE seq = 1", /finished session never changes/);
        refused("UPDATE sessions SET state = 'completed', ended_at = '2025-01-01T00:00:00Z' WHERE seq = 2", /CHECK/);
        refused('DELETE FROM sessions WHERE seq = 2', /never deleted/);
        refused("INSERT INTO rounds VALUES (2, 5, '[]')", /CHECK/);
        refused("INSERT INTO rounds VALUES (1, 0, '[]')", /running sessions only/);
        refused("INSERT INTO rounds VALUES (99, 0, '[]')", /running sessions only|FOREIGN KEY/);
        refused(`INSERT INTO sessions (session_id, params, state, started_at) VALUES ('${sid(0xabc).toUpperCase()}', '{}', 'running', '2025-01-01T00:00:00Z')`, /CHECK/);
      } finally {
        db.close();
      }
    });
  });

  describe('durability', () => {
    it('survives a SIGKILL in the middle of writing: committed sessions intact, the interrupted one recovered', async function () {
      this.timeout(30_000);
      const path = file();
      const child = spawn(process.execPath, [CHILD, path], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
      // Kill it once it is well into its write loop, at a moment that is not a line boundary.
      await new Promise<void>((res, rej) => {
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if ((out.match(/^done /gm) ?? []).length >= 15) res();
        });
        void exited.then(({ code }) => rej(new Error(`the child exited (${code}) before it was killed: ${err}`)));
      });
      await new Promise((res) => setTimeout(res, 7));
      child.kill('SIGKILL');
      const { signal } = await exited;
      expect(signal).to.equal('SIGKILL');
      expect(out.startsWith('ready\n')).to.equal(true);
      const done = [...out.matchAll(/^done (\d+)$/gm)].map((m) => Number(m[1]));
      const lastDone = done[done.length - 1]!;
      expect(existsSync(`${path}-wal`)).to.equal(true); // it really died without closing

      const s = open(path);
      s.check();
      const first = s.session(crashSessionId(1))!;
      expect(first.state).to.equal('completed');
      expect(first.rounds.map((r) => r.round)).to.deep.equal([0, 1, 2, 3, 4]);
      expect(first.dropped).to.deep.equal([{ site: 'site-3', round: 2, code: 'SILENT' }]);
      expect(first.survivors).to.deep.equal(['site-0', 'site-1', 'site-2']);
      expect(Array.from(first.sum!)).to.deep.equal(Array.from(crashSum(1)));
      const second = s.session(crashSessionId(2))!;
      expect(second.state).to.equal('running');
      expect(second.rounds.map((r) => r.round)).to.deep.equal([0, 1]);
      expect(second.dropped).to.deep.equal([{ site: 'site-3', round: 1, code: 'SILENT' }]);
      // Every session the child reported is complete with its exact sum; the one after may be anywhere in between.
      for (const k of done) {
        const x = s.session(crashSessionId(k))!;
        expect(x.state, `session ${k}`).to.equal('completed');
        expect(Array.from(x.sum!), `sum of session ${k}`).to.deep.equal(Array.from(crashSum(k)));
      }
      const all = s.sessions();
      expect(all.map((x) => x.seq)).to.deep.equal(Array.from({ length: all.length }, (_, i) => all.length - i));
      expect(all.length).to.be.within(lastDone, lastDone + 1);
      const tail = all[0]!;
      if (tail.seq === lastDone + 1) {
        expect(tail.sessionId).to.equal(crashSessionId(lastDone + 1));
        if (tail.state === 'completed') expect(Array.from(tail.sum!)).to.deep.equal(Array.from(crashSum(lastDone + 1)));
        else expect(tail.state).to.equal('running');
      }
      // The roster is one whole version, never a mix.
      const roster = s.roster();
      const versions = new Set(roster.map((r) => r.name.replace(/^site \d+ v/, '')));
      expect(roster).to.have.length(8);
      expect(versions.size).to.equal(1);
      expect(Number([...versions][0])).to.be.within(lastDone, lastDone + 1);
      expect(roster).to.deep.equal(crashRoster(Number([...versions][0])));

      const recovered = s.recoverInterrupted();
      expect(recovered[0]).to.equal(crashSessionId(2));
      expect(recovered.slice(1)).to.deep.equal(tail.state === 'running' ? [tail.sessionId] : []);
      const after = s.session(crashSessionId(2))!;
      expect(after.state).to.equal('aborted');
      expect(after.abort).to.deep.include({ code: 'COORDINATOR_RESTART', round: 2 });
      expect(after.rounds).to.deep.equal(second.rounds);
      expect(s.session(crashSessionId(1))).to.deep.equal(first);
      s.close();
      // Recovery itself was committed.
      expect(open(path).session(crashSessionId(2))!.state).to.equal('aborted');
    });
  });

  describe('backup', () => {
    it('writes a consistent copy that opens with the same sessions and roster', async () => {
      const s = open(file());
      s.syncRoster([site(1), site(2)]);
      for (let i = 1; i <= 3; i++) {
        s.beginSession({ sessionId: sid(i), params: { i } });
        s.recordRound(sid(i), { round: 0, participants: ['site-1', 'site-2'] });
        if (i < 3) s.finishSession(sid(i), { kind: 'completed', sum: Uint32Array.from([i, 0xffffffff - i]), survivors: ['site-1', 'site-2'] });
      }
      const dest = join(dir, 'backup.db');
      await s.backup(dest);
      // Written after the backup: not in it.
      s.finishSession(sid(3), { kind: 'aborted', code: 'X', message: 'm', round: 1 });
      expect(existsSync(dest)).to.equal(true);
      expect(existsSync(`${dest}-wal`)).to.equal(false);
      const copy = open(dest);
      copy.check();
      expect(copy.schemaVersion()).to.equal(STORE_SCHEMA_VERSION);
      expect(copy.roster()).to.deep.equal(s.roster());
      expect(copy.sessions().slice(1)).to.deep.equal(s.sessions().slice(1));
      expect(copy.session(sid(3))!.state).to.equal('running');
      expect(copy.lastCompleted()).to.deep.equal(s.lastCompleted());
      // Never overwrites, and leaves no temporary file behind.
      let refused: unknown;
      await s.backup(dest).catch((e: unknown) => { refused = e; });
      expect(refused).to.be.instanceOf(ValidationError);
      expect((refused as TallyError).code).to.equal('CONSORTIUM_ERR_EXISTS');
      expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).to.deep.equal([]);
    });

    it('backs up an in-memory store', async () => {
      const s = open(':memory:');
      s.beginSession({ sessionId: sid(1), params: {} });
      const dest = join(dir, 'memory-backup.db');
      await s.backup(dest);
      expect(open(dest).session(sid(1))!.state).to.equal('running');
    });
  });

  it('close is idempotent, and a closed store refuses every call', () => {
    const s = open(':memory:');
    s.close();
    s.close();
    expect(s.isOpen).to.equal(false);
    expectInternal(() => s.roster(), /closed/);
    expectInternal(() => s.beginSession({ sessionId: sid(1), params: {} }), /closed/);
    expectInternal(() => s.sessions(), /closed/);
  });
});
