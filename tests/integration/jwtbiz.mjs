// tests/integration/jwtbiz.mjs — a business that signs JWT assertions for its customers (t34's jwt
// components): its JWKS served over HTTPS (the test CA's server certificate), its tokens signed RS256.
// Only node:crypto and node:https.
//
//   node jwtbiz.mjs serve DIR   makes DIR/biz.key (RSA 2048), serves {"keys":[...kid "biz1"]} at /jwks on
//                               127.0.0.1 with DIR/ca/server.pem + server.key, writes DIR/bizport
//   node jwtbiz.mjs sign DIR CLAIMS_JSON [tamper]
//                               prints the compact JWS of CLAIMS_JSON; with "tamper" the payload is
//                               changed after signing (a forged claim under a valid signature)
import { generateKeyPairSync, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createServer } from 'node:https';

const [mode, dir, claims, tamper] = process.argv.slice(2);
const b64u = (b) => Buffer.from(b).toString('base64url');

if (mode === 'serve') {
	const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
	writeFileSync(`${dir}/biz.key`, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
	const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
	const body = JSON.stringify({ keys: [{ ...jwk, kid: 'biz1', alg: 'RS256', use: 'sig' }] });
	const srv = createServer({ cert: readFileSync(`${dir}/ca/server.pem`), key: readFileSync(`${dir}/ca/server.key`) },
		(req, res) => {
			res.writeHead(req.url === '/jwks' ? 200 : 404, { 'content-type': 'application/json' });
			res.end(req.url === '/jwks' ? body : '{}');
		});
	srv.listen(0, '127.0.0.1', () => {
		writeFileSync(`${dir}/bizport.tmp`, String(srv.address().port));
		renameSync(`${dir}/bizport.tmp`, `${dir}/bizport`);
	});
	process.on('SIGTERM', () => srv.close(() => process.exit(0)));
} else if (mode === 'sign') {
	const key = createPrivateKey(readFileSync(`${dir}/biz.key`));
	const head = b64u(JSON.stringify({ alg: 'RS256', kid: 'biz1', typ: 'JWT' }));
	const payload = b64u(claims);
	const sig = b64u(sign('sha256', Buffer.from(`${head}.${payload}`), key));
	const forged = tamper ? b64u(claims.replace('"sub":"', '"sub":"x')) : payload;
	process.stdout.write(`${head}.${forged}.${sig}\n`);
} else {
	process.stderr.write('usage: jwtbiz.mjs serve DIR | sign DIR CLAIMS_JSON [tamper]\n');
	process.exit(2);
}
