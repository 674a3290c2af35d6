// tests/idp/signin.mjs — a browser-like sign-in at the test identity provider (tests/idp/idp.mjs), as a
// module: follows the redirects, keeps the cookies, fills in the login form, and stops at the client's
// redirect_uri. Its users: login.mjs (the command line the C tests run once per sign-in) and
// tests/bench/auth-e2e/signer.mjs (many sign-ins in one process, for the benchmark).
//
// signIn({ authUrl, login, password, agent, jar, redirectUri }) resolves to the URL of the first redirect
// whose Location is the redirect_uri (same origin and path) — it carries code and state (and iss) — or
// rejects with a SignInError whose `code` is login.mjs's exit status: 1 wrong login or password (the
// provider's form said so), 3 the provider sent the browser back with an OAuth error, 4 anything else.
// The redirect_uri is the `redirect_uri` parameter of the first authorization URL on the way unless given.
import http from 'node:http';
import https from 'node:https';

const MAX_HOPS = 20;
const MAX_BODY = 1 << 20;

export class SignInError extends Error {
	constructor(code, message, url) {
		super(message);
		this.code = code;
		this.url = url; // the redirect to the client, when there was one
	}
}

// A small cookie jar: enough of RFC 6265 for one provider on loopback (host-only cookies, Path,
// Max-Age / Expires deletion). oidc-provider scopes its interaction cookies by path, so Path matters.
export class Jar {
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

// One HTTP(S) request; a form body (`body`, urlencoded) or none. `headers` adds to (or replaces) the
// browser-like defaults. Resolves to { status, location, body }.
export function request(method, url, { agent, jar, body, headers: extra }) {
	return new Promise((resolve, reject) => {
		const headers = { accept: 'text/html,*/*' };
		const cookie = jar?.header(url);
		if (cookie) headers.cookie = cookie;
		if (body !== undefined) {
			headers['content-type'] = 'application/x-www-form-urlencoded';
			headers['content-length'] = Buffer.byteLength(body);
		}
		Object.assign(headers, extra);
		const mod = url.protocol === 'https:' ? https : http;
		const req = mod.request(url, { method, headers, agent: url.protocol === 'https:' ? agent : undefined }, (res) => {
			const chunks = [];
			let size = 0;
			res.on('data', (c) => {
				size += c.length;
				if (size <= MAX_BODY) chunks.push(c);
			});
			res.on('end', () => {
				jar?.store(url, res.headers['set-cookie']);
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
export const pageText = (html) => html.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);

// The form of idp.mjs's login page: the one with a password field.
function findLoginForm(html) {
	for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
		const action = /\baction="([^"]*)"/i.exec(m[1]);
		if (action && /type="password"/i.test(m[2])) return decodeEntities(action[1]);
	}
	return undefined;
}

const sameEndpoint = (a, b) => a.origin === b.origin && a.pathname === b.pathname;

export async function signIn({ authUrl, login, password, agent, jar = new Jar(), redirectUri }) {
	let redirect = redirectUri ? new URL(redirectUri) : undefined;
	let url = new URL(authUrl);
	let method = 'GET';
	let body;
	let posted = false;

	for (let hop = 0; hop < MAX_HOPS; hop++) {
		if (!redirect && url.searchParams.has('redirect_uri')) redirect = new URL(url.searchParams.get('redirect_uri'));
		const res = await request(method, url, { agent, jar, body });
		method = 'GET';
		body = undefined;
		if (res.status >= 300 && res.status < 400 && res.location) {
			const next = new URL(res.location, url);
			if (redirect && sameEndpoint(next, redirect)) return checkCallback(next);
			url = next;
			continue;
		}
		if (res.status === 401 && posted) throw new SignInError(1, `sign-in refused for "${login}": ${pageText(res.body)}`);
		const action = res.status === 200 ? findLoginForm(res.body) : undefined;
		if (!action) throw new SignInError(4, `unexpected answer ${res.status} from ${url.origin}${url.pathname}: ${pageText(res.body)}`);
		if (posted) throw new SignInError(4, `the login form came back after signing in: ${pageText(res.body)}`);
		url = new URL(action, url);
		method = 'POST';
		body = new URLSearchParams({ login, password }).toString();
		posted = true;
	}
	throw new SignInError(4, `more than ${MAX_HOPS} redirects, last ${url.origin}${url.pathname}`);
}

function checkCallback(callback) {
	if (callback.searchParams.has('error')) {
		throw new SignInError(3, `the provider answered the client with error=${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description') ?? ''}`, callback);
	}
	if (!callback.searchParams.has('code')) throw new SignInError(4, 'the redirect to the client carries no code', callback);
	return callback;
}
