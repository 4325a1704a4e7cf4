/*
 * unix.c at its seam with the kernel half: events as the BPF object
 * sends them, about real processes (children of the test, known by pid
 * and start time as the kernel gives them), into a real broker and
 * engine; the kernel's maps replaced by a recorder of what the model asks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "broker.h"
#include "config.h"
#include "process.h"
#include "unix.h"

struct recorder {
	unsigned senders_on, senders_off, tracked, untracked, unwatched, refused, unwatched_all;
};

static void r_sender(void *ctx, uint32_t tgid, bool on)
{
	struct recorder *r = ctx;

	(void)tgid;
	if (on)
		r->senders_on++;
	else
		r->senders_off++;
}

static void r_track(void *ctx, uint32_t tgid, bool on)
{
	struct recorder *r = ctx;

	(void)tgid;
	if (on)
		r->tracked++;
	else
		r->untracked++;
}

static void r_unwatch(void *ctx, uint64_t end)
{
	(void)end;
	((struct recorder *)ctx)->unwatched++;
}

static void r_refuse(void *ctx, uint64_t end)
{
	(void)end;
	((struct recorder *)ctx)->refused++;
}

static void r_unwatch_all(void *ctx)
{
	((struct recorder *)ctx)->unwatched_all++;
}

struct fixture {
	sd_event *ev;
	struct broker *b;
	struct unix_source *s;
	struct recorder rec;
	int listen_fd;
	pid_t donor, reader, other;
	uint64_t donor_start, reader_start, other_start;
};

/* The start time the kernel would report (start_boottime, ns), from
 * /proc/PID/stat's ticks: what the model compares is in ticks. */
static uint64_t start_of(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	assert_non_null(p);
	assert_int_equal(sscanf(p + 1, "%llu", &ticks), 1);
	return ticks * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK)) + 1234;
}

static pid_t sleeper(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct broker_config cfg;
	struct unix_kernel k = { 0 };

	assert_non_null(f);
	config_defaults(&cfg);
	cfg.backend.kind = BACKEND_NONE;
	cfg.unix_sockets.answer_timeout_ms = 500;
	snprintf(cfg.unix_sockets.paths[0], IMPD_RULE_LEN, "/run/test/*.sock");
	cfg.unix_sockets.n_paths = 1;
	f->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(sd_event_new(&f->ev), 0);
	assert_int_equal(broker_new(f->ev, &cfg, f->listen_fd, &f->b), 0);
	k.ctx = &f->rec;
	k.sender = r_sender;
	k.track = r_track;
	k.unwatch = r_unwatch;
	k.refuse = r_refuse;
	k.unwatch_all = r_unwatch_all;
	assert_int_equal(unix_source_new(f->b, &k, &f->s), 0);
	f->donor = sleeper();
	f->reader = sleeper();
	f->other = sleeper();
	f->donor_start = start_of(f->donor);
	f->reader_start = start_of(f->reader);
	f->other_start = start_of(f->other);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	imp_stats st;

	unix_source_free(f->s);
	/* nothing of the source is left in the engine */
	assert_int_equal(broker_engine_stats(f->b, &st), 0);
	broker_free(f->b);
	sd_event_unref(f->ev);
	close(f->listen_fd);
	for (pid_t *p = &f->donor; p <= &f->other; p++) {
		kill(*p, SIGKILL);
		waitpid(*p, NULL, 0);
	}
	free(f);
	return 0;
}

#define END 0xffff888100001000ull

static void send_ev(struct fixture *f, pid_t from, uint64_t start, pid_t to, uint64_t to_start, const char *path,
		    unsigned by)
{
	struct unix_event ev = { .kind = UNIX_EV_SEND, .tgid = (unsigned)from, .start = start, .ret = 5, .end = END,
				 .by = by, .peer_tgid = (unsigned)to, .peer_start = to_start, .type = SOCK_STREAM };

	ev.path_len = (unsigned)snprintf(ev.path, sizeof(ev.path), "%s", path) + 1;
	unix_handle(f->s, &ev);
}

static void end_ev(struct fixture *f, unsigned kind, pid_t who, uint64_t start, int ret)
{
	struct unix_event ev = { .kind = kind, .tgid = (unsigned)who, .start = start, .ret = ret, .end = END };

	unix_handle(f->s, &ev);
}

static struct unix_counts counts(struct fixture *f)
{
	struct unix_counts c;

	unix_source_counts(f->s, &c);
	return c;
}

/* send: queued (boost); read: held; answer: over */
static void test_request(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_UID);
	assert_int_equal(counts(f).queued, 1);
	end_ev(f, UNIX_EV_RECV, f->reader, f->reader_start, 5);
	assert_int_equal(counts(f).queued, 0);
	assert_int_equal(counts(f).held, 1);
	assert_int_equal(f->rec.senders_on, 1); /* a boosted reader donates onward */
	end_ev(f, UNIX_EV_ANSWER, f->reader, f->reader_start, 2);
	assert_int_equal(counts(f).held, 0);
	assert_int_equal(f->rec.senders_off, 1);
	/* the end closes: the connection is gone */
	end_ev(f, UNIX_EV_RECV, f->reader, f->reader_start, 0);
	assert_int_equal(counts(f).conns, 0);
}

/* a read that finds nothing, with nothing queued, ends the hold */
static void test_waits_again(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_UID);
	end_ev(f, UNIX_EV_RECV, f->reader, f->reader_start, 5);
	assert_int_equal(counts(f).held, 1);
	end_ev(f, UNIX_EV_RECV, f->reader, f->reader_start, -EAGAIN);
	assert_int_equal(counts(f).held, 0);
}

/* the answer bound */
static void test_timeout(void **state)
{
	struct fixture *f = *state;
	struct timespec ts;
	uint64_t now;

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_UID);
	end_ev(f, UNIX_EV_RECV, f->reader, f->reader_start, 5);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	assert_true(unix_expire(f->s, now) != UINT64_MAX);
	assert_int_equal(counts(f).held, 1);
	unix_expire(f->s, now + 600 * 1000);
	assert_int_equal(counts(f).held, 0);
	assert_int_equal(counts(f).conns, 0);
}

/* No rule covers the process the kernel names: nothing in the engine; the
 * end waits for its first read, whose reader no rule covers either, and is
 * refused in the kernel. */
static void test_not_receiver(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/elsewhere/a.sock", UNIX_BY_UID);
	assert_int_equal(counts(f).queued, 0);
	assert_int_equal(counts(f).held, 0);
	assert_int_equal(f->rec.refused, 0);
	end_ev(f, UNIX_EV_RECV, f->reader, f->reader_start, 5);
	assert_int_equal(counts(f).conns, 0);
	assert_int_equal(counts(f).held, 0);
	assert_int_equal(f->rec.refused, 1);
}

/* a sender the kernel let through only as a sender it no longer is */
static void test_not_donor(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->other, f->other_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_SENDER);
	assert_int_equal(counts(f).conns, 0);
	assert_int_equal(counts(f).queued, 0);
}

/* a pid whose start time is not the event's is another process */
static void test_reused_pid(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->donor, f->donor_start + 10000000000ull, f->reader, f->reader_start, "/run/test/a.sock",
		UNIX_BY_UID);
	assert_int_equal(counts(f).conns, 0);
	/* the process the kernel names is not the one with that pid now:
	 * nobody is boosted until a read says who reads */
	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start + 10000000000ull, "/run/test/a.sock",
		UNIX_BY_UID);
	assert_int_equal(counts(f).queued, 0);
	assert_int_equal(counts(f).held, 0);
	end_ev(f, UNIX_EV_RECV, f->reader, f->reader_start, 5);
	assert_int_equal(counts(f).held, 1);
}

/* another process reads (a pre-forked server): the message follows it */
static void test_other_reader(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_UID);
	end_ev(f, UNIX_EV_RECV, f->other, f->other_start, 5);
	assert_int_equal(counts(f).held, 1);
	assert_int_equal(counts(f).conns, 1);
}

struct boosted_of {
	pid_t pid;
	int boosted; /* -1: not seen */
};

static void boosted_fn(void *ctx, const struct actor *actor, imp_task *task, bool receiver, const char *path,
		       pid_t peer)
{
	struct boosted_of *b = ctx;
	imp_task_info info;

	(void)receiver;
	(void)path;
	(void)peer;
	if (actor->pid == b->pid && imp_task_get_info(task, &info) == 0)
		b->boosted = info.boosted;
}

/* whether the engine boosts pid's task (-1: the source has no such task) */
static int boosted(struct fixture *f, pid_t pid)
{
	struct boosted_of b = { pid, -1 };

	unix_source_foreach(f->s, boosted_fn, &b);
	return b.boosted;
}

static void send_read_ev(struct fixture *f, pid_t reader, uint64_t reader_start)
{
	struct unix_event ev = { .kind = UNIX_EV_SEND, .tgid = (unsigned)f->donor, .start = f->donor_start,
				 .ret = 1, .end = END, .by = UNIX_BY_UID, .peer_tgid = (unsigned)f->reader,
				 .peer_start = f->reader_start, .type = SOCK_STREAM, .reader_tgid = (unsigned)reader,
				 .reader_start = reader_start, .read = 1 };

	ev.path_len = (unsigned)snprintf(ev.path, sizeof(ev.path), "%s", "/run/test/a.sock") + 1;
	unix_handle(f->s, &ev);
}

/* The reader took the data before the send was reported (its read was
 * not): the send names it, and it holds the boost, not the process the
 * kernel recorded as the peer (who listened). */
static void test_read_first(void **state)
{
	struct fixture *f = *state;

	send_read_ev(f, f->other, f->other_start);
	assert_int_equal(counts(f).queued, 0);
	assert_int_equal(counts(f).held, 1);
	assert_int_equal(boosted(f, f->other), 1);
	assert_int_not_equal(boosted(f, f->reader), 1);
	/* the answer ends it */
	end_ev(f, UNIX_EV_ANSWER, f->other, f->other_start, 2);
	assert_int_equal(counts(f).held, 0);
	assert_int_not_equal(boosted(f, f->other), 1);
}

/* The send was seen read, but the read of it is reported after (the
 * reader named was the end's last one, not this one): the one that reads
 * holds it. */
static void test_read_named_other(void **state)
{
	struct fixture *f = *state;

	send_read_ev(f, f->reader, f->reader_start);
	assert_int_equal(boosted(f, f->reader), 1);
	end_ev(f, UNIX_EV_RECV, f->other, f->other_start, 3);
	assert_int_equal(counts(f).held, 1);
	assert_int_equal(boosted(f, f->other), 1);
	assert_int_not_equal(boosted(f, f->reader), 1);
}

/* the donor exits mid-request: nothing is left */
static void test_donor_exit(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_UID);
	end_ev(f, UNIX_EV_RECV, f->reader, f->reader_start, 5);
	end_ev(f, UNIX_EV_EXIT, f->donor, f->donor_start, 0);
	assert_int_equal(counts(f).conns, 0);
	assert_int_equal(counts(f).held, 0);
}

/* lost events: every boost goes, the kernel's watch list is cleared */
static void test_lost(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_UID);
	unix_lost(f->s, 3);
	assert_int_equal(counts(f).conns, 0);
	assert_int_equal(counts(f).lost, 3);
	assert_int_equal(f->rec.unwatched_all, 1);
}

/* A batch in which a request is sent, read and answered (the daemon read
 * it all at once: it was behind): the send is passed over, nothing reaches
 * the engine; a send whose answer is not in the batch is handled. */
static void test_batch_served(void **state)
{
	struct fixture *f = *state;
	struct unix_event evs[4] = {
		{ .kind = UNIX_EV_SEND, .tgid = (unsigned)f->donor, .start = f->donor_start, .ret = 1, .end = END,
		  .by = UNIX_BY_UID, .peer_tgid = (unsigned)f->reader, .peer_start = f->reader_start,
		  .type = SOCK_STREAM },
		{ .kind = UNIX_EV_RECV, .tgid = (unsigned)f->reader, .start = f->reader_start, .ret = 1, .end = END },
		{ .kind = UNIX_EV_ANSWER, .tgid = (unsigned)f->reader, .start = f->reader_start, .ret = 1, .end = END },
	};
	imp_stats st;

	evs[0].path_len = (unsigned)snprintf(evs[0].path, sizeof(evs[0].path), "/run/test/a.sock") + 1;
	evs[3] = evs[0];
	assert_int_equal(unix_handle_batch(f->s, evs, 3, UINT64_MAX), 3);
	assert_int_equal(counts(f).served, 1);
	assert_int_equal(counts(f).messages, 0);
	assert_int_equal(counts(f).held, 0);
	assert_int_equal(broker_engine_stats(f->b, &st), 0);
	assert_int_equal(st.messages, 0);
	/* the next request's answer is not in its batch: boosted as always */
	assert_int_equal(unix_handle_batch(f->s, &evs[3], 1, UINT64_MAX), 1);
	assert_int_equal(counts(f).queued, 1);
	assert_int_equal(unix_handle_batch(f->s, &evs[1], 2, UINT64_MAX), 2);
	assert_int_equal(counts(f).queued, 0);
	assert_int_equal(counts(f).held, 0);
	assert_int_equal(counts(f).messages, 1);
	assert_int_equal(counts(f).served, 1);
}

/* A send younger than the batch window and not answered in the batch
 * waits for the next batch, with what follows it: answered there, it is
 * never boosted; past the window, it is handled as always. */
static void test_batch_young(void **state)
{
	struct fixture *f = *state;
	struct unix_event evs[3] = {
		{ .kind = UNIX_EV_SEND, .tgid = (unsigned)f->donor, .start = f->donor_start, .ret = 1, .end = END,
		  .by = UNIX_BY_UID, .peer_tgid = (unsigned)f->reader, .peer_start = f->reader_start,
		  .type = SOCK_STREAM, .time = 5000 },
		{ .kind = UNIX_EV_RECV, .tgid = (unsigned)f->reader, .start = f->reader_start, .ret = 1, .end = END,
		  .time = 5100 },
		{ .kind = UNIX_EV_ANSWER, .tgid = (unsigned)f->reader, .start = f->reader_start, .ret = 1, .end = END,
		  .time = 5200 },
	};

	evs[0].path_len = (unsigned)snprintf(evs[0].path, sizeof(evs[0].path), "/run/test/a.sock") + 1;
	/* young: nothing handled, the read after it kept too */
	assert_int_equal(unix_handle_batch(f->s, evs, 2, 4999), 0);
	assert_int_equal(counts(f).queued, 0);
	assert_int_equal(counts(f).messages, 0);
	/* again with its answer: served, never boosted */
	assert_int_equal(unix_handle_batch(f->s, evs, 3, 4999), 3);
	assert_int_equal(counts(f).served, 1);
	assert_int_equal(counts(f).messages, 0);
	assert_int_equal(counts(f).held, 0);
	/* the next one past its window, unanswered: boosted */
	evs[0].time = 6000;
	assert_int_equal(unix_handle_batch(f->s, evs, 1, 6000), 1);
	assert_int_equal(counts(f).queued, 1);
	assert_int_equal(unix_handle_batch(f->s, &evs[1], 2, UINT64_MAX), 2);
	assert_int_equal(counts(f).queued, 0);
	assert_int_equal(counts(f).held, 0);
	assert_int_equal(counts(f).messages, 1);
}

/* A reload whose rules no longer make the sender a donor drops its
 * request's boost; one whose rules no longer accept the reader ends the
 * connection. */
static void test_reload(void **state)
{
	struct fixture *f = *state;

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_UID);
	assert_int_equal(counts(f).queued, 1);
	assert_int_equal(boosted(f, f->reader), 1);
	unix_source_reload(f->s); /* the broker's rules name no donor */
	assert_int_equal(boosted(f, f->reader), 0);
	assert_int_equal(counts(f).conns, 1);
	f->b->cfg.unix_sockets.n_paths = 0; /* and now no receiver */
	unix_source_reload(f->s);
	assert_int_equal(counts(f).conns, 0);
}

/* An answer with nothing left queued on the end ends a message whose read
 * was not seen (splice()); with data still queued (a request behind the
 * one answered) the message stays. */
static void test_answer_unseen_read(void **state)
{
	struct fixture *f = *state;
	struct unix_event ev = { .kind = UNIX_EV_ANSWER, .tgid = (unsigned)f->reader, .start = f->reader_start,
				 .ret = 1, .end = END };

	send_ev(f, f->donor, f->donor_start, f->reader, f->reader_start, "/run/test/a.sock", UNIX_BY_UID);
	unix_handle(f->s, &ev);
	assert_int_equal(counts(f).queued, 1);
	assert_int_equal(boosted(f, f->reader), 1);
	ev.read = 1;
	unix_handle(f->s, &ev);
	assert_int_equal(counts(f).queued, 0);
	assert_int_equal(boosted(f, f->reader), 0);
}

/* garbage is safe */
static void test_garbage(void **state)
{
	struct fixture *f = *state;
	struct unix_event ev;

	for (unsigned i = 0; i < 2000; i++) {
		for (size_t j = 0; j < sizeof(ev); j++)
			((unsigned char *)&ev)[j] = (unsigned char)(rand() & 0xff);
		ev.kind = i % 7;
		unix_handle(f->s, &ev);
	}
	assert_int_equal(counts(f).conns, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_receiver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_donor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reused_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_donor_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_named_other, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_served, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_young, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_unseen_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
