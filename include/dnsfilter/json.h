/*
 * dnsfilter/json.h - cJSON with an arena for big documents.
 *
 * A feed of a million names is millions of cJSON nodes; allocating each with
 * malloc and freeing each again costs more than parsing. While an arena is
 * active on a thread, cJSON's allocations on that thread come from it and
 * its frees do nothing; ending the arena frees everything at once. Other
 * threads, and this thread outside an arena, use malloc and free as usual.
 */
#ifndef DNSFILTER_JSON_H
#define DNSFILTER_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/** An arena; opaque. */
struct dnsf_json_arena;

/**
 * Start an arena on this thread (none may be active on it already).
 * @return the arena, or NULL when out of memory.
 */
struct dnsf_json_arena *dnsf_json_arena_begin(void);

/**
 * End the arena: every cJSON value made in it is gone. NULL is allowed.
 */
void dnsf_json_arena_end(struct dnsf_json_arena *arena);

/** Bytes the arena holds, for reporting peak memory. */
size_t dnsf_json_arena_size(const struct dnsf_json_arena *arena);

/**
 * Make sure cJSON uses the arena-aware allocator; called by begin, and
 * by anyone parsing outside an arena before the first parse.
 */
void dnsf_json_init(void);

#endif
