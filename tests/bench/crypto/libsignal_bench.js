// libsignal-client 0.24.0 (Signal's Rust library through its Node binding) on the same operations as
// bench_parley.c and bench_olm.c. Run by crypto_bench; prints "<op>\t<microseconds per op>" lines.
// The package comes from tests/interop/node_modules (installed by tests/interop/setup.sh).
//
// usage: node libsignal_bench.js <setups> <chain> <pingpong> <group> <reps>
'use strict';

const path = require('path');
const S = require(path.join(__dirname, '..', '..', 'interop', 'node_modules', '@signalapp', 'libsignal-client'));

// Minimal in-memory stores (as libsignal's own tests use): records are kept serialized, as an app's
// database would keep them.
class Sessions extends S.SessionStore {
  constructor() { super(); this.m = new Map(); }
  async saveSession(a, r) { this.m.set(a.toString(), r.serialize()); }
  async getSession(a) { const s = this.m.get(a.toString()); return s ? S.SessionRecord.deserialize(s) : null; }
  async getExistingSessions(l) { return l.map((a) => S.SessionRecord.deserialize(this.m.get(a.toString()))); }
}
class Identities extends S.IdentityKeyStore {
  constructor(priv, reg) { super(); this.priv = priv; this.reg = reg; this.m = new Map(); }
  async getIdentityKey() { return this.priv; }
  async getLocalRegistrationId() { return this.reg; }
  async isTrustedIdentity(a, k) { const c = this.m.get(a.toString()); return c ? c.compare(k) === 0 : true; }
  async saveIdentity(a, k) { const c = this.m.get(a.toString()); this.m.set(a.toString(), k); return c ? c.compare(k) !== 0 : false; }
  async getIdentity(a) { return this.m.get(a.toString()) || null; }
}
class PreKeys extends S.PreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async savePreKey(id, r) { this.m.set(id, r.serialize()); }
  async getPreKey(id) { return S.PreKeyRecord.deserialize(this.m.get(id)); }
  async removePreKey(id) { this.m.delete(id); }
}
class SignedPreKeys extends S.SignedPreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveSignedPreKey(id, r) { this.m.set(id, r.serialize()); }
  async getSignedPreKey(id) { return S.SignedPreKeyRecord.deserialize(this.m.get(id)); }
}
class SenderKeys extends S.SenderKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveSenderKey(a, d, r) { this.m.set(`${d}:${a}`, r.serialize()); }
  async getSenderKey(a, d) { const r = this.m.get(`${d}:${a}`); return r ? S.SenderKeyRecord.deserialize(r) : null; }
}

function party(reg) {
  const priv = S.PrivateKey.generate();
  return { priv, ids: new Identities(priv, reg), sessions: new Sessions(), pre: new PreKeys(), spk: new SignedPreKeys(),
    sk: new SenderKeys() };
}

const now = () => Number(process.hrtime.bigint()) / 1000; // microseconds
const best = {};
const keep = (op, v) => { if (best[op] === undefined || v < best[op]) best[op] = v; };
const PT = Buffer.alloc(256, 0x5a);

async function decryptAny(p, from, c) {
  if (c.type() === S.CiphertextMessageType.PreKey) {
    return S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(c.serialize()), from, p.sessions, p.ids, p.pre, p.spk);
  }
  return S.signalDecrypt(S.SignalMessage.deserialize(c.serialize()), from, p.sessions, p.ids);
}

async function setup(n) {
  const a = party(1), b = party(2);
  const spkPriv = S.PrivateKey.generate();
  const spkSig = b.priv.sign(spkPriv.getPublicKey().serialize());
  await b.spk.saveSignedPreKey(1, S.SignedPreKeyRecord.new(1, 0, spkPriv.getPublicKey(), spkPriv, spkSig));
  const bundles = [];
  for (let i = 0; i < n; i++) {
    const k = S.PrivateKey.generate();
    await b.pre.savePreKey(i + 1, S.PreKeyRecord.new(i + 1, k.getPublicKey(), k));
    bundles.push(S.PreKeyBundle.new(2, 1, i + 1, k.getPublicKey(), 1, spkPriv.getPublicKey(), spkSig, b.priv.getPublicKey()));
  }
  const msgs = [];
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const to = S.ProtocolAddress.new(`bob${i}`, 1);
    await S.processPreKeyBundle(bundles[i], to, a.sessions, a.ids);
    msgs.push(await S.signalEncrypt(PT, to, a.sessions, a.ids));
  }
  const t1 = now();
  for (let i = 0; i < n; i++) {
    await decryptAny(b, S.ProtocolAddress.new(`bob${i}`, 2), msgs[i]);
  }
  const t2 = now();
  keep('setup_init', (t1 - t0) / n);
  keep('setup_resp', (t2 - t1) / n);
}

async function messages(chain, pingpong) {
  const a = party(1), b = party(2);
  const A = S.ProtocolAddress.new('alice', 1), B = S.ProtocolAddress.new('bob', 1);
  const spkPriv = S.PrivateKey.generate(), k = S.PrivateKey.generate();
  const spkSig = b.priv.sign(spkPriv.getPublicKey().serialize());
  await b.spk.saveSignedPreKey(1, S.SignedPreKeyRecord.new(1, 0, spkPriv.getPublicKey(), spkPriv, spkSig));
  await b.pre.savePreKey(1, S.PreKeyRecord.new(1, k.getPublicKey(), k));
  await S.processPreKeyBundle(S.PreKeyBundle.new(2, 1, 1, k.getPublicKey(), 1, spkPriv.getPublicKey(), spkSig,
    b.priv.getPublicKey()), B, a.sessions, a.ids);
  await decryptAny(b, A, await S.signalEncrypt(PT, B, a.sessions, a.ids));
  await decryptAny(a, B, await S.signalEncrypt(PT, A, b.sessions, b.ids));
  const msgs = [];
  const t0 = now();
  for (let i = 0; i < chain; i++) msgs.push(await S.signalEncrypt(PT, B, a.sessions, a.ids));
  const t1 = now();
  for (let i = 0; i < chain; i++) await decryptAny(b, A, msgs[i]);
  const t2 = now();
  for (let i = 0; i < pingpong; i++) {
    const [from, to, toAddr, fromAddr] = i % 2 ? [b, a, A, B] : [a, b, B, A];
    await decryptAny(to, fromAddr, await S.signalEncrypt(PT, toAddr, from.sessions, from.ids));
  }
  const t3 = now();
  keep('encrypt', (t1 - t0) / chain);
  keep('decrypt', (t2 - t1) / chain);
  keep('pingpong', (t3 - t2) / pingpong);
}

async function group(n) {
  const a = party(1), b = party(2);
  const A = S.ProtocolAddress.new('alice', 1);
  const dist = '42000000-0000-4000-8000-000000000000';
  const skdm = await S.SenderKeyDistributionMessage.create(A, dist, a.sk);
  await S.processSenderKeyDistributionMessage(A, S.SenderKeyDistributionMessage.deserialize(skdm.serialize()), b.sk);
  const msgs = [];
  const t0 = now();
  for (let i = 0; i < n; i++) msgs.push((await S.groupEncrypt(A, dist, a.sk, PT)).serialize());
  const t1 = now();
  for (let i = 0; i < n; i++) await S.groupDecrypt(A, b.sk, msgs[i]);
  const t2 = now();
  keep('group_enc', (t1 - t0) / n);
  keep('group_dec', (t2 - t1) / n);
}

async function main() {
  const [setups, chain, pingpong, groupN, reps] = process.argv.slice(2).map(Number);
  for (let r = 0; r < (reps || 1); r++) {
    await setup(setups || 100);
    await messages(chain || 1000, pingpong || 500);
    await group(groupN || 1000);
  }
  for (const [op, v] of Object.entries(best)) process.stdout.write(`${op}\t${v.toFixed(3)}\n`);
}

main().catch((e) => { process.stderr.write(`libsignal_bench: ${e && e.stack ? e.stack : e}\n`); process.exit(1); });
