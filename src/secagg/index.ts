/**
 * `tally/secagg`: secure aggregation (secagg-v1), Bonawitz et al. CCS 2017
 * with the SecAgg+ neighbour graph of Bell et al. CCS 2020. The normative
 * description is protocols/secagg-v1/spec.md; every export is documented in
 * docs/api.md, and README.md has a complete example (examples/secure-sum.ts).
 *
 * Start with the drivers: {@link ServerDriver} and {@link ClientDriver} run
 * one session over a channel you supply. The server driver binds each client
 * message to the sender the transport authenticated, decodes and encodes
 * every message (a broadcast once), closes rounds when every expected client
 * answered or at the deadline, and reports everything to a
 * {@link SessionListener}; the client driver zeroes every secret a
 * transition releases. {@link LockstepNetwork} joins both in one process.
 *
 * The state machines beneath them stay exported for custom drivers:
 * - server: `createServer`, `receiveMessage(state, sender, msg)`,
 *   `closeRound(state)`. These update the state they are given in place
 *   (the running sum, the maps of received messages) and return the next
 *   state: a state passed to a transition is consumed and must not be reused.
 *   `sender` is the client id the transport authenticated; a message whose
 *   id differs drops its sender (`SECAGG_ERR_SENDER_MISMATCH`), since the
 *   `shares`, `masked-input` and `unmask` messages are unsigned even in
 *   malicious mode and a relabelled one would otherwise corrupt the sum.
 * - client: `startClient`, `handleServerMessage(state, msg)`. These return new
 *   states and hand back in `consumed` the secrets to wipe.
 *
 * @example
 * import { ServerDriver, ClientDriver, type SessionConfig } from 'tally/secagg';
 * import { defaultProvider, systemRng } from 'tally/crypto';
 * const server = new ServerDriver({ config, provider: defaultProvider, channel: { send: (to, bytes) => sockets.get(to)!.write(bytes) } });
 * const client = new ClientDriver({ config, id: 1, provider: defaultProvider, rng: systemRng, input, channel: { send: (bytes) => toServer.write(bytes) } });
 */
export * from './config.js';
export * from './messages.js';
export { encodeClientMessage, decodeClientMessage, encodeServerMessage, decodeServerMessage, WIRE_VERSION } from './codec.js';
export { startClient, handleServerMessage, setInput, abortClient, type StartClientOptions, type ClientState, type ClientStep } from './client/index.js';
export { createServer, receiveMessage, closeRound, abortServer, expectedClients, type CreateServerOptions, type ServerState, type ServerStep, type Rejection, type DropRecord } from './server/index.js';
export { validateSession, sessionGraph, checkInput } from './session.js';
export { completeGraph, hararyGraph, type Graph } from './graph.js';
export { findSecAggPlusParams, validateThreshold, type SecAggPlusParams, type SecAggPlusParamsInput } from './params.js';
export { packVector, unpackVector, packedLength, reduce, checkRange } from '../crypto/vector.js';
export { MaskAccumulator, expandMask, type MaskTerm } from '../crypto/mask.js';
export { pairwiseMaskKey, selfMaskKey, shareEncryptionKey, sealShares, openShares, SHARE_BYTES, SHARE_CIPHERTEXT_BYTES } from './keys.js';
export { ServerDriver, ClientDriver, type ServerChannel, type ClientChannel, type DeadlinePolicy, type SessionListener, type ServerOutcome, type ClientOutcome, type RoundRecord, type ServerDriverOptions, type ClientDriverOptions } from './driver.js';
export { LockstepNetwork, type LockstepOptions, type LockstepClient, type InFlight } from './lockstep.js';
export { roundOf } from './server/index.js';
export { clientRoundOf } from './client/index.js';
export type { Aggregator, AggregatorFactory } from '../crypto/aggregator.js';
export { maskedSum } from '../crypto/aggregator.js';
