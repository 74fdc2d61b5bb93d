/*
 * stall_stat.c - a fault for the integration tests, preloaded into
 * Unbound: stat() of a path ending in $DNSFILTER_STALL_SUFFIX blocks while
 * the file $DNSFILTER_STALL_TRIGGER exists (at most 120 s), as a stat on a
 * dead network mount does. test_faults.py uses it to show that a watcher
 * stuck in the kernel cannot hang Unbound's stop.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int stalled(const char *path)
{
	const char *suffix = getenv("DNSFILTER_STALL_SUFFIX");
	const char *trigger = getenv("DNSFILTER_STALL_TRIGGER");
	size_t length, suffix_length;

	if (!suffix || !trigger || !path)
		return 0;
	length = strlen(path);
	suffix_length = strlen(suffix);
	return length >= suffix_length && strcmp(path + length - suffix_length, suffix) == 0 &&
	       access(trigger, F_OK) == 0;
}

__attribute__((visibility("default"))) int stat(const char *path, struct stat *info)
{
	static int (*real_stat)(const char *, struct stat *);
	struct timespec pause = { 0, 100 * 1000 * 1000 };

	if (!real_stat)
		real_stat = (int (*)(const char *, struct stat *))dlsym(RTLD_NEXT, "stat");
	for (int i = 0; i < 1200 && stalled(path); i++)
		nanosleep(&pause, NULL);
	return real_stat(path, info);
}
