/*
 * Engine benchmarks, each measured side by side in one run:
 *  - send+receive pairs per second on the voucher path, the legacy path and
 *    the same object model with importance off (a port that takes no
 *    donations), with a boost edge on every message and without;
 *  - bytes allocated per task, port, message, inherit and voucher;
 *  - cost of a donor going to the background and back against the number
 *    of messages and inherits it feeds (10 .. 1,000,000) and the depth of a
 *    voucher chain (1 .. 1,000), with the fitted exponent.
 * Prints a markdown report on stdout and writes gnuplot data to DIR.
 *
 *   bench-engine [--quick] DIR
 *   bench-engine --one voucher|legacy|off N   one path, receiver already
 *       boosted, N pairs: for a profiler (make bench counts its
 *       instructions with callgrind)
 *   bench-engine --flip messages|inherits|chain N   set up, then one flip
 *       (flip_once), for callgrind's --toggle-collect=flip_once
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "importance/importance.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t bytes;

static void *count_alloc(size_t size, void *ctx)
{
	(void)ctx;
	bytes += size;
	return malloc(size);
}

static void count_free(void *p, void *ctx)
{
	(void)ctx;
	free(p);
}

static const imp_allocator counting = { count_alloc, count_free, NULL };

static void noop_policy(const imp_policy_event *ev, void *ctx)
{
	(void)ev;
	(void)ctx;
}

static bool with_callback;

static imp_domain *domain(void)
{
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;
	imp_domain *d;

	cfg.allocator = &counting;
	if (with_callback)
		cfg.policy = noop_policy;
	if (imp_domain_new(&cfg, &d) < 0)
		exit(1);
	return d;
}

static imp_task *task(imp_domain *d, int pid, unsigned flags)
{
	imp_task *t;

	if (imp_task_create(d, pid, flags, &t) < 0)
		exit(1);
	return t;
}

static imp_port *port(imp_task *owner, bool donate)
{
	imp_port *p;

	if (imp_port_create(owner, donate, &p) < 0)
		exit(1);
	return p;
}

/* ---- pairs per second ---- */

enum path { PATH_VOUCHER, PATH_LEGACY, PATH_OFF };

/* Seconds per send+receive pair.  `steady`: the receiver is boosted all
 * along (no edge per message); otherwise every message boosts and
 * unboosts it. */
static double pair_cost(enum path path, bool steady, long n)
{
	imp_domain *d = domain();
	imp_task *s = task(d, 1, IMP_TASK_DONOR), *r = task(d, 2, IMP_TASK_RECEIVER);
	imp_port *p = port(r, path != PATH_OFF);
	double t0, t;

	if (steady)
		imp_task_hold_assertion(r, 1);
	t0 = now();
	for (long i = 0; i < n; i++) {
		imp_msg *m;
		imp_voucher *v = NULL;

		imp_msg_send(s, p, NULL, 0, &m);
		if (path == PATH_LEGACY) {
			imp_msg_receive(m, 0, NULL);
			imp_task_drop_legacy_assertion(r, 1);
		} else {
			imp_msg_receive(m, IMP_RECV_VOUCHER, &v);
			imp_voucher_release(v);
		}
		imp_msg_unref(m);
	}
	t = (now() - t0) / (double)n;
	imp_domain_free(d);
	return t;
}

/* ---- the pairs table: contenders alternated ---- */

struct contender {
	const char *path, *receiver;
	enum path kind;
	bool steady, callback;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v and returns its median. */
static double sorted_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Every contender runs once per round, the order rotated from round to
 * round, so that a slow stretch of the machine hits all of them alike.
 * Each contender's ratio is taken against importance off in the same
 * round; the table shows the medians and the spread over the rounds.
 */
static void pairs_report(long pairs, bool quick)
{
	static const struct contender cs[] = {
		{ "importance off", "-", PATH_OFF, false, false },
		{ "voucher", "already boosted", PATH_VOUCHER, true, false },
		{ "voucher", "boost+unboost per message", PATH_VOUCHER, false, false },
		{ "legacy", "already boosted", PATH_LEGACY, true, false },
		{ "legacy", "boost+unboost per message", PATH_LEGACY, false, false },
		{ "voucher", "boost+unboost per message, with a policy callback", PATH_VOUCHER, false, true },
	};
	enum { N = sizeof(cs) / sizeof(cs[0]), ROUNDS_MAX = 15 };
	int rounds = quick ? 5 : ROUNDS_MAX;
	double t[N][ROUNDS_MAX], ratio[N][ROUNDS_MAX];

	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < N; k++) {
			int c = (k + r) % N;

			with_callback = cs[c].callback;
			t[c][r] = pair_cost(cs[c].kind, cs[c].steady, pairs);
		}
	with_callback = false;
	for (int r = 0; r < rounds; r++)
		for (int c = 0; c < N; c++)
			ratio[c][r] = t[c][r] / t[0][r];
	printf("### Send + receive pairs\n\n");
	printf("%ld pairs per run; %d rounds, each running every contender once in a rotated order, all in "
	       "this process. Median over the rounds, and the spread (lowest - highest); ratios are taken "
	       "within each round.\n\n", pairs, rounds);
	printf("| path | receiver | ns per pair | spread | pairs/s | ratio to importance off | spread |\n"
	       "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
	for (int c = 0; c < N; c++) {
		double med = sorted_median(t[c], rounds), rmed = sorted_median(ratio[c], rounds);

		printf("| %s | %s | %.0f | %.0f - %.0f | %.2fM | %.2f | %.2f - %.2f |\n", cs[c].path, cs[c].receiver,
		       med * 1e9, t[c][0] * 1e9, t[c][rounds - 1] * 1e9, 1e-6 / med, rmed, ratio[c][0],
		       ratio[c][rounds - 1]);
	}
}

/* ---- memory ---- */

static void memory_report(void)
{
	enum { N = 10000 };
	imp_domain *d = domain();
	imp_task *don = task(d, 1, IMP_TASK_DONOR), **ts = malloc(sizeof(*ts) * N);
	imp_port **ps = malloc(sizeof(*ps) * N);
	imp_msg **ms = malloc(sizeof(*ms) * N);
	imp_voucher **vs = malloc(sizeof(*vs) * N);
	size_t before;
	double per_task, per_port, per_msg, per_recv, per_voucher;

	before = bytes;
	for (int i = 0; i < N; i++)
		ts[i] = task(d, 10 + i, IMP_TASK_RECEIVER);
	per_task = (double)(bytes - before) / N;
	before = bytes;
	for (int i = 0; i < N; i++)
		ps[i] = port(ts[i], true);
	per_port = (double)(bytes - before) / N;
	before = bytes;
	for (int i = 0; i < N; i++)
		imp_msg_send(don, ps[i], NULL, 0, &ms[i]);
	per_msg = (double)(bytes - before) / N;
	before = bytes;
	for (int i = 0; i < N; i++)
		imp_msg_receive(ms[i], IMP_RECV_VOUCHER, &vs[i]);
	/* each receive makes one inherit and its voucher object */
	per_recv = (double)(bytes - before) / N;
	before = bytes;
	for (int i = 0; i < N; i++) {
		imp_voucher *v;

		imp_voucher_self(ts[i], &v);
		imp_voucher_release(v);
	}
	per_voucher = (double)(bytes - before) / N;
	printf("| object | bytes |\n| --- | ---: |\n");
	printf("| task (handle + importance element) | %.0f |\n", per_task);
	printf("| port | %.0f |\n", per_port);
	printf("| message | %.0f |\n", per_msg);
	printf("| inherit + its voucher object (one voucher receive) | %.0f |\n", per_recv);
	printf("| voucher object alone (`imp_voucher_self`: it lives in its value) | %.0f |\n\n", per_voucher);
	imp_domain_free(d);
	free(ts);
	free(ps);
	free(ms);
	free(vs);
}

/* ---- propagation ---- */

/* The donor goes to the background and back.  Not inlined, so that
 * callgrind can count the instructions in it alone (--toggle-collect). */
static __attribute__((noinline)) void flip_once(imp_task *don)
{
	imp_task_set_live_donor(don, false);
	imp_task_set_live_donor(don, true);
}

/* Time for the donor to go to the background and back, with n queued
 * messages (kind 0), n inherits (kind 1) or a chain of depth n (kind 2);
 * reps 0: flip once, untimed (for callgrind). */
static double flip_cost(int kind, long n, int reps)
{
	imp_domain *d = domain();
	imp_task *don = task(d, 1, IMP_TASK_DONOR | IMP_TASK_LIVE_DONOR);
	imp_msg **ms = calloc((size_t)n + 1, sizeof(*ms));
	imp_voucher **vs = calloc((size_t)n + 1, sizeof(*vs));
	double t0, best = 1e30;

	if (kind == 0) {
		imp_task *r = task(d, 2, IMP_TASK_RECEIVER);
		imp_port *p = port(r, true);

		for (long i = 0; i < n; i++)
			imp_msg_send(don, p, NULL, 0, &ms[i]);
	} else if (kind == 1) {
		for (long i = 0; i < n; i++) {
			imp_task *r = task(d, (int)(10 + i), IMP_TASK_RECEIVER);
			imp_port *p = port(r, true);

			imp_msg_send(don, p, NULL, 0, &ms[i]);
			imp_msg_receive(ms[i], IMP_RECV_VOUCHER, &vs[i]);
		}
	} else {
		imp_task *prev = don;
		imp_voucher *v = NULL;

		for (long i = 0; i < n; i++) {
			imp_task *r = task(d, (int)(10 + i), IMP_TASK_RECEIVER);
			imp_port *p = port(r, true);

			imp_msg_send(prev, p, v, 0, &ms[i]);
			imp_msg_receive(ms[i], IMP_RECV_VOUCHER, &vs[i]);
			v = vs[i];
			prev = r;
		}
	}
	if (reps == 0)
		flip_once(don);
	for (int rep = 0; rep < reps; rep++) {
		t0 = now();
		flip_once(don);
		if (now() - t0 < best)
			best = now() - t0;
	}
	imp_domain_free(d);
	free(ms);
	free(vs);
	return best;
}

/* Least-squares slope of log(t) against log(n). */
static double exponent(const long *n, const double *t, int k)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0;

	for (int i = 0; i < k; i++) {
		double x = log((double)n[i]), y = log(t[i]);

		sx += x;
		sy += y;
		sxx += x * x;
		sxy += x * y;
	}
	return (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && !strcmp(argv[1], "--quick");

	if (argc == 4 && !strcmp(argv[1], "--flip")) {
		static const char *const kinds_arg[] = { "messages", "inherits", "chain" };

		for (int k = 0; k < 3; k++)
			if (!strcmp(argv[2], kinds_arg[k]) && atol(argv[3]) > 0) {
				flip_cost(k, atol(argv[3]), 0);
				return 0;
			}
		fprintf(stderr, "usage: bench-engine --flip messages|inherits|chain N\n");
		return 2;
	}
	if (argc == 4 && !strcmp(argv[1], "--one")) {
		static const char *const names[] = { "voucher", "legacy", "off" };
		long n = atol(argv[3]);

		for (int p = PATH_VOUCHER; p <= PATH_OFF; p++)
			if (!strcmp(argv[2], names[p]) && n > 0) {
				printf("%.1f ns per pair\n", pair_cost((enum path)p, true, n) * 1e9);
				return 0;
			}
		fprintf(stderr, "usage: bench-engine --one voucher|legacy|off N\n");
		return 2;
	}
	const char *dir = argv[argc - 1];
	long pairs = quick ? 100000 : 1000000;
	static const char *const kinds[] = { "queued messages", "inherits", "chain depth" };
	long sizes[3][6] = { { 10, 100, 1000, 10000, 100000, 1000000 },
			     { 10, 100, 1000, 10000, 100000, 1000000 },
			     { 1, 10, 100, 1000, 0, 0 } };
	int counts[3] = { quick ? 5 : 6, quick ? 5 : 6, 4 };
	char path[512];
	FILE *dat;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-engine [--quick] DIR\n");
		return 2;
	}
	pairs_report(pairs, quick);
	printf("\n### Memory per object\n\n");
	memory_report();

	printf("### A donor going to the background and back\n\n");
	printf("| affected | n | time | per item |\n| --- | ---: | ---: | ---: |\n");
	snprintf(path, sizeof(path), "%s/propagation.dat", dir);
	dat = fopen(path, "w");
	for (int k = 0; k < 3; k++) {
		double t[6];

		if (dat)
			fprintf(dat, "# %s\n", kinds[k]);
		for (int i = 0; i < counts[k]; i++) {
			t[i] = flip_cost(k, sizes[k][i], 3);
			printf("| %s | %ld | %.3f ms | %.0f ns |\n", kinds[k], sizes[k][i], t[i] * 1e3,
			       t[i] * 1e9 / (double)sizes[k][i]);
			if (dat)
				fprintf(dat, "%ld %.9f\n", sizes[k][i], t[i]);
		}
		if (dat)
			fprintf(dat, "\n\n");
		printf("| **%s: fitted exponent** | | **%.2f** | |\n", kinds[k],
		       exponent(sizes[k], t, counts[k]));
	}
	if (dat)
		fclose(dat);
	printf("\n");
	return 0;
}
