/* Policy backends: make a boost real for a process. */
#ifndef BACKEND_H
#define BACKEND_H

#include <stdbool.h>
#include <sys/types.h>

enum backend_kind { BACKEND_NONE, BACKEND_NICE, BACKEND_CGROUP };

struct backend_config {
	enum backend_kind kind;
	int boost_nice;          /* nice value a boosted thread gets (if lower) */
	unsigned boost_weight;   /* cpu.weight of a boosted client's cgroup */
	char cgroup_root[512];   /* a cgroup v2 directory we may write */
	char cgroup_mount[256];  /* where cgroup v2 is mounted (found at init) */
};

struct backend_saved_nice {
	pid_t tid;
	int nice;     /* before the boost */
	bool changed; /* false: seen, already at or above the boost */
};

/* Per-process state kept by the backends. */
struct backend_target {
	pid_t pid;
	int pidfd;               /* -1 if unavailable: then pid alone is used */
	bool boosted;
	enum backend_kind kind; /* the backend in force for this process */
	struct backend_saved_nice *saved;
	size_t n_saved, cap_saved;
	char cgroup_dir[600];    /* our sub-cgroup for it, when kind is CGROUP */
	char cgroup_orig[600];   /* where it came from */
	unsigned weight_orig;
};

/* Checks the configuration; with kind CGROUP and an unusable root, falls
 * back to NICE and says why in *why. */
int backend_init(struct backend_config *cfg, char *why, size_t why_size);

/* A receiver process comes under the policy (cgroup: moved into its own
 * sub-cgroup).  Never fatal: on error the target falls back to nice. */
void backend_attach(const struct backend_config *cfg, struct backend_target *t);

/* Applies a boost or an unboost; returns 0 or -errno, *value the nice or
 * weight now in force. */
int backend_apply(const struct backend_config *cfg, struct backend_target *t, bool boost,
		      unsigned *value);

/* The process left: restore what we changed (if it is still alive), free. */
void backend_detach(const struct backend_config *cfg, struct backend_target *t);

const char *backend_name(enum backend_kind kind);

#endif
