/* SPDX-License-Identifier: MIT */
/* qb-store-write.c — writing to the experiment store: models,
 * calibration sets, a run as it goes (its tensors, its end), evaluations,
 * and the tags a run starts with. */
#include "qb-store-private.h"
#include "qb-json.h"

#include <json-glib/json-glib.h>
#include <math.h>

/* -- JSON kept as text ------------------------------------------------------------ */

/* The plan is kept as qb_json_to_string writes it, so that an export and
 * import give the same text back. */
static char *
normalize_json_object (const char *json, const char *what, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  if (json == NULL)
    json = "{}";
  if (!qb_json_parser_load (parser, json, -1, QB_JSON_MAX_NESTING, "plan", &local))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "%s is not valid JSON: %s", what, local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "%s is not a JSON object", what);
      return NULL;
    }
  return qb_json_to_string (root);
}

static char *
strv_to_json (char **strv)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_array (b);
  for (guint i = 0; strv && strv[i]; i++)
    json_builder_add_string_value (b, strv[i]);
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  return qb_json_to_string (root);
}

/* -- models and calibration sets ---------------------------------------------- */

static gboolean
model_is_valid (const QbModelRecord *m, GError **error)
{
  if (m == NULL || m->fingerprint == NULL || *m->fingerprint == '\0')
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "a model record needs a fingerprint");
      return FALSE;
    }
  return TRUE;
}

/* Matches by fingerprint; a run updates where the file is now, an import
 * keeps the local record as it is. */
gint64
qb_store_add_model_locked (QbStore *store, const QbModelRecord *m, gboolean update_location,
                           GError **error)
{
  g_autoptr(QbStmt) find = NULL;
  g_autoptr(QbStmt) stmt = NULL;
  g_autofree char *arch = NULL;
  gint64 now = g_get_real_time (), id = 0;

  if (!model_is_valid (m, error) ||
      (arch = normalize_json_object (m->arch_json, "the model's architecture", error)) == NULL)
    return 0;
  if ((find = qb_store_stmt (store, "SELECT id FROM model WHERE fingerprint = ?1", error)) == NULL)
    return 0;
  qb_bind_text (find, 1, m->fingerprint);
  if ((id = qb_store_step_id (store, find, error, "looking up a model")) < 0)
    return 0;
  if (id != 0 && !update_location)
    return id;
  if (id != 0)
    {
      stmt = qb_store_stmt (store, "UPDATE model SET path = ?2, file_size = ?3, last_seen = ?4 "
                                   "WHERE id = ?1", error);
      if (stmt == NULL)
        return 0;
      sqlite3_bind_int64 (stmt, 1, id);
      qb_bind_text (stmt, 2, m->path ? m->path : "");
      sqlite3_bind_int64 (stmt, 3, m->file_size);
      sqlite3_bind_int64 (stmt, 4, now);
      return qb_store_exec_step (store, stmt, error, "updating a model") ? id : 0;
    }
  stmt = qb_store_stmt (store,
                        "INSERT INTO model (fingerprint, path, file_size, name, family, n_params, "
                        "n_tensors, arch_json, first_seen, last_seen) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", error);
  if (stmt == NULL)
    return 0;
  qb_bind_text (stmt, 1, m->fingerprint);
  qb_bind_text (stmt, 2, m->path ? m->path : "");
  sqlite3_bind_int64 (stmt, 3, m->file_size);
  qb_bind_text (stmt, 4, m->name);
  qb_bind_text (stmt, 5, m->family);
  sqlite3_bind_int64 (stmt, 6, m->n_params);
  sqlite3_bind_int64 (stmt, 7, m->n_tensors);
  qb_bind_text (stmt, 8, arch);
  sqlite3_bind_int64 (stmt, 9, m->first_seen ? m->first_seen : now);
  sqlite3_bind_int64 (stmt, 10, now);
  if (!qb_store_exec_step (store, stmt, error, "storing a model"))
    return 0;
  return sqlite3_last_insert_rowid (store->db);
}

gboolean
qb_store_add_model (QbStore *store, const QbModelRecord *model, gint64 *id, GError **error)
{
  QB_STORE_LOCK (store);
  gint64 model_id;

  if (!qb_store_begin (store, error))
    return FALSE;
  if ((model_id = qb_store_add_model_locked (store, model, TRUE, error)) == 0)
    {
      qb_store_rollback (store);
      return FALSE;
    }
  if (!qb_store_commit (store, error))
    return FALSE;
  if (id != NULL)
    *id = model_id;
  return TRUE;
}

/* Inside a transaction: the set's id, stored now or found by its hash. */
gint64
qb_store_add_calibration_set_locked (QbStore *store, const QbCalibrationSet *set, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  g_autofree char *sources = NULL;

  if (set->hash == NULL || *set->hash == '\0' || set->name == NULL)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "a calibration set needs a name and a hash");
      return 0;
    }
  /* The no-op update makes RETURNING give the id of an existing set. */
  stmt = qb_store_stmt (store,
                        "INSERT INTO calibration_set (hash, name, sources_json, n_tokens, "
                        "chunk_len, n_chunks, seeded, seed, created, skip_chunks) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                        "ON CONFLICT (hash) DO UPDATE SET hash = excluded.hash RETURNING id",
                        error);
  if (stmt == NULL)
    return 0;
  sources = strv_to_json (set->sources);
  qb_bind_text (stmt, 1, set->hash);
  qb_bind_text (stmt, 2, set->name);
  qb_bind_text (stmt, 3, sources);
  sqlite3_bind_int64 (stmt, 4, set->n_tokens);
  sqlite3_bind_int64 (stmt, 5, set->chunk_len);
  sqlite3_bind_int64 (stmt, 6, set->n_chunks);
  sqlite3_bind_int (stmt, 7, set->seeded != FALSE);
  sqlite3_bind_int64 (stmt, 8, (gint64) set->seed);
  sqlite3_bind_int64 (stmt, 9, set->created ? set->created : g_get_real_time ());
  sqlite3_bind_int64 (stmt, 10, set->skip_chunks);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    {
      qb_store_fail (store, error, "storing a calibration set");
      return 0;
    }
  return sqlite3_column_int64 (stmt, 0);
}

gboolean
qb_store_add_calibration_set (QbStore *store, const QbCalibrationSet *set, gint64 *id,
                              GError **error)
{
  QB_STORE_LOCK (store);
  gint64 set_id = qb_store_add_calibration_set_locked (store, set, error);

  if (set_id == 0)
    return FALSE;
  if (id != NULL)
    *id = set_id;
  return TRUE;
}

gboolean
qb_store_set_calibration_set (QbStore *store, gint64 experiment_id, gint64 calibration_set_id,
                              GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "UPDATE experiment SET calibration_set_id = ?2 "
                                          "WHERE id = ?1", error);

  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  if (calibration_set_id != 0)
    sqlite3_bind_int64 (stmt, 2, calibration_set_id);
  return qb_store_update_experiment (store, stmt, experiment_id, error, "linking a calibration set");
}

/* -- writing a run ------------------------------------------------------------------ */

static char *
default_name (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();

  return g_date_time_format (now, "Run %Y-%m-%d %H:%M");
}

gboolean
qb_tag_is_valid (const char *tag)
{
  if (tag == NULL || *tag == '\0' || !g_utf8_validate (tag, -1, NULL))
    return FALSE;
  for (const char *p = tag; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

gint64
qb_store_find_tag_locked (QbStore *store, const char *name, gboolean create, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  const char *sql = create
    ? "INSERT INTO tag (name) VALUES (?1) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id"
    : "SELECT id FROM tag WHERE name = ?1";

  if ((stmt = qb_store_stmt (store, sql, error)) == NULL)
    return -1;
  qb_bind_text (stmt, 1, name);
  return qb_store_step_id (store, stmt, error, "looking up a tag");
}

gboolean
qb_store_check_tags (const char * const *tags, GError **error)
{
  for (guint i = 0; tags && tags[i]; i++)
    {
      g_autofree char *tag = g_strstrip (g_strdup (tags[i]));
      if (!qb_tag_is_valid (tag))
        {
          g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                       "'%s' is not a valid tag (empty, or with control characters)", tags[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/* Inside a transaction; the tags have passed check_tags. */
gboolean
qb_store_tag_locked (QbStore *store, gint64 id, const char * const *tags, GError **error)
{
  for (guint i = 0; tags && tags[i]; i++)
    {
      g_autofree char *tag = g_strstrip (g_strdup (tags[i]));
      g_autoptr(QbStmt) link = NULL;
      gint64 tag_id = qb_store_find_tag_locked (store, tag, TRUE, error);

      if (tag_id <= 0)
        return FALSE;
      link = qb_store_stmt (store, "INSERT OR IGNORE INTO experiment_tag (experiment_id, tag_id) "
                                   "VALUES (?1, ?2)", error);
      if (link == NULL)
        return FALSE;
      sqlite3_bind_int64 (link, 1, id);
      sqlite3_bind_int64 (link, 2, tag_id);
      if (!qb_store_exec_step (store, link, error, "tagging an experiment"))
        return FALSE;
    }
  return TRUE;
}

static gint64
insert_experiment (QbStore *store, gint64 model_id, const QbExperimentSpec *spec,
                   const char *plan, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *name = spec->name && *spec->name ? g_strdup (spec->name) : default_name ();
  gint64 now = g_get_real_time ();
  QbStoreOwner self = { 0 };

  stmt = qb_store_stmt (store,
                        "INSERT INTO experiment (uuid, model_id, name, created, updated, status, "
                        "plan_json, threads, backend, n_tensors, notes, calibration_set_id, "
                        "owner_pid, owner_host, owner_boot, owner_start) "
                        "VALUES (?1, ?2, ?3, ?4, ?4, 'running', ?5, ?6, ?7, ?8, ?9, ?10, "
                        "?11, ?12, ?13, ?14)", error);
  if (stmt == NULL)
    return 0;
  qb_store_owner_self (&self);
  qb_bind_text (stmt, 1, uuid);
  sqlite3_bind_int64 (stmt, 2, model_id);
  qb_bind_text (stmt, 3, name);
  sqlite3_bind_int64 (stmt, 4, now);
  qb_bind_text (stmt, 5, plan);
  sqlite3_bind_int64 (stmt, 6, spec->threads);
  qb_bind_text (stmt, 7, spec->backend ? spec->backend : "cpu");
  sqlite3_bind_int64 (stmt, 8, spec->n_tensors);
  qb_bind_text (stmt, 9, spec->notes ? spec->notes : "");
  if (spec->calibration_set_id != 0)
    sqlite3_bind_int64 (stmt, 10, spec->calibration_set_id);
  sqlite3_bind_int64 (stmt, 11, self.pid);
  qb_bind_text (stmt, 12, self.host);
  qb_bind_text (stmt, 13, self.boot);
  if (self.start >= 0)
    sqlite3_bind_int64 (stmt, 14, self.start);
  qb_store_owner_clear (&self);
  if (!qb_store_exec_step (store, stmt, error, "starting an experiment"))
    return 0;
  return sqlite3_last_insert_rowid (store->db);
}

gint64
qb_store_begin_experiment (QbStore *store, const QbModelRecord *model,
                           const QbExperimentSpec *spec, GError **error)
{
  QB_STORE_LOCK (store);
  g_autofree char *plan = NULL;
  gint64 model_id, id;

  if (!model_is_valid (model, error) || !qb_store_check_tags (spec->tags, error))
    return 0;
  if ((plan = normalize_json_object (spec->plan_json, "the plan", error)) == NULL)
    return 0;
  if (!qb_store_begin (store, error))
    return 0;
  if ((model_id = qb_store_add_model_locked (store, model, TRUE, error)) == 0 ||
      (id = insert_experiment (store, model_id, spec, plan, error)) == 0 ||
      !qb_store_tag_locked (store, id, spec->tags, error) ||
      !qb_store_commit (store, error))
    {
      qb_store_rollback (store);
      return 0;
    }
  return id;
}

static void
bind_blob (QbStmt *stmt, int index, GByteArray *buf)
{
  if (buf->len > 0)
    sqlite3_bind_blob (stmt, index, buf->data, buf->len, SQLITE_STATIC);
  else
    sqlite3_bind_null (stmt, index);
}

static gboolean
result_is_valid (QbStore *store, const QbTensorResult *r, GError **error)
{
  const QbHistogram *hists[3] = { r->hist_original, r->hist_quantized, r->hist_error };

  if (r->tensor_name == NULL || *r->tensor_name == '\0')
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID, "a tensor result needs a name");
      return FALSE;
    }
  for (guint i = 0; i < 3; i++)
    if (hists[i] != NULL && (hists[i]->n_bins == 0 || hists[i]->n_bins > QB_STORE_MAX_BINS ||
                             hists[i]->counts == NULL))
      {
        g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                     "tensor %s: a histogram of %u bins cannot be stored (1 to %u)",
                     r->tensor_name, hists[i]->n_bins, QB_STORE_MAX_BINS);
        return FALSE;
      }
  if (r->n_experts > QB_STORE_MAX_EXPERTS || (r->n_experts > 0 && r->expert_metrics == NULL))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "tensor %s: %u experts cannot be stored", r->tensor_name, r->n_experts);
      return FALSE;
    }
  for (guint i = 0; r->expert_hists != NULL && i < 3 * r->n_experts; i++)
    if (r->expert_hists[i] != NULL &&
        (r->expert_hists[i]->n_bins == 0 || r->expert_hists[i]->n_bins > QB_STORE_MAX_BINS))
      {
        g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                     "tensor %s: an expert's histogram of %u bins cannot be stored",
                     r->tensor_name, r->expert_hists[i]->n_bins);
        return FALSE;
      }
  if (r->n_channels > QB_STORE_MAX_CHANNELS ||
      (r->n_channels > 0 && (r->channel_min == NULL || r->channel_max == NULL)))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "tensor %s: %u channel ranges cannot be stored", r->tensor_name, r->n_channels);
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_tensor_data (QbStore *store, gint64 tensor_id, const QbTensorResult *r, GError **error)
{
  g_autoptr(QbStmt) stmt = NULL;
  const QbHistogram *hists[3] = { r->hist_original, r->hist_quantized, r->hist_error };

  if (hists[0] == NULL && hists[1] == NULL && hists[2] == NULL && r->n_channels == 0)
    return TRUE;
  stmt = qb_store_stmt (store, "INSERT INTO tensor_data (tensor_id, hist_original, hist_quantized, "
                               "hist_error, channels) VALUES (?1, ?2, ?3, ?4, ?5)", error);
  if (stmt == NULL)
    return FALSE;
  for (guint i = 0; i < 4; i++)
    g_byte_array_set_size (store->blob[i], 0);
  for (guint i = 0; i < 3; i++)
    if (hists[i] != NULL)
      qb_histogram_encode (hists[i], store->blob[i]);
  if (r->n_channels > 0)
    qb_channel_ranges_encode (r->n_channels, r->channel_min, r->channel_max, store->blob[3]);
  sqlite3_bind_int64 (stmt, 1, tensor_id);
  for (guint i = 0; i < 4; i++)
    bind_blob (stmt, i + 2, store->blob[i]);
  return qb_store_exec_step (store, stmt, error, "storing histograms");
}

/* Each expert's metrics and histograms, one row per expert. */
static gboolean
write_experts (QbStore *store, gint64 tensor_id, const QbTensorResult *r, GError **error)
{
  for (guint e = 0; e < r->n_experts; e++)
    {
      g_autoptr(QbStmt) stmt = qb_store_stmt (store, "INSERT INTO expert_result (tensor_id, expert, "
                                              QB_EXPERT_METRIC_COLUMNS ", hist_original, "
                                              "hist_quantized, hist_error) VALUES (?1, ?2, ?3, ?4, "
                                              "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                                              "?18)", error);
      G_STATIC_ASSERT (QB_N_EXPERT_METRICS == 13);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, tensor_id);
      sqlite3_bind_int64 (stmt, 2, e);
      for (guint i = 0; i < QB_N_EXPERT_METRICS; i++)
        sqlite3_bind_double (stmt, 3 + i, *QB_EXPERT_METRIC (&r->expert_metrics[e], i));
      for (guint k = 0; k < 3; k++)
        {
          const QbHistogram *h = qb_tensor_result_expert_histogram (r, e, k);
          g_byte_array_set_size (store->blob[k], 0);
          if (h != NULL)
            qb_histogram_encode (h, store->blob[k]);
          bind_blob (stmt, 3 + QB_N_EXPERT_METRICS + k, store->blob[k]);
        }
      if (!qb_store_exec_step (store, stmt, error, "storing an expert's result"))
        return FALSE;
    }
  return TRUE;
}

/* Inside a transaction: the tensor's row and its data, replacing any
 * earlier row of the same name. */
gboolean
qb_store_write_tensor_locked (QbStore *store, gint64 experiment_id, const QbStoredTensor *t,
                              GError **error)
{
  const QbTensorResult *r = t->result;
  const QbTensorMetrics *m = &r->metrics;
  const double values[] = {
    r->bpw, r->seconds, m->mse, m->rmse_rel, m->sqnr_db, m->cosine, m->max_abs_err, m->wmse,
    m->out_rel_err, m->mean, m->std, m->min, m->max, m->kurtosis, m->outlier_share,
  };
  g_autoptr(QbStmt) remove = NULL;
  g_autoptr(QbStmt) stmt = NULL;
  gint64 tensor_id;

  if (!result_is_valid (store, r, error))
    return FALSE;
  remove = qb_store_stmt (store, "DELETE FROM tensor_result WHERE experiment_id = ?1 AND name = ?2",
                          error);
  if (remove == NULL)
    return FALSE;
  sqlite3_bind_int64 (remove, 1, experiment_id);
  qb_bind_text (remove, 2, r->tensor_name);
  if (!qb_store_exec_step (store, remove, error, "replacing a tensor result"))
    return FALSE;
  stmt = qb_store_stmt (store,
                        "INSERT INTO tensor_result (experiment_id, position, name, format, "
                        "requested_format, fallback_reason, method, n_params, original_bytes, "
                        "bytes, bpw, seconds, mse, rmse_rel, sqnr_db, cosine, max_abs_err, wmse, "
                        "out_rel_err, w_mean, w_std, w_min, w_max, kurtosis, outlier_share, "
                        "n_nonfinite) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                        "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  sqlite3_bind_int64 (stmt, 2, t->position);
  qb_bind_text (stmt, 3, r->tensor_name);
  qb_bind_text (stmt, 4, r->format);
  qb_bind_text (stmt, 5, r->requested_format);
  qb_bind_text (stmt, 6, r->fallback_reason);
  qb_bind_text (stmt, 7, r->method);
  sqlite3_bind_int64 (stmt, 8, r->n_params);
  sqlite3_bind_int64 (stmt, 9, t->original_bytes);
  sqlite3_bind_int64 (stmt, 10, r->bytes);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    sqlite3_bind_double (stmt, 11 + i, values[i]);   /* NAN binds as NULL */
  if (r->n_nonfinite >= 0)
    sqlite3_bind_int64 (stmt, 26, r->n_nonfinite);
  else
    sqlite3_bind_null (stmt, 26);
  if (!qb_store_exec_step (store, stmt, error, "storing a tensor result"))
    return FALSE;
  tensor_id = sqlite3_last_insert_rowid (store->db);
  return write_tensor_data (store, tensor_id, r, error) &&
         write_experts (store, tensor_id, r, error);
}

static gboolean
not_running (QbStore *store, GError **error, gint64 id)
{
  g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_STATE,
               "%s: experiment %" G_GINT64_FORMAT " is not running (missing or finished)",
               store->path, id);
  return FALSE;
}

gboolean
qb_store_add_tensor_result (QbStore *store, gint64 experiment_id, guint position,
                            guint64 original_bytes, const QbTensorResult *result, GError **error)
{
  QB_STORE_LOCK (store);
  QbStoredTensor t = { 0, position, original_bytes, (QbTensorResult *) result };
  g_autoptr(QbStmt) touch = NULL;

  if (!qb_store_begin (store, error))
    return FALSE;
  /* Only a running experiment takes tensors: the update says whether it is. */
  touch = qb_store_stmt (store, "UPDATE experiment SET updated = ?2 "
                                "WHERE id = ?1 AND status = 'running'", error);
  if (touch == NULL)
    goto fail;
  sqlite3_bind_int64 (touch, 1, experiment_id);
  sqlite3_bind_int64 (touch, 2, g_get_real_time ());
  if (!qb_store_exec_step (store, touch, error, "updating an experiment"))
    goto fail;
  if (sqlite3_changes (store->db) == 0)
    {
      not_running (store, error, experiment_id);
      goto fail;
    }
  g_clear_pointer (&touch, qb_stmt_release);
  if (!qb_store_write_tensor_locked (store, experiment_id, &t, error))
    goto fail;
  if (!qb_store_count_tensors_locked (store, experiment_id, error) ||
      !qb_store_commit (store, error))
    goto fail;
  return TRUE;

fail:
  qb_store_rollback (store);
  return FALSE;
}

gboolean
qb_store_count_tensors_locked (QbStore *store, gint64 experiment_id, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "UPDATE experiment SET n_tensors_done = "
                                          "(SELECT count(*) FROM tensor_result WHERE "
                                          "experiment_id = ?1) WHERE id = ?1", error);

  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  return qb_store_exec_step (store, stmt, error, "counting stored tensors");
}

/* Inside a transaction: totals over the stored tensors, and the end. */
gboolean
qb_store_finish_locked (QbStore *store, gint64 id, QbExperimentStatus status, double seconds,
               gint64 finished, const char *error_message, GError **error)
{
  g_autoptr(GPtrArray) tensors = qb_store_get_tensors_locked (store, id, error);
  g_autoptr(QbStmt) stmt = NULL;
  QbExperimentTotals t;

  if (tensors == NULL)
    return FALSE;
  t.seconds = seconds;
  qb_experiment_totals_compute (&t, (QbStoredTensor * const *) tensors->pdata, tensors->len);
  stmt = qb_store_stmt (store,
                        "UPDATE experiment SET status = ?2, finished = ?3, seconds = ?4, "
                        "n_params = ?5, original_bytes = ?6, quantized_bytes = ?7, bpw = ?8, "
                        "compression = ?9, sqnr_db = ?10, rmse_rel = ?11, cosine_min = ?12, "
                        "max_abs_err = ?13, out_rel_err = ?14, n_fallbacks = ?15, error = ?16 "
                        "WHERE id = ?1 AND status = 'running'", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  qb_bind_text (stmt, 2, qb_experiment_status_name (status));
  sqlite3_bind_int64 (stmt, 3, finished);
  sqlite3_bind_double (stmt, 4, t.seconds);
  sqlite3_bind_int64 (stmt, 5, t.n_params);
  sqlite3_bind_int64 (stmt, 6, t.original_bytes);
  sqlite3_bind_int64 (stmt, 7, t.quantized_bytes);
  sqlite3_bind_double (stmt, 8, t.bpw);
  sqlite3_bind_double (stmt, 9, t.compression);
  sqlite3_bind_double (stmt, 10, t.sqnr_db);
  sqlite3_bind_double (stmt, 11, t.rmse_rel);
  sqlite3_bind_double (stmt, 12, t.cosine_min);
  sqlite3_bind_double (stmt, 13, t.max_abs_err);
  sqlite3_bind_double (stmt, 14, t.out_rel_err);
  sqlite3_bind_int64 (stmt, 15, t.n_fallbacks);
  qb_bind_text (stmt, 16, error_message);
  if (!qb_store_exec_step (store, stmt, error, "finishing an experiment"))
    return FALSE;
  if (sqlite3_changes (store->db) == 0)
    {
      return not_running (store, error, id);
    }
  return TRUE;
}

gboolean
qb_store_finish_experiment (QbStore *store, gint64 experiment_id, QbExperimentStatus status,
                            double seconds, const char *error_message, GError **error)
{
  QB_STORE_LOCK (store);

  if (status == QB_EXPERIMENT_RUNNING || (guint) status >= QB_EXPERIMENT_N_STATUS)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "an experiment cannot finish as '%s'", qb_experiment_status_name (status));
      return FALSE;
    }
  if (!qb_store_begin (store, error))
    return FALSE;
  if (!qb_store_finish_locked (store, experiment_id, status, seconds, g_get_real_time (),
                      status == QB_EXPERIMENT_FAILED ? error_message : NULL, error) ||
      !qb_store_commit (store, error))
    {
      qb_store_rollback (store);
      return FALSE;
    }
  return TRUE;
}

/* -- evaluations --------------------------------------------------------------------- */

static gboolean
write_chunks (QbStore *store, gint64 evaluation_id, const QbEvaluation *ev, GError **error)
{
  g_autoptr(QbStmt) clear = qb_store_stmt (store, "DELETE FROM evaluation_chunk "
                                           "WHERE evaluation_id = ?1", error);

  if (clear == NULL)
    return FALSE;
  sqlite3_bind_int64 (clear, 1, evaluation_id);
  if (!qb_store_exec_step (store, clear, error, "replacing evaluation chunks"))
    return FALSE;
  for (guint i = 0; i < ev->n_chunk_results; i++)
    {
      g_autoptr(QbStmt) stmt = qb_store_stmt (store, "INSERT INTO evaluation_chunk (evaluation_id, "
                                              "chunk, perplexity, kld_mean) "
                                              "VALUES (?1, ?2, ?3, ?4)", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, evaluation_id);
      sqlite3_bind_int64 (stmt, 2, i);
      sqlite3_bind_double (stmt, 3, ev->chunk_ppl[i]);
      sqlite3_bind_double (stmt, 4, ev->chunk_kld ? ev->chunk_kld[i] : NAN);
      if (!qb_store_exec_step (store, stmt, error, "storing evaluation chunks"))
        return FALSE;
    }
  return TRUE;
}

/* Inside a transaction. */
gboolean
qb_store_write_evaluation_locked (QbStore *store, gint64 experiment_id, const QbEvaluation *ev,
                                  gint64 *id, GError **error)
{
  const double values[] = {
    ev->perplexity, ev->perplexity_err, ev->base_perplexity, ev->kld_mean, ev->kld_median,
    ev->kld_p90, ev->kld_p95, ev->kld_p99, ev->kld_max, ev->top1_agreement, ev->dp_mean,
    ev->dp_rms, ev->seconds,
  };
  g_autoptr(QbStmt) stmt = NULL;
  gint64 evaluation_id;

  if (ev->text_hash == NULL || *ev->text_hash == '\0')
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                   "an evaluation needs the hash of its text");
      return FALSE;
    }
  stmt = qb_store_stmt (store,
                        "INSERT INTO evaluation (experiment_id, created, text_name, text_hash, "
                        "n_ctx, n_chunks, n_tokens, perplexity, perplexity_err, base_perplexity, "
                        "kld_mean, kld_median, kld_p90, kld_p95, kld_p99, kld_max, top1_agreement, "
                        "dp_mean, dp_rms, seconds, device) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                        "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) "
                        "ON CONFLICT (experiment_id, text_hash, n_ctx, n_chunks) DO UPDATE SET "
                        "created = excluded.created, text_name = excluded.text_name, "
                        "n_tokens = excluded.n_tokens, perplexity = excluded.perplexity, "
                        "perplexity_err = excluded.perplexity_err, "
                        "base_perplexity = excluded.base_perplexity, kld_mean = excluded.kld_mean, "
                        "kld_median = excluded.kld_median, kld_p90 = excluded.kld_p90, "
                        "kld_p95 = excluded.kld_p95, kld_p99 = excluded.kld_p99, "
                        "kld_max = excluded.kld_max, top1_agreement = excluded.top1_agreement, "
                        "dp_mean = excluded.dp_mean, dp_rms = excluded.dp_rms, "
                        "seconds = excluded.seconds, device = excluded.device RETURNING id", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  sqlite3_bind_int64 (stmt, 2, ev->created ? ev->created : g_get_real_time ());
  qb_bind_text (stmt, 3, ev->text_name);
  qb_bind_text (stmt, 4, ev->text_hash);
  sqlite3_bind_int64 (stmt, 5, ev->n_ctx);
  sqlite3_bind_int64 (stmt, 6, ev->n_chunks);
  sqlite3_bind_int64 (stmt, 7, ev->n_tokens);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    sqlite3_bind_double (stmt, 8 + i, values[i]);
  qb_bind_text (stmt, 21, ev->device);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    return qb_store_fail (store, error, "storing an evaluation");
  evaluation_id = sqlite3_column_int64 (stmt, 0);
  g_clear_pointer (&stmt, qb_stmt_release);
  if (!write_chunks (store, evaluation_id, ev, error))
    return FALSE;
  if (id != NULL)
    *id = evaluation_id;
  return TRUE;
}

gboolean
qb_store_set_evaluation (QbStore *store, gint64 experiment_id, const QbEvaluation *evaluation,
                         gint64 *id, GError **error)
{
  QB_STORE_LOCK (store);

  if (!qb_store_begin (store, error))
    return FALSE;
  if (!qb_store_experiment_exists (store, experiment_id, error) ||
      !qb_store_write_evaluation_locked (store, experiment_id, evaluation, id, error) ||
      !qb_store_commit (store, error))
    {
      qb_store_rollback (store);
      return FALSE;
    }
  return TRUE;
}
