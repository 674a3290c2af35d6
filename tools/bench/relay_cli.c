/* `parley-bench relay`: options, engine choice and the report (text or one JSON object). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>

#include "bench.h"
#include "relay.h"

static const char *peer_name(enum relay_peer p)
{
	switch (p) {
	case RELAY_PEER_PARLEY: return "parley";
	case RELAY_PEER_MOSQUITTO: return "mosquitto";
	case RELAY_PEER_NATS: return "nats";
	case RELAY_PEER_NATS_JS: return "nats-js";
	}
	return "?";
}

static void relay_usage(FILE *f)
{
	fputs("usage: parley-bench relay [options]\n"
	      "  --peer parley|mosquitto|nats|nats-js   what to measure (default parley)\n"
	      "  --url URL          parley: ws://HOST:PORT/PATH; brokers: HOST:PORT (loopback only)\n"
	      "  --connections N    connections (default 20)\n"
	      "  --senders M        the first M connections send (default N/2), each to one receiver\n"
	      "  --size BYTES       message content size (default 256, at least 24)\n"
	      "  --rate R           open loop: R messages/s over all senders\n"
	      "  --max              closed loop: as fast as acks come back (default)\n"
	      "  --window W         closed loop: messages awaiting ack per sender (default 16)\n"
	      "  --duration S       send for S seconds (default 5)\n"
	      "  --messages K       or: send K messages in total\n"
	      "  --max-time S       cap of a --messages run (default 300)\n"
	      "  --drain S          after sending: wait at most S for acks/deliveries (default 10)\n"
	      "  --threads T        client loop threads (parley peer, default 1)\n"
	      "  --ack-batch B      parley: server ids per AckRequest (default 32)\n"
	      "  --server-pid PID   also report that process's CPU use during the run\n"
	      "  --json             one JSON object on stdout instead of text\n",
	      f);
}

static void print_lat_json(const char *name, const hist *h)
{
	printf(",\"%s\":{\"count\":%llu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
	       name, (unsigned long long)h->count, (double)hist__percentile(h, 50) / 1e3,
	       (double)hist__percentile(h, 90) / 1e3, (double)hist__percentile(h, 99) / 1e3,
	       (double)hist__percentile(h, 99.9) / 1e3, (double)h->max / 1e3, hist__mean(h) / 1e3);
}

static void print_lat_text(const char *name, const hist *h)
{
	if (!h->count) {
		printf("%-12s (none)\n", name);
		return;
	}
	printf("%-12s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (mean %.1f, %llu samples)\n", name,
	       (double)hist__percentile(h, 50) / 1e3, (double)hist__percentile(h, 90) / 1e3,
	       (double)hist__percentile(h, 99) / 1e3, (double)hist__percentile(h, 99.9) / 1e3,
	       (double)h->max / 1e3, hist__mean(h) / 1e3, (unsigned long long)h->count);
}

static void report(const relay_cfg *cfg, const relay_result *r, double ccpu, double scpu, int json)
{
	double ack_rate = r->send_s > 0 ? (double)r->acked_at_stop / r->send_s : 0;
	double del_rate = r->send_s > 0 ? (double)r->delivered_at_stop / r->send_s : 0;

	if (json) {
		printf("{\"command\":\"relay\",\"peer\":\"%s\",\"url\":", peer_name(cfg->peer));
		bench__json_str(stdout, cfg->url);
		printf(",\"connections\":%u,\"senders\":%u,\"size\":%zu,\"rate\":%.1f,\"window\":%u,"
		       "\"connected\":%llu,\"connect_failed\":%llu,\"connect_s\":%.3f,\"send_s\":%.3f,\"drain_s\":%.3f,"
		       "\"sent\":%llu,\"acked\":%llu,\"delivered\":%llu,\"acked_per_s\":%.1f,\"delivered_per_s\":%.1f,"
		       "\"errors\":%llu,\"duplicates\":%llu,\"lost\":%llu,\"unsettled\":%llu,\"skipped\":%llu,"
		       "\"foreign\":%llu,\"client_cpu_pct\":%.0f,\"server_cpu_pct\":%.0f",
		       cfg->conns, cfg->senders, cfg->size, cfg->rate, cfg->window, (unsigned long long)r->connected,
		       (unsigned long long)r->connect_failed, r->connect_s, r->send_s, r->drain_s,
		       (unsigned long long)r->sent, (unsigned long long)r->acked, (unsigned long long)r->delivered,
		       ack_rate, del_rate, (unsigned long long)r->errors, (unsigned long long)r->dups,
		       (unsigned long long)r->lost, (unsigned long long)r->unsettled, (unsigned long long)r->skipped,
		       (unsigned long long)r->foreign, ccpu, scpu);
		print_lat_json("ack_us", &r->ack_lat);
		print_lat_json("e2e_us", &r->e2e);
		printf(",\"first_error\":");
		bench__json_str(stdout, r->first_error);
		printf("}\n");
		return;
	}
	printf("peer         %s at %s\n", peer_name(cfg->peer), cfg->url);
	printf("workload     %u connections, %u senders, %zu bytes, %s", cfg->conns, cfg->senders, cfg->size,
	       cfg->rate > 0 ? "open loop at " : "closed loop, window ");
	if (cfg->rate > 0)
		printf("%.0f msg/s\n", cfg->rate);
	else
		printf("%u per sender\n", cfg->window);
	printf("connections  %llu established, %llu failed, in %.2f s\n", (unsigned long long)r->connected,
	       (unsigned long long)r->connect_failed, r->connect_s);
	printf("throughput   %.0f acked/s, %.0f delivered/s over %.2f s of sending\n", ack_rate, del_rate, r->send_s);
	printf("messages     %llu sent, %llu acked, %llu delivered (drain %.2f s)\n", (unsigned long long)r->sent,
	       (unsigned long long)r->acked, (unsigned long long)r->delivered, r->drain_s);
	printf("checks       %llu lost (acked, never delivered), %llu duplicates, %llu unsettled, %llu errors, "
	       "%llu skipped (backlog full)\n",
	       (unsigned long long)r->lost, (unsigned long long)r->dups, (unsigned long long)r->unsettled,
	       (unsigned long long)r->errors, (unsigned long long)r->skipped);
	print_lat_text("ack us", &r->ack_lat);
	print_lat_text("e2e us", &r->e2e);
	if (ccpu >= 0)
		printf("cpu          client %.0f %%", ccpu);
	if (scpu >= 0)
		printf(", server %.0f %%", scpu);
	if (ccpu >= 0)
		printf(" of one core\n");
	if (r->first_error[0])
		printf("first error  %s\n", r->first_error);
}

int bench__cmd_relay(int argc, char **argv)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},         {"connections", required_argument, NULL, 'c'},
		{"senders", required_argument, NULL, 's'},     {"size", required_argument, NULL, 'z'},
		{"rate", required_argument, NULL, 'r'},        {"max", no_argument, NULL, 'x'},
		{"window", required_argument, NULL, 'w'},      {"duration", required_argument, NULL, 'd'},
		{"messages", required_argument, NULL, 'n'},    {"max-time", required_argument, NULL, 'M'},
		{"drain", required_argument, NULL, 'D'},       {"threads", required_argument, NULL, 't'},
		{"ack-batch", required_argument, NULL, 'a'},   {"peer", required_argument, NULL, 'p'},
		{"server-pid", required_argument, NULL, 'P'},  {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0}};
	relay_cfg cfg;
	relay_result *res;
	uint64_t v;
	const char *why;
	int opt, json = 0, bad = 0, rc, senders_set = 0;
	long server_pid = 0;
	double c0, s0, c1, s1, ccpu = -1, scpu = -1, t_start;
	struct timespec ts;

	memset(&cfg, 0, sizeof(cfg));
	cfg.conns = 20;
	cfg.threads = 1;
	cfg.window = 16;
	cfg.open_backlog = 4096;
	cfg.size = 256;
	cfg.duration_s = 5;
	cfg.max_time_s = 300;
	cfg.drain_s = 10;
	cfg.connect_timeout_s = 60;
	cfg.ack_batch = 32;
	cfg.url = NULL;
	while ((opt = getopt_long(argc, argv, "u:c:s:z:r:xw:d:n:M:D:t:a:p:P:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'u': cfg.url = optarg; break;
		case 'c': bad |= bench__parse_u64(optarg, 2, 20000, &v); cfg.conns = (unsigned)v; break;
		case 's': bad |= bench__parse_u64(optarg, 1, 20000, &v); cfg.senders = (unsigned)v; senders_set = 1; break;
		case 'z': bad |= bench__parse_u64(optarg, RELAY_HDR, RELAY_MAX_SIZE, &v); cfg.size = (size_t)v; break;
		case 'r': bad |= bench__parse_seconds(optarg, 1, 10000000, &cfg.rate); break;
		case 'x': cfg.rate = 0; break;
		case 'w': bad |= bench__parse_u64(optarg, 1, 65000, &v); cfg.window = (unsigned)v; break;
		case 'd': bad |= bench__parse_seconds(optarg, 0.1, 3600, &cfg.duration_s); break;
		case 'n': bad |= bench__parse_u64(optarg, 1, UINT64_C(1) << 32, &cfg.messages); break;
		case 'M': bad |= bench__parse_seconds(optarg, 0.1, 3600, &cfg.max_time_s); break;
		case 'D': bad |= bench__parse_seconds(optarg, 0, 600, &cfg.drain_s); break;
		case 't': bad |= bench__parse_u64(optarg, 1, 64, &v); cfg.threads = (unsigned)v; break;
		case 'a': bad |= bench__parse_u64(optarg, 1, 1000, &v); cfg.ack_batch = (unsigned)v; break;
		case 'P': bad |= bench__parse_u64(optarg, 1, 1u << 22, &v); server_pid = (long)v; break;
		case 'p':
			if (strcmp(optarg, "parley") == 0)
				cfg.peer = RELAY_PEER_PARLEY;
			else if (strcmp(optarg, "mosquitto") == 0)
				cfg.peer = RELAY_PEER_MOSQUITTO;
			else if (strcmp(optarg, "nats") == 0)
				cfg.peer = RELAY_PEER_NATS;
			else if (strcmp(optarg, "nats-js") == 0)
				cfg.peer = RELAY_PEER_NATS_JS;
			else
				bad = 1;
			break;
		case 'j': json = 1; break;
		case 'h': relay_usage(stdout); return 0;
		default: relay_usage(stderr); return 1;
		}
		if (bad) {
			fprintf(stderr, "parley-bench: bad value '%s'\n", optarg);
			return 1;
		}
	}
	if (optind != argc) {
		relay_usage(stderr);
		return 1;
	}
	if (!senders_set)
		cfg.senders = cfg.conns / 2;
	if (cfg.senders > cfg.conns) {
		fprintf(stderr, "parley-bench: --senders is at most --connections\n");
		return 1;
	}
	if (!cfg.url)
		cfg.url = cfg.peer == RELAY_PEER_PARLEY ? "ws://127.0.0.1:8080/v1/websocket"
			  : cfg.peer == RELAY_PEER_MOSQUITTO ? "127.0.0.1:1883"
							     : "127.0.0.1:4222";
	rc = bench__target_parse(cfg.url, &cfg.target, &why);
	if (rc != PARLEY_OK) {
		fprintf(stderr, "parley-bench: %s: %s\n", cfg.url, why);
		return 1;
	}
	if (bench__raise_nofile((uint64_t)cfg.conns * 4 + 64) != PARLEY_OK) {
		fprintf(stderr, "parley-bench: cannot raise the open-file limit\n");
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	t_start = (double)ts.tv_sec;
	snprintf(cfg.run_tag, sizeof(cfg.run_tag), "b%lx%lx", (unsigned long)getpid(), (unsigned long)t_start);
	cfg.progress = isatty(STDERR_FILENO);
	res = calloc(1, sizeof(*res));
	if (!res)
		return 1;
	c0 = bench__cpu_self();
	s0 = bench__cpu_of(server_pid);
	switch (cfg.peer) {
	case RELAY_PEER_PARLEY: rc = relay__engine_parley(&cfg, res); break;
	case RELAY_PEER_MOSQUITTO: rc = relay__engine_mqtt(&cfg, res); break;
	default: rc = relay__engine_nats(&cfg, res); break;
	}
	c1 = bench__cpu_self();
	s1 = bench__cpu_of(server_pid);
	if (rc == PARLEY_E_UNSUPPORTED) {
		fprintf(stderr, "parley-bench: built without the client library for peer %s\n", peer_name(cfg.peer));
		free(res);
		return 1;
	}
	if (rc != PARLEY_OK) {
		fprintf(stderr, "parley-bench: %s\n", parley_strerror(rc));
		free(res);
		return 1;
	}
	/* CPU over connect + send + drain: close enough to the send phase, which dominates. */
	if (res->send_s > 0) {
		double span = res->connect_s + res->send_s + res->drain_s;
		if (c0 >= 0 && c1 >= 0)
			ccpu = 100.0 * (c1 - c0) / span;
		if (s0 >= 0 && s1 >= 0)
			scpu = 100.0 * (s1 - s0) / span;
	}
	report(&cfg, res, ccpu, scpu, json);
	rc = (res->connected == cfg.conns && res->errors == 0 && res->lost == 0 && res->dups == 0 &&
	      res->unsettled == 0 && res->acked > 0) ? 0 : 2;
	free(res);
	return rc;
}
