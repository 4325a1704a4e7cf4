/* Unix sockets' kernel half through libbpf (unix-bpf.h), and the source
 * as the broker starts it (unix.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "broker.h"
#include "bpf/unix.h"
#include "unix-bpf.h"
#include "unix.bpf.skel.h"
#include "unix.h"

#define UNIFIED "/sys/fs/cgroup/unified"
#define UNIX_BATCH 1024

struct unix_tracer {
	struct unix_bpf *skel;
	struct ring_buffer *rb;
	struct unix_source *model;
	struct broker *b;
	sd_event_source *io, *timer, *gather; /* the ring buffer; answer deadlines; unix-batch-usec */
	uint64_t lost_seen;
	unix_fork_fn *fork_fn;
	void *fork_ctx;
	size_t n_batch; /* events of this read of the ring buffer, for unix_handle_batch */
	struct unix_event batch[UNIX_BATCH];
};

/* ------------------------------------------------------------------ */
/* maps                                                                 */
/* ------------------------------------------------------------------ */

/* The filters in front of the maps (bpf/unix.h) are the kernel half's
 * .bss, mapped here: the kernel reads them as they are written, and
 * writes the counts of conns and senders too, so every write is atomic. */

static void bit_set(unsigned long long *bits, uint64_t hash)
{
	unsigned int slot = unix_filter_slot(hash);

	__atomic_fetch_or(&bits[slot / 64], 1ull << (slot % 64), __ATOMIC_SEQ_CST);
}

static void bits_clear(unsigned long long *bits)
{
	for (size_t i = 0; i < UNIX_FILTER_WORDS; i++)
		__atomic_store_n(&bits[i], 0, __ATOMIC_SEQ_CST);
}

/* key into a rule map, its bit in bits set first (cleared with the map
 * only, at a reload) */
static void rule_set(int fd, unsigned long long *bits, const void *key, uint64_t hash)
{
	uint8_t one = 1;

	bit_set(bits, hash);
	bpf_map_update_elem(fd, key, &one, BPF_ANY);
}

/* tgid into or out of a map behind counts: counted before it goes in
 * (uncounted when it was in already), uncounted after it is out */
static void counted_set(int fd, unsigned int *counts, uint32_t tgid, bool on)
{
	unsigned int *n = &counts[unix_filter_slot(tgid)];
	uint8_t one = 1;

	if (on) {
		__atomic_fetch_add(n, 1, __ATOMIC_SEQ_CST);
		if (bpf_map_update_elem(fd, &tgid, &one, BPF_NOEXIST) < 0)
			__atomic_fetch_sub(n, 1, __ATOMIC_SEQ_CST);
	} else if (bpf_map_delete_elem(fd, &tgid) == 0) {
		__atomic_fetch_sub(n, 1, __ATOMIC_SEQ_CST);
	}
}

static void k_sender(void *ctx, uint32_t tgid, bool on)
{
	struct unix_tracer *t = ctx;

	counted_set(bpf_map__fd(t->skel->maps.senders), t->skel->bss->filters.senders, tgid, on);
}

static void k_track(void *ctx, uint32_t tgid, bool on)
{
	struct unix_tracer *t = ctx;

	counted_set(bpf_map__fd(t->skel->maps.tracked), t->skel->bss->filters.tracked, tgid, on);
}

/* end out of conns, uncounted after; whether it was in */
static bool unwatch(struct unix_tracer *t, uint64_t end)
{
	if (bpf_map_delete_elem(bpf_map__fd(t->skel->maps.conns), &end) < 0)
		return false;
	__atomic_fetch_sub(&t->skel->bss->filters.conns[unix_filter_slot(end)], 1, __ATOMIC_SEQ_CST);
	return true;
}

static void k_unwatch(void *ctx, uint64_t end)
{
	unwatch(ctx, end);
}

/* refused: the end, with the sender's socket the kernel recorded for it */
static void k_refuse(void *ctx, uint64_t end)
{
	struct unix_tracer *t = ctx;
	uint64_t sender;

	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.conns), &end, &sender) == 0) {
		bit_set(t->skel->bss->filters.refused, end);
		bpf_map_update_elem(bpf_map__fd(t->skel->maps.refused), &end, &sender, BPF_ANY);
	}
	unwatch(t, end);
}

/* every key of a hash map out (keys up to 16 bytes) */
static void map_clear(int fd)
{
	uint8_t key[16];

	while (bpf_map_get_next_key(fd, NULL, key) == 0)
		if (bpf_map_delete_elem(fd, key) < 0)
			break;
}

static void k_unwatch_all(void *ctx)
{
	struct unix_tracer *t = ctx;
	uint64_t end;

	while (bpf_map_get_next_key(bpf_map__fd(t->skel->maps.conns), NULL, &end) == 0)
		if (!unwatch(t, end))
			break;
}

uint64_t unix_tracer_lost(struct unix_tracer *t)
{
	int n = libbpf_num_possible_cpus();
	uint32_t key = UNIX_STAT_LOST;
	uint64_t sum = 0, *v;

	if (n <= 0 || !(v = calloc((size_t)n, sizeof(*v))))
		return t->lost_seen;
	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stats), &key, v) == 0)
		for (int i = 0; i < n; i++)
			sum += v[i];
	free(v);
	return sum;
}

/* The daemon's rules, in the kernel's terms: donor uids, executables (by
 * the kernel's device number and inode), unified cgroups (by id: the
 * directory's inode), receiver uids; receiver rules the kernel cannot
 * decide let every peer through to the model. */
static int load_rules(struct unix_tracer *t, const struct broker_config *cfg, char *err, size_t size)
{
	const struct donor_rules *d = &cfg->donors;
	const struct unix_config *u = &cfg->unix_sockets;
	struct unix_filters *fl = &t->skel->bss->filters;
	uint32_t flags = UNIX_CFG_ON;

	for (size_t i = 0; i < d->n_uids; i++)
		rule_set(bpf_map__fd(t->skel->maps.donor_uids), fl->donor_uids, &d->uids[i], d->uids[i]);
	for (size_t i = 0; i < d->n_exes; i++) {
		struct stat st;
		struct unix_exe_key k;

		if (stat(d->exes[i], &st) < 0)
			continue;
		k.dev = ((uint64_t)major(st.st_dev) << 20) | minor(st.st_dev);
		k.ino = st.st_ino;
		rule_set(bpf_map__fd(t->skel->maps.donor_exes), fl->donor_exes, &k, unix_exe_hash(&k));
	}
	for (size_t i = 0; i < d->n_cgroups; i++) {
		char path[sizeof(UNIFIED) + IMPD_RULE_LEN];
		struct stat st;
		uint64_t id;

		snprintf(path, sizeof(path), UNIFIED "%s", d->cgroups[i]);
		if (stat(path, &st) < 0)
			continue;
		id = st.st_ino;
		rule_set(bpf_map__fd(t->skel->maps.donor_cgroups), fl->donor_cgroups, &id, id);
	}
	for (size_t i = 0; i < u->receivers.n_uids; i++)
		rule_set(bpf_map__fd(t->skel->maps.receiver_uids), fl->receiver_uids, &u->receivers.uids[i],
			 u->receivers.uids[i]);
	/* The peer's credentials are those of whoever made the socket (for
	 * a socketpair, the process that created both ends, whoever reads
	 * them now): receiver uids are judged in the kernel on them and on the
	 * end's last reader; receiver rules it cannot judge (executables,
	 * cgroups, paths) let every peer through to the model, which decides
	 * about the reader it sees read.  The kernel filters on the sender,
	 * and on the ends refused. */
	if (u->receivers.n_exes || u->receivers.n_cgroups || u->n_paths)
		flags |= UNIX_CFG_ANY_PEER;
	if (d->n_exes)
		flags |= UNIX_CFG_DONOR_EXES;
	if (d->n_cgroups)
		flags |= UNIX_CFG_DONOR_CGROUPS;
	(void)err;
	(void)size;
	__atomic_store_n(&t->skel->bss->cfg_flags, flags, __ATOMIC_RELEASE);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the tracer                                                           */
/* ------------------------------------------------------------------ */

/* The events read so far, to the model; those from a young send on
 * (unix_handle_batch) stay, first in the batch, for the next flush. */
static void flush(struct unix_tracer *t, uint64_t young_after)
{
	size_t done = unix_handle_batch(t->model, t->batch, t->n_batch, young_after);

	memmove(t->batch, t->batch + done, (t->n_batch - done) * sizeof(t->batch[0]));
	t->n_batch -= done;
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct unix_tracer *t = ctx;
	struct unix_event *ev;

	/* a send is whole; the other events end before its address */
	if (len < UNIX_EVENT_SHORT)
		return 0;
	if (t->n_batch == UNIX_BATCH)
		flush(t, UINT64_MAX);
	ev = &t->batch[t->n_batch];
	memset(ev, 0, sizeof(*ev));
	memcpy(ev, data, len < sizeof(*ev) ? len : sizeof(*ev));
	if (ev->kind == UNIX_EV_SEND && len < sizeof(*ev))
		return 0;
	if (ev->kind == UNIX_EV_FORK) {
		if (t->fork_fn)
			t->fork_fn(t->fork_ctx, (pid_t)ev->tgid, (pid_t)ev->peer_tgid);
		return 0;
	}
	t->n_batch++;
	return 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

int unix_tracer_open(struct unix_tracer **out, char *err, size_t size)
{
	struct unix_tracer *t;
	int e;

	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		snprintf(err, size, "the kernel has no BTF (/sys/kernel/btf/vmlinux: %s)", strerror(errno));
		return -ENOTSUP;
	}
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	libbpf_set_print(libbpf_quiet);
	if (!(t->skel = unix_bpf__open())) {
		e = -errno;
		snprintf(err, size, "cannot open the BPF object: %s", strerror(-e));
		goto fail;
	}
	if ((e = unix_bpf__load(t->skel)) < 0) {
		snprintf(err, size, "cannot load the BPF programs: %s%s", strerror(-e),
			 e == -EPERM ? " (needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)" : "");
		goto fail;
	}
	if ((e = unix_bpf__attach(t->skel)) < 0) {
		snprintf(err, size, "cannot attach to the socket tracepoints: %s", strerror(-e));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	unix_bpf__destroy(t->skel);
	free(t);
	return e < 0 ? e : -EINVAL;
}

void unix_tracer_close(struct unix_tracer *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	unix_bpf__destroy(t->skel);
	free(t);
}

/* ------------------------------------------------------------------ */
/* the source in the broker's loop                                      */
/* ------------------------------------------------------------------ */

static void rearm(struct unix_tracer *t, uint64_t next)
{
	if (next == UINT64_MAX) {
		sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(t->timer, next);
	sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
}

static void after_events(struct unix_tracer *t)
{
	uint64_t lost = unix_tracer_lost(t), now;

	if (lost > t->lost_seen) {
		t->n_batch = 0; /* kept events too: everything is read again */
		unix_lost(t->model, lost - t->lost_seen);
		t->lost_seen = lost;
	}
	sd_event_now(t->b->ev, CLOCK_MONOTONIC, &now);
	rearm(t, unix_expire(t->model, now));
}

/* Everything in the ring buffer, to the model, as one batch, but for a
 * send younger than unix-batch-usec that is not answered yet and what
 * follows it: those are kept, and read again when that send's window has
 * passed (the ring buffer not watched meanwhile). */
static void drain(struct unix_tracer *t)
{
	uint64_t window = (uint64_t)t->b->cfg.unix_sockets.batch_usec * 1000, now_us = 0, now;

	/* the loop's time (this iteration's: a little early, which keeps a
	 * send longer, never shorter) */
	sd_event_now(t->b->ev, CLOCK_MONOTONIC, &now_us);
	now = now_us * 1000;
	ring_buffer__consume(t->rb);
	flush(t, window && now > window ? now - window : UINT64_MAX);
	after_events(t);
	if (t->n_batch) {
		/* no sooner than a window from now, as if the ring buffer
		 * had become readable now: reads no more often than before */
		uint64_t due = (t->batch[0].time + window) / 1000 + 1, next = (now + window) / 1000;

		sd_event_source_set_enabled(t->io, SD_EVENT_OFF);
		sd_event_source_set_time(t->gather, due > next ? due : next);
		sd_event_source_set_enabled(t->gather, SD_EVENT_ONESHOT);
	}
}

/*
 * When the ring buffer becomes readable the daemon waits unix-batch-usec
 * (not watching it meanwhile), then takes all it holds as one batch: a
 * request answered within the wait (most requests to a server that is
 * not held back) costs the daemon no engine or backend work, and the
 * daemon, at real-time priority, does not take the CPU from the server
 * at the send, at the read and at the answer.  What a boost is for, a
 * request held back longer than that, is boosted that much later (the
 * bench's boost latency includes it).  With 0 each event is handled as it
 * comes.
 */
static int on_ring(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct unix_tracer *t = userdata;
	uint64_t now;

	(void)s;
	(void)fd;
	(void)revents;
	if (!t->b->cfg.unix_sockets.batch_usec || sd_event_now(t->b->ev, CLOCK_MONOTONIC, &now) < 0) {
		drain(t);
		return 0;
	}
	sd_event_source_set_enabled(t->io, SD_EVENT_OFF);
	sd_event_source_set_time(t->gather, now + t->b->cfg.unix_sockets.batch_usec);
	sd_event_source_set_enabled(t->gather, SD_EVENT_ONESHOT);
	return 0;
}

static int on_batch(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct unix_tracer *t = userdata;

	(void)s;
	(void)usec;
	drain(t);
	if (!t->n_batch)
		sd_event_source_set_enabled(t->io, SD_EVENT_ON);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct unix_tracer *t = userdata;

	(void)s;
	(void)usec;
	drain(t); /* what came before the deadline first */
	return 0;
}

int unix_start(struct broker *b)
{
	struct unix_tracer *t = NULL;
	struct unix_kernel k = { 0 };
	char err[256] = "";
	int e;

	if (!b->cfg.unix_sockets.enabled)
		return 0;
	if ((e = unix_tracer_open(&t, err, sizeof(err))) < 0) {
		fprintf(stderr, "importanced: unix: %s: Unix sockets boost nothing; the other sources run unchanged\n",
			err);
		return e == -ENOMEM ? e : 0;
	}
	t->b = b;
	k.ctx = t;
	k.sender = k_sender;
	k.track = k_track;
	k.unwatch = k_unwatch;
	k.refuse = k_refuse;
	k.unwatch_all = k_unwatch_all;
	if ((e = unix_source_new(b, &k, &t->model)) < 0)
		goto fail;
	if (!(t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_event, t, NULL))) {
		e = -errno;
		goto fail;
	}
	if ((e = sd_event_add_io(b->ev, &t->io, ring_buffer__epoll_fd(t->rb), EPOLLIN, on_ring, t)) < 0 ||
	    (e = sd_event_add_time(b->ev, &t->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_timer, t)) < 0 ||
	    (e = sd_event_add_time(b->ev, &t->gather, CLOCK_MONOTONIC, UINT64_MAX, 1, on_batch, t)) < 0)
		goto fail;
	sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
	sd_event_source_set_enabled(t->gather, SD_EVENT_OFF);
	if ((e = load_rules(t, &b->cfg, err, sizeof(err))) < 0) {
		fprintf(stderr, "importanced: unix: %s\n", err);
		goto fail;
	}
	b->unix_tracer = t;
	if (b->cfg.verbose)
		fprintf(stderr, "importanced: unix: watching Unix-socket sends (BPF)\n");
	return 0;
fail:
	sd_event_source_unref(t->io);
	sd_event_source_unref(t->timer);
	sd_event_source_unref(t->gather);
	unix_source_free(t->model);
	unix_tracer_close(t);
	return e;
}

void unix_stop(struct broker *b)
{
	struct unix_tracer *t = b->unix_tracer;

	if (!t)
		return;
	b->unix_tracer = NULL;
	sd_event_source_unref(t->io);
	sd_event_source_unref(t->timer);
	sd_event_source_unref(t->gather);
	unix_source_free(t->model);
	unix_tracer_close(t);
}

/* Every rule map emptied, then its bits: a key is never in a map without
 * its bit. */
static void rules_clear(struct unix_tracer *t)
{
	struct unix_filters *fl = &t->skel->bss->filters;
	struct {
		struct bpf_map *map;
		unsigned long long *bits;
	} rules[] = { { t->skel->maps.donor_uids, fl->donor_uids },
		      { t->skel->maps.donor_exes, fl->donor_exes },
		      { t->skel->maps.donor_cgroups, fl->donor_cgroups },
		      { t->skel->maps.receiver_uids, fl->receiver_uids },
		      { t->skel->maps.refused, fl->refused } };

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		map_clear(bpf_map__fd(rules[i].map));
		bits_clear(rules[i].bits);
	}
}

void unix_reload(struct broker *b)
{
	struct unix_tracer *t = b->unix_tracer;
	char err[256];

	/* the source stays as it was started, on or off */
	b->cfg.unix_sockets.enabled = t != NULL;
	if (!t)
		return;
	rules_clear(t);
	if (load_rules(t, &b->cfg, err, sizeof(err)) < 0)
		fprintf(stderr, "importanced: unix: %s\n", err);
	unix_source_reload(t->model);
}

int unix_set_donor(struct broker *b, pid_t pid, bool on)
{
	return b->unix_tracer ? unix_source_set_donor(b->unix_tracer->model, pid, on) : -ESRCH;
}

void unix_foreach_task(struct broker *b, unix_task_fn *fn, void *ctx)
{
	if (b->unix_tracer)
		unix_source_foreach(b->unix_tracer->model, fn, ctx);
}

void unix_watch_forks(struct broker *b, unix_fork_fn *fn, void *ctx)
{
	if (!b->unix_tracer)
		return;
	b->unix_tracer->fork_fn = fn;
	b->unix_tracer->fork_ctx = ctx;
}
