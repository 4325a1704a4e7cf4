/* bus.c: the D-Bus model fed events directly, as its feeders do (the
 * sd-bus attachment, a session agent), checked against the engine. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "broker.h"
#include "bus.h"

/* the look-ups the model asked, in order */
static char asked[64][64];
static size_t n_asked;
/* resolve's answer while set: it cannot ask now (too many asked at once) */
static bool lookups_busy;

static int resolve(void *ctx, const char *unique)
{
	(void)ctx;
	if (lookups_busy)
		return -EBUSY;
	snprintf(asked[n_asked++ % 64], 64, "%s", unique);
	return 0;
}

static int resolve_name(void *ctx, const char *name)
{
	(void)ctx;
	snprintf(asked[n_asked++ % 64], 64, "%s", name);
	return 0;
}

static const struct bus_ops ops = { resolve, resolve_name };

struct fixture {
	sd_event *ev;
	struct broker *b;
	struct bus *bus;
	int listen_fd;
};

static uint64_t boottime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* this process is the donor (by uid); every connection accepts boosts */
static struct fixture *setup_bus(uid_t owner, void (*adjust)(struct broker_config *))
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct broker_config cfg;

	config_defaults(&cfg);
	cfg.backend.kind = BACKEND_NONE;
	cfg.donors.uids[0] = getuid();
	cfg.donors.n_uids = 1;
	if (adjust)
		adjust(&cfg);
	f->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_int_equal(sd_event_new(&f->ev), 0);
	assert_int_equal(broker_new(f->ev, &cfg, f->listen_fd, &f->b), 0);
	assert_int_equal(bus_new(f->b, "test", owner, &ops, f, &f->bus), 0);
	bus_attached(f->bus, owner, boottime());
	n_asked = 0;
	return f;
}

static void teardown_bus(struct fixture *f)
{
	imp_stats st;

	assert_int_equal(bus_check(f->bus), 0);
	bus_free(f->bus);
	imp_domain_get_stats(f->b->dom, &st);
	/* nothing is left behind */
	assert_int_equal(st.task_elems, 0);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.inherits, 0);
	assert_int_equal(f->b->usage.n[USAGE_INFLIGHT], 0);
	assert_int_equal(f->b->usage.n[USAGE_BUS_CONNECTIONS], 0);
	broker_free(f->b);
	sd_event_unref(f->ev);
	close(f->listen_fd);
	free(f);
}

/* this process, as the bus would say it (pid and uid, no ProcessFD) */
static struct bus_identity me(void)
{
	struct bus_identity id = { getpid(), getuid(), -1 };

	return id;
}

static size_t boosted_tasks(struct fixture *f)
{
	imp_stats st;

	imp_domain_get_stats(f->b->dom, &st);
	return st.inherits;
}

/* A call seen before either end is known is decided when both are: it
 * becomes a raised message then, and its reply ends it. */
static void test_call_before_identity(void **state)
{
	struct fixture *f = setup_bus(0, NULL);
	struct bus_identity a = me(), b = me();
	struct bus_counts n;

	(void)state;
	bus_conn_appeared(f->bus, ":1.1", boottime());
	bus_conn_appeared(f->bus, ":1.2", boottime());
	bus_call(f->bus, ":1.1", ":1.2", 7, boottime());
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 1);
	assert_int_equal(n.undecided, 1);
	assert_int_equal(n.resolving, 2);
	assert_int_equal(n_asked, 2);
	bus_conn_identity(f->bus, ":1.2", &b); /* the service first */
	bus_counts(f->bus, &n);
	assert_int_equal(n.undecided, 1);
	bus_conn_identity(f->bus, ":1.1", &a);
	bus_counts(f->bus, &n);
	assert_int_equal(n.undecided, 0);
	assert_int_equal(n.calls, 1);
	assert_int_equal(f->b->usage.n[USAGE_INFLIGHT], 1);
	assert_int_equal(imp_domain_verify(f->b->dom), 0);
	assert_int_equal(bus_check(f->bus), 0);
	bus_reply(f->bus, ":1.2", ":1.1", 7);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	assert_int_equal(f->b->usage.n[USAGE_INFLIGHT], 0);
	teardown_bus(f);
}

/* A call answered, or whose caller went, before the identities came
 * leaves nothing; the late answers find nothing to decide. */
static void test_over_before_identity(void **state)
{
	struct fixture *f = setup_bus(0, NULL);
	struct bus_identity a = me(), b = me();
	struct bus_counts n;

	(void)state;
	bus_call(f->bus, ":1.1", ":1.2", 7, boottime());
	bus_reply(f->bus, ":1.2", ":1.1", 7);
	bus_call(f->bus, ":1.1", ":1.2", 8, boottime());
	bus_conn_gone(f->bus, ":1.1");
	bus_conn_identity(f->bus, ":1.1", &a); /* gone: ignored */
	bus_conn_identity(f->bus, ":1.2", &b);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	assert_int_equal(n.connections, 1);
	assert_int_equal(boosted_tasks(f), 0);
	teardown_bus(f);
}

/* A call to a well-known name waits for its owner, then for the owner's
 * identity. */
static void test_name_resolved_late(void **state)
{
	struct fixture *f = setup_bus(0, NULL);
	struct bus_identity a = me(), b = me();
	struct bus_counts n;

	(void)state;
	bus_call(f->bus, ":1.1", "org.example.S", 3, boottime());
	assert_string_equal(asked[0], "org.example.S");
	bus_conn_identity(f->bus, ":1.1", &a);
	bus_name_owner(f->bus, "org.example.S", ":1.2");
	bus_counts(f->bus, &n);
	assert_int_equal(n.undecided, 1);
	bus_conn_identity(f->bus, ":1.2", &b);
	bus_counts(f->bus, &n);
	assert_int_equal(n.undecided, 0);
	assert_int_equal(n.calls, 1);
	bus_conn_gone(f->bus, ":1.2"); /* the service went: its call ends */
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	teardown_bus(f);
}

/* A bus not run by root is believed only about its owner's processes:
 * another uid's process (here: ours, on a bus owned by someone else) is
 * neither donor nor receiver, whether by pid or by ProcessFD. */
static void test_owner_uid(void **state)
{
	struct fixture *f = setup_bus(getuid() + 1000, NULL);
	struct bus_identity a = me(), b = me();
	struct bus_counts n;

	(void)state;
	b.pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	bus_call(f->bus, ":1.1", ":1.2", 1, boottime());
	bus_conn_identity(f->bus, ":1.1", &a);
	bus_conn_identity(f->bus, ":1.2", &b);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	assert_int_equal(n.pidfds, 0);
	assert_int_equal(boosted_tasks(f), 0);
	/* and they stay so: no look-up again */
	n_asked = 0;
	bus_call(f->bus, ":1.1", ":1.2", 2, boottime());
	assert_int_equal(n_asked, 0);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	teardown_bus(f);
}

/* A pid taken by a process that started after the connection appeared is
 * not that connection's (the stale-pid attack): without a ProcessFD, the
 * match needs the uid and a start no later than the appearance. */
static void test_stale_pid(void **state)
{
	struct fixture *f = setup_bus(0, NULL);
	uint64_t appeared = boottime();
	struct bus_identity a = me(), late;
	struct bus_counts n;
	pid_t child;

	(void)state;
	bus_conn_appeared(f->bus, ":1.1", appeared);
	bus_conn_appeared(f->bus, ":1.2", appeared);
	usleep(30000); /* more than a clock tick */
	child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	late = (struct bus_identity){ child, getuid(), -1 };
	bus_call(f->bus, ":1.1", ":1.2", 1, boottime());
	bus_conn_identity(f->bus, ":1.1", &a);
	bus_conn_identity(f->bus, ":1.2", &late);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	assert_int_equal(n.pidfds, 1); /* only :1.1's */
	/* the wrong uid for a pid is refused the same way */
	bus_conn_appeared(f->bus, ":1.3", boottime());
	a.uid = getuid() + 1;
	bus_call(f->bus, ":1.3", ":1.1", 1, boottime());
	bus_conn_identity(f->bus, ":1.3", &a);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	assert_int_equal(n.pidfds, 1);
	/* impctl donor finds no connection for the child's pid */
	assert_int_equal(bus_set_donor(f->b, child, true), -ESRCH);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	teardown_bus(f);
}

/* A slow or stalled bus: a look-up that cannot be asked now (too many
 * asked at once) or is not answered in time leaves the connection to be
 * asked about again the next time it matters, with its first appearance
 * kept, so that a service started after the attach is still believed once
 * the bus answers; a look-up the bus refuses leaves it opaque. */
static void test_lookup_asked_again(void **state)
{
	struct fixture *f = setup_bus(0, NULL);
	struct bus_identity a = me(), svc;
	struct bus_counts n;
	pid_t child;

	(void)state;
	usleep(30000); /* more than a clock tick after the attach */
	child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sleep(30); /* gone by itself should the test fail */
		_exit(0);
	}
	svc = (struct bus_identity){ child, getuid(), -1 };
	bus_conn_appeared(f->bus, ":1.1", boottime());
	bus_conn_appeared(f->bus, ":1.2", boottime());
	/* too many look-ups at once: the call is not tracked, the connections
	 * stay */
	lookups_busy = true;
	bus_call(f->bus, ":1.1", ":1.2", 1, boottime());
	lookups_busy = false;
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	assert_int_equal(n.connections, 2);
	assert_int_equal(n.resolving, 0);
	/* the next call asks; the service's late answer times out */
	bus_call(f->bus, ":1.1", ":1.2", 2, boottime());
	assert_int_equal(n_asked, 2);
	bus_conn_identity(f->bus, ":1.1", &a);
	bus_conn_unknown(f->bus, ":1.2", -ETIMEDOUT);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0); /* its call ended */
	assert_int_equal(n.connections, 2);
	/* the call after that asks again, and is boosted once answered: the
	 * service's process started after the attach, before its appearance */
	bus_call(f->bus, ":1.1", ":1.2", 3, boottime());
	assert_int_equal(n_asked, 3);
	assert_string_equal(asked[2], ":1.2");
	bus_conn_identity(f->bus, ":1.2", &svc);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 1);
	assert_int_equal(n.undecided, 0);
	assert_int_equal(n.pidfds, 2); /* both believed */
	assert_int_equal(f->b->usage.n[USAGE_INFLIGHT], 1);
	bus_reply(f->bus, ":1.2", ":1.1", 3);
	assert_int_equal(f->b->usage.n[USAGE_INFLIGHT], 0);
	/* refused (not a timeout): opaque, never asked again */
	bus_conn_appeared(f->bus, ":1.3", boottime());
	bus_call(f->bus, ":1.3", ":1.2", 1, boottime());
	assert_int_equal(n_asked, 4);
	bus_conn_unknown(f->bus, ":1.3", -EACCES);
	bus_call(f->bus, ":1.3", ":1.2", 2, boottime());
	assert_int_equal(n_asked, 4);
	bus_counts(f->bus, &n);
	assert_int_equal(n.calls, 0);
	assert_int_equal(bus_check(f->bus), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	teardown_bus(f);
}

static void small_tables(struct broker_config *cfg)
{
	cfg->dbus.max_calls = 8;
	cfg->dbus.max_names = 8;
	snprintf(cfg->dbus.receiver_names[0], IMPD_RULE_LEN, "org.r.*");
	cfg->dbus.n_receiver_names = 1;
}

/* One uid holds at most its share of the call table, and connections not
 * known yet together at most theirs: a flood leaves room for the others. */
static void test_shares(void **state)
{
	struct fixture *f = setup_bus(0, small_tables);
	struct bus_identity a = me();
	struct bus_counts n;
	char name[32];

	(void)state;
	/* unknown callers: undecided calls within one share (8 / 4) */
	for (int i = 0; i < 6; i++)
		bus_call(f->bus, ":1.9", ":1.2", (uint64_t)i + 1, boottime());
	bus_counts(f->bus, &n);
	assert_int_equal(n.undecided, 2);
	/* names of owners not known: within one share */
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "org.r.N%d", i);
		bus_name_owner(f->bus, name, ":1.7");
	}
	bus_counts(f->bus, &n);
	assert_int_equal(n.names, 2);
	/* names nothing waits for and no rule accepts are not kept */
	bus_name_owner(f->bus, "org.other.X", ":1.7");
	bus_counts(f->bus, &n);
	assert_int_equal(n.names, 2);
	assert_int_equal(bus_check(f->bus), 0);
	(void)a;
	teardown_bus(f);
}

/* What uid's bus connections are counted at now. */
static size_t bus_usage(struct fixture *f, uid_t uid)
{
	struct user *u;
	size_t n;

	assert_int_equal(user_get(f->b, uid, &u), 0);
	n = u->usage.n[USAGE_BUS_CONNECTIONS];
	user_put(f->b, u);
	return n;
}

#define USER_BUDGET 4
#define ALL_BUDGET 6
#define OTHER_UID 4242

static void small_budgets(struct broker_config *cfg)
{
	cfg->limits.user_bus_connections = USER_BUDGET;
	cfg->limits.all_bus_connections = ALL_BUDGET;
}

/* A user's bus pays for everything it announces from its owner's budget,
 * whatever it says the connections are: a flood of them stops there, and
 * costs root and the others nothing. */
static void test_user_bus_pays_from_its_owner(void **state)
{
	struct fixture *f = setup_bus(OTHER_UID, small_budgets);
	struct bus_identity id = me();
	struct bus_counts n;
	char u[32];

	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(u, sizeof(u), ":1.%d", 100 + i);
		bus_conn_appeared(f->bus, u, boottime());
		bus_call(f->bus, u, ":1.1", 1, boottime());
	}
	bus_counts(f->bus, &n);
	assert_int_equal(n.connections, USER_BUDGET);
	assert_int_equal(bus_usage(f, OTHER_UID), USER_BUDGET);
	assert_int_equal(bus_usage(f, getuid()), 0);
	/* claimed as root's process: not believed, still the owner's to pay */
	bus_conn_identity(f->bus, ":1.100", &id);
	assert_int_equal(bus_usage(f, OTHER_UID), USER_BUDGET);
	assert_int_equal(bus_usage(f, getuid()), 0);
	bus_counts(f->bus, &n);
	assert_int_equal(n.pidfds, 0);
	/* one goes: there is room for one more */
	bus_conn_gone(f->bus, ":1.101");
	bus_conn_appeared(f->bus, ":1.999", boottime());
	bus_counts(f->bus, &n);
	assert_int_equal(n.connections, USER_BUDGET);
	assert_int_equal(bus_check(f->bus), 0);
	teardown_bus(f);
}

/* On root's bus a connection is counted globally until the bus says whose
 * it is, then in that uid's budget with its pidfd; one over its uid's
 * budget is kept without a pidfd (it neither gives nor takes boosts). */
static void test_root_bus_charges_the_matched_uid(void **state)
{
	struct fixture *f = setup_bus(0, small_budgets);
	struct bus_identity id;
	struct bus_counts n;
	char u[32];

	(void)state;
	for (int i = 0; i < USER_BUDGET + 1; i++) {
		snprintf(u, sizeof(u), ":1.%d", 10 + i);
		bus_conn_appeared(f->bus, u, boottime());
		bus_call(f->bus, u, ":1.99", 1, boottime()); /* asks who it is */
	}
	assert_int_equal(bus_usage(f, getuid()), 0);
	assert_int_equal(f->b->usage.n[USAGE_BUS_CONNECTIONS], USER_BUDGET + 1 + 1); /* and :1.99 */
	for (int i = 0; i < USER_BUDGET + 1; i++) {
		snprintf(u, sizeof(u), ":1.%d", 10 + i);
		id = me();
		bus_conn_identity(f->bus, u, &id);
	}
	bus_counts(f->bus, &n);
	assert_int_equal(n.connections, USER_BUDGET + 2);
	assert_int_equal(n.pidfds, USER_BUDGET);
	assert_int_equal(bus_usage(f, getuid()), USER_BUDGET);
	assert_int_equal(f->b->usage.n[USAGE_BUS_CONNECTIONS], USER_BUDGET + 2);
	assert_int_equal(bus_check(f->bus), 0);
	/* a known one goes: its uid's budget has room again */
	bus_conn_gone(f->bus, ":1.10");
	assert_int_equal(bus_usage(f, getuid()), USER_BUDGET - 1);
	teardown_bus(f);
}

/* Buses of different users together stay within the global budget. */
static void test_buses_share_the_global_budget(void **state)
{
	struct fixture *f = setup_bus(OTHER_UID, small_budgets);
	struct bus *other;
	struct bus_counts n, m;
	char u[32];

	(void)state;
	assert_int_equal(bus_new(f->b, "other", OTHER_UID + 1, &ops, f, &other), 0);
	bus_attached(other, OTHER_UID + 1, boottime());
	for (int i = 0; i < 10; i++) {
		snprintf(u, sizeof(u), ":1.%d", 10 + i);
		bus_conn_appeared(f->bus, u, boottime());
	}
	for (int i = 0; i < 10; i++) {
		snprintf(u, sizeof(u), ":1.%d", 10 + i);
		bus_conn_appeared(other, u, boottime());
	}
	bus_counts(f->bus, &n);
	bus_counts(other, &m);
	assert_int_equal(n.connections, USER_BUDGET);
	assert_int_equal(m.connections, ALL_BUDGET - USER_BUDGET);
	assert_int_equal(f->b->usage.n[USAGE_BUS_CONNECTIONS], ALL_BUDGET);
	assert_int_equal(bus_check(other), 0);
	bus_free(other);
	assert_int_equal(f->b->usage.n[USAGE_BUS_CONNECTIONS], USER_BUDGET);
	teardown_bus(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_before_identity), cmocka_unit_test(test_over_before_identity),
		cmocka_unit_test(test_name_resolved_late),   cmocka_unit_test(test_owner_uid),
		cmocka_unit_test(test_stale_pid),            cmocka_unit_test(test_shares),
		cmocka_unit_test(test_user_bus_pays_from_its_owner),
		cmocka_unit_test(test_root_bus_charges_the_matched_uid),
		cmocka_unit_test(test_buses_share_the_global_budget),
		cmocka_unit_test(test_lookup_asked_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
