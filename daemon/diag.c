/* Diagnostics (diag.h). */
#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "broker.h"
#include "bus.h"
#include "diag.h"
#include "unix.h"
#include "peer.h"
#include "process.h"
#include "user.h"

bool diag_may_see(const struct broker *b, const struct peer *viewer, const struct actor *subject)
{
	(void)b;
	return viewer->actor.uid == 0 || viewer->actor.uid == geteuid() || viewer->actor.uid == subject->uid;
}

void diag_boost_event(struct broker *b, const struct actor *subject, const struct impp_evt_policy *ev)
{
	struct peer *c;

	TAILQ_FOREACH(c, &b->peer_list, link)
		if (c->monitor && diag_may_see(b, c, subject))
			peer_send(c, IMPP_EVT_POLICY, 0, ev, sizeof(*ev), NULL, 0);
}

/* The counts, then which backend is in use and why not the others. */
static int status_reply(struct broker *b, struct peer *c, uint16_t type, uint32_t serial, struct impp_reply_stats *r)
{
	char backends[1024];

	snprintf(r->policy, sizeof(r->policy), "%s", backend_name(b->cfg.backend.kind));
	backend_describe(&b->cfg.backend, backends, sizeof(backends));
	r->backends_len = (uint32_t)strlen(backends);
	peer_send(c, IMPP_REPLY(type), serial, r, sizeof(*r), backends, r->backends_len);
	return 0;
}

int diag_status(struct broker *b, struct peer *c, uint16_t type, uint32_t serial)
{
	struct impp_reply_stats r = { 0 };
	imp_stats st;

	if (c->actor.uid != 0 && c->actor.uid != geteuid()) {
		/* another uid sees its own usage only: the daemon's totals
		 * would show what other users do */
		r.clients = (uint32_t)c->user->usage.n[USAGE_CONNECTIONS];
		r.ports = c->user->usage.n[USAGE_PORTS];
		r.messages = c->user->usage.n[USAGE_INFLIGHT];
		return status_reply(b, c, type, serial, &r);
	}
	imp_domain_get_stats(b->dom, &st);
	r.clients = (uint32_t)b->usage.n[USAGE_CONNECTIONS];
	r.task_elems = st.task_elems;
	r.inherits = st.inherits;
	r.vouchers = st.vouchers;
	r.ports = st.ports;
	r.messages = st.messages;
	r.delayed = st.delayed;
	r.boosts_applied = b->boosts;
	r.unboosts_applied = b->unboosts;
	r.requests = b->requests;
	r.protocol_errors = b->protocol_errors;
	return status_reply(b, c, type, serial, &r);
}

/* TASKS and GRAPH cost time in proportion to the whole domain: a uid
 * other than root gets one every listing-interval-ms, -EBUSY between. */
static int listing_allowed(struct broker *b, struct peer *c)
{
	struct timespec ts;
	uint64_t now;

	if (c->actor.uid == 0 || c->actor.uid == geteuid())
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	if (now < c->user->listing_after)
		return -EBUSY;
	c->user->listing_after = now + (uint64_t)b->cfg.limits.listing_interval_ms * 1000;
	return 0;
}

/*
 * A text reply (TASKS, GRAPH) being built.  It stops taking text at the
 * frame's limit, less room for a closing line: what comes after is
 * dropped, and the reply ends after its last whole line with a note.
 */
struct text {
	char *buf;
	size_t len, cap;
	bool cut, failed;
};

#define TEXT_RESERVE 128

static void text_write(struct text *t, const char *data, size_t n)
{
	if (t->cut || t->failed)
		return;
	if (t->len + n + TEXT_RESERVE > IMPP_MAX_TEXT) {
		t->cut = true;
		return;
	}
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16384;
		char *nb;

		while (cap < t->len + n)
			cap *= 2;
		if (!(nb = realloc(t->buf, cap))) {
			t->failed = true;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
}

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->failed = true;
	} else if ((size_t)n < sizeof(line)) {
		text_write(t, line, (size_t)n);
	} else { /* a longer line: formatted again, in a buffer its size */
		char *big = malloc((size_t)n + 1);

		if (!big) {
			t->failed = true;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		text_write(t, big, (size_t)n);
		free(big);
	}
}

/* The library's DOT renderer writes into a text through this. */
static ssize_t text_cookie_write(void *cookie, const char *data, size_t n)
{
	text_write(cookie, data, n);
	return (ssize_t)n;
}

/* Sends a built text; if it was cut, its last whole line is followed by
 * cut_note (a format taking the limit in bytes). */
static int reply_text(struct peer *c, uint16_t type, uint32_t serial, struct text *t, const char *cut_note)
{
	struct impp_reply_text r = { 0, 0 };

	if (t->cut) {
		char note[96];
		int n = snprintf(note, sizeof(note), cut_note, IMPP_MAX_TEXT);

		while (t->len && t->buf[t->len - 1] != '\n')
			t->len--;
		t->cut = false;
		text_write(t, note, (size_t)n);
	}
	if (t->failed) {
		free(t->buf);
		return -ENOMEM;
	}
	r.len = (uint32_t)t->len;
	peer_send(c, IMPP_REPLY(type), serial, &r, sizeof(r), t->buf, t->len);
	free(t->buf);
	return 0;
}

/* Bus connections' tasks in the TASKS table: KIND bus-recv or bus-send,
 * PORTS their one port, and their bus and unique name at the end. */
struct bus_rows {
	struct broker *b;
	struct peer *viewer;
	struct text *t;
};

static void add_bus_row(void *ctx, const struct actor *a, imp_task *task, bool receiver, const char *bus,
			const char *unique)
{
	struct bus_rows *rows = ctx;
	imp_task_info ti;

	if (!diag_may_see(rows->b, rows->viewer, a))
		return;
	imp_task_get_info(task, &ti);
	text_add(rows->t, "%-8d %-6u %-9s %-5s %-7s %6u %6u %6u %5u %6s %s %s\n", (int)a->pid, (unsigned)a->uid,
		 receiver ? "bus-recv" : "bus-send", ti.is_donor ? "yes" : "no", ti.boosted ? "yes" : "no", ti.assertcnt,
		 ti.extern_boosts, ti.legacy_boosts, receiver ? 1u : 0u,
		 backend_name(a->process ? a->process->target.kind : BACKEND_NONE), bus, unique);
}

/* Unix-socket readers and senders: KIND sock-recv or sock-send, PORTS
 * their connections' one port shown, and the socket's address and the
 * peer (the process that sent on it) at the end. */
static void add_unix_row(void *ctx, const struct actor *a, imp_task *task, bool receiver, const char *path,
			 pid_t peer)
{
	struct bus_rows *rows = ctx;
	imp_task_info ti;

	if (!diag_may_see(rows->b, rows->viewer, a))
		return;
	imp_task_get_info(task, &ti);
	text_add(rows->t, "%-8d %-6u %-9s %-5s %-7s %6u %6u %6u %5u %6s unix %s peer %d\n", (int)a->pid,
		 (unsigned)a->uid, receiver ? "sock-recv" : "sock-send", ti.is_donor ? "yes" : "no",
		 ti.boosted ? "yes" : "no", ti.assertcnt, ti.extern_boosts, ti.legacy_boosts, path[0] ? 1u : 0u,
		 backend_name(a->process ? a->process->target.kind : BACKEND_NONE), path[0] ? path : "-", (int)peer);
}

int diag_tasks(struct broker *b, struct peer *c, uint16_t type, uint32_t serial)
{
	struct text t = { 0 };
	struct peer *x;
	int e;

	if ((e = listing_allowed(b, c)) < 0)
		return e;

	text_add(&t, "%-8s %-6s %-9s %-5s %-7s %6s %6s %6s %5s %6s\n", "PID", "UID", "KIND", "DONOR",
		 "BOOSTED", "ASSERT", "EXTERN", "LEGACY", "PORTS", "BACKEND");
	TAILQ_FOREACH(x, &b->peer_list, link) {
		imp_task_info ti;

		if (!x->task || !diag_may_see(b, c, &x->actor))
			continue;
		imp_task_get_info(x->task, &ti);
		text_add(&t, "%-8d %-6u %-9s %-5s %-7s %6u %6u %6u %5u %6s\n", (int)x->actor.pid, (unsigned)x->actor.uid,
			 x->receiver ? "receiver" : x->denap ? "denap" : "sender", ti.is_donor ? "yes" : "no",
			 ti.boosted ? "yes" : "no", ti.assertcnt, ti.extern_boosts, ti.legacy_boosts, x->n_ports,
			 backend_name(x->actor.process ? x->actor.process->target.kind : BACKEND_NONE));
	}
	{
		struct bus_rows rows = { b, c, &t };

		bus_foreach_task(b, add_bus_row, &rows);
		unix_foreach_task(b, add_unix_row, &rows);
	}
	return reply_text(c, type, serial, &t, "(cut at %u bytes)\n");
}

struct graph_view {
	struct broker *b;
	struct peer *viewer;
};

static bool graph_shows(const imp_graph_task *t, void *ctx)
{
	const struct graph_view *v = ctx;
	const struct actor *a = t->task ? imp_task_get_userdata(t->task) : NULL;

	return a && diag_may_see(v->b, v->viewer, a);
}

static void graph_label(const imp_graph_task *t, char *buf, size_t size, void *ctx)
{
	const struct actor *a = t->task ? imp_task_get_userdata(t->task) : NULL;

	(void)ctx;
	if (a)
		snprintf(buf, size, "uid %u", (unsigned)a->uid);
}

int diag_graph(struct broker *b, struct peer *c, uint16_t type, uint32_t serial)
{
	static const cookie_io_functions_t io = { .write = text_cookie_write };
	struct graph_view view = { b, c };
	imp_graph_dot_options opt = IMP_GRAPH_DOT_OPTIONS_INIT;
	struct text t = { 0 };
	imp_graph *g;
	FILE *f;
	int e;

	if ((e = listing_allowed(b, c)) < 0 || (e = imp_domain_graph(b->dom, &g)) < 0)
		return e;
	if (!(f = fopencookie(&t, "w", io))) {
		imp_graph_free(b->dom, g);
		return -ENOMEM;
	}
	opt.name = "importanced";
	opt.task_filter = graph_shows;
	opt.task_label = graph_label;
	opt.ctx = &view;
	e = imp_graph_dot(g, &opt, f);
	fclose(f);
	imp_graph_free(b->dom, g);
	if (e < 0) {
		free(t.buf);
		return e;
	}
	return reply_text(c, type, serial, &t, "  // cut at %u bytes\n}\n");
}

/*
 * WHY.  From a snapshot of the graph: a task is boosted by the raised
 * messages queued on its ports (their senders) and by the vouchers it
 * holds, each an inherit whose chain of from-elements starts at a task
 * (the donor, through the tasks between).  One task's reasons cost a pass
 * over the ports, the messages times the task's own ports, and per voucher
 * it holds a chain walk bounded by WHY_DEPTH.
 */
#define WHY_DEPTH 32

static const imp_graph_task *graph_task_by_elem(const imp_graph *g, uint64_t id)
{
	for (size_t i = 0; id && i < g->n_tasks; i++)
		if (g->tasks[i].elem_id == id)
			return &g->tasks[i];
	return NULL;
}

static const imp_graph_task *graph_task_of(const imp_graph *g, const imp_task *task)
{
	for (size_t i = 0; task && i < g->n_tasks; i++)
		if (g->tasks[i].task == task)
			return &g->tasks[i];
	return NULL;
}

/* The task an inherit's chain starts at, and how many inherits it took. */
static const imp_graph_task *inherit_root(const imp_graph *g, const imp_graph_inherit *in, unsigned *hops)
{
	uint64_t from = in->from_elem_id;

	*hops = 1;
	for (unsigned d = 0; d < WHY_DEPTH && from; d++) {
		const imp_graph_task *t = graph_task_by_elem(g, from);
		size_t i;

		if (t)
			return t;
		for (i = 0; i < g->n_inherits && g->inherits[i].elem_id != from; i++)
			;
		if (i == g->n_inherits)
			return NULL;
		from = g->inherits[i].from_elem_id;
		(*hops)++;
	}
	return NULL;
}

/* "pid P (uid U, source)" of a graph task, or what may be said of it. */
static void who_text(const imp_graph_task *t, bool may_see, char *out, size_t size)
{
	const struct actor *a = t && t->task ? imp_task_get_userdata(t->task) : NULL;

	if (!a)
		snprintf(out, size, "a task that is gone");
	else if (!may_see)
		snprintf(out, size, "a task of another uid");
	else
		snprintf(out, size, "pid %d (uid %u, %s)", (int)a->pid, (unsigned)a->uid, a->source ? a->source : "ipc");
}

typedef void why_fn(void *ctx, const char *kind, const imp_graph_task *donor, unsigned hops);

/* Calls fn for every reason task gt is boosted, in the snapshot g. */
static void why_each(const imp_graph *g, const imp_graph_task *gt, why_fn *fn, void *ctx)
{
	for (size_t k = 0; k < g->n_ports; k++) {
		if (g->ports[k].owner != gt->task)
			continue;
		for (size_t i = 0; i < g->n_msgs; i++) {
			const imp_graph_msg *m = &g->msgs[i];

			if (m->raised && m->port == g->ports[k].port)
				fn(ctx, "a message queued on one of its ports, from", graph_task_of(g, m->sender), 0);
		}
	}
	for (size_t i = 0; i < g->n_inherits; i++) {
		const imp_graph_inherit *in = &g->inherits[i];
		const imp_graph_task *root;
		unsigned hops;

		if (!gt->elem_id || in->to_elem_id != gt->elem_id || !in->donating || in->externcnt <= in->externdrop)
			continue;
		root = inherit_root(g, in, &hops);
		fn(ctx, "a voucher it holds, from", root, hops);
	}
}

struct why_view {
	struct broker *b;
	struct peer *viewer;
	struct text *t;
	unsigned n;
};

static void why_add(void *ctx, const char *kind, const imp_graph_task *donor, unsigned hops)
{
	struct why_view *v = ctx;
	const struct actor *a = donor && donor->task ? imp_task_get_userdata(donor->task) : NULL;
	char who[96];

	who_text(donor, a && diag_may_see(v->b, v->viewer, a), who, sizeof(who));
	if (hops > 1)
		text_add(v->t, "  %s %s, through %u tasks\n", kind, who, hops - 1);
	else
		text_add(v->t, "  %s %s\n", kind, who);
	v->n++;
}

int diag_why(struct broker *b, struct peer *c, uint16_t type, uint32_t serial, pid_t pid)
{
	struct why_view v = { b, c, NULL, 0 };
	struct text t = { 0 };
	unsigned shown = 0;
	imp_graph *g;
	int e;

	if ((e = listing_allowed(b, c)) < 0 || (e = imp_domain_graph(b->dom, &g)) < 0)
		return e;
	v.t = &t;
	for (size_t i = 0; i < g->n_tasks; i++) {
		const imp_graph_task *gt = &g->tasks[i];
		const struct actor *a = gt->task ? imp_task_get_userdata(gt->task) : NULL;

		if (!a || a->pid != pid || !diag_may_see(b, c, a))
			continue;
		shown++;
		text_add(&t, "pid %d (uid %u, %s): %s, %u assertions (%u external, %u legacy)%s%s\n", (int)a->pid,
			 (unsigned)a->uid, a->source ? a->source : "ipc", gt->boosted ? "boosted" : "not boosted",
			 gt->assertcnt, gt->extern_boosts, gt->legacy_boosts, gt->receiver ? "" : ", not a receiver",
			 gt->donor ? ", a donor" : "");
		v.n = 0;
		why_each(g, gt, why_add, &v);
		if (gt->assertcnt && !v.n)
			text_add(&t, "  assertions it took itself (impc_boost / legacy messages it has not completed)\n");
	}
	imp_graph_free(b->dom, g);
	if (!shown) {
		free(t.buf);
		return -ESRCH;
	}
	return reply_text(c, type, serial, &t, "(cut at %u bytes)\n");
}

struct why_line {
	char *out;
	size_t size, len;
	unsigned n;
};

#define WHY_LINE_DONORS 4

static void why_line_add(void *ctx, const char *kind, const imp_graph_task *donor, unsigned hops)
{
	struct why_line *w = ctx;
	const struct actor *a = donor && donor->task ? imp_task_get_userdata(donor->task) : NULL;
	int n;

	(void)kind;
	if (w->n++ >= WHY_LINE_DONORS || w->len >= w->size)
		return;
	if (a)
		n = snprintf(w->out + w->len, w->size - w->len, "%s%d/%s%s", w->n > 1 ? "," : "", (int)a->pid,
			     a->source ? a->source : "ipc", hops > 1 ? "+" : "");
	else
		n = snprintf(w->out + w->len, w->size - w->len, "%sgone", w->n > 1 ? "," : "");
	if (n > 0)
		w->len += (size_t)n < w->size - w->len ? (size_t)n : w->size - w->len - 1;
}

void diag_why_line(struct broker *b, const imp_task *task, char *out, size_t size)
{
	struct why_line w = { out, size, 0, 0 };
	const imp_graph_task *gt;
	imp_graph *g;

	if (!size)
		return;
	out[0] = '\0';
	if (imp_domain_graph(b->dom, &g) < 0)
		return;
	if ((gt = graph_task_of(g, task)))
		why_each(g, gt, why_line_add, &w);
	if (w.n > WHY_LINE_DONORS && w.len < size)
		snprintf(out + w.len, size - w.len, " and %u more", w.n - WHY_LINE_DONORS);
	imp_graph_free(b->dom, g);
}

/* Whether stderr is a stream to the journal: JOURNAL_STREAM ("DEV:INODE",
 * set by systemd for a unit's standard error) names it.  Asked once. */
static bool stderr_is_journal(void)
{
	static int known = -1;

	if (known < 0) {
		const char *e = getenv("JOURNAL_STREAM");
		uintmax_t dev, ino;
		struct stat st;

		known = e && sscanf(e, "%ju:%ju", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
			(uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
	}
	return known;
}

void diag_boost_log(struct broker *b, const struct actor *subject, const imp_task *task, bool boosted, int applied,
		    const char *backend, int value)
{
	const char *event = boosted ? "boost" : "unboost", *source = subject->source ? subject->source : "ipc";
	const char *result = applied < 0 ? strerror(-applied) : "applied";
	char donors[160] = "";

	if (boosted)
		diag_why_line(b, task, donors, sizeof(donors));
	if (stderr_is_journal()) {
		sd_journal_send("MESSAGE=importanced: pid %d %s: %s (%s %d)%s%s", (int)subject->pid, event, result,
				backend, value, donors[0] ? "; from " : "", donors, "PRIORITY=%d", applied < 0 ? 4 : 6,
				"IMPORTANCE_EVENT=%s", event, "IMPORTANCE_PID=%d", (int)subject->pid,
				"IMPORTANCE_UID=%u", (unsigned)subject->uid, "IMPORTANCE_SOURCE=%s", source,
				"IMPORTANCE_DONORS=%s", donors, "IMPORTANCE_BACKEND=%s", backend,
				"IMPORTANCE_VALUE=%d", value, "IMPORTANCE_RESULT=%s", result, NULL);
		return;
	}
	fprintf(stderr, "importanced: pid %d %s: %s (%s %d); uid %u, %s%s%s\n", (int)subject->pid, event, result,
		backend, value, (unsigned)subject->uid, source, donors[0] ? ", from " : "", donors);
}
