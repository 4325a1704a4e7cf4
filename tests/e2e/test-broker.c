/*
 * End-to-end tests of importanced with real processes.  Each test starts a
 * daemon on its own socket (nice backend), forks clients that talk to it
 * through libimportance-client, and looks at the clients' real nice values.
 * Children are driven through pipes: the parent writes a command byte, the
 * child answers with a byte when done.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "importance/client.h"
#include "importance/importance.h"
#include "importance/protocol.h"
#include "e2e.h"

#define NICE_SERVER 10
#define NICE_BOOST -10 /* importanced's default boost-nice */

/* Every test's daemon takes at most 8 ports per client, plus extra. */
static void start_daemon(const char *extra)
{
	char args[512];

	snprintf(args, sizeof(args), "--max-ports 8 %s", extra ? extra : "");
	e2e_start_daemon(args);
}

static void stop_daemon(void)
{
	e2e_stop_daemon();
}

static impc *admin(void)
{
	impc *c;

	assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &c, NULL), 0);
	return c;
}

/* ---- children ---- */

struct child {
	pid_t pid;
	int cmd;   /* parent writes */
	int reply; /* parent reads */
};

struct role {
	const char *name;    /* port name served (servers) or looked up (senders) */
	const char *forward; /* servers: pass each message on to this name */
	unsigned flags;      /* IMPC_RECEIVER / IMPC_DENAP_RECEIVER */
	int nice;
	uid_t uid;           /* 0: stay root */
};

static void *idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* A client process: a server (receiver) or a sender, driven by bytes. */
static void child_main(const struct role *r, int cmd, int reply)
{
	impc *c;
	uint64_t port = 0, peer = 0, voucher = 0;
	impc_message m;
	bool donor;
	char op;

	if (r->nice)
		setpriority(PRIO_PROCESS, 0, r->nice);
	if (r->uid && setuid(r->uid) < 0)
		_exit(4);
	if (impc_connect(e2e_sock, r->flags, &c, &donor) < 0)
		_exit(5);
	if (r->flags & (IMPC_RECEIVER | IMPC_DENAP_RECEIVER)) {
		if (impc_port_allocate(c, true, &port) < 0 || impc_register(c, r->name, port) < 0)
			_exit(6);
	}
	e2e_say(reply, donor ? 'D' : 'R');
	while ((op = e2e_hear(cmd, -1))) {
		int e = 0;

		switch (op) {
		case 's': /* send one request to the name */
			if (!peer && (e = impc_lookup(c, r->name, &peer)) < 0)
				break;
			e = impc_send(c, peer, "work", 4, 0, 0, 0, NULL);
			break;
		case 'v': /* receive with a voucher, pass the work on if asked */
			if ((e = impc_receive(c, port, 5000, IMPC_RECV_VOUCHER, &m)) < 0)
				break;
			free(m.data);
			voucher = m.voucher;
			if (r->forward) {
				if (!peer && (e = impc_lookup(c, r->forward, &peer)) < 0)
					break;
				e = impc_send(c, peer, "more", 4, voucher, 0, 0, NULL);
			}
			break;
		case 'l': /* legacy receive */
			if ((e = impc_receive(c, port, 5000, 0, &m)) == 0)
				free(m.data);
			break;
		case 'c':
			e = impc_legacy_complete(c) == IMP_KERN_SUCCESS ? 0 : -EINVAL;
			break;
		case 'x': /* the work is done */
			e = impc_voucher_release(c, voucher);
			voucher = 0;
			break;
		case 'd':
			e = impc_voucher_drop_external(c, voucher, 1, NULL) == IMP_KERN_SUCCESS ? 0 : -EINVAL;
			break;
		case 't': { /* start a thread (it idles) */
			pthread_t th;

			e = -pthread_create(&th, NULL, idle_thread, NULL);
			break;
		}
		case 'q':
			impc_close(c);
			_exit(0);
		default:
			e = -EINVAL;
		}
		e2e_say(reply, e < 0 ? 'E' : 'K');
	}
	_exit(0);
}

static struct child spawn(const struct role *r)
{
	int to[2], from[2];
	struct child ch;
	char hello;

	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	ch.pid = e2e_fork();
	assert_true(ch.pid >= 0);
	if (ch.pid == 0) {
		close(to[1]);
		close(from[0]);
		child_main(r, to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	ch.cmd = to[1];
	ch.reply = from[0];
	hello = e2e_hear(ch.reply, 5000);
	assert_true(hello == 'R' || hello == 'D');
	return ch;
}

static void order(struct child *ch, char op)
{
	char c;

	e2e_say(ch->cmd, op);
	c = e2e_hear(ch->reply, 10000);
	if (c != 'K')
		fail_msg("child %d: '%c' answered '%c'", (int)ch->pid, op, c ? c : '?');
}

static void finish(struct child *ch)
{
	int status;

	e2e_say(ch->cmd, 'q');
	waitpid(ch->pid, &status, 0);
	close(ch->cmd);
	close(ch->reply);
}

static void make_donor(pid_t pid, bool on)
{
	impc *a = admin();
	int e, tries = 0;

	/* a process just forked may not have said hello yet */
	while ((e = impc_donor(a, pid, on)) == -ESRCH && tries++ < 500)
		usleep(2000);
	assert_int_equal(e, 0);
	impc_close(a);
}

static impc_status status_now(void)
{
	impc *a = admin();
	impc_status st;

	assert_int_equal(impc_status_get(a, &st), 0);
	impc_close(a);
	return st;
}

/* ---- tests ---- */

static void test_boost_while_queued(void **state)
{
	struct role srv = { "svc", NULL, IMPC_RECEIVER, NICE_SERVER, 0 };
	struct role snd = { "svc", NULL, 0, 0, 0 };
	struct child s, d;

	(void)state;
	start_daemon(NULL);
	s = spawn(&srv);
	d = spawn(&snd);
	make_donor(d.pid, true);
	assert_int_equal(e2e_nice(s.pid), NICE_SERVER);
	order(&d, 's'); /* the request is queued: the server is boosted */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 2000) >= 0);
	order(&s, 'v'); /* taken with a voucher: still boosted while working */
	assert_int_equal(e2e_nice(s.pid), NICE_BOOST);
	order(&s, 'x'); /* done: the boost goes */
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 2000) >= 0);
	/* a legacy receive: boosted until the server says it is done */
	order(&d, 's');
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 2000) >= 0);
	order(&s, 'l');
	assert_int_equal(e2e_nice(s.pid), NICE_BOOST);
	order(&s, 'c');
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 2000) >= 0);
	finish(&s);
	finish(&d);
	stop_daemon();
}

/* A -> B -> C: B and C niced receivers, B passing its work on to C, A a
 * donor. */
static void spawn_chain(struct child *a, struct child *b, struct child *c)
{
	static const struct role cr = { "c", NULL, IMPC_RECEIVER, NICE_SERVER, 0 };
	static const struct role br = { "b", "c", IMPC_RECEIVER, NICE_SERVER, 0 };
	static const struct role ar = { "b", NULL, 0, 0, 0 };

	*c = spawn(&cr);
	*b = spawn(&br);
	*a = spawn(&ar);
	make_donor(a->pid, true);
}

/* The thread of pid other than pid itself (the child has at most one). */
static pid_t other_thread(pid_t pid)
{
	char path[64];
	struct dirent *de;
	pid_t tid = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	assert_non_null(dir = opendir(path));
	while ((de = readdir(dir)))
		if (atoi(de->d_name) > 0 && atoi(de->d_name) != pid)
			tid = (pid_t)atoi(de->d_name);
	closedir(dir);
	return tid;
}

/* A thread started while its process is boosted inherits the boosted nice;
 * the unboost takes it back down with the others. */
static void test_thread_born_boosted(void **state)
{
	struct role srv = { "svc", NULL, IMPC_RECEIVER, NICE_SERVER, 0 };
	struct role snd = { "svc", NULL, 0, 0, 0 };
	struct child s, d;
	pid_t tid;

	(void)state;
	start_daemon(NULL);
	s = spawn(&srv);
	d = spawn(&snd);
	make_donor(d.pid, true);
	order(&d, 's');
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 2000) >= 0);
	order(&s, 't');
	tid = other_thread(s.pid);
	assert_true(tid > 0);
	assert_int_equal(e2e_nice(tid), NICE_BOOST);
	order(&s, 'v');
	order(&s, 'x'); /* done: the boost goes, from both threads */
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 2000) >= 0);
	assert_true(e2e_wait_nice(tid, NICE_SERVER, 2000) >= 0);
	/* and the next boost takes both */
	order(&d, 's');
	assert_true(e2e_wait_nice(tid, NICE_BOOST, 2000) >= 0);
	assert_int_equal(e2e_nice(s.pid), NICE_BOOST);
	order(&s, 'v');
	order(&s, 'x');
	assert_true(e2e_wait_nice(tid, NICE_SERVER, 2000) >= 0);
	finish(&s);
	finish(&d);
	stop_daemon();
}

static void test_chain(void **state)
{
	struct child c, b, a;
	impc *mon;
	char *graph = NULL;

	(void)state;
	start_daemon(NULL);
	spawn_chain(&a, &b, &c);
	order(&a, 's');
	assert_true(e2e_wait_nice(b.pid, NICE_BOOST, 2000) >= 0);
	order(&b, 'v'); /* B works on it and passes it on with its voucher */
	assert_true(e2e_wait_nice(c.pid, NICE_BOOST, 2000) >= 0);
	mon = admin();
	assert_int_equal(impc_graph(mon, &graph), 0);
	assert_non_null(strstr(graph, "donating"));
	free(graph);
	impc_close(mon);
	order(&c, 'v');
	order(&c, 'x');
	/* C's work is done but B still holds the upstream voucher */
	assert_true(e2e_wait_nice(c.pid, NICE_SERVER, 2000) >= 0);
	assert_int_equal(e2e_nice(b.pid), NICE_BOOST);
	order(&b, 'x');
	assert_true(e2e_wait_nice(b.pid, NICE_SERVER, 2000) >= 0);
	finish(&a);
	finish(&b);
	finish(&c);
	stop_daemon();
}

static void test_donor_goes_background(void **state)
{
	struct child c, b, a;

	(void)state;
	start_daemon(NULL);
	spawn_chain(&a, &b, &c);
	order(&a, 's');
	order(&b, 'v'); /* B holds A's boost, C has B's request queued */
	assert_true(e2e_wait_nice(c.pid, NICE_BOOST, 2000) >= 0);
	make_donor(a.pid, false); /* A goes to the background: the chain drops */
	assert_true(e2e_wait_nice(b.pid, NICE_SERVER, 2000) >= 0);
	assert_true(e2e_wait_nice(c.pid, NICE_SERVER, 2000) >= 0);
	make_donor(a.pid, true); /* and comes back */
	assert_true(e2e_wait_nice(b.pid, NICE_BOOST, 2000) >= 0);
	assert_true(e2e_wait_nice(c.pid, NICE_BOOST, 2000) >= 0);
	finish(&a);
	finish(&b);
	finish(&c);
	stop_daemon();
}

static void test_denap_hysteresis(void **state)
{
	struct role nr = { "nap", NULL, IMPC_DENAP_RECEIVER, NICE_SERVER, 0 };
	struct role dr = { "nap", NULL, 0, 0, 0 };
	struct child n, d;
	uint64_t t0;
	long waited;

	(void)state;
	start_daemon(NULL);
	n = spawn(&nr);
	d = spawn(&dr);
	make_donor(d.pid, true);
	order(&d, 's');
	assert_true(e2e_wait_nice(n.pid, NICE_BOOST, 2000) >= 0);
	order(&n, 'v');
	t0 = e2e_now_ms();
	order(&n, 'd'); /* boosts dropped: the unboost waits out 1.1 s */
	usleep(500 * 1000);
	assert_int_equal(e2e_nice(n.pid), NICE_BOOST);
	waited = e2e_wait_nice(n.pid, NICE_SERVER, 3000);
	assert_true(waited >= 0);
	waited = (long)(e2e_now_ms() - t0);
	print_message("de-nap unboost after %ld ms\n", waited);
	assert_true(waited >= 1100 && waited < 2500);
	finish(&n);
	finish(&d);
	stop_daemon();
}

static void test_non_donor_cannot_boost(void **state)
{
	struct role srv = { "svc", NULL, IMPC_RECEIVER, NICE_SERVER, 0 };
	struct role snd = { "svc", NULL, 0, 0, 0 };
	struct child s, d;

	(void)state;
	start_daemon(NULL);
	s = spawn(&srv);
	d = spawn(&snd); /* not a donor by policy, and nobody made it one */
	order(&d, 's');
	usleep(200 * 1000);
	assert_int_equal(e2e_nice(s.pid), NICE_SERVER);
	/* nor can it ask for a static boost, or make itself a donor */
	{
		impc *self;
		uint64_t port;
		bool donor = true;

		assert_int_equal(impc_connect(e2e_sock, 0, &self, &donor), 0);
		assert_false(donor);
		assert_int_equal(impc_lookup(self, "svc", &port), 0);
		assert_int_equal(impc_send(self, port, "x", 1, 0, 0, 1u /* importance */, NULL), -EPERM);
		impc_close(self);
	}
	{
		/* an unprivileged client asking to be a donor is refused */
		int status;
		pid_t p = fork();

		if (p == 0) {
			impc *self;

			if (setuid(65534) < 0 || impc_connect(e2e_sock, 0, &self, NULL) < 0)
				_exit(2);
			_exit(impc_donor(self, getpid(), true) == -EPERM ? 0 : 1);
		}
		waitpid(p, &status, 0);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	order(&s, 'l');
	assert_int_equal(e2e_nice(s.pid), NICE_SERVER);
	finish(&s);
	finish(&d);
	stop_daemon();
}

static void test_donor_by_uid(void **state)
{
	struct role srv = { "svc", NULL, IMPC_RECEIVER, NICE_SERVER, 0 };
	struct role nobody = { "svc", NULL, 0, 0, 65534 };
	struct child s, d;

	(void)state;
	start_daemon("--donor-uid 65534");
	s = spawn(&srv);
	d = spawn(&nobody);
	order(&d, 's');
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 2000) >= 0);
	order(&s, 'l');
	order(&s, 'c');
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 2000) >= 0);
	finish(&s);
	finish(&d);
	stop_daemon();
}

static void test_sigkill_leaves_nothing(void **state)
{
	struct role srv = { "svc", NULL, IMPC_RECEIVER, NICE_SERVER, 0 };
	struct role fwd = { "mid", "svc", IMPC_RECEIVER, NICE_SERVER, 0 };
	struct role snd = { "mid", NULL, 0, 0, 0 };
	struct child s, m, d;
	impc_status base, st;
	char *tasks;
	impc *a;

	(void)state;
	start_daemon(NULL);
	base = status_now();
	s = spawn(&srv);
	m = spawn(&fwd);
	d = spawn(&snd);
	make_donor(d.pid, true);
	order(&d, 's');
	order(&m, 'v'); /* M holds the boost and has a request queued at S */
	assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 2000) >= 0);
	kill(m.pid, SIGKILL);
	waitpid(m.pid, NULL, 0);
	/* the queued request still carries A's boost through M's voucher */
	assert_int_equal(e2e_nice(s.pid), NICE_BOOST);
	order(&s, 'v');
	order(&s, 'x');
	assert_true(e2e_wait_nice(s.pid, NICE_SERVER, 2000) >= 0);
	/* now kill the server with a boosting request queued */
	{
		struct role snd2 = { "svc", NULL, 0, 0, 0 };
		struct child d2 = spawn(&snd2);

		make_donor(d2.pid, true);
		order(&d2, 's');
		assert_true(e2e_wait_nice(s.pid, NICE_BOOST, 2000) >= 0);
		kill(s.pid, SIGKILL);
		waitpid(s.pid, NULL, 0);
		finish(&d2);
	}
	finish(&d);
	usleep(100 * 1000);
	st = status_now();
	assert_int_equal(st.task_elems, base.task_elems);
	assert_int_equal(st.inherits, 0);
	assert_int_equal(st.vouchers, 0);
	assert_int_equal(st.ports, 0);
	assert_int_equal(st.messages, 0);
	a = admin();
	assert_int_equal(impc_tasks(a, &tasks), 0);
	assert_null(strstr(tasks, " yes     ")); /* nobody boosted */
	free(tasks);
	impc_close(a);
	close(m.cmd);
	close(m.reply);
	close(s.cmd);
	close(s.reply);
	stop_daemon();
}

static void test_destroyed_message_tells_sender(void **state)
{
	struct role srv = { "svc", NULL, IMPC_RECEIVER, NICE_SERVER, 0 };
	struct child s;
	impc *d;
	uint64_t port, id;
	impc_event ev;

	(void)state;
	start_daemon(NULL);
	s = spawn(&srv);
	assert_int_equal(impc_connect(e2e_sock, 0, &d, NULL), 0);
	assert_int_equal(impc_lookup(d, "svc", &port), 0);
	assert_int_equal(impc_send(d, port, "x", 1, 0, 0, 0, &id), 0);
	kill(s.pid, SIGKILL);
	waitpid(s.pid, NULL, 0);
	assert_int_equal(impc_next_event(d, 2000, &ev), 0);
	assert_int_equal(ev.kind, IMPC_EVENT_MSG_DESTROYED);
	assert_int_equal(ev.msg_id, id);
	assert_int_equal(impc_send(d, port, "x", 1, 0, 0, 0, NULL), -EPIPE);
	impc_close(d);
	close(s.cmd);
	close(s.reply);
	stop_daemon();
}

static void raw_frame(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static int32_t raw_status(int fd, uint16_t *type)
{
	uint8_t buf[256];
	struct impp_header h;
	int32_t st;
	struct pollfd p = { fd, POLLIN, 0 };

	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_true(recv(fd, buf, sizeof(buf), 0) >= (ssize_t)(sizeof(h) + 4));
	memcpy(&h, buf, sizeof(h));
	memcpy(&st, buf + sizeof(h), sizeof(st));
	*type = h.type;
	return st;
}

static void test_malformed_frames(void **state)
{
	struct role srv = { "svc", NULL, IMPC_RECEIVER, NICE_SERVER, 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct child s;
	struct impp_header h;
	uint8_t *big;
	uint16_t type;
	impc *good;
	uint64_t port;
	impc_status st;
	int fd;

	(void)state;
	start_daemon(NULL);
	s = spawn(&srv);
	strcpy(sa.sun_path, e2e_sock);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	raw_frame(fd, "abc", 3); /* shorter than a header */
	assert_int_equal(raw_status(fd, &type), -EBADMSG);
	assert_int_equal(type, IMPP_EVT_ERROR);
	h = (struct impp_header){ 0xdeadbeef, IMPP_REQ_HELLO, 0, 1, 0 };
	raw_frame(fd, &h, sizeof(h)); /* bad magic */
	assert_int_equal(raw_status(fd, &type), -EBADMSG);
	h = (struct impp_header){ IMPP_MAGIC, IMPP_REQ_HELLO, 0, 2, 100 };
	raw_frame(fd, &h, sizeof(h)); /* truncated: says 100 bytes follow */
	assert_int_equal(raw_status(fd, &type), -EBADMSG);
	h = (struct impp_header){ IMPP_MAGIC, IMPP_REQ_SEND, 0, 3, 0 };
	raw_frame(fd, &h, sizeof(h)); /* before hello */
	assert_int_equal(raw_status(fd, &type), -EPROTO);
	h = (struct impp_header){ IMPP_MAGIC, 999, 0, 4, 0 };
	raw_frame(fd, &h, sizeof(h)); /* unknown request */
	assert_int_equal(raw_status(fd, &type), -EOPNOTSUPP);
	big = calloc(1, IMPP_MAX_REQUEST + 100); /* oversized */
	h = (struct impp_header){ IMPP_MAGIC, IMPP_REQ_SEND, 0, 5, IMPP_MAX_REQUEST + 100 - sizeof(h) };
	memcpy(big, &h, sizeof(h));
	raw_frame(fd, big, IMPP_MAX_REQUEST + 100);
	free(big);
	assert_int_equal(raw_status(fd, &type), -EMSGSIZE);

	/* everyone else is served meanwhile */
	assert_int_equal(impc_connect(e2e_sock, 0, &good, NULL), 0);
	assert_int_equal(impc_lookup(good, "svc", &port), 0);
	assert_int_equal(impc_send(good, port, "ok", 2, 0, 0, 0, NULL), 0);
	order(&s, 'l');
	st = status_now();
	assert_true(st.protocol_errors >= 5);
	impc_close(good);
	close(fd);
	finish(&s);
	stop_daemon();
}

static void test_quotas_and_rights(void **state)
{
	impc *c, *other;
	uint64_t port, ports[8], bogus = 12345;
	int i, e = 0;

	(void)state;
	start_daemon(NULL); /* --max-ports 8 */
	assert_int_equal(impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL), 0);
	for (i = 0; i < 8; i++)
		assert_int_equal(impc_port_allocate(c, true, &ports[i]), 0);
	assert_int_equal(impc_port_allocate(c, true, &port), -EDQUOT);
	assert_int_equal(impc_register(c, "taken", ports[0]), 0);
	assert_int_equal(impc_register(c, "taken", ports[1]), -EEXIST);
	assert_int_equal(impc_connect(e2e_sock, IMPC_RECEIVER, &other, NULL), 0);
	/* no send right without a lookup; no receive on another's port */
	assert_int_equal(impc_send(other, ports[1], "x", 1, 0, 0, 0, NULL), -EACCES);
	assert_int_equal(impc_send(other, bogus, "x", 1, 0, 0, 0, NULL), -EACCES);
	{
		impc_message m;

		assert_int_equal(impc_receive(other, ports[0], 0, 0, &m), -ENOENT);
		assert_int_equal(impc_receive(c, ports[0], 0, 0, &m), -EAGAIN);
		assert_int_equal(impc_receive(c, ports[0], 50, 0, &m), -ETIMEDOUT);
	}
	assert_int_equal(impc_voucher_release(other, 77), -ENOENT);
	assert_int_equal(impc_lookup(other, "missing", &port), -ENOENT);
	e = impc_send(other, 0, NULL, IMPP_MAX_PAYLOAD + 1, 0, 0, 0, NULL);
	assert_int_equal(e, -EMSGSIZE);
	impc_close(other);
	impc_close(c);
	stop_daemon();
}

static void test_send_receive(void **state)
{
	impc *srv, *cli;
	uint64_t port, peer, reply;
	impc_message m;
	impc_send_args req = { 0, "ping", 4, 0, 0, 0 }, rep = { 0, "pong", 4, 0, 0, 0 };

	(void)state;
	start_daemon(NULL);
	assert_int_equal(impc_connect(e2e_sock, IMPC_RECEIVER, &srv, NULL), 0);
	assert_int_equal(impc_port_allocate(srv, true, &port), 0);
	assert_int_equal(impc_register(srv, "echo", port), 0);
	assert_int_equal(impc_connect(e2e_sock, 0, &cli, NULL), 0);
	assert_int_equal(impc_lookup(cli, "echo", &peer), 0);
	assert_int_equal(impc_port_allocate(cli, false, &reply), 0);
	req.port = peer;
	req.reply_port = reply;
	/* the client's call, polling: the request goes, no reply yet */
	assert_int_equal(impc_send_receive(cli, &req, 0, reply, 0, 0, &m), -EAGAIN);
	/* the server takes it with a voucher and a send right to the reply port */
	assert_int_equal(impc_receive(srv, port, 0, IMPC_RECV_VOUCHER, &m), 0);
	assert_int_equal(m.len, 4);
	assert_memory_equal(m.data, "ping", 4);
	assert_int_equal(m.reply_port, reply);
	free(m.data);
	/* its loop step: reply, release the voucher, wait for the next */
	rep.port = m.reply_port;
	{
		uint64_t held = m.voucher;

		assert_true(held != 0);
		assert_int_equal(impc_send_receive(srv, &rep, held, port, 0, IMPC_RECV_VOUCHER, &m), -EAGAIN);
		/* it was released by the call */
		assert_int_equal(impc_voucher_release(srv, held), -ENOENT);
	}
	assert_int_equal(impc_receive(cli, reply, 1000, 0, &m), 0);
	assert_memory_equal(m.data, "pong", 4);
	free(m.data);
	/* a send error is returned and nothing is received */
	req.port = 424242;
	assert_int_equal(impc_send_receive(cli, &req, 0, reply, -1, 0, &m), -EACCES);
	/* releasing a voucher we do not hold is refused before anything else */
	assert_int_equal(impc_send_receive(cli, NULL, 77, reply, 0, 0, &m), -ENOENT);
	assert_int_equal(status_now().messages, 0);
	impc_close(cli);
	impc_close(srv);
	stop_daemon();
}

/* A raw BATCH frame from a connection that said hello; returns the status. */
static int32_t raw_batch(int fd, uint32_t serial, const void *body, size_t len)
{
	uint8_t buf[512];
	struct impp_header h = { IMPP_MAGIC, IMPP_REQ_BATCH, 0, serial, (uint32_t)len };
	uint16_t type;
	int32_t st;

	assert_true(sizeof(h) + len <= sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	raw_frame(fd, buf, sizeof(h) + len);
	st = raw_status(fd, &type);
	assert_int_equal(type, IMPP_REPLY(IMPP_REQ_BATCH));
	return st;
}

static void test_batch(void **state)
{
	impc *srv, *cli;
	uint64_t port, peer, reply, ids[4], vouchers[8], bogus_voucher = 77;
	impc_message msgs[8];
	int send_st[4], rel_st[8];
	impc_send_args reqs[4];
	impc_batch bt;
	pid_t p;

	(void)state;
	start_daemon(NULL);
	assert_int_equal(impc_connect(e2e_sock, IMPC_RECEIVER, &srv, NULL), 0);
	assert_int_equal(impc_port_allocate(srv, true, &port), 0);
	assert_int_equal(impc_register(srv, "batch", port), 0);
	assert_int_equal(impc_connect(e2e_sock, 0, &cli, NULL), 0);
	assert_int_equal(impc_lookup(cli, "batch", &peer), 0);
	assert_int_equal(impc_port_allocate(cli, false, &reply), 0);

	/* three requests, one to a port we have no right to, a release of a
	 * voucher we do not hold, and a poll for replies: each item has its
	 * own result and the failures stop nothing */
	reqs[0] = (impc_send_args){ peer, "a", 1, 0, reply, 0 };
	reqs[1] = (impc_send_args){ peer, "b", 1, 0, reply, 0 };
	reqs[2] = (impc_send_args){ 424242, "x", 1, 0, 0, 0 };
	reqs[3] = (impc_send_args){ peer, "d", 1, 0, reply, 0 };
	bt = (impc_batch){ .release = &bogus_voucher, .n_release = 1, .send = reqs, .n_send = 4,
			   .recv_port = reply, .timeout_ms = 0, .msgs = msgs, .max_msgs = 8,
			   .release_status = rel_st, .send_status = send_st, .msg_ids = ids };
	assert_int_equal(impc_exchange(cli, &bt), 0);
	assert_int_equal(rel_st[0], -ENOENT);
	assert_int_equal(send_st[0], 0);
	assert_int_equal(send_st[1], 0);
	assert_int_equal(send_st[2], -EACCES);
	assert_int_equal(send_st[3], 0);
	assert_true(ids[0] && ids[1] > ids[0] && ids[3] > ids[1]);
	assert_int_equal(ids[2], 0);
	assert_int_equal(bt.n_msgs, 0);
	assert_int_equal(bt.recv_status, -EAGAIN);
	assert_int_equal(status_now().messages, 3);

	/* the server takes at most what it asks for, in order, with vouchers */
	bt = (impc_batch){ .recv_port = port, .timeout_ms = -1, .recv_flags = IMPC_RECV_VOUCHER,
			   .msgs = msgs, .max_msgs = 2 };
	assert_int_equal(impc_exchange(srv, &bt), 0);
	assert_int_equal(bt.n_msgs, 2);
	assert_memory_equal(msgs[0].data, "a", 1);
	assert_memory_equal(msgs[1].data, "b", 1);
	assert_int_equal(msgs[0].msg_id, ids[0]);
	assert_int_equal(msgs[1].reply_port, reply);
	vouchers[0] = msgs[0].voucher;
	vouchers[1] = msgs[1].voucher;
	free(msgs[0].data);
	free(msgs[1].data);
	bt.max_msgs = 8;
	assert_int_equal(impc_exchange(srv, &bt), 0);
	assert_int_equal(bt.n_msgs, 1);
	assert_memory_equal(msgs[0].data, "d", 1);
	vouchers[2] = msgs[0].voucher;
	free(msgs[0].data);
	assert_true(vouchers[0] && vouchers[1] && vouchers[2]);

	/* replies and releases go with a receive that times out */
	reqs[0] = (impc_send_args){ reply, "A", 1, 0, 0, 0 };
	reqs[1] = (impc_send_args){ reply, "B", 1, 0, 0, 0 };
	reqs[2] = (impc_send_args){ reply, "D", 1, 0, 0, 0 };
	bt = (impc_batch){ .release = vouchers, .n_release = 3, .send = reqs, .n_send = 3,
			   .recv_port = port, .timeout_ms = 100, .recv_flags = IMPC_RECV_VOUCHER,
			   .msgs = msgs, .max_msgs = 8, .release_status = rel_st, .send_status = send_st };
	assert_int_equal(impc_exchange(srv, &bt), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rel_st[i], 0);
		assert_int_equal(send_st[i], 0);
	}
	assert_int_equal(bt.n_msgs, 0);
	assert_int_equal(bt.recv_status, -ETIMEDOUT);
	assert_int_equal(status_now().vouchers, 0);
	bt = (impc_batch){ .recv_port = reply, .timeout_ms = 1000, .msgs = msgs, .max_msgs = 8 };
	assert_int_equal(impc_exchange(cli, &bt), 0);
	assert_int_equal(bt.n_msgs, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_memory_equal(msgs[i].data, i == 0 ? "A" : i == 1 ? "B" : "D", 1);
		free(msgs[i].data);
	}

	/* a reply stops before it would pass the frame limit; the rest waits */
	{
		char *big = calloc(1, 60000);

		assert_non_null(big);
		for (int i = 0; i < 3; i++) {
			big[0] = (char)('x' + i);
			assert_int_equal(impc_send(cli, peer, big, 60000, 0, 0, 0, NULL), 0);
		}
		free(big);
		bt = (impc_batch){ .recv_port = port, .timeout_ms = 0, .msgs = msgs, .max_msgs = 8 };
		assert_int_equal(impc_exchange(srv, &bt), 0);
		assert_int_equal(bt.n_msgs, 2);
		for (size_t i = 0; i < 2; i++) {
			assert_int_equal(msgs[i].len, 60000);
			assert_int_equal(((char *)msgs[i].data)[0], (char)('x' + i));
			free(msgs[i].data);
		}
		assert_int_equal(impc_exchange(srv, &bt), 0);
		assert_int_equal(bt.n_msgs, 1);
		assert_int_equal(((char *)msgs[0].data)[0], 'z');
		free(msgs[0].data);
	}

	/* a request at the frame limit goes; one past it is refused here */
	{
		char *full = calloc(1, IMPP_MAX_PAYLOAD);
		impc_send_args three[3];

		assert_non_null(full);
		for (int i = 0; i < 3; i++)
			three[i] = (impc_send_args){ peer, full, IMPP_MAX_PAYLOAD, 0, 0, 0 };
		bt = (impc_batch){ .send = three, .n_send = 3, .send_status = send_st };
		assert_int_equal(impc_exchange(cli, &bt), -E2BIG);
		bt.n_send = 2;
		assert_int_equal(impc_exchange(cli, &bt), 0);
		assert_int_equal(send_st[0], 0);
		assert_int_equal(send_st[1], 0);
		free(full);
		bt = (impc_batch){ .recv_port = port, .timeout_ms = 0, .msgs = msgs, .max_msgs = 8 };
		assert_int_equal(impc_exchange(srv, &bt), 0);
		assert_int_equal(bt.n_msgs, 2); /* both fit in one reply */
		for (size_t i = 0; i < 2; i++) {
			assert_int_equal(msgs[i].len, IMPP_MAX_PAYLOAD);
			free(msgs[i].data);
		}
	}

	/* a waiting server gets another client's whole batch in one reply */
	p = e2e_fork();
	assert_true(p >= 0);
	if (p == 0) {
		impc *c2;
		uint64_t to;
		impc_send_args three[3] = { { 0, "1", 1, 0, 0, 0 }, { 0, "2", 1, 0, 0, 0 }, { 0, "3", 1, 0, 0, 0 } };
		impc_batch b2 = { .send = three, .n_send = 3 };

		usleep(100 * 1000);
		if (impc_connect(e2e_sock, 0, &c2, NULL) < 0 || impc_lookup(c2, "batch", &to) < 0)
			_exit(1);
		for (int i = 0; i < 3; i++)
			three[i].port = to;
		_exit(impc_exchange(c2, &b2) == 0 ? 0 : 2);
	}
	bt = (impc_batch){ .recv_port = port, .timeout_ms = 5000, .msgs = msgs, .max_msgs = 8 };
	assert_int_equal(impc_exchange(srv, &bt), 0);
	assert_int_equal(bt.n_msgs, 3);
	for (size_t i = 0; i < 3; i++)
		free(msgs[i].data);
	{
		int status;

		assert_int_equal(waitpid(p, &status, 0), p);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	/* malformed batches are refused whole, with nothing done */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		uint8_t hello[sizeof(struct impp_header) + sizeof(struct impp_req_hello)];
		struct impp_header h = { IMPP_MAGIC, IMPP_REQ_HELLO, 0, 1, sizeof(struct impp_req_hello) };
		struct impp_req_hello hq = { IMPP_VERSION, 0 };
		struct impp_req_batch q = { 0 };
		struct impp_req_send sq = { peer, 0, 0, 0, 5 };
		uint8_t body[256];
		uint16_t type;
		int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

		strcpy(sa.sun_path, e2e_sock);
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		memcpy(hello, &h, sizeof(h));
		memcpy(hello + sizeof(h), &hq, sizeof(hq));
		raw_frame(fd, hello, sizeof(hello));
		assert_int_equal(raw_status(fd, &type), 0);
		q.n_send = 1; /* a send record that is not there */
		assert_int_equal(raw_batch(fd, 2, &q, sizeof(q)), -EBADMSG);
		memcpy(body, &q, sizeof(q)); /* its data shorter than it says */
		memcpy(body + sizeof(q), &sq, sizeof(sq));
		assert_int_equal(raw_batch(fd, 3, body, sizeof(q) + sizeof(sq) + 2), -EBADMSG);
		q.n_send = 0;
		q.n_release = IMPP_MAX_BATCH_ITEMS + 1; /* too many */
		assert_int_equal(raw_batch(fd, 4, &q, sizeof(q)), -E2BIG);
		q.n_release = 0;
		q.recv_port = port; /* a receive of nothing */
		assert_int_equal(raw_batch(fd, 5, &q, sizeof(q)), -EINVAL);
		close(fd);
	}
	assert_int_equal(status_now().messages, 0);
	impc_close(cli);
	impc_close(srv);
	stop_daemon();
}

/* CPU time (user + system) a process has used, in ms. */
/* A client that sends another request while its receive waits is served
 * in order once the receive completes, and costs the daemon no spinning
 * meanwhile (its socket stays readable all that time). */
static void test_request_while_parked(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct {
		struct impp_header h;
		struct impp_req_hello q;
	} __attribute__((packed)) hello = { { IMPP_MAGIC, IMPP_REQ_HELLO, 0, 1, sizeof(struct impp_req_hello) },
					    { IMPP_VERSION, 0 } };
	struct {
		struct impp_header h;
		struct impp_req_port_allocate q;
	} __attribute__((packed)) alloc = { { IMPP_MAGIC, IMPP_REQ_PORT_ALLOCATE, 0, 2, sizeof(struct impp_req_port_allocate) },
					    { 0 } };
	struct {
		struct impp_header h;
		struct impp_req_receive q;
	} __attribute__((packed)) recv_req = { { IMPP_MAGIC, IMPP_REQ_RECEIVE, 0, 3, sizeof(struct impp_req_receive) },
					       { 0, 400, 0 } };
	struct impp_header status_req = { IMPP_MAGIC, IMPP_REQ_STATUS, 0, 4, 0 };
	uint8_t buf[512];
	struct impp_header h;
	struct impp_reply_port rp;
	struct pollfd pfd;
	uint16_t type;
	long cpu0, cpu1;
	int fd;

	(void)state;
	start_daemon(NULL);
	strcpy(sa.sun_path, e2e_sock);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	raw_frame(fd, &hello, sizeof(hello));
	assert_int_equal(raw_status(fd, &type), 0);
	raw_frame(fd, &alloc, sizeof(alloc));
	assert_true(recv(fd, buf, sizeof(buf), 0) >= (ssize_t)(sizeof(h) + sizeof(rp)));
	memcpy(&rp, buf + sizeof(h), sizeof(rp));
	assert_int_equal(rp.status, 0);
	recv_req.q.port = rp.port;

	cpu0 = e2e_cpu_ms(e2e_daemon_pid);
	raw_frame(fd, &recv_req, sizeof(recv_req));   /* waits 400 ms: parked */
	raw_frame(fd, &status_req, sizeof(status_req)); /* sent meanwhile */
	pfd = (struct pollfd){ fd, POLLIN, 0 };
	assert_int_equal(poll(&pfd, 1, 200), 0); /* nothing answered yet */
	assert_int_equal(raw_status(fd, &type), -ETIMEDOUT);
	assert_int_equal(type, IMPP_REPLY(IMPP_REQ_RECEIVE));
	assert_int_equal(raw_status(fd, &type), 0);
	assert_int_equal(type, IMPP_REPLY(IMPP_REQ_STATUS));
	cpu1 = e2e_cpu_ms(e2e_daemon_pid);
	assert_true(cpu0 >= 0 && cpu1 >= 0);
	assert_true(cpu1 - cpu0 < 100); /* a busy loop would be ~400 */
	close(fd);
	stop_daemon();
}

/* A task listing bigger than a socket's default send buffer still
 * arrives whole (it was refused by the kernel, and the asker cut off). */
static void test_large_text_reply(void **state)
{
	enum { N = 3500 };
	impc **cs = calloc(N, sizeof(*cs)), *a;
	char *text = NULL;
	size_t lines = 0;

	(void)state;
	assert_non_null(cs);
	start_daemon("--max-user-connections 4000 --max-connections 4000");
	for (int i = 0; i < N; i++)
		assert_int_equal(impc_connect(e2e_sock, 0, &cs[i], NULL), 0);
	a = admin();
	assert_int_equal(impc_tasks(a, &text), 0);
	assert_true(strlen(text) > 212992); /* past net.core.wmem_default */
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	assert_true(lines >= N + 1); /* a heading and every task */
	free(text);
	impc_close(a);
	for (int i = 0; i < N; i++)
		impc_close(cs[i]);
	free(cs);
	stop_daemon();
}

static void test_monitor_that_never_reads(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct {
		struct impp_header h;
		struct impp_req_hello q;
	} __attribute__((packed)) hello = { { IMPP_MAGIC, IMPP_REQ_HELLO, 0, 1, sizeof(struct impp_req_hello) },
					    { IMPP_VERSION, IMPP_HELLO_MONITOR } };
	struct impp_header mon = { IMPP_MAGIC, IMPP_REQ_MONITOR, 0, 2, 0 };
	impc *srv, *don;
	uint64_t port, peer;
	uint8_t buf[256];
	ssize_t n;
	int fd, i;
	bool closed = false;

	(void)state;
	start_daemon("--max-queued-bytes 4096");
	strcpy(sa.sun_path, e2e_sock);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true(send(fd, &hello, sizeof(hello), 0) > 0);
	assert_true(send(fd, &mon, sizeof(mon), 0) > 0);
	/* then it reads nothing while boosts come and go */
	assert_int_equal(impc_connect(e2e_sock, IMPC_RECEIVER, &srv, NULL), 0);
	assert_int_equal(impc_port_allocate(srv, true, &port), 0);
	assert_int_equal(impc_register(srv, "svc", port), 0);
	assert_int_equal(impc_connect(e2e_sock, 0, &don, NULL), 0);
	make_donor(getpid(), true);
	assert_int_equal(impc_lookup(don, "svc", &peer), 0);
	for (i = 0; i < 3000; i++) {
		impc_message m;

		assert_int_equal(impc_send(don, peer, "x", 1, 0, 0, 0, NULL), 0);
		assert_int_equal(impc_receive(srv, port, 0, 0, &m), 0);
		free(m.data);
		assert_int_equal(impc_legacy_complete(srv), IMP_KERN_SUCCESS);
	}
	/* it was let go: what is in its socket ends in end-of-file */
	for (i = 0; i < 100000 && !closed; i++) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			closed = true;
		else if (n < 0 && errno == EAGAIN)
			usleep(1000);
	}
	assert_true(closed);
	assert_int_equal(status_now().clients, 3); /* srv, don and this status probe */
	close(fd);
	impc_close(don);
	impc_close(srv);
	stop_daemon();
}

/* ---- faults under load ---- */

static volatile sig_atomic_t stop_flag;

static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Serves "load" until SIGTERM; exits with how many it took (mod 256). */
static void load_server(void)
{
	impc *c;
	uint64_t port;
	unsigned long n = 0;

	signal(SIGTERM, on_term);
	if (impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0 ||
	    impc_port_allocate(c, true, &port) < 0 || impc_register(c, "load", port) < 0)
		_exit(1);
	while (!stop_flag) {
		impc_message m;

		if (impc_receive(c, port, 100, IMPC_RECV_VOUCHER, &m) == 0) {
			free(m.data);
			if (m.voucher)
				impc_voucher_release(c, m.voucher);
			n++;
		}
	}
	impc_close(c);
	_exit(n ? 0 : 2);
}

/* Sends to "load" as fast as quotas let it, until killed. */
static void load_sender(unsigned seed)
{
	impc *c;
	uint64_t port = 0, extra;
	char data[512];

	if (impc_connect(e2e_sock, 0, &c, NULL) < 0)
		_exit(1);
	memset(data, 'x', sizeof(data));
	for (;;) {
		int e;

		if (!port && impc_lookup(c, "load", &port) < 0) {
			usleep(1000);
			continue;
		}
		e = impc_send(c, port, data, 1 + rand_r(&seed) % sizeof(data), 0, 0, 0, NULL);
		if (e == -EDQUOT)
			usleep(1000);
		else if (e == -EPIPE)
			port = 0; /* the server restarted: look it up again */
		if (rand_r(&seed) % 64 == 0)
			impc_port_allocate(c, true, &extra); /* up to the quota */
	}
}

static pid_t fork_fn(void (*fn)(unsigned), unsigned arg)
{
	pid_t p = e2e_fork();

	assert_true(p >= 0);
	if (p == 0)
		fn(arg);
	return p;
}

static void load_server_fn(unsigned arg)
{
	(void)arg;
	load_server();
}

static void test_faults_under_load(void **state)
{
	enum { SENDERS = 6 };
	pid_t senders[SENDERS], server;
	impc_status st;
	unsigned seed = 42;
	uint64_t start;
	int i, status, never_reads, kills = 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct impp_header h = { IMPP_MAGIC, IMPP_REQ_STATUS, 0, 0, 0 };
	impc *probe;

	(void)state;
	start_daemon("--max-inflight 64");
	server = fork_fn(load_server_fn, 0);
	for (i = 0; i < SENDERS; i++) {
		senders[i] = fork_fn(load_sender, (unsigned)i + 1);
		if (i % 2)
			make_donor(senders[i], true);
	}
	/* a client that asks and asks and never reads the answers */
	strcpy(sa.sun_path, e2e_sock);
	never_reads = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
	assert_int_equal(connect(never_reads, (struct sockaddr *)&sa, sizeof(sa)), 0);
	{
		struct { struct impp_header h; struct impp_req_hello q; } __attribute__((packed)) hello =
			{ { IMPP_MAGIC, IMPP_REQ_HELLO, 0, 1, sizeof(struct impp_req_hello) }, { IMPP_VERSION, 0 } };

		assert_true(send(never_reads, &hello, sizeof(hello), 0) > 0);
	}
	start = e2e_now_ms();
	while (e2e_now_ms() - start < 3000) {
		/* keep its socket full of requests */
		while (send(never_reads, &h, sizeof(h), MSG_DONTWAIT) > 0)
			h.serial++;
		usleep(20 * 1000);
		i = rand_r(&seed) % SENDERS;
		kill(senders[i], SIGKILL);
		waitpid(senders[i], NULL, 0);
		kills++;
		senders[i] = fork_fn(load_sender, seed);
		if (rand_r(&seed) % 2)
			make_donor(senders[i], true);
		/* everyone else is still served, promptly */
		assert_int_equal(impc_connect(e2e_sock, IMPC_MONITOR, &probe, NULL), 0);
		assert_int_equal(impc_status_get(probe, &st), 0);
		impc_close(probe);
	}
	print_message("%d senders killed under load; %llu requests, %llu boosts applied\n", kills,
		      (unsigned long long)st.requests, (unsigned long long)st.boosts_applied);
	assert_true(st.boosts_applied > 0);
	/* the server restarts once mid-flight too */
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	server = fork_fn(load_server_fn, 0);
	usleep(300 * 1000);
	for (i = 0; i < SENDERS; i++) {
		kill(senders[i], SIGKILL);
		waitpid(senders[i], NULL, 0);
	}
	kill(server, SIGTERM);
	waitpid(server, &status, 0);
	assert_true(WIFEXITED(status));
	close(never_reads);
	usleep(200 * 1000);
	st = status_now();
	assert_int_equal(st.task_elems, 0);
	assert_int_equal(st.inherits, 0);
	assert_int_equal(st.vouchers, 0);
	assert_int_equal(st.ports, 0);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.clients, 1); /* the status request itself */
	/* no unboost is applied to a process that died boosted: nothing to restore */
	assert_true(st.unboosts_applied <= st.boosts_applied);
	stop_daemon();
}

/* STATUS says which backend is in use and why each other one is not. */
static void test_status_says_backend(void **state)
{
	impc_status st;

	(void)state;
	start_daemon(NULL);
	st = status_now();
	assert_string_equal(st.policy, "nice");
	assert_non_null(strstr(st.backends, "backend nice"));
	assert_non_null(strstr(st.backends, "not cgroup-v2: "));
	assert_non_null(strstr(st.backends, "not autogroup: "));
	stop_daemon();
}

static void test_socket_activation(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	impc *c;
	uint64_t port;
	impc_message m;
	int i, status;

	(void)state;
	snprintf(e2e_sock, sizeof(e2e_sock), "/tmp/importanced-test.%d.activated.sock", (int)getpid());
	strcpy(sa.sun_path, e2e_sock);
	unlink(e2e_sock);
	e2e_daemon_pid = e2e_fork();
	assert_true(e2e_daemon_pid >= 0);
	if (e2e_daemon_pid == 0) {
		/* what the service manager does: a listening socket on fd 3 */
		int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		char pid[16];

		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0 ||
		    dup2(fd, 3) < 0)
			_exit(126);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_PID", pid, 1);
		execl(e2e_daemon_bin, e2e_daemon_bin, "--backend", "none", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500 && impc_connect(e2e_sock, IMPC_RECEIVER, &c, NULL) < 0; i++)
		usleep(10000);
	assert_true(i < 500);
	assert_int_equal(impc_port_allocate(c, true, &port), 0);
	assert_int_equal(impc_register(c, "self", port), 0);
	assert_int_equal(impc_send(c, port, "hi", 2, 0, 0, 0, NULL), 0);
	assert_int_equal(impc_receive(c, port, 1000, 0, &m), 0);
	assert_int_equal(m.len, 2);
	free(m.data);
	impc_close(c);
	kill(e2e_daemon_pid, SIGTERM);
	waitpid(e2e_daemon_pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(e2e_sock);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_boost_while_queued, e2e_teardown),
		cmocka_unit_test_teardown(test_thread_born_boosted, e2e_teardown),
		cmocka_unit_test_teardown(test_chain, e2e_teardown),
		cmocka_unit_test_teardown(test_donor_goes_background, e2e_teardown),
		cmocka_unit_test_teardown(test_denap_hysteresis, e2e_teardown),
		cmocka_unit_test_teardown(test_non_donor_cannot_boost, e2e_teardown),
		cmocka_unit_test_teardown(test_donor_by_uid, e2e_teardown),
		cmocka_unit_test_teardown(test_sigkill_leaves_nothing, e2e_teardown),
		cmocka_unit_test_teardown(test_destroyed_message_tells_sender, e2e_teardown),
		cmocka_unit_test_teardown(test_malformed_frames, e2e_teardown),
		cmocka_unit_test_teardown(test_quotas_and_rights, e2e_teardown),
		cmocka_unit_test_teardown(test_send_receive, e2e_teardown),
		cmocka_unit_test_teardown(test_batch, e2e_teardown),
		cmocka_unit_test_teardown(test_request_while_parked, e2e_teardown),
		cmocka_unit_test_teardown(test_large_text_reply, e2e_teardown),
		cmocka_unit_test_teardown(test_monitor_that_never_reads, e2e_teardown),
		cmocka_unit_test_teardown(test_faults_under_load, e2e_teardown),
		cmocka_unit_test_teardown(test_status_says_backend, e2e_teardown),
		cmocka_unit_test_teardown(test_socket_activation, e2e_teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: test-broker PATH/TO/importanced\n");
		return 2;
	}
	e2e_daemon_bin = argv[1];
	if (geteuid() != 0) {
		/* lowering nice values and the uid test need root */
		printf("test-broker: not root, skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
