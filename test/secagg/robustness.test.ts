/**
 * Bad input never crashes a party: every message field of a real session is
 * replaced by hostile values (wrong types, NaN, negative or huge ids, empty
 * and oversized arrays, truncated bytes) and handed to the server and to an
 * honest client. Neither may throw; the server refuses the message with a
 * code, and the client either aborts with a code or, for a message it can
 * still accept, goes on.
 */
import { expect } from 'chai';
import { handleServerMessage } from '../../src/secagg/client/index.js';
import { receiveMessage } from '../../src/secagg/server/index.js';
import type { ClientMessage, ServerMessage } from '../../src/secagg/messages.js';
import { collect, newSession, runUntil, transcriptOf, type Session } from './_harness.js';

function hostile(v: unknown): unknown[] {
  const out: unknown[] = [null, undefined, 0, -1, Number.NaN, 2 ** 32, 1.5, 'x', {}, [], true];
  if (v instanceof Uint8Array) out.push(v.subarray(1), new Uint8Array(0), new Uint8Array(v.length + 1), Array.from(v));
  if (Array.isArray(v)) out.push(v.slice(1), [...v, ...v], [null], v.map(() => ({})));
  return out;
}

/** Every variant of `m` with one field (at depth ≤ 2) replaced by a hostile value. */
function mutations<T extends object>(m: T): T[] {
  const out: T[] = [];
  for (const [k, v] of Object.entries(m)) {
    if (k === 'type') continue;
    for (const h of hostile(v)) out.push({ ...m, [k]: h });
    if (Array.isArray(v) && v.length > 0 && typeof v[0] === 'object') {
      for (const [k2, v2] of Object.entries(v[0] as object)) {
        for (const h of hostile(v2)) out.push({ ...m, [k]: [{ ...(v[0] as object), [k2]: h }, ...v.slice(1)] });
      }
    }
  }
  return out;
}

/** One honest server message of every type the session sends. */
function serverMessages(threat: 'semi-honest' | 'malicious'): ServerMessage[] {
  const seen = new Map<string, ServerMessage>();
  for (const m of transcriptOf({ n: 5, threat }).server) if (!seen.has(m.type)) seen.set(m.type, m);
  return [...seen.values()];
}

/** A fresh honest session run until client 1 is about to receive a message of `type`. */
function clientAwaiting(threat: 'semi-honest' | 'malicious', type: ServerMessage['type']): Session {
  const session = newSession({ n: 5, threat });
  runUntil(session, type);
  return session;
}

describe('secagg: hostile messages never crash a party', () => {
  for (const threat of ['semi-honest', 'malicious'] as const) {
    it(`${threat}: the server refuses every mutated client message with a code`, function () {
      this.timeout(120000);
      let refused = 0;
      for (const type of ['advertise', 'shares', 'masked-input', 'consistency', 'unmask'] as const) {
        // Fresh session per message type, driven to the round that expects it.
        const session = newSession({ n: 5, threat });
        const msgs = collect(session, type);
        if (msgs.length === 0) continue; // consistency in semi-honest mode
        const honest = msgs[0]!;
        for (const bad of mutations(honest)) {
          const step = receiveMessage(session.server, honest.id, bad as ClientMessage);
          session.server = step.state;
          if (step.rejected) {
            refused++;
            expect(step.rejected.code).to.match(/^SECAGG_ERR_|^CRYPTO_ERR_|^SHAMIR_ERR_/);
          }
          // Keep the peer from being dropped for good so the next mutation is judged too.
          session.server.ctx.dropped.delete(honest.id);
          if (session.server.kind === 'r0') session.server.adverts.delete(honest.id);
          if (session.server.kind === 'r1') session.server.shares.delete(honest.id);
          if (session.server.kind === 'r3') session.server.signatures.delete(honest.id);
          if (session.server.kind === 'r4') session.server.responded.delete(honest.id);
        }
      }
      expect(refused).to.be.greaterThan(100);
    });

    it(`${threat}: an honest client aborts with a code (or goes on) on every mutated server message`, () => {
      let aborted = 0;
      for (const base of serverMessages(threat)) {
        for (const bad of mutations(base)) {
          const session = clientAwaiting(threat, base.type);
          const step = handleServerMessage(session.clients.get(1)!, bad as ServerMessage);
          if (step.state.kind === 'aborted') {
            aborted++;
            expect(step.state.code).to.match(/^SECAGG_ERR_|^CRYPTO_ERR_|^SHAMIR_ERR_/);
            expect(step.out.every((m) => m.type === 'abort')).to.equal(true);
          }
        }
      }
      expect(aborted).to.be.greaterThan(50);
    });
  }
});
