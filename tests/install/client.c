/* Built against an installed tree: the client library links and answers
 * (no daemon listens at the path given). */
#include <errno.h>
#include <stdio.h>

#include <importance/client.h>
#include <importance/protocol.h>

int main(int argc, char **argv)
{
	impc *c = NULL;
	int e;

	if (argc != 2)
		return 2;
	e = impc_connect(argv[1], IMPC_MONITOR, &c, NULL);
	printf("client: connect to %s: %d (protocol version %u)\n", argv[1], e, IMPP_VERSION);
	return e == -ENOENT && !c ? 0 : 1;
}
