/*
 * What the fork tracker's kernel half (fork.bpf.c) and the backend
 * (backend-fork.c) share: its maps' keys and values and their bounds.
 * Plain C types only: this header is read by clang -target bpf and by the
 * daemon's compiler.
 */
#ifndef IMPD_BPF_FORK_H
#define IMPD_BPF_FORK_H

#define FORK_MAX_BOOSTED 4096   /* processes boosted at once */
#define FORK_MAX_BORN 16384     /* processes born boosted, all boosts together */
#define FORK_MAX_PER_BOOST 1024 /* of those, per boost */

/* boosted: key the receiver's tgid, written by the backend at a boost,
 * removed at the unboost */
struct fork_boosted {
	unsigned long long start;   /* its start time in clock ticks (/proc/PID/stat) */
	unsigned long long tick_ns; /* the nanoseconds in one of those ticks */
	unsigned int n_born;        /* processes recorded for this boost */
	unsigned int n_lost;        /* and those not recorded: over the bound, or the map full */
};

/* born: key a process's tgid, written by the kernel half when a boosted
 * receiver or a process born from one forks; removed by the backend at
 * the receiver's unboost, or by the kernel half when the process exits */
struct fork_born {
	unsigned int root;        /* the boosted receiver it descends from */
	unsigned int uid, euid;   /* its credentials at the fork (its parent's) */
	unsigned int pad;
	unsigned long long start; /* its start_boottime (ns since boot) */
};

#endif
