// tests/bench/auth-e2e/signer.mjs — the customers' browsers (and a business's app) of the end-to-end
// authentication benchmark (auth_e2e.c). One long-running node process serves many sign-ins at once,
// so node's start-up is not in the figures; the sign-in itself is tests/idp/signin.mjs, the same code
// login.mjs runs for the tests.
//
//   node signer.mjs --ca CA.pem --issuer ISS --client ID --secret S --redirect-uri URI --login L --password P
//                   [--biz-key DIR/biz.key]
//
// Commands on stdin, one a line; each answer is one line on stdout "TAG OK [...]" or "TAG ERR message",
// in completion order (commands run concurrently):
//   TAG parley URL     a customer opens parley's start link URL: the 302 to the provider, its login
//                      form, the redirect to parley's callback, and the callback itself, which must
//                      answer 2xx (parley has exchanged the code and verified the ID token by then)
//   TAG peer           the same sign-in at the same provider WITHOUT parley, as an OpenID client does
//                      it itself: authorization request with PKCE S256, state and nonce; login; the
//                      code at the redirect_uri (not requested, as with parley the provider's part ends
//                      there); the token exchange (client_secret_basic); the ID token's signature
//                      checked with the provider's JWKS (fetched once, as parley caches it) and its
//                      iss, aud, nonce and exp
//   TAG mint FILE AUD ISS N PREFIX
//                      writes N business assertions (RS256 with --biz-key, kid biz1, as
//                      tests/integration/jwtbiz.mjs serves its JWKS) to FILE, one a line, jti PREFIX-i
// Every sign-in is a new browser: its own cookie jar and its own HTTPS agent (keep-alive within the
// sign-in, as a browser keeps its connection to the provider, closed at the end).
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import process from 'node:process';
import readline from 'node:readline';
import { Jar, request, signIn } from '../../idp/signin.mjs';

const b64u = (b) => Buffer.from(b).toString('base64url');

function parseArgs(argv) {
	const o = {};
	for (let i = 0; i + 1 < argv.length; i += 2) {
		if (!argv[i].startsWith('--')) throw new Error(`bad argument ${argv[i]}`);
		o[argv[i].slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = argv[i + 1];
	}
	for (const k of ['ca', 'issuer', 'client', 'secret', 'redirectUri', 'login', 'password']) {
		if (!o[k]) throw new Error(`missing --${k}`);
	}
	return o;
}

const o = parseArgs(process.argv.slice(2));
const ca = readFileSync(o.ca);
const newAgent = () => new https.Agent({ ca, keepAlive: true });

async function getJson(url, agent, headers, body) {
	const res = await request(body === undefined ? 'GET' : 'POST', new URL(url), { agent, body, headers: { accept: 'application/json', ...headers } });
	if (res.status !== 200) throw new Error(`${url}: ${res.status} ${res.body.slice(0, 200)}`);
	return JSON.parse(res.body);
}

// discovery and the JWKS, once (the peer's counterpart of parley's document cache)
let disco;
let jwks;
async function discover() {
	const agent = newAgent();
	disco = await getJson(`${o.issuer}/.well-known/openid-configuration`, agent);
	jwks = await getJson(disco.jwks_uri, agent);
	agent.destroy();
}

const ALGS = { RS256: {}, ES256: { dsaEncoding: 'ieee-p1363' } };
function checkIdToken(token, nonce) {
	const parts = token.split('.');
	if (parts.length !== 3) throw new Error('ID token is not a compact JWS');
	const [header, claims] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')));
	const jwk = jwks.keys.find((k) => k.kid === header.kid);
	if (!jwk || !ALGS[header.alg] || jwk.alg !== header.alg) throw new Error(`no ${header.alg} key ${header.kid}`);
	const ok = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: createPublicKey({ key: jwk, format: 'jwk' }), ...ALGS[header.alg] },
		Buffer.from(parts[2], 'base64url'));
	if (!ok) throw new Error('ID token signature does not verify');
	const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
	if (claims.iss !== o.issuer || !aud.includes(o.client) || claims.nonce !== nonce || !(claims.exp * 1000 > Date.now())) {
		throw new Error('ID token claims refused');
	}
}

async function peer(agent) {
	const verifier = b64u(randomBytes(32));
	const state = b64u(randomBytes(32));
	const nonce = b64u(randomBytes(32));
	const auth = new URL(disco.authorization_endpoint);
	auth.search = new URLSearchParams({
		response_type: 'code', client_id: o.client, redirect_uri: o.redirectUri, scope: 'openid', state, nonce,
		code_challenge: b64u(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
	}).toString();
	const cb = await signIn({ authUrl: auth.href, login: o.login, password: o.password, agent, redirectUri: o.redirectUri });
	if (cb.searchParams.get('state') !== state) throw new Error('state mismatch');
	const form = new URLSearchParams({ grant_type: 'authorization_code', code: cb.searchParams.get('code'), redirect_uri: o.redirectUri, code_verifier: verifier });
	const basic = Buffer.from(`${encodeURIComponent(o.client)}:${encodeURIComponent(o.secret)}`).toString('base64');
	const tok = await getJson(disco.token_endpoint, agent, { authorization: `Basic ${basic}` }, form.toString());
	checkIdToken(tok.id_token, nonce);
}

async function parley(agent, url) {
	const jar = new Jar();
	const cb = await signIn({ authUrl: url, login: o.login, password: o.password, agent, jar });
	const res = await request('GET', cb, { agent, jar });
	if (res.status < 200 || res.status > 299) throw new Error(`the callback answered ${res.status}`);
}

function mint(file, aud, iss, n, prefix) {
	const key = createPrivateKey(readFileSync(o.bizKey));
	const head = b64u(JSON.stringify({ alg: 'RS256', kid: 'biz1', typ: 'JWT' }));
	const now = Math.floor(Date.now() / 1000);
	const lines = [];
	for (let i = 0; i < n; i++) {
		const payload = b64u(JSON.stringify({ iss, aud, sub: 'cust-1', iat: now, exp: now + 3600, jti: `${prefix}-${i}` }));
		lines.push(`${head}.${payload}.${b64u(sign('sha256', Buffer.from(`${head}.${payload}`), key))}`);
	}
	writeFileSync(file, `${lines.join('\n')}\n`);
}

async function run(line) {
	const [tag, cmd, ...args] = line.split(' ');
	const agent = newAgent();
	try {
		if (cmd === 'parley') await parley(agent, args[0]);
		else if (cmd === 'peer') await peer(agent);
		else if (cmd === 'mint') mint(args[0], args[1], args[2], Number(args[3]), args[4]);
		else throw new Error(`unknown command ${cmd}`);
		process.stdout.write(`${tag} OK\n`);
	} catch (e) {
		process.stdout.write(`${tag} ERR ${String(e.message).replace(/\s+/g, ' ')}\n`);
	} finally {
		agent.destroy();
	}
}

await discover();
process.stdout.write('ready\n');
readline.createInterface({ input: process.stdin }).on('line', (l) => { if (l) run(l); }).on('close', () => process.exit(0));
