import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

/**
 * `ws` masks and unmasks client frames with the optional native `bufferutil`
 * when it is installed (an optional dependency of tally, loaded from its
 * bundled prebuilt binary, never compiled) and with its own JavaScript
 * otherwise. Both paths must carry a coordinator's frames bit for bit: each
 * run below echoes frames of several sizes (below and above ws's 48-byte
 * threshold for the native path) through a loopback server in a fresh process.
 */
const ECHO = `
import { WebSocketServer, WebSocket } from 'ws';
import { createHash, randomBytes } from 'node:crypto';
const sizes = [1, 47, 48, 1000, 65536, 1 << 20];
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
wss.on('connection', (s) => s.on('message', (d) => s.send(d)));
await new Promise((r) => wss.once('listening', r));
const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port, { perMessageDeflate: false });
await new Promise((r) => ws.once('open', r));
const ok = [];
for (const n of sizes) {
  const sent = randomBytes(n);
  const back = await new Promise((r) => { ws.once('message', r); ws.send(sent); });
  ok.push(createHash('sha256').update(back).digest('hex') === createHash('sha256').update(sent).digest('hex') && back.length === n);
}
ws.close(); wss.close();
console.log(JSON.stringify(ok));
`;

function echo(env: NodeJS.ProcessEnv): boolean[] {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', ECHO], { env: { ...process.env, ...env }, encoding: 'utf8', cwd: process.cwd() });
  return JSON.parse(out.trim().split('\n').pop()!) as boolean[];
}

describe('transport: WebSocket masking with and without the native bufferutil', function () {
  this.timeout(60_000);

  it('carries frames of every size intact with bufferutil when it is installed', () => {
    expect(echo({ WS_NO_BUFFER_UTIL: '' })).to.deep.equal([true, true, true, true, true, true]);
  });

  it('carries frames of every size intact with ws\'s JavaScript fallback (WS_NO_BUFFER_UTIL)', () => {
    expect(echo({ WS_NO_BUFFER_UTIL: '1' })).to.deep.equal([true, true, true, true, true, true]);
  });

  it('finds the optional native module where the platform has a prebuilt binary', function () {
    const require = createRequire(import.meta.url);
    let mod: { mask?: unknown; unmask?: unknown };
    try {
      mod = require('bufferutil') as typeof mod;
    } catch {
      this.skip(); // an optional dependency: a platform without its prebuilt binary runs the fallback above
      return;
    }
    expect(mod.mask).to.be.a('function');
    expect(mod.unmask).to.be.a('function');
  });
});
