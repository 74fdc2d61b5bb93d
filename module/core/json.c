/*
 * json.c - an arena allocator under cJSON (see json.h).
 *
 * cJSON's hooks are process-wide, so they are installed once and decide per
 * thread: with an arena active on the calling thread they allocate from it,
 * otherwise they are malloc and free. Within an arena only values made in
 * that arena are freed (parsing and deleting happen while it is active), so
 * a free there can safely do nothing.
 */
#include "dnsfilter/json.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define CHUNK_SIZE ((size_t)4 << 20)

struct chunk {
	struct chunk *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

struct dnsf_json_arena {
	struct chunk *chunks;
	size_t total;
};

static __thread struct dnsf_json_arena *active;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void *arena_alloc(struct dnsf_json_arena *arena, size_t size)
{
	struct chunk *chunk = arena->chunks;
	size = (size + 15) & ~(size_t)15;
	if (!chunk || chunk->used + size > chunk->size) {
		size_t capacity = size > CHUNK_SIZE ? size : CHUNK_SIZE;
		/* straight from the kernel: freeing the arena gives the memory
		 * back at once instead of leaving it in malloc's heap */
		chunk = mmap(NULL, sizeof(*chunk) + capacity, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (chunk == MAP_FAILED)
			return NULL;
		chunk->size = capacity;
		chunk->used = 0;
		chunk->next = arena->chunks;
		arena->chunks = chunk;
		arena->total += sizeof(*chunk) + capacity;
	}
	void *memory = chunk->data + chunk->used;
	chunk->used += size;
	return memory;
}

static void *hook_malloc(size_t size)
{
	return active ? arena_alloc(active, size) : malloc(size);
}

static void hook_free(void *memory)
{
	if (!active)
		free(memory);
}

static void install_hooks(void)
{
	cJSON_Hooks hooks = { .malloc_fn = hook_malloc, .free_fn = hook_free };
	cJSON_InitHooks(&hooks);
}

void dnsf_json_init(void)
{
	pthread_once(&hooks_once, install_hooks);
}

struct dnsf_json_arena *dnsf_json_arena_begin(void)
{
	dnsf_json_init();
	struct dnsf_json_arena *arena = calloc(1, sizeof(*arena));
	if (arena)
		active = arena;
	return arena;
}

void dnsf_json_arena_end(struct dnsf_json_arena *arena)
{
	if (!arena)
		return;
	if (active == arena)
		active = NULL;
	for (struct chunk *chunk = arena->chunks, *next; chunk; chunk = next) {
		next = chunk->next;
		munmap(chunk, sizeof(*chunk) + chunk->size);
	}
	free(arena);
}

size_t dnsf_json_arena_size(const struct dnsf_json_arena *arena)
{
	return arena ? arena->total : 0;
}
