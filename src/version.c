/* The library's version, which the build and the header must agree on. */
#include "internal.h"

#if IMP_PROJECT_VERSION_MAJOR != IMP_VERSION_MAJOR || IMP_PROJECT_VERSION_MINOR != IMP_VERSION_MINOR || \
	IMP_PROJECT_VERSION_PATCH != IMP_VERSION_PATCH
#error "project(VERSION) in CMakeLists.txt and IMP_VERSION_* in importance.h differ"
#endif

unsigned imp_version(void)
{
	return IMP_VERSION_HEX;
}

const char *imp_version_string(void)
{
	return IMP_VERSION_STRING;
}
