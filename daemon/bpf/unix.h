/*
 * What the kernel half of the Unix-socket source (unix.bpf.c) and the
 * daemon share: the events of its ring buffer and the keys of its maps.
 * Plain C types only: this header is read by clang -target bpf and by the
 * daemon's compiler.
 */
#ifndef IMPD_BPF_UNIX_H
#define IMPD_BPF_UNIX_H

enum unix_event_kind {
	UNIX_EV_SEND = 1, /* a donor or a boosted task sent to a receiver's socket */
	UNIX_EV_RECV,     /* a read on a watched receiving end (ret: bytes, 0 end, <0 error) */
	UNIX_EV_ANSWER,   /* a send from a watched receiving end: the reader answers */
	UNIX_EV_EXIT,     /* a tracked process exited */
	UNIX_EV_FORK,     /* a tracked process made a child */
};

/* why the kernel let a send through */
enum { UNIX_BY_SENDER = 1, UNIX_BY_UID = 2, UNIX_BY_EXE = 4, UNIX_BY_CGROUP = 8 };

#define UNIX_PATH_MAX 108
/* the room for it in an event: a power of two, so that the kernel half's
 * read of path_len bytes is bounded by a mask the verifier can see */
#define UNIX_EVENT_PATH 128

struct unix_event {
	unsigned int kind;
	unsigned int tgid;          /* the task whose context it fired in */
	unsigned long long start;   /* its start_boottime (ns since boot) */
	unsigned int uid;           /* its effective uid */
	int ret;                    /* the byte count or the error */
	unsigned long long end;     /* SEND: the peer's (receiving) end; RECV, ANSWER: this end:
	                               an opaque id (its struct sock's address less the kernel
	                               half's .bss's) */
	unsigned int by;            /* SEND: UNIX_BY_* */
	unsigned int peer_tgid;     /* SEND: the peer socket's owner as the kernel recorded it */
	unsigned long long peer_start;
	unsigned int peer_uid;
	unsigned int type;          /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	unsigned long long time;    /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	unsigned int reader_tgid;   /* SEND: the last process that read this end (0: none seen) */
	unsigned long long reader_start;
	unsigned int read;          /* SEND: 1 when the data was read before it was reported, by
	                               reader_tgid when the kernel saw that read; ANSWER: 1 when
	                               nothing is left queued on the answering end */
	unsigned int path_len;      /* SEND: the bytes of path that are the peer's address (0: none) */
	char path[UNIX_EVENT_PATH]; /* SEND: the peer's address, path_len (<= UNIX_PATH_MAX) bytes
	                               ('\0' first: abstract); last, and only those bytes are written */
};

/* Events other than SEND end before path_len: the ring buffer holds more
 * of them. */
#define UNIX_EVENT_SHORT __builtin_offsetof(struct unix_event, path_len)

/* What the kernel keeps on a receiving end (socket storage): its last reader. */
struct unix_reader {
	unsigned int tgid;
	unsigned int uid;           /* its effective uid */
	unsigned long long start;
	unsigned long long reads;
};

struct unix_exe_key {
	unsigned long long dev; /* the kernel's encoding: major << 20 | minor */
	unsigned long long ino;
};

/*
 * Filters in front of the maps (unix.bpf.c's .bss, mapped by the daemon):
 * a key's slot, one of UNIX_FILTER_BITS, is a hash of it; a clear bit (a
 * zero count) says the key is certainly not in the map behind, a set one
 * (a count above zero) only that it may be, and the look-up is done.  A
 * collision costs that look-up, never a wrong answer.  The bitmaps are
 * the rule maps' and refused's (written by the daemon alone: a bit set
 * before its key goes in, all cleared after the map at a reload); the
 * counts are the maps that lose keys one by one (conns and senders, which
 * the kernel half writes too; tracked): whoever puts a key in adds one to
 * its slot first and takes it back when the key was there already,
 * whoever takes a key out takes one off after, so a count is never below
 * the keys of its slot in the map.
 */
#define UNIX_FILTER_BITS 1024
#define UNIX_FILTER_WORDS (UNIX_FILTER_BITS / 64)

struct unix_filters {
	unsigned long long donor_uids[UNIX_FILTER_WORDS];
	unsigned long long donor_exes[UNIX_FILTER_WORDS];
	unsigned long long donor_cgroups[UNIX_FILTER_WORDS];
	unsigned long long receiver_uids[UNIX_FILTER_WORDS];
	unsigned long long refused[UNIX_FILTER_WORDS];
	unsigned int conns[UNIX_FILTER_BITS];
	unsigned int senders[UNIX_FILTER_BITS];
	unsigned int tracked[UNIX_FILTER_BITS];
};

/* the slot of a key (a uid, a tgid, a cgroup id, an end, unix_exe_hash):
 * the top ten bits of a multiplicative hash */
static inline unsigned int unix_filter_slot(unsigned long long key)
{
	return (unsigned int)((key * 0x9E3779B97F4A7C15ull) >> 54);
}

/* an executable's key as one number, for its slot */
static inline unsigned long long unix_exe_hash(const struct unix_exe_key *k)
{
	return k->ino ^ (k->dev << 40);
}

/* counters (a per-CPU array) */
enum { UNIX_STAT_LOST, UNIX_STAT_EVENTS, UNIX_STAT_FULL, UNIX_STATS };

/* flags (an array of one): on; receiver rules the kernel cannot decide
 * (exe, cgroup, path: every peer goes to the daemon); donor rules by
 * executable, by cgroup (what a send that is no donor's looks up) */
enum { UNIX_CFG_ON = 1, UNIX_CFG_ANY_PEER = 2, UNIX_CFG_DONOR_EXES = 4, UNIX_CFG_DONOR_CGROUPS = 8 };

#endif
