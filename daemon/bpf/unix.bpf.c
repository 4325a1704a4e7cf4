// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel half of the Unix-socket source (daemon/unix.h): tracepoints
 * where data is queued on a socket (in the sender's context, before the
 * reader wakes) and where it is read (in the reader's), that pass to the
 * daemon only what may change a boost.
 *
 * Data queued on an AF_UNIX socket reaches the ring buffer when its sender
 * is a donor (its effective uid, executable or unified cgroup in the donor
 * maps, or its process in `senders`: live donors and boosted readers) and
 * the receiving end may be a receiver's (its owner's uid in
 * `receiver_uids`, or any end not yet refused when the daemon has rules it
 * must decide itself).  Such data marks the receiving end as watched
 * (`conns`); reads on a watched end, and data it sends back, reach the
 * daemon too, as the reader's consumption and its answer.
 *
 * The data is on the queue before sk_data_ready fires, so a reader that
 * is not asleep (one just entering its read, one that polls) can take it
 * on another CPU before the send is seen; its read, on an end not watched
 * yet, would pass unreported, and the boost would stay with the guessed
 * reader.  So both sides leave a mark and then look at the other's, with
 * a full barrier between (a locked instruction): a reader records itself
 * on the end (socket storage) after every read, then looks whether the
 * end is watched; a send reserves its event, marks the end watched, then
 * looks whether its data is still queued and who read the end last.
 * Either the read sees the mark (its event follows the send's in the ring
 * buffer) or the send sees the read (its event says so and names the
 * reader).  Only readers that may be receivers leave the mark (a
 * receiver uid's, or anyone's when the daemon has receiver rules the
 * kernel cannot decide: executable, cgroup, path); every other read of a
 * Unix socket costs a look at a filter (below).
 *
 * An end is known by its struct sock's address (end_id: a client's data
 * can arrive before the server accepts, when the end has no socket and no
 * inode yet); the map keeps with it the inode of the socket that sent,
 * and an event is believed only when that is still the end's peer, so a
 * freed struct sock reused by another connection is not taken for the one
 * that was watched.  Everything else costs a few looks at the filters in
 * front of the maps (unix.h), no map look-up but on a collision.  A full
 * ring buffer is counted (UNIX_STAT_LOST): the daemon then drops what it
 * cannot trust.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "unix.h"

#define AF_UNIX 1

char LICENSE[] SEC("license") = "GPL";

/* The paths every Unix send and read on the machine takes read fields by
 * plain loads from the tracepoints' BTF pointers (bpf_rdonly_cast for
 * the unix_sock around a sock), not a bpf_probe_read_kernel() call each. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

static __always_inline struct unix_sock *unix_sk_of(struct sock *sk)
{
	return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct unix_sock));
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} senders SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} donor_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct unix_exe_key);
	__type(value, __u8);
} donor_exes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} donor_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} receiver_uids SEC(".maps");

/* peer ends the daemon refused (not a receiver): no more events; by end,
 * the inode of the sending socket */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} refused SEC(".maps");

/* receiving ends with a donor's message the daemon follows: by end, the
 * inode of the socket that sent to it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} conns SEC(".maps");

/* by receiving end: its last reader (unix_reader) */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct unix_reader);
} readers SEC(".maps");

/* processes whose exit (and children) the daemon must hear of */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, UNIX_STATS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* UNIX_CFG_* (the daemon writes it in the mapped .bss: no look-up) */
volatile __u32 cfg_flags;

/* in front of the maps (unix.h): what every send and read of a process
 * no rule names looks at instead of a hash look-up */
struct unix_filters filters;

/* a full barrier for a send to an end never read (its own cache line is
 * not worth it: donors' sends are few) */
__u64 fence;

/* An end's id: the address of its struct sock less that of the .bss (a
 * pointer less a pointer is a number, which the program may hash; a
 * pointer it may not). */
static __always_inline __u64 end_id(struct sock *sk)
{
	return (__u64)sk - (__u64)&filters;
}

/* whether key may be in the rule map behind bits */
static __always_inline bool maybe(const __u64 *bits, __u64 key)
{
	__u32 slot = unix_filter_slot(key);

	return bits[slot / 64] & (1ull << (slot % 64));
}

/* whether key may be in the map behind counts */
static __always_inline bool maybe_counted(const __u32 *counts, __u64 key)
{
	return counts[unix_filter_slot(key)] != 0;
}

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &which);

	if (n)
		(*n)++;
}

static __always_inline __u32 flags(void)
{
	return cfg_flags;
}

/* the inode number of the socket of sk (what /proc/PID/fd shows) */
static __always_inline __u64 sock_ino(struct sock *sk)
{
	struct socket *so = sk->sk_socket;
	struct socket_alloc *sa;

	if (!so)
		return 0;
	sa = bpf_rdonly_cast(so, bpf_core_type_id_kernel(struct socket_alloc));
	return sa->vfs_inode.i_ino;
}

/* Whether end sk is watched: in conns, for the peer it has now (a
 * datagram end with no peer: for anyone).  An end whose slot counts no
 * key is not, without a look-up. */
static __always_inline bool watched(struct sock *sk, __u64 end)
{
	__u64 *sender;
	struct sock *peer;

	if (!maybe_counted(filters.conns, end) || !(sender = bpf_map_lookup_elem(&conns, &end)))
		return false;
	peer = unix_sk_of(sk)->peer;
	return !peer || sock_ino(peer) == *sender;
}

/* An event of size bytes (sizeof(struct unix_event) for a send, with its
 * address; UNIX_EVENT_SHORT for the others), its fixed part filled in. */
static __always_inline struct unix_event *reserve(__u32 kind, struct task_struct *t, bool full)
{
	struct unix_event *e = full ? bpf_ringbuf_reserve(&events, sizeof(*e), 0)
				    : bpf_ringbuf_reserve(&events, UNIX_EVENT_SHORT, 0);

	if (!e) {
		count(UNIX_STAT_LOST);
		return NULL;
	}
	/* path, last, is written only as far as the address goes */
	if (full)
		__builtin_memset(e, 0, __builtin_offsetof(struct unix_event, path));
	else
		__builtin_memset(e, 0, UNIX_EVENT_SHORT);
	e->kind = kind;
	e->tgid = t->tgid;
	e->start = t->group_leader->start_boottime;
	e->uid = t->cred->euid.val;
	e->time = bpf_ktime_get_ns();
	return e;
}

static __always_inline __u32 donor_by(struct task_struct *t, __u32 tgid, __u32 f)
{
	struct unix_exe_key exe = {};
	struct file *exe_file;
	__u32 uid = t->cred->euid.val;
	__u64 cg;

	if (maybe_counted(filters.senders, tgid) && bpf_map_lookup_elem(&senders, &tgid))
		return UNIX_BY_SENDER;
	if (maybe(filters.donor_uids, uid) && bpf_map_lookup_elem(&donor_uids, &uid))
		return UNIX_BY_UID;
	if ((f & UNIX_CFG_DONOR_EXES) && (exe_file = BPF_CORE_READ(t, mm, exe_file))) {
		exe.ino = BPF_CORE_READ(exe_file, f_inode, i_ino);
		exe.dev = BPF_CORE_READ(exe_file, f_inode, i_sb, s_dev);
		if (maybe(filters.donor_exes, unix_exe_hash(&exe)) && bpf_map_lookup_elem(&donor_exes, &exe))
			return UNIX_BY_EXE;
	}
	if (!(f & UNIX_CFG_DONOR_CGROUPS))
		return 0;
	cg = bpf_get_current_cgroup_id();
	if (maybe(filters.donor_cgroups, cg) && bpf_map_lookup_elem(&donor_cgroups, &cg))
		return UNIX_BY_CGROUP;
#pragma unroll
	for (int level = 1; level < 12; level++) {
		cg = bpf_get_current_ancestor_cgroup_id(level);
		if (!cg)
			break;
		if (maybe(filters.donor_cgroups, cg) && bpf_map_lookup_elem(&donor_cgroups, &cg))
			return UNIX_BY_CGROUP;
	}
	return 0;
}

static __always_inline bool receiver_uid(__u32 uid)
{
	return maybe(filters.receiver_uids, uid) && bpf_map_lookup_elem(&receiver_uids, &uid);
}

/* Puts key in map behind the count n: counted first, uncounted when it
 * was there already (or the map is full); 0 when it went in. */
static __always_inline int counted_insert(void *map, __u32 *n, const void *key, const void *value)
{
	__sync_fetch_and_add(n, 1);
	if (bpf_map_update_elem(map, key, value, BPF_NOEXIST) == 0)
		return 0;
	__sync_fetch_and_add(n, -1);
	return -1;
}

/* Puts end in conns for the sending socket ino; 0, or < 0 when the map is
 * full. */
static __always_inline int watch(__u64 end, __u64 ino)
{
	__u32 *n = &filters.conns[unix_filter_slot(end)];
	__u64 *was = bpf_map_lookup_elem(&conns, &end);

	/* (in conns already, for this sender, by a send before: a reader has
	 * seen that or reported its read since) */
	if (was && (*was == ino || bpf_map_update_elem(&conns, &end, &ino, BPF_EXIST) == 0))
		return 0;
	if (counted_insert(&conns, n, &end, &ino) == 0)
		return 0;
	/* full, or put in by another CPU meanwhile */
	return bpf_map_update_elem(&conns, &end, &ino, BPF_EXIST);
}

/* the process that owns the pid the kernel recorded for sk's peer */
static __always_inline struct task_struct *pid_task_of(struct pid *p)
{
	struct hlist_node *first = p->tasks[PIDTYPE_TGID].first;

	if (!first)
		return NULL;
	return bpf_rdonly_cast((char *)first - bpf_core_field_offset(struct task_struct, pid_links) -
				       PIDTYPE_TGID * sizeof(struct hlist_node),
			       bpf_core_type_id_kernel(struct task_struct));
}

/* The socket that sent what was just queued on sk: a connected end's peer;
 * for a datagram end with no peer, the owner of the last buffer on its
 * queue (read without the queue's lock: a reader that took it meanwhile
 * leaves a pointer that fails the family check, or an answer not seen,
 * which the answer timeout ends). */
static __always_inline struct sock *sent_from(struct sock *sk, __u32 type)
{
	struct sock *from = unix_sk_of(sk)->peer;
	struct sk_buff *tail;

	if (from || type != SOCK_DGRAM)
		return from;
	tail = sk->sk_receive_queue.prev;
	if (!tail || (void *)tail == (void *)&sk->sk_receive_queue)
		return NULL;
	from = tail->sk;
	if (!from || from->__sk_common.skc_family != AF_UNIX)
		return NULL;
	return from;
}

/*
 * Data was queued on receiving end sk, in the sender's context, before the
 * reader is woken: so the send is in the ring buffer before anything the
 * reader does with it.  (sock_send_length fires only when sendmsg returns,
 * which may be after the reader has read and answered.)  A stream end that
 * already had data queued is one whose earlier send is not read yet: the
 * daemon heard of that one, so this one says nothing new.
 */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(on_ready, struct sock *sk)
{
	struct task_struct *t;
	struct unix_event *e;
	struct sock *from;
	const struct cred *cred;
	struct unix_reader *rd;
	__u64 end, from_end, ino, *no;
	__u32 tgid, by, puid, f, type, queued;

	if (sk->__sk_common.skc_family != AF_UNIX)
		return 0;
	f = flags();
	if (!(f & UNIX_CFG_ON))
		return 0;
	type = sk->sk_type;
	if (!(from = sent_from(sk, type)))
		return 0; /* a listening socket's new connection, or no sender known */
	end = end_id(sk);
	queued = sk->sk_receive_queue.qlen;
	/* a stream end with data queued before this: when it is watched, the
	 * daemon heard of the send that queued it, and this one says nothing
	 * new; when not (that data was a non-donor's), this one may */
	if (type == SOCK_STREAM && queued > 1 && watched(sk, end))
		return 0;
	t = bpf_get_current_task_btf();
	tgid = t->tgid; /* a load, not bpf_get_current_pid_tgid()'s call */

	/* An answer from a watched receiving end; read: nothing is queued on
	 * it (the request was consumed, maybe by a read the tracepoint does not
	 * see, splice()). */
	from_end = end_id(from);
	if (watched(from, from_end) && (e = reserve(UNIX_EV_ANSWER, t, false))) {
		e->ret = 1;
		e->end = from_end;
		e->read = !from->sk_receive_queue.qlen;
		bpf_ringbuf_submit(e, 0);
	}

	if (!(by = donor_by(t, tgid, f)))
		return 0;
	ino = sock_ino(from);
	if (maybe(filters.refused, end) && (no = bpf_map_lookup_elem(&refused, &end)) && *no == ino)
		return 0;
	/* The receiving end's owner: who made the listening socket (or the
	 * pair), as connect recorded it on the sender's end; else who made
	 * this socket.  Its reader may be another uid (a socketpair made by
	 * one process and read by a child that changed uid): the end's last
	 * reader, recorded only when its uid is a receiver's, counts too. */
	cred = from->sk_peer_cred;
	puid = cred ? cred->euid.val : sk->sk_uid.val;
	rd = bpf_sk_storage_get(&readers, sk, 0, 0);
	if (!(f & UNIX_CFG_ANY_PEER) && !receiver_uid(puid) && !(rd && receiver_uid(rd->uid)))
		return 0;
	/* reserved before the end is watched: a read that sees it watched
	 * is reported after this */
	if (!(e = reserve(UNIX_EV_SEND, t, true)))
		return 0;
	if (watch(end, ino) < 0) {
		count(UNIX_STAT_FULL);
		bpf_ringbuf_discard(e, 0);
		return 0; /* not watched, so not boosted */
	}
	/* the barrier, then the reader's side: is the data still queued? */
	if (rd) {
		__sync_fetch_and_add(&rd->reads, 0);
	} else {
		/* none when the filter looked: a first read may be making it */
		__sync_fetch_and_add(&fence, 1);
		rd = bpf_sk_storage_get(&readers, sk, 0, 0);
	}
	if (rd) {
		e->reader_tgid = rd->tgid;
		e->reader_start = rd->start;
	}
	if (!sk->sk_receive_queue.qlen)
		e->read = 1;
	e->ret = 1;
	e->end = end;
	e->by = by;
	e->peer_uid = puid;
	e->type = type;
	{
		struct pid *p = from->sk_peer_pid;
		struct task_struct *pt = p ? pid_task_of(p) : NULL;
		struct unix_address *addr = unix_sk_of(sk)->addr;

		if (pt) {
			e->peer_tgid = pt->tgid;
			e->peer_start = pt->start_boottime;
		}
		/* the address is sun_family and len - 2 bytes of sun_path, in
		 * a block of that size: read no further */
		__u32 len = addr ? (__u32)addr->len : 0;

		if (len > 2) {
			len -= 2;
			if (len > UNIX_PATH_MAX)
				len = UNIX_PATH_MAX;
			asm volatile("%[n] &= %[mask]" : [n] "+r"(len) : [mask] "i"(UNIX_EVENT_PATH - 1));
			if (bpf_probe_read_kernel(e->path, len, (char *)addr->name + 2) == 0)
				e->path_len = len;
		}
	}
	count(UNIX_STAT_EVENTS);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_recv, struct sock *sk, int ret, int fl)
{
	struct task_struct *me;
	struct unix_event *e;
	__u64 end;
	__u32 f;

	if (sk->__sk_common.skc_family != AF_UNIX)
		return 0;
	f = flags();
	if (!(f & UNIX_CFG_ON) || (fl & 2 /* MSG_PEEK */))
		return 0;
	end = end_id(sk);
	me = bpf_get_current_task_btf();
	if (ret > 0) {
		/* Who read, then the barrier, then whether a send marked it:
		 * only a reader that may be a receiver is recorded (its uid is
		 * a receiver's, or rules the kernel cannot decide are there);
		 * the reads of everyone else cost the look at its filter. */
		__u32 uid = me->cred->euid.val;

		if ((f & UNIX_CFG_ANY_PEER) || receiver_uid(uid)) {
			struct unix_reader *rd = bpf_sk_storage_get(&readers, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

			if (rd) {
				rd->tgid = me->tgid;
				rd->uid = uid;
				rd->start = me->group_leader->start_boottime;
				__sync_fetch_and_add(&rd->reads, 1);
			}
		}
	}
	if (!watched(sk, end))
		return 0;
	/* A reader of a donor's request may pass it on at once, before the
	 * daemon has read this: its sends pass the filter from now on, and
	 * the daemon, which decides, takes that back if it is no boosted
	 * reader. */
	if (ret > 0) {
		__u32 tgid = me->tgid;
		__u32 *n = &filters.senders[unix_filter_slot(tgid)];
		__u8 one = 1;

		if (!*n || !bpf_map_lookup_elem(&senders, &tgid))
			counted_insert(&senders, n, &tgid, &one);
	}
	if (!(e = reserve(UNIX_EV_RECV, me, false)))
		return 0;
	e->ret = ret;
	e->end = end;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *t, bool group_dead)
{
	struct unix_event *e;
	__u32 tgid = t->tgid;

	if (t->pid != tgid || !maybe_counted(filters.tracked, tgid) || !bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	if (bpf_map_delete_elem(&senders, &tgid) == 0)
		__sync_fetch_and_add(&filters.senders[unix_filter_slot(tgid)], -1); /* uncounted after */
	if (!(e = reserve(UNIX_EV_EXIT, t, false)))
		return 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	struct unix_event *e;
	__u32 ptgid = parent->tgid;

	if (child->pid != child->tgid || !maybe_counted(filters.tracked, ptgid) || !bpf_map_lookup_elem(&tracked, &ptgid))
		return 0;
	if (!(e = reserve(UNIX_EV_FORK, parent, false)))
		return 0;
	e->peer_tgid = BPF_CORE_READ(child, tgid);
	e->peer_start = BPF_CORE_READ(child, start_boottime);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
