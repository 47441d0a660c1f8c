/**
 * Client R0 AdvertiseKeys (Bonawitz et al. 2017, Fig. 4 round 0): generate
 * two fresh X25519 key pairs, (c_u^SK, c_u^PK) to encrypt shares and
 * (s_u^SK, s_u^PK) for pairwise masks, and advertise the public halves
 * (signed with the roster identity key in malicious mode).
 */
import { ValidationError } from '../../errors.js';
import type { CryptoProvider } from '../../crypto/types.js';
import type { Rng } from '../../crypto/rng.js';
import type { MaskedInputEncoder } from '../../crypto/aggregator.js';
import { equalBytes } from '../../crypto/_validate.js';
import { advertiseSignedBytes, configHash, type SessionConfig } from '../config.js';
import { validateSession, sessionGraph } from '../session.js';
import { checkInput } from '../session.js';
import type { AdvertisedState, ClientStep } from './state.js';

export interface StartClientOptions {
  readonly config: SessionConfig;
  /** This client's id; must be in `config.clientIds`. */
  readonly id: number;
  readonly provider: CryptoProvider;
  readonly rng: Rng;
  /** Malicious mode: the Ed25519 seed whose public key is this client's roster entry. */
  readonly identitySeed?: Uint8Array;
  /** The input vector (m integers < 2^b); may also be given later with `setInput`, before R2. */
  readonly input?: Uint32Array;
  /**
   * The masked-input encoder of a session with an aggregator commitment
   * (he-sum-v1); required exactly when `config.aggregator` is present.
   */
  readonly maskedInput?: MaskedInputEncoder;
}

/**
 * Starts a client's session: validates the configuration, draws fresh keys
 * and returns the R0 advertisement.
 * @throws ValidationError on a bad configuration, id, identity key or input.
 */
export function startClient(o: StartClientOptions): ClientStep {
  const { config, id, provider, rng } = o;
  validateSession(config);
  const index = config.clientIds.indexOf(id);
  if (index < 0) throw new ValidationError('SECAGG_ERR_UNKNOWN_ID', `client id ${id} is not in the session roster`);
  if (o.input !== undefined) checkInput(o.input, config);
  if ((config.aggregator === undefined) !== (o.maskedInput === undefined)) {
    throw new ValidationError('SECAGG_ERR_BAD_CONFIG', config.aggregator === undefined
      ? 'a masked-input encoder is for sessions that commit to another aggregator'
      : `a session committed to the ${config.aggregator.mode} aggregator needs its masked-input encoder`);
  }
  const binds = o.maskedInput?.binds;
  const committed = config.aggregator;
  if (binds !== undefined && committed !== undefined
    && (binds.mode !== committed.mode || !equalBytes(binds.params, committed.params) || !equalBytes(binds.keyId, committed.keyId))) {
    throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `the session config commits to ${committed.mode} with another parameter set or key than this client's ${binds.mode} encoder: refused`);
  }
  let identitySeed: Uint8Array | undefined;
  const cfgHash = configHash(provider, config);
  if (config.threat === 'malicious') {
    if (o.identitySeed === undefined) throw new ValidationError('SECAGG_ERR_BAD_CONFIG', 'malicious mode needs the client\'s Ed25519 identity seed');
    const pk = provider.ed25519PublicKey(o.identitySeed);
    if (!pk.every((b, i) => b === config.identityKeys![index]![i])) {
      throw new ValidationError('SECAGG_ERR_BAD_CONFIG', `identity seed does not match the roster key of client ${id}`);
    }
    identitySeed = o.identitySeed;
  }
  const cSk = rng.bytes(32);
  const sSk = rng.bytes(32);
  const cPk = provider.x25519PublicKey(cSk);
  const sPk = provider.x25519PublicKey(sSk);
  const signature = identitySeed === undefined ? undefined : provider.ed25519Sign(identitySeed, advertiseSignedBytes(cfgHash, id, cPk, sPk));
  const state: AdvertisedState = {
    kind: 'advertised',
    ctx: {
      config, configHash: cfgHash, id, provider, rng, identitySeed, neighbors: sessionGraph(config, provider).neighbors(id),
      ...(o.maskedInput ? { maskedInput: o.maskedInput } : {}),
    },
    cSk, sSk, cPk, sPk, input: o.input,
  };
  return {
    state,
    out: [{ type: 'advertise', configHash: cfgHash, id, cPk, sPk, ...(signature === undefined ? {} : { signature }) }],
    consumed: [],
  };
}
