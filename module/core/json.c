/*
 * json.c - an arena allocator under cJSON (see json.h).
 *
 * cJSON's allocation hooks are process-wide, and libcjson is a shared
 * library that other code in the resolver's process may use too (another
 * dynlib module, a library Unbound links). Hooks left pointing into this
 * module would be called after Unbound unloads it (every reload, and at
 * exit) by whoever parses JSON next: a jump into unmapped memory. Linking a
 * private copy of cJSON would avoid that, but Debian ships no static
 * libcjson, and the hooks exist only for speed. So the hooks are installed
 * only while an arena is active on some thread, and cJSON's defaults are
 * put back when the last one ends: outside a feed parse nothing
 * process-wide points into the module, and nothing needs undoing at
 * deinit. While installed they decide per thread: with an arena active on
 * the calling thread they allocate from it, otherwise they are malloc and
 * free, exactly cJSON's defaults, so a value made by another thread
 * meanwhile may be freed under either. (cJSON offers no way to read the
 * hooks in force, so hooks another user set are not restored: the
 * defaults are.)
 *
 * Within an arena only values made in that arena are freed (parsing and
 * deleting happen while it is active), so a free there can safely do
 * nothing.
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
	/** 1 once an allocation failed: cJSON then reports a syntax error */
	int failed;
};

static __thread struct dnsf_json_arena *active;
/* Arenas active on all threads; the hooks are installed while above 0. */
static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t arenas_active;

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
		if (chunk == MAP_FAILED) {
			arena->failed = 1;
			return NULL;
		}
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

/* An arena starts: the first one installs the hooks. */
static void hooks_take(void)
{
	pthread_mutex_lock(&hooks_lock);
	if (arenas_active++ == 0) {
		cJSON_Hooks hooks = { .malloc_fn = hook_malloc, .free_fn = hook_free };
		cJSON_InitHooks(&hooks);
	}
	pthread_mutex_unlock(&hooks_lock);
}

/* An arena ends: the last one puts cJSON's own malloc and free back. */
static void hooks_release(void)
{
	pthread_mutex_lock(&hooks_lock);
	if (--arenas_active == 0)
		cJSON_InitHooks(NULL);
	pthread_mutex_unlock(&hooks_lock);
}

void dnsf_json_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, hooks_take); /* taken, never released */
}

struct dnsf_json_arena *dnsf_json_arena_begin(void)
{
	struct dnsf_json_arena *arena = calloc(1, sizeof(*arena));
	if (!arena)
		return NULL;
	hooks_take();
	active = arena;
	return arena;
}

void dnsf_json_arena_end(struct dnsf_json_arena *arena)
{
	if (!arena)
		return;
	if (active == arena)
		active = NULL;
	hooks_release();
	for (struct chunk *chunk = arena->chunks, *next; chunk; chunk = next) {
		next = chunk->next;
		munmap(chunk, sizeof(*chunk) + chunk->size);
	}
	free(arena);
}

int dnsf_json_arena_failed(const struct dnsf_json_arena *arena)
{
	return arena && arena->failed;
}

size_t dnsf_json_arena_size(const struct dnsf_json_arena *arena)
{
	return arena ? arena->total : 0;
}
