/* `parley-bench relay`: options, engine choice and the report (text or one JSON object). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "bench.h"
#include "relay.h"
#include "wsload.h"

/* enum relay_peer order */
static const char *const peer_names[] = {"parley",        "mosquitto", "nats",        "nats-js",
					 "mosquitto-lib", "nats-lib",  "nats-js-lib", NULL};

static const char *peer_name(enum relay_peer p)
{
	return peer_names[p];
}

/* The client used more CPU than the server: the run measured the client as much as the server, and
 * its rates are a lower bound for the server. */
static int client_bound(double ccpu, double scpu)
{
	return ccpu >= 0 && scpu >= 0 && ccpu > scpu;
}

static void relay_usage(FILE *f)
{
	fputs("usage: parley-bench relay [options]\n"
	      "  --peer P           parley (default), mosquitto (MQTT 3.1.1 QoS 1), nats (core), nats-js\n"
	      "                     (JetStream): one client architecture for all (libuv loop threads, the\n"
	      "                     protocols spoken by parley-bench); mosquitto-lib, nats-lib, nats-js-lib:\n"
	      "                     the same through libmosquitto / nats.c, as a cross-check\n"
	      "  --url URL          parley: ws://HOST:PORT/PATH; brokers: HOST:PORT (loopback only)\n"
	      "                     parley: repeated or comma-separated, the nodes of one cluster; the\n"
	      "                     connections are placed round-robin over them\n"
	      "  --cross-node       parley, 2+ URLs: every sender's receiver is on another node (the\n"
	      "                     end-to-end latency is then the cross-node delivery latency)\n"
	      "  --connections N    connections (default 20)\n"
	      "  --senders M        the first M connections send (default N/2), each to one receiver\n"
	      "  --size BYTES       message content size (default 256, at least 40: header and MAC)\n"
	      "  --rate R           open loop: R messages/s over all senders\n"
	      "  --max              closed loop: as fast as acks come back (default)\n"
	      "  --window W         closed loop: messages awaiting ack per sender (default 16)\n"
	      "  --duration S       send for S seconds (default 5)\n"
	      "  --messages K       or: send K messages in total\n"
	      "  --max-time S       cap of a --messages run (default 300)\n"
	      "  --drain S          after sending: wait at most S for acks/deliveries (default 10;\n"
	      "                     verify: at most S for the receivers' queues)\n"
	      "  --threads T        client loop threads (default 1; not for the *-lib peers)\n"
	      "  --idle N           parley: hold N more WebSocket connections open, idle, during the run\n"
	      "                     (shows whether delivery cost depends on the connections a loop holds)\n"
	      "  --ack-batch B      parley, nats-js: a receiver acks once per read and at least every B\n"
	      "                     deliveries (default 32, at most 100; MQTT acks each message)\n"
	      "  --server-pid PID   also report that process's CPU use during the run (several nodes:\n"
	      "                     repeated or comma-separated, one per URL, in the same order)\n"
	      "  --hold             parley: no messages; every connection registers, uploads keys and\n"
	      "                     stays idle for --duration or until SIGINT/SIGTERM (idle-connection\n"
	      "                     cost of the servers; exit 0 when none was lost)\n"
	      "  --before-send CMD  run /bin/sh -c CMD once every connection is ready, before sending\n"
	      "                     (e.g. reset a database's statistics); the run fails if it fails\n"
	      "  --ready-file F     write \"ready N\" to F once every connection is ready\n"
	      "  --connect-timeout S  connect and set-up phase limit (default 60)\n"
	      "  --connect-batch N  connections being set up at once per loop thread (default 0: all)\n"
	      "  --json             one JSON object on stdout instead of text\n"
	      "Restart check (parley peer; see docs/benchmarks.md):\n"
	      "  --phase send       register, take the receivers offline, send; write --state\n"
	      "  --phase verify     log the receivers in and check every acked message of --state\n"
	      "                     arrived once, intact (the workload comes from the state file)\n"
	      "  --state FILE       the state file the two phases share\n"
	      "  --crash-after K    send phase: SIGKILL --server-pid once K messages are acked\n",
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

static const char *const phase_names[] = {"run", "send", "verify", NULL}; /* enum relay_phase order */

/* Keys shared by every JSON report (after "command" and "peer"). */
static void json_common(const relay_cfg *cfg, const relay_result *r)
{
	printf(",\"phase\":\"%s\",\"url\":", phase_names[cfg->phase]);
	bench__json_str(stdout, cfg->url);
	printf(",\"connections\":%u,\"senders\":%u,\"size\":%zu,\"connected\":%llu,\"connect_failed\":%llu,"
	       "\"connect_s\":%.3f,\"sent\":%llu,\"acked\":%llu,\"delivered\":%llu,\"errors\":%llu,\"duplicates\":%llu,"
	       "\"lost\":%llu,\"unsettled\":%llu,\"extra\":%llu,\"corrupt\":%llu,\"foreign\":%llu,\"conns_lost\":%llu",
	       cfg->conns, cfg->senders, cfg->size, (unsigned long long)r->connected,
	       (unsigned long long)r->connect_failed, r->connect_s, (unsigned long long)r->sent,
	       (unsigned long long)r->acked, (unsigned long long)r->delivered, (unsigned long long)r->errors,
	       (unsigned long long)r->dups, (unsigned long long)r->lost, (unsigned long long)r->unsettled,
	       (unsigned long long)r->extra, (unsigned long long)r->corrupt, (unsigned long long)r->foreign,
	       (unsigned long long)r->conns_lost);
	if (cfg->state_path) {
		printf(",\"state\":");
		bench__json_str(stdout, cfg->state_path);
	}
}

/* Several nodes: where the connections went (relay__node_of) and, with one --server-pid per node, each
 * node's CPU. Only printed then: a single-URL run's output is what it always was. */
static void nodes_json(const relay_cfg *cfg, const double *node_cpu)
{
	unsigned k, c, n, snd, rcv;

	if (cfg->hold)
		printf(",\"hold\":true");
	if (cfg->nnodes < 2)
		return;
	printf(",\"cross_node\":%s,\"nodes\":[", cfg->cross_node ? "true" : "false");
	for (k = 0; k < cfg->nnodes; k++) {
		for (n = snd = rcv = 0, c = 0; c < cfg->conns; c++) {
			if (relay__node_of(cfg, c) != k)
				continue;
			n++;
			snd += (unsigned)relay__is_sender(cfg, c);
			rcv += (unsigned)relay__is_receiver(cfg, c);
		}
		printf("%s{\"url\":", k ? "," : "");
		bench__json_str(stdout, cfg->node_url[k]);
		printf(",\"connections\":%u,\"senders\":%u,\"receivers\":%u", n, snd, rcv);
		if (node_cpu != NULL)
			printf(",\"server_cpu_pct\":%.0f", node_cpu[k]);
		printf("}");
	}
	for (n = 0, c = 0; c < cfg->senders; c++)
		n += relay__node_of(cfg, c) != relay__node_of(cfg, relay__receiver_of(cfg, c));
	printf("],\"cross_node_pairs\":%u", n);
}

static void nodes_text(const relay_cfg *cfg, const double *node_cpu)
{
	unsigned k, c, n;

	for (k = 0; k < cfg->nnodes && cfg->nnodes > 1; k++) {
		for (n = 0, c = 0; c < cfg->conns; c++)
			n += relay__node_of(cfg, c) == k;
		printf("node %-7u %s: %u connections", k, cfg->node_url[k], n);
		if (node_cpu != NULL)
			printf(", server cpu %.0f %%", node_cpu[k]);
		printf("\n");
	}
	if (cfg->cross_node)
		printf("placement    cross-node: every sender's receiver is on another node\n");
}

static void report(const relay_cfg *cfg, const relay_result *r, double ccpu, double scpu, const double *node_cpu,
		   int json)
{
	/* over the send phase as it really went (it ends early when every sender lost its connection) */
	double ack_rate = r->send_s > 0 ? (double)r->acked_at_stop / r->send_s : 0;
	double del_rate = r->send_s > 0 ? (double)r->delivered_at_stop / r->send_s : 0;

	if (json) {
		printf("{\"command\":\"relay\",\"peer\":\"%s\"", peer_name(cfg->peer));
		json_common(cfg, r);
		printf(",\"idle\":%u", cfg->idle);
		printf(",\"rate\":%.1f,\"window\":%u,\"send_s\":%.3f,\"planned_s\":%.3f,\"drain_s\":%.3f,"
		       "\"acked_per_s\":%.1f,\"delivered_per_s\":%.1f,\"skipped\":%llu,\"client_cpu_pct\":%.0f,"
		       "\"server_cpu_pct\":%.0f,\"client_bound\":%s,\"threads\":%u,\"ack_batch\":%u,"
		       "\"state_saved\":%s,\"stop_reason\":",
		       cfg->rate, cfg->window, r->send_s, r->planned_s, r->drain_s, ack_rate, del_rate,
		       (unsigned long long)r->skipped, ccpu, scpu, client_bound(ccpu, scpu) ? "true" : "false",
		       cfg->threads, cfg->ack_batch, r->state_saved ? "true" : "false");
		bench__json_str(stdout, r->stop_reason ? r->stop_reason : "");
		nodes_json(cfg, node_cpu);
		print_lat_json("ack_us", &r->ack_lat);
		print_lat_json("e2e_us", &r->e2e);
		printf(",\"first_error\":");
		bench__json_str(stdout, r->first_error);
		printf("}\n");
		return;
	}
	printf("peer         %s at %s%s\n", peer_name(cfg->peer), cfg->url, cfg->nnodes > 1 ? " and more" : "");
	nodes_text(cfg, node_cpu);
	printf("workload     %u connections, %u senders, %zu bytes, %s", cfg->conns, cfg->senders, cfg->size,
	       cfg->hold ? "held idle" : cfg->rate > 0 ? "open loop at " : "closed loop, window ");
	if (cfg->hold)
		printf("\n");
	else if (cfg->rate > 0)
		printf("%.0f msg/s\n", cfg->rate);
	else
		printf("%u per sender\n", cfg->window);
	printf("connections  %llu established, %llu failed, in %.2f s", (unsigned long long)r->connected,
	       (unsigned long long)r->connect_failed, r->connect_s);
	if (cfg->idle)
		printf(" (and %u idle ones held open)", cfg->idle);
	printf("\n");
	printf("throughput   %.0f acked/s, %.0f delivered/s over %.2f s of sending\n", ack_rate, del_rate, r->send_s);
	if (r->stop_reason)
		printf("stopped      early, after %.2f s of %.2f s planned: %s\n", r->send_s, r->planned_s, r->stop_reason);
	printf("messages     %llu sent, %llu acked, %llu delivered (drain %.2f s)\n", (unsigned long long)r->sent,
	       (unsigned long long)r->acked, (unsigned long long)r->delivered, r->drain_s);
	if (cfg->phase == RELAY_PHASE_SEND)
		printf("checks       %llu sent but not acked, %llu errors; receivers offline: deliveries are checked by "
		       "--phase verify\n",
		       (unsigned long long)r->unsettled, (unsigned long long)r->errors);
	else
		printf("checks       %llu lost (acked, never delivered), %llu duplicates, %llu corrupted or misrouted, "
		       "%llu unsettled, %llu errors, %llu skipped (backlog full)\n",
		       (unsigned long long)r->lost, (unsigned long long)r->dups, (unsigned long long)r->corrupt,
		       (unsigned long long)r->unsettled, (unsigned long long)r->errors, (unsigned long long)r->skipped);
	if (r->conns_lost)
		printf("lost conns   %llu connections ended before the stop\n", (unsigned long long)r->conns_lost);
	print_lat_text("ack us", &r->ack_lat);
	print_lat_text("e2e us", &r->e2e);
	if (ccpu >= 0) {
		printf("cpu          server ");
		if (scpu >= 0)
			printf("%.0f %%", scpu);
		else
			printf("? (no --server-pid)");
		printf(", client %.0f %% of one core%s\n", ccpu,
		       client_bound(ccpu, scpu) ? "  CLIENT-BOUND: the client used more CPU than the server" : "");
	}
	if (cfg->phase == RELAY_PHASE_SEND)
		printf("state        %s%s\n", cfg->state_path, r->state_saved ? "" : " NOT written");
	if (r->first_error[0])
		printf("first error  %s\n", r->first_error);
}

static int verify_ok(const relay_result *r, unsigned receivers)
{
	return r->connected == receivers && r->lost == 0 && r->dups == 0 && r->corrupt == 0 && r->foreign == 0 &&
	       r->errors == 0 && r->conns_lost == 0 && r->incomplete == 0;
}

static void report_verify(const relay_cfg *cfg, const relay_result *r, int json)
{
	unsigned receivers = cfg->conns - cfg->senders;
	int ok = verify_ok(r, receivers);

	if (json) {
		printf("{\"command\":\"relay\",\"peer\":\"parley\"");
		json_common(cfg, r);
		printf(",\"verify_s\":%.3f,\"incomplete\":%llu,\"ok\":%s", r->drain_s, (unsigned long long)r->incomplete,
		       ok ? "true" : "false");
		if (r->lost)
			printf(",\"first_missing\":{\"sender\":%llu,\"seq\":%llu}", (unsigned long long)r->first_lost_sender,
			       (unsigned long long)r->first_lost_seq);
		printf(",\"first_error\":");
		bench__json_str(stdout, r->first_error);
		printf("}\n");
		return;
	}
	printf("verify       %s, state %s (run %s)\n", cfg->url, cfg->state_path, cfg->run_tag);
	printf("receivers    %llu of %u logged in, in %.2f s; queues read in %.2f s%s\n",
	       (unsigned long long)r->connected, receivers, r->connect_s, r->drain_s,
	       r->incomplete ? " (some did not finish)" : "");
	printf("messages     %llu sent, %llu acked before the stop, %llu delivered now\n", (unsigned long long)r->sent,
	       (unsigned long long)r->acked, (unsigned long long)r->delivered);
	printf("checks       %llu missing (acked, not delivered), %llu duplicates, %llu corrupted or misrouted, "
	       "%llu errors\n",
	       (unsigned long long)r->lost, (unsigned long long)r->dups, (unsigned long long)r->corrupt,
	       (unsigned long long)(r->errors + r->foreign));
	printf("unacked      %llu delivered although never acked, %llu neither acked nor delivered (both fine)\n",
	       (unsigned long long)r->extra, (unsigned long long)r->unsettled);
	if (r->lost)
		printf("missing      first: sender %llu, sequence number %llu\n", (unsigned long long)r->first_lost_sender,
		       (unsigned long long)r->first_lost_seq);
	if (r->first_error[0])
		printf("first error  %s\n", r->first_error);
	printf("result       %s\n", ok ? "OK: every acked message was delivered exactly once, intact"
				       : "FAILED: see the checks above");
}

/* The phases' own rules; loads the state for verify. Returns 0 or prints why not and returns 1. */
static int setup_phase(relay_cfg *cfg, relay_state *st, int workload_given)
{
	char why[300];

	if (cfg->phase == RELAY_PHASE_RUN) {
		if (cfg->state_path || cfg->crash_after) {
			fprintf(stderr, "parley-bench: --state and --crash-after belong to --phase send|verify\n");
			return 1;
		}
		return 0;
	}
	if (cfg->peer != RELAY_PEER_PARLEY || !cfg->state_path) {
		fprintf(stderr, "parley-bench: --phase needs --peer parley and --state FILE\n");
		return 1;
	}
	if (cfg->crash_after && (cfg->phase != RELAY_PHASE_SEND || cfg->server_pid <= 0)) {
		fprintf(stderr, "parley-bench: --crash-after needs --phase send and --server-pid\n");
		return 1;
	}
	if (cfg->phase == RELAY_PHASE_SEND) {
		if (cfg->senders >= cfg->conns) {
			fprintf(stderr, "parley-bench: --phase send needs fewer senders than connections\n");
			return 1;
		}
		return 0;
	}
	if (workload_given) {
		fprintf(stderr, "parley-bench: --phase verify takes the workload from the state file\n");
		return 1;
	}
	if (relay__state_load(cfg->state_path, st, why, sizeof(why)) != PARLEY_OK) {
		fprintf(stderr, "parley-bench: %s\n", why);
		return 1;
	}
	memcpy(cfg->run_tag, st->run_tag, sizeof(cfg->run_tag));
	memcpy(cfg->key, st->key, sizeof(cfg->key));
	cfg->conns = st->conns;
	cfg->senders = st->senders;
	cfg->size = st->size;
	cfg->state = st;
	return 0;
}

static int exit_status(const relay_cfg *cfg, const relay_result *r)
{
	if (cfg->phase == RELAY_PHASE_VERIFY)
		return verify_ok(r, cfg->conns - cfg->senders) ? 0 : 2;
	if (cfg->hold) /* the end is the duration or a signal; what counts is that every connection stayed */
		return r->connected == cfg->conns && r->errors == 0 && r->conns_lost == 0 && r->first_error[0] == '\0'
			       ? 0
			       : 2;
	if (cfg->phase == RELAY_PHASE_SEND) /* lost connections are the point of a crash */
		return r->state_saved && r->connected == cfg->conns && r->errors == 0 && r->acked > 0 ? 0 : 2;
	return r->connected == cfg->conns && r->errors == 0 && r->lost == 0 && r->dups == 0 && r->unsettled == 0 &&
			       r->corrupt == 0 && r->foreign == 0 && r->conns_lost == 0 && r->acked > 0
		       ? 0
		       : 2;
}

/* The idle connections: upgraded WebSockets that send nothing, on their own client thread. */
static int open_idle(const relay_cfg *rc, bench_run **out)
{
	bench_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.target = rc->target;
	cfg.clients = rc->idle;
	cfg.threads = 1;
	cfg.connect_batch = 64;
	cfg.connect_timeout_s = 60;
	int rc2 = bench_ws__open(&cfg, out);
	if (rc2 == PARLEY_OK && bench_ws__connected(*out) != rc->idle) {
		bench_ws__close(*out, NULL);
		return PARLEY_E_CONNECT;
	}
	return rc2;
}

/* The CPU seconds of every --server-pid summed (-1 if one is unreadable), each into each[]. */
static double servers_cpu(const long *pid, unsigned n, double *each)
{
	double sum = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		each[i] = bench__cpu_of(pid[i]);
		if (each[i] < 0)
			sum = -1;
		else if (sum >= 0)
			sum += each[i];
	}
	return n ? sum : bench__cpu_of(0);
}

/* The nodes (--url, --server-pid lists) and the modes that depend on them; 0, or 1 after saying why. */
static int setup_nodes(relay_cfg *cfg, const bench_list *urls, const bench_list *pids, long *pid, int senders_given)
{
	const char *why;
	uint64_t v;
	unsigned i;

	cfg->nnodes = urls->n ? urls->n : 1;
	if (urls->n)
		cfg->url = urls->v[0];
	else
		cfg->url = cfg->peer == RELAY_PEER_PARLEY ? "ws://127.0.0.1:8080/v1/websocket"
			   : cfg->peer == RELAY_PEER_MOSQUITTO || cfg->peer == RELAY_PEER_MOSQUITTO_LIB ? "127.0.0.1:1883"
												      : "127.0.0.1:4222";
	if (cfg->nnodes > 1 && cfg->peer != RELAY_PEER_PARLEY) {
		fprintf(stderr, "parley-bench: several --url are for the parley peer (nodes of one cluster)\n");
		return 1;
	}
	for (i = 0; i < cfg->nnodes; i++) {
		cfg->node_url[i] = urls->n ? urls->v[i] : cfg->url;
		if (bench__target_parse(cfg->node_url[i], &cfg->node[i], &why) != PARLEY_OK) {
			fprintf(stderr, "parley-bench: %s: %s\n", cfg->node_url[i], why);
			return 1;
		}
	}
	cfg->target = cfg->node[0];
	if (pids->n > 1 && pids->n != cfg->nnodes) {
		fprintf(stderr, "parley-bench: give one --server-pid per --url (%u URLs, %u pids)\n", cfg->nnodes, pids->n);
		return 1;
	}
	for (i = 0; i < pids->n; i++) {
		if (bench__parse_u64(pids->v[i], 1, 1u << 22, &v) != PARLEY_OK) {
			fprintf(stderr, "parley-bench: bad value '%s' for --server-pid\n", pids->v[i]);
			return 1;
		}
		pid[i] = (long)v;
	}
	cfg->server_pid = pids->n ? pid[0] : 0;
	if (cfg->hold && (cfg->peer != RELAY_PEER_PARLEY || cfg->phase != RELAY_PHASE_RUN || senders_given)) {
		fprintf(stderr, "parley-bench: --hold is for the parley peer, without --phase or --senders\n");
		return 1;
	}
	if (cfg->hold) {
		cfg->senders = 0;
		cfg->rate = 0;
	}
	if (cfg->cross_node && !relay__placement_ok(cfg)) {
		fprintf(stderr, "parley-bench: --cross-node needs 2+ URLs and senders whose receivers can be placed on "
				"other nodes (every connection sending: connections a multiple of the URLs)\n");
		return 1;
	}
	return 0;
}

int bench__cmd_relay(int argc, char **argv)
{
	relay_cfg cfg;
	relay_state st;
	relay_result *res;
	const char *why;
	int json = 0, rc, help, closed_loop = 0, peer = RELAY_PEER_PARLEY, phase = RELAY_PHASE_RUN;
	int senders_given = 0, workload_given = 0;
	double c0, s0, c1, s1, ccpu = -1, scpu = -1, t_start;
	double n0[RELAY_MAX_NODES], n1[RELAY_MAX_NODES], node_cpu[RELAY_MAX_NODES];
	long pid[RELAY_MAX_NODES];
	static bench_list urls, pids; /* static: 2 kB each, and parsed once per process */
	struct timespec ts;
	const bench_opt opts[] = {
		{"url", BOPT_LIST, &urls, 0, 0, NULL, NULL},
		{"cross-node", BOPT_FLAG, &cfg.cross_node, 0, 0, NULL, NULL},
		{"hold", BOPT_FLAG, &cfg.hold, 0, 0, NULL, NULL},
		{"before-send", BOPT_STR, &cfg.before_send, 0, 0, NULL, NULL},
		{"ready-file", BOPT_STR, &cfg.ready_file, 0, 0, NULL, NULL},
		{"connect-timeout", BOPT_SECONDS, &cfg.connect_timeout_s, 1, 3600, NULL, NULL},
		{"connect-batch", BOPT_UINT, &cfg.connect_batch, 0, 20000, NULL, NULL},
		{"connections", BOPT_UINT, &cfg.conns, 2, 20000, NULL, &workload_given},
		{"senders", BOPT_UINT, &cfg.senders, 1, 20000, NULL, &senders_given},
		{"size", BOPT_SIZE, &cfg.size, RELAY_MIN_SIZE, RELAY_MAX_SIZE, NULL, &workload_given},
		{"rate", BOPT_SECONDS, &cfg.rate, 1, 10000000, NULL, NULL},
		{"max", BOPT_FLAG, &closed_loop, 0, 0, NULL, NULL},
		{"window", BOPT_UINT, &cfg.window, 1, 65000, NULL, NULL},
		{"duration", BOPT_SECONDS, &cfg.duration_s, 0.1, 3600, NULL, NULL},
		{"messages", BOPT_U64, &cfg.messages, 1, (double)(UINT64_C(1) << 32), NULL, NULL},
		{"max-time", BOPT_SECONDS, &cfg.max_time_s, 0.1, 3600, NULL, NULL},
		{"drain", BOPT_SECONDS, &cfg.drain_s, 0, 600, NULL, NULL},
		{"threads", BOPT_UINT, &cfg.threads, 1, 64, NULL, NULL},
		{"ack-batch", BOPT_UINT, &cfg.ack_batch, 1, 100, NULL, NULL}, /* parleyd takes 1..100 ids */
		{"idle", BOPT_UINT, &cfg.idle, 0, 15000, NULL, NULL},
		{"peer", BOPT_CHOICE, &peer, 0, 0, peer_names, NULL},
		{"server-pid", BOPT_LIST, &pids, 0, 0, NULL, NULL},
		{"phase", BOPT_CHOICE, &phase, 0, 0, phase_names, NULL},
		{"state", BOPT_STR, &cfg.state_path, 0, 0, NULL, NULL},
		{"crash-after", BOPT_U64, &cfg.crash_after, 1, (double)(UINT64_C(1) << 32), NULL, NULL},
		{"json", BOPT_FLAG, &json, 0, 0, NULL, NULL},
		{NULL, 0, NULL, 0, 0, NULL, NULL}};

	memset(&cfg, 0, sizeof(cfg));
	memset(&st, 0, sizeof(st));
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
	rc = bench__parse_opts(argc, argv, opts, 0, &help);
	if (help) {
		relay_usage(stdout);
		return 0;
	}
	if (rc != argc) {
		relay_usage(stderr);
		return 1;
	}
	cfg.peer = (enum relay_peer)peer;
	cfg.phase = (enum relay_phase)phase;
	if (closed_loop)
		cfg.rate = 0;
	if (!senders_given)
		cfg.senders = cfg.conns / 2;
	if (cfg.senders > cfg.conns) {
		fprintf(stderr, "parley-bench: --senders is at most --connections\n");
		return 1;
	}
	/* every body carries a MAC under a fresh key (verify: the send phase's, from its state file) */
	randombytes_buf(cfg.key, sizeof(cfg.key));
	if (setup_nodes(&cfg, &urls, &pids, pid, senders_given) != 0 ||
	    setup_phase(&cfg, &st, workload_given || senders_given) != 0) {
		relay__state_free(&st);
		return 1;
	}
	if (cfg.idle && cfg.peer != RELAY_PEER_PARLEY) {
		fprintf(stderr, "parley-bench: --idle is for the parley peer\n");
		return 1;
	}
	/* parley: one socket per connection; the other engines' libraries may use more */
	rc = PARLEY_OK;
	if (bench__raise_nofile((uint64_t)cfg.conns * (cfg.peer == RELAY_PEER_PARLEY ? 1 : 4) + cfg.idle + 64) !=
	    PARLEY_OK) {
		why = "cannot raise the open-file limit";
		rc = PARLEY_E_PERM;
	}
	res = rc == PARLEY_OK ? calloc(1, sizeof(*res)) : NULL;
	if (res == NULL) {
		fprintf(stderr, "parley-bench: %s: %s\n", cfg.url, rc != PARLEY_OK ? why : "out of memory");
		relay__state_free(&st);
		return 1;
	}
	if (cfg.phase != RELAY_PHASE_VERIFY) {
		clock_gettime(CLOCK_REALTIME, &ts);
		t_start = (double)ts.tv_sec;
		snprintf(cfg.run_tag, sizeof(cfg.run_tag), "b%lx%lx", (unsigned long)getpid(), (unsigned long)t_start);
	}
	cfg.progress = isatty(STDERR_FILENO);
	relay__catch_interrupts();
	bench_run *idle = NULL;
	if (cfg.idle && open_idle(&cfg, &idle) != PARLEY_OK) {
		fprintf(stderr, "parley-bench: could not hold %u idle connections open\n", cfg.idle);
		relay__state_free(&st);
		free(res);
		return 1;
	}
	c0 = bench__cpu_self();
	s0 = servers_cpu(pid, pids.n, n0);
	switch (cfg.peer) {
	case RELAY_PEER_PARLEY: rc = relay__engine_parley(&cfg, res); break;
	case RELAY_PEER_MOSQUITTO: rc = relay__engine_mqtt(&cfg, res); break;
	case RELAY_PEER_NATS:
	case RELAY_PEER_NATS_JS: rc = relay__engine_nats(&cfg, res); break;
	case RELAY_PEER_MOSQUITTO_LIB: rc = relay__engine_mqtt_lib(&cfg, res); break;
	default: rc = relay__engine_nats_lib(&cfg, res); break;
	}
	c1 = bench__cpu_self();
	s1 = servers_cpu(pid, pids.n, n1);
	if (idle != NULL)
		bench_ws__close(idle, NULL);
	relay__state_free(&st);
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
	if (cfg.phase == RELAY_PHASE_VERIFY) {
		report_verify(&cfg, res, json);
	} else {
		/* CPU over connect + send + drain: close enough to the send phase, which dominates. */
		if (res->send_s > 0) {
			double span = res->connect_s + res->send_s + res->drain_s;
			if (c0 >= 0 && c1 >= 0)
				ccpu = 100.0 * (c1 - c0) / span;
			if (s0 >= 0 && s1 >= 0)
				scpu = 100.0 * (s1 - s0) / span;
			for (unsigned k = 0; k < pids.n; k++)
				node_cpu[k] = n0[k] >= 0 && n1[k] >= 0 ? 100.0 * (n1[k] - n0[k]) / span : -1;
		}
		report(&cfg, res, ccpu, scpu, pids.n > 1 && res->send_s > 0 ? node_cpu : NULL, json);
	}
	rc = exit_status(&cfg, res);
	free(res);
	return rc;
}
