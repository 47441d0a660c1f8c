/**
 * "Rejects invalid inputs" for every public function of both providers: each
 * byte argument is replaced by wrong lengths and by non-Uint8Array values, and
 * must fail with ValidationError CRYPTO_ERR_BAD_INPUT and an exact message.
 */
import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';
import { BAD_INPUT } from '../../src/crypto/_validate.js';
import { defaultProvider, getProvider, nativeProvider, portableProvider } from '../../src/crypto/index.js';
import type { CryptoProvider } from '../../src/crypto/types.js';
import { expectError, PROVIDERS } from './_helpers.js';

/** An argument: its name, required length (`min` = at least) and a valid value. */
interface Arg { name: string; len?: number; min?: number; value: unknown }
interface Case { fn: string; call: (c: CryptoProvider, args: unknown[]) => unknown; args: Arg[] }

const b = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill);
const CASES: Case[] = [
  { fn: 'x25519PublicKey', call: (c, a) => c.x25519PublicKey(a[0] as Uint8Array), args: [{ name: 'privateKey', len: 32, value: b(32) }] },
  {
    fn: 'x25519',
    call: (c, a) => c.x25519(a[0] as Uint8Array, a[1] as Uint8Array),
    args: [{ name: 'privateKey', len: 32, value: b(32) }, { name: 'publicKey', len: 32, value: b(32, 9) }],
  },
  {
    fn: 'x25519Agreement',
    call: (c, a) => c.x25519Agreement(a[0] as Uint8Array)(a[1] as Uint8Array),
    args: [{ name: 'privateKey', len: 32, value: b(32) }, { name: 'publicKey', len: 32, value: b(32, 9) }],
  },
  { fn: 'ed25519PublicKey', call: (c, a) => c.ed25519PublicKey(a[0] as Uint8Array), args: [{ name: 'seed', len: 32, value: b(32) }] },
  {
    fn: 'ed25519Sign',
    call: (c, a) => c.ed25519Sign(a[0] as Uint8Array, a[1] as Uint8Array),
    args: [{ name: 'seed', len: 32, value: b(32) }, { name: 'message', value: b(5) }],
  },
  {
    // Wrong lengths make verification return false (see providers.test.ts); wrong types throw.
    fn: 'ed25519Verify',
    call: (c, a) => c.ed25519Verify(a[0] as Uint8Array, a[1] as Uint8Array, a[2] as Uint8Array),
    args: [{ name: 'publicKey', value: b(32) }, { name: 'message', value: b(5) }, { name: 'signature', value: b(64) }],
  },
  { fn: 'sha256', call: (c, a) => c.sha256(a[0] as Uint8Array), args: [{ name: 'data', value: b(5) }] },
  {
    fn: 'hkdf',
    call: (c, a) => c.hkdf(a[0] as Uint8Array, a[1] as Uint8Array, a[2] as Uint8Array, 32),
    args: [{ name: 'ikm', value: b(5) }, { name: 'salt', value: b(5) }, { name: 'info', value: b(5) }],
  },
  {
    fn: 'aesGcmSeal',
    call: (c, a) => c.aesGcmSeal(a[0] as Uint8Array, a[1] as Uint8Array, a[2] as Uint8Array, a[3] as Uint8Array),
    args: [
      { name: 'key', len: 32, value: b(32) }, { name: 'nonce', len: 12, value: b(12) },
      { name: 'plaintext', value: b(5) }, { name: 'aad', value: b(5) },
    ],
  },
  {
    fn: 'aesGcmOpen',
    call: (c, a) => c.aesGcmOpen(a[0] as Uint8Array, a[1] as Uint8Array, a[2] as Uint8Array, a[3] as Uint8Array),
    args: [
      { name: 'key', len: 32, value: b(32) }, { name: 'nonce', len: 12, value: b(12) },
      { name: 'sealed', min: 16, value: b(16) }, { name: 'aad', value: b(5) },
    ],
  },
  {
    fn: 'aes128Ctr',
    call: (c, a) => c.aes128Ctr(a[0] as Uint8Array, a[1] as Uint8Array),
    args: [{ name: 'key', len: 16, value: b(16) }, { name: 'iv', len: 16, value: b(16) }],
  },
  {
    fn: 'aes128Ctr(…).fill',
    call: (c, a) => c.aes128Ctr(b(16), b(16)).fill(a[0] as Uint8Array),
    args: [{ name: 'out', value: b(5) }],
  },
  {
    fn: 'aes256Ctr',
    call: (c, a) => c.aes256Ctr(a[0] as Uint8Array, a[1] as Uint8Array),
    args: [{ name: 'key', len: 32, value: b(32) }, { name: 'iv', len: 16, value: b(16) }],
  },
  {
    fn: 'aes256Ctr(…).fill',
    call: (c, a) => c.aes256Ctr(b(32), b(16)).fill(a[0] as Uint8Array),
    args: [{ name: 'out', value: b(5) }],
  },
];

/** Non-Uint8Array values and the type name the message must report. */
const WRONG_TYPES: [unknown, string][] = [
  ['00'.repeat(32), 'string'], [32, 'number'], [undefined, 'undefined'], [null, 'null'],
  [Array(32).fill(1), 'object'], [new Uint16Array(32), 'Uint16Array'], [new ArrayBuffer(32), 'object'],
  [new DataView(new ArrayBuffer(32)), 'DataView'],
];

function want(arg: Arg): string {
  if (arg.len !== undefined) return `Uint8Array of length ${arg.len}`;
  if (arg.min !== undefined) return `Uint8Array of length >= ${arg.min}`;
  return 'Uint8Array';
}

for (const c of PROVIDERS) {
  describe(`crypto provider ${c.name}: rejects invalid inputs`, () => {
    for (const { fn, call, args } of CASES) {
      it(`${fn}`, () => {
        // The valid arguments pass validation (GCM open may still fail its tag check).
        if (fn !== 'aesGcmOpen') call(c, args.map((a) => a.value));
        args.forEach((arg, i) => {
          const withArg = (v: unknown): unknown[] => args.map((a, j) => (j === i ? v : a.value));
          for (const [v, type] of WRONG_TYPES) {
            expectError(() => call(c, withArg(v)), ValidationError, BAD_INPUT, `"${arg.name}" expected ${want(arg)}, got type=${type}`);
          }
          const bad = arg.len !== undefined ? [0, arg.len - 1, arg.len + 1] : arg.min !== undefined ? [0, arg.min - 1] : [];
          for (const n of bad) {
            expectError(() => call(c, withArg(new Uint8Array(n))), ValidationError, BAD_INPUT, `"${arg.name}" expected ${want(arg)}, got length=${n}`);
          }
        });
      });
    }

    it('hkdf length must be an integer in [0, 255·32]', () => {
      for (const [len, shown] of [[-1, '-1'], [8161, '8161'], [1.5, '1.5'], [NaN, 'NaN'], [Infinity, 'Infinity'], ['32', 'type=string'], [undefined, 'type=undefined']] as const) {
        expectError(
          () => c.hkdf(b(5), b(5), b(5), len as unknown as number),
          ValidationError, BAD_INPUT, `"length" expected integer in [0, 8160], got ${shown}`,
        );
      }
    });

    it('accepts Buffer arguments and returns the same bytes as for Uint8Array', () => {
      const sk = b(32, 3);
      const pk = c.x25519PublicKey(sk);
      expect(c.x25519PublicKey(Buffer.from(sk))).to.deep.equal(pk);
      expect(c.sha256(Buffer.from('abc'))).to.deep.equal(c.sha256(new TextEncoder().encode('abc')));
    });
  });
}

describe('getProvider / defaultProvider', () => {
  it('returns the named provider; native is the default', () => {
    expect(getProvider('native')).to.equal(nativeProvider);
    expect(getProvider('portable')).to.equal(portableProvider);
    expect(nativeProvider.name).to.equal('native');
    expect(portableProvider.name).to.equal('portable');
    expect(defaultProvider).to.equal(nativeProvider);
  });

  it('rejects an unknown name', () => {
    expectError(() => getProvider('webcrypto' as 'native'), ValidationError, BAD_INPUT, `"name" expected 'native' or 'portable', got "webcrypto"`);
    expectError(() => getProvider(undefined as unknown as 'native'), ValidationError, BAD_INPUT);
  });
});
