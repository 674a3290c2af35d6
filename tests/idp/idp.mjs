// tests/idp/idp.mjs — a real OpenID provider for parley's customer-authentication tests (issue 11).
//
// It is panva's `oidc-provider` 8.x (npm, pinned in package-lock.json, installed by tests/idp/setup.sh
// with `npm ci`), served on 127.0.0.1 over HTTPS with a certificate from a CA the test makes
// (tests/idp/make-ca.sh). Nothing here is a mock of the protocol: discovery, JWKS, the authorization
// endpoint, PKCE, the token endpoint, the ID token and userinfo are the library's own.
//
// How a test starts it (a C helper does exactly this; the selftest.sh next to this file too):
//   tests/idp/make-ca.sh DIR
//   node tests/idp/idp.mjs --port 0 --port-file DIR/port --cert DIR/server.pem --key DIR/server.key \
//        --config CONFIG.json [--test-control]
// then waits until DIR/port exists (written once the server listens, atomically: write + rename),
// reads the port and uses issuer https://127.0.0.1:PORT (discovery at
// ISSUER/.well-known/openid-configuration). The client side trusts DIR/ca.pem. SIGTERM stops it
// cleanly (exit 0). One line per request goes to stderr: `idp: METHOD /path STATUS MSms` (plus, at
// start, the library's own warning that its store is in memory: intended, a test IdP keeps nothing).
// From meson (tests/idp/meson.build): idp_node_path, idp_script, idp_login_script, idp_make_ca.
// A browser (Chromium) that cannot import ca.pem can pin the server key instead:
// --ignore-certificate-errors-spki-list=$(cat DIR/server.spki).
//
// CONFIG.json:
//   { "clients": [ { "client_id": "parley-rs", "client_secret": "s3cret-rs",
//                    "redirect_uris": ["http://127.0.0.1:7600/v1/auth/callback"],
//                    "id_token_signed_response_alg": "RS256",            // or "ES256"
//                    "token_endpoint_auth_method": "client_secret_basic" } ],
//                    // any other client metadata of oidc-provider passes through as is, e.g.
//                    // "application_type": "native" makes a http://127.0.0.1 redirect_uri match
//                    // whatever port the callback comes on (RFC 8252 §7.3)
//     "users": [ { "id": "alice", "password": "alice-pw",     // "login": optional, defaults to id
//                  "claims": { "email": "alice@example.test", "email_verified": true,
//                              "phone_number": "+15551234567", "phone_number_verified": true,
//                              "name": "Alice Example" } } ],
//     "id_token_ttl_s": 300, "access_token_ttl_s": 300,
//     "authorization_code_ttl_s": 60,     // optional (default 60)
//     "force_login": true }               // optional (default true), see below
//
// What the provider does:
// - issuer https://127.0.0.1:PORT; authorization code flow only (response_type code, grant type
//   authorization_code), PKCE required with S256 only, no refresh tokens;
// - scopes openid, email (email, email_verified), phone (phone_number, phone_number_verified), profile
//   (name); the scope's claims go into the ID token itself (conformIdTokenClaims false), so the C side
//   finds email / phone_number there without a userinfo call (userinfo is there too, for oauth2 tests);
// - signing keys: one RS256 (RSA 2048) and one ES256 (P-256) key pair made at start with
//   node:crypto, exported as JWKs with kids (RFC 7638 thumbprints); nothing is written to disk;
// - interactions (our own, devInteractions off): GET /interaction/UID shows a plain HTML form
//   (fields `login`, `password`, a submit button: one click in a browser); a wrong login answers 401
//   with the form again and an element id="error"; consent is granted automatically for every
//   configured client (they are all test clients), so a browser never sees a consent page;
// - force_login (default true): every authorization request asks for the password again, even with a
//   live session cookie, so a test decides who signs in by the credentials it types — not by a session
//   left over from an earlier sign-in in the same browser;
// - with --test-control only, on the same server: POST /__test/rotate[?alg=RS256|ES256] makes a new
//   signing key (new kid; both algorithms without ?alg) and signs with it from then on; old keys stay
//   in the JWKS (as a real rotation does) so earlier tokens still verify. It answers JSON
//   {"kids":{"RS256":"..","ES256":".."}} with the kids now used. It lets the C side's "refetch the
//   JWKS once on an unknown kid" be tested. GET /__test/kids answers the same without rotating.
//
// - with --test-control only: POST /__test/tamper?what=MODE makes the NEXT successful answer of the
//   token endpoint wrong in exactly one way, then disarms (one token answer, whatever client asked):
//   it models a provider that misbehaves or a token swapped in transit. A koa middleware on the
//   provider app (provider.use, so it survives a rotation's rebuild: buildProvider installs it again)
//   rewrites the JSON answer after the library made it. The ID token is decoded, the one claim changed
//   and re-signed with the provider's own current private key under its own kid (the JWKS still
//   verifies it), so exactly that property is wrong and nothing else:
//     nonce  another random nonce              aud  another client id ("other-" + the client's)
//     azp    azp set to another client id      iss  another issuer (https://other-issuer.example)
//     exp    exp an hour in the past (iat kept)
//     sig    the token unchanged but one byte of its signature flipped (the last: an RSA signature
//            stays below the modulus, so it is the signature check that fails, not its encoding)
//     kid    signed with a fresh key of the same alg whose kid is in no JWKS
//     access_token  the access token replaced by a random one the provider never issued (userinfo
//            answers 401: the oauth2 flow's failure)
//   It answers {"armed":"MODE"}; a second POST re-arms with the new mode. An error answer of the token
//   endpoint (a replayed code...) does not disarm it. Logged as `idp: tamper MODE armed|applied`.
//   GET /__test/count?path=/jwks answers {"path":"/jwks","count":N}: how many GET requests that path
//   has had since start (the C side counts its JWKS fetches with it: cached, refetched on rotation,
//   no refetch storm on unknown kids).
//
// Rotation rebuilds the Provider with the new key list (oidc-provider has no public API to change its
// keystore at run time). State survives: the memory adapter's storage is module-wide (shared by every
// Provider in this process), and the cookie signing keys are fixed at start.
import { generateKeyPairSync, randomBytes, createHash, createPrivateKey, sign, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import https from 'node:https';
import process from 'node:process';
import Provider, { interactionPolicy } from 'oidc-provider';

const USAGE = 'usage: node idp.mjs --port N --port-file F --cert PEM --key PEM --config JSON [--test-control]';
const MAX_FORM_BYTES = 8192;

function die(msg) {
	process.stderr.write(`idp: ${msg}\n`);
	process.exit(2);
}

function parseArgs(argv) {
	const opts = { port: 0, testControl: false };
	const valued = { '--port': 'port', '--port-file': 'portFile', '--cert': 'cert', '--key': 'key', '--config': 'config' };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === '--test-control') {
			opts.testControl = true;
		} else if (valued[a] && i + 1 < argv.length) {
			opts[valued[a]] = argv[++i];
		} else {
			die(`unknown or incomplete argument ${a}\n${USAGE}`);
		}
	}
	opts.port = Number(opts.port);
	if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) die(`bad --port\n${USAGE}`);
	for (const k of ['cert', 'key', 'config']) if (!opts[k]) die(`missing --${k}\n${USAGE}`);
	return opts;
}

// The config is test input: check it strictly so a typo fails loudly here, not as a confusing
// invalid_client three processes away.
function loadConfig(file) {
	let cfg;
	try {
		cfg = JSON.parse(readFileSync(file, 'utf8'));
	} catch (e) {
		die(`config ${file}: ${e.message}`);
	}
	if (!Array.isArray(cfg.clients) || cfg.clients.length === 0) die('config: clients must be a non-empty array');
	if (!Array.isArray(cfg.users)) die('config: users must be an array');
	for (const c of cfg.clients) {
		if (typeof c.client_id !== 'string' || !Array.isArray(c.redirect_uris)) die('config: each client needs client_id and redirect_uris');
		const alg = c.id_token_signed_response_alg ?? 'RS256';
		if (alg !== 'RS256' && alg !== 'ES256') die(`config: client ${c.client_id}: id_token_signed_response_alg must be RS256 or ES256`);
	}
	for (const u of cfg.users) {
		if (typeof u.id !== 'string' || typeof u.password !== 'string') die('config: each user needs id and password');
	}
	for (const k of ['id_token_ttl_s', 'access_token_ttl_s', 'authorization_code_ttl_s']) {
		if (cfg[k] !== undefined && !(Number.isInteger(cfg[k]) && cfg[k] > 0)) die(`config: ${k} must be a positive integer`);
	}
	return cfg;
}

// A signing key as oidc-provider wants it: a private JWK with kid, alg and use. The kid is the RFC 7638
// thumbprint, so a rotated key always has a new kid.
function makeSigningKey(alg) {
	const { privateKey } = alg === 'RS256'
		? generateKeyPairSync('rsa', { modulusLength: 2048 })
		: generateKeyPairSync('ec', { namedCurve: 'P-256' });
	const jwk = privateKey.export({ format: 'jwk' });
	const members = jwk.kty === 'RSA' ? { e: jwk.e, kty: 'RSA', n: jwk.n } : { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y };
	const kid = createHash('sha256').update(JSON.stringify(members)).digest('base64url');
	return { ...jwk, kid, alg, use: 'sig' };
}

function secretEquals(a, b) {
	// compare digests: equal length whatever the input, so timingSafeEqual never throws
	const h = (s) => createHash('sha256').update(String(s)).digest();
	return timingSafeEqual(h(a), h(b));
}

const htmlEscape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
	return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${htmlEscape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>${htmlEscape(title)}</h1>
${body}
</body></html>
`;
}

function loginPage(uid, clientId, error, login) {
	const err = error ? `<p id="error" role="alert">${htmlEscape(error)}</p>\n` : '';
	return page('Sign in', `<p>to continue to <b>${htmlEscape(clientId)}</b></p>
${err}<form id="login" method="post" action="/interaction/${encodeURIComponent(uid)}/login" autocomplete="off">
<p><label>Login <input id="login-field" name="login" value="${htmlEscape(login ?? '')}" required autofocus></label></p>
<p><label>Password <input id="password-field" name="password" type="password" required></label></p>
<p><button id="submit" type="submit">Sign in</button></p>
</form>`);
}

function send(res, status, type, body) {
	res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
	res.end(body);
}

function readForm(req) {
	return new Promise((resolve, reject) => {
		let size = 0;
		const chunks = [];
		req.on('data', (c) => {
			size += c.length;
			if (size > MAX_FORM_BYTES) {
				reject(new Error('form too large'));
				req.destroy();
				return;
			}
			chunks.push(c);
		});
		req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
		req.on('error', reject);
	});
}

const opts = parseArgs(process.argv.slice(2));
const cfg = loadConfig(opts.config);
const forceLogin = cfg.force_login ?? true;
const usersById = new Map(cfg.users.map((u) => [u.id, u]));
const cookieKeys = [randomBytes(32).toString('base64url')];
// newest first: oidc-provider signs with the first key of the wanted alg, and publishes all of them
let keys = [makeSigningKey('RS256'), makeSigningKey('ES256')];

function currentKids() {
	const kids = {};
	for (const alg of ['RS256', 'ES256']) kids[alg] = keys.find((k) => k.alg === alg).kid;
	return kids;
}

// Asks for the password on every authorization request unless this very request resumes from our
// login form; see force_login in the header.
function loginPolicy() {
	const policy = interactionPolicy.base();
	if (forceLogin) {
		policy.get('login').checks.add(new interactionPolicy.Check('force_login', 'the test IdP asks for the password every time',
			'login_required', (ctx) => (ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT)));
	}
	return policy;
}

function providerConfig() {
	return {
		clients: cfg.clients.map((c) => ({
			grant_types: ['authorization_code'],
			response_types: ['code'],
			token_endpoint_auth_method: 'client_secret_basic',
			id_token_signed_response_alg: 'RS256',
			...c,
		})),
		jwks: { keys },
		cookies: { keys: cookieKeys },
		claims: {
			openid: ['sub'],
			email: ['email', 'email_verified'],
			phone: ['phone_number', 'phone_number_verified'],
			profile: ['name'],
		},
		conformIdTokenClaims: false,
		responseTypes: ['code'],
		pkce: { methods: ['S256'], required: () => true },
		// no refresh tokens: no offline_access scope, and clients may use only authorization_code
		// (a custom issueRefreshToken would make the library advertise the refresh_token grant)
		scopes: ['openid'],
		features: {
			devInteractions: { enabled: false },
			userinfo: { enabled: true },
		},
		enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256'] },
		interactions: {
			policy: loginPolicy(),
			url: (ctx, interaction) => `/interaction/${interaction.uid}`,
		},
		ttl: {
			AccessToken: cfg.access_token_ttl_s ?? 300,
			AuthorizationCode: cfg.authorization_code_ttl_s ?? 60,
			IdToken: cfg.id_token_ttl_s ?? 300,
			Interaction: 600,
			Session: 600,
			Grant: 600,
		},
		async findAccount(ctx, sub) {
			const user = usersById.get(sub);
			if (!user) return undefined;
			return { accountId: sub, claims: async () => ({ ...user.claims, sub }) };
		},
		async renderError(ctx, out) {
			ctx.type = 'html';
			ctx.body = page('Sign-in error', Object.entries(out).map(([k, v]) => `<p><b>${htmlEscape(k)}</b>: ${htmlEscape(v)}</p>`).join('\n'));
		},
	};
}

// --- /__test/tamper: one token answer made wrong in one way (see the header) ---

const TAMPER_MODES = ['nonce', 'aud', 'azp', 'iss', 'exp', 'sig', 'kid', 'access_token'];
let tamperNext = null; // the armed mode, or null

const b64json = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

// A compact JWS over header.payload with a private JWK (ours: RS256 or ES256 only).
function signJws(header, payload, jwk) {
	const input = `${b64json(header)}.${b64json(payload)}`;
	const { kid, alg, use, ...material } = jwk; // node:crypto wants the key material only
	const key = createPrivateKey({ key: material, format: 'jwk' });
	// ES256 signatures are r||s (RFC 7518 §3.4), not DER
	const sig = sign('sha256', Buffer.from(input), jwk.kty === 'EC' ? { key, dsaEncoding: 'ieee-p1363' } : key);
	return `${input}.${sig.toString('base64url')}`;
}

function tamperIdToken(token, what) {
	const [h, p, s] = token.split('.');
	const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
	const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
	if (what === 'sig') {
		const sig = Buffer.from(s, 'base64url');
		sig[sig.length - 1] ^= 0x01;
		return `${h}.${p}.${sig.toString('base64url')}`;
	}
	if (what === 'kid') {
		const stranger = makeSigningKey(header.alg);
		return signJws({ ...header, kid: stranger.kid }, payload, stranger);
	}
	const other = (v) => `other-${Array.isArray(v) ? v[0] : v}`;
	const changes = {
		nonce: () => ({ nonce: randomBytes(32).toString('base64url') }),
		aud: () => ({ aud: other(payload.aud) }),
		azp: () => ({ azp: other(payload.aud) }),
		iss: () => ({ iss: 'https://other-issuer.example' }),
		exp: () => ({ exp: Math.floor(Date.now() / 1000) - 3600 }),
	};
	const own = keys.find((k) => k.kid === header.kid);
	if (!own) throw new Error(`tamper: the token's kid ${header.kid} is not one of ours`);
	return signJws(header, { ...payload, ...changes[what]() }, own);
}

function tamperMiddleware() {
	return async (ctx, next) => {
		await next();
		if (tamperNext === null || ctx.method !== 'POST' || ctx.path !== '/token' || ctx.status !== 200) return;
		const body = ctx.body;
		if (typeof body !== 'object' || body === null || typeof body.access_token !== 'string') return;
		const what = tamperNext;
		if (what === 'access_token') {
			ctx.body = { ...body, access_token: randomBytes(32).toString('base64url') };
		} else {
			if (typeof body.id_token !== 'string') return; // stays armed: this answer has no ID token
			ctx.body = { ...body, id_token: tamperIdToken(body.id_token, what) };
		}
		tamperNext = null;
		process.stderr.write(`idp: tamper ${what} applied\n`);
	};
}

let provider;
let providerHandler;
function buildProvider(issuer) {
	provider = new Provider(issuer, providerConfig());
	if (opts.testControl) provider.use(tamperMiddleware());
	providerHandler = provider.callback();
}

// Consent: every configured client is a test client, so what it asks for is granted at once (the
// same grant the library's example consent page would make after its button is pressed).
async function grantConsent(req, res, details) {
	const { prompt: { details: missing }, params, session } = details;
	const grant = details.grantId
		? await provider.Grant.find(details.grantId)
		: new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
	if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
	if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
	if (missing.missingResourceScopes) {
		for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
	}
	const grantId = await grant.save();
	await provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, url) {
	const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(url.pathname);
	if (!m) return send(res, 404, 'text/plain', 'not found\n');
	const details = await provider.interactionDetails(req, res);
	if (details.uid !== m[1]) return send(res, 400, 'text/plain', 'interaction mismatch\n');
	const clientId = details.params.client_id;
	if (!m[2]) {
		if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed\n');
		if (details.prompt.name === 'consent') return grantConsent(req, res, details);
		return send(res, 200, 'text/html; charset=utf-8', loginPage(details.uid, clientId));
	}
	if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed\n');
	if (details.prompt.name !== 'login') return send(res, 400, 'text/plain', 'no login expected here\n');
	const form = await readForm(req);
	const login = form.get('login') ?? '';
	const user = cfg.users.find((u) => (u.login ?? u.id) === login);
	// compare the password even for an unknown login, so both failures take the same time
	const ok = secretEquals(form.get('password') ?? '', user?.password ?? randomBytes(16).toString('hex')) && user;
	if (!ok) return send(res, 401, 'text/html; charset=utf-8', loginPage(details.uid, clientId, 'Wrong login or password.', login));
	return provider.interactionFinished(req, res, { login: { accountId: user.id } }, { mergeWithLastSubmission: false });
}

function testControl(req, res, url) {
	const json = (status, obj) => send(res, status, 'application/json', `${JSON.stringify(obj)}\n`);
	if (url.pathname === '/__test/kids' && req.method === 'GET') return json(200, { kids: currentKids() });
	if (url.pathname === '/__test/count' && req.method === 'GET') {
		const path = url.searchParams.get('path') ?? '';
		return json(200, { path, count: getCounts.get(path) ?? 0 });
	}
	if (url.pathname === '/__test/tamper') {
		if (req.method !== 'POST') return json(405, { error: 'method_not_allowed' });
		const what = url.searchParams.get('what');
		if (!TAMPER_MODES.includes(what)) return json(400, { error: `what must be one of ${TAMPER_MODES.join('|')}` });
		tamperNext = what;
		process.stderr.write(`idp: tamper ${what} armed\n`);
		return json(200, { armed: what });
	}
	if (url.pathname !== '/__test/rotate') return json(404, { error: 'not_found' });
	if (req.method !== 'POST') return json(405, { error: 'method_not_allowed' });
	const only = url.searchParams.get('alg');
	if (only !== null && only !== 'RS256' && only !== 'ES256') return json(400, { error: 'alg must be RS256 or ES256' });
	const fresh = (only ? [only] : ['RS256', 'ES256']).map(makeSigningKey);
	keys = [...fresh, ...keys];
	buildProvider(provider.issuer);
	process.stderr.write(`idp: rotated, signing kids now ${JSON.stringify(currentKids())}\n`);
	return json(200, { kids: currentKids() });
}

const getCounts = new Map(); // GET requests per path, for /__test/count

async function handle(req, res) {
	const started = process.hrtime.bigint();
	const url = new URL(req.url, 'https://127.0.0.1');
	if (req.method === 'GET') getCounts.set(url.pathname, (getCounts.get(url.pathname) ?? 0) + 1);
	res.on('finish', () => {
		const ms = Number(process.hrtime.bigint() - started) / 1e6;
		process.stderr.write(`idp: ${req.method} ${url.pathname} ${res.statusCode} ${ms.toFixed(1)}ms\n`);
	});
	try {
		if (url.pathname.startsWith('/interaction/')) return await interaction(req, res, url);
		if (opts.testControl && url.pathname.startsWith('/__test/')) return testControl(req, res, url);
		return providerHandler(req, res);
	} catch (e) {
		// an expired or unknown interaction cookie (SessionNotFound) or a bad form: a page, not a crash
		process.stderr.write(`idp: ${req.method} ${url.pathname}: ${e.name}: ${e.message}\n`);
		if (!res.headersSent) send(res, e.statusCode ?? 400, 'text/html; charset=utf-8', page('Sign-in error', `<p>${htmlEscape(e.message)}</p>`));
		else res.destroy();
	}
}

const server = https.createServer({ cert: readFileSync(opts.cert), key: readFileSync(opts.key) }, handle);
server.on('error', (e) => die(`listen: ${e.message}`));
server.listen(opts.port, '127.0.0.1', () => {
	const { port } = server.address();
	buildProvider(`https://127.0.0.1:${port}`);
	if (opts.portFile) {
		// write then rename: a reader polling for the file never sees it half written
		writeFileSync(`${opts.portFile}.tmp`, `${port}\n`);
		renameSync(`${opts.portFile}.tmp`, opts.portFile);
	}
	process.stderr.write(`idp: listening on https://127.0.0.1:${port} (kids ${JSON.stringify(currentKids())})\n`);
});

function stop(signal) {
	process.stderr.write(`idp: ${signal}, stopping\n`);
	server.close(() => process.exit(0));
	server.closeAllConnections();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
