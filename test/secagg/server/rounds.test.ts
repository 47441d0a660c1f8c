import { expect } from 'chai';
import { closeRound, receiveMessage } from '../../../src/secagg/server/index.js';
import type { AdvertiseKeysMessage, ClientMessage, MaskedInputMessage, ShareKeysMessage, UnmaskMessage } from '../../../src/secagg/messages.js';
import { collect, deliver, expectedSum, newSession, serverRound, type Session } from '../_harness.js';

/** Feeds messages to the server and returns the rejections. */
function feed(s: Session, msgs: ClientMessage[]) {
  const rejected = [];
  for (const m of msgs) {
    const step = receiveMessage(s.server, m.id, m);
    s.server = step.state;
    if (step.rejected) rejected.push(step.rejected);
  }
  return rejected;
}

/** Advances the session to the point where the server collects messages of `kind`; returns the honest messages of that round. */
function collectPhase(o: Parameters<typeof newSession>[0], kind: ClientMessage['type']) {
  const session = newSession({ n: 5, ...o });
  const msgs = collect(session, kind);
  return { session, msgs };
}

function closeAndFinish(s: Session) {
  const step = closeRound(s.server);
  s.server = step.state;
  let out = [...step.out];
  for (;;) {
    const st = s.server;
    if (st.kind === 'completed' || st.kind === 'aborted') return st;
    out = serverRound(s, deliver(s, out));
  }
}

describe('secagg/server', () => {
  describe('R0 AdvertiseKeys', () => {
    it('refuses unknown ids, duplicates, foreign sessions, low-order and reused keys, and drops the sender', () => {
      const { session, msgs } = collectPhase({}, 'advertise');
      const ads = msgs as AdvertiseKeysMessage[];
      const rej = feed(session, [
        ads[0]!,
        { ...ads[1]!, id: 77 },
        ads[0]!,
        { ...ads[1]!, configHash: new Uint8Array(32) },
        { ...ads[2]!, sPk: Uint8Array.of(1, ...new Uint8Array(31)) },
        { ...ads[3]!, cPk: ads[0]!.cPk },
        { type: 'masked-input', sessionId: new Uint8Array(32), id: 5, masked: new Uint8Array(1) },
      ]);
      expect(rej.map((r) => [r.peer, r.code])).to.deep.equal([
        [undefined, 'SECAGG_ERR_UNKNOWN_ID'],
        [1, 'SECAGG_ERR_DUPLICATE_ID'],
        [2, 'SECAGG_ERR_SESSION_MISMATCH'],
        [3, 'SECAGG_ERR_LOW_ORDER_KEY'],
        [4, 'SECAGG_ERR_DUPLICATE_KEY'],
        [5, 'SECAGG_ERR_UNEXPECTED_MESSAGE'],
      ]);
      expect([...session.server.ctx.dropped.keys()].sort()).to.deep.equal([2, 3, 4]);
      // A dropped client stays dropped, even with a valid message.
      expect(feed(session, [ads[1]!])[0]!.code).to.equal('SECAGG_ERR_UNEXPECTED_MESSAGE');
    });

    it('malicious mode: refuses an advertisement not signed by the roster key', () => {
      const { session, msgs } = collectPhase({ threat: 'malicious' }, 'advertise');
      const ads = msgs as AdvertiseKeysMessage[];
      const rej = feed(session, [{ ...ads[0]!, signature: ads[1]!.signature! }]);
      expect(rej[0]!.code).to.equal('SECAGG_ERR_BAD_SIGNATURE');
    });

    it('aborts everywhere when fewer than t clients advertise', () => {
      const { session, msgs } = collectPhase({}, 'advertise');
      feed(session, msgs.slice(0, 2));
      const step = closeRound(session.server);
      expect(step.state.kind).to.equal('aborted');
      expect(step.state.kind === 'aborted' && step.state.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
      expect(step.out.map((o) => o.to)).to.deep.equal([1, 2]);
      expect(step.out.every((o) => o.message.type === 'abort')).to.equal(true);
      expect(() => closeRound(step.state)).to.throw(/already aborted/);
    });
  });

  describe('R1 ShareKeys', () => {
    it('drops a client whose shares are misaddressed, short or malformed; the sum of the others is exact', () => {
      const { session, msgs } = collectPhase({ n: 6 }, 'shares');
      const sh = msgs as ShareKeysMessage[];
      const rej = feed(session, [
        { ...sh[0]!, shares: sh[0]!.shares.slice(1) },
        { ...sh[1]!, shares: sh[1]!.shares.map((x, i) => (i === 0 ? { ...x, to: 6 } : x)) },
        { ...sh[2]!, shares: sh[2]!.shares.map((x, i) => (i === 0 ? { ...x, ciphertext: x.ciphertext.slice(2) } : x)) },
        sh[3]!, sh[4]!, sh[5]!,
      ]);
      expect(rej.map((r) => [r.peer, r.code])).to.deep.equal([[1, 'SECAGG_ERR_BAD_MESSAGE'], [2, 'SECAGG_ERR_BAD_MESSAGE'], [3, 'SECAGG_ERR_BAD_SHARE']]);
      // 4, 5 and 6 remain, exactly t = 3: the session completes with their sum and nothing of 1, 2, 3.
      const done = closeAndFinish(session);
      expect(done.kind).to.equal('completed');
      if (done.kind === 'completed') {
        expect(done.survivors).to.deep.equal([4, 5, 6]);
        expect(Array.from(done.sum)).to.deep.equal(expectedSum(session, [4, 5, 6]));
      }
    });

    it('aborts, revealing nothing, when the refused clients leave fewer than t', () => {
      const { session, msgs } = collectPhase({}, 'shares');
      const sh = msgs as ShareKeysMessage[];
      feed(session, [{ ...sh[0]!, shares: sh[0]!.shares.slice(1) }, { ...sh[1]!, shares: sh[1]!.shares.slice(1) }, { ...sh[2]!, shares: sh[2]!.shares.slice(1) }, sh[3]!, sh[4]!]);
      // Only 4 and 5 remain, below t = 3.
      const end = closeRound(session.server);
      expect(end.state.kind === 'aborted' && end.state.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
      expect(end.out.every((o) => o.message.type === 'abort')).to.equal(true);
    });

    it('keeps going when one client is dropped and t remain', () => {
      const { session, msgs } = collectPhase({}, 'shares');
      const sh = msgs as ShareKeysMessage[];
      feed(session, [{ ...sh[0]!, shares: sh[0]!.shares.slice(1) }, ...sh.slice(1)]);
      session.silent.add(1);
      const done = closeAndFinish(session);
      expect(done.kind).to.equal('completed');
      if (done.kind === 'completed') {
        expect(done.survivors).to.deep.equal([2, 3, 4, 5]);
        expect(Array.from(done.sum)).to.deep.equal(expectedSum(session, [2, 3, 4, 5]));
      }
    });
  });

  describe('R2 MaskedInputCollection', () => {
    it('drops a masked input of the wrong length or with padding bits set, never adding it to the sum', () => {
      const { session, msgs } = collectPhase({ bits: 15 }, 'masked-input'); // 10 × 15 bits: 2 padding bits
      const mi = msgs as MaskedInputMessage[];
      const padded = mi[1]!.masked.slice();
      padded[padded.length - 1]! |= 0x80;
      const rej = feed(session, [
        { ...mi[0]!, masked: mi[0]!.masked.slice(1) },
        { ...mi[1]!, masked: padded },
        { ...mi[2]!, sessionId: new Uint8Array(32) },
        mi[3]!, mi[3]!, mi[4]!,
      ]);
      expect(rej.map((r) => [r.peer, r.code])).to.deep.equal([
        [1, 'SECAGG_ERR_BAD_VECTOR'], [2, 'SECAGG_ERR_BAD_VECTOR'], [3, 'SECAGG_ERR_SESSION_MISMATCH'], [4, 'SECAGG_ERR_DUPLICATE_ID'],
      ]);
      // 4 stays in (its first masked input counts); 1, 2, 3 are out; t = 3 is not met by 2 survivors.
      const end = closeRound(session.server);
      expect(end.state.kind === 'aborted' && end.state.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
    });

    it('sums exactly when a bad masked input is refused and t survivors remain', () => {
      const { session, msgs } = collectPhase({ n: 6, bits: 15 }, 'masked-input');
      const mi = msgs as MaskedInputMessage[];
      feed(session, [{ ...mi[0]!, masked: mi[0]!.masked.slice(1) }, ...mi.slice(1)]);
      const done = closeAndFinish(session);
      expect(done.kind === 'completed' && Array.from(done.sum)).to.deep.equal(expectedSum(session, [2, 3, 4, 5, 6]));
    });
  });

  describe('R3 ConsistencyCheck (malicious)', () => {
    it('refuses a bad or foreign signature', () => {
      const { session, msgs } = collectPhase({ threat: 'malicious' }, 'consistency');
      const rej = feed(session, [{ ...msgs[0]!, signature: new Uint8Array(64) } as ClientMessage, msgs[1]!, msgs[1]!]);
      expect(rej.map((r) => [r.peer, r.code])).to.deep.equal([[1, 'SECAGG_ERR_BAD_SIGNATURE'], [2, 'SECAGG_ERR_DUPLICATE_ID']]);
    });
  });

  describe('R4 Unmasking', () => {
    it('ignores a response with the wrong share list and still rebuilds from the others', () => {
      const { session, msgs } = collectPhase({ n: 6 }, 'unmask');
      const um = msgs as UnmaskMessage[];
      const rej = feed(session, [{ ...um[0]!, selfShares: um[0]!.selfShares.slice(1) }, ...um.slice(1)]);
      expect(rej.map((r) => [r.peer, r.code])).to.deep.equal([[1, 'SECAGG_ERR_BAD_MESSAGE']]);
      const done = closeRound(session.server).state;
      expect(done.kind === 'completed' && Array.from(done.sum)).to.deep.equal(expectedSum(session, [1, 2, 3, 4, 5, 6]));
    });

    it('drops a client whose share is not a field element, instead of failing the reconstruction', () => {
      const { session, msgs } = collectPhase({ n: 6 }, 'unmask');
      const um = msgs as UnmaskMessage[];
      const huge = new Uint8Array(33).fill(0xff); // ≥ p = 2^256 + 297
      const rej = feed(session, [{ ...um[0]!, selfShares: um[0]!.selfShares.map((s, i) => (i === 1 ? { ...s, share: huge } : s)) }, ...um.slice(1)]);
      expect(rej.map((r) => [r.peer, r.code])).to.deep.equal([[1, 'SECAGG_ERR_BAD_SHARE']]);
      const done = closeRound(session.server).state;
      expect(done.kind === 'completed' && Array.from(done.sum)).to.deep.equal(expectedSum(session, [1, 2, 3, 4, 5, 6]));
    });

    it('aborts when a rebuilt mask key does not match the advertised key (tampered key share)', () => {
      // 6 shares keys, then drops: its s^SK is rebuilt in R4.
      const session = newSession({ n: 6, silentFrom: new Map([[6, 2]]) });
      const um = collect(session, 'unmask') as UnmaskMessage[];
      const forged = um.map((m) => ({ ...m, keyShares: m.keyShares.map((k) => ({ ...k, share: k.share.map((x, j) => (j === 32 ? x ^ 1 : x)) })) }));
      feed(session, forged);
      const end = closeRound(session.server).state;
      expect(end.kind === 'aborted' && end.code).to.equal('SECAGG_ERR_RECONSTRUCTION_FAILED');
    });

    it('aborts when fewer than t clients answer (|U5| < t)', () => {
      const { session, msgs } = collectPhase({}, 'unmask');
      feed(session, msgs.slice(0, 2));
      const end = closeRound(session.server);
      expect(end.state.kind === 'aborted' && end.state.code).to.equal('SECAGG_ERR_BELOW_THRESHOLD');
      expect(end.out.length).to.equal(2);
    });
  });
});
