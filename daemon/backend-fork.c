/*
 * Following a boost into the processes a boosted receiver forks, through
 * the kernel half in daemon/bpf/fork.bpf.c (libbpf, its skeleton).
 *
 * A boost that touches threads (nice, I/O priority) puts the receiver in
 * the kernel half's `boosted` map before it changes anything, so no child
 * forked during the boost goes unrecorded; the kernel half records each
 * such child, and each child of one, in `born`.  The unboost takes the
 * receiver out of `boosted` and then takes its records out of `born`; the
 * backend (backend-proc.c) puts back each recorded process that is still
 * the one recorded (pid and start time, its credentials unchanged).  A
 * process recorded after the records were taken (a fork racing the
 * unboost) was born from an unboosted parent: it inherited nothing.
 *
 * Where the object cannot load (no BTF, no CAP_BPF), the backend says so
 * once and falls back to walking the receiver's /proc children at the
 * unboost, which misses a child that was reparented.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "backend-internal.h"
#include "fork.bpf.skel.h"
#include "bpf/fork.h"

static struct fork_bpf *skel;
static bool tried;
static char why_off[160];

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

int bk_fork_open(char *why, size_t size)
{
	int e;

	if (skel)
		return 0;
	if (tried) {
		snprintf(why, size, "%s", why_off);
		return -ENOTSUP;
	}
	tried = true;
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		snprintf(why_off, sizeof(why_off), "the kernel has no BTF (/sys/kernel/btf/vmlinux: %s)", strerror(errno));
		e = -ENOTSUP;
		goto fail;
	}
	libbpf_set_print(quiet);
	if (!(skel = fork_bpf__open())) {
		e = -errno;
		snprintf(why_off, sizeof(why_off), "cannot open the BPF object: %s", strerror(-e));
		goto fail;
	}
	if ((e = fork_bpf__load(skel)) < 0) {
		snprintf(why_off, sizeof(why_off), "cannot load the BPF programs: %s%s", strerror(-e),
			 e == -EPERM ? " (needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)" : "");
		goto fail;
	}
	if ((e = fork_bpf__attach(skel)) < 0) {
		snprintf(why_off, sizeof(why_off), "cannot attach to sched_process_fork: %s", strerror(-e));
		goto fail;
	}
	return 0;
fail:
	fork_bpf__destroy(skel);
	skel = NULL;
	snprintf(why, size, "%s", why_off);
	return e < 0 ? e : -EINVAL;
}

bool bk_fork_boost(const struct backend_target *t)
{
	struct fork_boosted b = { .start = t->start };
	__u32 key = (__u32)t->pid;
	long hz = sysconf(_SC_CLK_TCK);

	if (!skel)
		return false;
	b.tick_ns = 1000000000ull / (unsigned long long)(hz > 0 ? hz : 100);
	return bpf_map_update_elem(bpf_map__fd(skel->maps.boosted), &key, &b, BPF_ANY) == 0;
}

void bk_fork_unboost(const struct backend_target *t, unsigned *lost)
{
	struct fork_boosted b;
	__u32 key = (__u32)t->pid;

	*lost = 0;
	if (!skel)
		return;
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.boosted), &key, &b) == 0)
		*lost = b.n_lost;
	bpf_map_delete_elem(bpf_map__fd(skel->maps.boosted), &key);
}

size_t bk_fork_take(const struct backend_target *t, struct bk_born *out, size_t max)
{
	int fd;
	__u32 key, next, *prev = NULL;
	struct fork_born rec;
	long hz = sysconf(_SC_CLK_TCK);
	unsigned long long tick_ns = 1000000000ull / (unsigned long long)(hz > 0 ? hz : 100);
	size_t n = 0;

	if (!skel)
		return 0;
	fd = bpf_map__fd(skel->maps.born);
	/* collected first, removed after: a removed key would restart the walk */
	while (n < max && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &rec) < 0 || rec.root != (__u32)t->pid)
			continue;
		out[n].pid = (pid_t)key;
		out[n].start = rec.start / tick_ns;
		out[n].uid = (uid_t)rec.uid;
		out[n].euid = (uid_t)rec.euid;
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		key = (__u32)out[i].pid;
		bpf_map_delete_elem(fd, &key);
	}
	return n;
}
