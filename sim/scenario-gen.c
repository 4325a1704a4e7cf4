/*
 * A seedable generator of valid scenarios: it tracks what the scenario has
 * made (tasks and whether they exited, ports, queued messages, live voucher
 * names) and only emits operations that are valid in that state, weighted
 * towards the ones that move importance.  It ends by releasing every
 * voucher name, making every task exit and letting the delayed-drop call
 * run, so a correct engine ends with `stats tasks=0 inherits=0 vouchers=0`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario-gen.h"

/* A set of object numbers with O(1) add, remove and random pick. */
struct set {
	unsigned *items, *pos, n;
};

struct gen {
	FILE *out;
	uint64_t rng;
	unsigned cap;           /* object numbers available per kind */
	unsigned ntasks, nports, nmsgs, nvouchers, max_tasks;
	struct set tasks, ports, msgs, vouchers; /* active / active / queued / live */
	unsigned *port_owner, *msg_port;
};

static uint64_t next(struct gen *g)
{
	/* xorshift64*: fast, and the same sequence everywhere */
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 2685821657736338717ull;
}

static unsigned pick(struct gen *g, unsigned n)
{
	return (unsigned)(next(g) % n);
}

static bool set_init(struct set *s, unsigned cap)
{
	s->items = calloc(cap, sizeof(unsigned));
	s->pos = calloc(cap, sizeof(unsigned));
	s->n = 0;
	return s->items && s->pos;
}

static void set_free(struct set *s)
{
	free(s->items);
	free(s->pos);
}

static void set_add(struct set *s, unsigned x)
{
	s->pos[x] = s->n;
	s->items[s->n++] = x;
}

static void set_del(struct set *s, unsigned x)
{
	unsigned i = s->pos[x], last = s->items[--s->n];

	s->items[i] = last;
	s->pos[last] = i;
}

/* A random member, or -1. */
static int find(struct gen *g, struct set *s)
{
	return s->n ? (int)s->items[pick(g, s->n)] : -1;
}

static void op_task(struct gen *g)
{
	static const char *const kinds[] = { "", " receiver", " denap", " donor", " receiver",
					     " donor live_donor", " live_donor", " receiver donor" };
	unsigned t = g->ntasks++;

	fprintf(g->out, "task T%u%s\n", t, kinds[pick(g, 8)]);
	set_add(&g->tasks, t);
}

static void op_port(struct gen *g)
{
	int t = find(g, &g->tasks);
	unsigned p;

	if (t < 0 || g->nports >= g->cap)
		return;
	p = g->nports++;
	g->port_owner[p] = (unsigned)t;
	set_add(&g->ports, p);
	fprintf(g->out, "port P%u owner=T%d%s\n", p, t, pick(g, 5) ? " donate" : "");
}

static void op_send(struct gen *g)
{
	int t = find(g, &g->tasks);
	int p = find(g, &g->ports);
	int v = pick(g, 2) ? find(g, &g->vouchers) : -1;
	unsigned m, opt = pick(g, 10);

	if (t < 0 || p < 0 || g->nmsgs >= g->cap)
		return;
	m = g->nmsgs++;
	g->msg_port[m] = (unsigned)p;
	set_add(&g->msgs, m);
	fprintf(g->out, "send M%u from=T%d to=P%d", m, t, p);
	if (v >= 0)
		fprintf(g->out, " voucher=V%d", v);
	fprintf(g->out, "%s\n", opt == 0 ? " importance" : opt == 1 ? " noimportance" : "");
}

static int new_voucher(struct gen *g)
{
	if (g->nvouchers >= g->cap)
		return -1;
	set_add(&g->vouchers, g->nvouchers);
	return (int)g->nvouchers++;
}

static void op_receive(struct gen *g)
{
	int m = find(g, &g->msgs);
	int v;

	if (m < 0)
		return;
	set_del(&g->msgs, (unsigned)m);
	fprintf(g->out, "receive M%d", m);
	if (pick(g, 3) && (v = new_voucher(g)) >= 0)
		fprintf(g->out, " voucher=V%d", v);
	fprintf(g->out, "%s\n", pick(g, 10) ? "" : " fail");
}

static void op_destroy(struct gen *g)
{
	int m = find(g, &g->msgs);

	if (m < 0)
		return;
	set_del(&g->msgs, (unsigned)m);
	fprintf(g->out, "destroy M%d\n", m);
}

static void op_voucher(struct gen *g)
{
	int v, w;

	if (pick(g, 2)) {
		int t = find(g, &g->tasks);

		if (t < 0 || (v = new_voucher(g)) < 0)
			return;
		fprintf(g->out, "voucher V%d self T%d\n", v, t);
	} else {
		w = find(g, &g->vouchers);
		if (w < 0 || (v = new_voucher(g)) < 0)
			return;
		fprintf(g->out, "voucher V%d redeem V%d\n", v, w);
	}
}

static void op_release(struct gen *g)
{
	int v = find(g, &g->vouchers);

	if (v < 0)
		return;
	set_del(&g->vouchers, (unsigned)v);
	fprintf(g->out, "release V%d\n", v);
}

static void op_voucher_use(struct gen *g)
{
	int v = find(g, &g->vouchers);

	if (v < 0)
		return;
	if (pick(g, 3))
		fprintf(g->out, "voucher_drop V%d %u\n", v, pick(g, 3));
	else
		fprintf(g->out, "describe V%d\n", v);
}

static void op_task_op(struct gen *g)
{
	static const char *const ops[] = { "hold", "drop", "filelock_hold", "filelock_drop",
					   "legacy_hold", "legacy_drop", "live", "live",
					   "reset", "show", "donating", "hold" };
	int t = find(g, &g->tasks);
	const char *op = ops[pick(g, 12)];

	if (t < 0)
		return;
	if (!strcmp(op, "live"))
		fprintf(g->out, "live T%d %s\n", t, pick(g, 2) ? "on" : "off");
	else if (!strcmp(op, "reset") || !strcmp(op, "show") || !strcmp(op, "donating"))
		fprintf(g->out, "%s T%d\n", op, t);
	else
		fprintf(g->out, "%s T%d %u\n", op, t, pick(g, 3));
}

static void exit_task(struct gen *g, unsigned t)
{
	unsigned i;

	fprintf(g->out, "exit T%u\n", t);
	set_del(&g->tasks, t);
	/* its ports die, and the messages queued on them */
	for (i = 0; i < g->msgs.n;) {
		unsigned m = g->msgs.items[i];

		if (g->port_owner[g->msg_port[m]] == t)
			set_del(&g->msgs, m);
		else
			i++;
	}
	for (i = 0; i < g->ports.n;) {
		unsigned p = g->ports.items[i];

		if (g->port_owner[p] == t)
			set_del(&g->ports, p);
		else
			i++;
	}
}

static void op_exit(struct gen *g)
{
	int t = find(g, &g->tasks);

	if (t >= 0)
		exit_task(g, (unsigned)t);
}

static void op_observe(struct gen *g)
{
	unsigned k = pick(g, 4);

	if (k == 0) {
		fprintf(g->out, "stats\n");
	} else if (k == 1 && g->nports) {
		fprintf(g->out, "show P%u\n", pick(g, g->nports));
	} else if (k == 2 && g->nmsgs) {
		fprintf(g->out, "show M%u\n", pick(g, g->nmsgs));
	} else if (g->ntasks) {
		fprintf(g->out, "show T%u\n", pick(g, g->ntasks)); /* exited ones too */
	}
}

void imp_gen_scenario(FILE *out, uint64_t seed, unsigned ops, unsigned max_tasks)
{
	struct gen *g = calloc(1, sizeof(*g));
	unsigned i;

	if (!g)
		return;
	g->out = out;
	g->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	g->cap = ops + 16;
	g->max_tasks = max_tasks < 2 ? 2 : max_tasks;
	if (!set_init(&g->tasks, g->cap) || !set_init(&g->ports, g->cap) ||
	    !set_init(&g->msgs, g->cap) || !set_init(&g->vouchers, g->cap) ||
	    !(g->port_owner = calloc(g->cap, sizeof(unsigned))) ||
	    !(g->msg_port = calloc(g->cap, sizeof(unsigned))))
		goto out;
	fprintf(out, "# generated: seed %llu, %u operations\n", (unsigned long long)seed, ops);
	for (i = 0; i < ops; i++) {
		unsigned r = pick(g, 100);

		if (r < 6 && g->ntasks < g->max_tasks && g->ntasks < g->cap)
			op_task(g);
		else if (r < 12)
			op_port(g);
		else if (r < 34)
			op_send(g);
		else if (r < 50)
			op_receive(g);
		else if (r < 54)
			op_destroy(g);
		else if (r < 60)
			op_voucher(g);
		else if (r < 68)
			op_release(g);
		else if (r < 76)
			op_voucher_use(g);
		else if (r < 88)
			op_task_op(g);
		else if (r < 90)
			op_exit(g);
		else if (r < 95)
			fprintf(out, "advance %u\n", pick(g, 3) ? pick(g, 200) : 900 + pick(g, 400));
		else
			op_observe(g);
	}
	/* teardown: nothing may be left afterwards */
	while (g->vouchers.n) {
		unsigned v = g->vouchers.items[0];

		fprintf(out, "release V%u\n", v);
		set_del(&g->vouchers, v);
	}
	while (g->tasks.n)
		exit_task(g, g->tasks.items[0]);
	fprintf(out, "advance 2000\nstats\n");
out:
	set_free(&g->tasks);
	set_free(&g->ports);
	set_free(&g->msgs);
	set_free(&g->vouchers);
	free(g->port_owner);
	free(g->msg_port);
	free(g);
}
