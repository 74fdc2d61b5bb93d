/*
 * ids.c - the reporter's matches per entry id: an open-addressed hash table
 * of counts, kept by the writer thread from the events it drains, read for
 * the counter log's by_id (per interval) and the metrics'
 * dnsfilter_matches_total (since the reporter was made).
 */
#include "report_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t id_hash(const char *id)
{
	uint64_t hash = 14695981039346656037ULL; /* FNV-1a */
	for (; *id; id++)
		hash = (hash ^ (unsigned char)*id) * 1099511628211ULL;
	return hash;
}

static struct id_count *id_cell(struct id_count *cells, size_t capacity, const char *id)
{
	size_t i = (size_t)id_hash(id) & (capacity - 1);
	while (cells[i].id[0] && strcmp(cells[i].id, id) != 0)
		i = (i + 1) & (capacity - 1);
	return &cells[i];
}

/* Keep the table at most half full. */
static int id_table_grow(struct id_table *table)
{
	if (table->capacity && table->count < table->capacity / 2)
		return 1;
	size_t capacity = table->capacity ? table->capacity * 2 : 64;
	struct id_count *cells = calloc(capacity, sizeof(*cells));
	if (!cells)
		return 0;
	for (size_t i = 0; i < table->capacity; i++)
		if (table->cells[i].id[0])
			*id_cell(cells, capacity, table->cells[i].id) = table->cells[i];
	free(table->cells);
	table->cells = cells;
	table->capacity = capacity;
	return 1;
}

void report_ids_count(struct id_table *table, const char *event_id)
{
	char id[DNSF_EVENT_ID_SIZE + 1];
	size_t length = strnlen(event_id, DNSF_EVENT_ID_SIZE);
	memcpy(id, event_id, length);
	id[length] = 0;
	struct id_count *cell = &table->empty;
	if (length) {
		if (!id_table_grow(table))
			return;
		cell = id_cell(table->cells, table->capacity, id);
		if (!cell->id[0]) {
			memcpy(cell->id, id, length + 1);
			table->count++;
		}
	}
	cell->interval++;
	cell->total++;
}

static int compare_id_counts(const void *a, const void *b)
{
	const struct id_count *x = *(const struct id_count *const *)a;
	const struct id_count *y = *(const struct id_count *const *)b;
	return strcmp(x->id, y->id);
}

struct id_count **report_ids_sorted(struct id_table *table, int interval_only, size_t *count,
				    int *failed)
{
	struct id_count **sorted = malloc((table->count + 1) * sizeof(*sorted));
	*count = 0;
	if (!sorted) {
		*failed = 1;
		return NULL;
	}
	if (table->empty.total && (!interval_only || table->empty.interval))
		sorted[(*count)++] = &table->empty;
	for (size_t i = 0; i < table->capacity; i++) {
		struct id_count *cell = &table->cells[i];
		if (cell->id[0] && (!interval_only || cell->interval))
			sorted[(*count)++] = cell;
	}
	qsort(sorted, *count, sizeof(*sorted), compare_id_counts);
	return sorted;
}

void report_ids_reset_interval(struct id_table *table)
{
	table->empty.interval = 0;
	for (size_t i = 0; i < table->capacity; i++)
		table->cells[i].interval = 0;
}

void report_ids_free(struct id_table *table)
{
	free(table->cells);
	table->cells = NULL;
	table->capacity = table->count = 0;
}
