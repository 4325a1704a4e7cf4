/* Vouchers: self and redeem values, deduplication and made counts, the
 * release with made-sync, the drop-external command and its codes, the
 * raw command entry, and content descriptions for any buffer size. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

static void test_self_and_redeem(void **state)
{
	struct tctx c;
	imp_task *r;
	imp_voucher *a, *b, *n = (imp_voucher *)1;
	imp_voucher_info vi;

	(void)state;
	tctx_init(&c);
	r = tu_task(&c, 40, IMP_TASK_RECEIVER);
	assert_int_equal(imp_voucher_self(r, &a), 0);
	assert_int_equal(imp_voucher_redeem(a, &b), 0);
	assert_ptr_equal(a, b); /* one object per value */
	assert_int_equal(imp_voucher_get_info(a, &vi), 0);
	assert_false(vi.holds_inherit);
	assert_int_equal(vi.refs, 2);
	assert_int_equal(vi.made, 2);
	assert_int_equal(vi.pid, 40);
	assert_int_equal(tu_elem_made(r), 2);
	assert_int_equal(tu_elem_refs(r), 2); /* the task's and one for all made refs */
	assert_string_equal(tu_describe(a), "Importance for pid 40");
	assert_int_equal(imp_voucher_redeem(NULL, &n), 0);
	assert_null(n);
	assert_int_equal(imp_voucher_redeem(a, NULL), -EINVAL);
	assert_int_equal(imp_voucher_self(NULL, &n), -EINVAL);
	assert_ptr_equal(imp_voucher_ref(NULL), NULL);
	imp_voucher_release(NULL);
	imp_voucher_release(imp_voucher_ref(a));
	imp_voucher_release(a);
	assert_int_equal(tu_stats(&c).vouchers, 1);
	imp_voucher_release(b);
	assert_int_equal(tu_stats(&c).vouchers, 0);
	assert_int_equal(tu_elem_made(r), 0);
	assert_int_equal(tu_elem_refs(r), 1);
	tctx_fini(&c);
}

struct three {
	struct tctx c;
	imp_task *d, *r, *s;
	imp_port *p;
	imp_voucher *v[3];
	imp_msg *m[3];
};

static void three_init(struct three *t)
{
	tctx_init(&t->c);
	t->d = tu_task(&t->c, 1, IMP_TASK_DONOR);
	t->s = tu_task(&t->c, 2, IMP_TASK_RECEIVER);
	t->r = tu_task(&t->c, 3, IMP_TASK_RECEIVER);
	t->p = tu_port(t->r, true);
	for (int i = 0; i < 3; i++)
		t->m[i] = tu_send(t->d, t->p, NULL, 0);
	for (int i = 0; i < 3; i++)
		t->v[i] = tu_recv_voucher(t->m[i]);
}

static void three_fini(struct three *t)
{
	for (int i = 0; i < 3; i++) {
		imp_voucher_release(t->v[i]);
		imp_msg_unref(t->m[i]);
	}
	tctx_fini(&t->c);
}

static void test_drop_external(void **state)
{
	struct three t;
	uint32_t left = 99;
	imp_voucher *self;

	(void)state;
	three_init(&t);
	assert_int_equal(imp_voucher_drop_external(t.v[0], 0, &left), IMP_KERN_SUCCESS);
	assert_int_equal(left, 3);
	assert_int_equal(imp_voucher_drop_external(t.v[0], 4, &left), IMP_KERN_FAILURE);
	assert_int_equal(imp_voucher_drop_external(t.v[0], 1, &left), IMP_KERN_SUCCESS);
	assert_int_equal(left, 2);
	assert_int_equal(tu_info(t.r).assertcnt, 2);
	assert_string_equal(tctx_events(&t.c), "3+");
	assert_int_equal(imp_voucher_drop_external(t.v[1], 2, NULL), IMP_KERN_SUCCESS);
	assert_string_equal(tctx_events(&t.c), "3-");
	assert_int_equal(tu_info(t.r).assertcnt, 0);
	assert_string_equal(tu_describe(t.v[0]), "Importance for pid 3 (0 of 3 boosts) linked from pid 1");
	assert_int_equal(imp_voucher_drop_external(t.v[0], 1, NULL), IMP_KERN_FAILURE);
	/* a task value or the null voucher has no external boosts */
	assert_int_equal(imp_voucher_self(t.d, &self), 0);
	assert_int_equal(imp_voucher_drop_external(self, 1, NULL), IMP_KERN_INVALID_ARGUMENT);
	assert_int_equal(imp_voucher_drop_external(NULL, 0, NULL), IMP_KERN_INVALID_ARGUMENT);
	imp_voucher_release(self);
	three_fini(&t);
}

static void test_drop_external_linked(void **state)
{
	struct tctx c;
	imp_task *s, *r;
	imp_port *p;
	imp_msg *m;
	imp_voucher *v;
	uint32_t left;

	(void)state;
	tctx_init(&c);
	s = tu_task(&c, 2, IMP_TASK_RECEIVER);
	r = tu_task(&c, 3, IMP_TASK_RECEIVER);
	p = tu_port(r, true);
	m = tu_send(s, p, NULL, 0); /* S not boosted: linked, not donating */
	v = tu_recv_voucher(m);
	assert_string_equal(tu_describe(v), "Importance for pid 3 (1 of 1 boosts) linked from pid 2");
	assert_int_equal(imp_voucher_drop_external(v, 1, &left), IMP_KERN_SUCCESS);
	assert_int_equal(left, 0);
	assert_int_equal(imp_voucher_drop_external(v, 1, &left), IMP_KERN_FAILURE);
	assert_int_equal(tu_info(r).assertcnt, 0);
	imp_voucher_release(v);
	imp_msg_unref(m);
	tctx_fini(&c);
}

static void test_raw_command(void **state)
{
	struct three t;
	uint32_t refs = 0, out = 0;
	uint64_t wide = 0;
	size_t out_size = sizeof(out);

	(void)state;
	three_init(&t);
	assert_int_equal(imp_voucher_command(t.v[0], IMP_VOUCHER_CMD_DROP_EXTERNAL, &wide, sizeof(wide), &out, &out_size), IMP_KERN_INVALID_ARGUMENT);
	out_size = 3;
	assert_int_equal(imp_voucher_command(t.v[0], IMP_VOUCHER_CMD_DROP_EXTERNAL, &refs, sizeof(refs), &out, &out_size), IMP_KERN_INVALID_ARGUMENT);
	out_size = sizeof(out);
	assert_int_equal(imp_voucher_command(t.v[0], 77, &refs, sizeof(refs), &out, &out_size), IMP_KERN_NOT_SUPPORTED);
	assert_int_equal(imp_voucher_command(t.v[0], IMP_VOUCHER_CMD_DROP_EXTERNAL, &refs, sizeof(refs), &out, &out_size), IMP_KERN_SUCCESS);
	assert_int_equal(out, 3);
	out_size = 0;
	refs = 1;
	assert_int_equal(imp_voucher_command(t.v[0], IMP_VOUCHER_CMD_DROP_EXTERNAL, &refs, sizeof(refs), NULL, &out_size), IMP_KERN_SUCCESS);
	assert_int_equal(imp_voucher_command(t.v[0], IMP_VOUCHER_CMD_DROP_EXTERNAL, NULL, sizeof(refs), NULL, NULL), -EINVAL);
	assert_string_equal(imp_strerror(IMP_KERN_NOT_SUPPORTED), "not supported (KERN_NOT_SUPPORTED)");
	three_fini(&t);
}

static void test_release_drops(void **state)
{
	struct three t;

	(void)state;
	three_init(&t);
	/* one object, three references: the value goes with the last one */
	imp_voucher_release(t.v[0]);
	imp_voucher_release(t.v[1]);
	assert_int_equal(tu_info(t.r).assertcnt, 3);
	imp_voucher_release(t.v[2]);
	assert_int_equal(tu_info(t.r).assertcnt, 0);
	assert_string_equal(tctx_events(&t.c), "3+ 3-");
	t.v[0] = t.v[1] = t.v[2] = NULL;
	assert_int_equal(tu_stats(&t.c).inherits, 0);
	three_fini(&t);
}

static void test_describe_sizes(void **state)
{
	struct three t;
	const char *full = "Importance for pid 3 (3 of 3 boosts) donated from pid 1";
	char buf[64];
	size_t need = 0;

	(void)state;
	three_init(&t);
	assert_int_equal(imp_voucher_describe(t.v[0], NULL, 0, &need), 0);
	assert_int_equal(need, strlen(full) + 1);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(imp_voucher_describe(t.v[0], buf, 1, NULL), 0);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(buf[1], 'x');
	assert_int_equal(imp_voucher_describe(t.v[0], buf, 11, &need), 0);
	assert_string_equal(buf, "Importance");
	assert_int_equal(imp_voucher_describe(t.v[0], buf, strlen(full) + 1, NULL), 0);
	assert_string_equal(buf, full);
	assert_int_equal(imp_voucher_describe(t.v[0], buf, strlen(full), NULL), 0);
	assert_int_equal(strlen(buf), strlen(full) - 1);
	assert_int_equal(imp_voucher_describe(NULL, buf, sizeof(buf), &need), 0);
	assert_int_equal(need, 0);
	assert_string_equal(buf, "");
	assert_int_equal(imp_voucher_describe(t.v[0], NULL, 5, NULL), -EINVAL);
	three_fini(&t);
}

static void test_depth_limit(void **state)
{
	struct tctx c;
	imp_task *a, *b, *cc;
	imp_port *pb, *pc;
	imp_msg *m[40];
	imp_voucher *v[40];
	imp_voucher_info vi;
	int i;

	(void)state;
	tctx_init(&c);
	a = tu_task(&c, 1, IMP_TASK_DONOR);
	b = tu_task(&c, 2, IMP_TASK_RECEIVER);
	cc = tu_task(&c, 3, IMP_TASK_RECEIVER);
	pb = tu_port(b, true);
	pc = tu_port(cc, true);
	m[0] = tu_send(a, pb, NULL, 0);
	v[0] = tu_recv_voucher(m[0]);
	for (i = 1; i < 36; i++) {
		m[i] = tu_send(i % 2 ? b : cc, i % 2 ? pc : pb, v[i - 1], 0);
		v[i] = tu_recv_voucher(m[i]);
		assert_int_equal(imp_voucher_get_info(v[i], &vi), 0);
		if (i < 32) {
			assert_int_equal(vi.depth, (uint32_t)i + 1);
		} else {
			/* hop 33 re-roots at the 32nd inherit's to-task */
			assert_int_equal(vi.depth, 0x80u | (uint32_t)(i - 31));
		}
	}
	assert_string_equal(tu_describe(v[32]), "Importance for pid 2 (1 of 1 boosts) donated from pid 3");
	assert_int_equal(tu_stats(&c).inherits, 36);
	for (i = 0; i < 36; i++) {
		imp_voucher_release(v[i]);
		imp_msg_unref(m[i]);
	}
	assert_int_equal(tu_stats(&c).inherits, 0);
	assert_int_equal(tu_info(b).assertcnt, 0);
	assert_int_equal(tu_info(cc).assertcnt, 0);
	tctx_fini(&c);
}

static void test_inherit_found_through_inherit(void **state)
{
	struct tctx c;
	imp_task *a, *b, *cc;
	imp_port *pb, *pc;
	imp_msg *m1, *m2, *m3;
	imp_voucher *v1, *v2, *v3;

	(void)state;
	tctx_init(&c);
	a = tu_task(&c, 1, IMP_TASK_DONOR);
	b = tu_task(&c, 2, IMP_TASK_RECEIVER);
	cc = tu_task(&c, 3, IMP_TASK_RECEIVER);
	pb = tu_port(b, true);
	pc = tu_port(cc, true);
	m1 = tu_send(a, pb, NULL, 0);
	v1 = tu_recv_voucher(m1);
	m2 = tu_send(b, pc, v1, 0);
	m3 = tu_send(b, pc, v1, 0);
	v2 = tu_recv_voucher(m2);
	v3 = tu_recv_voucher(m3);
	/* the reference would make a second inherit here */
	assert_ptr_equal(v2, v3);
	assert_int_equal(tu_stats(&c).inherits, 2);
	assert_string_equal(tu_describe(v3), "Importance for pid 3 (2 of 2 boosts) donated from pid 2 (1 of 1 boosts) donated from pid 1");
	imp_voucher_release(v1);
	imp_voucher_release(v2);
	imp_voucher_release(v3);
	imp_msg_unref(m1);
	imp_msg_unref(m2);
	imp_msg_unref(m3);
	assert_int_equal(tu_stats(&c).inherits, 0);
	tctx_fini(&c);
}

/* The inherit a released voucher frees is kept dormant for the next
 * receive from the same donor (internal.h): it must look freed (stats,
 * graph, traces), come back where a new one would (the tail of its lists,
 * a new id) and go when either end does. */
static void graph_inherits(struct tctx *c, uint64_t *ids, uint64_t *to, size_t *n)
{
	imp_graph *g;

	assert_int_equal(imp_domain_graph(c->d, &g), 0);
	*n = g->n_inherits;
	for (size_t i = 0; i < g->n_inherits && i < 4; i++) {
		ids[i] = g->inherits[i].elem_id;
		to[i] = g->inherits[i].to_elem_id;
	}
	imp_graph_free(c->d, g);
}

static void test_dormant_inherit(void **state)
{
	struct tctx c;
	imp_task *a, *b, *cc;
	imp_port *pb, *pc;
	imp_msg *m1, *m2, *m3;
	imp_voucher *v1, *v2, *v3;
	uint64_t ids[4], to[4], first, b_elem;
	size_t n;
	int pids[4];

	(void)state;
	tctx_init(&c);
	a = tu_task(&c, 1, IMP_TASK_DONOR | IMP_TASK_LIVE_DONOR);
	b = tu_task(&c, 2, IMP_TASK_RECEIVER);
	cc = tu_task(&c, 3, IMP_TASK_RECEIVER);
	pb = tu_port(b, true);
	pc = tu_port(cc, true);

	m1 = tu_send(a, pb, NULL, 0);
	v1 = tu_recv_voucher(m1);
	graph_inherits(&c, ids, to, &n);
	assert_int_equal(n, 1);
	first = ids[0];
	b_elem = to[0];
	imp_voucher_release(v1);
	imp_msg_unref(m1);
	/* freed as far as anyone can see */
	assert_int_equal(tu_stats(&c).inherits, 0);
	graph_inherits(&c, ids, to, &n);
	assert_int_equal(n, 0);
	assert_int_equal(tu_info(b).assertcnt, 0);
	assert_int_equal(imp_task_donating_pids(a, pids, 4), 0);

	/* b's dormant inherit sits before c's new one; revived, it goes
	 * after it, with a new id, as a new inherit would */
	m2 = tu_send(a, pc, NULL, 0);
	v2 = tu_recv_voucher(m2);
	m3 = tu_send(a, pb, NULL, 0);
	v3 = tu_recv_voucher(m3);
	assert_true(tu_has_trace(&c, IMP_TRACE_INHERIT_CREATE));
	graph_inherits(&c, ids, to, &n);
	assert_int_equal(n, 2);
	assert_true(ids[0] > first && ids[1] > ids[0]);
	assert_true(to[1] == b_elem && to[0] != b_elem);
	assert_int_equal(tu_stats(&c).inherits, 2);
	assert_int_equal(tu_info(b).assertcnt, 1);
	assert_int_equal(tu_info(b).extern_boosts, 1);
	assert_int_equal(imp_task_donating_pids(a, pids, 4), 2);
	assert_int_equal(pids[0], 3);
	assert_int_equal(pids[1], 2);
	/* the donor's flip reaches both, in that order (drops downstream
	 * first, boosts in the order found) */
	assert_string_equal(tctx_events(&c), "2+ 2- 3+ 2+");
	assert_int_equal(imp_task_set_live_donor(a, false), 0);
	assert_int_equal(imp_task_set_live_donor(a, true), 0);
	assert_string_equal(tctx_events(&c), "2- 3- 3+ 2+");

	imp_voucher_release(v2);
	imp_voucher_release(v3);
	imp_msg_unref(m2);
	imp_msg_unref(m3);
	assert_int_equal(tu_stats(&c).inherits, 0);
	/* a receiver that goes frees its element, dormant inherit and all */
	assert_int_equal(imp_task_exit(cc), 0);
	imp_port_unref(pc);
	imp_task_unref(cc);
	assert_int_equal(tu_stats(&c).task_elems, 2);
	/* and so does the donor, with b's dormant inherit from it */
	assert_int_equal(imp_task_exit(a), 0);
	imp_task_unref(a);
	assert_int_equal(tu_stats(&c).task_elems, 1);
	assert_int_equal(imp_domain_verify(c.d), 0);
	imp_port_unref(pb);
	tctx_fini(&c);
}

/* A static boost received with a voucher inherits from its receiver
 * itself, so the receiver's dormant inherit may be from itself; the
 * receiver's own linked message must not revive it (a task never inherits
 * from itself). */
static void test_dormant_self_inherit(void **state)
{
	struct tctx c;
	imp_task *r;
	imp_port *p;
	imp_msg *m1, *m2;
	imp_voucher *v1, *v2;

	(void)state;
	tctx_init(&c);
	r = tu_task(&c, 2, IMP_TASK_RECEIVER);
	p = tu_port(r, true);
	m1 = tu_send(r, p, NULL, IMP_SEND_IMPORTANCE);
	v1 = tu_recv_voucher(m1);
	assert_string_equal(tu_describe(v1), "Importance for pid 2 (1 of 1 boosts) donated from pid 2");
	imp_voucher_release(v1);
	imp_msg_unref(m1);
	assert_int_equal(tu_stats(&c).inherits, 0);

	assert_int_equal(imp_task_hold_assertion(r, 1), 0);
	m2 = tu_send(r, p, NULL, 0);
	assert_true(tu_msg_info(m2).linked);
	v2 = tu_recv_voucher(m2);
	assert_null(v2);
	assert_int_equal(tu_stats(&c).inherits, 0);
	assert_int_equal(tu_stats(&c).vouchers, 0);
	assert_int_equal(tu_info(r).assertcnt, 1);
	assert_int_equal(tu_info(r).extern_boosts, 0);
	imp_msg_unref(m2);
	assert_int_equal(imp_task_drop_assertion(r, 1), 0);
	imp_port_unref(p);
	tctx_fini(&c);
}

/* The receive that revives a dormant inherit (message.c's straight path)
 * with what the general path also handles there: a voucher sent with the
 * message, which the received one replaces, and a message linked but not
 * raised, whose inherit then donates only once its sender is boosted. */
static void test_revive_sent_voucher_and_linked(void **state)
{
	struct tctx c;
	imp_task *a, *r, *b;
	imp_port *pb;
	imp_msg *m;
	imp_voucher *v, *sa;
	imp_voucher_info vi;

	(void)state;
	tctx_init(&c);
	a = tu_task(&c, 1, IMP_TASK_DONOR);
	r = tu_task(&c, 4, IMP_TASK_RECEIVER);
	b = tu_task(&c, 2, IMP_TASK_RECEIVER);
	pb = tu_port(b, true);

	/* a's dormant inherit to b, then a message carrying a's own voucher */
	m = tu_send(a, pb, NULL, 0);
	v = tu_recv_voucher(m);
	imp_voucher_release(v);
	imp_msg_unref(m);
	assert_int_equal(imp_voucher_self(a, &sa), 0);
	m = tu_send(a, pb, sa, 0);
	v = tu_recv_voucher(m);
	assert_string_equal(tu_describe(v), "Importance for pid 2 (1 of 1 boosts) donated from pid 1");
	assert_int_equal(imp_voucher_get_info(sa, &vi), 0);
	assert_int_equal(vi.refs, 1); /* the message's went with it */
	assert_int_equal(tu_stats(&c).vouchers, 2);
	assert_int_equal(tu_info(b).assertcnt, 1);
	assert_int_equal(tu_info(b).extern_boosts, 1);
	imp_voucher_release(v);
	imp_voucher_release(sa);
	imp_msg_unref(m);
	assert_int_equal(tu_stats(&c).vouchers, 0);
	assert_int_equal(tu_info(b).assertcnt, 0);
	assert_string_equal(tctx_events(&c), "2+ 2- 2+ 2-");

	/* r's dormant inherit to b, made while r was boosted */
	assert_int_equal(imp_task_hold_assertion(r, 1), 0);
	m = tu_send(r, pb, NULL, 0);
	v = tu_recv_voucher(m);
	imp_voucher_release(v);
	imp_msg_unref(m);
	assert_int_equal(imp_task_drop_assertion(r, 1), 0);
	assert_string_equal(tctx_events(&c), "4+ 2+ 2- 4-");
	/* r unboosted: its message is linked, not raised, and so is the
	 * revived inherit, until r is boosted again */
	m = tu_send(r, pb, NULL, 0);
	assert_true(tu_msg_info(m).linked);
	assert_false(tu_msg_info(m).raised);
	v = tu_recv_voucher(m);
	assert_string_equal(tu_describe(v), "Importance for pid 2 (1 of 1 boosts) linked from pid 4");
	assert_int_equal(tu_info(b).assertcnt, 0);
	assert_int_equal(tu_info(b).extern_boosts, 0);
	assert_int_equal(tu_port_info(pb).impcount, 0);
	assert_string_equal(tctx_events(&c), "");
	assert_int_equal(imp_task_hold_assertion(r, 1), 0);
	assert_string_equal(tctx_events(&c), "4+ 2+");
	assert_int_equal(tu_info(b).extern_boosts, 1);
	imp_voucher_release(v);
	assert_string_equal(tctx_events(&c), "2-");
	imp_msg_unref(m);
	assert_int_equal(imp_task_drop_assertion(r, 1), 0);
	imp_port_unref(pb);
	tctx_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_and_redeem),
		cmocka_unit_test(test_drop_external),
		cmocka_unit_test(test_drop_external_linked),
		cmocka_unit_test(test_raw_command),
		cmocka_unit_test(test_release_drops),
		cmocka_unit_test(test_describe_sizes),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_inherit_found_through_inherit),
		cmocka_unit_test(test_dormant_inherit),
		cmocka_unit_test(test_dormant_self_inherit),
		cmocka_unit_test(test_revive_sent_voucher_and_linked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
