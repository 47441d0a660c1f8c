/** The crypto suite's validators and byte helpers (src/crypto/_validate.ts). */
import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';
import {
  abytes,
  abytesMin,
  anumber,
  BAD_INPUT,
  concatBytes,
  concatFields,
  equalBytes,
  fromHex,
  isBytes,
  toHex,
  u32be,
} from '../../src/crypto/_validate.js';
import { expectError } from './_helpers.js';

describe('crypto validators', () => {
  it('abytes returns the value on success and names the argument on failure', () => {
    const k = new Uint8Array(32);
    expect(abytes(k, 32, 'publicKey')).to.equal(k);
    expect(abytes(Buffer.alloc(3), undefined, 'x')).to.have.length(3);
    expectError(() => abytes(new Uint8Array(31), 32, 'publicKey'), ValidationError, BAD_INPUT, '"publicKey" expected Uint8Array of length 32, got length=31');
    expectError(() => abytes('ab', undefined, 'data'), ValidationError, BAD_INPUT, '"data" expected Uint8Array, got type=string');
    expectError(() => abytes(new Int8Array(32), 32, 'k'), ValidationError, BAD_INPUT, '"k" expected Uint8Array of length 32, got type=Int8Array');
    // The message never prints the (possibly secret) value itself.
    const err = expectError(() => abytes([7, 7, 7], 32, 'seed'), ValidationError, BAD_INPUT);
    expect(err.message).to.not.include('7');
  });

  it('abytesMin and isBytes', () => {
    expect(abytesMin(new Uint8Array(16), 16, 'sealed')).to.have.length(16);
    expectError(() => abytesMin(new Uint8Array(15), 16, 'sealed'), ValidationError, BAD_INPUT, '"sealed" expected Uint8Array of length >= 16, got length=15');
    expect(isBytes(new Uint8Array(1))).to.equal(true);
    expect(isBytes(Buffer.alloc(1))).to.equal(true);
    expect(isBytes(new Uint8ClampedArray(1))).to.equal(false);
    expect(isBytes([1])).to.equal(false);
  });

  it('anumber accepts safe integers in range only', () => {
    expect(anumber(0, 'n', 0, 10)).to.equal(0);
    expect(anumber(10, 'n', 0, 10)).to.equal(10);
    expectError(() => anumber(11, 'n', 0, 10), ValidationError, BAD_INPUT, '"n" expected integer in [0, 10], got 11');
    expectError(() => anumber(2.5, 'n', 0, 10), ValidationError, BAD_INPUT, '"n" expected integer in [0, 10], got 2.5');
    expectError(() => anumber(2n, 'n', 0, 10), ValidationError, BAD_INPUT, '"n" expected integer in [0, 10], got type=bigint');
    expectError(() => anumber(2 ** 53, 'n'), ValidationError, BAD_INPUT);
  });

  it('equalBytes compares lengths and contents', () => {
    expect(equalBytes(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3))).to.equal(true);
    expect(equalBytes(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4))).to.equal(false);
    expect(equalBytes(Uint8Array.of(0x80, 2, 3), Uint8Array.of(0, 2, 3))).to.equal(false);
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0))).to.equal(false);
    expect(equalBytes(new Uint8Array(0), new Uint8Array(0))).to.equal(true);
    expectError(() => equalBytes('ab' as unknown as Uint8Array, new Uint8Array(2)), ValidationError, BAD_INPUT, '"a" expected Uint8Array, got type=string');
  });

  it('concatBytes concatenates into a fresh array', () => {
    const a = Uint8Array.of(1, 2);
    const out = concatBytes(a, new Uint8Array(0), Uint8Array.of(3));
    expect(out).to.deep.equal(Uint8Array.of(1, 2, 3));
    out[0] = 9;
    expect(a[0]).to.equal(1);
    expect(concatBytes()).to.deep.equal(new Uint8Array(0));
    expectError(() => concatBytes(a, 5 as unknown as Uint8Array), ValidationError, BAD_INPUT, '"parts[1]" expected Uint8Array, got type=number');
  });

  it('concatFields writes byte strings and u32 integers as concatBytes of them and their u32be', () => {
    const label = Uint8Array.of(7, 7, 7), key = Uint8Array.of(1, 2);
    expect(concatFields([label, 258, key, 0, 0xffffffff])).to.deep.equal(concatBytes(label, u32be(258), key, u32be(0), u32be(0xffffffff)));
    expect(concatFields([])).to.deep.equal(new Uint8Array(0));
    const ids = Array.from({ length: 200_000 }, (_, i) => i); // an array, not arguments: no argument limit
    expect(concatFields(ids).length).to.equal(800_000);
    expectError(() => concatFields([label, 2 ** 32]), ValidationError, BAD_INPUT, '"parts[1]" expected integer in [0, 4294967295], got 4294967296');
    expectError(() => concatFields([-1]), ValidationError, BAD_INPUT, '"parts[0]" expected integer in [0, 4294967295], got -1');
    expectError(() => concatFields([1.5]), ValidationError, BAD_INPUT, '"parts[0]" expected integer in [0, 4294967295], got 1.5');
    expectError(() => concatFields([label, 'x' as unknown as Uint8Array]), ValidationError, BAD_INPUT, '"parts[1]" expected Uint8Array, got type=string');
  });

  it('u32be encodes big-endian and range-checks', () => {
    expect(u32be(0)).to.deep.equal(Uint8Array.of(0, 0, 0, 0));
    expect(u32be(258)).to.deep.equal(Uint8Array.of(0, 0, 1, 2));
    expect(u32be(0xffffffff)).to.deep.equal(Uint8Array.of(255, 255, 255, 255));
    expectError(() => u32be(2 ** 32), ValidationError, BAD_INPUT, '"n" expected integer in [0, 4294967295], got 4294967296');
    expectError(() => u32be(-1), ValidationError, BAD_INPUT);
    expectError(() => u32be(1.5), ValidationError, BAD_INPUT);
  });

  it('toHex / fromHex round-trip and reject bad hex', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(fromHex(toHex(all))).to.deep.equal(all);
    expect(toHex(Uint8Array.of(0, 10, 255))).to.equal('000aff');
    expect(fromHex('0a0B')).to.deep.equal(Uint8Array.of(10, 11));
    expect(fromHex('')).to.deep.equal(new Uint8Array(0));
    expectError(() => fromHex('abc'), ValidationError, BAD_INPUT, '"hex" expected an even number of digits, got length=3');
    expectError(() => fromHex('0g'), ValidationError, BAD_INPUT, '"hex" has a non-hex character at index 1');
    expectError(() => fromHex(' 0'), ValidationError, BAD_INPUT, '"hex" has a non-hex character at index 0');
    expectError(() => fromHex(12 as unknown as string), ValidationError, BAD_INPUT, '"hex" expected string, got type=number');
    expectError(() => toHex('00' as unknown as Uint8Array), ValidationError, BAD_INPUT, '"bytes" expected Uint8Array, got type=string');
  });
});
