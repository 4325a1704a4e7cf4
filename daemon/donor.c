/*
 * Donor rules.
 *
 * Every check reads through the process's pidfd (process.c), so a rule is
 * never decided about a process that took a reused pid.  An executable
 * rule compares files, not strings: the path in the rule is resolved when
 * asked (symbolic links, "..", a binary replaced by a new file), and the
 * process's /proc/PID/exe is the file it maps, so neither a look-alike path
 * nor a copy of the binary elsewhere matches.  A process in another user
 * or pid namespace than the daemon's matches no rule: there, the pid on a
 * frame can be forged by its neighbours.
 */
#include <string.h>
#include <sys/stat.h>

#include "donor.h"

bool donor_cgroup_covers(const char *rule, const char *path)
{
	size_t n = strlen(rule);

	if (!strcmp(rule, "/"))
		return path[0] == '/';
	return !strncmp(path, rule, n) && (path[n] == '\0' || path[n] == '/');
}

bool donor_match(const struct donor_rules *rules, int pidfd, const struct ident *who)
{
	size_t i;

	/* In a user and pid namespace of its own a process may put any pid
	 * of that namespace on its frames: another process there could speak
	 * for it.  No rule makes such a process a donor. */
	if ((rules->n_uids || rules->n_exes || rules->n_cgroups) && process_in_our_namespaces(pidfd, who->pid) != 1)
		return false;

	for (i = 0; i < rules->n_uids; i++)
		if (rules->uids[i] == who->uid)
			return process_alive(pidfd) == 0;
	if (rules->n_exes) {
		struct stat exe, want;

		if (process_exe(pidfd, who->pid, &exe) == 0)
			for (i = 0; i < rules->n_exes; i++)
				if (stat(rules->exes[i], &want) == 0 && want.st_dev == exe.st_dev &&
				    want.st_ino == exe.st_ino)
					return process_alive(pidfd) == 0;
	}
	if (rules->n_cgroups) {
		char cg[4096];

		if (process_cgroup(pidfd, who->pid, cg, sizeof(cg)) == 0)
			for (i = 0; i < rules->n_cgroups; i++)
				if (donor_cgroup_covers(rules->cgroups[i], cg))
					return process_alive(pidfd) == 0;
	}
	return false;
}
