/* config.c: every key checked the same way from the command line and
 * from a file; errors name the key, the value and (in a file) the line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static char err[512];

static int args(struct broker_config *cfg, const char *line)
{
	char *copy = strdup(line), *argv[32] = { "importanced", "--no-config" }, *save = NULL;
	int argc = 2, r;

	for (char *w = strtok_r(copy, " ", &save); w && argc < 31; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	err[0] = '\0';
	r = config_from_args(cfg, argc, argv, err, sizeof(err));
	free(copy);
	return r;
}

static void expect_error(const char *line, const char *says)
{
	struct broker_config cfg;

	assert_int_equal(args(&cfg, line), -EINVAL);
	if (!strstr(err, says))
		fail_msg("'%s': error '%s' does not say '%s'", line, err, says);
}

static void test_numbers(void **state)
{
	struct broker_config cfg;

	(void)state;
	assert_int_equal(args(&cfg, "--boost-nice -5 --max-ports 9 --max-queued-bytes 100000"), 0);
	assert_int_equal(cfg.backend.boost_nice, -5);
	assert_int_equal(cfg.limits.ports, 9);
	assert_int_equal(cfg.limits.out_bytes, 100000);
	expect_error("--boost-nice -21", "boost-nice: -21 is out of range (-20..19)");
	expect_error("--boost-nice 20", "out of range");
	expect_error("--boost-nice 5x", "boost-nice: '5x' is not a whole number");
	expect_error("--max-ports 0", "max-ports: 0 is out of range");
	expect_error("--max-ports 99999999999999999999", "not a whole number");
	expect_error("--max-ports", "--max-ports: needs a value");
}

static void test_users(void **state)
{
	struct broker_config cfg;

	(void)state;
	assert_int_equal(args(&cfg, "--donor-uid 1000 --donor-uid root --donor-uid 0"), 0);
	assert_int_equal(cfg.donors.n_uids, 3);
	assert_int_equal(cfg.donors.uids[0], 1000);
	assert_int_equal(cfg.donors.uids[1], 0);
	/* a typo is not uid 0 */
	expect_error("--donor-uid bob-no-such-user", "donor-uid: 'bob-no-such-user' is neither a uid nor a user name");
	expect_error("--donor-uid -1", "neither a uid");
	expect_error("--donor-uid 4294967295", "neither a uid");
}

static void test_words(void **state)
{
	struct broker_config cfg;

	(void)state;
	assert_int_equal(args(&cfg, "--backend none --names-unlisted root --verbose"), 0);
	assert_int_equal(cfg.backend.kind, BACKEND_NONE);
	assert_true(cfg.names_unlisted_root);
	assert_true(cfg.verbose);
	expect_error("--backend nicer", "backend: 'nicer' is not one of auto, cgroup, cgroup-v2, cgroup-v1, autogroup, nice, none");
	expect_error("--names-unlisted some", "names-unlisted: 'some' is not one of any, root");
	expect_error("--bogus 1", "unknown option '--bogus'");
	expect_error("stray", "'stray': not an option");
	expect_error("--socket relative.sock", "socket: 'relative.sock' is not an absolute path");
}

static void test_rules(void **state)
{
	struct broker_config cfg;

	(void)state;
	assert_int_equal(args(&cfg, "--donor-cgroup /app --donor-cgroup / --donor-exe /bin/sh"), 0);
	assert_int_equal(cfg.donors.n_cgroups, 2);
	expect_error("--donor-cgroup /app/", "not a plain cgroup path");
	expect_error("--donor-cgroup /app/../x", "not a plain cgroup path");
	expect_error("--donor-cgroup app", "not an absolute path");
	expect_error("--donor-exe /no/such/file", "donor-exe: /no/such/file: No such file or directory");
	expect_error("--donor-exe /tmp", "donor-exe: /tmp is not a regular file");
	config_defaults(&cfg);
	assert_int_equal(config_set(&cfg, "name-owner", "org.x.*.y root", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a name, or a prefix ending in one '*'"));
	assert_int_equal(config_set(&cfg, "name-owner", "onlyaname", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not \"PATTERN USER\""));
	assert_int_equal(config_set(&cfg, "name-owner", "org.x.* no-such-user-here", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'no-such-user-here' is neither a uid nor a user name"));
}

/* The background band per receiver rule: receiver-background-uid, -exe,
 * -cgroup, parsed and checked as the donor rules are. */
static void test_background_rules(void **state)
{
	struct broker_config cfg;

	(void)state;
	assert_int_equal(args(&cfg, "--receiver-background-nice 12"), 0);
	assert_false(cfg.backend.background_ruled);
	assert_int_equal(args(&cfg, "--receiver-background-uid root --receiver-background-exe /bin/sh "
				    "--receiver-background-cgroup /system.slice/batch.service"), 0);
	assert_true(cfg.backend.background_ruled);
	assert_false(cfg.backend.background);
	assert_int_equal(cfg.background.n_uids, 1);
	assert_int_equal(cfg.background.uids[0], 0);
	assert_string_equal(cfg.background.exes[0], "/bin/sh");
	assert_string_equal(cfg.background.cgroups[0], "/system.slice/batch.service");
	assert_int_equal(cfg.donors.n_uids + cfg.dbus.receivers.n_uids + cfg.unix_sockets.receivers.n_uids, 0);
	expect_error("--receiver-background-uid no-such-user-here",
		     "receiver-background-uid: 'no-such-user-here' is neither a uid nor a user name");
	expect_error("--receiver-background-exe /no/such/file", "receiver-background-exe: /no/such/file: No such file");
	expect_error("--receiver-background-exe bin/sh", "receiver-background-exe: 'bin/sh' is not an absolute path");
	expect_error("--receiver-background-cgroup /a//b", "receiver-background-cgroup: '/a//b' is not a plain cgroup path");
	/* the cgroup leaf's linger (docs/backends.md) */
	assert_int_equal(args(&cfg, ""), 0);
	assert_int_equal(cfg.backend.leaf_linger_ms, 1000);
	assert_int_equal(args(&cfg, "--cgroup-leaf-linger-ms 0"), 0);
	assert_int_equal(cfg.backend.leaf_linger_ms, 0);
	expect_error("--cgroup-leaf-linger-ms 10001", "cgroup-leaf-linger-ms: 10001 is out of range (0..10000)");
}

static void test_file(void **state)
{
	char path[] = "/tmp/impd-config-XXXXXX";
	struct broker_config cfg;
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	(void)state;
	assert_non_null(f);
	fprintf(f, "# comment\n\nmax-ports 7   # trailing\nname-owner org.example.* root\nbackend sometimes\n");
	fclose(f);
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":5: backend: 'sometimes' is not one of"));
	assert_int_equal(cfg.limits.ports, 7);
	assert_int_equal(cfg.n_name_rules, 1);
	assert_string_equal(cfg.name_rules[0].pattern, "org.example.*");

	f = fopen(path, "w");
	fprintf(f, "donor-uid abc-no-such-user\n");
	fclose(f);
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: donor-uid: 'abc-no-such-user' is neither"));

	f = fopen(path, "w");
	fprintf(f, "max-ports\n");
	fclose(f);
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: max-ports: no value"));

	/* the command line wins over the file */
	f = fopen(path, "w");
	fprintf(f, "max-ports 7\n");
	fclose(f);
	{
		char *argv[] = { "importanced", "--config", path, "--max-ports", "9", NULL };

		assert_int_equal(config_from_args(&cfg, 5, argv, err, sizeof(err)), 0);
		assert_int_equal(cfg.limits.ports, 9);
	}
	unlink(path);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* FILE.d/NAME.conf after FILE, in name order, errors naming file:line;
 * a directory given as the file is refused. */
static void test_dropins(void **state)
{
	char dir[] = "/tmp/impd-dropin-XXXXXX", file[128], d[160], p[200];
	struct broker_config cfg;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/importanced.conf", dir);
	snprintf(d, sizeof(d), "%s.d", file);
	write_text(file, "max-ports 7\nmax-vouchers 5\n");
	{
		char *argv[] = { "importanced", "--config", file, NULL };

		/* no FILE.d: the file alone */
		assert_int_equal(config_from_args(&cfg, 3, argv, err, sizeof(err)), 0);
		assert_int_equal(cfg.limits.ports, 7);
		assert_int_equal(mkdir(d, 0755), 0);
		snprintf(p, sizeof(p), "%s/20-b.conf", d);
		write_text(p, "max-ports 20\n");
		snprintf(p, sizeof(p), "%s/10-a.conf", d);
		write_text(p, "max-ports 10\nmax-vouchers 11\n");
		snprintf(p, sizeof(p), "%s/30-c.conf.disabled", d); /* not NAME.conf: not read */
		write_text(p, "max-ports 99\n");
		snprintf(p, sizeof(p), "%s/.hidden.conf", d);
		write_text(p, "max-ports 98\n");
		assert_int_equal(config_from_args(&cfg, 3, argv, err, sizeof(err)), 0);
		assert_int_equal(cfg.limits.ports, 20); /* 20-b after 10-a after the file */
		assert_int_equal(cfg.limits.vouchers, 11);

		/* an error names the drop-in and its line, and stops there */
		snprintf(p, sizeof(p), "%s/15-bad.conf", d);
		write_text(p, "# fine\nmax-ports many\n");
		assert_int_equal(config_from_args(&cfg, 3, argv, err, sizeof(err)), -EINVAL);
		if (!strstr(err, "15-bad.conf:2: max-ports"))
			fail_msg("error '%s' does not name 15-bad.conf:2", err);
		unlink(p);

		/* a directory where a drop-in should be is named too */
		snprintf(p, sizeof(p), "%s/40-dir.conf", d);
		assert_int_equal(mkdir(p, 0755), 0);
		assert_int_equal(config_from_args(&cfg, 3, argv, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "40-dir.conf: not a regular file"));
		rmdir(p);

		/* --no-config reads neither the file nor its drop-ins */
		char *none[] = { "importanced", "--no-config", NULL };

		assert_int_equal(config_from_args(&cfg, 2, none, err, sizeof(err)), 0);
		assert_int_equal(cfg.limits.ports, 256);
	}
	{
		/* --config DIR: refused, saying why (it used to read as empty) */
		char *argv[] = { "importanced", "--config", d, NULL };

		assert_int_equal(config_from_args(&cfg, 3, argv, err, sizeof(err)), -EINVAL);
		if (!strstr(err, d) || !strstr(err, "not a regular file"))
			fail_msg("--config DIR: error '%s'", err);
	}
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	assert_int_equal(system(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers), cmocka_unit_test(test_users), cmocka_unit_test(test_words),
		cmocka_unit_test(test_rules), cmocka_unit_test(test_background_rules), cmocka_unit_test(test_file), cmocka_unit_test(test_dropins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
