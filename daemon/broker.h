/* The importanced broker: clients, ports, names, messages and vouchers on
 * top of one importance domain, driven by an sd-event loop. */
#ifndef IMPD_BROKER_H
#define IMPD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "importance/importance.h"
#include "backend.h"

#define IMPD_MAX_MATCH 32

struct broker_config {
	struct backend_config backend;
	uid_t donor_uids[IMPD_MAX_MATCH];
	size_t n_donor_uids;
	char donor_exes[IMPD_MAX_MATCH][256];
	size_t n_donor_exes;
	char donor_cgroups[IMPD_MAX_MATCH][256];
	size_t n_donor_cgroups;
	/* per-client quotas */
	unsigned max_ports;      /* receive rights owned */
	unsigned max_inflight;   /* messages sent and not yet received */
	size_t max_inflight_bytes; /* their data */
	unsigned max_vouchers;   /* voucher handles held */
	unsigned max_names;      /* names registered */
	size_t max_out_bytes;    /* replies queued before we stop reading it;
	                            four times that (events it does not read)
	                            and it is disconnected */
	unsigned max_errors;     /* malformed frames before it is disconnected */
	bool verbose;
};

struct broker;

void broker_config_defaults(struct broker_config *cfg);
/* Reads "key value" lines: donor-uid, donor-exe, donor-cgroup, the
 * backend's keys (backend_config_set), max-ports, max-inflight,
 * max-vouchers.  Returns 0 or -errno with *line set. */
int broker_config_load(struct broker_config *cfg, const char *path, unsigned *line);

int broker_new(sd_event *ev, const struct broker_config *cfg, int listen_fd, struct broker **out);
void broker_free(struct broker *b);

/* The engine's counts (tests and fuzzers check that nothing is left). */
int broker_engine_stats(struct broker *b, imp_stats *stats);

#endif
