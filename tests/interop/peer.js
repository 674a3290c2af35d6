// Node peer for parley's interop tests: Signal's own libsignal-client (0.24.0) behind a line protocol.
//
// Why a line protocol and not JSON: the C driver (interop_driver.c) is the one that decides every
// scenario and checks every result; this peer only executes libsignal calls. Tab-separated words with
// base64 for bytes need no parser on the C side beyond splitting, so a failure is always about Signal,
// never about our JSON handling.
//
// Request:  <op>\t<arg>\t<arg>...\n          Reply: ok\t<result>...\n  or  err\t<ErrorName>\t<message>\n
// Users are named; each has its own in-memory stores and the address (<name>, device 1).
'use strict';

const readline = require('readline');
const S = require('@signalapp/libsignal-client');

const b64 = (buf) => Buffer.from(buf).toString('base64');
const unb64 = (s) => Buffer.from(s, 'base64');
const addr = (name) => S.ProtocolAddress.new(name, 1);

class SessionStore extends S.SessionStore {
  constructor() { super(); this.m = new Map(); }
  async saveSession(a, r) { this.m.set(a.toString(), r.serialize()); }
  async getSession(a) {
    const s = this.m.get(a.toString());
    return s ? S.SessionRecord.deserialize(s) : null;
  }
  async getExistingSessions(list) {
    return list.map((a) => {
      const s = this.m.get(a.toString());
      if (!s) throw new Error(`no session for ${a}`);
      return S.SessionRecord.deserialize(s);
    });
  }
}

// Trust on first use, then only the same key (libsignal's reference in-memory behaviour).
class IdentityStore extends S.IdentityKeyStore {
  constructor(priv, regId) { super(); this.priv = priv; this.regId = regId; this.m = new Map(); }
  async getIdentityKey() { return this.priv; }
  async getLocalRegistrationId() { return this.regId; }
  async isTrustedIdentity(a, key) {
    const cur = this.m.get(a.toString());
    return cur ? cur.compare(key) === 0 : true;
  }
  async saveIdentity(a, key) {
    const cur = this.m.get(a.toString());
    this.m.set(a.toString(), key);
    return cur ? cur.compare(key) !== 0 : false;
  }
  async getIdentity(a) { return this.m.get(a.toString()) || null; }
}

class PreKeyStore extends S.PreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async savePreKey(id, r) { this.m.set(id, r.serialize()); }
  async getPreKey(id) {
    const r = this.m.get(id);
    if (!r) throw new Error(`prekey ${id} not found`);
    return S.PreKeyRecord.deserialize(r);
  }
  async removePreKey(id) { this.m.delete(id); }
}

class SignedPreKeyStore extends S.SignedPreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveSignedPreKey(id, r) { this.m.set(id, r.serialize()); }
  async getSignedPreKey(id) {
    const r = this.m.get(id);
    if (!r) throw new Error(`signed prekey ${id} not found`);
    return S.SignedPreKeyRecord.deserialize(r);
  }
}

class SenderKeyStore extends S.SenderKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveSenderKey(a, dist, r) { this.m.set(`${dist}::${a}`, r.serialize()); }
  async getSenderKey(a, dist) {
    const r = this.m.get(`${dist}::${a}`);
    return r ? S.SenderKeyRecord.deserialize(r) : null;
  }
}

const users = new Map();

function user(name) {
  const u = users.get(name);
  if (!u) throw new Error(`unknown user ${name}`);
  return u;
}

const optKey = (s) => (s === '-' ? null : S.PublicKey.deserialize(unb64(s)));
const optId = (s) => (s === '-' ? null : Number(s));

const ops = {
  // user <name> <registrationId> -> identity public key
  async user(name, regId) {
    const priv = S.PrivateKey.generate();
    users.set(name, {
      priv,
      ids: new IdentityStore(priv, Number(regId)),
      sessions: new SessionStore(),
      prekeys: new PreKeyStore(),
      spks: new SignedPreKeyStore(),
      senderKeys: new SenderKeyStore(),
    });
    return [b64(priv.getPublicKey().serialize())];
  },

  // bundle <name> <prekeyId|-> <signedPrekeyId> -> regId deviceId prekeyId prekey spkId spk sig identity
  async bundle(name, pkId, spkId) {
    const u = user(name);
    let pkPub = '-';
    if (pkId !== '-') {
      const p = S.PrivateKey.generate();
      await u.prekeys.savePreKey(Number(pkId), S.PreKeyRecord.new(Number(pkId), p.getPublicKey(), p));
      pkPub = b64(p.getPublicKey().serialize());
    }
    const sp = S.PrivateKey.generate();
    const sig = u.priv.sign(sp.getPublicKey().serialize());
    await u.spks.saveSignedPreKey(Number(spkId),
      S.SignedPreKeyRecord.new(Number(spkId), Date.now(), sp.getPublicKey(), sp, sig));
    return [String(u.ids.regId), '1', pkId, pkPub, spkId, b64(sp.getPublicKey().serialize()), b64(sig),
      b64(u.priv.getPublicKey().serialize())];
  },

  // process_bundle <name> <peer> <regId> <deviceId> <prekeyId|-> <prekey|-> <spkId> <spk> <sig> <identity>
  async process_bundle(name, peer, regId, devId, pkId, pk, spkId, spk, sig, ik) {
    const u = user(name);
    const bundle = S.PreKeyBundle.new(Number(regId), Number(devId), optId(pkId), optKey(pk),
      Number(spkId), S.PublicKey.deserialize(unb64(spk)), unb64(sig), S.PublicKey.deserialize(unb64(ik)));
    await S.processPreKeyBundle(bundle, addr(peer), u.sessions, u.ids);
    return [];
  },

  // encrypt <name> <peer> <plaintext> -> type ciphertext
  async encrypt(name, peer, pt) {
    const u = user(name);
    const c = await S.signalEncrypt(unb64(pt), addr(peer), u.sessions, u.ids);
    return [String(c.type()), b64(c.serialize())];
  },

  // decrypt <name> <peer> <type> <ciphertext> -> plaintext
  async decrypt(name, peer, type, ct) {
    const u = user(name);
    const bytes = unb64(ct);
    let pt;
    if (Number(type) === S.CiphertextMessageType.PreKey) {
      pt = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(bytes), addr(peer),
        u.sessions, u.ids, u.prekeys, u.spks);
    } else {
      pt = await S.signalDecrypt(S.SignalMessage.deserialize(bytes), addr(peer), u.sessions, u.ids);
    }
    return [b64(pt)];
  },

  // fingerprint <iterations> <version> <localId> <localKey> <remoteId> <remoteKey> -> display scannable
  async fingerprint(iter, ver, lid, lkey, rid, rkey) {
    const f = S.Fingerprint.new(Number(iter), Number(ver), unb64(lid), S.PublicKey.deserialize(unb64(lkey)),
      unb64(rid), S.PublicKey.deserialize(unb64(rkey)));
    return [f.displayableFingerprint().toString(), b64(f.scannableFingerprint().toBuffer())];
  },

  // fp_compare <iterations> <version> <localId> <localKey> <remoteId> <remoteKey> <theirScannable> -> 1|0
  async fp_compare(iter, ver, lid, lkey, rid, rkey, theirs) {
    const f = S.Fingerprint.new(Number(iter), Number(ver), unb64(lid), S.PublicKey.deserialize(unb64(lkey)),
      unb64(rid), S.PublicKey.deserialize(unb64(rkey)));
    const other = S.ScannableFingerprint._fromBuffer(unb64(theirs));
    return [f.scannableFingerprint().compare(other) ? '1' : '0'];
  },

  // skdm_create <name> <distributionUuid> -> distribution message
  async skdm_create(name, dist) {
    const u = user(name);
    const m = await S.SenderKeyDistributionMessage.create(addr(name), dist, u.senderKeys);
    return [b64(m.serialize())];
  },

  // skdm_process <name> <sender> <distribution message>
  async skdm_process(name, sender, skdm) {
    const u = user(name);
    await S.processSenderKeyDistributionMessage(addr(sender),
      S.SenderKeyDistributionMessage.deserialize(unb64(skdm)), u.senderKeys);
    return [];
  },

  // group_encrypt <name> <distributionUuid> <plaintext> -> sender key message
  async group_encrypt(name, dist, pt) {
    const u = user(name);
    const c = await S.groupEncrypt(addr(name), dist, u.senderKeys, unb64(pt));
    return [b64(c.serialize())];
  },

  // group_decrypt <name> <sender> <sender key message> -> plaintext
  async group_decrypt(name, sender, ct) {
    const u = user(name);
    return [b64(await S.groupDecrypt(addr(sender), u.senderKeys, unb64(ct)))];
  },
};

// One request at a time, in order: libsignal's stores are async and the driver relies on ordering.
async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line === '' || line === 'quit') break;
    const [op, ...args] = line.split('\t');
    let reply;
    try {
      if (!Object.prototype.hasOwnProperty.call(ops, op)) throw new Error(`unknown op ${op}`);
      const out = await ops[op](...args);
      reply = ['ok', ...out].join('\t');
    } catch (e) {
      const msg = String(e && e.message ? e.message : e).replace(/[\t\n]/g, ' ');
      reply = `err\t${(e && e.name) || 'Error'}\t${msg}`;
    }
    process.stdout.write(reply + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`peer: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
