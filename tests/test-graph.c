/* imp_graph_dot(): what it draws by default, what a task filter hides
 * (the task, its ports, their messages, the inherits to it, and every
 * edge that touches them), label callbacks with characters to escape, and
 * its argument checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* donor 10 -> receiver 20, which received 10's message with a voucher (an
 * inherit) and passed it on to 30 with it; and a second message from 10
 * queued for 20. */
struct chain {
	struct tctx c;
	imp_task *donor, *mid, *end;
	imp_port *mid_port, *end_port;
	imp_msg *queued, *passed;
	imp_voucher *v;
};

static void chain_init(struct chain *ch)
{
	imp_msg *first;

	tctx_init(&ch->c);
	ch->donor = tu_task(&ch->c, 10, IMP_TASK_DONOR);
	ch->mid = tu_task(&ch->c, 20, IMP_TASK_RECEIVER);
	ch->end = tu_task(&ch->c, 30, IMP_TASK_RECEIVER);
	ch->mid_port = tu_port(ch->mid, true);
	ch->end_port = tu_port(ch->end, true);
	first = tu_send(ch->donor, ch->mid_port, NULL, 0);
	ch->v = tu_recv_voucher(first);
	imp_msg_unref(first);
	ch->passed = tu_send(ch->mid, ch->end_port, ch->v, 0);
	ch->queued = tu_send(ch->donor, ch->mid_port, NULL, 0);
}

static void chain_fini(struct chain *ch)
{
	imp_msg_unref(ch->queued);
	imp_msg_unref(ch->passed);
	imp_voucher_release(ch->v);
	imp_port_unref(ch->mid_port);
	imp_port_unref(ch->end_port);
	imp_task_unref(ch->donor);
	imp_task_unref(ch->mid);
	imp_task_unref(ch->end);
	tctx_fini(&ch->c);
}

static char *render(imp_domain *d, const imp_graph_dot_options *opt)
{
	imp_graph *g;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(imp_domain_graph(d, &g), 0);
	assert_int_equal(imp_graph_dot(g, opt, f), 0);
	imp_graph_free(d, g);
	fclose(f);
	return text;
}

static void test_default(void **state)
{
	struct chain ch;
	char *dot;

	(void)state;
	chain_init(&ch);
	dot = render(ch.c.d, NULL);
	assert_true(strncmp(dot, "digraph importance {\n", 21) == 0);
	assert_non_null(strstr(dot, "blue: receiver not boosted"));
	assert_non_null(strstr(dot, "label=\"pid 10\\nassert"));
	assert_non_null(strstr(dot, "label=\"pid 20 receiver BOOSTED"));
	assert_non_null(strstr(dot, "label=\"pid 30 receiver BOOSTED"));
	assert_non_null(strstr(dot, "label=\"port\\nimpcount"));
	assert_non_null(strstr(dot, "label=\"msg\\nraised\""));
	assert_non_null(strstr(dot, "inherit depth 1"));
	assert_non_null(strstr(dot, "[color=red, penwidth=2, label=\"to\"]"));
	assert_string_equal(dot + strlen(dot) - 2, "}\n");
	free(dot);
	chain_fini(&ch);
}

static bool hide_pid_30(const imp_graph_task *t, void *ctx)
{
	(void)ctx;
	return t->pid != 30;
}

static bool hide_pid_20(const imp_graph_task *t, void *ctx)
{
	(void)ctx;
	return t->pid != 20;
}

static void quoted_label(const imp_graph_task *t, char *buf, size_t size, void *ctx)
{
	snprintf(buf, size, "%s \"%d\" \\", (const char *)ctx, t->pid);
}

static void msg_label(const imp_graph_msg *m, char *buf, size_t size, void *ctx)
{
	(void)ctx;
	snprintf(buf, size, "from %d", imp_task_pid(m->sender));
}

static size_t count(const char *text, const char *what)
{
	size_t n = 0;

	for (; (text = strstr(text, what)) != NULL; text++)
		n++;
	return n;
}

static void test_filter(void **state)
{
	imp_graph_dot_options opt = IMP_GRAPH_DOT_OPTIONS_INIT;
	struct chain ch;
	char *dot;

	(void)state;
	chain_init(&ch);
	/* The inherit is "20 is boosted because 10 is"; the passed message,
	 * queued on 30's port, is linked to it. */
	dot = render(ch.c.d, NULL);
	assert_int_equal(count(dot, "shape=note"), 2);
	assert_int_equal(count(dot, "label=\"linked\""), 2);
	free(dot);

	/* without 30: its port and the message queued there */
	opt.task_filter = hide_pid_30;
	dot = render(ch.c.d, &opt);
	assert_null(strstr(dot, "pid 30"));
	assert_null(strstr(dot, "p1"));
	assert_int_equal(count(dot, "shape=note"), 1);
	assert_non_null(strstr(dot, "p0 -> t1"));
	assert_non_null(strstr(dot, "inherit depth 1"));
	assert_non_null(strstr(dot, "t0 -> e"));
	free(dot);

	/* without 20: its port and message, the inherit to it, and the link
	 * from that inherit to the message on 30's port */
	opt.task_filter = hide_pid_20;
	dot = render(ch.c.d, &opt);
	assert_null(strstr(dot, "pid 20"));
	assert_null(strstr(dot, "t1"));
	assert_null(strstr(dot, "p0"));
	assert_null(strstr(dot, "inherit"));
	assert_int_equal(count(dot, "shape=note"), 1);
	assert_non_null(strstr(dot, "m0 -> p1"));
	assert_null(strstr(dot, "linked"));
	free(dot);
	chain_fini(&ch);
}

static void test_labels(void **state)
{
	imp_graph_dot_options opt = IMP_GRAPH_DOT_OPTIONS_INIT;
	struct chain ch;
	char *dot;

	(void)state;
	chain_init(&ch);
	opt.name = "two words";
	opt.title = "a \"title\"";
	opt.task_label = quoted_label;
	opt.msg_label = msg_label;
	opt.ctx = "uid";
	dot = render(ch.c.d, &opt);
	assert_true(strncmp(dot, "digraph \"two words\" {", 21) == 0);
	assert_non_null(strstr(dot, "label=\"a \\\"title\\\" (red: boosted"));
	assert_non_null(strstr(dot, "label=\"uid \\\"10\\\" \\\\\\npid 10"));
	assert_non_null(strstr(dot, "label=\"from 10\\nraised\""));
	assert_non_null(strstr(dot, "label=\"from 20\\nraised\""));
	free(dot);
	chain_fini(&ch);
}

static void test_arguments(void **state)
{
	imp_graph_dot_options opt = { 0 };
	struct chain ch;
	imp_graph *g;

	(void)state;
	chain_init(&ch);
	assert_int_equal(imp_domain_graph(ch.c.d, &g), 0);
	assert_int_equal(imp_graph_dot(NULL, NULL, stdout), -EINVAL);
	assert_int_equal(imp_graph_dot(g, NULL, NULL), -EINVAL);
	assert_int_equal(imp_graph_dot(g, &opt, stdout), -EINVAL); /* size not set */
	assert_non_null(strstr(imp_last_error(), "IMP_GRAPH_DOT_OPTIONS_INIT"));
	imp_graph_free(ch.c.d, g);
	chain_fini(&ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
