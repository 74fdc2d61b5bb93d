/*
 * array.c - growing a malloc'd array (see array.h).
 */
#include "dnsfilter/array.h"

#include <stdint.h>
#include <stdlib.h>

int dnsf_array_grow(void **array, size_t *capacity, size_t needed, size_t size)
{
	size_t capacity_new = *capacity ? *capacity : 64;
	void *grown;

	if (needed <= *capacity)
		return 1;
	while (capacity_new < needed) {
		if (capacity_new > SIZE_MAX / 2)
			return 0;
		capacity_new *= 2;
	}
	if (size && capacity_new > SIZE_MAX / size)
		return 0;
	grown = realloc(*array, capacity_new * size);
	if (!grown)
		return 0;
	*array = grown;
	*capacity = capacity_new;
	return 1;
}
