/*
 * The daemon's configuration: one table of keys, read from the command
 * line (--key value) and from the configuration file ("key value" lines),
 * checked the same way in both.
 */
#ifndef IMPD_CONFIG_H
#define IMPD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "backend.h"

#define IMPD_DEFAULT_CONFIG "/etc/importanced.conf"
#define IMPD_DROPIN_SUFFIX ".d" /* FILE.d/NAME.conf: drop-ins, read after FILE */
#define IMPD_MAX_RULES 32
#define IMPD_RULE_LEN 256

/* Who is a donor: processes of these uids, running these executables (by
 * file: device and inode of what the path names when asked), or in these
 * cgroups of the unified hierarchy (the path or below it, by component). */
struct donor_rules {
	uid_t uids[IMPD_MAX_RULES];
	size_t n_uids;
	char exes[IMPD_MAX_RULES][IMPD_RULE_LEN];
	size_t n_exes;
	char cgroups[IMPD_MAX_RULES][IMPD_RULE_LEN];
	size_t n_cgroups;
};

/* Which uid may own which names: "name-owner PATTERN USER", PATTERN a
 * name or a prefix ending in '*'.  A name that some rule covers may be
 * owned only by a uid of a rule that covers it; other names by anyone,
 * unless names-unlisted is "root". */
struct name_rule {
	char pattern[IMPD_RULE_LEN];
	uid_t uid;
};

/* What one connection, one uid, and everyone together may hold. */
struct limits {
	/* per connection */
	unsigned ports, inflight, inflight_fds, vouchers, names, rights, filelocks, errors;
	size_t inflight_bytes, out_bytes;
	/* per uid */
	unsigned user_connections, user_ports, user_names, user_inflight, user_inflight_fds;
	size_t user_inflight_bytes, user_out_bytes;
	unsigned listing_interval_ms; /* between one uid's TASKS/GRAPH (root: none) */
	/* all together */
	unsigned connections, all_ports, all_names, all_inflight, all_inflight_fds;
	size_t all_inflight_bytes, all_out_bytes;
	/* D-Bus connections tracked (each with the pidfd of its process once
	 * known; bus.h says whose uid pays), of one uid and on all buses */
	unsigned user_bus_connections, all_bus_connections;
};

/* The D-Bus buses watched (dbus.h) and which of their services accept
 * boosts: none of the rules given means every service does; otherwise a
 * service matching any of them (its process by uid, executable or cgroup,
 * as for donors; or a well-known name it owns, a name or a prefix ending
 * in '*').  The bounds are per bus. */
#define IMPD_MAX_BUSES 8
struct dbus_config {
	char buses[IMPD_MAX_BUSES][IMPD_RULE_LEN]; /* system, session or an address */
	size_t n_buses;
	struct donor_rules receivers;
	char receiver_names[IMPD_MAX_RULES][IMPD_RULE_LEN];
	size_t n_receiver_names;
	unsigned max_calls, max_connections, max_names;
	unsigned call_timeout_ms;
	unsigned batch_usec; /* how long the monitor's messages gather before they are handled */
};

/* Unix sockets watched through the kernel (unix.h): on or off, and which
 * readers accept boosts: none of the rules given means none does; else a
 * reader matching any of them (its process by uid, executable or cgroup,
 * as for donors; or the socket's address, a pattern as fnmatch(3) takes
 * it).  A reader that got a donor's message holds its boost at most
 * answer_timeout_ms. */
struct unix_config {
	bool enabled;
	struct donor_rules receivers;
	char paths[IMPD_MAX_RULES][IMPD_RULE_LEN];
	size_t n_paths;
	unsigned answer_timeout_ms;
	unsigned batch_usec; /* how long the kernel's events gather before they are handled */
};

struct broker_config {
	struct backend_config backend;
	struct donor_rules donors;
	struct name_rule name_rules[IMPD_MAX_RULES];
	size_t n_name_rules;
	bool names_unlisted_root; /* names no rule covers: root only */
	struct limits limits;
	struct dbus_config dbus;
	struct unix_config unix_sockets;
	/* receiver-background-*: the receivers put in the background band
	 * (backend.h), by process as for donors; backend.background: all */
	struct donor_rules background;
	char socket_path[108];
	bool verbose;
	bool donor_foreground; /* foreground.h */
	bool logind; /* logind.h */
	char foreground_bus[IMPD_RULE_LEN]; /* foreground-bus.h: system, an address, or "" */
};

void config_defaults(struct broker_config *cfg);

/* Sets one key.  0, or -EINVAL (unknown key, bad value) with a message
 * naming the key and what was wrong in err. */
int config_set(struct broker_config *cfg, const char *key, const char *value, char *err, size_t size);

/* Reads a configuration file.  0, or -errno with a message naming the
 * file, the line and the key in err. */
int config_load(struct broker_config *cfg, const char *path, char *err, size_t size);

/* Reads DIR/NAME.conf in name order (alphasort), each as config_load
 * does, stopping at the first error; a missing DIR is none. */
int config_load_dropins(struct broker_config *cfg, const char *dir, char *err, size_t size);

/* Builds a configuration from defaults, the configuration file (--config
 * FILE, else IMPD_DEFAULT_CONFIG if it exists, none with --no-config),
 * its drop-ins (FILE.d/NAME.conf, config_load_dropins; the default's
 * even when IMPD_DEFAULT_CONFIG does not exist) and the command line,
 * which wins.  A --config that is not a regular file is refused.  0; 1 when --help or --version was
 * answered; -EINVAL with err set. */
int config_from_args(struct broker_config *cfg, int argc, char **argv, char *err, size_t size);

/* Checks what no single key can: the rules' files exist, etc. */
int config_check(struct broker_config *cfg, char *err, size_t size);

void config_usage(FILE *f);

#endif
