/* Backend conformance cases: the change feed: order, resume, paging, upto. */
#include "conformance.h"

void test_change_order_in_one_write(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0}, at = {0};
  char *t = ct_tenant_name("effects");
  const char *h0 = ct_head(f, t);
  ct_batch_t b;
  ct_batch_init(&b, t);
  ct_add_tuple(&b, "doc:1#viewer@user:a");
  ct_add_tuple(&b, "doc:1#viewer@user:b");
  ct_add_attr(&b, "doc", "1", "public", "old");
  ct_add_attr(&b, "doc", "1", "owner", "alice");
  const char *w1 = ct_write_ok(f, &b.w);

  ct_batch_init(&b, t);
  const char *a[] = {"a"};
  tc_tuple_filter_t tdel = {.subject_ids = a, .n_subject_ids = 1};
  const char *owner[] = {"owner"};
  tc_attr_filter_t adel = {.attributes = owner, .n_attributes = 1};
  b.w.tuple_delete = &tdel;
  b.w.attr_delete = &adel;
  ct_add_tuple(&b, "doc:1#viewer@user:b"); /* already active: no change */
  ct_add_tuple(&b, "doc:2#viewer@user:c");
  ct_add_attr(&b, "doc", "1", "public", "new");
  ct_add_attr(&b, "doc", "3", "public", "fresh");
  ct_write_ok(f, &b.w);

  ct_read_changes(f, &r, t, h0, NULL, 0);
  /* Within a transaction the order of rows is the backend's (a Postgres
   * row has no record of which step expired it), except that an
   * attribute's old value goes before its new one. */
  static const char *const want[] = {
      "+doc:1#viewer@user:a", "+doc:1#viewer@user:b", "+doc:1$public=old",    "+doc:1$owner=alice",
      "-doc:1#viewer@user:a", "-doc:1$owner=alice",   "+doc:2#viewer@user:c", "-doc:1$public=old",
      "+doc:1$public=new",    "+doc:3$public=fresh"};
  assert_int_equal(r.rows.n, 10);
  for (size_t i = 0; i < 10; i++) {
    size_t at = ct_strv_find(&r.rows, want[i]);
    if (at == r.rows.n || (at < 4) != (i < 4))
      fail_msg("change %s: not in its transaction", want[i]);
  }
  assert_true(ct_strv_find(&r.rows, "-doc:1$public=old") <
              ct_strv_find(&r.rows, "+doc:1$public=new"));
  /* One token per transaction. */
  for (size_t i = 0; i < r.rows.n; i++)
    assert_string_equal(r.tokens.v[i], r.tokens.v[i < 4 ? 0 : 4]);
  ct_expect_distinct(r.tokens.v[0], r.tokens.v[4], h0);
  ct_token_ok(f, f->b, r.tokens.v[0]);
  ct_token_ok(f, f->b, r.last);

  /* A change token is the position right after its transaction. */
  const char *c1 = ct_keep(f, r.tokens.v[0]);
  ct_read_tuples(f, &at, t, c1, &ct_all_tuples, 0, 0);
  ct_expect(&at.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  ct_read_tuples(f, &at, t, w1, &ct_all_tuples, 0, 0);
  ct_expect(&at.rows, "doc:1#viewer@user:a", "doc:1#viewer@user:b", NULL);
  ct_read_changes(f, &at, t, c1, NULL, 0);
  ct_expect_tail(&at, &r, 4);
  ct_read_changes(f, &at, t, r.last, NULL, 0);
  assert_int_equal(at.rows.n, 0);
  assert_string_equal(at.last, r.last);
  ct_result_free(&at);
  ct_result_free(&r);
  free(t);
}

/* Five writes (the fourth changes nothing) give this feed, by transaction:
 *   0..2: doc:1 a b c   3: doc:2 a   4..5: doc:3 a b   (no-op)   6: doc:5 a */
typedef struct feed_s {
  char *t;
  const char *h0;   /* the tenant's head before the first write */
  const char *w[5]; /* the writes' tokens */
  ct_result_t all;  /* read_changes from h0 */
  const char *c[4]; /* the change token of each transaction */
} feed_t;

static const size_t feed_txn_start[] = {0, 3, 4, 6, 7}; /* first change of each; then the end */

static void feed_make(ct_fixture_t *f, feed_t *fd, const char *name) {
  fd->t = ct_tenant_name(name);
  fd->h0 = ct_head(f, fd->t);
  fd->w[0] = ct_write_tuples(f, fd->t, "doc:1#v@user:a", "doc:1#v@user:b", "doc:1#v@user:c", NULL);
  fd->w[1] = ct_write_tuples(f, fd->t, "doc:2#v@user:a", NULL);
  fd->w[2] = ct_write_tuples(f, fd->t, "doc:3#v@user:a", "doc:3#v@user:b", NULL);
  fd->w[3] = ct_write_tuples(f, fd->t, "doc:3#v@user:a", NULL); /* changes nothing */
  fd->w[4] = ct_write_tuples(f, fd->t, "doc:5#v@user:a", NULL);
  ct_read_changes(f, &fd->all, fd->t, fd->h0, NULL, 0);
  ct_expect(&fd->all.rows, "+doc:1#v@user:a", "+doc:1#v@user:b", "+doc:1#v@user:c",
            "+doc:2#v@user:a", "+doc:3#v@user:a", "+doc:3#v@user:b", "+doc:5#v@user:a", NULL);
  for (size_t k = 0; k < 4; k++) {
    fd->c[k] = fd->all.tokens.v[feed_txn_start[k]];
    for (size_t i = feed_txn_start[k]; i < feed_txn_start[k + 1]; i++)
      assert_string_equal(fd->all.tokens.v[i], fd->c[k]);
  }
  ct_expect_distinct(fd->h0, fd->w[0], fd->w[1], fd->w[2], fd->w[3], fd->w[4]);
  ct_expect_distinct(fd->c[0], fd->c[1], fd->c[2], fd->c[3]);
}

static void feed_free(feed_t *fd) {
  ct_result_free(&fd->all);
  free(fd->t);
}

void test_read_changes_resume(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  feed_t fd = {0};
  feed_make(f, &fd, "resume");

  /* From a write's token: exactly the later transactions, in order. */
  static const size_t after_write[] = {3, 4, 6, 6, 7};
  for (size_t k = 0; k < 5; k++) {
    ct_read_changes(f, &r, fd.t, fd.w[k], NULL, 0);
    ct_expect_tail(&r, &fd.all, after_write[k]);
  }
  /* From any change token: exactly the rest. */
  for (size_t k = 0; k < 4; k++) {
    ct_read_changes(f, &r, fd.t, fd.c[k], NULL, 0);
    ct_expect_tail(&r, &fd.all, feed_txn_start[k + 1]);
  }
  /* Nothing new: `last` is `after`, the same string. */
  ct_read_changes(f, &r, fd.t, fd.w[4], NULL, 10);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.w[4]);
  ct_read_changes(f, &r, fd.t, fd.c[3], NULL, 10);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.c[3]);
  ct_read_changes(f, &r, fd.t, fd.all.last, NULL, 10);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.all.last);

  /* The head is the position after the newest transaction: from it, and from
   * the feed's `last`, only later writes come. */
  const char *h = ct_head(f, fd.t);
  ct_token_ok(f, f->b, h);
  ct_read_changes(f, &r, fd.t, h, NULL, 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, h);
  ct_write_tuples(f, fd.t, "doc:6#v@user:a", "doc:6#v@user:b", NULL);
  ct_read_changes(f, &r, fd.t, h, NULL, 0);
  ct_expect(&r.rows, "+doc:6#v@user:a", "+doc:6#v@user:b", NULL);
  ct_read_changes(f, &r, fd.t, fd.all.last, NULL, 0);
  ct_expect(&r.rows, "+doc:6#v@user:a", "+doc:6#v@user:b", NULL);
  ct_result_free(&r);
  feed_free(&fd);
}

void test_read_changes_paging(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  feed_t fd = {0};
  feed_make(f, &fd, "feed");
  const ct_result_t *all = &fd.all;

  /* A transaction larger than the limit comes whole, and alone. */
  ct_read_changes(f, &r, fd.t, fd.h0, NULL, 2);
  ct_expect(&r.rows, "+doc:1#v@user:a", "+doc:1#v@user:b", "+doc:1#v@user:c", NULL);

  /* Paging by whole transactions visits every change once, in order, until
   * a page with nothing new leaves `last` where it was. */
  for (uint32_t limit = 1; limit <= 4; limit++) {
    char *after = strdup(fd.h0);
    size_t got = 0;
    for (int pages = 0;; pages++) {
      assert_true(pages < 10);
      ct_read_changes(f, &r, fd.t, after, NULL, limit);
      if (r.rows.n == 0) {
        assert_string_equal(r.last, after);
        break;
      }
      ct_expect_page(&r, all, got);
      got += r.rows.n;
      /* Whole transactions: the next change is of another one. */
      if (got < all->rows.n) assert_string_not_equal(all->tokens.v[got], all->tokens.v[got - 1]);
      free(after);
      after = strdup(r.last);
    }
    assert_int_equal(got, all->rows.n);
    free(after);
  }
  ct_result_free(&r);
  feed_free(&fd);
}

/* upto: the read stops at that position, and once everything up to it is
 * read, `last` is `upto` itself. */
void test_read_changes_upto(void **state) {
  ct_fixture_t *f = *state;
  ct_result_t r = {0};
  feed_t fd = {0};
  feed_make(f, &fd, "upto");
  const ct_result_t *all = &fd.all;

  ct_read_changes(f, &r, fd.t, fd.h0, fd.c[1], 0);
  ct_expect_page(&r, all, 0);
  assert_int_equal(r.rows.n, feed_txn_start[2]);
  assert_string_equal(r.last, fd.c[1]);
  ct_read_changes(f, &r, fd.t, fd.c[1], fd.c[2], 0);
  ct_expect(&r.rows, "+doc:3#v@user:a", "+doc:3#v@user:b", NULL);
  assert_string_equal(r.last, fd.c[2]);
  /* Past the transaction that changed nothing, to the last one. */
  ct_read_changes(f, &r, fd.t, fd.c[2], fd.c[3], 0);
  ct_expect(&r.rows, "+doc:5#v@user:a", NULL);
  assert_string_equal(r.last, fd.c[3]);
  /* Up to where it starts: nothing, and complete. */
  ct_read_changes(f, &r, fd.t, fd.c[1], fd.c[1], 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.c[1]);
  /* From beyond upto (a stream ahead of the feed it reads up to): nothing,
   * and the position stays where it is, never back at upto. */
  ct_read_changes(f, &r, fd.t, fd.c[3], fd.c[1], 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.c[3]);
  ct_read_changes(f, &r, fd.t, fd.w[4], fd.c[1], 0);
  assert_int_equal(r.rows.n, 0);
  assert_string_equal(r.last, fd.w[4]);

  /* Paged with the smallest limit: one transaction a page, then `upto`. */
  for (size_t k = 0; k < 4; k++) {
    char *after = strdup(fd.h0);
    size_t got = 0;
    for (int pages = 0;; pages++) {
      assert_true(pages < 10);
      ct_read_changes(f, &r, fd.t, after, fd.c[k], 1);
      free(after);
      after = strdup(r.last);
      if (r.rows.n == 0) break;
      ct_expect_page(&r, all, got);
      got += r.rows.n;
      assert_true(got <= feed_txn_start[k + 1]);
      /* The page that completes the read ends at upto. */
      if (got == feed_txn_start[k + 1]) assert_string_equal(r.last, fd.c[k]);
    }
    assert_int_equal(got, feed_txn_start[k + 1]);
    assert_string_equal(after, fd.c[k]);
    free(after);
  }

  /* A write after upto is not read. */
  ct_write_tuples(f, fd.t, "doc:6#v@user:a", NULL);
  ct_read_changes(f, &r, fd.t, fd.c[2], fd.c[3], 0);
  ct_expect(&r.rows, "+doc:5#v@user:a", NULL);
  assert_string_equal(r.last, fd.c[3]);
  ct_result_free(&r);
  feed_free(&fd);
}
