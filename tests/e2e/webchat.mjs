// tests/e2e/webchat.mjs — a customer using parley-gateway's web chat widget in a real browser (issue 11).
//
// Debian's chromium (/usr/bin/chromium), headless, driven by playwright-core (tests/e2e/package.json,
// pinned with its lockfile, installed by tests/e2e/setup.sh from `make deps-test`). Nothing here talks
// to parley directly: the page, its WebSocket, the sign-in redirect chain and the provider's login form
// are exercised as a customer's browser meets them. tests/e2e/run-webchat.sh plays the business (parleyd,
// the gateway, the agent with the CLI) and starts this script.
//
//   node webchat.mjs --url http://127.0.0.1:PORT/webchat/ --out ARTIFACT_DIR --marks MARK_DIR
//                    [--login USER --password PW [--spki BASE64]] [--chromium /usr/bin/chromium]
//                    [--timeout-ms 60000]
//
// Steps (each one leaves a screenshot NN-name.png in ARTIFACT_DIR and a file MARK_DIR/NAME when done,
// which the shell waits for; the shell answers by creating MARK_DIR/NAME files the script waits for):
//   1 open the widget, write "hello from the browser"            -> mark "sent"
//   2 see the agent's answer "hello from the agent"               -> mark "answered"
//   with --login (the authentication part):
//   3 see the widget's "Sign in" button (the agent's thread auth), click it: a new window goes through
//     parleyd's /v1/auth/start redirect to the provider's login form; fill it, submit; the provider
//     redirects to parleyd's /v1/auth/callback, which shows its success page      -> mark "signed-in"
//   4 back in the widget, write "signed in, thanks"; see the agent's "you are verified, how can I help"
//                                                                                  -> mark "continued"
// Exit 0 when every step passed; 1 with the failing step on stderr (a screenshot "NN-FAILED-step.png"
// of every open page is kept too).
//
// The test CA: the provider runs over HTTPS with a certificate from tests/idp/make-ca.sh. Chromium is
// NOT told to ignore certificate errors in general (no ignoreHTTPSErrors, no --ignore-certificate-errors):
// --spki passes --ignore-certificate-errors-spki-list=<base64 SHA-256 of the provider's public key>,
// which accepts exactly that one key (make-ca.sh writes it as server.spki) and still refuses any other
// untrusted certificate. Chosen over importing ca.pem into an NSS database because a fresh headless
// profile has no import path without libnss3-tools and a $HOME override, and because pinning the key
// cannot accidentally trust anything else the test CA might sign.
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function parseArgs(argv) {
	const o = { chromium: '/usr/bin/chromium', timeoutMs: 60000 };
	const names = { '--url': 'url', '--out': 'out', '--marks': 'marks', '--login': 'login',
		'--password': 'password', '--spki': 'spki', '--chromium': 'chromium', '--timeout-ms': 'timeoutMs' };
	for (let i = 2; i < argv.length; i += 2) {
		const k = names[argv[i]];
		if (!k || i + 1 >= argv.length) throw new Error(`usage: unexpected argument ${argv[i]}`);
		o[k] = k === 'timeoutMs' ? Number(argv[i + 1]) : argv[i + 1];
	}
	if (!o.url || !o.out || !o.marks) throw new Error('usage: --url, --out and --marks are required');
	return o;
}

const opt = parseArgs(process.argv);
let shot = 0;
let step = 'launch';
const pages = new Set();

function say(text) { process.stdout.write(`webchat: ${text}\n`); }
function mark(name) { writeFileSync(join(opt.marks, name), `${Date.now()}\n`); say(`step done: ${name}`); }
async function screenshot(page, name) {
	shot += 1;
	const file = join(opt.out, `${String(shot).padStart(2, '0')}-${name}.png`);
	await page.screenshot({ path: file, fullPage: true });
	say(`screenshot ${file}`);
}
// waits for the shell to create MARK_DIR/NAME (the agent's side done)
async function waitMark(name) {
	const end = Date.now() + opt.timeoutMs;
	while (!existsSync(join(opt.marks, name))) {
		if (Date.now() > end) throw new Error(`the business side never signalled "${name}"`);
		await new Promise((r) => setTimeout(r, 100));
	}
}
// the widget's log lines of one class ("me", "them", "sys"), as text
async function lines(page, cls) {
	return page.locator(`#log .${cls}`).allTextContents();
}
async function waitLine(page, cls, text) {
	await page.locator(`#log .${cls}`, { hasText: text }).first().waitFor({ timeout: opt.timeoutMs });
}
async function waitLoginForm(popup) {
	const end = Date.now() + opt.timeoutMs;
	for (;;) {
		if (popup.url().startsWith('chrome-error://')) {
			const text = await popup.locator('body').innerText().catch(() => '');
			const why = (text.match(/NET::ERR_[A-Z_]+|ERR_[A-Z_]+/) || ['an error page'])[0];
			throw new Error(`the browser refused the sign-in page: ${why}`);
		}
		if (await popup.locator('input[name="login"]').count() > 0) return;
		if (Date.now() > end) throw new Error(`no login form at ${popup.url()}`);
		await new Promise((r) => setTimeout(r, 200));
	}
}
async function write(page, text) {
	await page.locator('#t').fill(text);
	await page.locator('#f button').click();
	await waitLine(page, 'me', text);
}

const profile = mkdtempSync(join(tmpdir(), 'parley-e2e-chromium-'));
const args = ['--no-sandbox', '--headless=new', '--disable-gpu', '--no-first-run',
	'--disable-dev-shm-usage'];
if (opt.spki) args.push(`--ignore-certificate-errors-spki-list=${opt.spki}`);
let context = null;
let status = 0;
try {
	// a persistent context is how playwright gives chromium our own --user-data-dir (a fresh, empty one)
	context = await chromium.launchPersistentContext(profile, {
		executablePath: opt.chromium, headless: true, args, viewport: { width: 900, height: 700 },
		timeout: opt.timeoutMs,
	});
	context.setDefaultTimeout(opt.timeoutMs);
	context.on('page', (p) => { pages.add(p); p.on('close', () => pages.delete(p)); });
	const page = context.pages()[0] || await context.newPage();
	pages.add(page);

	step = 'open the widget';
	const resp = await page.goto(opt.url);
	if (!resp || resp.status() !== 200) throw new Error(`GET ${opt.url}: ${resp ? resp.status() : 'no answer'}`);
	await page.locator('#t').waitFor();
	// the page is usable once the gateway gave it a session id (kept in localStorage)
	await page.waitForFunction(() => !!localStorage.getItem('parley-webchat-session'));
	await screenshot(page, 'widget-open');

	step = 'write to the business';
	await write(page, 'hello from the browser');
	await screenshot(page, 'message-sent');
	mark('sent');

	step = "see the agent's answer";
	await waitLine(page, 'them', 'hello from the agent');
	await screenshot(page, 'agent-answered');
	mark('answered');

	if (opt.login) {
		step = 'see the Sign in button';
		const button = page.locator('#log .sys button', { hasText: 'Sign in' }).last();
		await button.waitFor();
		await screenshot(page, 'sign-in-prompt');

		step = 'open the sign-in window';
		const popupPromise = context.waitForEvent('page');
		await button.click();
		const popup = await popupPromise;
		// parleyd's /v1/auth/start answers 302 to the provider: the window lands on its login form. A
		// page the browser refuses (an untrusted certificate) is chromium's interstitial at
		// chrome-error://: said at once, with its NET::ERR_ name, rather than as a timeout.
		await waitLoginForm(popup);
		if (!popup.url().startsWith('https://')) throw new Error(`the login form is not on HTTPS: ${popup.url()}`);
		await screenshot(popup, 'provider-login');

		step = 'sign in at the provider';
		await popup.locator('input[name="login"]').fill(opt.login);
		await popup.locator('input[name="password"]').fill(opt.password);
		// the provider's form posts, then redirects (through its own auth endpoint) to parleyd's callback
		const callback = popup.waitForResponse((r) => /\/v1\/auth\/callback\?/.test(r.url()),
			{ timeout: opt.timeoutMs });
		await popup.locator('#login button[type="submit"]').click();
		const cb = await callback;
		await popup.waitForLoadState('load');
		const title = await popup.title();
		const body = (await popup.locator('body').innerText()).trim();
		// exactly parleyd's success page: "Not signed in" (a refusal, with its code) must fail here
		if (cb.status() !== 200 || title !== 'Signed in' || !body.startsWith('Signed in'))
			throw new Error(`the callback answered ${cb.status()} "${title}": ${body.slice(0, 300)}`);
		await screenshot(popup, 'callback-signed-in');
		mark('signed-in');
		await popup.close();

		step = 'continue the conversation';
		await page.bringToFront();
		await waitMark('authenticated');
		await write(page, 'signed in, thanks');
		await waitLine(page, 'them', 'you are verified, how can I help');
		await screenshot(page, 'thread-continues');
		mark('continued');
	}
	// nothing the widget showed may be an error line ("not sent: ...")
	const sys = await lines(page, 'sys');
	const errs = sys.filter((t) => t.startsWith('not sent'));
	if (errs.length) throw new Error(`the widget reported: ${errs.join('; ')}`);
	say('all steps passed');
} catch (e) {
	status = 1;
	process.stderr.write(`webchat: FAILED at "${step}": ${e && e.message ? e.message : e}\n`);
	for (const p of pages) {
		try { await screenshot(p, `FAILED-${step.replace(/[^a-z0-9]+/gi, '-')}`); } catch { /* closed */ }
	}
} finally {
	if (context) await context.close().catch(() => {});
	rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
