/**
 * The clients of a simulated session, built the same way on the main thread
 * and in a worker (`_clientWorker.ts`): client `id` draws its keys from the
 * stream labelled `tally/simulate/<seed>/client/<id>` and its input, when
 * none is given, from `tally/simulate/<seed>/input/<id>`, at the moment its
 * masked-input round starts. Where a client runs therefore never changes
 * what it sends.
 */
import { DeterministicRng } from '../crypto/rng.js';
import type { SessionConfig } from '../secagg/config.js';
import type { LockstepClient } from '../secagg/lockstep.js';
import { randomInput } from '../secagg/session.js';

/** The seeded stream of one purpose in one simulated session. */
export function simulationRng(seed: string, label: string): DeterministicRng {
  return new DeterministicRng(`tally/simulate/${seed}/${label}`);
}

/** The input client `id` contributes when none is given: `randomInput` from its own stream. */
export function drawnInput(seed: string, id: number, dim: number, bits: number): Uint32Array {
  return randomInput(simulationRng(seed, `input/${id}`), dim, bits);
}

/** What a thread needs to build some clients of a session. */
export interface ClientSetup {
  readonly seed: string;
  readonly config: SessionConfig;
  /** The given inputs by client id; drawn from the seed when absent. */
  readonly inputs?: ReadonlyMap<number, Uint32Array>;
  /** Malicious mode: each client's Ed25519 identity seed by id. */
  readonly identitySeeds?: ReadonlyMap<number, Uint8Array>;
}

/** The lockstep description of client `id`. */
export function simulatedClient(s: ClientSetup, id: number): LockstepClient {
  const given = s.inputs?.get(id);
  const seedOf = s.identitySeeds?.get(id);
  return {
    id, rng: simulationRng(s.seed, `client/${id}`),
    input: given ?? (() => drawnInput(s.seed, id, s.config.dim, s.config.bits)),
    ...(seedOf ? { identitySeed: seedOf } : {}),
  };
}
