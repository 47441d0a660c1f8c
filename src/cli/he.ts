/**
 * `tally he deal | accept`: the key ceremony of a homomorphic consortium
 * (he-sum-v1, src/federation/he-keys.ts), run by the sites themselves.
 * Exit status: 0 done, 1 the offer was refused (a bad signature, another
 * consortium, a wrap that does not open), 2 bad usage or configuration.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { checkOutPath, isInt, numberOption, parseOptions, usageError, UsageError } from './_args.js';

const HELP = `usage: tally he deal   --config FILE --key KEYFILE [--out OFFER] [--he-key FILE] [--epoch E]
       tally he accept --config FILE --key KEYFILE --offer OFFER [--he-key FILE] [--epoch E]

The key ceremony of a homomorphic consortium (aggregation.aggregator "he" or
"he+masks"): the sites share one BGV secret key that the coordinator never
holds.

deal    run by one site (the dealer): makes the key, keeps it in its HE key
        file, and writes an offer that wraps it to every other roster site's
        x25519 key, signed with the dealer's identity key. Hand the offer to
        the other sites and to the coordinator (tally serve --he-offer) by
        any channel: it holds only ciphertexts to the sites' keys.
accept  run by every other site: checks the offer (the dealer's signature,
        this consortium and epoch, its own wrap), opens its key and keeps it.

  --config FILE    the consortium configuration (consortium.json)
  --key KEYFILE    this site's identity (its roster key)
  --offer OFFER    accept: the dealer's offer
  --out OFFER      deal: where the offer is written (default: he-offer-E.bin
                   beside FILE)
  --he-key FILE    the site's HE key file to create, mode 0600 (default:
                   KEYFILE.he.json; tally join reads it from there)
  --epoch E        the key's epoch, 1 by default: a new ceremony (a new key)
                   takes the next epoch, and each offer is bound to one
  -h, --help       show this help
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help') { console.log(HELP); return sub === undefined ? 2 : 0; }
  if (sub !== 'deal' && sub !== 'accept') return usageError('he', `unknown subcommand '${sub}': deal or accept`);
  const v = parseOptions(`he ${sub}`, rest, ['config', 'key', 'offer', 'out', 'he-key', 'epoch']);
  if (typeof v === 'number') return v;
  if (v.help === true) { console.log(HELP); return 0; }
  const s = v as Partial<Record<'config' | 'key' | 'offer' | 'out' | 'he-key' | 'epoch', string>>;
  let epoch: number;
  try {
    if (s.config === undefined) throw new UsageError('--config FILE is required');
    if (s.key === undefined) throw new UsageError('--key KEYFILE is required');
    if (sub === 'accept' && s.offer === undefined) throw new UsageError('--offer OFFER is required');
    if (sub === 'accept' && s.out !== undefined) throw new UsageError('--out applies to deal (the offer it writes)');
    if (sub === 'deal' && s.offer !== undefined) throw new UsageError('--offer applies to accept');
    epoch = numberOption(s.epoch, 'epoch', 1, isInt(1, 0xffffffff), 'an integer in [1, 2^32 − 1]');
    if (s.out !== undefined) checkOutPath(s.out);
    if (s['he-key'] !== undefined) checkOutPath(s['he-key'], '--he-key');
  } catch (err) {
    if (err instanceof UsageError) return usageError(`he ${sub}`, err.message);
    throw err;
  }
  const [{ loadConsortium }, { readSiteKey }, hk] = await Promise.all([
    import('../federation/consortium.js'), import('../federation/keys.js'), import('../federation/he-keys.js'),
  ]);
  const c = loadConsortium(resolve(s.config));
  const key = readSiteKey(s.key);
  const me = c.sites.find((x) => Buffer.from(x.publicKey).equals(Buffer.from(key.publicKey)));
  if (me === undefined) return usageError(`he ${sub}`, `${s.key} is not the key of a roster site`);
  const heKeyFile = resolve(s['he-key'] ?? `${s.key}.he.json`);
  if (existsSync(heKeyFile)) return usageError(`he ${sub}`, `${heKeyFile} exists: a key file is never overwritten (a new key takes a new --epoch and a new file)`);
  if (sub === 'deal') {
    const out = resolve(s.out ?? join(dirname(resolve(s.config)), `he-offer-${epoch}.bin`));
    if (existsSync(out)) return usageError('he deal', `${out} exists: an offer is written once`);
    const { key: heKey, offer } = await hk.dealConsortiumKey(c, me, key.seed, epoch);
    hk.writeHeKey(heKeyFile, c, heKey, epoch);
    writeFileSync(out, offer, { flag: 'wx' });
    console.log(`tally he deal: ${me.id} made the consortium's key ${Buffer.from(heKey.keyId).toString('hex')} (epoch ${epoch}), kept in ${heKeyFile}; offer for ${c.sites.length - 1} sites in ${out}`);
    return 0;
  }
  let offer: Uint8Array;
  try {
    offer = new Uint8Array(readFileSync(s.offer!));
  } catch (err) {
    return usageError('he accept', `cannot read the offer ${s.offer}: ${(err as Error).message}`);
  }
  const { TallyError } = await import('../errors.js');
  try {
    const heKey = await hk.acceptConsortiumKey(c, me, key.seed, offer, epoch);
    hk.writeHeKey(heKeyFile, c, heKey, epoch);
    console.log(`tally he accept: ${me.id} holds the consortium's key ${Buffer.from(heKey.keyId).toString('hex')} (epoch ${epoch}) in ${heKeyFile}`);
    return 0;
  } catch (err) {
    if (err instanceof TallyError && err.code.startsWith('HE_ERR_') && err.code !== 'HE_ERR_UNAVAILABLE') {
      console.error(`tally he accept: ${err.code}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
