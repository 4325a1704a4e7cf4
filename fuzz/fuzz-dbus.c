/* libFuzzer target: importanced's D-Bus monitor handler (daemon/dbus.c)
 * and the bus model under it (daemon/bus.c).
 *
 * A broker with one bus model whose look-ups the harness answers (answer()
 * says how), late and in an order the input picks, between the groups of
 * messages; the bus is owned by root or, as the input says, by another uid.
 * The input is a sequence of routed messages, in groups handled together as
 * the monitor handles what it reads at once, each either built as a real
 * sd-bus message (then read back with dbus_event_from_message, which is how
 * the monitor sees them) or given to the handler as fields directly, with
 * types, flags, names and serials from the input: calls, replies, errors,
 * NameOwnerChanged with right or wrong arguments, anything else.  After
 * every group the engine must be consistent and the bus within its bounds;
 * once the bus is dropped no task, port, message or inherit may be left,
 * nor a message in flight charged to anyone. */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker.h"
#include "bus.h"
#include "dbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pid_t sleeper = -1;
static sd_bus *builder; /* a bus object to build messages with, connected to nothing that answers */
static int listen_fd = -1; /* the broker's (an unused socket: no client connects) */

static void setup(void)
{
	int fds[2];

	sleeper = fork();
	if (sleeper == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("/bin/sleep", "sleep", "infinity", (char *)NULL);
		_exit(127);
	}
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sleeper < 0 || listen_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 || sd_bus_new(&builder) < 0 ||
	    sd_bus_set_fd(builder, fds[0], fds[0]) < 0 || sd_bus_start(builder) < 0)
		abort();
	usleep(50000); /* sleep has replaced the forked copy of us */
}

/* Look-ups asked and not answered yet: the input says when each is. */
#define MAX_ASKED 16
static struct {
	char name[300];
	bool owner; /* resolve_name; else resolve */
} asked[MAX_ASKED];
static size_t n_asked;

static int ask(void *ctx, const char *name, bool owner)
{
	(void)ctx;
	if (n_asked == MAX_ASKED)
		return -EBUSY;
	snprintf(asked[n_asked].name, sizeof(asked[n_asked].name), "%s", name);
	asked[n_asked++].owner = owner;
	return 0;
}

static int fuzz_resolve(void *ctx, const char *unique)
{
	return ask(ctx, unique, false);
}

static int fuzz_resolve_name(void *ctx, const char *name)
{
	return ask(ctx, name, true);
}

static const struct bus_ops ops = { fuzz_resolve, fuzz_resolve_name };

/* Answers the look-up i: unique names ending in an even digit are this
 * process (a donor, by the executable rule), odd ones a child running sleep
 * (not a donor), in 'x' connections whose process cannot be told, others
 * are gone; a ProcessFD or not, as the input says; well-known names belong
 * to a unique name picked from theirs. */
static void answer(struct bus *bus, size_t i, uint8_t how)
{
	char name[300];
	bool owner = asked[i].owner;

	snprintf(name, sizeof(name), "%s", asked[i].name);
	asked[i] = asked[--n_asked];
	if (owner) {
		size_t h = 0;
		char unique[32];

		for (const char *p = name; *p; p++)
			h = h * 31 + (unsigned char)*p;
		snprintf(unique, sizeof(unique), h % 7 == 0 ? "not-unique" : ":1.%zu", h % 10);
		bus_name_owner(bus, name, h % 5 == 0 ? NULL : unique);
	} else {
		size_t n = strlen(name);
		char last = n ? name[n - 1] : 0;
		struct bus_identity id = { .pidfd = -1 };

		if (last == 'x' || last < '0' || last > '9') {
			bus_conn_unknown(bus, name, last == 'x' ? -EACCES : -ESRCH);
			return;
		}
		id.pid = (last - '0') % 2 ? sleeper : getpid();
		id.uid = (last - '0') % 3 ? getuid() : getuid() + 1;
		if (how & 1)
			id.pidfd = (int)syscall(SYS_pidfd_open, id.pid, 0);
		bus_conn_identity(bus, name, &id);
	}
}

/* Names the input picks from; the last slot takes bytes of the input. */
static const char *const names[] = {
	":1.0", ":1.1", ":1.2", ":1.3", ":1.4", ":1.5", ":1.x", "org.freedesktop.DBus", "org.r.A", "org.r.B",
	"org.other", "", NULL,
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

struct input {
	const uint8_t *p;
	size_t left;
	char own[300]; /* a string from the input */
};

static uint8_t byte(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static const char *pick(struct input *in)
{
	uint8_t k = byte(in);

	if (k % (N_NAMES + 2) < N_NAMES)
		return names[k % (N_NAMES + 2)];
	if (k % (N_NAMES + 2) == N_NAMES) {
		/* longer than any bus name may be */
		memset(in->own, 'a', 299);
		in->own[0] = ':';
		in->own[299] = '\0';
		return in->own;
	}
	{
		size_t n = byte(in) % 24, i;

		for (i = 0; i < n && in->left; i++)
			in->own[i] = (char)byte(in);
		in->own[i] = '\0';
		return in->own;
	}
}

/* A real message of the kind the input says, fields set as given where
 * sd-bus lets them be (it refuses invalid names: then none is made). */
static sd_bus_message *build(struct input *in)
{
	uint8_t kind = byte(in) % 4, serial = byte(in);
	const char *sender = pick(in), *dest = pick(in);
	sd_bus_message *call = NULL, *m = NULL;
	int r;

	r = sd_bus_message_new_method_call(builder, &call, NULL, "/x", "org.i", "M");
	if (r >= 0 && kind == 0)
		r = sd_bus_message_set_expect_reply(call, byte(in) & 1);
	if (r >= 0 && sender && sender[0])
		r = sd_bus_message_set_sender(call, sender);
	if (r >= 0 && dest && dest[0])
		r = sd_bus_message_set_destination(call, dest);
	if (r >= 0)
		r = sd_bus_message_seal(call, serial ? serial : 1, 0);
	if (r >= 0 && kind == 0)
		m = sd_bus_message_ref(call);
	else if (r >= 0 && kind == 1)
		r = sd_bus_message_new_method_return(call, &m);
	else if (r >= 0 && kind == 2)
		r = sd_bus_message_new_method_errorf(call, &m, "org.i.Error", "no");
	else if (r >= 0) {
		const char *a = pick(in), *b = pick(in), *c = pick(in);

		r = sd_bus_message_new_signal(builder, &m, "/org/freedesktop/DBus", "org.freedesktop.DBus",
					      byte(in) & 1 ? "NameOwnerChanged" : "NameLost");
		if (r >= 0 && (byte(in) & 1))
			r = sd_bus_message_append(m, "sss", a ? a : "", b ? b : "", c ? c : "");
		else if (r >= 0)
			r = sd_bus_message_append(m, "su", a ? a : "", (uint32_t)byte(in));
		if (r >= 0)
			r = sd_bus_message_set_sender(m, byte(in) & 1 ? "org.freedesktop.DBus" : ":1.0");
	}
	if (r >= 0 && kind != 0) {
		if (kind != 3 && dest && dest[0])
			r = sd_bus_message_set_sender(m, dest); /* the service answers */
		if (r >= 0 && kind != 3 && sender && sender[0])
			r = sd_bus_message_set_destination(m, sender);
		if (r >= 0)
			r = sd_bus_message_seal(m, (uint64_t)serial + 1000, 0);
		if (r >= 0)
			r = sd_bus_message_rewind(m, true);
	}
	sd_bus_message_unref(call);
	if (r < 0)
		m = sd_bus_message_unref(m);
	return m;
}

/* Fields given directly; the names are copied into own (two of them). */
static void fields(struct input *in, struct dbus_event *ev, char own[2][300])
{
	const char *s;

	memset(ev, 0, sizeof(*ev));
	ev->type = byte(in) % 6;
	ev->expect_reply = byte(in) & 1;
	s = pick(in);
	ev->sender = s ? strcpy(own[0], s) : NULL;
	s = pick(in);
	ev->destination = s ? strcpy(own[1], s) : NULL;
	ev->interface = byte(in) & 1 ? "org.freedesktop.DBus" : NULL;
	ev->member = byte(in) & 1 ? "NameOwnerChanged" : "Other";
	ev->serial = byte(in);
	ev->reply_serial = byte(in);
	ev->args[0] = names[byte(in) % N_NAMES];
	ev->args[1] = names[byte(in) % N_NAMES];
	ev->args[2] = names[byte(in) % N_NAMES];
}

#define MAX_TOGETHER 8

/* One to MAX_TOGETHER messages, handled as the monitor handles what it
 * reads at once. */
static void step(struct bus *bus, struct input *in)
{
	uint8_t sel = byte(in);
	size_t n = 1 + (size_t)(sel >> 1) % MAX_TOGETHER, k = 0;
	sd_bus_message *msgs[MAX_TOGETHER] = { NULL };
	struct dbus_event evs[MAX_TOGETHER];
	char own[MAX_TOGETHER][2][300];

	/* some of the look-ups asked are answered first, in any order */
	while (n_asked && (byte(in) & 1))
		answer(bus, byte(in) % n_asked, byte(in));
	for (size_t i = 0; i < n && in->left; i++) {
		if (sel & 1) {
			sd_bus_message *m = build(in);

			if (m && dbus_event_from_message(m, &evs[k]) == 0)
				msgs[k++] = m;
			else
				sd_bus_message_unref(m);
		} else {
			fields(in, &evs[k], own[k]);
			k++;
		}
	}
	dbus_handle_batch(bus, evs, k, (uint64_t)byte(in) << 40);
	for (size_t i = 0; i < k; i++)
		sd_bus_message_unref(msgs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size, { 0 } };
	struct broker_config cfg;
	struct bus *bus;
	struct broker *b;
	sd_event *ev;
	imp_stats st;
	uint8_t mode;

	if (sleeper < 0)
		setup();
	mode = byte(&in);
	config_defaults(&cfg);
	cfg.backend.kind = BACKEND_NONE;
	cfg.verbose = getenv("FUZZ_DBUS_VERBOSE") != NULL; /* connections resolved, boosts */
	if (readlink("/proc/self/exe", cfg.donors.exes[0], IMPD_RULE_LEN - 1) > 0)
		cfg.donors.n_exes = 1;
	cfg.dbus.max_connections = 1 + mode % 8;
	cfg.dbus.max_names = 1 + (mode >> 3) % 4;
	cfg.dbus.max_calls = 1 + (mode >> 5);
	cfg.limits.user_inflight = 12;
	if (mode & 0x10) {
		snprintf(cfg.dbus.receiver_names[0], IMPD_RULE_LEN, "org.r.*");
		cfg.dbus.n_receiver_names = 1;
	}
	if (sd_event_new(&ev) < 0 || broker_new(ev, &cfg, listen_fd, &b) < 0 || bus_new(b, "fuzz", mode & 0x80 ? getuid() + 1 : getuid(), &ops, NULL, &bus) < 0)
		abort();
	while (in.left) {
		struct bus_counts n;

		step(bus, &in);
		if (imp_domain_verify(b->dom) < 0) {
			fprintf(stderr, "engine inconsistent: %s\n", imp_last_error());
			abort();
		}
		if (bus_check(bus) < 0) {
			fprintf(stderr, "bus model inconsistent\n");
			abort();
		}
		bus_counts(bus, &n);
		if (n.connections > cfg.dbus.max_connections || n.names > cfg.dbus.max_names ||
		    n.calls > cfg.dbus.max_calls) {
			fprintf(stderr, "beyond the bounds: %zu connections, %zu names, %zu calls\n", n.connections,
				n.names, n.calls);
			abort();
		}
	}
	while (n_asked) /* answers that come after the bus went find nothing */
		n_asked--;
	bus_free(bus);
	imp_domain_get_stats(b->dom, &st);
	if (st.task_elems || st.ports || st.messages || st.inherits || b->usage.n[USAGE_INFLIGHT] ||
	    b->usage.n[USAGE_BUS_CONNECTIONS]) {
		fprintf(stderr,
			"left after the bus went: %zu tasks, %zu ports, %zu messages, %zu inherits, %zu in flight, "
			"%zu bus connections\n",
			st.task_elems, st.ports, st.messages, st.inherits, b->usage.n[USAGE_INFLIGHT],
			b->usage.n[USAGE_BUS_CONNECTIONS]);
		abort();
	}
	broker_free(b);
	sd_event_unref(ev);
	return 0;
}
