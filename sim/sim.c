/*
 * The scenario interpreter behind `imp`: runs importance scenarios (SPEC.md
 * of the conformance suite) on libimportance through its public API only,
 * and draws the donation graph.
 */
#include <errno.h>
#include <inttypes.h>
#include <search.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "importance/importance.h"
#include "sim.h"

#define IMP_MAX_NUMBER 1000000u
#define IMP_MAX_WORDS 32
#define EXIT_SCENARIO 2
#define EXIT_INVARIANT 3

enum obj_kind { OBJ_TASK, OBJ_PORT, OBJ_MSG, OBJ_VOUCHER };

static const char *const kind_names[] = { "task", "port", "message", "voucher" };

struct obj {
	char *name;
	enum obj_kind kind;
	union {
		imp_task *task;
		imp_port *port;
		imp_msg *msg;
		imp_voucher *voucher;
	} u;
	bool released; /* vouchers: the name gave its reference back */
	struct obj *next_all;
};

struct sim {
	imp_domain *d;
	uint64_t now_ms;
	void *names;         /* tsearch tree of struct obj */
	struct obj *all;     /* every object, for teardown */
	unsigned task_count; /* default pids */
	const char *file;
	unsigned line;
	bool json;
	bool quiet;          /* graph mode: no trace */
	bool verify;
	FILE *out, *err;
	jmp_buf jump;        /* scenario errors unwind to imp_sim_run */
	char *linebuf;
};

/* ------------------------------------------------------------------ */
/* output                                                               */
/* ------------------------------------------------------------------ */

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* One output record: its text line, and for JSON its kind and fields.
 * fields is "key", value pairs; values starting with '"' are strings. */
struct field {
	const char *key;
	char value[64];
	const char *str; /* string value, or NULL */
	const char *raw; /* JSON text written as it is (a list), or NULL */
};

static void emit(struct sim *s, const char *kind, const char *text,
		 const struct field *fields, size_t n)
{
	size_t i;

	if (s->quiet)
		return;
	if (!s->json) {
		fprintf(s->out, "%s\n", text);
		return;
	}
	fprintf(s->out, "{\"kind\":");
	json_string(s->out, kind);
	fprintf(s->out, ",\"line\":%u", s->line);
	for (i = 0; i < n; i++) {
		fputc(',', s->out);
		json_string(s->out, fields[i].key);
		fputc(':', s->out);
		if (fields[i].str)
			json_string(s->out, fields[i].str);
		else if (fields[i].raw)
			fputs(fields[i].raw, s->out);
		else
			fputs(fields[i].value, s->out);
	}
	fprintf(s->out, ",\"text\":");
	json_string(s->out, text);
	fprintf(s->out, "}\n");
}

static void fnum(struct field *f, const char *key, long long v)
{
	f->key = key;
	f->str = NULL;
	f->raw = NULL;
	snprintf(f->value, sizeof(f->value), "%lld", v);
}

static void fstr(struct field *f, const char *key, const char *v)
{
	f->key = key;
	f->str = v;
	f->raw = NULL;
}

static void fraw(struct field *f, const char *key, const char *json)
{
	f->key = key;
	f->str = NULL;
	f->raw = json;
}

static void fail(struct sim *s, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

static void fail(struct sim *s, int status, const char *fmt, ...)
{
	va_list ap;

	fflush(s->out);
	if (s->err) {
		fprintf(s->err, "imp: %s:%u: ", s->file, s->line);
		va_start(ap, fmt);
		vfprintf(s->err, fmt, ap);
		va_end(ap);
		fputc('\n', s->err);
	}
	longjmp(s->jump, status);
}

/* ------------------------------------------------------------------ */
/* names                                                                */
/* ------------------------------------------------------------------ */

static int obj_cmp(const void *a, const void *b)
{
	return strcmp(((const struct obj *)a)->name, ((const struct obj *)b)->name);
}

static struct obj *lookup(struct sim *s, const char *name)
{
	struct obj key = { .name = (char *)name };
	struct obj **found = tfind(&key, &s->names, obj_cmp);

	return found ? *found : NULL;
}

static bool valid_name(const char *n)
{
	if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || *n == '_'))
		return false;
	for (n++; *n; n++)
		if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') ||
		      (*n >= '0' && *n <= '9') || *n == '_' || *n == '.' || *n == '-'))
			return false;
	return true;
}

static struct obj *define(struct sim *s, const char *name, enum obj_kind kind)
{
	struct obj *o;

	if (!valid_name(name))
		fail(s, EXIT_SCENARIO, "invalid name '%s'", name);
	if (lookup(s, name))
		fail(s, EXIT_SCENARIO, "name '%s' is already defined", name);
	o = calloc(1, sizeof(*o));
	if (!o || !(o->name = strdup(name)))
		fail(s, EXIT_SCENARIO, "out of memory");
	o->kind = kind;
	if (!tsearch(o, &s->names, obj_cmp))
		fail(s, EXIT_SCENARIO, "out of memory");
	o->next_all = s->all;
	s->all = o;
	return o;
}

static struct obj *need(struct sim *s, const char *name, enum obj_kind kind)
{
	struct obj *o = lookup(s, name);

	if (!o)
		fail(s, EXIT_SCENARIO, "unknown name '%s'", name);
	if (o->kind != kind)
		fail(s, EXIT_SCENARIO, "'%s' is a %s, not a %s", name, kind_names[o->kind],
		     kind_names[kind]);
	if (kind == OBJ_VOUCHER && o->released)
		fail(s, EXIT_SCENARIO, "voucher '%s' has been released", name);
	return o;
}

static bool task_active(struct obj *t)
{
	imp_task_info info;

	imp_task_get_info(t->u.task, &info);
	return info.active;
}

static struct obj *need_active_task(struct sim *s, const char *name)
{
	struct obj *t = need(s, name, OBJ_TASK);

	if (!task_active(t))
		fail(s, EXIT_SCENARIO, "task '%s' has exited", name);
	return t;
}

/* ------------------------------------------------------------------ */
/* parsing                                                              */
/* ------------------------------------------------------------------ */

struct args {
	char *op;
	char *pos[IMP_MAX_WORDS];
	unsigned npos;
	char *flags[IMP_MAX_WORDS];
	unsigned nflags;
	char *keys[IMP_MAX_WORDS];
	char *vals[IMP_MAX_WORDS];
	unsigned nkeys;
	bool flag_used[IMP_MAX_WORDS];
	bool key_used[IMP_MAX_WORDS];
};

static unsigned parse_number(struct sim *s, const char *w)
{
	unsigned long v = 0;
	const char *p = w;

	if (!*p)
		fail(s, EXIT_SCENARIO, "expected a number, got nothing");
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			fail(s, EXIT_SCENARIO, "'%s' is not a number", w);
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > IMP_MAX_NUMBER)
			fail(s, EXIT_SCENARIO, "number '%s' is above %u", w, IMP_MAX_NUMBER);
	}
	return (unsigned)v;
}

/* Splits a line; returns false for a blank or comment-only line.  The
 * first max_pos bare words after the operation are positional. */
static bool split(struct sim *s, char *line, struct args *a)
{
	char *hash = strchr(line, '#');
	char *w, *save = NULL;
	unsigned nwords = 0;

	memset(a, 0, sizeof(*a));
	if (hash)
		*hash = '\0';
	for (w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
		if (++nwords > IMP_MAX_WORDS)
			fail(s, EXIT_SCENARIO, "too many words");
		if (!a->op) {
			a->op = w;
			continue;
		}
		char *eq = strchr(w, '=');
		if (eq) {
			*eq = '\0';
			for (unsigned i = 0; i < a->nkeys; i++)
				if (!strcmp(a->keys[i], w))
					fail(s, EXIT_SCENARIO, "key '%s' given twice", w);
			a->keys[a->nkeys] = w;
			a->vals[a->nkeys++] = eq + 1;
		} else if (a->nkeys == 0 && a->nflags == 0) {
			a->pos[a->npos++] = w;
		} else {
			a->flags[a->nflags++] = w;
		}
	}
	return a->op != NULL;
}

/* Moves bare words beyond the positional count to the flags. */
static void shape(struct sim *s, struct args *a, unsigned min_pos, unsigned max_pos)
{
	while (a->npos > max_pos) {
		memmove(&a->flags[1], &a->flags[0], a->nflags * sizeof(a->flags[0]));
		a->flags[0] = a->pos[--a->npos];
		a->nflags++;
	}
	if (a->npos < min_pos)
		fail(s, EXIT_SCENARIO, "'%s' needs %u argument%s", a->op, min_pos,
		     min_pos == 1 ? "" : "s");
	for (unsigned i = 0; i < a->nflags; i++)
		for (unsigned j = i + 1; j < a->nflags; j++)
			if (!strcmp(a->flags[i], a->flags[j]))
				fail(s, EXIT_SCENARIO, "flag '%s' given twice", a->flags[i]);
}

static bool flag(struct args *a, const char *name)
{
	for (unsigned i = 0; i < a->nflags; i++)
		if (!strcmp(a->flags[i], name)) {
			a->flag_used[i] = true;
			return true;
		}
	return false;
}

static const char *key(struct sim *s, struct args *a, const char *name, bool required)
{
	for (unsigned i = 0; i < a->nkeys; i++)
		if (!strcmp(a->keys[i], name)) {
			a->key_used[i] = true;
			if (!*a->vals[i])
				fail(s, EXIT_SCENARIO, "key '%s' has no value", name);
			return a->vals[i];
		}
	if (required)
		fail(s, EXIT_SCENARIO, "'%s' needs %s=", a->op, name);
	return NULL;
}

static void done_args(struct sim *s, struct args *a)
{
	for (unsigned i = 0; i < a->nflags; i++)
		if (!a->flag_used[i])
			fail(s, EXIT_SCENARIO, "unknown argument '%s' to '%s'", a->flags[i], a->op);
	for (unsigned i = 0; i < a->nkeys; i++)
		if (!a->key_used[i])
			fail(s, EXIT_SCENARIO, "unknown key '%s' to '%s'", a->keys[i], a->op);
}

/* ------------------------------------------------------------------ */
/* engine glue                                                          */
/* ------------------------------------------------------------------ */

static uint64_t sim_clock(void *ctx)
{
	return ((struct sim *)ctx)->now_ms * 1000000ull;
}

static void sim_policy(const imp_policy_event *ev, void *ctx)
{
	struct sim *s = ctx;
	struct obj *t = imp_task_get_userdata(ev->task);
	unsigned long long ms = ev->time_ns / 1000000ull;
	char text[256];
	struct field f[3];

	snprintf(text, sizeof(text), "@%llu %s %s", ms, t->name, ev->boosted ? "boost" : "unboost");
	fnum(&f[0], "time_ms", (long long)ms);
	fstr(&f[1], "task", t->name);
	fnum(&f[2], "boost", ev->boosted);
	emit(s, "event", text, f, 3);
}

static void check(struct sim *s, int r, const char *what)
{
	if (r < 0)
		fail(s, EXIT_SCENARIO, "%s: %s (%s)", what, imp_strerror(r), imp_last_error());
}

static const char *code_name(int r)
{
	switch (r) {
	case IMP_KERN_SUCCESS:
		return "ok";
	case IMP_KERN_FAILURE:
		return "failure";
	case IMP_KERN_INVALID_ARGUMENT:
		return "invalid";
	case IMP_KERN_NOT_SUPPORTED:
		return "not_supported";
	default:
		return "?";
	}
}

static void emit_code(struct sim *s, const char *op, const char *name, int r, const char *extra,
		      long long remaining)
{
	char text[256];
	struct field f[4];
	size_t n = 0;

	snprintf(text, sizeof(text), "%s %s -> %s%s", op, name, code_name(r), extra ? extra : "");
	fstr(&f[n++], "op", op);
	fstr(&f[n++], "name", name);
	fstr(&f[n++], "code", code_name(r));
	if (extra)
		fnum(&f[n++], "remaining", remaining);
	emit(s, "result", text, f, n);
}

/* ------------------------------------------------------------------ */
/* operations                                                           */
/* ------------------------------------------------------------------ */

static unsigned count_arg(struct sim *s, struct args *a)
{
	return a->npos > 1 ? parse_number(s, a->pos[1]) : 1;
}

static void op_task(struct sim *s, struct args *a)
{
	unsigned flags = 0;
	int pid;
	const char *p;
	struct obj *o;
	bool receiver, denap;

	shape(s, a, 1, 1);
	s->task_count++;
	p = key(s, a, "pid", false);
	pid = p ? (int)parse_number(s, p) : (int)s->task_count;
	receiver = flag(a, "receiver");
	denap = flag(a, "denap");
	if (receiver && denap)
		fail(s, EXIT_SCENARIO, "a task is a receiver or a denap receiver, not both");
	if (receiver)
		flags |= IMP_TASK_RECEIVER;
	if (denap)
		flags |= IMP_TASK_DENAP_RECEIVER;
	if (flag(a, "donor"))
		flags |= IMP_TASK_DONOR;
	if (flag(a, "live_donor"))
		flags |= IMP_TASK_LIVE_DONOR;
	done_args(s, a);
	o = define(s, a->pos[0], OBJ_TASK);
	check(s, imp_task_create(s->d, pid, flags, &o->u.task), "task");
	imp_task_set_userdata(o->u.task, o);
}

static void op_live(struct sim *s, struct args *a)
{
	struct obj *t;
	bool on;

	shape(s, a, 2, 2);
	done_args(s, a);
	if (!strcmp(a->pos[1], "on"))
		on = true;
	else if (!strcmp(a->pos[1], "off"))
		on = false;
	else
		fail(s, EXIT_SCENARIO, "live takes on or off, not '%s'", a->pos[1]);
	t = need_active_task(s, a->pos[0]);
	check(s, imp_task_set_live_donor(t->u.task, on), "live");
}

static void op_task_simple(struct sim *s, struct args *a, int (*fn)(imp_task *))
{
	struct obj *t;

	shape(s, a, 1, 1);
	done_args(s, a);
	t = need_active_task(s, a->pos[0]);
	check(s, fn(t->u.task), a->op);
}

static void op_assertion(struct sim *s, struct args *a, int (*fn)(imp_task *, uint32_t), bool print)
{
	struct obj *t;
	unsigned n;
	int r;

	shape(s, a, 1, 2);
	done_args(s, a);
	n = count_arg(s, a);
	t = need_active_task(s, a->pos[0]);
	r = fn(t->u.task, n);
	check(s, r, a->op);
	if (print)
		emit_code(s, a->op, t->name, r, NULL, 0);
}

static void op_port(struct sim *s, struct args *a)
{
	struct obj *t, *o;
	bool donate;

	shape(s, a, 1, 1);
	t = need(s, key(s, a, "owner", true), OBJ_TASK);
	donate = flag(a, "donate");
	done_args(s, a);
	if (!task_active(t))
		fail(s, EXIT_SCENARIO, "task '%s' has exited", t->name);
	o = define(s, a->pos[0], OBJ_PORT);
	check(s, imp_port_create(t->u.task, donate, &o->u.port), "port");
	imp_port_set_userdata(o->u.port, o);
}

static void op_send(struct sim *s, struct args *a)
{
	struct obj *t, *p, *v = NULL, *o;
	const char *vn;
	unsigned options = 0;
	imp_port_info pi;

	shape(s, a, 1, 1);
	t = need(s, key(s, a, "from", true), OBJ_TASK);
	p = need(s, key(s, a, "to", true), OBJ_PORT);
	vn = key(s, a, "voucher", false);
	if (flag(a, "importance"))
		options |= IMP_SEND_IMPORTANCE;
	if (flag(a, "noimportance"))
		options |= IMP_SEND_NOIMPORTANCE;
	done_args(s, a);
	if (options == (IMP_SEND_IMPORTANCE | IMP_SEND_NOIMPORTANCE))
		fail(s, EXIT_SCENARIO, "importance and noimportance exclude each other");
	if (vn)
		v = need(s, vn, OBJ_VOUCHER);
	if (!task_active(t))
		fail(s, EXIT_SCENARIO, "task '%s' has exited", t->name);
	imp_port_get_info(p->u.port, &pi);
	if (!pi.active)
		fail(s, EXIT_SCENARIO, "port '%s' is dead", p->name);
	o = define(s, a->pos[0], OBJ_MSG);
	check(s, imp_msg_send(t->u.task, p->u.port, v ? v->u.voucher : NULL, options, &o->u.msg),
	      "send");
	imp_msg_set_userdata(o->u.msg, o);
}

static struct obj *need_queued(struct sim *s, const char *name)
{
	struct obj *m = need(s, name, OBJ_MSG);
	imp_msg_info mi;

	imp_msg_get_info(m->u.msg, &mi);
	if (mi.state != IMP_MSG_QUEUED)
		fail(s, EXIT_SCENARIO, "message '%s' is not queued", name);
	return m;
}

static void op_receive(struct sim *s, struct args *a)
{
	struct obj *m, *v = NULL;
	const char *vn;
	unsigned flags = 0;
	imp_voucher *received = NULL;

	shape(s, a, 1, 1);
	vn = key(s, a, "voucher", false);
	if (flag(a, "fail"))
		flags |= IMP_RECV_COPYOUT_FAILED;
	done_args(s, a);
	m = need_queued(s, a->pos[0]);
	if (vn) {
		v = define(s, vn, OBJ_VOUCHER);
		flags |= IMP_RECV_VOUCHER;
	}
	check(s, imp_msg_receive(m->u.msg, flags, v ? &received : NULL), "receive");
	if (v)
		v->u.voucher = received;
}

static void op_destroy(struct sim *s, struct args *a)
{
	struct obj *m;

	shape(s, a, 1, 1);
	done_args(s, a);
	m = need_queued(s, a->pos[0]);
	check(s, imp_msg_destroy(m->u.msg), "destroy");
}

static void op_voucher(struct sim *s, struct args *a)
{
	struct obj *v;

	shape(s, a, 3, 3);
	done_args(s, a);
	if (!strcmp(a->pos[1], "self")) {
		struct obj *t = need_active_task(s, a->pos[2]);

		v = define(s, a->pos[0], OBJ_VOUCHER);
		check(s, imp_voucher_self(t->u.task, &v->u.voucher), "voucher self");
	} else if (!strcmp(a->pos[1], "redeem")) {
		struct obj *w = need(s, a->pos[2], OBJ_VOUCHER);

		v = define(s, a->pos[0], OBJ_VOUCHER);
		check(s, imp_voucher_redeem(w->u.voucher, &v->u.voucher), "voucher redeem");
	} else {
		fail(s, EXIT_SCENARIO, "voucher takes self or redeem, not '%s'", a->pos[1]);
	}
}

static void op_release(struct sim *s, struct args *a)
{
	struct obj *v;

	shape(s, a, 1, 1);
	done_args(s, a);
	v = need(s, a->pos[0], OBJ_VOUCHER);
	v->released = true;
	imp_voucher_release(v->u.voucher);
	v->u.voucher = NULL;
}

static void op_voucher_drop(struct sim *s, struct args *a)
{
	struct obj *v;
	uint32_t remaining = 0;
	unsigned n;
	int r;

	shape(s, a, 1, 2);
	done_args(s, a);
	n = count_arg(s, a);
	v = need(s, a->pos[0], OBJ_VOUCHER);
	r = imp_voucher_drop_external(v->u.voucher, n, &remaining);
	check(s, r, "voucher_drop");
	if (r == IMP_KERN_SUCCESS) {
		char extra[32];

		snprintf(extra, sizeof(extra), " remaining=%" PRIu32, remaining);
		emit_code(s, "voucher_drop", v->name, r, extra, remaining);
	} else {
		emit_code(s, "voucher_drop", v->name, r, NULL, 0);
	}
}

static void op_describe(struct sim *s, struct args *a)
{
	struct obj *v;
	char buf[4096], text[4200];
	struct field f[2];

	shape(s, a, 1, 1);
	done_args(s, a);
	v = need(s, a->pos[0], OBJ_VOUCHER);
	fstr(&f[0], "name", v->name);
	if (!v->u.voucher) {
		snprintf(text, sizeof(text), "describe %s -", v->name);
		emit(s, "describe", text, f, 1);
		return;
	}
	check(s, imp_voucher_describe(v->u.voucher, buf, sizeof(buf), NULL), "describe");
	snprintf(text, sizeof(text), "describe %s \"%s\"", v->name, buf);
	fstr(&f[1], "content", buf);
	emit(s, "describe", text, f, 2);
}

static void advance_to(struct sim *s, uint64_t target_ms)
{
	uint64_t deadline;

	while (imp_domain_next_deadline(s->d, &deadline) == 1 &&
	       deadline <= target_ms * 1000000ull) {
		/* each call runs exactly at its deadline */
		uint64_t at = deadline / 1000000ull;

		if (at > s->now_ms)
			s->now_ms = at;
		check(s, imp_domain_run_timers(s->d), "advance");
	}
	s->now_ms = target_ms;
}

static void op_advance(struct sim *s, struct args *a)
{
	shape(s, a, 1, 1);
	done_args(s, a);
	advance_to(s, s->now_ms + parse_number(s, a->pos[0]));
}

static void show_task(struct sim *s, struct obj *o)
{
	imp_task_info ti;
	char text[512];
	struct field f[9];

	check(s, imp_task_get_info(o->u.task, &ti), "show");
	snprintf(text, sizeof(text),
		 "task %s boosted=%d assert=%u extern=%u legacy=%u filelocks=%u donor=%d transitions=%u",
		 o->name, ti.boosted, ti.assertcnt, ti.extern_boosts, ti.legacy_boosts, ti.filelocks,
		 ti.is_donor, ti.transitions);
	fstr(&f[0], "name", o->name);
	fnum(&f[1], "boosted", ti.boosted);
	fnum(&f[2], "assert", ti.assertcnt);
	fnum(&f[3], "extern", ti.extern_boosts);
	fnum(&f[4], "legacy", ti.legacy_boosts);
	fnum(&f[5], "filelocks", ti.filelocks);
	fnum(&f[6], "donor", ti.is_donor);
	fnum(&f[7], "transitions", ti.transitions);
	fnum(&f[8], "active", ti.active);
	emit(s, "task", text, f, 9);
}

static void show_port(struct sim *s, struct obj *o)
{
	imp_port_info pi;
	char text[256];
	struct field f[4];

	check(s, imp_port_get_info(o->u.port, &pi), "show");
	snprintf(text, sizeof(text), "port %s impcount=%u queued=%zu active=%d", o->name, pi.impcount,
		 pi.queued, pi.active);
	fstr(&f[0], "name", o->name);
	fnum(&f[1], "impcount", pi.impcount);
	fnum(&f[2], "queued", (long long)pi.queued);
	fnum(&f[3], "active", pi.active);
	emit(s, "port", text, f, 4);
}

static const char *state_name(imp_msg_state st)
{
	return st == IMP_MSG_QUEUED ? "queued" : st == IMP_MSG_RECEIVED ? "received" : "destroyed";
}

static void show_msg(struct sim *s, struct obj *o)
{
	imp_msg_info mi;
	char text[256];
	struct field f[3];

	check(s, imp_msg_get_info(o->u.msg, &mi), "show");
	snprintf(text, sizeof(text), "msg %s raised=%d state=%s", o->name, mi.raised,
		 state_name(mi.state));
	fstr(&f[0], "name", o->name);
	fnum(&f[1], "raised", mi.raised);
	fstr(&f[2], "state", state_name(mi.state));
	emit(s, "msg", text, f, 3);
}

static void op_show(struct sim *s, struct args *a)
{
	struct obj *o;

	shape(s, a, 1, 1);
	done_args(s, a);
	o = lookup(s, a->pos[0]);
	if (!o)
		fail(s, EXIT_SCENARIO, "unknown name '%s'", a->pos[0]);
	switch (o->kind) {
	case OBJ_TASK:
		show_task(s, o);
		break;
	case OBJ_PORT:
		show_port(s, o);
		break;
	case OBJ_MSG:
		show_msg(s, o);
		break;
	default:
		fail(s, EXIT_SCENARIO, "show takes a task, a port or a message, not voucher '%s'",
		     o->name);
	}
}

static void op_donating(struct sim *s, struct args *a)
{
	int pids[64];
	char text[1024];
	char list[900], json[900];
	size_t len = 0, jlen = 0;
	struct obj *t;
	struct field f[2];
	int n, i;

	shape(s, a, 1, 1);
	done_args(s, a);
	t = need(s, a->pos[0], OBJ_TASK);
	n = imp_task_donating_pids(t->u.task, pids, 64);
	check(s, n, "donating");
	list[0] = '\0';
	json[jlen++] = '[';
	for (i = 0; i < n; i++) {
		len += (size_t)snprintf(list + len, sizeof(list) - len, " %d", pids[i]);
		jlen += (size_t)snprintf(json + jlen, sizeof(json) - jlen, "%s%d", i ? "," : "", pids[i]);
	}
	snprintf(json + jlen, sizeof(json) - jlen, "]");
	snprintf(text, sizeof(text), "donating %s:%s", t->name, list);
	fstr(&f[0], "name", t->name);
	fraw(&f[1], "pids", json);
	emit(s, "donating", text, f, 2);
}

static void op_stats(struct sim *s, struct args *a)
{
	imp_stats st;
	char text[256];
	struct field f[3];

	shape(s, a, 0, 0);
	done_args(s, a);
	check(s, imp_domain_get_stats(s->d, &st), "stats");
	snprintf(text, sizeof(text), "stats tasks=%zu inherits=%zu vouchers=%zu", st.task_elems,
		 st.inherits, st.vouchers);
	fnum(&f[0], "tasks", (long long)st.task_elems);
	fnum(&f[1], "inherits", (long long)st.inherits);
	fnum(&f[2], "vouchers", (long long)st.vouchers);
	emit(s, "stats", text, f, 3);
}

static void run_line(struct sim *s, char *line)
{
	struct args a;
	const char *op;

	if (!split(s, line, &a))
		return;
	op = a.op;
	if (!strcmp(op, "task"))
		op_task(s, &a);
	else if (!strcmp(op, "live"))
		op_live(s, &a);
	else if (!strcmp(op, "reset"))
		op_task_simple(s, &a, imp_task_reset);
	else if (!strcmp(op, "exit"))
		op_task_simple(s, &a, imp_task_exit);
	else if (!strcmp(op, "hold"))
		op_assertion(s, &a, imp_task_hold_assertion, false);
	else if (!strcmp(op, "drop"))
		op_assertion(s, &a, imp_task_drop_assertion, false);
	else if (!strcmp(op, "filelock_hold"))
		op_assertion(s, &a, imp_task_hold_file_lock, true);
	else if (!strcmp(op, "filelock_drop"))
		op_assertion(s, &a, imp_task_drop_file_lock, true);
	else if (!strcmp(op, "legacy_hold"))
		op_assertion(s, &a, imp_task_hold_legacy_assertion, true);
	else if (!strcmp(op, "legacy_drop"))
		op_assertion(s, &a, imp_task_drop_legacy_assertion, true);
	else if (!strcmp(op, "port"))
		op_port(s, &a);
	else if (!strcmp(op, "send"))
		op_send(s, &a);
	else if (!strcmp(op, "receive"))
		op_receive(s, &a);
	else if (!strcmp(op, "destroy"))
		op_destroy(s, &a);
	else if (!strcmp(op, "voucher"))
		op_voucher(s, &a);
	else if (!strcmp(op, "release"))
		op_release(s, &a);
	else if (!strcmp(op, "voucher_drop"))
		op_voucher_drop(s, &a);
	else if (!strcmp(op, "describe"))
		op_describe(s, &a);
	else if (!strcmp(op, "advance"))
		op_advance(s, &a);
	else if (!strcmp(op, "show"))
		op_show(s, &a);
	else if (!strcmp(op, "donating"))
		op_donating(s, &a);
	else if (!strcmp(op, "stats"))
		op_stats(s, &a);
	else
		fail(s, EXIT_SCENARIO, "unknown operation '%s'", op);

	if (s->verify) {
		int r = imp_domain_verify(s->d);

		if (r < 0 || imp_domain_broken(s->d))
			fail(s, EXIT_INVARIANT, "invariant violated after '%s': %s", op,
			     r < 0 ? imp_last_error() : "an earlier step broke an invariant");
	}
}

/* Reads and runs lines up to line `until` (0: to the end). */
static void run_stream(struct sim *s, FILE *f, unsigned until)
{
	size_t cap = 0;
	ssize_t len;
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;

	cfg.clock_now = sim_clock;
	cfg.clock_ctx = s;
	cfg.policy = sim_policy;
	cfg.policy_ctx = s;
	cfg.verify_each_step = s->verify;
	if (imp_domain_new(&cfg, &s->d) < 0)
		fail(s, EXIT_SCENARIO, "%s", imp_last_error());
	while ((len = getline(&s->linebuf, &cap, f)) != -1) {
		s->line++;
		if (until && s->line > until)
			break;
		if ((size_t)len != strlen(s->linebuf))
			fail(s, EXIT_SCENARIO, "NUL byte in line");
		run_line(s, s->linebuf);
		if (!s->quiet)
			fflush(s->out);
	}
	if (ferror(f))
		fail(s, EXIT_SCENARIO, "cannot read the scenario: %s", strerror(errno));
	if (until && s->line < until)
		fail(s, EXIT_SCENARIO, "--until %u is past the end of the scenario (%u lines)", until,
		     s->line);
}

static void free_nothing(void *p)
{
	(void)p;
}

static void sim_free(struct sim *s)
{
	struct obj *o, *next;

	/* Handles first (their references), then the domain. */
	for (o = s->all; o; o = o->next_all) {
		switch (o->kind) {
		case OBJ_TASK:
			imp_task_unref(o->u.task);
			break;
		case OBJ_PORT:
			imp_port_unref(o->u.port);
			break;
		case OBJ_MSG:
			imp_msg_unref(o->u.msg);
			break;
		case OBJ_VOUCHER:
			if (!o->released)
				imp_voucher_release(o->u.voucher);
			break;
		}
	}
	imp_domain_free(s->d);
	tdestroy(s->names, free_nothing);
	for (o = s->all; o; o = next) {
		next = o->next_all;
		free(o->name);
		free(o);
	}
}

/* ------------------------------------------------------------------ */
/* graph                                                                */
/* ------------------------------------------------------------------ */

/* Node labels: the scenario's names (each handle's userdata is its obj). */
static void obj_label(void *userdata, const char *fallback, char *buf, size_t size)
{
	struct obj *o = userdata;

	snprintf(buf, size, "%s", o ? o->name : fallback);
}

static void dot_task_label(const imp_graph_task *t, char *buf, size_t size, void *ctx)
{
	(void)ctx;
	obj_label(t->task ? imp_task_get_userdata(t->task) : NULL, "(gone)", buf, size);
}

static void dot_port_label(const imp_graph_port *p, char *buf, size_t size, void *ctx)
{
	(void)ctx;
	obj_label(imp_port_get_userdata(p->port), "port", buf, size);
}

static void dot_msg_label(const imp_graph_msg *m, char *buf, size_t size, void *ctx)
{
	(void)ctx;
	obj_label(imp_msg_get_userdata(m->msg), "msg", buf, size);
}

static void print_dot(struct sim *s)
{
	imp_graph_dot_options opt = IMP_GRAPH_DOT_OPTIONS_INIT;
	char title[512];
	imp_graph *g;
	int r;

	check(s, imp_domain_graph(s->d, &g), "graph");
	snprintf(title, sizeof(title), "%s at t=%" PRIu64 " ms", s->file, s->now_ms);
	opt.title = title;
	opt.task_label = dot_task_label;
	opt.port_label = dot_port_label;
	opt.msg_label = dot_msg_label;
	r = imp_graph_dot(g, &opt, s->out);
	imp_graph_free(s->d, g);
	check(s, r, "graph");
}

int imp_sim_run(FILE *in, const char *name, const struct imp_sim_options *opt)
{
	struct sim *s = calloc(1, sizeof(*s));
	int status;

	if (!s)
		return EXIT_SCENARIO;
	s->file = name;
	s->json = opt->json;
	s->verify = opt->verify;
	s->quiet = opt->graph;
	s->out = opt->out ? opt->out : stdout;
	s->err = opt->err;
	status = setjmp(s->jump);
	if (status == 0) {
		run_stream(s, in, opt->until);
		if (opt->graph)
			print_dot(s);
	} else {
		/* the scenario stopped at its error: what the teardown releases
		 * is not part of its trace */
		s->quiet = true;
	}
	sim_free(s);
	free(s->linebuf);
	free(s);
	return status;
}
