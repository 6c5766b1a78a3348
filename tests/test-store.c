/* SPDX-License-Identifier: MIT */
/* test-store.c — the experiment store: writing runs, reading them back,
 * lists, comparisons, Pareto fronts, edits, threads, crash recovery. */
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "qb-store-private.h"
#include "qb-test-store.h"
#include "qb-test-util.h"

static char *
new_db_path (void)
{
  g_autofree char *dir = qb_test_tmpdir ();

  return g_build_filename (dir, "experiments.db", NULL);
}

static QbStore *
new_store (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_db_path ();
  QbStore *store = qb_store_open (path, &error);

  g_assert_no_error (error);
  return store;
}


static char *
pragma_text (sqlite3 *db, const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  char *v;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  v = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);
  return v;
}

/* -- creation ---------------------------------------------------------------- */

static void
test_create (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "a", "b", "experiments.db", NULL);
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autofree char *mode = NULL;
  g_auto(GStrv) tags = NULL;
  guint count = 99;

  g_assert_no_error (error);
  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));   /* folders created */
  g_assert_cmpstr (qb_store_get_path (store), ==, path);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA application_id"), ==, QB_STORE_APPLICATION_ID);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA foreign_keys"), ==, 1);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA synchronous"), ==, 1);   /* NORMAL */
  mode = pragma_text (store->db, "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "wal");
  g_assert_true (qb_store_count_experiments (store, NULL, &count, &error));
  g_assert_cmpuint (count, ==, 0);
  tags = qb_store_list_tags (store, &error);
  g_assert_nonnull (tags);
  g_assert_cmpuint (g_strv_length (tags), ==, 0);
  /* A second reference keeps the connection open after the first goes. */
  {
    QbStore *shared = qb_store_ref (store);

    qb_store_unref (g_steal_pointer (&store));
    g_assert_true (qb_store_count_experiments (shared, NULL, &count, &error));
    g_assert_no_error (error);
    qb_store_unref (shared);
  }

  /* Opening again changes nothing. */
  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
}

/* main() points XDG_DATA_HOME at a temporary folder before GLib reads it. */
static char *xdg_data_home;

static void
test_default_path (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = qb_store_default_path ();
  g_autofree char *expected = g_build_filename (xdg_data_home, "quantbench", "experiments.db", NULL);
  g_autoptr(QbStore) store = NULL;

  g_assert_cmpstr (path, ==, expected);
  store = qb_store_open (NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (qb_store_get_path (store), ==, expected);
  g_assert_true (g_file_test (expected, G_FILE_TEST_IS_REGULAR));
}

/* -- one run ------------------------------------------------------------------------ */

static void
test_run (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("00aa11bb22cc33dd", "stories");
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_tensor_result_free);
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(GPtrArray) tensors = NULL;
  const char *tags[] = { " baseline ", "q4", NULL };
  QbExperimentSpec spec = {
    .name = "Q4_K everywhere", .plan_json = "{ \"default_format\" : \"Q4_K\", \"rules\": [] }",
    .threads = 4, .backend = "cpu", .n_tensors = 6, .notes = "first try", .tags = tags,
  };
  gint64 id, sum_params = 0;
  guint64 sum_bytes = 0, sum_orig = 0;
  double sqnr_sum = 0, sqnr_w = 0, cos_min = 1;
  guint n_fallbacks = 0;

  id = qb_store_begin_experiment (store, model, &spec, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_RUNNING);
  g_assert_cmpint (e->owner_pid, ==, getpid ());
  g_assert_cmpstr (e->owner_host, ==, g_get_host_name ());
  g_assert_cmpstr (e->plan_json, ==, "{\"default_format\":\"Q4_K\",\"rules\":[]}");   /* normalized */
  g_assert_cmpstr (e->tags[0], ==, "baseline");                                     /* trimmed */
  g_assert_cmpstr (e->tags[1], ==, "q4");
  g_assert_cmpint (e->finished, ==, 0);
  g_assert_true (isnan (e->totals.bpw));
  g_assert_cmpuint (e->n_tensors, ==, 6);
  g_assert_cmpuint (e->n_tensors_done, ==, 0);
  g_clear_pointer (&e, qb_experiment_free);

  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *name = g_strdup_printf ("blk.%u.ffn_down.weight", i);
      QbTensorResult *r = qb_test_tensor_result (name, i, TRUE, i == 2 ? 0 : 64);

      if (i == 5)
        r->metrics.sqnr_db = INFINITY;   /* a lossless tensor */
      g_ptr_array_add (results, r);
      /* Stored out of order: the store gives them back in model order. */
      qb_store_add_tensor_result (store, id, 10 - i, r->n_params * 4, r, &error);
      g_assert_no_error (error);
      sum_params += r->n_params;
      sum_bytes += r->bytes;
      sum_orig += r->n_params * 4;
      if (isfinite (r->metrics.sqnr_db))
        sqnr_sum += r->n_params * r->metrics.sqnr_db, sqnr_w += r->n_params;
      cos_min = MIN (cos_min, r->metrics.cosine);
      n_fallbacks += r->fallback_reason != NULL;
    }
  /* Storing a tensor again replaces it. */
  qb_store_add_tensor_result (store, id, 5, ((QbTensorResult *) results->pdata[5])->n_params * 4,
                              results->pdata[5], &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_cmpuint (e->n_tensors_done, ==, 6);
  g_assert_cmpint (e->updated, >=, e->created);
  g_clear_pointer (&e, qb_experiment_free);

  qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 12.5, "ignored unless failed", &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_DONE);
  g_assert_cmpint (e->finished, >=, e->updated);
  g_assert_null (e->error_message);
  g_assert_cmpint (e->totals.n_params, ==, sum_params);
  g_assert_cmpuint (e->totals.quantized_bytes, ==, sum_bytes);
  g_assert_cmpuint (e->totals.original_bytes, ==, sum_orig);
  g_assert_cmpfloat_with_epsilon (e->totals.bpw, sum_bytes * 8.0 / sum_params, 1e-12);
  g_assert_cmpfloat_with_epsilon (e->totals.compression, (double) sum_orig / sum_bytes, 1e-12);
  g_assert_cmpfloat_with_epsilon (e->totals.sqnr_db, sqnr_sum / sqnr_w, 1e-9);
  g_assert_cmpfloat (e->totals.cosine_min, ==, cos_min);
  g_assert_cmpfloat (e->totals.seconds, ==, 12.5);
  g_assert_cmpuint (e->totals.n_fallbacks, ==, n_fallbacks);
  g_assert_cmpuint (n_fallbacks, ==, 1);
  g_assert_true (isfinite (e->totals.out_rel_err));

  /* Tensors come back in model order, without histograms until asked. */
  tensors = qb_store_get_tensors (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tensors->len, ==, 6);
  for (guint k = 0; k < 6; k++)
    {
      QbStoredTensor *t = g_ptr_array_index (tensors, k);
      const QbTensorResult *orig = g_ptr_array_index (results, 5 - k);

      g_assert_cmpuint (t->position, ==, 5 + k);
      g_assert_cmpuint (t->original_bytes, ==, orig->n_params * 4);
      g_assert_null (t->result->hist_original);
      g_assert_null (t->result->channel_min);
      qb_store_load_tensor_data (store, t, &error);
      g_assert_no_error (error);
      qb_test_assert_same_result (t->result, orig);
    }

  /* A finished experiment takes no more tensors, and finishes once. */
  g_assert_false (qb_store_add_tensor_result (store, id, 0, 0, results->pdata[0], &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_STATE);
  g_clear_error (&error);
  g_assert_false (qb_store_finish_experiment (store, id, QB_EXPERIMENT_CANCELLED, 1, NULL, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_STATE);
  g_clear_error (&error);
  g_assert_false (qb_store_finish_experiment (store, id, QB_EXPERIMENT_RUNNING, 1, NULL, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_null (qb_store_get_experiment (store, 999, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (qb_store_get_tensors (store, 999, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
}

static void
test_failed_and_bad_input (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("feedface01", "m");
  g_autoptr(QbModelRecord) nameless = qb_model_record_new ();
  g_autoptr(QbExperiment) e = NULL;
  const char *bad_tags[] = { "ok", "bad\ttag", NULL };
  QbExperimentSpec spec = { .plan_json = "{}", .n_tensors = 1 };
  QbExperimentSpec bad_plan = { .plan_json = "[1, 2]" };
  QbExperimentSpec broken_plan = { .plan_json = "{\"a\": " };
  QbExperimentSpec tagged = { .plan_json = "{}", .tags = bad_tags };
  gint64 id;

  g_assert_cmpint (qb_store_begin_experiment (store, nameless, &spec, &error), ==, 0);
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_cmpint (qb_store_begin_experiment (store, model, &bad_plan, &error), ==, 0);
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "not a JSON object"));
  g_clear_error (&error);
  g_assert_cmpint (qb_store_begin_experiment (store, model, &broken_plan, &error), ==, 0);
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_cmpint (qb_store_begin_experiment (store, model, &tagged, &error), ==, 0);
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_clear_error (&error);

  /* A failed run keeps its message; an unnamed run gets a dated name. */
  id = qb_store_begin_experiment (store, model, &spec, &error);
  g_assert_no_error (error);
  /* A result the store could not read back is refused, and nothing of it kept. */
  {
    g_autoptr(QbTensorResult) r = qb_test_tensor_result ("t", 1, TRUE, 4);
    g_autoptr(QbTensorResult) unnamed = qb_test_tensor_result ("", 1, FALSE, 0);
    g_autoptr(GPtrArray) tensors = NULL;

    r->hist_error->n_bins = 0;
    g_assert_false (qb_store_add_tensor_result (store, id, 0, 0, r, &error));
    g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
    g_clear_error (&error);
    r->hist_error->n_bins = QB_HISTOGRAM_BINS;
    g_clear_pointer (&r->channel_max, g_free);
    g_assert_false (qb_store_add_tensor_result (store, id, 0, 0, r, &error));
    g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
    g_clear_error (&error);
    g_assert_false (qb_store_add_tensor_result (store, id, 0, 0, unnamed, &error));
    g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
    g_clear_error (&error);
    tensors = qb_store_get_tensors (store, id, &error);
    g_assert_cmpuint (tensors->len, ==, 0);
  }
  qb_store_finish_experiment (store, id, QB_EXPERIMENT_FAILED, 0.5, "out of memory", &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_FAILED);
  g_assert_cmpstr (e->error_message, ==, "out of memory");
  g_assert_true (g_str_has_prefix (e->name, "Run 20"));
  g_assert_cmpint (e->totals.n_params, ==, 0);
  g_assert_true (isnan (e->totals.bpw));
  g_assert_true (isnan (e->totals.sqnr_db));
}

/* -- lists ------------------------------------------------------------------------------ */

typedef struct {
  QbStore *store;
  gint64   m1, m2;
  gint64   ids[7];
} ListFixture;

static void
list_fixture_setup (ListFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModelRecord) a = qb_test_model_record ("aaaa0000aaaa", "alpha");
  g_autoptr(QbModelRecord) b = qb_test_model_record ("bbbb1111bbbb", "beta");
  const char *formats[7] = { "Q4_K", "Q8_0", "Q2_K", "Q6_K", "Q4_K", "Q5_K", "Q3_K" };
  const QbExperimentStatus status[7] = {
    QB_EXPERIMENT_DONE, QB_EXPERIMENT_DONE, QB_EXPERIMENT_DONE, QB_EXPERIMENT_CANCELLED,
    QB_EXPERIMENT_DONE, QB_EXPERIMENT_FAILED, QB_EXPERIMENT_RUNNING,
  };
  const char *names[7] = { "q4 all", "q8 all", "tiny q2", "q6 cancelled", "100% q4_k (b)",
                           "q5 failed", "q3 running" };

  f->store = new_store ();
  for (guint i = 0; i < 7; i++)
    {
      f->ids[i] = qb_test_store_run (f->store, i == 4 ? b : a, names[i], formats[i], 3 + i,
                                     status[i]);
    }
  f->m1 = qb_store_find_model (f->store, "alpha", &error);
  g_assert_no_error (error);
  f->m2 = qb_store_find_model (f->store, "bbbb1111", &error);
  g_assert_no_error (error);
  {
    const char *t1[] = { "keep", "q4", NULL };
    const char *t2[] = { "keep", NULL };
    qb_store_add_tags (f->store, f->ids[0], t1, &error);
    g_assert_no_error (error);
    qb_store_add_tags (f->store, f->ids[1], t2, &error);
    g_assert_no_error (error);
    qb_store_set_notes (f->store, f->ids[2], "Smallest that still works?", &error);
    g_assert_no_error (error);
  }
}

static void
list_fixture_teardown (ListFixture *f, gconstpointer data)
{
  qb_store_unref (f->store);
}

static GPtrArray *
query (ListFixture *f, QbExperimentQuery *q, guint expected)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *list = qb_store_list_experiments (f->store, q, &error);
  guint count = 0;

  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, expected);
  if (q->limit == 0 && q->offset == 0)
    {
      g_assert_true (qb_store_count_experiments (f->store, q, &count, &error));
      g_assert_cmpuint (count, ==, expected);
    }
  return list;
}

static void
test_list_filters (ListFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  QbExperimentQuery q;
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(GPtrArray) l = NULL;

  qb_experiment_query_init (&q);
  all = query (f, &q, 7);
  /* Newest first by default. */
  for (guint i = 0; i < 7; i++)
    g_assert_cmpint (((QbExperiment *) all->pdata[i])->id, ==, f->ids[6 - i]);
  /* Lists leave the plan out. */
  g_assert_null (((QbExperiment *) all->pdata[0])->plan_json);
  g_assert_cmpstr (((QbExperiment *) all->pdata[2])->model_name, ==, "beta");

  q.model_id = f->m2;
  l = query (f, &q, 1);
  g_assert_cmpint (((QbExperiment *) l->pdata[0])->id, ==, f->ids[4]);
  g_clear_pointer (&l, g_ptr_array_unref);

  qb_experiment_query_init (&q);
  q.tag = "keep";
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 2);
  q.tag = "q4";
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 1);
  g_assert_cmpstrv (((QbExperiment *) l->pdata[0])->tags, ((const char *[]) { "keep", "q4", NULL }));
  q.tag = "kee";                          /* tags match exactly */
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 0);

  qb_experiment_query_init (&q);
  q.text = "STILL";                       /* in the notes, any case */
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 1);
  g_assert_cmpint (((QbExperiment *) l->pdata[0])->id, ==, f->ids[2]);
  q.text = "100%";                        /* % is a character, not a wildcard */
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 1);
  q.text = "q%k";
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 0);
  q.text = "beta";                        /* the model's name */
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 1);
  q.text = "kee";                         /* part of a tag */
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 2);

  qb_experiment_query_init (&q);
  q.status = QB_EXPERIMENT_DONE;
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 4);
  q.status = QB_EXPERIMENT_RUNNING;
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 1);
  q.model_id = f->m2;
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 0);

  qb_experiment_query_init (&q);
  q.sort = QB_SORT_ID;
  q.descending = FALSE;
  q.limit = 3;
  q.offset = 2;
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (((QbExperiment *) l->pdata[i])->id, ==, f->ids[2 + i]);
  q.offset = 6;
  g_clear_pointer (&l, g_ptr_array_unref);
  l = query (f, &q, 1);

  g_assert_cmpint (qb_store_find_model (f->store, "nope", &error), ==, 0);
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
}

static int
compare_values (const QbExperiment *a, const QbExperiment *b, QbExperimentSort sort)
{
  double x = NAN, y = NAN;

  switch (sort)
    {
    case QB_SORT_NAME:   return g_ascii_strcasecmp (a->name, b->name);
    case QB_SORT_MODEL:  return g_ascii_strcasecmp (a->model_name, b->model_name);
    case QB_SORT_STATUS: return strcmp (qb_experiment_status_name (a->status),
                                        qb_experiment_status_name (b->status));
    case QB_SORT_CREATED: x = a->created; y = b->created; break;
    case QB_SORT_ID:      x = a->id; y = b->id; break;
    case QB_SORT_TENSORS: x = a->n_tensors_done; y = b->n_tensors_done; break;
    case QB_SORT_SIZE:    x = a->totals.quantized_bytes; y = b->totals.quantized_bytes;
                          if (a->status == QB_EXPERIMENT_RUNNING) x = NAN;
                          if (b->status == QB_EXPERIMENT_RUNNING) y = NAN;
                          break;
    case QB_SORT_BPW:         x = a->totals.bpw; y = b->totals.bpw; break;
    case QB_SORT_COMPRESSION: x = a->totals.compression; y = b->totals.compression; break;
    case QB_SORT_SECONDS:     x = a->totals.seconds; y = b->totals.seconds; break;
    case QB_SORT_SQNR:        x = a->totals.sqnr_db; y = b->totals.sqnr_db; break;
    case QB_SORT_RMSE_REL:    x = a->totals.rmse_rel; y = b->totals.rmse_rel; break;
    case QB_SORT_COSINE_MIN:  x = a->totals.cosine_min; y = b->totals.cosine_min; break;
    case QB_SORT_MAX_ABS_ERR: x = a->totals.max_abs_err; y = b->totals.max_abs_err; break;
    case QB_SORT_OUT_REL_ERR: x = a->totals.out_rel_err; y = b->totals.out_rel_err; break;
    case QB_SORT_PERPLEXITY:  x = a->evaluation ? a->evaluation->perplexity : NAN;
                              y = b->evaluation ? b->evaluation->perplexity : NAN; break;
    case QB_SORT_KLD_MEAN:    x = a->evaluation ? a->evaluation->kld_mean : NAN;
                              y = b->evaluation ? b->evaluation->kld_mean : NAN; break;
    case QB_SORT_N: break;
    }
  /* Missing values sort last whatever the direction: report them as such. */
  if (isnan (x) || isnan (y))
    return isnan (x) == isnan (y) ? 0 : isnan (x) ? 1000 : -1000;
  return x < y ? -1 : x > y;
}

static void
test_list_sort (ListFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  QbEvaluation *ev = qb_evaluation_new ();

  /* Two evaluated experiments, so perplexity sorts have values and gaps. */
  ev->text_hash = g_strdup ("t");
  ev->perplexity = 9.5;
  ev->kld_mean = 0.02;
  qb_store_set_evaluation (f->store, f->ids[0], ev, NULL, &error);
  g_assert_no_error (error);
  ev->perplexity = 8.25;
  ev->kld_mean = 0.01;
  qb_store_set_evaluation (f->store, f->ids[1], ev, NULL, &error);
  g_assert_no_error (error);
  qb_evaluation_free (ev);

  for (guint s = 0; s < QB_SORT_N; s++)
    for (int desc = 0; desc < 2; desc++)
      {
        g_autoptr(GPtrArray) l = NULL;
        QbExperimentQuery q;
        QbExperimentSort parsed;

        g_assert_true (qb_experiment_sort_parse (qb_experiment_sort_name (s), &parsed));
        g_assert_cmpint (parsed, ==, s);
        qb_experiment_query_init (&q);
        q.sort = s;
        q.descending = desc;
        l = qb_store_list_experiments (f->store, &q, &error);
        g_assert_no_error (error);
        g_assert_cmpuint (l->len, ==, 7);
        for (guint i = 1; i < l->len; i++)
          {
            int c = compare_values (l->pdata[i - 1], l->pdata[i], s);
            if (c == 1000 || c == -1000)
              g_assert_cmpint (c, ==, -1000);       /* a value before a gap */
            else if (desc)
              g_assert_cmpint (c, >=, 0);
            else
              g_assert_cmpint (c, <=, 0);
          }
      }
}

/* -- compare and Pareto ---------------------------------------------------------------- */

static void
test_compare (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("c0ffee0001", "m");
  g_autoptr(QbComparison) c = NULL;
  QbExperimentSpec spec = { .plan_json = "{}", .n_tensors = 4 };
  gint64 ids[3];

  for (guint k = 0; k < 3; k++)
    {
      ids[k] = qb_store_begin_experiment (store, model, &spec, &error);
      g_assert_no_error (error);
      /* Experiment k has tensors k .. k+3; formats differ on tensor 2 only. */
      for (guint i = k; i < k + 4; i++)
        {
          g_autofree char *name = g_strdup_printf ("t%u", i);
          g_autoptr(QbTensorResult) r = qb_test_tensor_result (name, i, FALSE, 0);

          g_free (r->format);
          r->format = g_strdup (i == 2 && k == 1 ? "Q8_0" : "Q4_K");
          qb_store_add_tensor_result (store, ids[k], i, 0, r, &error);
          g_assert_no_error (error);
        }
      qb_store_finish_experiment (store, ids[k], QB_EXPERIMENT_DONE, 1, NULL, &error);
      g_assert_no_error (error);
    }
  c = qb_store_compare (store, ids, 3, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (c->n_experiments, ==, 3);
  g_assert_cmpint (c->experiments[1]->id, ==, ids[1]);
  g_assert_cmpuint (c->n_rows, ==, 6);           /* t0 .. t5 */
  for (guint r = 0; r < 6; r++)
    {
      g_autofree char *name = g_strdup_printf ("t%u", r);
      const QbCompareRow *row = &c->rows[r];

      g_assert_cmpstr (row->tensor_name, ==, name);
      g_assert_cmpuint (row->position, ==, r);
      for (guint k = 0; k < 3; k++)
        {
          gboolean has = r >= k && r < k + 4;
          g_assert_true ((row->cells[k] != NULL) == has);
          if (has)
            g_assert_cmpstr (row->cells[k]->result->tensor_name, ==, name);
        }
      /* Only t3 is in all three with one format. */
      g_assert_true (row->differs == (r != 3));
    }
  g_clear_pointer (&c, qb_comparison_free);
  ids[1] = 4242;
  g_assert_null (qb_store_compare (store, ids, 3, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
}

static void
test_pareto_mark (void)
{
  /* (x, y) with higher y better; front: (1,1) (2,5) (4,7) (6,9). */
  QbParetoPoint p[] = {
    { 1, 4.0, 7.0 }, { 2, 2.0, 5.0 }, { 3, 3.0, 4.0 }, { 4, 1.0, 1.0 }, { 5, 6.0, 9.0 },
    { 6, 5.0, 7.0 }, { 7, 2.0, 5.0 }, { 8, 7.0, NAN }, { 9, 2.0, 3.0 },
  };
  const gint64 front_high[] = { 4, 2, 1, 5 };
  guint k = 0;

  qb_pareto_mark (p, G_N_ELEMENTS (p), TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (p); i++)
    {
      if (i > 0)
        g_assert_cmpfloat (p[i - 1].x, <=, p[i].x);
      if (p[i].on_front)
        g_assert_cmpint (p[i].experiment_id, ==, front_high[k++]);
    }
  g_assert_cmpuint (k, ==, G_N_ELEMENTS (front_high));

  /* Lower is better: only (1,1) — nothing else is both larger and lower. */
  qb_pareto_mark (p, G_N_ELEMENTS (p), FALSE);
  k = 0;
  for (guint i = 0; i < G_N_ELEMENTS (p); i++)
    k += p[i].on_front;
  g_assert_cmpuint (k, ==, 1);
  g_assert_true (p[0].on_front && p[0].experiment_id == 4);
  qb_pareto_mark (NULL, 0, TRUE);
}

static void
test_pareto_store (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("ba5eba11", "m");
  g_autoptr(QbModelRecord) other = qb_test_model_record ("0ther0ther", "o");
  const char *formats[] = { "Q2_K", "Q4_K", "Q8_0", "Q6_K" };
  const double rmse[] = { 0.08, 0.02, 0.004, 0.03 };     /* Q6_K: worse than Q4_K yet bigger */
  const double ppl[] = { 12.0, 9.0, 8.5, 9.2 };
  const guint bytes_per_32[] = { 11, 18, 34, 26 };
  gint64 ids[4];
  g_autoptr(GArray) points = NULL;

  for (guint k = 0; k < 4; k++)
    {
      QbExperimentSpec spec = { .name = formats[k], .plan_json = "{}", .n_tensors = 2 };
      g_autoptr(QbEvaluation) ev = qb_evaluation_new ();

      ids[k] = qb_store_begin_experiment (store, model, &spec, &error);
      for (guint i = 0; i < 2; i++)
        {
          g_autofree char *name = g_strdup_printf ("t%u", i);
          g_autoptr(QbTensorResult) r = qb_test_tensor_result (name, i, FALSE, 0);

          r->n_params = 4096;
          r->bytes = 4096 / 32 * bytes_per_32[k];
          r->metrics.rmse_rel = rmse[k];
          r->metrics.sqnr_db = -20 * log10 (rmse[k]);
          qb_store_add_tensor_result (store, ids[k], i, 4096 * 4, r, &error);
          g_assert_no_error (error);
        }
      qb_store_finish_experiment (store, ids[k], QB_EXPERIMENT_DONE, 1, NULL, &error);
      g_assert_no_error (error);
      ev->text_hash = g_strdup ("text");
      ev->perplexity = ppl[k];
      qb_store_set_evaluation (store, ids[k], ev, NULL, &error);
      g_assert_no_error (error);
    }
  /* Not on the front of `model`: another model's run, and an unfinished one. */
  qb_test_store_run (store, other, "other", "Q2_K", 2, QB_EXPERIMENT_DONE);
  qb_test_store_run (store, model, "cancelled", "Q2_K", 1, QB_EXPERIMENT_CANCELLED);

  for (QbMetric m = 0; m < QB_METRIC_N; m++)
    {
      QbMetric parsed;
      g_assert_true (qb_metric_parse (qb_metric_name (m), &parsed));
      g_assert_cmpint (parsed, ==, m);
    }
  g_assert_true (qb_metric_higher_is_better (QB_METRIC_SQNR));
  g_assert_false (qb_metric_higher_is_better (QB_METRIC_PERPLEXITY));

  {
    const QbMetric metrics[] = { QB_METRIC_SQNR, QB_METRIC_RMSE_REL, QB_METRIC_PERPLEXITY };
    const gboolean on_front[3][4] = {
      { TRUE, TRUE, TRUE, FALSE }, { TRUE, TRUE, TRUE, FALSE }, { TRUE, TRUE, TRUE, FALSE },
    };
    for (guint mi = 0; mi < 3; mi++)
      for (QbParetoX x = QB_PARETO_X_BYTES; x <= QB_PARETO_X_BPW; x++)
        {
          points = qb_store_pareto (store, qb_store_find_model (store, "m", NULL), x, metrics[mi], &error);
          g_assert_no_error (error);
          g_assert_cmpuint (points->len, ==, 4);
          for (guint i = 0; i < 4; i++)
            {
              const QbParetoPoint *p = &g_array_index (points, QbParetoPoint, i);
              guint k = 0;
              while (ids[k] != p->experiment_id)
                k++;
              g_assert_true (p->on_front == on_front[mi][k]);
            }
          g_clear_pointer (&points, g_array_unref);
        }
  }
  /* Q6_K gets the best perplexity of all: then it is on that front. */
  {
    g_autoptr(QbEvaluation) ev = qb_evaluation_new ();
    ev->text_hash = g_strdup ("text");
    ev->perplexity = 8.0;
    qb_store_set_evaluation (store, ids[3], ev, NULL, &error);
    g_assert_no_error (error);
    points = qb_store_pareto (store, 0, QB_PARETO_X_BYTES, QB_METRIC_PERPLEXITY, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (points->len, ==, 4);   /* experiments without perplexity left out */
    for (guint i = 0; i < 4; i++)
      {
        const QbParetoPoint *p = &g_array_index (points, QbParetoPoint, i);
        g_assert_true (p->on_front == (p->experiment_id != ids[2]));   /* Q8_0 now dominated */
      }
    g_clear_pointer (&points, g_array_unref);
  }
  /* Every model: the other model's Q2_K run is on the SQNR points too. */
  points = qb_store_pareto (store, 0, QB_PARETO_X_BPW, QB_METRIC_SQNR, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (points->len, ==, 5);
}

/* -- edits -------------------------------------------------------------------------------- */

static gint64
count_rows (QbStore *store, const char *sql, gint64 id)
{
  sqlite3_stmt *stmt = NULL;
  gint64 n;

  g_assert_cmpint (sqlite3_prepare_v2 (store->db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_int64 (stmt, 1, id);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  n = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return n;
}

static void
test_edit (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("ed17ed17", "m");
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(QbEvaluation) ev = qb_evaluation_new ();
  g_auto(GStrv) tags = NULL;
  const char *add[] = { "b", "a", "b", NULL };
  const char *remove[] = { "b", "absent", NULL };
  const char *bad[] = { "  ", NULL };
  gint64 id = qb_test_store_run (store, model, "first", "Q4_K", 3, QB_EXPERIMENT_DONE);
  gint64 keep = qb_test_store_run (store, model, "second", "Q4_K", 2, QB_EXPERIMENT_DONE);

  qb_store_rename_experiment (store, id, "  renamed ", &error);
  g_assert_no_error (error);
  g_assert_false (qb_store_rename_experiment (store, id, " ", &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (qb_store_rename_experiment (store, 999, "x", &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  qb_store_set_notes (store, id, "line 1\nline 2, \"quoted\"", &error);
  g_assert_no_error (error);
  qb_store_add_tags (store, id, add, &error);
  g_assert_no_error (error);
  g_assert_false (qb_store_add_tags (store, id, bad, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (qb_store_add_tags (store, 999, add, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  qb_store_add_tags (store, keep, (const char *[]) { "a", NULL }, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_cmpstr (e->name, ==, "renamed");
  g_assert_cmpstr (e->notes, ==, "line 1\nline 2, \"quoted\"");
  g_assert_cmpstrv (e->tags, ((const char *[]) { "a", "b", NULL }));
  g_clear_pointer (&e, qb_experiment_free);

  qb_store_remove_tags (store, id, remove, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_cmpstrv (e->tags, ((const char *[]) { "a", NULL }));
  tags = qb_store_list_tags (store, &error);
  g_assert_cmpstrv (tags, ((const char *[]) { "a", NULL }));   /* "b" is used by nobody now */
  g_clear_pointer (&tags, g_strfreev);

  /* Deleting cascades to tensors, histograms, evaluations and tags. */
  ev->text_hash = g_strdup ("h");
  qb_evaluation_set_chunks (ev, 2, (double[]) { 1, 2 }, NULL);
  qb_store_set_evaluation (store, id, ev, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (count_rows (store, "SELECT count(*) FROM tensor_result WHERE experiment_id = ?1", id), ==, 3);
  qb_store_delete_experiment (store, id, &error);
  g_assert_no_error (error);
  g_assert_null (qb_store_get_experiment (store, id, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpint (count_rows (store, "SELECT count(*) FROM tensor_result WHERE experiment_id = ?1", id), ==, 0);
  g_assert_cmpint (count_rows (store, "SELECT count(*) FROM tensor_data WHERE tensor_id NOT IN "
                                      "(SELECT id FROM tensor_result) AND ?1", 1), ==, 0);
  g_assert_cmpint (count_rows (store, "SELECT count(*) FROM evaluation WHERE experiment_id = ?1", id), ==, 0);
  g_assert_cmpint (count_rows (store, "SELECT count(*) FROM evaluation_chunk", 0), ==, 0);
  g_assert_cmpint (count_rows (store, "SELECT count(*) FROM experiment_tag WHERE experiment_id = ?1", id), ==, 0);
  g_assert_cmpint (count_rows (store, "SELECT count(*) FROM tensor_result WHERE experiment_id = ?1", keep), ==, 2);
  tags = qb_store_list_tags (store, &error);
  g_assert_cmpstrv (tags, ((const char *[]) { "a", NULL }));   /* still used by `keep` */
  g_assert_false (qb_store_delete_experiment (store, id, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* The model stays: other experiments and later runs use it. */
  g_assert_cmpint (qb_store_find_model (store, "ed17ed17", &error), >, 0);
}

/* -- evaluations and calibration sets ------------------------------------------------------- */

/* Replacing the tags is one transaction: one invalid tag keeps the old ones. */
static void
test_set_tags (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("5e7da65", "m");
  g_autoptr(QbExperiment) e = NULL;
  g_auto(GStrv) tags = NULL;
  gint64 id = qb_test_store_run (store, model, "tagged", "Q4_K", 2, QB_EXPERIMENT_DONE);

  g_assert_true (qb_store_set_tags (store, id, (const char *[]) { "old", "kept", NULL }, &error));
  g_assert_no_error (error);
  g_assert_false (qb_store_set_tags (store, id, (const char *[]) { "new", "bad\x01", NULL },
                                     &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_clear_error (&error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (e->tags, ((const char *[]) { "kept", "old", NULL }));
  g_clear_pointer (&e, qb_experiment_free);

  g_assert_true (qb_store_set_tags (store, id, (const char *[]) { " new ", "kept", NULL }, &error));
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_cmpstrv (e->tags, ((const char *[]) { "kept", "new", NULL }));
  g_clear_pointer (&e, qb_experiment_free);
  tags = qb_store_list_tags (store, &error);
  g_assert_cmpstrv (tags, ((const char *[]) { "kept", "new", NULL }));   /* "old" went */
  g_clear_pointer (&tags, g_strfreev);

  g_assert_true (qb_store_set_tags (store, id, (const char *[]) { NULL }, &error));
  e = qb_store_get_experiment (store, id, &error);
  g_assert_cmpuint (g_strv_length (e->tags), ==, 0);
  g_assert_false (qb_store_set_tags (store, 999, (const char *[]) { "x", NULL }, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
}

static void
test_evaluation (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("e7a1e7a1", "m");
  g_autoptr(QbEvaluation) ev = qb_evaluation_new ();
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(GPtrArray) list = NULL;
  gint64 id = qb_test_store_run (store, model, "x", "Q4_K", 2, QB_EXPERIMENT_DONE);
  gint64 first = 0, again = 0, other = 0;
  const double ppl[] = { 10.5, 11.25, 9.75 }, kld[] = { 0.01, NAN, 0.03 };

  ev->created = 1700000000000000;
  ev->text_name = g_strdup ("tinystories-val.txt");
  ev->text_hash = g_strdup ("5fc1fb01");
  ev->n_ctx = 128;
  ev->n_chunks = 3;
  ev->n_tokens = 381;
  ev->perplexity = 10.49;
  ev->perplexity_err = 0.12;
  ev->kld_mean = 0.02;
  ev->kld_median = 0.015;
  ev->kld_p90 = 0.04;
  ev->kld_p95 = 0.05;
  ev->kld_p99 = 0.09;
  ev->kld_max = 0.4;
  ev->top1_agreement = 0.93;
  ev->dp_rms = 0.021;
  ev->device = g_strdup ("opencl:0 (Some GPU)");
  qb_evaluation_set_chunks (ev, 3, ppl, kld);
  qb_store_set_evaluation (store, id, ev, &first, &error);
  g_assert_no_error (error);

  /* The same text, context and chunks: replaced, chunks too. */
  ev->created++;
  ev->perplexity = 10.4;
  qb_evaluation_set_chunks (ev, 2, ppl, NULL);
  qb_store_set_evaluation (store, id, ev, &again, &error);
  g_assert_no_error (error);
  g_assert_cmpint (again, ==, first);
  list = qb_store_list_evaluations (store, id, &error);
  g_assert_cmpuint (list->len, ==, 1);
  g_assert_cmpuint (((QbEvaluation *) list->pdata[0])->n_chunk_results, ==, 2);
  g_assert_true (isnan (((QbEvaluation *) list->pdata[0])->chunk_kld[1]));
  g_clear_pointer (&list, g_ptr_array_unref);

  /* Another context is another evaluation; the newest is the one shown. */
  ev->created++;
  ev->n_ctx = 256;
  ev->perplexity = 9.0;
  qb_evaluation_set_chunks (ev, 3, ppl, kld);
  qb_store_set_evaluation (store, id, ev, &other, &error);
  g_assert_no_error (error);
  g_assert_cmpint (other, !=, first);
  list = qb_store_list_evaluations (store, id, &error);
  g_assert_cmpuint (list->len, ==, 2);
  {
    const QbEvaluation *got = list->pdata[0];
    g_assert_cmpint (got->id, ==, other);
    g_assert_cmpstr (got->text_name, ==, "tinystories-val.txt");
    g_assert_cmpuint (got->n_ctx, ==, 256);
    g_assert_cmpuint (got->n_tokens, ==, 381);
    g_assert_cmpfloat (got->kld_p99, ==, 0.09);
    g_assert_cmpfloat (got->top1_agreement, ==, 0.93);
    g_assert_cmpstr (got->device, ==, "opencl:0 (Some GPU)");
    g_assert_true (isnan (got->base_perplexity));
    g_assert_cmpuint (got->n_chunk_results, ==, 3);
    g_assert_cmpmem (got->chunk_ppl, 3 * sizeof (double), ppl, 3 * sizeof (double));
    g_assert_cmpfloat (got->chunk_kld[2], ==, 0.03);
    g_assert_true (isnan (got->chunk_kld[1]));
  }
  e = qb_store_get_experiment (store, id, &error);
  g_assert_nonnull (e->evaluation);
  g_assert_cmpfloat (e->evaluation->perplexity, ==, 9.0);
  g_assert_cmpfloat (qb_experiment_metric (e, QB_METRIC_PERPLEXITY), ==, 9.0);
  g_assert_cmpfloat (qb_experiment_metric (e, QB_METRIC_TOP1), ==, 0.93);

  g_assert_false (qb_store_set_evaluation (store, 999, ev, NULL, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_pointer (&ev->text_hash, g_free);
  g_assert_false (qb_store_set_evaluation (store, id, ev, NULL, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
}

static void
test_calibration (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("ca1bca1b", "m");
  g_autoptr(QbCalibrationSet) set = qb_calibration_set_new ();
  g_autoptr(QbCalibrationSet) got = NULL;
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(GPtrArray) sets = NULL;
  gint64 id1 = 0, id2 = 0, exp;
  QbExperimentSpec spec = { .plan_json = "{}" };

  set->name = g_strdup ("tinystories 64×128");
  g_strfreev (set->sources);
  set->sources = g_strdupv ((char *[]) { "/data/a.txt", "/data/b, c.txt", NULL });
  set->hash = g_strdup ("c0de");
  set->n_tokens = 8192;
  set->chunk_len = 128;
  set->n_chunks = 64;
  set->seeded = TRUE;
  set->seed = G_MAXUINT64 - 5;          /* survives the trip through a signed column */
  qb_store_add_calibration_set (store, set, &id1, &error);
  g_assert_no_error (error);
  qb_store_add_calibration_set (store, set, &id2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id1, ==, id2);
  got = qb_store_get_calibration_set (store, id1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (got->name, ==, set->name);
  g_assert_cmpstrv (got->sources, set->sources);
  g_assert_cmpuint (got->seed, ==, set->seed);
  g_assert_true (got->seeded);
  g_assert_cmpuint (got->n_chunks, ==, 64);
  g_assert_cmpint (got->created, >, 0);
  sets = qb_store_list_calibration_sets (store, &error);
  g_assert_cmpuint (sets->len, ==, 1);

  spec.calibration_set_id = id1;
  exp = qb_store_begin_experiment (store, model, &spec, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, exp, &error);
  g_assert_cmpint (e->calibration_set_id, ==, id1);
  g_clear_pointer (&e, qb_experiment_free);
  qb_store_set_calibration_set (store, exp, 0, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, exp, &error);
  g_assert_cmpint (e->calibration_set_id, ==, 0);
  g_clear_pointer (&e, qb_experiment_free);
  qb_store_set_calibration_set (store, exp, id1, &error);
  g_assert_no_error (error);
  /* A link to a set that does not exist breaks a foreign key. */
  g_assert_false (qb_store_set_calibration_set (store, exp, 777, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (qb_store_set_calibration_set (store, 999, id1, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_pointer (&got, qb_calibration_set_free);
  g_assert_null (qb_store_get_calibration_set (store, 777, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
}

static void
test_models (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) a = qb_test_model_record ("abcdef012345", "same");
  g_autoptr(QbModelRecord) b = qb_test_model_record ("abcdef999999", "same");
  g_autoptr(QbModelRecord) got = NULL;
  g_autoptr(GPtrArray) models = NULL;
  gint64 ida = 0, idb = 0, again = 0;

  g_free (b->path);
  b->path = g_strdup ("/models/same-b.gguf");
  qb_store_add_model (store, a, &ida, &error);
  g_assert_no_error (error);
  qb_store_add_model (store, b, &idb, &error);
  g_assert_no_error (error);
  /* Seen again at another path: one record, the path updated. */
  g_free (a->path);
  a->path = g_strdup ("/elsewhere/same.gguf");
  qb_store_add_model (store, a, &again, &error);
  g_assert_cmpint (again, ==, ida);
  got = qb_store_get_model (store, ida, &error);
  g_assert_cmpstr (got->path, ==, "/elsewhere/same.gguf");
  /* Stored as JSON the store writes it: the fewest exact digits. */
  g_assert_cmpstr (got->arch_json, ==, "{\"family\":\"llama\",\"n_layer\":5,\"n_embd\":64,\"rms_eps\":1e-05}");
  g_assert_cmpint (got->n_params, ==, a->n_params);
  g_assert_cmpint (got->first_seen, >, 0);
  models = qb_store_list_models (store, &error);
  g_assert_cmpuint (models->len, ==, 2);
  g_assert_cmpint (((QbModelRecord *) models->pdata[0])->id, ==, ida);   /* seen last */

  g_assert_cmpint (qb_store_find_model (store, "abcdef0", &error), ==, ida);
  g_assert_cmpint (qb_store_find_model (store, "/elsewhere/same.gguf", &error), ==, ida);
  g_assert_cmpint (qb_store_find_model (store, "same.gguf", &error), ==, ida);
  g_assert_no_error (error);
  {
    g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT, idb);
    g_assert_cmpint (qb_store_find_model (store, text, &error), ==, idb);
  }
  g_assert_cmpint (qb_store_find_model (store, "same", &error), ==, 0);
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);   /* ambiguous */
  g_clear_error (&error);
  g_assert_cmpint (qb_store_find_model (store, "abcdef", &error), ==, 0);
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
}

/* A real model's record: what the UI stores when it runs a plan on it. */
static void
test_model_record_from_model (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbModelRecord) m = NULL;
  g_autoptr(QbModelRecord) again = NULL;
  g_autoptr(QbModelRecord) stored = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *arch;
  gint64 id = 0, id2 = 0;

  if (path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  m = qb_model_record_new_from_model (model);
  g_assert_cmpstr (m->path, ==, path);
  g_assert_cmpuint (strlen (m->fingerprint), ==, 64);
  g_assert_cmpuint (m->n_tensors, ==, 48);
  g_assert_cmpint (m->n_params, >, 200000);
  g_assert_cmpuint (m->file_size, >, 0);
  g_assert_cmpstr (m->family, ==, "llama");
  g_assert_true (json_parser_load_from_data (parser, m->arch_json, -1, &error));
  arch = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_int_member (arch, "n_layer"), ==, 5);
  g_assert_cmpint (json_object_get_int_member (arch, "n_embd"), ==, 64);
  g_assert_cmpint (json_object_get_int_member (arch, "n_head_kv"), ==, 4);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (arch, "rms_eps"), 1e-5, 1e-12);

  /* Opened again, the same model is the same record. */
  g_clear_object (&model);
  model = qb_model_open (path, &error);
  again = qb_model_record_new_from_model (model);
  g_assert_cmpstr (again->fingerprint, ==, m->fingerprint);
  store = new_store ();
  qb_store_add_model (store, m, &id, &error);
  g_assert_no_error (error);
  qb_store_add_model (store, again, &id2, &error);
  g_assert_cmpint (id, ==, id2);
  stored = qb_store_get_model (store, id, &error);
  g_assert_cmpstr (stored->name, ==, m->name);
  g_assert_cmpint (stored->n_params, ==, m->n_params);
}

/* -- BLOB encodings ------------------------------------------------------------------------- */

static void
test_blob (void)
{
  g_autoptr(QbTensorResult) r = qb_test_tensor_result ("t", 3, TRUE, 100);
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(QbHistogram) back = NULL;
  g_autoptr(QbHistogram) big = qb_histogram_new (4, -1, 1);
  g_autoptr(GError) error = NULL;
  g_autofree float *lo = NULL, *hi = NULL;
  guint n = 0;

  qb_histogram_encode (r->hist_original, buf);
  g_assert_cmpuint (buf->len, <, 2 + 3 + 16 + 512 * 3);    /* well under 8 bytes a count */
  back = qb_histogram_decode (buf->data, buf->len, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (back->counts, 512 * 8, r->hist_original->counts, 512 * 8);
  g_assert_cmpfloat (back->lo, ==, r->hist_original->lo);

  /* Every prefix is refused as truncated, and so is a byte too many. */
  for (guint len = 0; len < buf->len; len++)
    {
      g_assert_null (qb_histogram_decode (buf->data, len, &error));
      g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT);
      g_clear_error (&error);
    }
  g_byte_array_append (buf, (guint8 *) "x", 1);
  g_assert_null (qb_histogram_decode (buf->data, buf->len, &error));
  g_assert_nonnull (strstr (error->message, "unexpected bytes"));
  g_clear_error (&error);
  buf->data[1] = 2;
  g_assert_null (qb_histogram_decode (buf->data, buf->len, &error));
  g_assert_nonnull (strstr (error->message, "version 2"));
  g_clear_error (&error);
  buf->data[0] = 'C';
  g_assert_null (qb_histogram_decode (buf->data, buf->len, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT);
  g_clear_error (&error);

  /* Counts up to 2^64 - 1 survive; an eleventh varint byte does not. */
  big->counts[0] = G_MAXUINT64;
  big->counts[1] = 0;
  big->counts[2] = 127;
  big->counts[3] = 128;
  g_byte_array_set_size (buf, 0);
  qb_histogram_encode (big, buf);
  g_clear_pointer (&back, qb_histogram_free);
  back = qb_histogram_decode (buf->data, buf->len, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (back->counts, 32, big->counts, 32);
  {
    const guint8 overflow[] = { 'H', 1, 1, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0xf0,0x3f,
                                0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0x02 };
    const guint8 huge[] = { 'H', 1, 0xff, 0xff, 0xff, 0x7f };
    const guint8 zero_bins[] = { 'H', 1, 0 };
    g_assert_null (qb_histogram_decode (overflow, sizeof overflow, &error));
    g_assert_nonnull (strstr (error->message, "overflows"));
    g_clear_error (&error);
    g_assert_null (qb_histogram_decode (huge, sizeof huge, &error));
    g_assert_nonnull (strstr (error->message, "out of range"));
    g_clear_error (&error);
    g_assert_null (qb_histogram_decode (zero_bins, sizeof zero_bins, &error));
    g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT);
    g_clear_error (&error);
  }

  g_byte_array_set_size (buf, 0);
  qb_channel_ranges_encode (r->n_channels, r->channel_min, r->channel_max, buf);
  g_assert_cmpuint (buf->len, ==, 2 + 1 + 100 * 8);
  g_assert_true (qb_channel_ranges_decode (buf->data, buf->len, &n, &lo, &hi, &error));
  g_assert_cmpuint (n, ==, 100);
  g_assert_cmpmem (lo, 400, r->channel_min, 400);
  g_assert_cmpmem (hi, 400, r->channel_max, 400);
  g_clear_pointer (&lo, g_free);
  g_clear_pointer (&hi, g_free);
  g_assert_false (qb_channel_ranges_decode (buf->data, buf->len - 1, &n, &lo, &hi, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT);
  g_clear_error (&error);
  {
    const guint8 lying[] = { 'C', 1, 0xff, 0xff, 0xff, 0x0f };   /* 2^32-1 channels, no data */
    g_assert_false (qb_channel_ranges_decode (lying, sizeof lying, &n, &lo, &hi, &error));
    g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT);
    g_clear_error (&error);
  }
}

/* A damaged BLOB in the database is reported with the tensor's name. */
static void
test_blob_damaged_in_db (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("b10bb10b", "m");
  g_autoptr(QbTensorResult) r = qb_test_tensor_result ("blk.0.attn_v.weight", 1, TRUE, 8);
  g_autoptr(GPtrArray) tensors = NULL;
  QbExperimentSpec spec = { .plan_json = "{}" };
  gint64 id = qb_store_begin_experiment (store, model, &spec, &error);

  qb_store_add_tensor_result (store, id, 0, 0, r, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_exec (store->db, "UPDATE tensor_data SET hist_error = x'4801ff'",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  tensors = qb_store_get_tensors (store, id, &error);
  g_assert_false (qb_store_load_tensor_data (store, tensors->pdata[0], &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "blk.0.attn_v.weight"));
  g_assert_nonnull (strstr (error->message, "error histogram"));
}

/* -- threads ---------------------------------------------------------------------------------- */

typedef struct {
  char     *path;
  GMutex    lock;
  GCond     cond;
  int       stage;      /* 1: the writer holds a write transaction; 2: the reader is done */
  gint64    model_id;
} Handshake;

static void
wait_stage (Handshake *h, int stage)
{
  g_mutex_lock (&h->lock);
  while (h->stage < stage)
    g_cond_wait (&h->cond, &h->lock);
  g_mutex_unlock (&h->lock);
}

static void
set_stage (Handshake *h, int stage)
{
  g_mutex_lock (&h->lock);
  h->stage = stage;
  g_cond_broadcast (&h->cond);
  g_mutex_unlock (&h->lock);
}

/* Holds a write transaction open (an experiment inserted, not committed)
 * until the reader is done. */
static gpointer
holding_writer (gpointer data)
{
  Handshake *h = data;
  sqlite3 *db = NULL;
  g_autofree char *insert = g_strdup_printf (
    "INSERT INTO experiment (uuid, model_id, name, created, updated, status, plan_json, threads, "
    "backend, n_tensors) VALUES ('u-pending', %" G_GINT64_FORMAT ", 'pending', 1, 1, 'running', "
    "'{}', 1, 'cpu', 0)", h->model_id);

  g_assert_cmpint (sqlite3_open (h->path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, insert, NULL, NULL, NULL), ==, SQLITE_OK);
  set_stage (h, 1);
  wait_stage (h, 2);
  g_assert_cmpint (sqlite3_exec (db, "COMMIT", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  return NULL;
}

static void
test_reader_during_write (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbStore) reader = NULL;
  g_autoptr(QbModelRecord) model = qb_test_model_record ("4ead4ead", "m");
  gint64 id = qb_test_store_run (store, model, "done", "Q4_K", 5, QB_EXPERIMENT_DONE);
  Handshake h = { .path = (char *) qb_store_get_path (store) };
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) tensors = NULL;
  GThread *writer;
  guint count = 0;

  h.model_id = qb_store_find_model (store, "4ead4ead", &error);
  g_mutex_init (&h.lock);
  g_cond_init (&h.cond);
  reader = qb_store_open_connection (store, &error);
  g_assert_no_error (error);
  writer = g_thread_new ("writer", holding_writer, &h);
  wait_stage (&h, 1);
  /* The writer holds the database's write lock: reads go on, seeing the
   * last commit.  Were they to wait, they would fail after the busy
   * timeout and the assertions below would say so. */
  list = qb_store_list_experiments (reader, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 1);
  tensors = qb_store_get_tensors (reader, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tensors->len, ==, 5);
  g_assert_true (qb_store_load_tensor_data (reader, tensors->pdata[0], &error));
  g_assert_true (qb_store_count_experiments (reader, NULL, &count, &error));
  g_assert_cmpuint (count, ==, 1);
  set_stage (&h, 2);
  g_thread_join (writer);
  g_assert_true (qb_store_count_experiments (reader, NULL, &count, &error));
  g_assert_cmpuint (count, ==, 2);
  g_mutex_clear (&h.lock);
  g_cond_clear (&h.cond);
}

typedef struct {
  QbStore       *store;
  QbModelRecord *model;
  guint          n_tensors;
  gint64         id;
  gint           done;       /* atomic */
} WriterJob;

/* A run's writes, as the job's tensor-done callback would make them. */
static gpointer
run_writer (gpointer data)
{
  WriterJob *w = data;
  g_autoptr(GError) error = NULL;
  QbExperimentSpec spec = { .name = "threaded", .plan_json = "{}", .n_tensors = w->n_tensors };

  w->id = qb_store_begin_experiment (w->store, w->model, &spec, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < w->n_tensors; i++)
    {
      g_autofree char *name = g_strdup_printf ("tensor.%u", i);
      g_autoptr(QbTensorResult) r = qb_test_tensor_result (name, i, TRUE, 16);
      qb_store_add_tensor_result (w->store, w->id, i, 0, r, &error);
      g_assert_no_error (error);
    }
  qb_store_finish_experiment (w->store, w->id, QB_EXPERIMENT_DONE, 1, NULL, &error);
  g_assert_no_error (error);
  g_atomic_int_set (&w->done, 1);
  return NULL;
}

typedef struct {
  QbStore   *store;
  WriterJob *writers;
  guint      n_writers;
  guint      n_reads;
} ReaderJob;

/* Reads until every writer is done; each read must succeed and never see
 * an experiment lose tensors. */
static gpointer
run_reader (gpointer data)
{
  ReaderJob *r = data;
  g_autoptr(GError) error = NULL;
  guint last_done[8] = { 0 };
  gboolean all_done;

  do
    {
      g_autoptr(GPtrArray) list = NULL;

      all_done = TRUE;
      for (guint i = 0; i < r->n_writers; i++)
        all_done &= g_atomic_int_get (&r->writers[i].done);
      list = qb_store_list_experiments (r->store, NULL, &error);
      g_assert_no_error (error);
      for (guint i = 0; i < list->len; i++)
        {
          QbExperiment *e = list->pdata[i];
          g_autoptr(GPtrArray) tensors = qb_store_get_tensors (r->store, e->id, &error);

          g_assert_no_error (error);
          g_assert_cmpuint (e->id, <=, G_N_ELEMENTS (last_done));
          g_assert_cmpuint (tensors->len, >=, last_done[e->id - 1]);
          last_done[e->id - 1] = tensors->len;
          if (tensors->len > 0)
            g_assert_true (qb_store_load_tensor_data (r->store, tensors->pdata[tensors->len - 1], &error));
        }
      r->n_reads++;
    }
  while (!all_done);
  return NULL;
}

static void
test_writers_and_readers (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("7h4ead5", "m");
  WriterJob writers[2] = { { 0 }, { 0 } };
  ReaderJob readers[2] = { { 0 }, { 0 } };
  GThread *threads[4];
  g_autoptr(GPtrArray) list = NULL;

  /* A UI and a command line: two writers and two readers, each with its
   * own connection. */
  for (guint i = 0; i < 2; i++)
    {
      writers[i].store = qb_store_open_connection (store, &error);
      g_assert_no_error (error);
      writers[i].model = model;
      writers[i].n_tensors = 40;
      readers[i].store = qb_store_open_connection (store, &error);
      g_assert_no_error (error);
      readers[i].writers = writers;
      readers[i].n_writers = 2;
    }
  for (guint i = 0; i < 2; i++)
    {
      threads[i] = g_thread_new ("writer", run_writer, &writers[i]);
      threads[2 + i] = g_thread_new ("reader", run_reader, &readers[i]);
    }
  for (guint i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(QbExperiment) e = qb_store_get_experiment (store, writers[i].id, &error);
      g_assert_no_error (error);
      g_assert_cmpint (e->status, ==, QB_EXPERIMENT_DONE);
      g_assert_cmpuint (e->n_tensors_done, ==, 40);
      g_assert_cmpuint (readers[i].n_reads, >, 0);
      qb_store_unref (writers[i].store);
      qb_store_unref (readers[i].store);
    }
}

/* One QbStore shared by threads: its lock serializes them. */
static void
test_shared_connection (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbModelRecord) model = qb_test_model_record ("5ba7ed00", "m");
  WriterJob writers[4];
  GThread *threads[4];
  g_autoptr(GPtrArray) list = NULL;

  for (guint i = 0; i < 4; i++)
    {
      writers[i] = (WriterJob) { .store = store, .model = model, .n_tensors = 15 };
      threads[i] = g_thread_new ("writer", run_writer, &writers[i]);
    }
  for (guint i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  list = qb_store_list_experiments (store, NULL, &error);
  g_assert_cmpuint (list->len, ==, 4);
  for (guint i = 0; i < 4; i++)
    g_assert_cmpuint (((QbExperiment *) list->pdata[i])->n_tensors_done, ==, 15);
}

/* -- interrupted runs ------------------------------------------------------------------------ */

static void
set_owner (QbStore *store, gint64 id, const char *assignments)
{
  g_autofree char *sql = g_strdup_printf ("UPDATE experiment SET %s WHERE id = %" G_GINT64_FORMAT,
                                          assignments, id);
  g_assert_cmpint (sqlite3_exec (store->db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
}

static QbExperimentStatus
status_of (QbStore *store, gint64 id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbExperiment) e = qb_store_get_experiment (store, id, &error);

  g_assert_no_error (error);
  return e->status;
}

static void
test_recover (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = new_store ();
  g_autoptr(QbStore) second = NULL;
  g_autoptr(QbModelRecord) model = qb_test_model_record ("dead0001", "m");
  g_autoptr(QbExperiment) e = NULL;
  g_autofree char *dead_pid = NULL;
  gint64 mine, dead, foreign, rebooted, recycled;
  guint marked = 99;
  pid_t child;
  int status;

  mine = qb_test_store_run (store, model, "mine", "Q4_K", 3, QB_EXPERIMENT_RUNNING);
  dead = qb_test_store_run (store, model, "dead", "Q4_K", 4, QB_EXPERIMENT_RUNNING);
  foreign = qb_test_store_run (store, model, "foreign", "Q4_K", 1, QB_EXPERIMENT_RUNNING);
  rebooted = qb_test_store_run (store, model, "rebooted", "Q4_K", 1, QB_EXPERIMENT_RUNNING);
  recycled = qb_test_store_run (store, model, "recycled", "Q4_K", 1, QB_EXPERIMENT_RUNNING);

  /* A pid that existed and is gone: a child that exited and was reaped. */
  child = fork ();
  if (child == 0)
    _exit (0);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  dead_pid = g_strdup_printf ("owner_pid = %d", child);
  set_owner (store, dead, dead_pid);
  set_owner (store, foreign, "owner_pid = 1, owner_host = 'another-machine'");
  set_owner (store, rebooted, "owner_boot = 'another-boot'");
  set_owner (store, recycled, "owner_start = owner_start + 1");   /* our pid, once someone else's */

  /* Opening the database again — a UI beside a command line — leaves a
   * live process's run alone and marks the dead ones. */
  second = qb_store_open (qb_store_get_path (store), &error);
  g_assert_no_error (error);
  g_assert_cmpint (status_of (second, mine), ==, QB_EXPERIMENT_RUNNING);
  g_assert_cmpint (status_of (second, foreign), ==, QB_EXPERIMENT_RUNNING);
  g_assert_cmpint (status_of (second, dead), ==, QB_EXPERIMENT_INTERRUPTED);
  g_assert_cmpint (status_of (second, rebooted), ==, QB_EXPERIMENT_INTERRUPTED);
  g_assert_cmpint (status_of (second, recycled), ==, QB_EXPERIMENT_INTERRUPTED);
  e = qb_store_get_experiment (second, dead, &error);
  g_assert_cmpuint (e->n_tensors_done, ==, 4);
  g_assert_cmpint (e->totals.n_params, >, 0);        /* totals over what it stored */
  g_assert_cmpint (e->finished, ==, e->updated);
  g_assert_false (isnan (e->totals.bpw));
  g_assert_true (qb_store_recover_interrupted (second, &marked, &error));
  g_assert_cmpuint (marked, ==, 0);

  /* The live run goes on and finishes normally. */
  qb_store_finish_experiment (store, mine, QB_EXPERIMENT_DONE, 2, NULL, &error);
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_autofree char *home = NULL;

  /* GLib reads XDG_DATA_HOME once: point it at a test folder first. */
  g_test_init (&argc, &argv, NULL);
  home = qb_test_tmpdir ();
  xdg_data_home = g_build_filename (home, "data", NULL);
  g_setenv ("XDG_DATA_HOME", xdg_data_home, TRUE);

  g_test_add_func ("/store/create", test_create);
  g_test_add_func ("/store/default-path", test_default_path);
  g_test_add_func ("/store/run", test_run);
  g_test_add_func ("/store/failed-and-bad-input", test_failed_and_bad_input);
  g_test_add ("/store/list/filters", ListFixture, NULL, list_fixture_setup, test_list_filters,
              list_fixture_teardown);
  g_test_add ("/store/list/sort", ListFixture, NULL, list_fixture_setup, test_list_sort,
              list_fixture_teardown);
  g_test_add_func ("/store/compare", test_compare);
  g_test_add_func ("/store/pareto/mark", test_pareto_mark);
  g_test_add_func ("/store/pareto/store", test_pareto_store);
  g_test_add_func ("/store/edit", test_edit);
  g_test_add_func ("/store/edit/set-tags", test_set_tags);
  g_test_add_func ("/store/evaluation", test_evaluation);
  g_test_add_func ("/store/calibration", test_calibration);
  g_test_add_func ("/store/models", test_models);
  g_test_add_func ("/store/models/from-model", test_model_record_from_model);
  g_test_add_func ("/store/blob/codec", test_blob);
  g_test_add_func ("/store/blob/damaged-in-db", test_blob_damaged_in_db);
  g_test_add_func ("/store/threads/reader-during-write", test_reader_during_write);
  g_test_add_func ("/store/threads/writers-and-readers", test_writers_and_readers);
  g_test_add_func ("/store/threads/shared-connection", test_shared_connection);
  g_test_add_func ("/store/recover", test_recover);
  return g_test_run ();
}
