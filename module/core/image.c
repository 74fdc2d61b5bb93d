/*
 * image.c - an index as one file, mapped back instead of parsing the feed
 * again (see index.h, "Images").
 *
 * Layout: a header, then the sections, each at an offset that is a
 * multiple of 8, zero padding between:
 *   entries   struct index_entry[entry_count]
 *   strings   the entries' ids and behaviours, NUL-terminated
 *   rules     uint32_t[rule_words]
 *   trie      the trie's arena
 *   generated the feed's "generated" text, NUL-terminated (may be empty)
 * Nothing in the index is a pointer (index_internal.h), so the sections are
 * used where they are mapped, read-only and shared between processes.
 *
 * The header carries the format version, the byte order, the SHA-256 of
 * the feed the image was built from and a SHA-256 of the whole file (the
 * header with that field zeroed, then the rest). A reader checks all of it
 * and then every offset inside the image, as if the checksum did not
 * exist: an image that fails any check is refused with a reason, never
 * used, so a corrupt, truncated or hostile image cannot crash a lookup.
 */
#include "dnsfilter/file.h"
#include "dnsfilter/index.h"
#include "index_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE_MAGIC "DNSFIDX\n"
#define IMAGE_VERSION 1u
#define IMAGE_BYTE_ORDER 0x01020304u

enum section {
	SECTION_ENTRIES,
	SECTION_STRINGS,
	SECTION_RULES,
	SECTION_TRIE,
	SECTION_GENERATED,
	SECTION_COUNT,
};

struct image_header {
	char magic[8];
	uint32_t version;
	uint32_t byte_order;
	uint64_t header_size;
	uint64_t file_size;
	uint8_t feed_hash[DNSF_FEED_HASH_SIZE];
	uint8_t checksum[DNSF_FEED_HASH_SIZE];
	uint64_t serial;
	uint64_t has_serial, has_generated;
	uint64_t entry_count, exact_count, wildcard_count, allow_count;
	uint64_t trie_key_count, trie_node_count;
	uint64_t rule_words;
	struct {
		uint64_t offset, size;
	} sections[SECTION_COUNT];
};

static size_t align8(size_t size)
{
	return (size + 7) & ~(size_t)7;
}

void dnsf_feed_hash(const char *text, size_t length, uint8_t hash[DNSF_FEED_HASH_SIZE])
{
	unsigned int size = DNSF_FEED_HASH_SIZE;

	if (!EVP_Digest(text, length, hash, &size, EVP_sha256(), NULL))
		memset(hash, 0, DNSF_FEED_HASH_SIZE);
}

/* The sections of an index in memory, in file order. */
static void section_views(const struct dnsf_index *index, const void *views[SECTION_COUNT],
			  size_t sizes[SECTION_COUNT])
{
	views[SECTION_ENTRIES] = index->entries;
	sizes[SECTION_ENTRIES] = index->entry_count * sizeof(*index->entries);
	views[SECTION_STRINGS] = index->strings;
	sizes[SECTION_STRINGS] = index->strings_size;
	views[SECTION_RULES] = index->rule_lists;
	sizes[SECTION_RULES] = index->rule_words * sizeof(*index->rule_lists);
	views[SECTION_TRIE] = index->trie.arena;
	sizes[SECTION_TRIE] = index->trie.arena_size;
	views[SECTION_GENERATED] = index->generated ? index->generated : "";
	sizes[SECTION_GENERATED] = strlen(views[SECTION_GENERATED]) + 1;
}

/* The whole-file checksum: the header with its checksum zeroed, then the
 * bytes after it. */
static int checksum(const struct image_header *header, const void *const views[SECTION_COUNT],
		    const size_t sizes[SECTION_COUNT], uint8_t out[DNSF_FEED_HASH_SIZE])
{
	static const uint8_t zeros[8];
	struct image_header copy = *header;
	EVP_MD_CTX *context = EVP_MD_CTX_new();
	unsigned int size = DNSF_FEED_HASH_SIZE;
	int ok;

	if (!context)
		return 0;
	memset(copy.checksum, 0, sizeof(copy.checksum));
	ok = EVP_DigestInit_ex(context, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(context, &copy, sizeof(copy));
	for (int i = 0; ok && i < SECTION_COUNT; i++)
		ok = EVP_DigestUpdate(context, views[i], sizes[i]) &&
		     EVP_DigestUpdate(context, zeros, align8(sizes[i]) - sizes[i]);
	ok = ok && EVP_DigestFinal_ex(context, out, &size);
	EVP_MD_CTX_free(context);
	return ok;
}

struct image_writer {
	struct image_header header;
	const void *views[SECTION_COUNT];
	size_t sizes[SECTION_COUNT];
};

static int write_image(int fd, void *context)
{
	static const uint8_t zeros[8];
	const struct image_writer *writer = context;

	if (!dnsf_file_write_all(fd, &writer->header, sizeof(writer->header)))
		return 0;
	for (int i = 0; i < SECTION_COUNT; i++)
		if (!dnsf_file_write_all(fd, writer->views[i], writer->sizes[i]) ||
		    !dnsf_file_write_all(fd, zeros, align8(writer->sizes[i]) - writer->sizes[i]))
			return 0;
	return 1;
}

int dnsf_index_write_image(const struct dnsf_index *index,
			   const uint8_t feed_hash[DNSF_FEED_HASH_SIZE], const char *path,
			   struct dnsf_errors *errors)
{
	struct image_writer writer;
	struct image_header *header = &writer.header;
	size_t offset = align8(sizeof(*header));

	memset(&writer, 0, sizeof(writer));
	memcpy(header->magic, IMAGE_MAGIC, sizeof(header->magic));
	header->version = IMAGE_VERSION;
	header->byte_order = IMAGE_BYTE_ORDER;
	header->header_size = sizeof(*header);
	memcpy(header->feed_hash, feed_hash, DNSF_FEED_HASH_SIZE);
	header->serial = index->serial;
	header->has_serial = (uint64_t)index->has_serial;
	header->has_generated = index->generated != NULL;
	header->entry_count = index->entry_count;
	header->exact_count = index->exact_count;
	header->wildcard_count = index->wildcard_count;
	header->allow_count = index->allow_count;
	header->trie_key_count = index->trie.key_count;
	header->trie_node_count = index->trie.node_count;
	header->rule_words = index->rule_words;
	section_views(index, writer.views, writer.sizes);
	for (int i = 0; i < SECTION_COUNT; i++) {
		header->sections[i].offset = offset;
		header->sections[i].size = writer.sizes[i];
		offset += align8(writer.sizes[i]);
	}
	header->file_size = offset;
	if (!checksum(header, writer.views, writer.sizes, header->checksum)) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "%s: cannot compute the checksum",
				     path);
		return 0;
	}
	return dnsf_file_replace(path, write_image, &writer, errors);
}

/* ---- reading ---- */

static int refuse(struct dnsf_errors *errors, const char *why)
{
	dnsf_errors_add(errors, "not a usable index image: %s", why);
	return 0;
}

/* Every rule list a trie value may point at: a header word at a run's
 * start, the run inside the words, its entry numbers inside the entries. */
struct rule_check {
	const struct dnsf_index *index;
	/* 1 bit a word: a rule list starts there */
	uint8_t *starts;
};

static int rules_valid(struct rule_check *check)
{
	const struct dnsf_index *index = check->index;
	size_t word = 0;

	while (word < index->rule_words) {
		uint32_t header = index->rule_lists[word];
		size_t count = RULES_EXACT_COUNT(header) + (size_t)RULES_WILDCARD_COUNT(header);
		if (header & ~(0xfffffffu | RULES_ALLOW_EXACT | RULES_ALLOW_BELOW))
			return 0;
		if (count > index->rule_words - word - 1)
			return 0;
		check->starts[word / 8] |= (uint8_t)(1u << (word % 8));
		for (size_t i = 1; i <= count; i++)
			if (index->rule_lists[word + i] >= index->entry_count)
				return 0;
		word += 1 + count;
	}
	return 1;
}

static int value_is_rule_start(uint32_t value, void *context)
{
	const struct rule_check *check = context;
	return value < check->index->rule_words &&
	       (check->starts[value / 8] & (1u << (value % 8))) != 0;
}

/* Check an image held in memory and point index at its sections. */
static int open_image(struct dnsf_index *index, const uint8_t *bytes, size_t size,
		      const uint8_t *feed_hash, int verify_checksum, struct dnsf_errors *errors)
{
	struct image_header header;
	const void *views[SECTION_COUNT];
	size_t sizes[SECTION_COUNT];
	uint8_t sum[DNSF_FEED_HASH_SIZE];
	const char *why;

	index->id = dnsf_index_new_id();
	if (size < sizeof(header))
		return refuse(errors, "shorter than its header");
	memcpy(&header, bytes, sizeof(header));
	if (memcmp(header.magic, IMAGE_MAGIC, sizeof(header.magic)) != 0)
		return refuse(errors, "not an index image (bad magic)");
	if (header.version != IMAGE_VERSION)
		return refuse(errors, "another format version");
	if (header.byte_order != IMAGE_BYTE_ORDER)
		return refuse(errors, "another byte order");
	if (header.header_size != sizeof(header) || header.file_size != size)
		return refuse(errors, "truncated or grown (sizes differ from the header's)");
	if (feed_hash && memcmp(header.feed_hash, feed_hash, DNSF_FEED_HASH_SIZE) != 0)
		return refuse(errors, "built from another feed (content hash differs)");
	size_t end = align8(sizeof(header));
	for (int i = 0; i < SECTION_COUNT; i++) {
		uint64_t offset = header.sections[i].offset, length = header.sections[i].size;
		if (offset != end || length > size || align8((size_t)length) > size - offset)
			return refuse(errors, "a section outside the file");
		views[i] = bytes + offset;
		sizes[i] = (size_t)length;
		end = (size_t)offset + align8((size_t)length);
		/* the checksum covers padding as zeros: it must be zeros */
		for (size_t k = (size_t)(offset + length); k < end; k++)
			if (bytes[k])
				return refuse(errors, "nonzero padding");
	}
	if (end != size)
		return refuse(errors, "bytes after the last section");
	if (verify_checksum) {
		if (!checksum(&header, views, sizes, sum))
			return refuse(errors, "cannot compute the checksum");
		if (memcmp(sum, header.checksum, sizeof(sum)) != 0)
			return refuse(errors, "checksum mismatch (a damaged file)");
	}
	/* The sections, each checked for what a lookup will read. */
	if (header.entry_count > SIZE_MAX / sizeof(struct index_entry) ||
	    sizes[SECTION_ENTRIES] != header.entry_count * sizeof(struct index_entry) ||
	    sizes[SECTION_RULES] != header.rule_words * sizeof(uint32_t) ||
	    header.rule_words > UINT32_MAX || sizes[SECTION_STRINGS] > UINT32_MAX)
		return refuse(errors, "section sizes do not match the counts");
	if (sizes[SECTION_STRINGS] &&
	    ((const char *)views[SECTION_STRINGS])[sizes[SECTION_STRINGS] - 1])
		return refuse(errors, "strings not terminated");
	if (sizes[SECTION_GENERATED] == 0 ||
	    memchr(views[SECTION_GENERATED], 0, sizes[SECTION_GENERATED]) !=
		(const char *)views[SECTION_GENERATED] + sizes[SECTION_GENERATED] - 1 ||
	    header.has_serial > 1 || header.has_generated > 1)
		return refuse(errors, "bad header fields");
	index->serial = header.serial;
	index->has_serial = (int)header.has_serial;
	index->generated = header.has_generated ? (char *)views[SECTION_GENERATED] : NULL;
	index->entries = (struct index_entry *)views[SECTION_ENTRIES];
	index->entry_count = (size_t)header.entry_count;
	index->strings = (char *)views[SECTION_STRINGS];
	index->strings_size = sizes[SECTION_STRINGS];
	index->exact_count = (size_t)header.exact_count;
	index->wildcard_count = (size_t)header.wildcard_count;
	index->allow_count = (size_t)header.allow_count;
	index->rule_lists = (uint32_t *)views[SECTION_RULES];
	index->rule_words = (size_t)header.rule_words;
	index->trie.arena = sizes[SECTION_TRIE] ? (uint8_t *)views[SECTION_TRIE] : NULL;
	index->trie.arena_size = sizes[SECTION_TRIE];
	index->trie.key_count = (size_t)header.trie_key_count;
	index->trie.node_count = (size_t)header.trie_node_count;
	for (size_t i = 0; i < index->entry_count; i++) {
		const struct index_entry *entry = &index->entries[i];
		if (entry->id >= index->strings_size || entry->behavior >= index->strings_size ||
		    entry->action > DNSF_ACTION_MONITOR || entry->force > 1)
			return refuse(errors, "an entry points outside the strings");
	}
	struct rule_check rules = { index, calloc(index->rule_words / 8 + 1, 1) };
	if (!rules.starts) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		return 0;
	}
	int ok = rules_valid(&rules);
	if (ok && !dnsf_trie_check_values(&index->trie, value_is_rule_start, &rules, &why))
		ok = 0;
	free(rules.starts);
	if (!ok)
		return refuse(errors, "the trie or the rule lists are damaged");
	index->memory_bytes = sizeof(*index) + size;
	return 1;
}

struct dnsf_index *dnsf_index_from_image_bytes(const void *bytes, size_t size,
					       const uint8_t *feed_hash, int verify_checksum,
					       struct dnsf_errors *errors)
{
	struct dnsf_index *index = calloc(1, sizeof(*index));

	if (!index) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		return NULL;
	}
	/* borrowed: dnsf_index_free frees the struct only */
	index->mapping = (void *)bytes;
	index->mapping_size = 0;
	if (!(((uintptr_t)bytes & 7) == 0 || size == 0)) {
		refuse(errors, "not 8-byte aligned in memory");
		free(index);
		return NULL;
	}
	if (!open_image(index, bytes, size, feed_hash, verify_checksum, errors)) {
		free(index);
		return NULL;
	}
	return index;
}

struct dnsf_index *dnsf_index_from_image(const char *path, const uint8_t *feed_hash,
					 struct dnsf_errors *errors)
{
	struct stat info;
	struct dnsf_index *index;
	void *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || info.st_size <= 0) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "not a regular, non-empty file");
		close(fd);
		return NULL;
	}
	/* MAP_SHARED, read-only: every process on the host maps the same
	 * pages of the page cache */
	map = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "cannot map: %s", strerror(errno));
		return NULL;
	}
	index = calloc(1, sizeof(*index));
	if (!index) {
		munmap(map, (size_t)info.st_size);
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		return NULL;
	}
	if (!open_image(index, map, (size_t)info.st_size, feed_hash, 1, errors)) {
		munmap(map, (size_t)info.st_size);
		free(index);
		return NULL;
	}
	index->mapping = map;
	index->mapping_size = (size_t)info.st_size;
	return index;
}
