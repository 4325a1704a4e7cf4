/* Misuse: every entry point refuses NULL and wrong-state arguments with a
 * code and a sentence, and never aborts. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

static void test_strerror(void **state)
{
	static const int codes[] = { 0, IMP_KERN_INVALID_ARGUMENT, IMP_KERN_FAILURE,
				     IMP_KERN_NOT_SUPPORTED, -EINVAL, -ENOMEM, -ESRCH, -EPIPE,
				     -EALREADY, -EBUSY, -EDEADLK, -EUCLEAN, -EXDEV, -EAGAIN };
	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_non_null(imp_strerror(codes[i]));
		assert_true(strlen(imp_strerror(codes[i])) > 1);
	}
	assert_string_equal(imp_strerror(12345), "unknown result code");
	assert_string_equal(imp_strerror(-ESRCH), "task has exited");
}

static void test_null_arguments(void **state)
{
	imp_task_info ti;
	imp_port_info pi;
	imp_msg_info mi;
	imp_voucher_info vi;
	imp_stats st;
	imp_graph *g;
	uint64_t dl;

	(void)state;
	assert_int_equal(imp_domain_new(NULL, NULL), -EINVAL);
	assert_non_null(strstr(imp_last_error(), "imp_domain_new"));
	{
		imp_domain_config cfg = { 0 };
		imp_domain *d = NULL;

		/* a config without its size is refused, with the way out named */
		assert_int_equal(imp_domain_new(&cfg, &d), -EINVAL);
		assert_non_null(strstr(imp_last_error(), "IMP_DOMAIN_CONFIG_INIT"));
		imp_domain_config_init(&cfg);
		assert_int_equal(cfg.size, sizeof(cfg));
		assert_int_equal(imp_domain_new(&cfg, &d), 0);
		imp_domain_free(d);
		/* a smaller, older struct: the fields past its size are defaults */
		cfg.size = offsetof(imp_domain_config, verify_each_step) + sizeof(bool);
		assert_int_equal(imp_domain_new(&cfg, &d), 0);
		imp_domain_free(d);
	}
	assert_int_equal(imp_version(), IMP_VERSION_HEX);
	assert_string_equal(imp_version_string(), IMP_VERSION_STRING);
	imp_domain_free(NULL);
	assert_int_equal(imp_domain_now(NULL), 0);
	assert_int_equal(imp_domain_next_deadline(NULL, &dl), -EINVAL);
	assert_int_equal(imp_domain_run_timers(NULL), -EINVAL);
	assert_int_equal(imp_domain_timer_thread_start(NULL), -EINVAL);
	imp_domain_timer_thread_stop(NULL);
	assert_int_equal(imp_domain_get_stats(NULL, &st), -EINVAL);
	assert_int_equal(imp_domain_verify(NULL), -EINVAL);
	assert_false(imp_domain_broken(NULL));
	assert_int_equal(imp_domain_graph(NULL, &g), -EINVAL);
	imp_graph_free(NULL, NULL);

	assert_null(imp_task_ref(NULL));
	imp_task_unref(NULL);
	assert_int_equal(imp_task_pid(NULL), -1);
	imp_task_set_userdata(NULL, NULL);
	assert_null(imp_task_get_userdata(NULL));
	assert_int_equal(imp_task_mark_receiver(NULL, true), -EINVAL);
	assert_int_equal(imp_task_mark_denap_receiver(NULL, true), -EINVAL);
	assert_int_equal(imp_task_mark_donor(NULL, true), -EINVAL);
	assert_int_equal(imp_task_mark_live_donor(NULL, true), -EINVAL);
	assert_int_equal(imp_task_set_live_donor(NULL, true), -EINVAL);
	assert_int_equal(imp_task_hold_assertion(NULL, 1), -EINVAL);
	assert_int_equal(imp_task_drop_assertion(NULL, 1), -EINVAL);
	assert_int_equal(imp_task_hold_file_lock(NULL, 1), -EINVAL);
	assert_int_equal(imp_task_drop_file_lock(NULL, 1), -EINVAL);
	assert_int_equal(imp_task_hold_legacy_assertion(NULL, 1), -EINVAL);
	assert_int_equal(imp_task_drop_legacy_assertion(NULL, 1), -EINVAL);
	assert_int_equal(imp_task_reset(NULL), -EINVAL);
	assert_int_equal(imp_task_exit(NULL), -EINVAL);
	assert_int_equal(imp_task_get_info(NULL, &ti), -EINVAL);
	assert_int_equal(imp_task_donating_pids(NULL, NULL, 0), -EINVAL);

	assert_null(imp_port_ref(NULL));
	imp_port_unref(NULL);
	imp_port_set_userdata(NULL, NULL);
	assert_null(imp_port_get_userdata(NULL));
	assert_null(imp_port_owner(NULL));
	assert_null(imp_port_peek(NULL));
	assert_int_equal(imp_port_get_info(NULL, &pi), -EINVAL);

	assert_null(imp_msg_ref(NULL));
	imp_msg_unref(NULL);
	imp_msg_set_userdata(NULL, NULL);
	assert_null(imp_msg_get_userdata(NULL));
	assert_int_equal(imp_msg_get_info(NULL, &mi), -EINVAL);
	assert_int_equal(imp_voucher_get_info(NULL, &vi), -EINVAL);
}

static void test_bad_config(void **state)
{
	imp_domain *d = (imp_domain *)1;
	imp_allocator half = { NULL, NULL, NULL };
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;

	(void)state;
	cfg.allocator = &half;
	assert_int_equal(imp_domain_new(&cfg, &d), -EINVAL);
	assert_null(d);
}

static void test_verify_reports(void **state)
{
	struct tctx c;
	imp_graph *g;

	(void)state;
	tctx_init(&c);
	assert_int_equal(imp_domain_verify(c.d), 0);
	assert_int_equal(imp_domain_graph(c.d, &g), 0);
	assert_int_equal(g->n_tasks, 0);
	imp_graph_free(c.d, g);
	assert_int_equal(imp_domain_get_stats(c.d, NULL), -EINVAL);
	assert_int_equal(imp_domain_graph(c.d, NULL), -EINVAL);
	tctx_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_verify_reports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
