/* Memos of decisions: valid for one index, one name, one second only. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/index.h"
#include "unit.h"

#define FEED(name)                                                                                 \
	"{\"format\":\"dnsfilter-feed/"                                                            \
	"1\",\"serial\":1,\"entries\":[{\"id\":\"E\",\"fqdns\":[\"" name                           \
	"\"],\"start\":\"2024-01-01\"}]}"

static const int64_t NOW = 1720000000;

static struct dnsf_index *load(const char *text)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index = dnsf_index_from_buffer(text, strlen(text), NULL, &errors);
	ck_assert_ptr_nonnull(index);
	dnsf_errors_clear(&errors);
	return index;
}

static size_t wire_of(const char *text, uint8_t wire[DNSF_WIRE_MAX])
{
	size_t length;
	ck_assert(dnsf_wire_from_text(text, wire, &length));
	return length;
}

static struct dnsf_decision decide(const struct dnsf_index *index, const char *name)
{
	struct dnsf_key key = key_of_text(name);
	struct dnsf_decision decision;
	dnsf_index_decide(index, &key, NOW, &decision);
	return decision;
}

START_TEST(test_every_index_has_its_own_id)
{
	struct dnsf_index *a = load(FEED("c2.example.net")), *b = load(FEED("c2.example.net"));
	uint64_t ids[8];

	ck_assert_uint_ne(dnsf_index_id(a), dnsf_index_id(b));
	ids[0] = dnsf_index_id(a);
	ids[1] = dnsf_index_id(b);
	dnsf_index_free(a);
	dnsf_index_free(b);
	/* the allocator may hand out the same addresses again; ids are new */
	for (int i = 2; i < 8; i++) {
		struct dnsf_index *c = load(FEED("c2.example.net"));
		ids[i] = dnsf_index_id(c);
		for (int j = 0; j < i; j++)
			ck_assert_uint_ne(ids[i], ids[j]);
		dnsf_index_free(c);
	}
}
END_TEST

START_TEST(test_a_memo_holds_for_its_index_name_and_second_only)
{
	struct dnsf_index *old = load(FEED("other.example.net")),
			  *new = load(FEED("c2.example.net"));
	struct dnsf_memo memo = { .length = 0 };
	struct dnsf_decision decision, remembered;
	uint8_t wire[DNSF_WIRE_MAX], upper[DNSF_WIRE_MAX], sibling[DNSF_WIRE_MAX];
	size_t length = wire_of("c2.example.net", wire);

	wire_of("C2.example.net", upper);
	wire_of("c3.example.net", sibling);
	/* nothing remembered yet */
	ck_assert(!dnsf_memo_get(&memo, old, wire, length, NOW, &remembered));
	decision = decide(old, "c2.example.net");
	ck_assert_int_eq(decision.verdict, DNSF_VERDICT_NONE);
	dnsf_memo_put(&memo, old, wire, length, NOW, &decision);
	ck_assert(dnsf_memo_get(&memo, old, wire, length, NOW, &remembered));
	ck_assert_int_eq(remembered.verdict, DNSF_VERDICT_NONE);
	/* the feed changed: the name is listed now, the memo must not answer */
	ck_assert_int_eq(decide(new, "c2.example.net").verdict, DNSF_VERDICT_BLOCK);
	ck_assert(!dnsf_memo_get(&memo, new, wire, length, NOW, &remembered));
	/* another second (an entry's window), another name, other bytes */
	ck_assert(!dnsf_memo_get(&memo, old, wire, length, NOW + 1, &remembered));
	ck_assert(!dnsf_memo_get(&memo, old, sibling, length, NOW, &remembered));
	ck_assert(!dnsf_memo_get(&memo, old, upper, length, NOW, &remembered));
	ck_assert(!dnsf_memo_get(&memo, old, wire, length - 1, NOW, &remembered));
	/* a decision with an entry comes back whole */
	decision = decide(new, "c2.example.net");
	dnsf_memo_put(&memo, new, wire, length, NOW, &decision);
	ck_assert(dnsf_memo_get(&memo, new, wire, length, NOW, &remembered));
	ck_assert_int_eq(remembered.verdict, DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(remembered.entry.id, "E");
	ck_assert_uint_eq(remembered.match_length, decision.match_length);
	dnsf_index_free(old);
	dnsf_index_free(new);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("memo");
	TCase *tc = tcase_create("memo");
	tcase_add_test(tc, test_every_index_has_its_own_id);
	tcase_add_test(tc, test_a_memo_holds_for_its_index_name_and_second_only);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
