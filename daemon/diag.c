/* Diagnostics (diag.h). */
#include <errno.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "dbus.h"
#include "diag.h"
#include "peer.h"
#include "process.h"

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

int diag_status(struct broker *b, struct peer *c, uint16_t type, uint32_t serial)
{
	struct impp_reply_stats r = { 0 };
	imp_stats st;

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
	snprintf(r.policy, sizeof(r.policy), "%s", backend_name(b->cfg.backend.kind));
	peer_send(c, IMPP_REPLY(type), serial, &r, sizeof(r), NULL, 0);
	return 0;
}

/* A text reply being built, cut at IMPP_MAX_TEXT less room for a last line. */
struct text {
	char *buf;
	size_t len, cap;
	bool cut, failed;
};

#define TEXT_RESERVE 128

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->cut || t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if (t->len + (size_t)n + TEXT_RESERVE > IMPP_MAX_TEXT) {
			t->cut = true;
			return;
		}
		if (t->buf && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
		char *nb = realloc(t->buf, cap);

		if (!nb) {
			t->failed = true;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
}

/* Sends a built text ending with `last` (and a note if it was cut). */
static int reply_text(struct peer *c, uint16_t type, uint32_t serial, struct text *t, const char *last)
{
	struct impp_reply_text r = { 0, 0 };
	bool cut = t->cut;

	t->cut = false;
	if (cut)
		text_add(t, "%s(cut at %u bytes)\n", type == IMPP_REQ_GRAPH ? "// " : "", IMPP_MAX_TEXT);
	text_add(t, "%s", last);
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

int diag_tasks(struct broker *b, struct peer *c, uint16_t type, uint32_t serial)
{
	struct text t = { 0 };
	struct peer *x;

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

		dbus_foreach_task(b, add_bus_row, &rows);
	}
	return reply_text(c, type, serial, &t, "");
}

/* The graph's tasks sorted by task pointer, for finding a port's owner. */
struct shown {
	const imp_task *task;
	unsigned long long elem;
	bool visible;
};

static int cmp_shown(const void *a, const void *b)
{
	const imp_task *x = ((const struct shown *)a)->task, *y = ((const struct shown *)b)->task;

	return x < y ? -1 : x > y;
}

static const struct shown *find_shown(const struct shown *s, size_t n, const imp_task *task)
{
	struct shown key = { .task = task };

	return bsearch(&key, s, n, sizeof(*s), cmp_shown);
}

static int cmp_elem(const void *a, const void *b)
{
	unsigned long long x = ((const struct shown *)a)->elem, y = ((const struct shown *)b)->elem;

	return x < y ? -1 : x > y;
}

static bool elem_visible(const struct shown *by_elem, size_t n, unsigned long long elem)
{
	struct shown key = { .elem = elem };
	const struct shown *s = bsearch(&key, by_elem, n, sizeof(*s), cmp_elem);

	return s && s->visible;
}

int diag_graph(struct broker *b, struct peer *c, uint16_t type, uint32_t serial)
{
	struct text t = { 0 };
	struct shown *shown;
	imp_graph *g;
	size_t i;
	int e;

	if ((e = imp_domain_graph(b->dom, &g)) < 0)
		return e;
	if (!(shown = calloc(2 * g->n_tasks + 1, sizeof(*shown)))) {
		imp_graph_free(b->dom, g);
		return -ENOMEM;
	}
	text_add(&t, "digraph importanced {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n");
	for (i = 0; i < g->n_tasks; i++) {
		const imp_graph_task *gt = &g->tasks[i];
		const struct actor *x = gt->task ? imp_task_get_userdata(gt->task) : NULL;

		shown[i].task = gt->task;
		shown[i].elem = (unsigned long long)gt->elem_id;
		shown[i].visible = x && diag_may_see(b, c, x);
		if (!shown[i].visible)
			continue;
		text_add(&t, "  e%llu [shape=box, style=\"rounded,filled\", fillcolor=%s, label=\"pid %d%s\\nassert %u extern %u\"];\n",
			 shown[i].elem, gt->boosted ? "tomato" : gt->donor ? "gold" : gt->active ? "lightblue" : "grey85",
			 gt->pid, gt->receiver ? " receiver" : gt->denap ? " denap" : "", gt->assertcnt,
			 gt->extern_boosts);
	}
	memcpy(shown + g->n_tasks, shown, g->n_tasks * sizeof(*shown));
	qsort(shown, g->n_tasks, sizeof(*shown), cmp_shown);
	qsort(shown + g->n_tasks, g->n_tasks, sizeof(*shown), cmp_elem);
	for (i = 0; i < g->n_msgs && !t.cut; i++) {
		const imp_graph_msg *m = &g->msgs[i];
		const struct shown *owner = find_shown(shown, g->n_tasks, imp_port_owner(m->port));

		if (!owner || !owner->visible)
			continue;
		text_add(&t, "  m%zu [shape=note, label=\"msg%s\"];\n  m%zu -> e%llu;\n", i, m->raised ? " raised" : "",
			 i, owner->elem);
		if (m->linked_elem_id)
			text_add(&t, "  e%llu -> m%zu [color=%s];\n", (unsigned long long)m->linked_elem_id, i,
				 m->raised ? "red" : "black");
	}
	for (i = 0; i < g->n_inherits && !t.cut; i++) {
		const imp_graph_inherit *in = &g->inherits[i];

		if (!elem_visible(shown + g->n_tasks, g->n_tasks, (unsigned long long)in->to_elem_id))
			continue;
		text_add(&t, "  e%llu [shape=ellipse, label=\"inherit %u/%u%s\"];\n  e%llu -> e%llu;\n  e%llu -> e%llu [color=%s];\n",
			 (unsigned long long)in->elem_id, in->externcnt - in->externdrop, in->externcnt,
			 in->donating ? " donating" : "", (unsigned long long)in->from_elem_id,
			 (unsigned long long)in->elem_id, (unsigned long long)in->elem_id,
			 (unsigned long long)in->to_elem_id, in->donating ? "red" : "black");
	}
	free(shown);
	imp_graph_free(b->dom, g);
	return reply_text(c, type, serial, &t, "}\n");
}
