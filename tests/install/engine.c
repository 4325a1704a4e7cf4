/* Built against an installed tree: one boost through the engine, with
 * the library's version checked against the header's. */
#include <stdio.h>
#include <string.h>

#include <importance/importance.h>

static int boosts;

static void on_policy(const imp_policy_event *event, void *ctx)
{
	(void)ctx;
	boosts += event->boosted ? 1 : -1;
}

int main(void)
{
	imp_domain_config cfg = IMP_DOMAIN_CONFIG_INIT;
	imp_domain *d;
	imp_task *app, *daemon;
	imp_port *port;
	imp_msg *m;
	int peak;

	if (imp_version() >> 16 != IMP_VERSION_MAJOR || strcmp(imp_version_string(), IMP_VERSION_STRING)) {
		fprintf(stderr, "library %s, header %s\n", imp_version_string(), IMP_VERSION_STRING);
		return 1;
	}
	cfg.policy = on_policy;
	if (imp_domain_new(&cfg, &d) < 0)
		return 1;
	imp_task_create(d, 1, IMP_TASK_DONOR, &app);
	imp_task_create(d, 2, IMP_TASK_RECEIVER, &daemon);
	imp_port_create(daemon, true, &port);
	imp_msg_send(app, port, NULL, 0, &m);
	peak = boosts;
	imp_msg_destroy(m);
	imp_msg_unref(m);
	imp_port_unref(port);
	imp_task_unref(app);
	imp_task_unref(daemon);
	imp_domain_free(d);
	printf("engine %s: boosted %d, then %d\n", imp_version_string(), peak, boosts);
	return peak == 1 && boosts == 0 ? 0 : 1;
}
