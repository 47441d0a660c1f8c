/**
 * The Bonawitz invariants as explicit guards (STYLE §5.3). Each throws a
 * SecAggError with a stable code listed in protocols/secagg-v1/errors.md;
 * the state machines turn it into an aborted state (client) or a dropped
 * peer / aborted session (server).
 */
import { SecAggError } from '../errors.js';
import { equalBytes } from '../crypto/_validate.js';

/** |U| ≥ t: below the threshold nothing can be reconstructed and privacy arguments fail. */
export function requireThreshold(count: number, t: number, what: string, round: number): void {
  if (count < t) throw new SecAggError('SECAGG_ERR_BELOW_THRESHOLD', `${what}: ${count} clients remain, fewer than the threshold t=${t}`, round);
}

/** Every message carries the session id (or, in R0/R1, the config hash) of this session. */
export function requireSession(got: Uint8Array, expected: Uint8Array, round: number, peer?: number): void {
  if (!(got instanceof Uint8Array) || !equalBytes(got, expected)) {
    throw new SecAggError('SECAGG_ERR_SESSION_MISMATCH', `message${peer === undefined ? '' : ` from client ${peer}`} is bound to another session`, round, peer);
  }
}

/**
 * An id list must be strictly increasing (so no duplicates and one canonical
 * encoding) and every id must be known.
 */
export function checkIdList(ids: readonly number[], known: (id: number) => boolean, what: string, round: number): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || !known(id)) throw new SecAggError('SECAGG_ERR_UNKNOWN_ID', `${what} names unknown client ${String(id)}`, round, Number.isInteger(id) ? id : undefined);
    if (i > 0 && id <= ids[i - 1]!) {
      throw new SecAggError(id === ids[i - 1] ? 'SECAGG_ERR_DUPLICATE_ID' : 'SECAGG_ERR_BAD_MESSAGE',
        id === ids[i - 1] ? `${what} lists client ${id} twice` : `${what} is not in increasing id order`, round, id);
    }
  }
}

/** U_{i+1} ⊆ U_i: a later round's set may only shrink. */
export function requireSubset(sub: readonly number[], sup: ReadonlySet<number>, what: string, round: number): void {
  for (const id of sub) {
    if (!sup.has(id)) throw new SecAggError('SECAGG_ERR_NOT_SUBSET', `${what} contains client ${id}, which was not in the previous round's set`, round, id);
  }
}

/**
 * What the server checks on every client message before reading its content:
 * the sender is in the set this round draws from (`expected`, so that
 * U_{i+1} ⊆ U_i), it has not been heard this round already, and the message
 * is bound to this session (`got` against `sid`).
 * @param what the message, as in "client 7 sent <what> twice"
 * @param set the name of `expected`, as in "… but is not in <set>"
 */
export function requireFreshSender(u: number, expected: { has(id: number): boolean }, heard: { has(id: number): boolean },
  got: Uint8Array, sid: Uint8Array, what: string, set: string, round: number): void {
  if (!expected.has(u)) throw new SecAggError('SECAGG_ERR_NOT_SUBSET', `client ${u} sent ${what} but is not in ${set}`, round, u);
  if (heard.has(u)) throw new SecAggError('SECAGG_ERR_DUPLICATE_ID', `client ${u} sent ${what} twice`, round, u);
  requireSession(got, sid, round, u);
}
