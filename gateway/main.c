/* parley-gateway: SMS (Twilio), WhatsApp-Cloud-style, bring-your-own-channel webhooks and a web chat
 * in front of a parley entity, running as a GATEWAY account of that entity (docs/channels.md).
 *
 *   parley-gateway [--config FILE] [--port-file FILE] [--KEY=VALUE ...]
 *
 * Keys are those of the config file (config.c); flags are applied after the file. --port-file F is
 * port_file: with port = 0 a test or a supervisor reads the port the system chose from F, which appears
 * (whole: written aside, then renamed) only once the gateway listens, so nobody races for a port. SIGINT / SIGTERM stop
 * it cleanly: the HTTP server closes, the parley thread acknowledges what it handled, the sender
 * finishes its current attempt; whatever is still queued stays in the database for the next start. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <parley/version.h>
#include <sodium.h>

#include "app.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: parley-gateway [--config FILE] [--KEY=VALUE ...]\n"
		   "  keys: entity home server ca_file db bind port port_file public_url max_body queue_max outbox_max\n"
		   "        retry_max retry_base_ms retry_cap_ms http_timeout_s dedupe_days webhook_max_age_s\n"
		   "        max_conns webchat webchat_origins webchat_trusted_proxies webchat_sessions_per_min\n"
		   "        webchat_sessions_per_ip webchat_msgs_per_s webchat_msg_burst webchat_max_msg\n"
		   "        twilio.account_sid twilio.auth_token twilio.from twilio.api_base\n"
		   "        waba.verify_token waba.app_secret waba.token waba.phone_number_id waba.api_base\n"
		   "        waba.otp_template waba.template_lang byoc.secret byoc.url byoc.window_s\n"
		   "  --port-file FILE is port_file: the port written there once listening (with port=0: any)\n"
		   "  secrets (*.auth_token, *.secret, *.token, *.verify_token): env:NAME or file:/abs/path\n"
		   "  see docs/channels.md, \"Running parley-gateway\"\n");
}

static int load(gw_config *cfg, int argc, char **argv)
{
	char err[600];
	config__defaults(cfg);
	/* the file first, wherever --config is, so flags override it */
	for (int i = 1; i < argc; i++) {
		const char *path = NULL;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
		if (path && config__load_file(cfg, path, err, sizeof(err)) != PARLEY_OK) {
			fprintf(stderr, "parley-gateway: %s\n", err);
			return 2;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			printf("parley-gateway %s\n", PARLEY_VERSION_STRING);
			return 1;
		}
		if (strcmp(a, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0)
			continue;
		if (strcmp(a, "--port-file") == 0 || strncmp(a, "--port-file=", 12) == 0) {
			const char *v = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v || config__set(cfg, "port_file", v, err, sizeof(err)) != PARLEY_OK) {
				fprintf(stderr, "parley-gateway: %s\n", v ? err : "--port-file needs a file name");
				return 2;
			}
			continue;
		}
		const char *eq = strchr(a, '=');
		if (strncmp(a, "--", 2) != 0 || !eq) {
			fprintf(stderr, "parley-gateway: unexpected argument %s\n", a);
			usage(stderr);
			return 2;
		}
		char key[64];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - a - 2), a + 2);
		if (config__set(cfg, key, eq + 1, err, sizeof(err)) != PARLEY_OK) {
			fprintf(stderr, "parley-gateway: %s\n", err);
			return 2;
		}
	}
	if (config__finish(cfg, err, sizeof(err)) != PARLEY_OK) {
		fprintf(stderr, "parley-gateway: %s\n", err);
		return 2;
	}
	return 0;
}

/* path gets the port whole or not at all: written to a temporary name beside it, then renamed over it
 * (rename is atomic within a directory), so a reader never sees a partial number. */
static int write_port_file(const char *path, unsigned port)
{
	char tmp[GW_CFG_STR + 32];
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
		return PARLEY_E_CONFIG;
	FILE *f = fopen(tmp, "w");
	if (!f)
		return PARLEY_E_IO;
	int ok = fprintf(f, "%u\n", port) > 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return PARLEY_E_IO;
	}
	return PARLEY_OK;
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	uv_stop(s->loop);
}

static void on_wake(uv_async_t *a)
{
	gw_app *app = a->data;
	if (app->webchat)
		webchat__flush(app->webchat);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int main(int argc, char **argv)
{
	gw_config cfg;
	gw_app app;
	uv_loop_t loop;
	uv_signal_t sint, sterm;
	int rc = load(&cfg, argc, argv);
	if (rc)
		return rc == 1 ? 0 : rc;
	signal(SIGPIPE, SIG_IGN); /* libparley's contract: a peer closing mid-write must not kill us */
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "parley-gateway: cannot initialise libsodium / libcurl\n");
		return 1;
	}
	memset(&app, 0, sizeof(app));
	app.cfg = &cfg;
	app.loop = &loop;
	uv_loop_init(&loop);
	uv_async_init(&loop, &app.wake, on_wake);
	app.wake.data = &app;
	uv_signal_init(&loop, &sint);
	uv_signal_init(&loop, &sterm);
	uv_signal_start(&sint, on_signal, SIGINT);
	uv_signal_start(&sterm, on_signal, SIGTERM);

	rc = store__open(cfg.db, &app.store);
	if (rc != PARLEY_OK)
		log__line("%s: cannot open the database", cfg.db);
	if (rc == PARLEY_OK && store__inbound_prune(app.store, cfg.dedupe_days) != PARLEY_OK)
		log__line("%s: cannot prune old entries", cfg.db);
	if (rc == PARLEY_OK)
		rc = sender__start(&cfg, &app.sender);
	if (rc == PARLEY_OK && cfg.webchat)
		rc = webchat__start(&app, &app.webchat);
	if (rc == PARLEY_OK)
		rc = bridge__start(&app, &app.bridge);
	if (rc == PARLEY_OK)
		rc = http__start(&loop, &cfg, routes__handle, &app, &app.http);
	if (rc == PARLEY_OK) {
		cfg.port = http__port(app.http);
		if (cfg.port_file[0] && write_port_file(cfg.port_file, cfg.port) != PARLEY_OK) {
			log__line("port_file %s: %s", cfg.port_file, strerror(errno));
			rc = PARLEY_E_IO;
		}
	}
	if (rc == PARLEY_OK) {
		log__line("listening on %s:%u for entity %s (sms %s, waba %s, byoc %s, webchat %s)", cfg.bind,
			  cfg.port, cfg.entity, config__sms_enabled(&cfg) ? "on" : "off",
			  config__waba_enabled(&cfg) ? "on" : "off", config__byoc_enabled(&cfg) ? "on" : "off",
			  cfg.webchat ? "on" : "off");
		uv_run(&loop, UV_RUN_DEFAULT);
		log__line("stopping");
		if (cfg.port_file[0])
			unlink(cfg.port_file); /* the port is no longer ours: a supervisor must not read it */
	}
	http__stop(app.http);
	webchat__stop(app.webchat);
	bridge__stop(app.bridge);
	sender__stop(app.sender);
	uv_walk(&loop, close_walk, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	store__close(app.store);
	config__wipe(&cfg);
	curl_global_cleanup();
	return rc == PARLEY_OK ? 0 : 1;
}
