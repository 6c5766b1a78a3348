/* SPDX-License-Identifier: MIT */
/* test-store-schema.c — opening a database: creation, migration from
 * every older version, and refusing — untouched — what must not be
 * written to: a newer schema, a file that is not SQLite, a damaged one,
 * another program's database. */
#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qb-store-private.h"
#include "qb-study-record.h"
#include "qb-test-store.h"
#include "qb-test-util.h"

static char *
new_path (const char *name)
{
  g_autofree char *dir = qb_test_tmpdir ();

  return g_build_filename (dir, name, NULL);
}

static void
exec_ok (sqlite3 *db, const char *sql)
{
  char *message = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &message) != SQLITE_OK)
    g_error ("%s: %s", sql, message);
}


static char *
query_text (sqlite3 *db, const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  GString *all = g_string_new (NULL);

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    for (int c = 0; c < sqlite3_column_count (stmt); c++)
      g_string_append_printf (all, "%s%s", (const char *) sqlite3_column_text (stmt, c) ?: "NULL",
                              c + 1 < sqlite3_column_count (stmt) ? "|" : "\n");
  sqlite3_finalize (stmt);
  return g_string_free (all, FALSE);
}

static sqlite3 *
raw_open (const char *path)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  return db;
}

/* -- a version 1 database, as Quantbench 1 left it ----------------------------------- */

/* A tensor row in the version 1 layout (no out_rel_err), with its BLOBs. */
static void
insert_v1_tensor (sqlite3 *db, gint64 experiment, guint position, const QbTensorResult *r)
{
  const QbTensorMetrics *m = &r->metrics;
  const double values[] = {
    r->bpw, r->seconds, m->mse, m->rmse_rel, m->sqnr_db, m->cosine, m->max_abs_err, m->wmse,
    m->mean, m->std, m->min, m->max, m->kurtosis, m->outlier_share,
  };
  GByteArray *blobs[4] = { g_byte_array_new (), g_byte_array_new (),
                           g_byte_array_new (), g_byte_array_new () };
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_prepare_v2 (db,
    "INSERT INTO tensor_result (experiment_id, position, name, format, requested_format, "
    "fallback_reason, method, n_params, original_bytes, bytes, bpw, seconds, mse, rmse_rel, "
    "sqnr_db, cosine, max_abs_err, wmse, w_mean, w_std, w_min, w_max, kurtosis, outlier_share) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, ?20, ?21, ?22, ?23, ?24)", -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_int64 (stmt, 1, experiment);
  sqlite3_bind_int64 (stmt, 2, position);
  sqlite3_bind_text (stmt, 3, r->tensor_name, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 4, r->format, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 5, r->requested_format, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 6, r->fallback_reason, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 7, r->method, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 8, r->n_params);
  sqlite3_bind_int64 (stmt, 9, r->n_params * 4);
  sqlite3_bind_int64 (stmt, 10, r->bytes);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    sqlite3_bind_double (stmt, 11 + i, values[i]);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_DONE);
  sqlite3_finalize (stmt);

  qb_histogram_encode (r->hist_original, blobs[0]);
  qb_histogram_encode (r->hist_quantized, blobs[1]);
  qb_histogram_encode (r->hist_error, blobs[2]);
  qb_channel_ranges_encode (r->n_channels, r->channel_min, r->channel_max, blobs[3]);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "INSERT INTO tensor_data VALUES (?1, ?2, ?3, ?4, ?5)",
                                       -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_int64 (stmt, 1, sqlite3_last_insert_rowid (db));
  for (guint i = 0; i < 4; i++)
    sqlite3_bind_blob (stmt, 2 + i, blobs[i]->data, blobs[i]->len, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_DONE);
  sqlite3_finalize (stmt);
  for (guint i = 0; i < 4; i++)
    g_byte_array_unref (blobs[i]);
}

static pid_t
dead_pid (void)
{
  pid_t child = fork ();
  int status;

  if (child == 0)
    _exit (0);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  return child;
}

/* Version 1 through the code's own first migration step — published
 * steps are never edited — then rows written the way version 1 wrote
 * them: a finished experiment with three tensors and a tag, and one
 * left running by a process that is gone. */
static GPtrArray *
make_v1 (const char *path)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *results = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_tensor_result_free);
  g_autofree char *running = NULL;
  sqlite3 *db = raw_open (path);

  exec_ok (db, "PRAGMA journal_mode = WAL");
  g_assert_true (qb_store_schema_migrate (db, path, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (db, "PRAGMA user_version"), ==, 1);
  exec_ok (db, "INSERT INTO model VALUES (1, 'f1f1f1f1f1', '/m/old.gguf', 1000, 'old', 'llama', "
               "260000, 48, '{\"n_layer\":5}', 1600000000000000, 1600000000000001)");
  exec_ok (db, "INSERT INTO experiment (id, uuid, model_id, name, created, updated, finished, "
               "status, plan_json, threads, backend, n_tensors, n_params, original_bytes, "
               "quantized_bytes, bpw, compression, seconds, sqnr_db, rmse_rel, cosine_min, "
               "max_abs_err, n_fallbacks, notes, owner_pid, owner_host, owner_boot, owner_start) "
               "VALUES (1, 'uuid-v1-a', 1, 'from version 1', 1600000000000002, 1600000000000003, "
               "1600000000000004, 'done', '{\"default_format\":\"Q4_K\"}', 2, 'cpu', 3, 12288, "
               "49152, 6912, 4.5, 7.111, 3.25, 33.5, 0.021, 0.9997, 0.07, 0, 'old notes', "
               "1, 'elsewhere', 'b', 5)");
  running = g_strdup_printf ("INSERT INTO experiment (id, uuid, model_id, name, created, updated, "
                             "status, plan_json, threads, backend, n_tensors, owner_pid, "
                             "owner_host) VALUES (2, 'uuid-v1-b', 1, 'crashed in version 1', "
                             "1600000000000005, 1600000000000006, 'running', '{}', 1, 'cpu', 9, "
                             "%d, '%s')", dead_pid (), g_get_host_name ());
  exec_ok (db, running);
  exec_ok (db, "INSERT INTO tag VALUES (1, 'legacy'); INSERT INTO experiment_tag VALUES (1, 1)");
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("blk.%u.attn_k.weight", i);
      QbTensorResult *r = qb_test_tensor_result (name, i, TRUE, 32);

      r->metrics.out_rel_err = NAN;          /* version 1 did not have it */
      r->n_nonfinite = -1;                   /* nor this (version 4): not counted */
      insert_v1_tensor (db, i < 3 ? 1 : 2, i, r);
      g_ptr_array_add (results, r);
    }
  sqlite3_close (db);
  return results;
}

static void
test_migrate_v1 (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("v1.db");
  g_autofree char *fresh_path = new_path ("fresh.db");
  g_autoptr(GPtrArray) results = make_v1 (path);
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autoptr(QbStore) fresh = NULL;
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(GPtrArray) tensors = NULL;
  g_autoptr(QbEvaluation) ev = qb_evaluation_new ();
  g_autoptr(QbCalibrationSet) set = qb_calibration_set_new ();
  g_autofree char *schema = NULL, *fresh_schema = NULL, *integrity = NULL, *fk = NULL;
  gint64 set_id = 0;

  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);

  /* Everything version 1 stored is there, exactly. */
  e = qb_store_get_experiment (store, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (e->uuid, ==, "uuid-v1-a");
  g_assert_cmpstr (e->name, ==, "from version 1");
  g_assert_cmpstr (e->model_name, ==, "old");
  g_assert_cmpint (e->created, ==, 1600000000000002);
  g_assert_cmpint (e->updated, ==, 1600000000000003);
  g_assert_cmpint (e->finished, ==, 1600000000000004);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_DONE);
  g_assert_cmpstr (e->plan_json, ==, "{\"default_format\":\"Q4_K\"}");
  g_assert_cmpuint (e->threads, ==, 2);
  g_assert_cmpint (e->totals.n_params, ==, 12288);
  g_assert_cmpuint (e->totals.original_bytes, ==, 49152);
  g_assert_cmpuint (e->totals.quantized_bytes, ==, 6912);
  g_assert_cmpfloat (e->totals.bpw, ==, 4.5);
  g_assert_cmpfloat (e->totals.compression, ==, 7.111);
  g_assert_cmpfloat (e->totals.sqnr_db, ==, 33.5);
  g_assert_cmpfloat (e->totals.cosine_min, ==, 0.9997);
  g_assert_cmpstr (e->notes, ==, "old notes");
  g_assert_cmpstrv (e->tags, ((const char *[]) { "legacy", NULL }));
  /* And what version 2 added: counted, or absent. */
  g_assert_cmpuint (e->n_tensors_done, ==, 3);
  g_assert_true (isnan (e->totals.out_rel_err));
  g_assert_cmpint (e->calibration_set_id, ==, 0);
  g_assert_null (e->evaluation);
  tensors = qb_store_get_tensors (store, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tensors->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      QbStoredTensor *t = g_ptr_array_index (tensors, i);
      g_assert_true (qb_store_load_tensor_data (store, t, &error));
      g_assert_cmpuint (t->position, ==, i);
      g_assert_cmpuint (t->original_bytes, ==, ((QbTensorResult *) results->pdata[i])->n_params * 4);
      qb_test_assert_same_result (t->result, results->pdata[i]);
    }
  g_clear_pointer (&e, qb_experiment_free);

  /* The run version 1 left behind when it crashed is marked as such. */
  e = qb_store_get_experiment (store, 2, &error);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_INTERRUPTED);
  g_assert_cmpuint (e->n_tensors_done, ==, 1);
  g_assert_cmpint (e->totals.n_params, ==, ((QbTensorResult *) results->pdata[3])->n_params);

  /* Version 2's additions work on the migrated data. */
  ev->text_hash = g_strdup ("abc");
  ev->perplexity = 7.5;
  qb_store_set_evaluation (store, 1, ev, NULL, &error);
  g_assert_no_error (error);
  set->name = g_strdup ("calib");
  set->hash = g_strdup ("h");
  qb_store_add_calibration_set (store, set, &set_id, &error);
  g_assert_no_error (error);
  qb_store_set_calibration_set (store, 1, set_id, &error);
  g_assert_no_error (error);

  integrity = query_text (store->db, "PRAGMA integrity_check");
  g_assert_cmpstr (integrity, ==, "ok\n");
  fk = query_text (store->db, "PRAGMA foreign_key_check");
  g_assert_cmpstr (fk, ==, "");

  /* A migrated database has the schema of a new one. */
  fresh = qb_store_open (fresh_path, &error);
  g_assert_no_error (error);
  schema = query_text (store->db, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name");
  fresh_schema = query_text (fresh->db, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name");
  g_assert_cmpstr (schema, ==, fresh_schema);
  g_assert_nonnull (strstr (schema, "evaluation_chunk"));
}


/* Version 5 → 6: a database with experiments gains the study tables; a
 * study and its costs go in and come back, and its deletion cascades. */
static void
test_migrate_v5_studies (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("v5-studies.db");
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbModelRecord) model = qb_test_model_record ("a1b2c3d4e5f6", "tiny");
  g_autoptr(QbStudyRecord) study = qb_study_record_new ();
  g_autoptr(QbStudyRecord) back = NULL;
  g_autoptr(QbStudyCost) cost = qb_study_cost_new ();
  g_autoptr(GPtrArray) costs = NULL;
  g_autoptr(GPtrArray) list = NULL;
  sqlite3 *db = raw_open (path);
  gint64 id;

  g_assert_true (qb_store_schema_migrate (db, path, 5, &error));
  sqlite3_close (db);
  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  qb_test_store_run (store, model, "before", "Q4_K", 3, QB_EXPERIMENT_DONE);
  qb_store_unref (g_steal_pointer (&store));
  /* Back to version 5 on disk, as an older Quantbench would have left it. */
  db = raw_open (path);
  exec_ok (db, "DROP TABLE study_expert_cost; DROP TABLE expert_result; DROP TABLE study_cost; "
               "DROP TABLE study; "
               "PRAGMA user_version = 5");
  sqlite3_close (db);

  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
  g_assert_cmpint (qb_test_sql_int (store->db, "SELECT count(*) FROM experiment"), ==, 1);

  study->method = g_strdup ("rtn");
  study->candidates = g_strdup ("Q4_K,Q8_0");
  study->proxy = g_strdup ("out_err");
  study->eval_text_hash = g_strdup ("00ff");
  study->eval_tokens_hash = g_strdup ("11ee");
  study->eval_n_ctx = 128;
  study->eval_n_chunks = 2;
  study->base_ppl = 9.5;
  id = qb_store_begin_study (store, model, study, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  cost->position = 3;
  cost->rung = 1;
  cost->tensor = g_strdup ("blk.0.attn_q.weight");
  cost->format = g_strdup ("Q8_0");
  cost->n_weights = 4096;
  cost->bytes = 4352;
  cost->mse = 1e-6;
  cost->kld = 2.5e-5;
  g_assert_true (qb_store_add_study_cost (store, id, cost, &error));
  cost->kld = 3e-5;   /* the same tensor and rung again replaces it */
  g_assert_true (qb_store_add_study_cost (store, id, cost, &error));
  g_assert_true (qb_store_finish_study (store, id, QB_EXPERIMENT_DONE, 0.8, 0.9, NAN, 1.5, NULL,
                                        &error));
  g_assert_no_error (error);

  back = qb_store_get_study (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (back->status, ==, QB_EXPERIMENT_DONE);
  g_assert_cmpstr (back->model_name, ==, "tiny");
  g_assert_cmpstr (back->candidates, ==, "Q4_K,Q8_0");
  g_assert_cmpfloat (back->base_ppl, ==, 9.5);
  g_assert_cmpfloat (back->fit_alpha, ==, 0.8);
  costs = qb_store_get_study_costs (store, id, &error);
  g_assert_cmpuint (costs->len, ==, 1);
  g_assert_cmpfloat (((QbStudyCost *) g_ptr_array_index (costs, 0))->kld, ==, 3e-5);
  g_assert_true (isnan (((QbStudyCost *) g_ptr_array_index (costs, 0))->wmse));
  list = qb_store_list_studies (store, 0, &error);
  g_assert_cmpuint (list->len, ==, 1);

  g_assert_true (qb_store_delete_study (store, id, &error));
  g_assert_cmpint (qb_test_sql_int (store->db, "SELECT count(*) FROM study_cost"), ==, 0);
  g_assert_false (qb_store_delete_study (store, id, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
}

/* A study cost row of tensor position 5, rung 0 (expert -1: the whole tensor). */
static QbStudyCost *
expert_cost (int expert, double kld)
{
  QbStudyCost *c = qb_study_cost_new ();

  c->position = 5;
  c->rung = 0;
  c->expert = expert;
  c->tensor = g_strdup ("blk.0.ffn_down_exps.weight");
  c->format = g_strdup ("Q4_K");
  c->n_weights = 65536;
  c->bytes = 36864;
  c->mse = 1e-5;
  c->kld = kld;
  c->kld_err = kld / 10;
  return c;
}

/* The experts' table as versions 7 and 8 had it (schema 9 added these). */
static void
drop_columns (sqlite3 *db, const char *table, const char *const *columns)
{
  for (gsize i = 0; columns[i] != NULL; i++)
    {
      g_autofree char *sql = g_strdup_printf ("ALTER TABLE %s DROP COLUMN %s", table, columns[i]);
      exec_ok (db, sql);
    }
}

/* The experts' moments, as schema 10 added them. */
static void
drop_expert_moments (sqlite3 *db)
{
  static const char *const added[] = { "w_mean", "w_std", "kurtosis", NULL };

  drop_columns (db, "expert_result", added);
}

/* The experts' columns schemas 9 and 10 added. */
static void
drop_expert_metrics (sqlite3 *db)
{
  static const char *const added[] = { "mse", "cosine", "max_abs_err", "wmse", "out_rel_err",
                                       "w_min", "w_max", "outlier_share", NULL };

  drop_expert_moments (db);
  drop_columns (db, "expert_result", added);
}

/* Version 7 → 8: a study stored before keeps its costs and has no expert
 * rows; expert rows go in (the same expert again replaces it), a row
 * without an expert is refused, they come back after reopening, apart
 * from the whole tensor's, and the study's deletion cascades. */
static void
test_migrate_v7_study_experts (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("v7-study-experts.db");
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbModelRecord) model = qb_test_model_record ("a1b2c3d4e5f6", "moe");
  g_autoptr(QbStudyRecord) study = qb_study_record_new ();
  g_autoptr(QbStudyCost) whole = expert_cost (-1, 4e-3);
  g_autoptr(GPtrArray) costs = NULL;
  g_autoptr(GPtrArray) experts = NULL;
  sqlite3 *db;
  gint64 id;

  study->method = g_strdup ("rtn");
  study->candidates = g_strdup ("Q4_K");
  study->proxy = g_strdup ("mse");
  study->eval_text_hash = g_strdup ("00ff");
  study->eval_tokens_hash = g_strdup ("11ee");
  study->eval_n_ctx = 64;
  study->eval_n_chunks = 1;
  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  id = qb_store_begin_study (store, model, study, &error);
  g_assert_no_error (error);
  g_assert_true (qb_store_add_study_cost (store, id, whole, &error));
  qb_store_unref (g_steal_pointer (&store));
  /* Back to version 7 on disk, as the previous Quantbench left it. */
  db = raw_open (path);
  drop_expert_metrics (db);
  exec_ok (db, "DROP TABLE study_expert_cost; PRAGMA user_version = 7");
  sqlite3_close (db);

  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
  costs = qb_store_get_study_costs (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (costs->len, ==, 1);
  g_assert_cmpint (((QbStudyCost *) g_ptr_array_index (costs, 0))->expert, ==, -1);
  experts = qb_store_get_study_expert_costs (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (experts->len, ==, 0);
  g_clear_pointer (&experts, g_ptr_array_unref);

  for (int e = 3; e >= 0; e--)
    {
      g_autoptr(QbStudyCost) c = expert_cost (e, 1e-3 * (e + 1));
      g_assert_true (qb_store_add_study_expert_cost (store, id, c, &error));
      g_assert_no_error (error);
    }
  {
    g_autoptr(QbStudyCost) again = expert_cost (2, NAN);   /* replaces expert 2 */
    g_autoptr(QbStudyCost) none = expert_cost (-1, 1e-3);

    g_assert_true (qb_store_add_study_expert_cost (store, id, again, &error));
    g_assert_false (qb_store_add_study_expert_cost (store, id, none, &error));
    g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
    g_clear_error (&error);
  }
  qb_store_unref (g_steal_pointer (&store));

  store = qb_store_open_readonly (path, &error);
  g_assert_no_error (error);
  experts = qb_store_get_study_expert_costs (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (experts->len, ==, 4);
  for (guint e = 0; e < 4; e++)
    {
      const QbStudyCost *c = g_ptr_array_index (experts, e);
      g_assert_cmpint (c->expert, ==, e);
      g_assert_cmpstr (c->tensor, ==, "blk.0.ffn_down_exps.weight");
      g_assert_cmpint (c->n_weights, ==, 65536);
      if (e == 2)
        g_assert_true (isnan (c->kld));
      else
        g_assert_cmpfloat (c->kld, ==, 1e-3 * (e + 1));
    }
  g_clear_pointer (&costs, g_ptr_array_unref);
  costs = qb_store_get_study_costs (store, id, &error);
  g_assert_cmpuint (costs->len, ==, 1);   /* the whole tensor's row alone */
  qb_store_unref (g_steal_pointer (&store));

  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_true (qb_store_delete_study (store, id, &error));
  g_assert_cmpint (qb_test_sql_int (store->db, "SELECT count(*) FROM study_expert_cost"), ==, 0);
}

/* A result of a 3-D expert tensor: 4 experts with their own figures and
 * histograms (of 128 bins, as the quantizer keeps them). */
static QbTensorResult *
expert_result (void)
{
  QbTensorResult *r = qb_test_tensor_result ("blk.0.ffn_down_exps.weight", 1, FALSE, 0);

  qb_tensor_result_set_n_experts (r, 4);
  qb_tensor_result_set_n_experts_hists (r);
  for (guint e = 0; e < 4; e++)
    {
      /* Every stored metric a value of its own. */
      for (guint i = 0; i < QB_N_EXPERT_METRICS; i++)
        *QB_EXPERT_METRIC (&r->expert_metrics[e], i) = (i + 1) * 0.125 + e / 64.0;
      for (guint k = 0; k < 3; k++)
        {
          QbHistogram *h = qb_histogram_new (QB_EXPERT_HISTOGRAM_BINS, -1.0 - k, 1.0 + e);
          h->counts[e * 7 + k] = 100 + e;
          h->counts[QB_EXPERT_HISTOGRAM_BINS - 1] = k;
          r->expert_hists[3 * e + k] = h;
        }
    }
  r->expert_metrics[3].sqnr_db = INFINITY;     /* an expert quantized without loss */
  r->expert_metrics[2].rmse_rel = NAN;         /* not measured */
  r->expert_metrics[1].wmse = NAN;
  r->expert_metrics[0].min = -INFINITY;
  r->expert_metrics[1].kurtosis = NAN;         /* constant weights */
  return r;
}

static void
assert_experts_equal (const QbTensorResult *a, const QbTensorResult *b, gboolean hists)
{
  g_assert_cmpuint (a->n_experts, ==, b->n_experts);
  for (guint e = 0; e < a->n_experts; e++)
    {
      for (guint i = 0; i < QB_N_EXPERT_METRICS; i++)
        g_assert_true (qb_test_same_double (*QB_EXPERT_METRIC (&a->expert_metrics[e], i),
                                            *QB_EXPERT_METRIC (&b->expert_metrics[e], i)));
      for (guint k = 0; hists && k < 3; k++)
        {
          const QbHistogram *x = qb_tensor_result_expert_histogram (a, e, k);
          const QbHistogram *y = qb_tensor_result_expert_histogram (b, e, k);
          g_assert_nonnull (x);
          g_assert_nonnull (y);
          g_assert_cmpuint (x->n_bins, ==, y->n_bins);
          g_assert_cmpfloat (x->lo, ==, y->lo);
          g_assert_cmpfloat (x->hi, ==, y->hi);
          g_assert_cmpmem (x->counts, x->n_bins * 8, y->counts, y->n_bins * 8);
        }
    }
}

/* Version 6 → 7: a database with experiments gains the experts' table;
 * older tensors read back without experts; an expert tensor's experts go
 * in, survive closing and opening again, and go with their experiment. */
static void
test_migrate_v6_experts (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("v6-experts.db");
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbModelRecord) model = qb_test_model_record ("a1b2c3d4e5f6", "moe");
  g_autoptr(QbTensorResult) r = expert_result ();
  g_autoptr(GPtrArray) tensors = NULL;
  QbExperimentSpec spec = { .name = "experts", .plan_json = "{}", .threads = 1, .n_tensors = 1 };
  QbStoredTensor *t;
  sqlite3 *db;
  gint64 old_id, id;

  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  old_id = qb_test_store_run (store, model, "before", "Q4_K", 3, QB_EXPERIMENT_DONE);
  qb_store_unref (g_steal_pointer (&store));
  /* Back to version 6 on disk, as the previous Quantbench left it. */
  db = raw_open (path);
  exec_ok (db, "DROP TABLE study_expert_cost; DROP TABLE expert_result; PRAGMA user_version = 6");
  sqlite3_close (db);

  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
  tensors = qb_store_get_tensors (store, old_id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tensors->len, ==, 3);
  g_assert_cmpuint (((QbStoredTensor *) g_ptr_array_index (tensors, 0))->result->n_experts, ==, 0);
  g_clear_pointer (&tensors, g_ptr_array_unref);

  id = qb_store_begin_experiment (store, model, &spec, &error);
  g_assert_no_error (error);
  g_assert_true (qb_store_add_tensor_result (store, id, 0, 4096, r, &error));
  g_assert_no_error (error);
  /* Stored again: replaced, experts included, never doubled. */
  g_assert_true (qb_store_add_tensor_result (store, id, 0, 4096, r, &error));
  g_assert_true (qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 1.0, NULL, &error));
  g_assert_cmpint (qb_test_sql_int (store->db, "SELECT count(*) FROM expert_result"), ==, 4);
  qb_store_unref (g_steal_pointer (&store));

  store = qb_store_open_readonly (path, &error);
  g_assert_no_error (error);
  tensors = qb_store_get_tensors (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tensors->len, ==, 1);
  t = g_ptr_array_index (tensors, 0);
  assert_experts_equal (r, t->result, FALSE);
  g_assert_null (t->result->expert_hists);          /* metrics only, until asked */
  g_assert_true (qb_store_load_tensor_data (store, t, &error));
  g_assert_no_error (error);
  assert_experts_equal (r, t->result, TRUE);
  qb_store_unref (g_steal_pointer (&store));

  /* The JSON export (experiments show --json) carries them to another database. */
  {
    g_autofree char *other_path = new_path ("v6-experts-import.db");
    g_autoptr(QbStore) other = qb_store_open (other_path, &error);
    g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
    g_autoptr(GArray) new_ids = NULL;
    g_autoptr(GPtrArray) imported = NULL;
    g_autofree char *json = NULL;

    g_assert_no_error (error);
    store = qb_store_open (path, &error);
    g_assert_true (qb_store_export (store, &id, 1, QB_STORE_EXPORT_JSON, out, NULL, &error));
    g_assert_no_error (error);
    g_assert_true (g_output_stream_write_all (out, "", 1, NULL, NULL, NULL));
    g_output_stream_close (out, NULL, NULL);
    json = g_memory_output_stream_steal_data (G_MEMORY_OUTPUT_STREAM (out));
    g_assert_nonnull (strstr (json, "\"experts\""));
    g_assert_true (qb_store_import_json (other, json, -1, "experts.json", &new_ids, NULL, &error));
    g_assert_no_error (error);
    imported = qb_store_get_tensors (other, g_array_index (new_ids, gint64, 0), &error);
    g_assert_no_error (error);
    g_assert_true (qb_store_load_tensor_data (other, g_ptr_array_index (imported, 0), &error));
    assert_experts_equal (r, ((QbStoredTensor *) g_ptr_array_index (imported, 0))->result, TRUE);
  }

  g_assert_true (qb_store_delete_experiment (store, id, &error));
  g_assert_cmpint (qb_test_sql_int (store->db, "SELECT count(*) FROM expert_result"), ==, 0);
}

/* A finished experiment of one expert tensor's result r; its id. */
static gint64
store_experts (QbStore *store, const QbModelRecord *model, const QbTensorResult *r)
{
  g_autoptr(GError) error = NULL;
  QbExperimentSpec spec = { .name = "experts", .plan_json = "{}", .threads = 1, .n_tensors = 1 };
  gint64 id = qb_store_begin_experiment (store, model, &spec, &error);

  g_assert_no_error (error);
  g_assert_true (qb_store_add_tensor_result (store, id, 0, 4096, r, &error));
  g_assert_true (qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 1.0, NULL, &error));
  g_assert_no_error (error);
  return id;
}

/* A database at path holding an experiment of r, then taken back to
 * `version` on disk as the previous Quantbench left it (drop removes
 * the columns added since); the experiment's id. */
static gint64
store_experts_as_version (const char *path, const QbModelRecord *model, const QbTensorResult *r,
                          int version, void (*drop) (sqlite3 *db))
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autofree char *sql = g_strdup_printf ("PRAGMA user_version = %d", version);
  gint64 id;
  sqlite3 *db;

  g_assert_no_error (error);
  id = store_experts (store, model, r);
  qb_store_unref (g_steal_pointer (&store));
  db = raw_open (path);
  drop (db);
  exec_ok (db, sql);
  sqlite3_close (db);
  return id;
}

/* Version 8 → 9: the experts' table gains every metric the tensor has;
 * experts stored before keep their SQNR and relative RMSE and read the
 * others as not measured; new ones keep all. */
static void
test_migrate_v8_expert_metrics (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("v8-expert-metrics.db");
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbModelRecord) model = qb_test_model_record ("a1b2c3d4e5f6", "moe");
  g_autoptr(QbTensorResult) r = expert_result ();
  g_autoptr(GPtrArray) tensors = NULL;
  QbTensorResult *old;
  gint64 old_id, id;

  old_id = store_experts_as_version (path, model, r, 8, drop_expert_metrics);
  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
  tensors = qb_store_get_tensors (store, old_id, &error);
  g_assert_no_error (error);
  old = ((QbStoredTensor *) g_ptr_array_index (tensors, 0))->result;
  g_assert_cmpuint (old->n_experts, ==, 4);
  for (guint e = 0; e < 4; e++)
    {
      g_assert_true (qb_test_same_double (old->expert_metrics[e].sqnr_db, r->expert_metrics[e].sqnr_db));
      g_assert_true (qb_test_same_double (old->expert_metrics[e].rmse_rel, r->expert_metrics[e].rmse_rel));
      g_assert_true (isnan (old->expert_metrics[e].mse) && isnan (old->expert_metrics[e].cosine));
      g_assert_true (isnan (old->expert_metrics[e].max_abs_err) && isnan (old->expert_metrics[e].min));
      g_assert_true (isnan (old->expert_metrics[e].outlier_share));
      g_assert_true (isnan (old->expert_metrics[e].mean) && isnan (old->expert_metrics[e].kurtosis));
    }
  g_clear_pointer (&tensors, g_ptr_array_unref);

  id = store_experts (store, model, r);
  qb_store_unref (g_steal_pointer (&store));
  store = qb_store_open_readonly (path, &error);
  g_assert_no_error (error);
  tensors = qb_store_get_tensors (store, id, &error);
  g_assert_no_error (error);
  assert_experts_equal (r, ((QbStoredTensor *) g_ptr_array_index (tensors, 0))->result, FALSE);
}

/* The JSON export of experiment id. (transfer full) */
static char *
export_json (QbStore *store, gint64 id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  g_assert_true (qb_store_export (store, &id, 1, QB_STORE_EXPORT_JSON, out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_write_all (out, "", 1, NULL, NULL, NULL));
  g_output_stream_close (out, NULL, NULL);
  return g_memory_output_stream_steal_data (G_MEMORY_OUTPUT_STREAM (out));
}

/* Version 9 → 10: the experts' table gains their weight moments; experts
 * stored before keep every other metric and read mean, std and kurtosis
 * as not measured (null in the JSON export); new ones keep them, through
 * a read-only reopen and a JSON export imported into another database. */
static void
test_migrate_v9_expert_moments (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("v9-expert-moments.db");
  g_autofree char *other_path = new_path ("v9-expert-moments-import.db");
  g_autoptr(QbStore) store = NULL, other = NULL;
  g_autoptr(QbModelRecord) model = qb_test_model_record ("a1b2c3d4e5f6", "moe");
  g_autoptr(QbTensorResult) r = expert_result ();
  g_autoptr(GPtrArray) tensors = NULL, imported = NULL;
  g_autoptr(GArray) new_ids = NULL;
  g_autofree char *old_json = NULL, *json = NULL;
  QbTensorResult *old;
  gint64 old_id, id;

  old_id = store_experts_as_version (path, model, r, 9, drop_expert_moments);
  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, 10);
  tensors = qb_store_get_tensors (store, old_id, &error);
  g_assert_no_error (error);
  old = ((QbStoredTensor *) g_ptr_array_index (tensors, 0))->result;
  g_assert_cmpuint (old->n_experts, ==, 4);
  for (guint e = 0; e < 4; e++)
    {
      const QbTensorMetrics *a = &r->expert_metrics[e], *b = &old->expert_metrics[e];
      g_assert_true (qb_test_same_double (a->sqnr_db, b->sqnr_db));
      g_assert_true (qb_test_same_double (a->mse, b->mse));
      g_assert_true (qb_test_same_double (a->min, b->min));
      g_assert_true (qb_test_same_double (a->outlier_share, b->outlier_share));
      g_assert_true (isnan (b->mean) && isnan (b->std) && isnan (b->kurtosis));
    }
  old_json = export_json (store, old_id);
  g_assert_nonnull (strstr (old_json, "\"mean\":null,\"std\":null,\"kurtosis\":null"));
  g_clear_pointer (&tensors, g_ptr_array_unref);

  id = store_experts (store, model, r);
  qb_store_unref (g_steal_pointer (&store));

  store = qb_store_open_readonly (path, &error);
  g_assert_no_error (error);
  tensors = qb_store_get_tensors (store, id, &error);
  g_assert_no_error (error);
  old = ((QbStoredTensor *) g_ptr_array_index (tensors, 0))->result;
  assert_experts_equal (r, old, FALSE);
  g_assert_cmpfloat (old->expert_metrics[2].mean, ==, 11 * 0.125 + 2 / 64.0);
  g_assert_cmpfloat (old->expert_metrics[2].kurtosis, ==, 13 * 0.125 + 2 / 64.0);
  g_assert_true (isnan (old->expert_metrics[1].kurtosis));

  /* The export carries them: imported elsewhere, the same values. */
  json = export_json (store, id);
  g_assert_nonnull (strstr (json, "\"kurtosis\":1.65625,"));
  other = qb_store_open (other_path, &error);
  g_assert_no_error (error);
  g_assert_true (qb_store_import_json (other, json, -1, "experts.json", &new_ids, NULL, &error));
  g_assert_no_error (error);
  imported = qb_store_get_tensors (other, g_array_index (new_ids, gint64, 0), &error);
  g_assert_no_error (error);
  g_assert_true (qb_store_load_tensor_data (other, g_ptr_array_index (imported, 0), &error));
  assert_experts_equal (r, ((QbStoredTensor *) g_ptr_array_index (imported, 0))->result, TRUE);
}

/* From every older version (0: a new file, an empty file, version 1). */
static void
test_migrate_each (void)
{
  for (int v = -1; v < QB_STORE_SCHEMA_VERSION; v++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *path = new_path ("each.db");
      g_autoptr(QbStore) store = NULL;

      if (v == -1)
        g_assert_true (g_file_set_contents (path, "", 0, NULL));
      else if (v > 0)
        {
          sqlite3 *db = raw_open (path);
          g_assert_true (qb_store_schema_migrate (db, path, v, &error));
          sqlite3_close (db);
        }
      store = qb_store_open (path, &error);
      g_assert_no_error (error);
      g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
    }
}

/* Version 4 adds the count of non-finite weights: results stored before
 * read as "not counted" (-1, never 0), new ones keep their count. */
static void
test_migrate_v4_nonfinite (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("v5-studies.db");
  g_autoptr(QbModelRecord) model = qb_test_model_record ("f4f4", "m");
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GPtrArray) tensors = NULL;
  g_autoptr(QbTensorResult) r = NULL;
  gint64 id;
  sqlite3 *db = raw_open (path);

  /* A version 3 database holding a tensor row (inserted as version 3 did:
   * no n_nonfinite column). */
  g_assert_true (qb_store_schema_migrate (db, path, 3, &error));
  g_assert_no_error (error);
  exec_ok (db, "INSERT INTO model VALUES (1, 'f3f3', '/m/x.gguf', 10, 'x', 'llama', 4096, 1, "
               "'{}', 1, 1)");
  exec_ok (db, "INSERT INTO experiment (id, uuid, model_id, name, created, updated, finished, "
               "status, plan_json, threads, backend, n_tensors) VALUES (1, 'u3', 1, 'v3', 1, 1, 1, "
               "'done', '{}', 1, 'cpu', 1)");
  exec_ok (db, "INSERT INTO tensor_result (experiment_id, position, name, n_params, "
               "original_bytes, bytes, sqnr_db) VALUES (1, 0, 't', 4096, 16384, 2304, 20.5)");
  sqlite3_close (db);

  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
  tensors = qb_store_get_tensors (store, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tensors->len, ==, 1);
  g_assert_cmpint (((QbStoredTensor *) tensors->pdata[0])->result->n_nonfinite, ==, -1);
  g_assert_cmpfloat (((QbStoredTensor *) tensors->pdata[0])->result->metrics.sqnr_db, ==, 20.5);
  g_clear_pointer (&tensors, g_ptr_array_unref);

  id = qb_test_store_run (store, model, "new", "Q4_K", 0, QB_EXPERIMENT_RUNNING);
  r = qb_test_tensor_result ("blk.0.attn_q.weight", 1, FALSE, 0);
  r->n_nonfinite = 3;
  r->metrics.sqnr_db = r->metrics.rmse_rel = NAN;
  g_assert_true (qb_store_add_tensor_result (store, id, 0, 1, r, &error));
  g_assert_no_error (error);
  g_assert_true (qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 1, NULL, &error));
  tensors = qb_store_get_tensors (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (((QbStoredTensor *) tensors->pdata[0])->result->n_nonfinite, ==, 3);
  {
    g_autoptr(QbExperiment) e = qb_store_get_experiment (store, id, &error);
    g_assert_no_error (error);
    /* Undefined totals: never ranked above a clean run. */
    g_assert_true (isnan (e->totals.sqnr_db));
  }
}

/* A migration step that fails leaves the database at its old version,
 * unchanged: the step and its version bump are one transaction. */
static void
test_migrate_v4_atomic (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("v3-atomic.db");
  g_autoptr(QbStore) store = NULL;
  sqlite3 *db = raw_open (path);

  g_assert_true (qb_store_schema_migrate (db, path, 3, &error));
  g_assert_no_error (error);
  /* The column step 4 adds already exists: its ALTER fails. */
  exec_ok (db, "ALTER TABLE tensor_result ADD COLUMN n_nonfinite INTEGER");
  g_assert_false (qb_store_schema_migrate (db, path, 4, &error));
  g_assert_nonnull (error);
  g_assert_cmpint (qb_test_sql_int (db, "PRAGMA user_version"), ==, 3);
  g_assert_cmpint (qb_test_sql_int (db, "SELECT count(*) FROM pragma_table_info('tensor_result') "
                                        "WHERE name = 'n_nonfinite'"), ==, 1);
  sqlite3_close (db);
}

typedef struct {
  const char *path;
  GError     *error;
} OpenJob;

static gpointer
open_in_thread (gpointer data)
{
  OpenJob *job = data;
  QbStore *store = qb_store_open (job->path, &job->error);

  qb_store_unref (store);
  return NULL;
}

/* Two programs opening an old database at once migrate it once. */
static void
test_migrate_concurrently (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("race.db");
  g_autoptr(GPtrArray) results = make_v1 (path);
  OpenJob jobs[3] = { { path }, { path }, { path } };
  GThread *threads[3];
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) e = NULL;

  for (guint i = 0; i < 3; i++)
    threads[i] = g_thread_new ("open", open_in_thread, &jobs[i]);
  for (guint i = 0; i < 3; i++)
    {
      g_thread_join (threads[i]);
      g_assert_no_error (jobs[i].error);
    }
  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, 1, &error);
  g_assert_cmpuint (e->n_tensors_done, ==, 3);
  g_assert_cmpint (qb_test_sql_int (store->db, "SELECT count(*) FROM tensor_result"), ==, 4);
}

/* -- refusals ------------------------------------------------------------------------- */

static char *
list_folder (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

/* Opening fails with `code` and leaves the file byte for byte as it was. */
static void
assert_refused (const char *path, QbStoreError code, const char *words)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) before = qb_test_file_bytes (path);
  g_autoptr(GBytes) after = NULL;
  QbStore *store = qb_store_open (path, &error);

  g_assert_null (store);
  g_assert_error (error, QB_STORE_ERROR, code);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, words));
  g_test_message ("refused as expected: %s", error->message);
  after = qb_test_file_bytes (path);
  g_assert_true (g_bytes_equal (before, after));
}

static void
test_refuse_newer (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("newer.db");
  g_autofree char *files = NULL, *files_after = NULL;
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autoptr(QbModelRecord) model = qb_test_model_record ("0123456789", "m");
  g_autofree char *newer = g_strdup_printf ("PRAGMA user_version = %d", QB_STORE_SCHEMA_VERSION + 1);
  g_autofree char *newest = g_strdup_printf ("PRAGMA wal_autocheckpoint = 0; PRAGMA user_version = %d",
                                             QB_STORE_SCHEMA_VERSION + 2);
  sqlite3 *db;

  g_assert_no_error (error);
  qb_test_store_run (store, model, "kept", "Q4_K", 3, QB_EXPERIMENT_DONE);
  qb_store_unref (g_steal_pointer (&store));
  db = raw_open (path);
  exec_ok (db, newer);
  sqlite3_close (db);                           /* checkpointed: one file */

  files = list_folder (path);
  assert_refused (path, QB_STORE_ERROR_NEWER, "newer Quantbench");
  db = raw_open (path);
  g_assert_cmpint (qb_test_sql_int (db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION + 1);
  g_assert_cmpint (qb_test_sql_int (db, "SELECT count(*) FROM tensor_result"), ==, 3);
  sqlite3_close (db);

  /* The newer version is still in the WAL, not yet in the file: SQLite's
   * view decides, and neither file changes. */
  db = raw_open (path);
  exec_ok (db, newest);
  {
    g_autofree char *wal = g_strconcat (path, "-wal", NULL);
    g_autoptr(GBytes) wal_before = qb_test_file_bytes (wal);
    g_autoptr(GBytes) wal_after = NULL;

    g_autofree char *message = g_strdup_printf ("schema version %d", QB_STORE_SCHEMA_VERSION + 2);

    assert_refused (path, QB_STORE_ERROR_NEWER, message);
    wal_after = qb_test_file_bytes (wal);
    g_assert_true (g_bytes_equal (wal_before, wal_after));
  }
  sqlite3_close (db);
  files_after = list_folder (path);
  g_assert_cmpstr (files, ==, files_after);
}

static void
write_file (const char *path, const void *data, gsize len)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, data, len, &error);
  g_assert_no_error (error);
}

static void
test_refuse_not_sqlite (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  guint8 noise[4096];
  guint8 gguf[256] = "GGUF\x03";
  guint8 fake[512] = "SQLite format 3";   /* the magic, then garbage */
  g_autofree char *text = new_path ("notes.txt");
  g_autofree char *random = new_path ("random.bin");
  g_autofree char *model = new_path ("model.gguf");
  g_autofree char *tiny = new_path ("tiny.db");
  g_autofree char *fake_path = new_path ("fake.db");
  g_autofree char *folder = new_path ("folder.db");
  g_autofree char *files = NULL, *files_after = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < sizeof noise; i++)
    noise[i] = g_rand_int (rand);
  for (guint i = 16; i < sizeof fake; i++)
    fake[i] = g_rand_int (rand);
  write_file (text, "my experiments, as a text file\n", 31);
  write_file (random, noise, sizeof noise);
  write_file (model, gguf, sizeof gguf);
  write_file (tiny, "SQLite format 3", 16);
  write_file (fake_path, fake, sizeof fake);
  files = list_folder (text);
  assert_refused (text, QB_STORE_ERROR_NOT_DATABASE, "not a SQLite database");
  files_after = list_folder (text);
  g_assert_cmpstr (files, ==, files_after);    /* not even a -wal beside it */
  g_clear_pointer (&files, g_free);
  g_clear_pointer (&files_after, g_free);
  files = list_folder (random);
  assert_refused (random, QB_STORE_ERROR_NOT_DATABASE, "not a SQLite database");
  files_after = list_folder (random);
  g_assert_cmpstr (files, ==, files_after);
  assert_refused (model, QB_STORE_ERROR_NOT_DATABASE, "not a SQLite database");
  assert_refused (tiny, QB_STORE_ERROR_NOT_DATABASE, "shorter than a database header");
  assert_refused (fake_path, QB_STORE_ERROR_CORRUPT, "damaged");

  g_assert_cmpint (g_mkdir (folder, 0700), ==, 0);
  g_assert_null (qb_store_open (folder, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_DATABASE);
}

/* A healthy store with enough rows to span many pages, in one file. */
static char *
make_store_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("pristine.db");
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autoptr(QbModelRecord) model = qb_test_model_record ("c0441c0441", "m");
  sqlite3 *db;

  g_assert_no_error (error);
  for (guint k = 0; k < 8; k++)
    {
      QbExperimentSpec spec = { .plan_json = "{}" };
      gint64 id = qb_store_begin_experiment (store, model, &spec, &error);

      for (guint i = 0; i < 8; i++)
        {
          g_autofree char *name = g_strdup_printf ("t%u", i);
          g_autoptr(QbTensorResult) r = qb_test_tensor_result (name, i + k, TRUE, 64);
          qb_store_add_tensor_result (store, id, i, 0, r, &error);
          g_assert_no_error (error);
        }
      qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 1, NULL, &error);
    }
  qb_store_unref (g_steal_pointer (&store));
  db = raw_open (path);
  exec_ok (db, "PRAGMA journal_mode = DELETE");   /* one self-contained file */
  g_assert_cmpint (qb_test_sql_int (db, "PRAGMA page_count"), >, 40);
  sqlite3_close (db);
  return g_steal_pointer (&path);
}

static char *
damaged_copy (GBytes *pristine, const char *name, gsize offset, gsize len, guint8 fill,
              gsize truncate_to)
{
  g_autofree char *path = new_path (name);
  gsize size = truncate_to ? truncate_to : g_bytes_get_size (pristine);
  g_autofree guint8 *data = g_memdup2 (g_bytes_get_data (pristine, NULL), g_bytes_get_size (pristine));

  memset (data + offset, fill, len);
  write_file (path, data, size);
  return g_steal_pointer (&path);
}

static void
test_refuse_damaged (void)
{
  g_autofree char *pristine_path = make_store_file ();
  g_autoptr(GBytes) pristine = qb_test_file_bytes (pristine_path);
  gsize size = g_bytes_get_size (pristine);
  const gsize page = 4096;
  g_autofree char *middle = damaged_copy (pristine, "middle.db", (size / page / 2) * page, page, 0xa5, 0);
  g_autofree char *zeroed = damaged_copy (pristine, "zeroed.db", page, page, 0, 0);
  g_autofree char *truncated = damaged_copy (pristine, "truncated.db", 0, 0, 0, (size / page / 2) * page);
  g_autofree char *schema = damaged_copy (pristine, "schema.db", 100, page - 100, 0x5a, 0);
  g_autofree char *header = damaged_copy (pristine, "header.db", 16, 2, 0x03, 0);  /* page size 771 */
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = NULL;

  assert_refused (middle, QB_STORE_ERROR_CORRUPT, "damaged");
  assert_refused (zeroed, QB_STORE_ERROR_CORRUPT, "damaged");
  assert_refused (truncated, QB_STORE_ERROR_CORRUPT, "damaged");
  assert_refused (schema, QB_STORE_ERROR_CORRUPT, "damaged");
  assert_refused (header, QB_STORE_ERROR_CORRUPT, "damaged");

  /* The undamaged original still opens. */
  store = qb_store_open (pristine_path, &error);
  g_assert_no_error (error);
}

static void
test_refuse_other_program (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = new_path ("places.sqlite");
  g_autofree char *emptied = new_path ("emptied.db");
  g_autoptr(QbStore) store = NULL;
  sqlite3 *db = raw_open (path);

  exec_ok (db, "CREATE TABLE places (url TEXT); INSERT INTO places VALUES ('https://example.org')");
  sqlite3_close (db);
  assert_refused (path, QB_STORE_ERROR_NOT_DATABASE, "another program");

  /* A SQLite file with nothing in it is as good as a new one. */
  db = raw_open (emptied);
  exec_ok (db, "CREATE TABLE scratch (x); DROP TABLE scratch");
  sqlite3_close (db);
  store = qb_store_open (emptied, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_test_sql_int (store->db, "PRAGMA user_version"), ==, QB_STORE_SCHEMA_VERSION);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/schema/migrate-v1", test_migrate_v1);
  g_test_add_func ("/store/schema/migrate-each", test_migrate_each);
  g_test_add_func ("/store/schema/migrate-v4-nonfinite", test_migrate_v4_nonfinite);
  g_test_add_func ("/store/schema/migrate-v4-atomic", test_migrate_v4_atomic);
  g_test_add_func ("/store/schema/migrate-v5-studies", test_migrate_v5_studies);
  g_test_add_func ("/store/schema/migrate-v6-experts", test_migrate_v6_experts);
  g_test_add_func ("/store/schema/migrate-v7-study-experts", test_migrate_v7_study_experts);
  g_test_add_func ("/store/schema/migrate-v8-expert-metrics", test_migrate_v8_expert_metrics);
  g_test_add_func ("/store/schema/migrate-v9-expert-moments", test_migrate_v9_expert_moments);
  g_test_add_func ("/store/schema/migrate-concurrently", test_migrate_concurrently);
  g_test_add_func ("/store/schema/refuse-newer", test_refuse_newer);
  g_test_add_func ("/store/schema/refuse-not-sqlite", test_refuse_not_sqlite);
  g_test_add_func ("/store/schema/refuse-damaged", test_refuse_damaged);
  g_test_add_func ("/store/schema/refuse-other-program", test_refuse_other_program);
  return g_test_run ();
}
