// tests/idp/login.mjs — signs a customer in at the test identity provider (tests/idp/idp.mjs) the way a
// browser would, without a browser: follows the redirects, keeps the cookies, fills in the login form.
//
//   node tests/idp/login.mjs [--ca CA.pem] [--redirect-uri URI] [--no-follow-final | --follow-final]
//                            AUTH_URL LOGIN PASSWORD
//
// AUTH_URL is where the customer is sent: parleyd's <auth_public_url>/v1/auth/start/<token> (it
// answers 302 to the provider) or the provider's authorization URL itself. The client's redirect_uri
// is the `redirect_uri` parameter of the first authorization URL on the way (or --redirect-uri).
// The script stops at the first redirect whose Location is that redirect_uri (same origin and path)
// and prints that Location — it carries code and state (and iss) — on stdout, one line.
// By default (--no-follow-final) the callback itself is NOT requested: the test does that with curl,
// so it can also replay it. --follow-final requests it too and fails unless it answers 2xx.
//
// TLS: the provider's certificate comes from the test CA: pass --ca DIR/ca.pem (or set
// NODE_EXTRA_CA_CERTS=DIR/ca.pem). Verification is never turned off.
//
// Exit status: 0 signed in (code in the URL); 1 wrong login or password (the provider's form said so);
// 2 usage; 3 the provider sent the browser back with an OAuth error (URL still printed);
// 4 anything else unexpected (error page, too many redirects, network) with a message on stderr;
// 5 --follow-final and the callback did not answer 2xx.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import process from 'node:process';

const MAX_HOPS = 20;
const MAX_BODY = 1 << 20;
const USAGE = 'usage: node login.mjs [--ca CA.pem] [--redirect-uri URI] [--no-follow-final|--follow-final] AUTH_URL LOGIN PASSWORD';

function fail(code, msg) {
	process.stderr.write(`login.mjs: ${msg}\n`);
	process.exit(code);
}

function parseArgs(argv) {
	const o = { followFinal: false, pos: [] };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === '--ca' && i + 1 < argv.length) o.ca = argv[++i];
		else if (a === '--redirect-uri' && i + 1 < argv.length) o.redirectUri = argv[++i];
		else if (a === '--no-follow-final') o.followFinal = false;
		else if (a === '--follow-final') o.followFinal = true;
		else if (a.startsWith('--')) fail(2, `unknown option ${a}\n${USAGE}`);
		else o.pos.push(a);
	}
	if (o.pos.length !== 3) fail(2, USAGE);
	return o;
}

// A small cookie jar: enough of RFC 6265 for one provider on loopback (host-only cookies, Path,
// Max-Age / Expires deletion). oidc-provider scopes its interaction cookies by path, so Path matters.
class Jar {
	#cookies = [];

	store(url, setCookies) {
		for (const line of setCookies ?? []) {
			const [pair, ...attrs] = line.split(';').map((s) => s.trim());
			const eq = pair.indexOf('=');
			if (eq <= 0) continue;
			const c = { host: url.host, name: pair.slice(0, eq), value: pair.slice(eq + 1), path: '/', expired: false };
			for (const a of attrs) {
				const [k, v = ''] = a.split('=');
				const key = k.toLowerCase();
				if (key === 'path' && v.startsWith('/')) c.path = v;
				if (key === 'max-age' && Number(v) <= 0) c.expired = true;
				if (key === 'expires' && Date.parse(v) <= Date.now()) c.expired = true;
			}
			this.#cookies = this.#cookies.filter((x) => !(x.host === c.host && x.name === c.name && x.path === c.path));
			if (!c.expired) this.#cookies.push(c);
		}
	}

	header(url) {
		const pathMatch = (p) => url.pathname === p || url.pathname.startsWith(p.endsWith('/') ? p : `${p}/`);
		return this.#cookies.filter((c) => c.host === url.host && pathMatch(c.path))
			.sort((a, b) => b.path.length - a.path.length)
			.map((c) => `${c.name}=${c.value}`).join('; ');
	}
}

function request(method, url, { agent, jar, body }) {
	return new Promise((resolve, reject) => {
		const headers = { accept: 'text/html,*/*' };
		const cookie = jar.header(url);
		if (cookie) headers.cookie = cookie;
		if (body !== undefined) {
			headers['content-type'] = 'application/x-www-form-urlencoded';
			headers['content-length'] = Buffer.byteLength(body);
		}
		const mod = url.protocol === 'https:' ? https : http;
		const req = mod.request(url, { method, headers, agent: url.protocol === 'https:' ? agent : undefined }, (res) => {
			const chunks = [];
			let size = 0;
			res.on('data', (c) => {
				size += c.length;
				if (size <= MAX_BODY) chunks.push(c);
			});
			res.on('end', () => {
				jar.store(url, res.headers['set-cookie']);
				resolve({ status: res.statusCode, location: res.headers.location, body: Buffer.concat(chunks).toString('utf8') });
			});
			res.on('error', reject);
		});
		req.setTimeout(15000, () => req.destroy(new Error(`timeout on ${method} ${url.origin}${url.pathname}`)));
		req.on('error', reject);
		req.end(body);
	});
}

const decodeEntities = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
const pageText = (html) => html.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);

// The form of idp.mjs's login page: the one with a password field.
function findLoginForm(html) {
	for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
		const action = /\baction="([^"]*)"/i.exec(m[1]);
		if (action && /type="password"/i.test(m[2])) return decodeEntities(action[1]);
	}
	return undefined;
}

const sameEndpoint = (a, b) => a.origin === b.origin && a.pathname === b.pathname;

async function main() {
	const o = parseArgs(process.argv.slice(2));
	const [authUrl, login, password] = o.pos;
	const agent = new https.Agent(o.ca ? { ca: readFileSync(o.ca) } : {});
	const jar = new Jar();
	let redirectUri = o.redirectUri ? new URL(o.redirectUri) : undefined;
	let url = new URL(authUrl);
	let method = 'GET';
	let body;
	let posted = false;

	for (let hop = 0; hop < MAX_HOPS; hop++) {
		if (!redirectUri && url.searchParams.has('redirect_uri')) redirectUri = new URL(url.searchParams.get('redirect_uri'));
		const res = await request(method, url, { agent, jar, body });
		method = 'GET';
		body = undefined;
		if (res.status >= 300 && res.status < 400 && res.location) {
			const next = new URL(res.location, url);
			if (redirectUri && sameEndpoint(next, redirectUri)) return finish(next, o, agent, jar);
			url = next;
			continue;
		}
		if (res.status === 401 && posted) fail(1, `sign-in refused for "${login}": ${pageText(res.body)}`);
		const action = res.status === 200 ? findLoginForm(res.body) : undefined;
		if (!action) fail(4, `unexpected answer ${res.status} from ${url.origin}${url.pathname}: ${pageText(res.body)}`);
		if (posted) fail(4, `the login form came back after signing in: ${pageText(res.body)}`);
		url = new URL(action, url);
		method = 'POST';
		body = new URLSearchParams({ login, password }).toString();
		posted = true;
	}
	fail(4, `more than ${MAX_HOPS} redirects, last ${url.origin}${url.pathname}`);
}

async function finish(callback, o, agent, jar) {
	process.stdout.write(`${callback.href}\n`);
	if (callback.searchParams.has('error')) {
		fail(3, `the provider answered the client with error=${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description') ?? ''}`);
	}
	if (!callback.searchParams.has('code')) fail(4, 'the redirect to the client carries no code');
	if (o.followFinal) {
		const res = await request('GET', callback, { agent, jar });
		if (res.status < 200 || res.status > 299) fail(5, `the callback answered ${res.status}: ${pageText(res.body)}`);
	}
	process.exit(0);
}

main().catch((e) => fail(4, e.message));
