/**
 * Shared helpers for the crypto-suite tests: the providers under test, fixture
 * loading and typed-error assertions.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { TallyError } from '../../src/errors.js';
import { fromHex } from '../../src/crypto/_validate.js';
import { nativeProvider } from '../../src/crypto/native.js';
import { portableProvider } from '../../src/crypto/portable.js';
import type { CryptoProvider } from '../../src/crypto/types.js';

/** Both providers; every provider test runs once per entry. */
export const PROVIDERS: readonly CryptoProvider[] = [nativeProvider, portableProvider];

/** Hex to bytes (test shorthand). */
export const h = (hex: string): Uint8Array => fromHex(hex);

/**
 * Parses a JSON fixture from test/fixtures/. Tests run from dist/test/crypto/,
 * so the path is resolved against the repository root, not the compiled file.
 */
export function loadFixture<T>(relative: string): T {
  const url = new URL(`../../../test/fixtures/${relative}`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as T;
}

/**
 * Asserts that `fn` throws an instance of `cls` with the given `code` (and, when
 * given, exactly `message`, or a message matching it); returns the error.
 */
export function expectError(
  fn: () => unknown,
  cls: abstract new (...args: never[]) => TallyError,
  code: string,
  message?: string | RegExp,
): TallyError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').to.be.instanceOf(cls);
  const err = caught as TallyError;
  expect(err.code).to.equal(code);
  if (typeof message === 'string') expect(err.message).to.equal(message);
  else if (message !== undefined) expect(err.message).to.match(message);
  return err;
}

/** Wycheproof file layout (the fields these tests read). */
export interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  testGroups: G[];
}
export interface WycheproofCase {
  tcId: number;
  comment: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
}
