/*
 * dnsfilter/array.h - growing a malloc'd array as elements are appended.
 */
#ifndef DNSFILTER_ARRAY_H
#define DNSFILTER_ARRAY_H

#include <stddef.h>

/**
 * Make room for at least needed elements, doubling the capacity (from 64
 * elements) so appending n elements costs O(n).
 * @param array: the array (a pointer to the element pointer, cast), NULL
 *   when nothing is allocated yet.
 * @param capacity: elements allocated; updated.
 * @param needed: elements the array must hold.
 * @param size: bytes an element.
 * @return 1, or 0 when out of memory or the size overflows (the array and
 *   capacity are then unchanged).
 */
int dnsf_array_grow(void **array, size_t *capacity, size_t needed, size_t size);

#endif
