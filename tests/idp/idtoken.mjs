// tests/idp/idtoken.mjs — decodes an ID token (a compact JWS) and checks its signature against a JWKS,
// independently of oidc-provider: only node:crypto. Used by selftest.sh to show the provider signs with
// a key it really publishes under that kid (and, after /__test/rotate, with the new one).
//
//   node tests/idp/idtoken.mjs JWKS.json TOKEN
//
// Prints {"header":{...},"payload":{...}} on stdout and exits 0 when the signature verifies with the
// JWKS key named by the header's kid (RS256 or ES256 only); exits 1 with a message otherwise.
import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import process from 'node:process';

function fail(msg) {
	process.stderr.write(`idtoken.mjs: ${msg}\n`);
	process.exit(1);
}

if (process.argv.length !== 4) fail('usage: node idtoken.mjs JWKS.json TOKEN');
const jwks = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const parts = process.argv[3].split('.');
if (parts.length !== 3) fail('not a compact JWS');
const [header, payload] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')));
const jwk = jwks.keys.find((k) => k.kid === header.kid);
if (!jwk) fail(`no key with kid ${header.kid} in the JWKS`);
// ES256 signatures are r||s (IEEE P1363), not DER: say so to node:crypto
const algs = { RS256: {}, ES256: { dsaEncoding: 'ieee-p1363' } };
if (!algs[header.alg] || jwk.alg !== header.alg) fail(`alg ${header.alg} unexpected for key ${jwk.kid} (${jwk.alg})`);
const ok = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`),
	{ key: createPublicKey({ key: jwk, format: 'jwk' }), ...algs[header.alg] }, Buffer.from(parts[2], 'base64url'));
if (!ok) fail('signature does not verify');
process.stdout.write(`${JSON.stringify({ header, payload })}\n`);
