/* SPDX-License-Identifier: MIT */
/* qb-store-study.c — sensitivity studies in the store (schema version 4). */
#include "qb-study-record.h"

#include <math.h>

#include "qb-store-private.h"

QbStudyRecord *
qb_study_record_new (void)
{
  QbStudyRecord *s = g_new0 (QbStudyRecord, 1);

  s->base_ppl = s->fit_alpha = s->fit_spearman = s->seconds = NAN;
  return s;
}

void
qb_study_record_free (QbStudyRecord *s)
{
  if (s == NULL)
    return;
  g_free (s->uuid);
  g_free (s->model_name);
  g_free (s->model_fingerprint);
  g_free (s->method);
  g_free (s->candidates);
  g_free (s->proxy);
  g_free (s->eval_text_name);
  g_free (s->eval_text_hash);
  g_free (s->eval_tokens_hash);
  g_free (s->settings_json);
  g_free (s->error);
  g_free (s);
}

QbStudyCost *
qb_study_cost_new (void)
{
  QbStudyCost *c = g_new0 (QbStudyCost, 1);

  c->mse = c->wmse = c->out_err = c->kld = c->kld_err = c->seconds = NAN;
  c->expert = -1;
  return c;
}

QbStudyCost *
qb_study_cost_copy (const QbStudyCost *c)
{
  QbStudyCost *copy = g_memdup2 (c, sizeof *c);

  copy->tensor = g_strdup (c->tensor);
  copy->format = g_strdup (c->format);
  copy->note = g_strdup (c->note);
  return copy;
}

void
qb_study_cost_free (QbStudyCost *c)
{
  if (c == NULL)
    return;
  g_free (c->tensor);
  g_free (c->format);
  g_free (c->note);
  g_free (c);
}

static void
bind_double (QbStmt *stmt, int index, double v)
{
  if (isfinite (v))
    sqlite3_bind_double (stmt, index, v);
  else
    sqlite3_bind_null (stmt, index);
}

static gint64
insert_study (QbStore *store, gint64 model_id, const QbStudyRecord *s, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  g_autofree char *uuid = g_uuid_string_random ();
  gint64 now = g_get_real_time ();

  stmt = qb_store_stmt (store,
                        "INSERT INTO study (uuid, model_id, created, updated, status, method, "
                        "candidates, proxy, calibration_set_id, eval_text_name, eval_text_hash, "
                        "eval_tokens_hash, eval_n_ctx, eval_n_chunks, eval_first_token, base_ppl, "
                        "settings_json) VALUES (?1, ?2, ?3, ?3, 'running', ?4, ?5, ?6, ?7, ?8, ?9, "
                        "?10, ?11, ?12, ?13, ?14, ?15)", error);
  if (stmt == NULL)
    return 0;
  qb_bind_text (stmt, 1, uuid);
  sqlite3_bind_int64 (stmt, 2, model_id);
  sqlite3_bind_int64 (stmt, 3, now);
  qb_bind_text (stmt, 4, s->method);
  qb_bind_text (stmt, 5, s->candidates);
  qb_bind_text (stmt, 6, s->proxy);
  if (s->calibration_set_id != 0)
    sqlite3_bind_int64 (stmt, 7, s->calibration_set_id);
  qb_bind_text (stmt, 8, s->eval_text_name);
  qb_bind_text (stmt, 9, s->eval_text_hash);
  qb_bind_text (stmt, 10, s->eval_tokens_hash);
  sqlite3_bind_int64 (stmt, 11, s->eval_n_ctx);
  sqlite3_bind_int64 (stmt, 12, s->eval_n_chunks);
  sqlite3_bind_int64 (stmt, 13, (gint64) s->eval_first_token);
  bind_double (stmt, 14, s->base_ppl);
  qb_bind_text (stmt, 15, s->settings_json ? s->settings_json : "{}");
  if (!qb_store_exec_step (store, stmt, error, "starting a study"))
    return 0;
  return sqlite3_last_insert_rowid (store->db);
}

static gboolean
study_is_valid (const QbStudyRecord *s, GError **error)
{
  if (s->method == NULL || s->candidates == NULL || s->proxy == NULL
      || s->eval_text_hash == NULL || s->eval_tokens_hash == NULL)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "a study needs a method, candidates, a proxy and its evaluation tokens");
      return FALSE;
    }
  return TRUE;
}

gint64
qb_store_begin_study (QbStore *store, const QbModelRecord *model, const QbStudyRecord *study,
                      GError **error)
{
  QB_STORE_LOCK (store);
  gint64 model_id, id;

  if (!study_is_valid (study, error) || !qb_store_begin (store, error))
    return 0;
  if ((model_id = qb_store_add_model_locked (store, model, TRUE, error)) == 0
      || (id = insert_study (store, model_id, study, error)) == 0
      || !qb_store_commit (store, error))
    {
      qb_store_rollback (store);
      return 0;
    }
  return id;
}

/* Runs one UPDATE on a study that must exist. */
static gboolean
update_study (QbStore *store, gint64 id, QbStmt *stmt, const char *doing, GError **error)
{
  if (!qb_store_exec_step (store, stmt, error, doing))
    return FALSE;
  if (sqlite3_changes (store->db) == 0)
    return qb_store_not_found (store, error, "study", id);
  return TRUE;
}

gboolean
qb_store_resume_study (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store,
                                          "UPDATE study SET status = 'running', error = NULL, "
                                          "updated = ?2 WHERE id = ?1", error);

  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  sqlite3_bind_int64 (stmt, 2, g_get_real_time ());
  return update_study (store, id, stmt, "resuming a study", error);
}

gboolean
qb_store_add_study_cost (QbStore *store, gint64 id, const QbStudyCost *c, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = NULL;

  if (c->tensor == NULL || c->format == NULL)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "a study cost needs its tensor and format");
      return FALSE;
    }
  stmt = qb_store_stmt (store,
                        "INSERT OR REPLACE INTO study_cost (study_id, position, rung, tensor, "
                        "format, skipped, note, n_weights, bytes, mse, wmse, out_err, kld, "
                        "kld_err, seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                        "?12, ?13, ?14, ?15)", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  sqlite3_bind_int64 (stmt, 2, c->position);
  sqlite3_bind_int64 (stmt, 3, c->rung);
  qb_bind_text (stmt, 4, c->tensor);
  qb_bind_text (stmt, 5, c->format);
  sqlite3_bind_int (stmt, 6, c->skipped ? 1 : 0);
  qb_bind_text (stmt, 7, c->note);
  sqlite3_bind_int64 (stmt, 8, c->n_weights);
  sqlite3_bind_int64 (stmt, 9, (gint64) c->bytes);
  bind_double (stmt, 10, c->mse);
  bind_double (stmt, 11, c->wmse);
  bind_double (stmt, 12, c->out_err);
  bind_double (stmt, 13, c->kld);
  bind_double (stmt, 14, c->kld_err);
  bind_double (stmt, 15, c->seconds);
  /* A single statement is its own transaction. */
  return qb_store_exec_step (store, stmt, error, "storing a study cost");
}

gboolean
qb_store_finish_study (QbStore *store, gint64 id, QbExperimentStatus status, double fit_alpha,
                       double fit_spearman, double base_ppl, double seconds,
                       const char *error_message, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = NULL;

  if (status == QB_EXPERIMENT_RUNNING)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_STATE, "a finished study cannot be running");
      return FALSE;
    }
  stmt = qb_store_stmt (store,
                        "UPDATE study SET status = ?2, fit_alpha = ?3, fit_spearman = ?4, "
                        "base_ppl = coalesce (?5, base_ppl), seconds = coalesce (seconds, 0) + ?6, "
                        "error = ?7, updated = ?8 WHERE id = ?1", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  qb_bind_text (stmt, 2, qb_experiment_status_name (status));
  bind_double (stmt, 3, fit_alpha);
  bind_double (stmt, 4, fit_spearman);
  bind_double (stmt, 5, base_ppl);
  sqlite3_bind_double (stmt, 6, isfinite (seconds) ? seconds : 0);
  qb_bind_text (stmt, 7, error_message);
  sqlite3_bind_int64 (stmt, 8, g_get_real_time ());
  return update_study (store, id, stmt, "finishing a study", error);
}

#define STUDY_COLUMNS \
  "s.id, s.uuid, s.model_id, m.name, m.fingerprint, s.created, s.updated, s.status, s.method, " \
  "s.candidates, s.proxy, s.calibration_set_id, s.eval_text_name, s.eval_text_hash, "          \
  "s.eval_tokens_hash, s.eval_n_ctx, s.eval_n_chunks, s.eval_first_token, s.base_ppl, "        \
  "s.fit_alpha, s.fit_spearman, s.seconds, s.settings_json, s.error "                          \
  "FROM study s JOIN model m ON m.id = s.model_id "

static QbStudyRecord *
read_study (QbStmt *stmt)
{
  QbStudyRecord *s = qb_study_record_new ();
  g_autofree char *status = NULL;

  s->id = sqlite3_column_int64 (stmt, 0);
  s->uuid = qb_column_strdup (stmt, 1);
  s->model_id = sqlite3_column_int64 (stmt, 2);
  s->model_name = qb_column_strdup (stmt, 3);
  s->model_fingerprint = qb_column_strdup (stmt, 4);
  s->created = sqlite3_column_int64 (stmt, 5);
  s->updated = sqlite3_column_int64 (stmt, 6);
  status = qb_column_strdup (stmt, 7);
  if (!qb_experiment_status_parse (status, &s->status))
    s->status = QB_EXPERIMENT_FAILED;
  s->method = qb_column_strdup (stmt, 8);
  s->candidates = qb_column_strdup (stmt, 9);
  s->proxy = qb_column_strdup (stmt, 10);
  s->calibration_set_id = sqlite3_column_int64 (stmt, 11);
  s->eval_text_name = qb_column_strdup (stmt, 12);
  s->eval_text_hash = qb_column_strdup (stmt, 13);
  s->eval_tokens_hash = qb_column_strdup (stmt, 14);
  s->eval_n_ctx = (guint) sqlite3_column_int64 (stmt, 15);
  s->eval_n_chunks = (guint) sqlite3_column_int64 (stmt, 16);
  s->eval_first_token = (guint64) sqlite3_column_int64 (stmt, 17);
  s->base_ppl = qb_column_double (stmt, 18);
  s->fit_alpha = qb_column_double (stmt, 19);
  s->fit_spearman = qb_column_double (stmt, 20);
  s->seconds = qb_column_double (stmt, 21);
  s->settings_json = qb_column_strdup (stmt, 22);
  s->error = qb_column_strdup (stmt, 23);
  return s;
}

QbStudyRecord *
qb_store_get_study (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT " STUDY_COLUMNS "WHERE s.id = ?1", error);
  int rc;

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return read_study (stmt);
  if (rc == SQLITE_DONE)
    qb_store_not_found (store, error, "study", id);
  else
    qb_store_fail (store, error, "reading a study");
  return NULL;
}

GPtrArray *
qb_store_list_studies (QbStore *store, gint64 model_id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store,
                                          "SELECT " STUDY_COLUMNS "WHERE ?1 = 0 OR s.model_id = ?1 "
                                          "ORDER BY s.created DESC, s.id DESC", error);
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_study_record_free);
  int rc;

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, model_id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (list, read_study (stmt));
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "listing studies");
      return NULL;
    }
  return g_steal_pointer (&list);
}

/* The columns a study's cost and an expert's cost share, first in both
 * queries, and their reading. */
#define COST_COLUMNS "position, rung, tensor, format, n_weights, bytes, mse, kld, kld_err, seconds"
#define N_COST_COLUMNS 10

static QbStudyCost *
read_cost (sqlite3_stmt *stmt)
{
  QbStudyCost *c = qb_study_cost_new ();

  c->position = (guint) sqlite3_column_int64 (stmt, 0);
  c->rung = (guint) sqlite3_column_int64 (stmt, 1);
  c->tensor = qb_column_strdup (stmt, 2);
  c->format = qb_column_strdup (stmt, 3);
  c->n_weights = sqlite3_column_int64 (stmt, 4);
  c->bytes = (guint64) sqlite3_column_int64 (stmt, 5);
  c->mse = qb_column_double (stmt, 6);
  c->kld = qb_column_double (stmt, 7);
  c->kld_err = qb_column_double (stmt, 8);
  c->seconds = qb_column_double (stmt, 9);
  return c;
}

GPtrArray *
qb_store_get_study_costs (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store,
                                          "SELECT " COST_COLUMNS ", skipped, note, wmse, out_err "
                                          "FROM study_cost WHERE study_id = ?1 "
                                          "ORDER BY position, rung", error);
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_study_cost_free);
  int rc;

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      QbStudyCost *c = read_cost (stmt);

      c->skipped = sqlite3_column_int (stmt, N_COST_COLUMNS) != 0;
      c->note = qb_column_strdup (stmt, N_COST_COLUMNS + 1);
      c->wmse = qb_column_double (stmt, N_COST_COLUMNS + 2);
      c->out_err = qb_column_double (stmt, N_COST_COLUMNS + 3);
      g_ptr_array_add (list, c);
    }
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "reading a study's costs");
      return NULL;
    }
  return g_steal_pointer (&list);
}

gboolean
qb_store_add_study_expert_cost (QbStore *store, gint64 id, const QbStudyCost *c, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = NULL;

  if (c->tensor == NULL || c->format == NULL || c->expert < 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "an expert's study cost needs its tensor, format and expert");
      return FALSE;
    }
  stmt = qb_store_stmt (store,
                        "INSERT OR REPLACE INTO study_expert_cost (study_id, position, rung, "
                        "expert, tensor, format, n_weights, bytes, mse, kld, kld_err, seconds) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  sqlite3_bind_int64 (stmt, 2, c->position);
  sqlite3_bind_int64 (stmt, 3, c->rung);
  sqlite3_bind_int64 (stmt, 4, c->expert);
  qb_bind_text (stmt, 5, c->tensor);
  qb_bind_text (stmt, 6, c->format);
  sqlite3_bind_int64 (stmt, 7, c->n_weights);
  sqlite3_bind_int64 (stmt, 8, (gint64) c->bytes);
  bind_double (stmt, 9, c->mse);
  bind_double (stmt, 10, c->kld);
  bind_double (stmt, 11, c->kld_err);
  bind_double (stmt, 12, c->seconds);
  /* A single statement is its own transaction. */
  return qb_store_exec_step (store, stmt, error, "storing an expert's study cost");
}

GPtrArray *
qb_store_get_study_expert_costs (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store,
                                          "SELECT " COST_COLUMNS ", expert "
                                          "FROM study_expert_cost WHERE study_id = ?1 "
                                          "ORDER BY position, rung, expert", error);
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_study_cost_free);
  int rc;

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      QbStudyCost *c = read_cost (stmt);

      c->expert = (int) MIN (sqlite3_column_int64 (stmt, N_COST_COLUMNS), G_MAXINT);
      g_ptr_array_add (list, c);
      if (c->tensor == NULL || c->format == NULL || c->expert < 0)
        {
          g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
                       "study %" G_GINT64_FORMAT ": a damaged expert cost row", id);
          return NULL;
        }
    }
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "reading a study's expert costs");
      return NULL;
    }
  return g_steal_pointer (&list);
}

gboolean
qb_store_delete_study (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "DELETE FROM study WHERE id = ?1", error);

  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  return update_study (store, id, stmt, "deleting a study", error);
}
