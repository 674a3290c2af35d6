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
// The sign-in itself is tests/idp/signin.mjs (shared with the benchmark's signer).
import { readFileSync } from 'node:fs';
import https from 'node:https';
import process from 'node:process';
import { Jar, SignInError, pageText, request, signIn } from './signin.mjs';

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

async function main() {
	const o = parseArgs(process.argv.slice(2));
	const [authUrl, login, password] = o.pos;
	const agent = new https.Agent(o.ca ? { ca: readFileSync(o.ca) } : {});
	const jar = new Jar();
	let callback;
	try {
		callback = await signIn({ authUrl, login, password, agent, jar, redirectUri: o.redirectUri });
	} catch (e) {
		if (e instanceof SignInError) {
			if (e.url) process.stdout.write(`${e.url.href}\n`);
			fail(e.code, e.message);
		}
		throw e;
	}
	process.stdout.write(`${callback.href}\n`);
	if (o.followFinal) {
		const res = await request('GET', callback, { agent, jar });
		if (res.status < 200 || res.status > 299) fail(5, `the callback answered ${res.status}: ${pageText(res.body)}`);
	}
	process.exit(0);
}

main().catch((e) => fail(4, e.message));
