/*
 * One table of configuration keys.
 *
 * Every key is parsed by the same code whether it comes from the command
 * line or from a file: numbers whole, in range and with nothing after
 * them, users by name or number, paths absolute.  An error names the key,
 * the value and what was wrong (and, from a file, the file and the line);
 * nothing unknown is ignored.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "importance/importance.h"
#include "importance/protocol.h"

enum kind { K_UINT, K_SIZE, K_ULONG, K_INT, K_BOOL, K_PATH, K_SPECIAL };

struct key {
	const char *name;
	enum kind kind;
	size_t offset; /* into struct broker_config */
	long long min, max;
	size_t size;   /* K_PATH: the buffer's size */
	int (*parse)(struct broker_config *cfg, const char *value, char *err, size_t size);
	const char *arg, *help;
};

static int parse_user(const char *value, uid_t *uid)
{
	char *end;
	unsigned long long n;
	struct passwd *pw;

	if (!*value)
		return -EINVAL;
	errno = 0;
	n = strtoull(value, &end, 10);
	if (*value != '-' && !*end && !errno && n < (uid_t)-1) {
		*uid = (uid_t)n;
		return 0;
	}
	if ((pw = getpwnam(value))) {
		*uid = pw->pw_uid;
		return 0;
	}
	return -ENOENT;
}

static int set_backend(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	if (backend_kind_parse(v, &cfg->backend.kind) < 0) {
		snprintf(err, size, "backend: '%s' is not one of auto, cgroup, cgroup-v2, cgroup-v1, autogroup, nice, none", v);
		return -EINVAL;
	}
	return 0;
}

/* The index of the next rule of a list holding *n (for key), counted in
 * *n; -EINVAL when the list is full. */
static int rule_slot(size_t *n, const char *key, char *err, size_t size)
{
	if (*n == IMPD_MAX_RULES) {
		snprintf(err, size, "%s: more than %d rules", key, IMPD_MAX_RULES);
		return -EINVAL;
	}
	return (int)(*n)++;
}

/* Adds a uid rule to rules (for key). */
static int add_uid_rule(struct donor_rules *rules, const char *key, const char *v, char *err, size_t size)
{
	uid_t uid;
	int i;

	if (parse_user(v, &uid) < 0) {
		snprintf(err, size, "%s: '%s' is neither a uid nor a user name", key, v);
		return -EINVAL;
	}
	if ((i = rule_slot(&rules->n_uids, key, err, size)) < 0)
		return i;
	rules->uids[i] = uid;
	return 0;
}

static int set_donor_uid(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_uid_rule(&cfg->donors, "donor-uid", v, err, size);
}

static int set_dbus_receiver_uid(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_uid_rule(&cfg->dbus.receivers, "dbus-receiver-uid", v, err, size);
}

static int check_path(const char *key, const char *v, char *err, size_t size)
{
	if (v[0] != '/') {
		snprintf(err, size, "%s: '%s' is not an absolute path", key, v);
		return -EINVAL;
	}
	if (strlen(v) >= IMPD_RULE_LEN) {
		snprintf(err, size, "%s: '%s' is longer than %d bytes", key, v, IMPD_RULE_LEN - 1);
		return -EINVAL;
	}
	return 0;
}

static int add_exe_rule(struct donor_rules *rules, const char *key, const char *v, char *err, size_t size)
{
	int r = check_path(key, v, err, size);

	if (r < 0 || (r = rule_slot(&rules->n_exes, key, err, size)) < 0)
		return r;
	snprintf(rules->exes[r], IMPD_RULE_LEN, "%s", v);
	return 0;
}

static int set_donor_exe(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_exe_rule(&cfg->donors, "donor-exe", v, err, size);
}

static int set_dbus_receiver_exe(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_exe_rule(&cfg->dbus.receivers, "dbus-receiver-exe", v, err, size);
}

/* A cgroup path in one form: leading '/', no empty, '.' or '..' part,
 * no trailing '/' (except the root itself). */
static int add_cgroup_rule(struct donor_rules *rules, const char *key, const char *v, char *err, size_t size)
{
	int r = check_path(key, v, err, size);
	const char *p;

	if (r < 0)
		return r;
	for (p = v; *p; p++) {
		if (*p != '/')
			continue;
		if (p[1] == '/' || (p[1] == '.' && (p[2] == '/' || !p[2] || (p[2] == '.' && (p[3] == '/' || !p[3])))) ||
		    (!p[1] && p != v)) {
			snprintf(err, size, "%s: '%s' is not a plain cgroup path (no //, ., .. or trailing /)", key, v);
			return -EINVAL;
		}
	}
	if ((r = rule_slot(&rules->n_cgroups, key, err, size)) < 0)
		return r;
	snprintf(rules->cgroups[r], IMPD_RULE_LEN, "%s", v);
	return 0;
}

static int set_donor_cgroup(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_cgroup_rule(&cfg->donors, "donor-cgroup", v, err, size);
}

static int set_dbus_receiver_cgroup(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_cgroup_rule(&cfg->dbus.receivers, "dbus-receiver-cgroup", v, err, size);
}

/* A D-Bus name or a prefix ending in '*' (at most 255 bytes, no spaces). */
static int set_dbus_receiver_name(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	const char *star = strchr(v, '*');
	int i;

	if (!*v || strlen(v) > 255 || strpbrk(v, " \t") || (star && star[1])) {
		snprintf(err, size, "dbus-receiver-name: '%s' is not a bus name, or a prefix ending in one '*'", v);
		return -EINVAL;
	}
	if ((i = rule_slot(&cfg->dbus.n_receiver_names, "dbus-receiver-name", err, size)) < 0)
		return i;
	snprintf(cfg->dbus.receiver_names[i], IMPD_RULE_LEN, "%s", v);
	return 0;
}

static int set_unix_receiver_uid(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_uid_rule(&cfg->unix_sockets.receivers, "unix-receiver-uid", v, err, size);
}

static int set_unix_receiver_exe(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_exe_rule(&cfg->unix_sockets.receivers, "unix-receiver-exe", v, err, size);
}

static int set_unix_receiver_cgroup(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	return add_cgroup_rule(&cfg->unix_sockets.receivers, "unix-receiver-cgroup", v, err, size);
}

static int set_background_uid(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	cfg->backend.background_ruled = true;
	return add_uid_rule(&cfg->background, "receiver-background-uid", v, err, size);
}

static int set_background_exe(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	cfg->backend.background_ruled = true;
	return add_exe_rule(&cfg->background, "receiver-background-exe", v, err, size);
}

static int set_background_cgroup(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	cfg->backend.background_ruled = true;
	return add_cgroup_rule(&cfg->background, "receiver-background-cgroup", v, err, size);
}

/* A socket address pattern: a path (absolute), or an abstract name
 * written '@name'; fnmatch(3) wildcards allowed. */
static int set_unix_receiver_path(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	int i;

	if (v[0] != '/' && v[0] != '@') {
		snprintf(err, size, "unix-receiver-path: '%s' is neither an absolute path nor '@' and an abstract name", v);
		return -EINVAL;
	}
	if (strlen(v) >= 108) {
		snprintf(err, size, "unix-receiver-path: '%s' is longer than a socket address (107 bytes)", v);
		return -EINVAL;
	}
	if ((i = rule_slot(&cfg->unix_sockets.n_paths, "unix-receiver-path", err, size)) < 0)
		return i;
	snprintf(cfg->unix_sockets.paths[i], IMPD_RULE_LEN, "%s", v);
	return 0;
}

/* "system", "session", or a D-Bus address ("unix:path=/run/user/1000/bus"). */
static int set_dbus(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	if (strcmp(v, "system") && strcmp(v, "session") && !strchr(v, ':')) {
		snprintf(err, size, "dbus: '%s' is not system, session or a D-Bus address (TRANSPORT:KEY=VALUE)", v);
		return -EINVAL;
	}
	if (strlen(v) >= IMPD_RULE_LEN) {
		snprintf(err, size, "dbus: '%s' is longer than %d bytes", v, IMPD_RULE_LEN - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->dbus.n_buses; i++)
		if (!strcmp(cfg->dbus.buses[i], v)) {
			snprintf(err, size, "dbus: '%s' is given twice", v);
			return -EINVAL;
		}
	if (cfg->dbus.n_buses == IMPD_MAX_BUSES) {
		snprintf(err, size, "dbus: more than %d buses", IMPD_MAX_BUSES);
		return -EINVAL;
	}
	snprintf(cfg->dbus.buses[cfg->dbus.n_buses++], IMPD_RULE_LEN, "%s", v);
	return 0;
}

static int set_name_owner(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	char pattern[IMPD_RULE_LEN + 1], user[256], extra;
	struct name_rule *rule;
	uid_t uid;

	if (sscanf(v, "%256s %255s %c", pattern, user, &extra) != 2) {
		snprintf(err, size, "name-owner: '%s' is not \"PATTERN USER\"", v);
		return -EINVAL;
	}
	if (strlen(pattern) > IMPP_MAX_NAME || strchr(pattern, '*') != strrchr(pattern, '*') ||
	    (strchr(pattern, '*') && pattern[strlen(pattern) - 1] != '*')) {
		snprintf(err, size, "name-owner: '%s' is not a name, or a prefix ending in one '*'", pattern);
		return -EINVAL;
	}
	if (parse_user(user, &uid) < 0) {
		snprintf(err, size, "name-owner: '%s' is neither a uid nor a user name", user);
		return -EINVAL;
	}
	if (cfg->n_name_rules == IMPD_MAX_RULES) {
		snprintf(err, size, "name-owner: more than %d rules", IMPD_MAX_RULES);
		return -EINVAL;
	}
	rule = &cfg->name_rules[cfg->n_name_rules++];
	snprintf(rule->pattern, sizeof(rule->pattern), "%s", pattern);
	rule->uid = uid;
	return 0;
}

static int set_names_unlisted(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	if (!strcmp(v, "any") || !strcmp(v, "root")) {
		cfg->names_unlisted_root = !strcmp(v, "root");
		return 0;
	}
	snprintf(err, size, "names-unlisted: '%s' is not one of any, root", v);
	return -EINVAL;
}

static int set_foreground_bus(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	if (strcmp(v, "system") && !strchr(v, ':')) {
		snprintf(err, size, "foreground-bus: '%s' is neither system nor a bus address (unix:path=...)", v);
		return -EINVAL;
	}
	if (strlen(v) >= sizeof(cfg->foreground_bus)) {
		snprintf(err, size, "foreground-bus: '%s' is longer than %zu bytes", v, sizeof(cfg->foreground_bus) - 1);
		return -EINVAL;
	}
	strcpy(cfg->foreground_bus, v);
	return 0;
}

/* An absolute path, or "" (empty, or the two characters "" in a file): no records. */
static int set_state_dir(struct broker_config *cfg, const char *v, char *err, size_t size)
{
	if (!v[0] || !strcmp(v, "\"\"")) {
		cfg->backend.state_dir[0] = '\0';
		return 0;
	}
	if (v[0] != '/') {
		snprintf(err, size, "state-dir: '%s' is not an absolute path or \"\"", v);
		return -EINVAL;
	}
	if (strlen(v) >= sizeof(cfg->backend.state_dir)) {
		snprintf(err, size, "state-dir: '%s' is longer than %zu bytes", v, sizeof(cfg->backend.state_dir) - 1);
		return -EINVAL;
	}
	memcpy(cfg->backend.state_dir, v, strlen(v) + 1);
	return 0;
}

#define OFF(field) offsetof(struct broker_config, field)
#define LIM(field) OFF(limits.field)
#define U32 ((long long)UINT32_MAX)
#define SZ ((long long)1 << 40)

static const struct key keys[] = {
	{ "socket", K_PATH, OFF(socket_path), 0, 0, sizeof(((struct broker_config *)0)->socket_path), NULL,
	  "PATH", "listen here (default " IMPP_DEFAULT_SOCKET "), unless socket-activated" },
	{ "backend", K_SPECIAL, 0, 0, 0, 0, set_backend, "KIND",
	  "boost backend: auto (default: the best this machine has), cgroup, cgroup-v2, cgroup-v1, autogroup, nice, none" },
	{ "boost-nice", K_INT, OFF(backend.boost_nice), -20, 19, 0, NULL, "N", "nice backend: a boosted thread's nice (default -10)" },
	{ "autogroup-nice", K_INT, OFF(backend.autogroup_nice), -20, 19, 0, NULL, "N",
	  "autogroup backend: a boosted receiver's group nice (default -10)" },
	{ "boost-weight", K_UINT, OFF(backend.boost_weight), 1, 10000, 0, NULL, "N",
	  "cgroup v2: a boosted receiver's cpu.weight (default 1000)" },
	{ "boost-shares", K_UINT, OFF(backend.boost_shares), 2, 262144, 0, NULL, "N",
	  "cgroup v1: a boosted receiver's cpu.shares (default 10240)" },
	{ "boost-io-level", K_INT, OFF(backend.boost_io_level), -1, 7, 0, NULL, "N",
	  "best-effort I/O level for a held-back receiver's threads, -1: off (default 4)" },
	{ "boost-timerslack-ns", K_ULONG, OFF(backend.boost_timerslack_ns), 0, 1000000000, 0, NULL, "NS",
	  "timer slack for a held-back receiver, 0: off (default 50000)" },
	{ "boost-max-threads", K_UINT, OFF(backend.max_threads), 1, 65536, 0, NULL, "N",
	  "threads handled per process per boost (default 256)" },
	{ "cgroup-leaf-linger-ms", K_UINT, OFF(backend.leaf_linger_ms), 0, 10000, 0, NULL, "MS",
	  "cgroup backends: unboosted, a receiver alone in a cgroup beside the leaves stays this long in its leaf at "
	  "that cgroup's weight, so that a boost within it is a write, not a move (default 1000; 0: off)" },
	{ "cgroup-leaf-delay-ms", K_UINT, OFF(backend.leaf_delay_ms), 0, 10000, 0, NULL, "MS",
	  "cgroup backends: a receiver in the cpu root sharing its session is boosted through nice at once and moved "
	  "into its leaf only when the boost lasts this long (default 5; 0: moved at once)" },
	{ "receiver-background", K_BOOL, OFF(backend.background), 0, 1, 0, NULL, "yes|no",
	  "unboosted receivers sit in the background band, lifted only by boosts (default no)" },
	{ "receiver-background-nice", K_INT, OFF(backend.background_nice), 1, 19, 0, NULL, "N",
	  "the background band's nice, on a receiver's threads or its lone autogroup (default 10)" },
	{ "receiver-background-uid", K_SPECIAL, 0, 0, 0, 0, set_background_uid, "USER",
	  "receivers of this user sit in the background band when unboosted (repeatable)" },
	{ "receiver-background-exe", K_SPECIAL, 0, 0, 0, 0, set_background_exe, "PATH",
	  "receivers running this file sit in the background band when unboosted (repeatable)" },
	{ "receiver-background-cgroup", K_SPECIAL, 0, 0, 0, 0, set_background_cgroup, "PATH",
	  "receivers in this cgroup of the unified hierarchy, or below it, sit in the background band when unboosted "
	  "(repeatable)" },
	{ "daemon-rt-priority", K_INT, OFF(backend.daemon_rt_priority), 0, 99, 0, NULL, "N",
	  "run importanced at SCHED_FIFO N, 0: off (default 1)" },
	{ "daemon-rt-budget-us", K_ULONG, OFF(backend.daemon_rt_budget_us), 1000, 10000000, 0, NULL, "US",
	  "real-time CPU importanced may use per window; past it, nice 19 until the window ends (default 3000)" },
	{ "daemon-rt-window-us", K_ULONG, OFF(backend.daemon_rt_window_us), 10000, 10000000, 0, NULL, "US",
	  "the window of daemon-rt-budget-us (default 100000)" },
	{ "cgroup-root", K_PATH, OFF(backend.cgroup_root), 0, 0, sizeof(((struct backend_config *)0)->cgroup_root),
	  NULL, "DIR", "the cgroup directory boosted receivers' cgroups go in (default: the cpu hierarchy's root)" },
	{ "state-dir", K_SPECIAL, 0, 0, 0, 0, set_state_dir, "DIR|\"\"",
	  "where applied boosts are recorded, for a restarted daemon; \"\": nowhere (default /run/importanced; "
	  "root's alone, never a link)" },
	{ "donor-uid", K_SPECIAL, 0, 0, 0, 0, set_donor_uid, "USER", "processes of this user are donors (repeatable)" },
	{ "donor-exe", K_SPECIAL, 0, 0, 0, 0, set_donor_exe, "PATH",
	  "processes running this file are donors (repeatable; the file, not the string)" },
	{ "donor-cgroup", K_SPECIAL, 0, 0, 0, 0, set_donor_cgroup, "PATH",
	  "processes in this cgroup of the unified hierarchy, or below it, are donors (repeatable)" },
	{ "donor-foreground", K_BOOL, OFF(donor_foreground), 0, 1, 0, NULL, "yes|no",
	  "donors in a login session are live donors only while in the foreground (docs/foreground.md; default no)" },
	{ "foreground-bus", K_SPECIAL, 0, 0, 0, 0, set_foreground_bus, "system|ADDRESS",
	  "serve org.importance.Foreground1 on this bus (docs/foreground.md; default: none)" },
	{ "logind", K_BOOL, OFF(logind), 0, 1, 0, NULL, "yes|no",
	  "follow systemd-logind on the system bus: donors of inactive or locked sessions are not live (default no)" },
	{ "name-owner", K_SPECIAL, 0, 0, 0, 0, set_name_owner, "'PATTERN USER'",
	  "names matching PATTERN (a name, or a prefix ending in *) may be owned only by USER (repeatable)" },
	{ "names-unlisted", K_SPECIAL, 0, 0, 0, 0, set_names_unlisted, "any|root",
	  "who may own names no name-owner rule covers (default any)" },
	{ "max-ports", K_UINT, LIM(ports), 1, U32, 0, NULL, "N", "ports one connection may own (default 256)" },
	{ "max-inflight", K_UINT, LIM(inflight), 1, U32, 0, NULL, "N",
	  "messages one connection may have sent and not yet received (default 4096)" },
	{ "max-inflight-bytes", K_SIZE, LIM(inflight_bytes), IMPP_MAX_PAYLOAD, SZ, 0, NULL, "BYTES",
	  "their data (default 16 MiB)" },
	{ "max-inflight-fds", K_UINT, LIM(inflight_fds), 0, U32, 0, NULL, "N",
	  "files one connection's messages in flight may carry (default 64)" },
	{ "max-vouchers", K_UINT, LIM(vouchers), 1, U32, 0, NULL, "N", "voucher handles one connection may hold (default 4096)" },
	{ "max-names", K_UINT, LIM(names), 0, U32, 0, NULL, "N", "names one connection may register (default 64)" },
	{ "max-send-rights", K_UINT, LIM(rights), 1, U32, 0, NULL, "N", "send rights one connection may hold (default 4096)" },
	{ "max-filelocks", K_UINT, LIM(filelocks), 0, 1024, 0, NULL, "N",
	  "lock waits one connection may declare at once (default 16)" },
	{ "max-queued-bytes", K_SIZE, LIM(out_bytes), 1024, SZ, 0, NULL, "BYTES",
	  "unread replies before a connection's requests wait (x4: it is disconnected; default 4 MiB)" },
	{ "max-errors", K_UINT, LIM(errors), 1, U32, 0, NULL, "N", "malformed requests before a connection is closed (default 64)" },
	{ "max-user-connections", K_UINT, LIM(user_connections), 1, U32, 0, NULL, "N", "connections of one uid (default 64)" },
	{ "max-user-ports", K_UINT, LIM(user_ports), 1, U32, 0, NULL, "N", "ports of one uid (default 2048)" },
	{ "max-user-names", K_UINT, LIM(user_names), 0, U32, 0, NULL, "N", "names of one uid (default 256)" },
	{ "max-user-inflight", K_UINT, LIM(user_inflight), 1, U32, 0, NULL, "N", "messages in flight of one uid (default 32768)" },
	{ "max-user-inflight-bytes", K_SIZE, LIM(user_inflight_bytes), IMPP_MAX_PAYLOAD, SZ, 0, NULL, "BYTES",
	  "their data (default 64 MiB)" },
	{ "max-user-inflight-fds", K_UINT, LIM(user_inflight_fds), 0, U32, 0, NULL, "N",
	  "files in flight of one uid (default 256)" },
	{ "max-user-queued-bytes", K_SIZE, LIM(user_out_bytes), IMPP_MAX_FRAME, SZ, 0, NULL, "BYTES",
	  "unread replies and events of one uid's connections; past it the connection adding more is closed (default 24 MiB)" },
	{ "listing-interval-ms", K_UINT, LIM(listing_interval_ms), 0, 60000, 0, NULL, "MS",
	  "least time between two TASKS or GRAPH requests of one uid other than root (default 100)" },
	{ "max-connections", K_UINT, LIM(connections), 1, 65536, 0, NULL, "N", "connections in all (default 1024)" },
	{ "max-total-ports", K_UINT, LIM(all_ports), 1, U32, 0, NULL, "N", "ports in all (default 65536)" },
	{ "max-total-names", K_UINT, LIM(all_names), 0, U32, 0, NULL, "N", "names in all (default 16384)" },
	{ "max-total-inflight", K_UINT, LIM(all_inflight), 1, U32, 0, NULL, "N", "messages in flight in all (default 262144)" },
	{ "max-total-inflight-bytes", K_SIZE, LIM(all_inflight_bytes), IMPP_MAX_PAYLOAD, SZ, 0, NULL, "BYTES",
	  "their data (default 512 MiB)" },
	{ "max-total-inflight-fds", K_UINT, LIM(all_inflight_fds), 0, U32, 0, NULL, "N",
	  "files in flight in all (default 4096)" },
	{ "max-total-queued-bytes", K_SIZE, LIM(all_out_bytes), IMPP_MAX_FRAME, SZ, 0, NULL, "BYTES",
	  "unread replies and events in all; past it the connection adding more is closed (default 128 MiB)" },
	{ "dbus", K_SPECIAL, 0, 0, 0, 0, set_dbus, "system|session|ADDRESS",
	  "watch this D-Bus bus: method calls from donors boost the services they wait for (repeatable)" },
	{ "dbus-receiver-uid", K_SPECIAL, 0, 0, 0, 0, set_dbus_receiver_uid, "USER",
	  "bus services of this user accept boosts (repeatable; no dbus-receiver-* rule: every service does)" },
	{ "dbus-receiver-exe", K_SPECIAL, 0, 0, 0, 0, set_dbus_receiver_exe, "PATH",
	  "bus services running this file accept boosts (repeatable)" },
	{ "dbus-receiver-cgroup", K_SPECIAL, 0, 0, 0, 0, set_dbus_receiver_cgroup, "PATH",
	  "bus services in this cgroup, or below it, accept boosts (repeatable)" },
	{ "dbus-receiver-name", K_SPECIAL, 0, 0, 0, 0, set_dbus_receiver_name, "NAME",
	  "bus services owning this well-known name (or a prefix ending in *) accept boosts (repeatable)" },
	{ "dbus-max-calls", K_UINT, OFF(dbus.max_calls), 1, U32, 0, NULL, "N",
	  "method calls tracked at once on one bus (default 16384; each also counts as a message in flight of its caller's uid)" },
	{ "dbus-max-connections", K_UINT, OFF(dbus.max_connections), 1, U32, 0, NULL, "N",
	  "bus connections tracked at once on one bus (default 4096)" },
	{ "dbus-max-names", K_UINT, OFF(dbus.max_names), 1, U32, 0, NULL, "N",
	  "well-known names tracked at once on one bus (default 16384)" },
	{ "max-user-bus-connections", K_UINT, LIM(user_bus_connections), 1, U32, 0, NULL, "N",
	  "D-Bus connections tracked for one uid on all buses, each holding a descriptor once known (default 1024)" },
	{ "max-total-bus-connections", K_UINT, LIM(all_bus_connections), 1, 65536, 0, NULL, "N",
	  "D-Bus connections tracked on all buses together (default 8192)" },
	{ "dbus-call-timeout", K_UINT, OFF(dbus.call_timeout_ms), 1, 3600000, 0, NULL, "MS",
	  "a call unanswered this long stops boosting (default 25000, the buses' own reply timeout)" },
	{ "dbus-batch-usec", K_UINT, OFF(dbus.batch_usec), 0, 100000, 0, NULL, "USEC",
	  "the bus's messages gather this long before they are handled; a call answered meanwhile boosts nothing "
	  "(default 1000; 0: each as it comes)" },
	{ "unix", K_BOOL, OFF(unix_sockets.enabled), 0, 1, 0, NULL, "yes|no",
	  "watch Unix-socket traffic through the kernel (BPF): a donor's request boosts the reader until it answers "
	  "(default no)" },
	{ "unix-receiver-uid", K_SPECIAL, 0, 0, 0, 0, set_unix_receiver_uid, "USER",
	  "readers of this user accept boosts from Unix sockets (repeatable; no unix-receiver-* rule: none does)" },
	{ "unix-receiver-exe", K_SPECIAL, 0, 0, 0, 0, set_unix_receiver_exe, "PATH",
	  "readers running this file accept boosts from Unix sockets (repeatable)" },
	{ "unix-receiver-cgroup", K_SPECIAL, 0, 0, 0, 0, set_unix_receiver_cgroup, "PATH",
	  "readers in this cgroup of the unified hierarchy, or below it, accept boosts from Unix sockets (repeatable)" },
	{ "unix-receiver-path", K_SPECIAL, 0, 0, 0, 0, set_unix_receiver_path, "PATTERN",
	  "readers of sockets bound to an address matching this pattern (fnmatch; '@' for abstract) accept boosts "
	  "(repeatable)" },
	{ "unix-answer-timeout", K_UINT, OFF(unix_sockets.answer_timeout_ms), 1, 3600000, 0, NULL, "MS",
	  "a reader that has not answered this long stops being boosted (default 25000)" },
	{ "unix-batch-usec", K_UINT, OFF(unix_sockets.batch_usec), 0, 100000, 0, NULL, "USEC",
	  "the kernel's socket events gather this long before they are handled; a request answered meanwhile "
	  "boosts nothing (default 200; 0: each as it comes)" },
	{ "verbose", K_BOOL, OFF(verbose), 0, 1, 0, NULL, "yes|no", "log connections and every boost" },
};

void config_defaults(struct broker_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	backend_config_defaults(&cfg->backend);
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s", IMPP_DEFAULT_SOCKET);
	cfg->limits = (struct limits){
		.ports = 256, .inflight = 4096, .inflight_fds = 64, .inflight_bytes = 16u << 20, .vouchers = 4096, .names = 64,
		.rights = 4096, .filelocks = 16, .out_bytes = 4u << 20, .errors = 64,
		.user_connections = 64, .user_ports = 2048, .user_names = 256, .user_inflight = 32768, .user_inflight_fds = 256,
		.user_inflight_bytes = 64u << 20, .listing_interval_ms = 100,
		.connections = 1024, .all_ports = 65536, .all_names = 16384, .all_inflight = 262144, .all_inflight_fds = 4096,
		.all_inflight_bytes = (size_t)512 << 20,
		.user_out_bytes = 24u << 20, .all_out_bytes = (size_t)128 << 20,
		.user_bus_connections = 1024, .all_bus_connections = 8192,
	};
	cfg->dbus.max_calls = 16384;
	cfg->dbus.max_connections = 4096;
	cfg->dbus.max_names = 16384;
	cfg->dbus.call_timeout_ms = 25000;
	cfg->dbus.batch_usec = 1000;
	cfg->unix_sockets.answer_timeout_ms = 25000;
	cfg->unix_sockets.batch_usec = 200;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static int parse_number(const struct key *k, const char *v, long long *out, char *err, size_t size)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (!*v || *end || errno) {
		snprintf(err, size, "%s: '%s' is not a whole number", k->name, v);
		return -EINVAL;
	}
	if (n < k->min || n > k->max) {
		snprintf(err, size, "%s: %lld is out of range (%lld..%lld)", k->name, n, k->min, k->max);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

int config_set(struct broker_config *cfg, const char *name, const char *v, char *err, size_t size)
{
	const struct key *k = find_key(name);
	char *field;
	long long n = 0;
	int r;

	if (!k) {
		snprintf(err, size, "unknown key '%s' (importanced --help lists them)", name);
		return -EINVAL;
	}
	field = (char *)cfg + k->offset;
	switch (k->kind) {
	case K_SPECIAL:
		return k->parse(cfg, v, err, size);
	case K_PATH:
		if (v[0] != '/') {
			snprintf(err, size, "%s: '%s' is not an absolute path", k->name, v);
			return -EINVAL;
		}
		if (strlen(v) >= k->size) {
			snprintf(err, size, "%s: '%s' is longer than %zu bytes", k->name, v, k->size - 1);
			return -EINVAL;
		}
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case K_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
			*(bool *)field = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
			*(bool *)field = false;
		else {
			snprintf(err, size, "%s: '%s' is not yes or no", k->name, v);
			return -EINVAL;
		}
		return 0;
	default:
		break;
	}
	if ((r = parse_number(k, v, &n, err, size)) < 0)
		return r;
	if (k->kind == K_UINT)
		*(unsigned *)field = (unsigned)n;
	else if (k->kind == K_SIZE)
		*(size_t *)field = (size_t)n;
	else if (k->kind == K_ULONG)
		*(unsigned long *)field = (unsigned long)n;
	else
		*(int *)field = (int)n;
	return 0;
}

int config_load(struct broker_config *cfg, const char *path, char *err, size_t size)
{
	FILE *f = fopen(path, "re");
	char line[1024], msg[512];
	unsigned lineno = 0;
	struct stat st;

	if (!f) {
		int e = -errno;

		snprintf(err, size, "%s: %s", path, strerror(-e));
		return e;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, size, "%s: not a regular file (a configuration is a file of \"key value\" lines; "
			 "drop-ins go in %s" IMPD_DROPIN_SUFFIX "/*.conf)", path, path);
		fclose(f);
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *key, *value, *end;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, size, "%s:%u: line longer than %zu bytes", path, lineno, sizeof(line) - 2);
			fclose(f);
			return -EINVAL;
		}
		line[strcspn(line, "#\n")] = '\0';
		key = line + strspn(line, " \t");
		if (!*key)
			continue;
		value = key + strcspn(key, " \t");
		if (*value)
			*value++ = '\0';
		value += strspn(value, " \t");
		for (end = value + strlen(value); end > value && (end[-1] == ' ' || end[-1] == '\t'); end--)
			;
		*end = '\0';
		if (!*value) {
			snprintf(err, size, "%s:%u: %s: no value", path, lineno, key);
			fclose(f);
			return -EINVAL;
		}
		if (config_set(cfg, key, value, msg, sizeof(msg)) < 0) {
			snprintf(err, size, "%s:%u: %s", path, lineno, msg);
			fclose(f);
			return -EINVAL;
		}
	}
	if (ferror(f)) {
		snprintf(err, size, "%s:%u: read error", path, lineno + 1);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	return 0;
}

static int dropin_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".conf");
}

int config_load_dropins(struct broker_config *cfg, const char *dir, char *err, size_t size)
{
	struct dirent **names;
	char path[PATH_MAX];
	int n, r = 0;

	n = scandir(dir, &names, dropin_name, alphasort);
	if (n < 0) {
		int e = -errno;

		if (e == -ENOENT)
			return 0;
		snprintf(err, size, "%s: %s", dir, strerror(-e));
		return e;
	}
	for (int i = 0; i < n; i++) {
		if (r == 0) {
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >= sizeof(path)) {
				snprintf(err, size, "%s/%s: path too long", dir, names[i]->d_name);
				r = -ENAMETOOLONG;
			} else {
				r = config_load(cfg, path, err, size);
			}
		}
		free(names[i]);
	}
	free(names);
	return r;
}

void config_usage(FILE *f)
{
	fprintf(f, "usage: importanced [--config FILE | --no-config] [--KEY VALUE ...]\n"
		   "  --config FILE        \"key value\" lines (default " IMPD_DEFAULT_CONFIG " if it exists),\n"
		   "                       then FILE" IMPD_DROPIN_SUFFIX "/*.conf in name order\n"
		   "  --no-config          read no configuration file\n"
		   "  --verbose            the same as --verbose yes\n"
		   "  --help, --version\n"
		   "keys (the same in the file, without the dashes):\n");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s %s", keys[i].name, keys[i].arg);
		fprintf(f, "  %-28s %s\n", left, keys[i].help);
	}
}

int config_from_args(struct broker_config *cfg, int argc, char **argv, char *err, size_t size)
{
	const char *file = NULL;
	bool no_file = false;
	int i, r;

	config_defaults(cfg);
	/* the file first, so that the command line wins */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			config_usage(stdout);
			return 1;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("importanced (importance) %s\n", imp_version_string());
			return 1;
		}
		if (!strcmp(argv[i], "--no-config"))
			no_file = true;
		else if (!strcmp(argv[i], "--config")) {
			if (i + 1 == argc) {
				snprintf(err, size, "--config: needs a file");
				return -EINVAL;
			}
			file = argv[++i];
		}
	}
	if (file && no_file) {
		snprintf(err, size, "--config and --no-config together");
		return -EINVAL;
	}
	if (!file && !no_file && access(IMPD_DEFAULT_CONFIG, F_OK) == 0)
		file = IMPD_DEFAULT_CONFIG;
	if (file && (r = config_load(cfg, file, err, size)) < 0)
		return r;
	/* then FILE.d/NAME.conf in name order (the default's even without it) */
	if (!no_file) {
		char dir[PATH_MAX];

		if ((size_t)snprintf(dir, sizeof(dir), "%s" IMPD_DROPIN_SUFFIX, file ? file : IMPD_DEFAULT_CONFIG) >=
		    sizeof(dir)) {
			snprintf(err, size, "%s: path too long", file);
			return -ENAMETOOLONG;
		}
		if ((r = config_load_dropins(cfg, dir, err, size)) < 0)
			return r;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--no-config"))
			continue;
		if (!strcmp(a, "--config")) {
			i++;
			continue;
		}
		if (!strcmp(a, "--verbose")) {
			cfg->verbose = true;
			continue;
		}
		if (strncmp(a, "--", 2) || !a[2]) {
			snprintf(err, size, "'%s': not an option (importanced --help lists them)", a);
			return -EINVAL;
		}
		if (!find_key(a + 2)) {
			snprintf(err, size, "unknown option '%s' (importanced --help lists them)", a);
			return -EINVAL;
		}
		if (i + 1 == argc) {
			snprintf(err, size, "%s: needs a value", a);
			return -EINVAL;
		}
		if ((r = config_set(cfg, a + 2, argv[++i], err, size)) < 0)
			return r;
	}
	return config_check(cfg, err, size);
}

static int check_exes(const struct donor_rules *rules, const char *key, char *err, size_t size)
{
	for (size_t i = 0; i < rules->n_exes; i++) {
		struct stat st;

		if (stat(rules->exes[i], &st) < 0) {
			snprintf(err, size, "%s: %s: %s", key, rules->exes[i], strerror(errno));
			return -EINVAL;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(err, size, "%s: %s is not a regular file", key, rules->exes[i]);
			return -EINVAL;
		}
	}
	return 0;
}

int config_check(struct broker_config *cfg, char *err, size_t size)
{
	int r = backend_config_check(&cfg->backend, err, size);

	if (r < 0)
		return r;
	r = check_exes(&cfg->donors, "donor-exe", err, size);

	if (r < 0 || (r = check_exes(&cfg->dbus.receivers, "dbus-receiver-exe", err, size)) < 0 ||
	    (r = check_exes(&cfg->background, "receiver-background-exe", err, size)) < 0)
		return r;
	return check_exes(&cfg->unix_sockets.receivers, "unix-receiver-exe", err, size);
}
