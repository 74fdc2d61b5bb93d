/*
 * hostcheck.c - find a string in a file, for the Unbound version check.
 */
#include "dnsfilter/hostcheck.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int dnsf_file_contains(const char *path, const void *needle, size_t length)
{
	struct stat info;
	void *map;
	int found, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &info) != 0 || info.st_size <= 0) {
		close(fd);
		return -1;
	}
	map = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -1;
	found = memmem(map, (size_t)info.st_size, needle, length) != NULL;
	munmap(map, (size_t)info.st_size);
	return found;
}
