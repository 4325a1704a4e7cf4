#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

long tu_allocs, tu_frees, tu_fail_at, tu_alloc_count;

static void *tu_alloc(size_t size, void *ctx)
{
	long *counts = ctx;

	tu_alloc_count++;
	if (tu_fail_at && tu_alloc_count == tu_fail_at)
		return NULL;
	tu_allocs++;
	if (counts)
		counts[0]++;
	return malloc(size);
}

static void tu_free(void *p, void *ctx)
{
	long *counts = ctx;

	if (p) {
		tu_frees++;
		if (counts)
			counts[1]++;
	}
	free(p);
}

const imp_allocator tu_allocator = { tu_alloc, tu_free, NULL };

static uint64_t tu_clock(void *ctx)
{
	return ((struct tctx *)ctx)->now_ns;
}

static void tu_policy(const imp_policy_event *ev, void *ctx)
{
	struct tctx *c = ctx;

	c->n_events++;
	c->len += (size_t)snprintf(c->events + c->len, sizeof(c->events) - c->len, "%s%d%c",
				   c->len ? " " : "", ev->pid, ev->boosted ? '+' : '-');
}

static void tu_trace(const imp_trace_event *ev, void *ctx)
{
	struct tctx *c = ctx;

	if (c->n_traces < 256)
		c->traces[c->n_traces++] = *ev;
}

void tctx_init_cfg(struct tctx *c, imp_domain_config *cfg)
{
	memset(c, 0, sizeof(*c));
	cfg->clock_now = tu_clock;
	cfg->clock_ctx = c;
	if (!cfg->policy) {
		cfg->policy = tu_policy;
		cfg->policy_ctx = c;
	}
	cfg->trace = tu_trace;
	cfg->trace_ctx = c;
	c->allocator = tu_allocator;
	c->allocator.ctx = c->counts;
	cfg->allocator = &c->allocator;
	cfg->verify_each_step = true;
	assert_int_equal(imp_domain_new(cfg, &c->d), 0);
}

void tctx_init(struct tctx *c)
{
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;

	tctx_init_cfg(c, &cfg);
}

void tctx_fini(struct tctx *c)
{
	assert_int_equal(imp_domain_verify(c->d), 0);
	assert_false(imp_domain_broken(c->d));
	imp_domain_free(c->d);
	c->d = NULL;
	assert_int_equal(c->counts[0], c->counts[1]);
}

const char *tctx_events(struct tctx *c)
{
	static char copy[8192];

	memcpy(copy, c->events, c->len + 1);
	c->len = 0;
	c->events[0] = '\0';
	return copy;
}

void tctx_advance_ms(struct tctx *c, uint64_t ms)
{
	uint64_t target = c->now_ns + ms * 1000000ull, deadline;

	while (imp_domain_next_deadline(c->d, &deadline) == 1 && deadline <= target) {
		if (deadline > c->now_ns)
			c->now_ns = deadline;
		assert_int_equal(imp_domain_run_timers(c->d), 1);
	}
	c->now_ns = target;
}

imp_task *tu_task(struct tctx *c, int pid, unsigned flags)
{
	imp_task *t = NULL;

	assert_int_equal(imp_task_create(c->d, pid, flags, &t), 0);
	assert_non_null(t);
	return t;
}

imp_port *tu_port(imp_task *owner, bool donate)
{
	imp_port *p = NULL;

	assert_int_equal(imp_port_create(owner, donate, &p), 0);
	return p;
}

imp_msg *tu_send(imp_task *from, imp_port *to, imp_voucher *v, unsigned options)
{
	imp_msg *m = NULL;

	assert_int_equal(imp_msg_send(from, to, v, options, &m), 0);
	return m;
}

imp_voucher *tu_recv_voucher(imp_msg *m)
{
	imp_voucher *v = (imp_voucher *)1;

	assert_int_equal(imp_msg_receive(m, IMP_RECV_VOUCHER, &v), 0);
	return v;
}

imp_task_info tu_info(imp_task *t)
{
	imp_task_info i;

	assert_int_equal(imp_task_get_info(t, &i), 0);
	return i;
}

uint32_t tu_elem_refs(imp_task *t)
{
	uint32_t refs, made;

	imp__task_elem_counts(t, &refs, &made);
	return refs;
}

uint32_t tu_elem_made(imp_task *t)
{
	uint32_t refs, made;

	imp__task_elem_counts(t, &refs, &made);
	return made;
}

imp_port_info tu_port_info(imp_port *p)
{
	imp_port_info i;

	assert_int_equal(imp_port_get_info(p, &i), 0);
	return i;
}

imp_msg_info tu_msg_info(imp_msg *m)
{
	imp_msg_info i;

	assert_int_equal(imp_msg_get_info(m, &i), 0);
	return i;
}

imp_stats tu_stats(struct tctx *c)
{
	imp_stats s;

	assert_int_equal(imp_domain_get_stats(c->d, &s), 0);
	return s;
}

const char *tu_describe(imp_voucher *v)
{
	static char buf[4096];

	assert_int_equal(imp_voucher_describe(v, buf, sizeof(buf), NULL), 0);
	return buf;
}

bool tu_has_trace(struct tctx *c, imp_trace_kind kind)
{
	for (unsigned i = 0; i < c->n_traces; i++)
		if (c->traces[i].kind == kind)
			return true;
	return false;
}
