/*
 * dnsfilter/json.h - cJSON with an arena for big documents.
 *
 * A feed of a million names is millions of cJSON nodes; allocating each with
 * malloc and freeing each again costs more than parsing. While an arena is
 * active on a thread, cJSON's allocations on that thread come from it and
 * its frees do nothing; ending the arena frees everything at once. Other
 * threads, and this thread outside an arena, use malloc and free as usual.
 * cJSON's process-wide hooks point into this code only while some arena is
 * active (json.c says why), so cJSON needs no set-up outside an arena.
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

/** 1 when an allocation in the arena failed: a parse that returned NULL
 * then ran out of memory, whatever cJSON says. */
int dnsf_json_arena_failed(const struct dnsf_json_arena *arena);

/** Bytes the arena holds, for reporting peak memory. */
size_t dnsf_json_arena_size(const struct dnsf_json_arena *arena);

/**
 * Keep the hooks installed for good, arena or not, so that every cJSON
 * allocation goes through this code's malloc and free calls: for test
 * programs that watch those calls (a failing allocator). The module never
 * calls it: it must leave no hook behind when unloaded (json.c).
 */
void dnsf_json_init(void);

#endif
