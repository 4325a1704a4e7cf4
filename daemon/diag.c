/* Diagnostics (diag.h). */
#include <errno.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
