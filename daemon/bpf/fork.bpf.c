// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel half of following a boost into the processes a boosted
 * receiver forks (daemon/backend-fork.c).  A child inherits its parent's
 * nice value and I/O priority at the fork, so a child forked during a
 * boost is born boosted; one that outlives the boost's end as a child of
 * init (a double fork, a daemon's detach) cannot be found from the
 * receiver any more.  So each fork of a boosted receiver, or of a process
 * recorded as born from one, is recorded here in `born`, under the
 * receiver it descends from; the backend reads and clears those records
 * at the unboost and puts each such process back.
 *
 * A receiver is in `boosted` (written by the backend) only while its boost
 * lasts.  The parent is believed to be that receiver, or the recorded
 * process, only if its thread group leader's start time is the one
 * recorded: a reused pid is not taken for it.  A process's record goes
 * when its last thread exits.  A receiver that is itself recorded as
 * born from another one's boost records its children under its own
 * boost while it has one.  Recording is bounded per boost (FORK_MAX_PER_BOOST) and
 * in all (FORK_MAX_BORN); what does not fit is counted in the boost's
 * n_lost.  Threads are not recorded: the backend walks each process's
 * threads itself.  Every fork on the machine costs one or two hash
 * look-ups; every exit one hash delete.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "fork.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FORK_MAX_BOOSTED);
	__type(key, __u32);
	__type(value, struct fork_boosted);
} boosted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FORK_MAX_BORN);
	__type(key, __u32);
	__type(value, struct fork_born);
} born SEC(".maps");

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), tgid = BPF_CORE_READ(child, tgid), root = ptgid;
	__u64 pstart = BPF_CORE_READ(parent, group_leader, start_boottime);
	struct fork_boosted *b;
	struct fork_born *from, rec = {};

	if (BPF_CORE_READ(child, pid) != tgid)
		return 0; /* a thread */
	b = bpf_map_lookup_elem(&boosted, &ptgid);
	if (b && (!b->tick_ns || pstart / b->tick_ns != b->start))
		b = NULL; /* an entry left for an earlier process of that pid */
	if (!b) {
		if (!(from = bpf_map_lookup_elem(&born, &ptgid)) || from->start != pstart)
			return 0;
		root = from->root;
		if (!(b = bpf_map_lookup_elem(&boosted, &root)))
			return 0;
	}
	/* forks racing here may pass the bound by a few */
	if (b->n_born >= FORK_MAX_PER_BOOST) {
		__sync_fetch_and_add(&b->n_lost, 1);
		return 0;
	}
	__sync_fetch_and_add(&b->n_born, 1);
	rec.root = root;
	rec.uid = BPF_CORE_READ(child, real_cred, uid.val);
	rec.euid = BPF_CORE_READ(child, real_cred, euid.val);
	rec.start = BPF_CORE_READ(child, start_boottime);
	if (bpf_map_update_elem(&born, &tgid, &rec, BPF_ANY) < 0)
		__sync_fetch_and_add(&b->n_lost, 1);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *t, bool group_dead)
{
	__u32 tgid = BPF_CORE_READ(t, tgid);

	if (group_dead)
		bpf_map_delete_elem(&born, &tgid);
	return 0;
}
