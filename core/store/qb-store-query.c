/* SPDX-License-Identifier: MIT */
/* qb-store-query.c — reading the experiment store: lists, one experiment,
 * its tensors and histograms, comparisons and Pareto fronts. */
#include "qb-store-private.h"
#include "qb-json.h"

#include <json-glib/json-glib.h>

#include <math.h>
#include <string.h>

/* -- models ------------------------------------------------------------------- */

#define MODEL_COLUMNS \
  "id, fingerprint, path, file_size, name, family, n_params, n_tensors, arch_json, first_seen"

static QbModelRecord *
read_model (QbStmt *stmt)
{
  QbModelRecord *m = g_new0 (QbModelRecord, 1);

  m->id = sqlite3_column_int64 (stmt, 0);
  m->fingerprint = qb_column_strdup (stmt, 1);
  m->path = qb_column_strdup (stmt, 2);
  m->file_size = sqlite3_column_int64 (stmt, 3);
  m->name = qb_column_strdup (stmt, 4);
  m->family = qb_column_strdup (stmt, 5);
  m->n_params = sqlite3_column_int64 (stmt, 6);
  m->n_tensors = sqlite3_column_int64 (stmt, 7);
  m->arch_json = qb_column_strdup (stmt, 8);
  m->first_seen = sqlite3_column_int64 (stmt, 9);
  return m;
}

QbModelRecord *
qb_store_get_model (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT " MODEL_COLUMNS " FROM model WHERE id = ?1",
                                          error);

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, id);
  switch (sqlite3_step (stmt))
    {
    case SQLITE_ROW:
      return read_model (stmt);
    case SQLITE_DONE:
      qb_store_not_found (store, error, "model", id);
      return NULL;
    default:
      qb_store_fail (store, error, "reading a model");
      return NULL;
    }
}

GPtrArray *
qb_store_list_models (QbStore *store, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT " MODEL_COLUMNS " FROM model "
                                          "ORDER BY last_seen DESC, id DESC", error);
  g_autoptr(GPtrArray) models = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_model_record_free);
  int rc;

  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (models, read_model (stmt));
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "listing models");
      return NULL;
    }
  return g_steal_pointer (&models);
}

static gboolean
is_hex (const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isxdigit (*s))
      return FALSE;
  return TRUE;
}

gint64
qb_store_find_model (QbStore *store, const char *spec, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(GPtrArray) models = qb_store_list_models (store, error);
  g_autoptr(GString) names = g_string_new (NULL);
  gint64 found = 0;
  guint n_found = 0;
  char *end = NULL;
  gint64 id = g_ascii_strtoll (spec, &end, 10);

  if (models == NULL)
    return 0;
  /* A number that is a model's id means that model. */
  for (guint i = 0; end != spec && *end == '\0' && i < models->len; i++)
    if (((QbModelRecord *) models->pdata[i])->id == id)
      return id;
  for (guint i = 0; i < models->len; i++)
    {
      QbModelRecord *m = g_ptr_array_index (models, i);
      g_autofree char *base = g_path_get_basename (m->path);
      gboolean match = (end != spec && *end == '\0' && m->id == id) ||
                       (strlen (spec) >= 6 && is_hex (spec) &&
                        g_ascii_strncasecmp (m->fingerprint, spec, strlen (spec)) == 0) ||
                       (m->name && g_utf8_collate (m->name, spec) == 0) ||
                       g_strcmp0 (m->path, spec) == 0 || g_strcmp0 (base, spec) == 0;
      if (!match)
        continue;
      found = m->id;
      n_found++;
      g_string_append_printf (names, "%s%" G_GINT64_FORMAT " (%s)", n_found > 1 ? ", " : "",
                              m->id, m->name ? m->name : base);
    }
  if (n_found == 1)
    return found;
  if (n_found == 0)
    g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND,
                 "%s: no model matches '%s' (give an id, a fingerprint prefix, a name or a path)",
                 store->path, spec);
  else
    g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID,
                 "'%s' matches several models: %s; give the id", spec, names->str);
  return 0;
}

/* -- experiments ----------------------------------------------------------------- */

#define EVALUATION_COLUMNS(v) \
  v "id, " v "created, " v "text_name, " v "text_hash, " v "n_ctx, " v "n_chunks, " \
  v "n_tokens, " v "perplexity, " v "perplexity_err, " v "base_perplexity, " v "kld_mean, " \
  v "kld_median, " v "kld_p90, " v "kld_p95, " v "kld_p99, " v "kld_max, " v "top1_agreement, " \
  v "dp_mean, " v "dp_rms, " v "seconds, " v "device"

/* The evaluation whose columns start at `col`. */
static QbEvaluation *
read_evaluation (QbStmt *stmt, int col)
{
  QbEvaluation *e = g_new0 (QbEvaluation, 1);
  double *values[] = {
    &e->perplexity, &e->perplexity_err, &e->base_perplexity, &e->kld_mean, &e->kld_median,
    &e->kld_p90, &e->kld_p95, &e->kld_p99, &e->kld_max, &e->top1_agreement, &e->dp_mean,
    &e->dp_rms, &e->seconds,
  };

  e->id = sqlite3_column_int64 (stmt, col);
  e->created = sqlite3_column_int64 (stmt, col + 1);
  e->text_name = qb_column_strdup (stmt, col + 2);
  e->text_hash = qb_column_strdup (stmt, col + 3);
  e->n_ctx = sqlite3_column_int64 (stmt, col + 4);
  e->n_chunks = sqlite3_column_int64 (stmt, col + 5);
  e->n_tokens = sqlite3_column_int64 (stmt, col + 6);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    *values[i] = qb_column_double (stmt, col + 7 + i);
  e->device = qb_column_strdup (stmt, col + 7 + G_N_ELEMENTS (values));
  return e;
}

/* One SELECT serves lists and single experiments; `plan` is the plan
 * column or NULL. */
#define EXPERIMENT_SELECT(plan) \
  "SELECT e.id, e.uuid, e.name, e.model_id, m.name, m.path, m.fingerprint, " \
  "e.calibration_set_id, e.created, e.updated, e.finished, e.status, e.threads, e.backend, " \
  "e.n_tensors, e.n_tensors_done, e.n_params, e.original_bytes, e.quantized_bytes, e.bpw, " \
  "e.compression, e.seconds, e.sqnr_db, e.rmse_rel, e.cosine_min, e.max_abs_err, " \
  "e.out_rel_err, e.n_fallbacks, e.notes, e.error, e.owner_pid, e.owner_host, " \
  "(SELECT group_concat (t.name, char(31)) FROM experiment_tag et JOIN tag t " \
  "  ON t.id = et.tag_id WHERE et.experiment_id = e.id), " \
  plan ", " EVALUATION_COLUMNS ("v.") \
  " FROM experiment e JOIN model m ON m.id = e.model_id " \
  "LEFT JOIN evaluation v ON v.id = (SELECT id FROM evaluation WHERE experiment_id = e.id " \
  "  ORDER BY created DESC, id DESC LIMIT 1) "

#define EXPERIMENT_EVALUATION_COL 34

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_utf8_collate (*(char **) a, *(char **) b);
}

static char **
split_tags (const char *joined)
{
  char **tags;

  if (joined == NULL)
    return g_new0 (char *, 1);
  tags = g_strsplit (joined, "\x1f", -1);
  qsort (tags, g_strv_length (tags), sizeof (char *), compare_strings);
  return tags;
}

static QbExperiment *
read_experiment (QbStmt *stmt)
{
  QbExperiment *e = g_new0 (QbExperiment, 1);
  QbExperimentTotals *t = &e->totals;
  const char *model_name = (const char *) sqlite3_column_text (stmt, 4);
  double *values[] = {
    &t->bpw, &t->compression, &t->seconds, &t->sqnr_db, &t->rmse_rel, &t->cosine_min,
    &t->max_abs_err, &t->out_rel_err,
  };

  e->id = sqlite3_column_int64 (stmt, 0);
  e->uuid = qb_column_strdup (stmt, 1);
  e->name = qb_column_strdup (stmt, 2);
  e->model_id = sqlite3_column_int64 (stmt, 3);
  e->model_name = model_name ? g_strdup (model_name)
                             : g_path_get_basename ((const char *) sqlite3_column_text (stmt, 5));
  e->model_fingerprint = qb_column_strdup (stmt, 6);
  e->calibration_set_id = sqlite3_column_int64 (stmt, 7);
  e->created = sqlite3_column_int64 (stmt, 8);
  e->updated = sqlite3_column_int64 (stmt, 9);
  e->finished = sqlite3_column_int64 (stmt, 10);
  if (!qb_experiment_status_parse ((const char *) sqlite3_column_text (stmt, 11), &e->status))
    e->status = QB_EXPERIMENT_FAILED;   /* the CHECK constraint makes this unreachable */
  e->threads = sqlite3_column_int64 (stmt, 12);
  e->backend = qb_column_strdup (stmt, 13);
  e->n_tensors = sqlite3_column_int64 (stmt, 14);
  e->n_tensors_done = sqlite3_column_int64 (stmt, 15);
  t->n_params = sqlite3_column_int64 (stmt, 16);
  t->original_bytes = sqlite3_column_int64 (stmt, 17);
  t->quantized_bytes = sqlite3_column_int64 (stmt, 18);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    *values[i] = qb_column_double (stmt, 19 + i);
  t->n_fallbacks = sqlite3_column_int64 (stmt, 27);
  e->notes = g_strdup ((const char *) sqlite3_column_text (stmt, 28) ?: "");
  e->error_message = qb_column_strdup (stmt, 29);
  e->owner_pid = sqlite3_column_int (stmt, 30);
  e->owner_host = qb_column_strdup (stmt, 31);
  e->tags = split_tags ((const char *) sqlite3_column_text (stmt, 32));
  e->plan_json = qb_column_strdup (stmt, 33);
  if (sqlite3_column_type (stmt, EXPERIMENT_EVALUATION_COL) != SQLITE_NULL)
    e->evaluation = read_evaluation (stmt, EXPERIMENT_EVALUATION_COL);
  return e;
}

QbExperiment *
qb_store_get_experiment_locked (QbStore *store, gint64 id, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, EXPERIMENT_SELECT ("e.plan_json")
                                          "WHERE e.id = ?1", error);

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, id);
  switch (sqlite3_step (stmt))
    {
    case SQLITE_ROW:
      return read_experiment (stmt);
    case SQLITE_DONE:
      qb_store_not_found (store, error, "experiment", id);
      return NULL;
    default:
      qb_store_fail (store, error, "reading an experiment");
      return NULL;
    }
}

QbExperiment *
qb_store_get_experiment (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);

  return qb_store_get_experiment_locked (store, id, error);
}

/* -- lists --------------------------------------------------------------------- */

/* nullable: the column may be NULL, so NULLs are sorted last explicitly. */
static const struct {
  const char *name;
  const char *expr;
  gboolean    nullable;
} sorts[QB_SORT_N] = {
  [QB_SORT_CREATED]     = { "created",     "e.created" },
  [QB_SORT_NAME]        = { "name",        "e.name COLLATE NOCASE" },
  [QB_SORT_MODEL]       = { "model",       "coalesce (m.name, m.path) COLLATE NOCASE" },
  [QB_SORT_STATUS]      = { "status",      "e.status" },
  [QB_SORT_TENSORS]     = { "tensors",     "e.n_tensors_done" },
  [QB_SORT_SIZE]        = { "size",        "e.quantized_bytes", TRUE },
  [QB_SORT_BPW]         = { "bpw",         "e.bpw", TRUE },
  [QB_SORT_COMPRESSION] = { "compression", "e.compression", TRUE },
  [QB_SORT_SECONDS]     = { "seconds",     "e.seconds", TRUE },
  [QB_SORT_SQNR]        = { "sqnr",        "e.sqnr_db", TRUE },
  [QB_SORT_RMSE_REL]    = { "rmse",        "e.rmse_rel", TRUE },
  [QB_SORT_COSINE_MIN]  = { "cosine",      "e.cosine_min", TRUE },
  [QB_SORT_MAX_ABS_ERR] = { "maxerr",      "e.max_abs_err", TRUE },
  [QB_SORT_OUT_REL_ERR] = { "outerr",      "e.out_rel_err", TRUE },
  [QB_SORT_PERPLEXITY]  = { "ppl",         "v.perplexity", TRUE },
  [QB_SORT_KLD_MEAN]    = { "kld",         "v.kld_mean", TRUE },
  [QB_SORT_ID]          = { "id",          "e.id" },
};

const char *
qb_experiment_sort_name (QbExperimentSort sort)
{
  return (guint) sort < QB_SORT_N ? sorts[sort].name : "created";
}

gboolean
qb_experiment_sort_parse (const char *name, QbExperimentSort *sort)
{
  for (guint i = 0; name != NULL && i < QB_SORT_N; i++)
    if (g_ascii_strcasecmp (name, sorts[i].name) == 0)
      {
        *sort = i;
        return TRUE;
      }
  return FALSE;
}

void
qb_experiment_query_init (QbExperimentQuery *query)
{
  memset (query, 0, sizeof *query);
  query->status = -1;
  query->sort = QB_SORT_CREATED;
  query->descending = TRUE;
}

#define EXPERIMENT_FILTER \
  "WHERE (?1 = 0 OR e.model_id = ?1) " \
  "AND (?2 IS NULL OR EXISTS (SELECT 1 FROM experiment_tag et JOIN tag t ON t.id = et.tag_id " \
  "  WHERE et.experiment_id = e.id AND t.name = ?2)) " \
  "AND (?3 IS NULL OR e.name LIKE ?3 ESCAPE '\\' OR e.notes LIKE ?3 ESCAPE '\\' " \
  "  OR m.name LIKE ?3 ESCAPE '\\' OR m.path LIKE ?3 ESCAPE '\\' " \
  "  OR EXISTS (SELECT 1 FROM experiment_tag et JOIN tag t ON t.id = et.tag_id " \
  "    WHERE et.experiment_id = e.id AND t.name LIKE ?3 ESCAPE '\\')) " \
  "AND (?4 IS NULL OR e.status = ?4) "

/* "%text%" with LIKE's wildcards in the text escaped. */
static char *
like_pattern (const char *text)
{
  GString *p = g_string_new ("%");

  for (const char *s = text; *s; s++)
    {
      if (*s == '%' || *s == '_' || *s == '\\')
        g_string_append_c (p, '\\');
      g_string_append_c (p, *s);
    }
  g_string_append_c (p, '%');
  return g_string_free (p, FALSE);
}

static void
bind_filter (QbStmt *stmt, const QbExperimentQuery *q)
{
  sqlite3_bind_int64 (stmt, 1, q->model_id);
  qb_bind_text (stmt, 2, q->tag);
  if (q->text != NULL && *q->text != '\0')
    sqlite3_bind_text (stmt, 3, like_pattern (q->text), -1, g_free);
  if (q->status >= 0 && q->status < QB_EXPERIMENT_N_STATUS)
    qb_bind_text (stmt, 4, qb_experiment_status_name (q->status));
}

GPtrArray *
qb_store_list_experiments (QbStore *store, const QbExperimentQuery *query, GError **error)
{
  QB_STORE_LOCK (store);
  QbExperimentQuery defaults;
  const QbExperimentQuery *q = query;
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_experiment_free);
  g_autoptr(QbStmt) stmt = NULL;
  g_autofree char *sql = NULL;
  QbExperimentSort sort;
  const char *expr, *dir;
  int rc;

  if (q == NULL)
    {
      qb_experiment_query_init (&defaults);
      q = &defaults;
    }
  sort = (guint) q->sort < QB_SORT_N ? q->sort : QB_SORT_CREATED;
  expr = sorts[sort].expr;
  dir = q->descending ? "DESC" : "ASC";
  /* One statement per sort column and direction, cached like the rest. */
  sql = g_strdup_printf (EXPERIMENT_SELECT ("NULL") EXPERIMENT_FILTER
                         "ORDER BY %s%s%s%s %s, e.id %s LIMIT ?5 OFFSET ?6",
                         sorts[sort].nullable ? "(" : "", sorts[sort].nullable ? expr : "",
                         sorts[sort].nullable ? ") IS NULL, " : "", expr, dir, dir);
  if ((stmt = qb_store_stmt (store, sql, error)) == NULL)
    return NULL;
  bind_filter (stmt, q);
  sqlite3_bind_int64 (stmt, 5, q->limit > 0 ? (gint64) q->limit : -1);
  sqlite3_bind_int64 (stmt, 6, q->offset);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (list, read_experiment (stmt));
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "listing experiments");
      return NULL;
    }
  return g_steal_pointer (&list);
}

gboolean
qb_store_count_experiments (QbStore *store, const QbExperimentQuery *query, guint *count,
                            GError **error)
{
  QB_STORE_LOCK (store);
  QbExperimentQuery defaults;
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT count(*) FROM experiment e "
                                          "JOIN model m ON m.id = e.model_id " EXPERIMENT_FILTER,
                                          error);

  if (stmt == NULL)
    return FALSE;
  if (query == NULL)
    {
      qb_experiment_query_init (&defaults);
      query = &defaults;
    }
  bind_filter (stmt, query);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    return qb_store_fail (store, error, "counting experiments");
  *count = sqlite3_column_int64 (stmt, 0);
  return TRUE;
}

GStrv
qb_store_list_tags (QbStore *store, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT name FROM tag ORDER BY name", error);
  g_autoptr(GStrvBuilder) tags = g_strv_builder_new ();
  int rc;

  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_strv_builder_add (tags, (const char *) sqlite3_column_text (stmt, 0));
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "listing tags");
      return NULL;
    }
  return g_strv_builder_end (tags);
}

/* -- evaluations ------------------------------------------------------------------ */

static gboolean
read_chunks (QbStore *store, QbEvaluation *ev, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT perplexity, kld_mean FROM evaluation_chunk "
                                          "WHERE evaluation_id = ?1 ORDER BY chunk", error);
  g_autoptr(GArray) ppl = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) kld = g_array_new (FALSE, FALSE, sizeof (double));
  int rc;

  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, ev->id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      double p = qb_column_double (stmt, 0), k = qb_column_double (stmt, 1);
      g_array_append_val (ppl, p);
      g_array_append_val (kld, k);
    }
  if (rc != SQLITE_DONE)
    return qb_store_fail (store, error, "reading evaluation chunks");
  qb_evaluation_set_chunks (ev, ppl->len, (double *) ppl->data, (double *) kld->data);
  return TRUE;
}

GPtrArray *
qb_store_list_evaluations_locked (QbStore *store, gint64 experiment_id, GError **error)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_evaluation_free);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT " EVALUATION_COLUMNS ("")
                                          " FROM evaluation WHERE experiment_id = ?1 "
                                          "ORDER BY created DESC, id DESC", error);
  int rc;

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (list, read_evaluation (stmt, 0));
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "listing evaluations");
      return NULL;
    }
  g_clear_pointer (&stmt, qb_stmt_release);
  for (guint i = 0; i < list->len; i++)
    if (!read_chunks (store, g_ptr_array_index (list, i), error))
      return NULL;
  return g_steal_pointer (&list);
}

GPtrArray *
qb_store_list_evaluations (QbStore *store, gint64 experiment_id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbExperiment) e = qb_store_get_experiment_locked (store, experiment_id, error);

  if (e == NULL)
    return NULL;
  return qb_store_list_evaluations_locked (store, experiment_id, error);
}

/* -- tensors ------------------------------------------------------------------------ */

static QbStoredTensor *
read_tensor (QbStmt *stmt)
{
  QbStoredTensor *t = qb_stored_tensor_new ();
  QbTensorResult *r = t->result;
  QbTensorMetrics *m = &r->metrics;
  double *values[] = {
    &r->bpw, &r->seconds, &m->mse, &m->rmse_rel, &m->sqnr_db, &m->cosine, &m->max_abs_err,
    &m->wmse, &m->out_rel_err, &m->mean, &m->std, &m->min, &m->max, &m->kurtosis,
    &m->outlier_share,
  };

  t->id = sqlite3_column_int64 (stmt, 0);
  t->position = sqlite3_column_int64 (stmt, 1);
  t->original_bytes = sqlite3_column_int64 (stmt, 2);
  r->tensor_name = qb_column_strdup (stmt, 3);
  r->format = qb_column_strdup (stmt, 4);
  r->requested_format = qb_column_strdup (stmt, 5);
  r->fallback_reason = qb_column_strdup (stmt, 6);
  r->method = qb_column_strdup (stmt, 7);
  r->n_params = sqlite3_column_int64 (stmt, 8);
  r->bytes = sqlite3_column_int64 (stmt, 9);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    *values[i] = qb_column_double (stmt, 10 + i);
  r->n_nonfinite = sqlite3_column_type (stmt, 25) == SQLITE_NULL ? -1
                                                                 : sqlite3_column_int64 (stmt, 25);
  return t;
}

/* An expert's row as read: its index, then its metrics. */
#define PER_EXPERT (1 + QB_N_EXPERT_METRICS)

/* A run of one tensor's expert rows, 0..n-1 in order, into its result. */
static gboolean
set_experts (QbStore *store, GHashTable *by_id, gint64 tensor_id, GArray *values, GError **error)
{
  QbStoredTensor *t = g_hash_table_lookup (by_id, &tensor_id);

  if (t == NULL || values->len == 0)
    return TRUE;
  if (values->len / PER_EXPERT > QB_STORE_MAX_EXPERTS)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
                   "%s: tensor %s: %u experts stored", store->path, t->result->tensor_name,
                   values->len / PER_EXPERT);
      return FALSE;
    }
  qb_tensor_result_set_n_experts (t->result, values->len / PER_EXPERT);
  for (guint e = 0; e < values->len / PER_EXPERT; e++)
    {
      const double *v = &g_array_index (values, double, PER_EXPERT * e);

      if (v[0] != e)
        {
          g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
                       "%s: tensor %s: expert %u is missing", store->path,
                       t->result->tensor_name, e);
          return FALSE;
        }
      for (guint i = 0; i < QB_N_EXPERT_METRICS; i++)
        *QB_EXPERT_METRIC (&t->result->expert_metrics[e], i) = v[1 + i];
    }
  return TRUE;
}

/* Each tensor's experts' metrics (their histograms come with
 * qb_store_load_tensor_data). */
static gboolean
read_experts (QbStore *store, gint64 experiment_id, GPtrArray *tensors, GError **error)
{
  g_autoptr(GHashTable) by_id = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GArray) values = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(QbStmt) stmt = qb_store_stmt (store,
                                          "SELECT tensor_id, expert, " QB_EXPERT_METRIC_COLUMNS
                                          " FROM expert_result WHERE tensor_id IN (SELECT id "
                                          "FROM tensor_result WHERE experiment_id = ?1) "
                                          "ORDER BY tensor_id, expert", error);
  gint64 current = 0;
  int rc;

  if (stmt == NULL)
    return FALSE;
  for (guint i = 0; i < tensors->len; i++)
    {
      QbStoredTensor *t = g_ptr_array_index (tensors, i);
      g_hash_table_insert (by_id, &t->id, t);
    }
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (stmt, 0);
      double row[PER_EXPERT] = { (double) sqlite3_column_int64 (stmt, 1) };

      for (guint i = 0; i < QB_N_EXPERT_METRICS; i++)
        row[1 + i] = qb_column_double (stmt, 2 + i);
      if (id != current)
        {
          if (!set_experts (store, by_id, current, values, error))
            return FALSE;
          g_array_set_size (values, 0);
          current = id;
        }
      g_array_append_vals (values, row, PER_EXPERT);
    }
  if (rc != SQLITE_DONE)
    return qb_store_fail (store, error, "reading experts' results");
  return set_experts (store, by_id, current, values, error);
}

GPtrArray *
qb_store_get_tensors_locked (QbStore *store, gint64 experiment_id, GError **error)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_stored_tensor_free);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store,
                                          "SELECT id, position, original_bytes, name, format, "
                                          "requested_format, fallback_reason, method, n_params, "
                                          "bytes, bpw, seconds, mse, rmse_rel, sqnr_db, cosine, "
                                          "max_abs_err, wmse, out_rel_err, w_mean, w_std, w_min, "
                                          "w_max, kurtosis, outlier_share, n_nonfinite "
                                          "FROM tensor_result "
                                          "WHERE experiment_id = ?1 ORDER BY position, name", error);
  int rc;

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, experiment_id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (list, read_tensor (stmt));
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "reading tensor results");
      return NULL;
    }
  g_clear_pointer (&stmt, qb_stmt_release);
  if (!read_experts (store, experiment_id, list, error))
    return NULL;
  return g_steal_pointer (&list);
}

GPtrArray *
qb_store_get_tensors (QbStore *store, gint64 experiment_id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbExperiment) e = NULL;
  GPtrArray *tensors;

  /* One read transaction: the experiment and its tensors from one snapshot. */
  if (!qb_store_begin_read (store, error))
    return NULL;
  e = qb_store_get_experiment_locked (store, experiment_id, error);
  tensors = e ? qb_store_get_tensors_locked (store, experiment_id, error) : NULL;
  qb_store_end_read (store);
  return tensors;
}

static gboolean
decode_histogram (QbStmt *stmt, int col, QbHistogram **out, GError **error)
{
  const guint8 *data = sqlite3_column_blob (stmt, col);
  int len = sqlite3_column_bytes (stmt, col);

  if (sqlite3_column_type (stmt, col) == SQLITE_NULL)
    return TRUE;
  *out = qb_histogram_decode (data, len, error);
  return *out != NULL;
}

/* The experts' histograms, into a result whose experts' metrics are read. */
static gboolean
load_expert_hists (QbStore *store, QbStoredTensor *t, GError **error)
{
  QbTensorResult *r = t->result;
  g_autoptr(QbStmt) stmt = NULL;
  int rc;

  if (r->n_experts == 0)
    return TRUE;
  stmt = qb_store_stmt (store, "SELECT expert, hist_original, hist_quantized, hist_error "
                               "FROM expert_result WHERE tensor_id = ?1 ORDER BY expert", error);
  if (stmt == NULL)
    return FALSE;
  qb_tensor_result_set_n_experts_hists (r);
  sqlite3_bind_int64 (stmt, 1, t->id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      gint64 e = sqlite3_column_int64 (stmt, 0);
      if (e < 0 || e >= r->n_experts)
        continue;               /* rows changed since the metrics were read */
      for (guint k = 0; k < 3; k++)
        if (!decode_histogram (stmt, 1 + k, &r->expert_hists[3 * e + k], error))
          {
            g_prefix_error (error, "%s: tensor %s, expert %" G_GINT64_FORMAT ": ", store->path,
                            r->tensor_name, e);
            return FALSE;
          }
    }
  if (rc != SQLITE_DONE)
    return qb_store_fail (store, error, "reading experts' histograms");
  return TRUE;
}

gboolean
qb_store_load_tensor_data_locked (QbStore *store, QbStoredTensor *t, GError **error)
{
  QbTensorResult *r = t->result;
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT hist_original, hist_quantized, "
                                          "hist_error, channels FROM tensor_data "
                                          "WHERE tensor_id = ?1", error);
  QbHistogram **hists[3] = { &r->hist_original, &r->hist_quantized, &r->hist_error };
  const char *columns[3] = { "original histogram", "quantized histogram", "error histogram" };
  int rc;

  if (stmt == NULL)
    return FALSE;
  g_clear_pointer (&r->hist_original, qb_histogram_free);
  g_clear_pointer (&r->hist_quantized, qb_histogram_free);
  g_clear_pointer (&r->hist_error, qb_histogram_free);
  g_clear_pointer (&r->channel_min, g_free);
  g_clear_pointer (&r->channel_max, g_free);
  r->n_channels = 0;
  sqlite3_bind_int64 (stmt, 1, t->id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    return load_expert_hists (store, t, error);   /* stored without histograms */
  if (rc != SQLITE_ROW)
    return qb_store_fail (store, error, "reading histograms");
  for (guint i = 0; i < 3; i++)
    if (!decode_histogram (stmt, i, hists[i], error))
      {
        g_prefix_error (error, "%s: tensor %s, %s: ", store->path, r->tensor_name, columns[i]);
        return FALSE;
      }
  if (sqlite3_column_type (stmt, 3) != SQLITE_NULL &&
      !qb_channel_ranges_decode (sqlite3_column_blob (stmt, 3), sqlite3_column_bytes (stmt, 3),
                                 &r->n_channels, &r->channel_min, &r->channel_max, error))
    {
      g_prefix_error (error, "%s: tensor %s: ", store->path, r->tensor_name);
      return FALSE;
    }
  g_clear_pointer (&stmt, qb_stmt_release);
  return load_expert_hists (store, t, error);
}

gboolean
qb_store_load_tensor_data (QbStore *store, QbStoredTensor *t, GError **error)
{
  QB_STORE_LOCK (store);

  return qb_store_load_tensor_data_locked (store, t, error);
}

/* -- comparisons -------------------------------------------------------------------- */

void
qb_comparison_free (QbComparison *c)
{
  if (c == NULL)
    return;
  for (guint i = 0; i < c->n_experiments; i++)
    qb_experiment_free (c->experiments[i]);
  for (guint r = 0; r < c->n_rows; r++)
    {
      for (guint i = 0; i < c->n_experiments; i++)
        qb_stored_tensor_free (c->rows[r].cells[i]);
      g_free (c->rows[r].cells);
      g_free (c->rows[r].tensor_name);
    }
  g_free (c->experiments);
  g_free (c->rows);
  g_free (c);
}

static int
compare_rows (gconstpointer a, gconstpointer b)
{
  const QbCompareRow *p = a, *q = b;

  if (p->position != q->position)
    return p->position < q->position ? -1 : 1;
  return strcmp (p->tensor_name, q->tensor_name);
}

static gboolean
row_differs (const QbCompareRow *row, guint n)
{
  const char *first = NULL;

  for (guint i = 0; i < n; i++)
    {
      const char *format = row->cells[i] ? row->cells[i]->result->format : NULL;
      if (format == NULL)
        return TRUE;            /* missing in one of them */
      if (first == NULL)
        first = format;
      else if (g_ascii_strcasecmp (first, format) != 0)
        return TRUE;
    }
  return FALSE;
}

/* Rows are matched by tensor name: experiments of different models line
 * up where their tensors share names.  A row's position is the smallest
 * any experiment gives it. */
static QbComparison *
build_comparison (GPtrArray *experiments, GPtrArray **tensors)
{
  QbComparison *c = g_new0 (QbComparison, 1);
  g_autoptr(GHashTable) rows = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GArray) list = g_array_new (FALSE, TRUE, sizeof (QbCompareRow));
  guint n = experiments->len;

  c->n_experiments = n;
  c->experiments = (QbExperiment **) g_ptr_array_steal (experiments, NULL);
  for (guint i = 0; i < n; i++)
    for (guint k = 0; k < tensors[i]->len; k++)
      {
        QbStoredTensor *t = g_ptr_array_index (tensors[i], k);
        gpointer found;
        QbCompareRow *row;

        if (!g_hash_table_lookup_extended (rows, t->result->tensor_name, NULL, &found))
          {
            QbCompareRow fresh = { g_strdup (t->result->tensor_name), t->position,
                                   g_new0 (QbStoredTensor *, n), FALSE };
            g_array_append_val (list, fresh);
            found = GUINT_TO_POINTER (list->len - 1);
            g_hash_table_insert (rows, fresh.tensor_name, found);
          }
        row = &g_array_index (list, QbCompareRow, GPOINTER_TO_UINT (found));
        row->position = MIN (row->position, t->position);
        if (row->cells[i] == NULL)
          row->cells[i] = g_steal_pointer (&tensors[i]->pdata[k]);
      }
  g_array_sort (list, compare_rows);
  for (guint r = 0; r < list->len; r++)
    g_array_index (list, QbCompareRow, r).differs = row_differs (&g_array_index (list, QbCompareRow, r), n);
  c->n_rows = list->len;
  c->rows = (QbCompareRow *) g_array_free (g_steal_pointer (&list), FALSE);
  return c;
}

QbComparison *
qb_store_compare (QbStore *store, const gint64 *ids, guint n, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(GPtrArray) experiments = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_experiment_free);
  g_autofree GPtrArray **tensors = g_new0 (GPtrArray *, MAX (n, 1));
  QbComparison *c = NULL;
  gboolean ok = TRUE;

  for (guint i = 0; ok && i < n; i++)
    {
      QbExperiment *e = qb_store_get_experiment_locked (store, ids[i], error);
      ok = e != NULL && (tensors[i] = qb_store_get_tensors_locked (store, ids[i], error)) != NULL;
      if (e != NULL)
        g_ptr_array_add (experiments, e);
    }
  if (ok)
    c = build_comparison (experiments, tensors);
  for (guint i = 0; i < n; i++)
    if (tensors[i] != NULL)
      g_ptr_array_unref (tensors[i]);
  return c;
}

/* -- Pareto fronts -------------------------------------------------------------------- */

GArray *
qb_store_pareto (QbStore *store, gint64 model_id, QbParetoX x, QbMetric metric, GError **error)
{
  QB_STORE_LOCK (store);
  QbExperimentQuery q;
  g_autoptr(GPtrArray) list = NULL;
  GArray *points;

  if ((guint) metric >= QB_METRIC_N)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID, "no such metric");
      return NULL;
    }
  qb_experiment_query_init (&q);
  q.model_id = model_id;
  q.status = QB_EXPERIMENT_DONE;
  q.sort = QB_SORT_ID;
  if ((list = qb_store_list_experiments (store, &q, error)) == NULL)
    return NULL;
  points = g_array_new (FALSE, TRUE, sizeof (QbParetoPoint));
  for (guint i = 0; i < list->len; i++)
    {
      const QbExperiment *e = g_ptr_array_index (list, i);
      QbParetoPoint p = {
        .experiment_id = e->id,
        .x = x == QB_PARETO_X_BPW ? e->totals.bpw : (double) e->totals.quantized_bytes,
        .y = qb_experiment_metric (e, metric),
      };
      if (!isnan (p.x) && !isnan (p.y) && p.x > 0)
        g_array_append_val (points, p);
    }
  qb_pareto_mark ((QbParetoPoint *) points->data, points->len, qb_metric_higher_is_better (metric));
  return points;
}

/* -- calibration sets ------------------------------------------------------------ */

static char **
strv_from_json (const char *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  GPtrArray *strv = g_ptr_array_new ();
  JsonNode *root;

  if (json != NULL && qb_json_parser_load (parser, json, -1, QB_JSON_MAX_NESTING, "plan", NULL) &&
      (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_ARRAY (root))
    {
      JsonArray *array = json_node_get_array (root);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          const char *s = json_array_get_string_element (array, i);
          if (s != NULL)
            g_ptr_array_add (strv, g_strdup (s));
        }
    }
  g_ptr_array_add (strv, NULL);
  return (char **) g_ptr_array_free (strv, FALSE);
}

#define CALIBRATION_COLUMNS \
  "id, hash, name, sources_json, n_tokens, chunk_len, n_chunks, seeded, seed, created, skip_chunks"

static QbCalibrationSet *
read_calibration_set (QbStmt *stmt)
{
  QbCalibrationSet *c = g_new0 (QbCalibrationSet, 1);

  c->id = sqlite3_column_int64 (stmt, 0);
  c->hash = qb_column_strdup (stmt, 1);
  c->name = qb_column_strdup (stmt, 2);
  c->sources = strv_from_json ((const char *) sqlite3_column_text (stmt, 3));
  c->n_tokens = sqlite3_column_int64 (stmt, 4);
  c->chunk_len = sqlite3_column_int64 (stmt, 5);
  c->n_chunks = sqlite3_column_int64 (stmt, 6);
  c->seeded = sqlite3_column_int (stmt, 7) != 0;
  c->seed = (guint64) sqlite3_column_int64 (stmt, 8);
  c->created = sqlite3_column_int64 (stmt, 9);
  c->skip_chunks = sqlite3_column_int64 (stmt, 10);
  return c;
}

QbCalibrationSet *
qb_store_get_calibration_set (QbStore *store, gint64 id, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT " CALIBRATION_COLUMNS
                                          " FROM calibration_set WHERE id = ?1", error);

  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, id);
  switch (sqlite3_step (stmt))
    {
    case SQLITE_ROW:
      return read_calibration_set (stmt);
    case SQLITE_DONE:
      qb_store_not_found (store, error, "calibration set", id);
      return NULL;
    default:
      qb_store_fail (store, error, "reading a calibration set");
      return NULL;
    }
}

GPtrArray *
qb_store_list_calibration_sets (QbStore *store, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT " CALIBRATION_COLUMNS
                                          " FROM calibration_set ORDER BY created DESC, id DESC",
                                          error);
  g_autoptr(GPtrArray) sets = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_calibration_set_free);
  int rc;

  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (sets, read_calibration_set (stmt));
  if (rc != SQLITE_DONE)
    {
      qb_store_fail (store, error, "listing calibration sets");
      return NULL;
    }
  return g_steal_pointer (&sets);
}
