/* SPDX-License-Identifier: MIT */
/* qb-store-import.c — experiments back from a JSON export (its layout:
 * qb-store-export.c).  Every field is checked: an export is a file from
 * elsewhere.  An experiment whose uuid is already here is not imported
 * again (its tags are merged); one exported while running comes in as
 * interrupted. */
#include "qb-store-export-private.h"
#include "qb-file.h"
#include "qb-json.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* -- reading JSON ----------------------------------------------------------------- */

/* Errors name the file and the place: "FILE: experiments[2].tensors[7].bpw: ...". */
typedef struct {
  const char *origin;
  GError    **error;
} Ctx;

static gboolean G_GNUC_PRINTF (3, 4)
invalid (Ctx *c, const char *where, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (c->error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID, "%s: %s: %s",
               c->origin, where, message);
  return FALSE;
}

static JsonNode *
member (JsonObject *o, const char *key)
{
  return json_object_has_member (o, key) ? json_object_get_member (o, key) : NULL;
}

static gboolean
is_null (JsonNode *n)
{
  return n == NULL || JSON_NODE_HOLDS_NULL (n);
}

static gboolean
get_string (Ctx *c, JsonObject *o, const char *where, const char *key, gboolean nullable,
            char **out)
{
  JsonNode *n = member (o, key);

  if (is_null (n) && nullable)
    {
      *out = NULL;
      return TRUE;
    }
  if (n == NULL || json_node_get_value_type (n) != G_TYPE_STRING)
    return invalid (c, where, "'%s' must be a string", key);
  *out = g_strdup (json_node_get_string (n));
  return TRUE;
}

static gboolean
get_int (Ctx *c, JsonObject *o, const char *where, const char *key, gint64 min, gint64 *out)
{
  JsonNode *n = member (o, key);

  if (n == NULL || json_node_get_value_type (n) != G_TYPE_INT64)
    return invalid (c, where, "'%s' must be an integer", key);
  *out = json_node_get_int (n);
  if (*out < min)
    return invalid (c, where, "'%s' is %" G_GINT64_FORMAT ", below %" G_GINT64_FORMAT,
                    key, *out, min);
  return TRUE;
}

/* Absent or null (exports made before the field): -1. */
static gboolean
get_optional_int (Ctx *c, JsonObject *o, const char *where, const char *key, gint64 *out)
{
  if (is_null (member (o, key)))
    {
      *out = -1;
      return TRUE;
    }
  return get_int (c, o, where, key, 0, out);
}

static gboolean
node_double (JsonNode *n, double *out)
{
  GType type = n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;

  if (is_null (n))
    *out = NAN;
  else if (type == G_TYPE_DOUBLE || type == G_TYPE_INT64)
    *out = json_node_get_double (n);
  else if (type == G_TYPE_STRING && strcmp (json_node_get_string (n), "inf") == 0)
    *out = INFINITY;
  else if (type == G_TYPE_STRING && strcmp (json_node_get_string (n), "-inf") == 0)
    *out = -INFINITY;
  else
    return FALSE;
  return TRUE;
}

static gboolean
get_doubles (Ctx *c, JsonObject *o, const char *where, const NamedDouble *d, guint n)
{
  for (guint i = 0; i < n; i++)
    if (!node_double (member (o, d[i].key), d[i].value))
      return invalid (c, where, "'%s' must be a number, null, \"inf\" or \"-inf\"", d[i].key);
  return TRUE;
}

/* ISO 8601; the fraction is read as digits, not through a double, so
 * microseconds come back exactly. */
static gboolean
parse_time (const char *text, gint64 *us)
{
  g_autoptr(GDateTime) t = NULL;
  g_autoptr(GString) whole = g_string_new (NULL);
  const char *dot = strchr (text, '.');
  gint64 fraction = 0;

  if (dot == NULL)
    g_string_assign (whole, text);
  else
    {
      const char *p = dot + 1;
      guint digits = 0;

      g_string_append_len (whole, text, dot - text);
      for (; g_ascii_isdigit (*p); p++, digits++)
        if (digits < 6)
          fraction = fraction * 10 + (*p - '0');
      if (digits == 0)
        return FALSE;
      for (; digits < 6; digits++)
        fraction *= 10;
      g_string_append (whole, p);
    }
  if ((t = g_date_time_new_from_iso8601 (whole->str, NULL)) == NULL)
    return FALSE;
  *us = g_date_time_to_unix (t) * G_USEC_PER_SEC + fraction;
  return TRUE;
}

static gboolean
get_time (Ctx *c, JsonObject *o, const char *where, const char *key, gboolean nullable,
          gint64 *out)
{
  g_autofree char *text = NULL;

  if (!get_string (c, o, where, key, nullable, &text))
    return FALSE;
  *out = 0;
  if (text != NULL && !parse_time (text, out))
    return invalid (c, where, "'%s' is not an ISO 8601 time: %s", key, text);
  return TRUE;
}

static JsonObject *
get_object (Ctx *c, JsonObject *o, const char *where, const char *key, gboolean nullable)
{
  JsonNode *n = member (o, key);

  if (n != NULL && JSON_NODE_HOLDS_OBJECT (n))
    return json_node_get_object (n);
  if (!(nullable && is_null (n)))
    invalid (c, where, "'%s' must be an object", key);
  return NULL;
}

static JsonArray *
get_array (Ctx *c, JsonObject *o, const char *where, const char *key)
{
  JsonNode *n = member (o, key);

  if (n != NULL && JSON_NODE_HOLDS_ARRAY (n))
    return json_node_get_array (n);
  invalid (c, where, "'%s' must be an array", key);
  return NULL;
}

static gboolean
get_strv (Ctx *c, JsonObject *o, const char *where, const char *key, char ***out)
{
  JsonArray *a = get_array (c, o, where, key);
  g_autoptr(GStrvBuilder) strv = g_strv_builder_new ();

  if (a == NULL)
    return FALSE;
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *n = json_array_get_element (a, i);
      if (json_node_get_value_type (n) != G_TYPE_STRING)
        return invalid (c, where, "'%s'[%u] must be a string", key, i);
      g_strv_builder_add (strv, json_node_get_string (n));
    }
  *out = g_strv_builder_end (strv);
  return TRUE;
}

static char *
node_to_text (JsonNode *n)
{
  return qb_json_to_string (n);
}

static QbModelRecord *
read_model (Ctx *c, JsonObject *o, const char *where)
{
  g_autoptr(QbModelRecord) m = g_new0 (QbModelRecord, 1);
  JsonObject *arch;
  gint64 size = 0, n_params = 0, n_tensors = 0;

  if (!get_string (c, o, where, "fingerprint", FALSE, &m->fingerprint) ||
      !get_string (c, o, where, "path", FALSE, &m->path) ||
      !get_int (c, o, where, "file_size", 0, &size) ||
      !get_string (c, o, where, "name", TRUE, &m->name) ||
      !get_string (c, o, where, "family", TRUE, &m->family) ||
      !get_int (c, o, where, "n_params", 0, &n_params) ||
      !get_int (c, o, where, "n_tensors", 0, &n_tensors) ||
      (arch = get_object (c, o, where, "arch", FALSE)) == NULL ||
      !get_time (c, o, where, "first_seen", FALSE, &m->first_seen))
    return NULL;
  if (*m->fingerprint == '\0')
    {
      invalid (c, where, "'fingerprint' is empty");
      return NULL;
    }
  m->file_size = size;
  m->n_params = n_params;
  m->n_tensors = MIN (n_tensors, G_MAXUINT);
  m->arch_json = node_to_text (member (o, "arch"));
  return g_steal_pointer (&m);
}

static QbCalibrationSet *
read_calibration_set (Ctx *c, JsonObject *o, const char *where)
{
  g_autoptr(QbCalibrationSet) s = g_new0 (QbCalibrationSet, 1);
  JsonNode *seeded = member (o, "seeded");
  gint64 n_tokens = 0, chunk_len = 0, n_chunks = 0, skip_chunks = 0, seed = 0;

  if (!get_string (c, o, where, "hash", FALSE, &s->hash) ||
      !get_string (c, o, where, "name", FALSE, &s->name) ||
      !get_strv (c, o, where, "sources", &s->sources) ||
      !get_int (c, o, where, "n_tokens", 0, &n_tokens) ||
      !get_int (c, o, where, "chunk_len", 0, &chunk_len) ||
      !get_int (c, o, where, "n_chunks", 0, &n_chunks) ||
      !get_int (c, o, where, "seed", G_MININT64, &seed) ||
      (member (o, "skip_chunks") != NULL && !get_int (c, o, where, "skip_chunks", 0, &skip_chunks)) ||
      !get_time (c, o, where, "created", FALSE, &s->created))
    return NULL;
  if (seeded == NULL || json_node_get_value_type (seeded) != G_TYPE_BOOLEAN)
    {
      invalid (c, where, "'seeded' must be true or false");
      return NULL;
    }
  s->seeded = json_node_get_boolean (seeded);
  s->n_tokens = n_tokens;
  s->chunk_len = MIN (chunk_len, G_MAXUINT);
  s->n_chunks = MIN (n_chunks, G_MAXUINT);
  s->skip_chunks = MIN (skip_chunks, G_MAXUINT);
  s->seed = (guint64) seed;
  return g_steal_pointer (&s);
}

static gboolean
read_double_array (Ctx *c, JsonObject *o, const char *where, const char *key, guint n,
                   double *out)
{
  JsonArray *a = get_array (c, o, where, key);

  if (a == NULL)
    return FALSE;
  if (json_array_get_length (a) != n)
    return invalid (c, where, "'%s' has %u values, expected %u", key,
                    json_array_get_length (a), n);
  for (guint i = 0; i < n; i++)
    if (!node_double (json_array_get_element (a, i), &out[i]))
      return invalid (c, where, "'%s'[%u] must be a number", key, i);
  return TRUE;
}

static QbEvaluation *
read_evaluation (Ctx *c, JsonObject *o, const char *where)
{
  g_autoptr(QbEvaluation) e = qb_evaluation_new ();
  const NamedDouble values[] = EVALUATION_DOUBLES (e);
  g_autofree char *chunks_where = g_strconcat (where, ".chunks", NULL);
  JsonObject *chunks;
  JsonArray *ppl;
  gint64 n_ctx = 0, n_chunks = 0, n_tokens = 0;

  if (!get_time (c, o, where, "created", FALSE, &e->created) ||
      !get_string (c, o, where, "text_name", TRUE, &e->text_name) ||
      !get_string (c, o, where, "text_hash", FALSE, &e->text_hash) ||
      !get_int (c, o, where, "n_ctx", 0, &n_ctx) ||
      !get_int (c, o, where, "n_chunks", 0, &n_chunks) ||
      !get_int (c, o, where, "n_tokens", 0, &n_tokens) ||
      !get_doubles (c, o, where, values, G_N_ELEMENTS (values)) ||
      !get_string (c, o, where, "device", TRUE, &e->device) ||
      (chunks = get_object (c, o, where, "chunks", FALSE)) == NULL ||
      (ppl = get_array (c, chunks, chunks_where, "perplexity")) == NULL)
    return NULL;
  e->n_ctx = MIN (n_ctx, G_MAXUINT);
  e->n_chunks = MIN (n_chunks, G_MAXUINT);
  e->n_tokens = n_tokens;
  e->n_chunk_results = json_array_get_length (ppl);
  e->chunk_ppl = g_new (double, MAX (e->n_chunk_results, 1));
  e->chunk_kld = g_new (double, MAX (e->n_chunk_results, 1));
  if (!read_double_array (c, chunks, chunks_where, "perplexity", e->n_chunk_results, e->chunk_ppl) ||
      !read_double_array (c, chunks, chunks_where, "kld_mean", e->n_chunk_results, e->chunk_kld))
    return NULL;
  return g_steal_pointer (&e);
}

static QbHistogram *
read_histogram (Ctx *c, JsonObject *o, const char *where, const char *key, gboolean *ok)
{
  g_autofree char *here = g_strconcat (where, ".", key, NULL);
  g_autoptr(QbHistogram) h = NULL;
  JsonObject *ho;
  JsonArray *counts;
  guint n;

  *ok = FALSE;
  if ((ho = get_object (c, o, where, key, TRUE)) == NULL)
    {
      *ok = is_null (member (o, key));
      return NULL;
    }
  if ((counts = get_array (c, ho, here, "counts")) == NULL)
    return NULL;
  n = json_array_get_length (counts);
  if (n == 0 || n > (1u << 20))
    {
      invalid (c, here, "%u bins is out of range", n);
      return NULL;
    }
  h = g_new0 (QbHistogram, 1);
  h->n_bins = n;
  h->counts = g_new (guint64, n);
  {
    const NamedDouble edges[] = { { "lo", &h->lo }, { "hi", &h->hi } };
    if (!get_doubles (c, ho, here, edges, 2))
      return NULL;
  }
  for (guint i = 0; i < n; i++)
    {
      JsonNode *v = json_array_get_element (counts, i);
      if (json_node_get_value_type (v) != G_TYPE_INT64 || json_node_get_int (v) < 0)
        {
          invalid (c, here, "counts[%u] must be a non-negative integer", i);
          return NULL;
        }
      h->counts[i] = json_node_get_int (v);
    }
  *ok = TRUE;
  return g_steal_pointer (&h);
}

static float *
read_floats (Ctx *c, JsonObject *o, const char *where, const char *key, guint n)
{
  g_autofree char *text = NULL;
  g_autofree guchar *bytes = NULL;
  float *x;
  gsize len = 0;

  if (!get_string (c, o, where, key, FALSE, &text))
    return NULL;
  bytes = g_base64_decode (text, &len);
  if (len != (gsize) n * 4)
    {
      invalid (c, where, "'%s' holds %" G_GSIZE_FORMAT " bytes, expected %u floats", key, len, n);
      return NULL;
    }
  x = g_new (float, n);
  memcpy (x, bytes, len);
#if G_BYTE_ORDER != G_LITTLE_ENDIAN
  for (guint i = 0; i < n; i++)
    {
      guint32 u;
      memcpy (&u, &x[i], 4);
      u = GUINT32_FROM_LE (u);
      memcpy (&x[i], &u, 4);
    }
#endif
  return x;
}

static gboolean
read_channels (Ctx *c, JsonObject *o, const char *where, QbTensorResult *r)
{
  g_autofree char *here = g_strconcat (where, ".channels", NULL);
  g_autofree char *encoding = NULL;
  JsonObject *ch = get_object (c, o, where, "channels", TRUE);
  gint64 n = 0;

  if (ch == NULL)
    return is_null (member (o, "channels"));
  if (!get_int (c, ch, here, "n", 1, &n) ||
      !get_string (c, ch, here, "encoding", FALSE, &encoding))
    return FALSE;
  if (strcmp (encoding, "f32le-base64") != 0)
    return invalid (c, here, "encoding '%s' is not known", encoding);
  if (n > (1 << 24))
    return invalid (c, here, "%" G_GINT64_FORMAT " channels is too many", n);
  if ((r->channel_min = read_floats (c, ch, here, "min", n)) == NULL ||
      (r->channel_max = read_floats (c, ch, here, "max", n)) == NULL)
    return FALSE;
  r->n_channels = n;
  return TRUE;
}

/* A 3-D expert tensor's experts (absent for other tensors and in exports
 * made before experts were stored). */
static gboolean
read_experts (Ctx *c, JsonObject *o, const char *where, QbTensorResult *r)
{
  static const char * const keys[3] = { "hist_original", "hist_quantized", "hist_error" };
  JsonArray *a;
  guint n;

  if (is_null (member (o, "experts")))
    return TRUE;
  if ((a = get_array (c, o, where, "experts")) == NULL)
    return FALSE;
  n = json_array_get_length (a);
  if (n > (1u << 16))
    return invalid (c, where, "%u experts is too many", n);
  qb_tensor_result_set_n_experts (r, n);
  qb_tensor_result_set_n_experts_hists (r);
  for (guint e = 0; e < n; e++)
    {
      g_autofree char *here = g_strdup_printf ("%s.experts[%u]", where, e);
      JsonNode *node = json_array_get_element (a, e);
      NamedDouble values[QB_N_EXPERT_METRICS];
      JsonObject *x;
      gboolean ok;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return invalid (c, here, "must be an object");
      x = json_node_get_object (node);
      /* A key an older export lacks reads as not measured (NAN). */
      for (guint i = 0; i < QB_N_EXPERT_METRICS; i++)
        values[i] = (NamedDouble) { qb_expert_metrics[i].key,
                                    QB_EXPERT_METRIC (&r->expert_metrics[e], i) };
      if (!get_doubles (c, x, here, values, G_N_ELEMENTS (values)))
        return FALSE;
      for (guint k = 0; k < 3; k++)
        {
          r->expert_hists[3 * e + k] = read_histogram (c, x, here, keys[k], &ok);
          if (!ok)
            return FALSE;
        }
    }
  return TRUE;
}

static QbStoredTensor *
read_tensor (Ctx *c, JsonObject *o, const char *where)
{
  g_autoptr(QbStoredTensor) t = qb_stored_tensor_new ();
  QbTensorResult *r = t->result;
  const NamedDouble values[] = { { "bpw", &r->bpw }, { "seconds", &r->seconds } };
  const NamedDouble metrics[] = METRICS_DOUBLES (&r->metrics);
  g_autofree char *metrics_where = g_strconcat (where, ".metrics", NULL);
  JsonObject *m;
  gint64 position = 0, n_params = 0, original = 0, bytes = 0;
  gboolean ok;

  if (!get_int (c, o, where, "position", 0, &position) ||
      !get_string (c, o, where, "name", FALSE, &r->tensor_name) ||
      !get_string (c, o, where, "format", TRUE, &r->format) ||
      !get_string (c, o, where, "requested_format", TRUE, &r->requested_format) ||
      !get_string (c, o, where, "fallback_reason", TRUE, &r->fallback_reason) ||
      !get_string (c, o, where, "method", TRUE, &r->method) ||
      !get_int (c, o, where, "n_params", 0, &n_params) ||
      !get_int (c, o, where, "original_bytes", 0, &original) ||
      !get_int (c, o, where, "bytes", 0, &bytes) ||
      !get_optional_int (c, o, where, "n_nonfinite", &r->n_nonfinite) ||
      !get_doubles (c, o, where, values, G_N_ELEMENTS (values)) ||
      (m = get_object (c, o, where, "metrics", FALSE)) == NULL ||
      !get_doubles (c, m, metrics_where, metrics, G_N_ELEMENTS (metrics)))
    return NULL;
  t->position = MIN (position, G_MAXUINT);
  t->original_bytes = original;
  r->n_params = n_params;
  r->bytes = bytes;
  r->hist_original = read_histogram (c, o, where, "hist_original", &ok);
  if (!ok)
    return NULL;
  r->hist_quantized = read_histogram (c, o, where, "hist_quantized", &ok);
  if (!ok)
    return NULL;
  r->hist_error = read_histogram (c, o, where, "hist_error", &ok);
  if (!ok || !read_channels (c, o, where, r) || !read_experts (c, o, where, r))
    return NULL;
  return g_steal_pointer (&t);
}

/* -- import ------------------------------------------------------------------------ */

static gint64
find_by_uuid (QbStore *store, const char *uuid, GError **error)
{
  g_autoptr(QbStmt) stmt = qb_store_stmt (store, "SELECT id FROM experiment WHERE uuid = ?1", error);

  if (stmt == NULL)
    return -1;
  qb_bind_text (stmt, 1, uuid);
  return qb_store_step_id (store, stmt, error, "looking up an experiment");
}

/* The summary fields of an exported experiment. */
static gboolean
read_summary (Ctx *c, JsonObject *o, const char *where, QbExperiment *e)
{
  QbExperimentTotals *t = &e->totals;
  const NamedDouble totals[] = TOTALS_DOUBLES (t);
  g_autofree char *totals_where = g_strconcat (where, ".totals", NULL);
  g_autofree char *status = NULL;
  JsonObject *to;
  gint64 threads = 0, n_tensors = 0, n_done = 0, n_params = 0, original = 0, quantized = 0;
  gint64 n_fallbacks = 0;

  g_clear_pointer (&e->notes, g_free);
  g_clear_pointer (&e->tags, g_strfreev);
  if (!get_string (c, o, where, "uuid", FALSE, &e->uuid) ||
      !get_string (c, o, where, "name", FALSE, &e->name) ||
      !get_string (c, o, where, "status", FALSE, &status) ||
      !get_time (c, o, where, "created", FALSE, &e->created) ||
      !get_time (c, o, where, "updated", FALSE, &e->updated) ||
      !get_time (c, o, where, "finished", TRUE, &e->finished) ||
      !get_int (c, o, where, "threads", 0, &threads) ||
      !get_string (c, o, where, "backend", FALSE, &e->backend) ||
      !get_int (c, o, where, "n_tensors", 0, &n_tensors) ||
      !get_int (c, o, where, "n_tensors_done", 0, &n_done) ||
      !get_string (c, o, where, "notes", FALSE, &e->notes) ||
      !get_strv (c, o, where, "tags", &e->tags) ||
      !get_string (c, o, where, "error", TRUE, &e->error_message) ||
      (to = get_object (c, o, where, "totals", FALSE)) == NULL ||
      !get_int (c, to, totals_where, "n_params", 0, &n_params) ||
      !get_int (c, to, totals_where, "original_bytes", 0, &original) ||
      !get_int (c, to, totals_where, "quantized_bytes", 0, &quantized) ||
      !get_int (c, to, totals_where, "n_fallbacks", 0, &n_fallbacks) ||
      !get_doubles (c, to, totals_where, totals, G_N_ELEMENTS (totals)))
    return FALSE;
  if (!qb_experiment_status_parse (status, &e->status))
    return invalid (c, where, "'%s' is not a status", status);
  if (*e->uuid == '\0' || *e->name == '\0')
    return invalid (c, where, "'uuid' and 'name' cannot be empty");
  for (guint i = 0; e->tags[i]; i++)
    if (!qb_tag_is_valid (e->tags[i]))
      return invalid (c, where, "'%s' is not a valid tag", e->tags[i]);
  /* Its process is on another machine or long gone. */
  if (e->status == QB_EXPERIMENT_RUNNING)
    {
      e->status = QB_EXPERIMENT_INTERRUPTED;
      e->finished = e->updated;
    }
  e->threads = MIN (threads, G_MAXUINT);
  e->n_tensors = MIN (n_tensors, G_MAXUINT);
  e->n_tensors_done = MIN (n_done, G_MAXUINT);
  t->n_params = n_params;
  t->original_bytes = original;
  t->quantized_bytes = quantized;
  t->n_fallbacks = MIN (n_fallbacks, G_MAXUINT);
  return TRUE;
}

static gint64
insert_imported (QbStore *store, const QbExperiment *e, gint64 model_id, gint64 calibration_id,
                 GError **error)
{
  const QbExperimentTotals *t = &e->totals;
  const double values[] = {
    t->bpw, t->compression, t->seconds, t->sqnr_db, t->rmse_rel, t->cosine_min,
    t->max_abs_err, t->out_rel_err,
  };
  g_autoptr(QbStmt) stmt = qb_store_stmt (store,
    "INSERT INTO experiment (uuid, model_id, name, created, updated, finished, status, plan_json, "
    "threads, backend, n_tensors, n_tensors_done, notes, error, calibration_set_id, n_params, "
    "original_bytes, quantized_bytes, n_fallbacks, bpw, compression, seconds, sqnr_db, rmse_rel, "
    "cosine_min, max_abs_err, out_rel_err) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
    "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)", error);

  if (stmt == NULL)
    return 0;
  qb_bind_text (stmt, 1, e->uuid);
  sqlite3_bind_int64 (stmt, 2, model_id);
  qb_bind_text (stmt, 3, e->name);
  sqlite3_bind_int64 (stmt, 4, e->created);
  sqlite3_bind_int64 (stmt, 5, e->updated);
  if (e->finished != 0)
    sqlite3_bind_int64 (stmt, 6, e->finished);
  qb_bind_text (stmt, 7, qb_experiment_status_name (e->status));
  qb_bind_text (stmt, 8, e->plan_json);
  sqlite3_bind_int64 (stmt, 9, e->threads);
  qb_bind_text (stmt, 10, e->backend);
  sqlite3_bind_int64 (stmt, 11, e->n_tensors);
  sqlite3_bind_int64 (stmt, 12, e->n_tensors_done);
  qb_bind_text (stmt, 13, e->notes);
  qb_bind_text (stmt, 14, e->error_message);
  if (calibration_id != 0)
    sqlite3_bind_int64 (stmt, 15, calibration_id);
  sqlite3_bind_int64 (stmt, 16, t->n_params);
  sqlite3_bind_int64 (stmt, 17, t->original_bytes);
  sqlite3_bind_int64 (stmt, 18, t->quantized_bytes);
  sqlite3_bind_int64 (stmt, 19, t->n_fallbacks);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    sqlite3_bind_double (stmt, 20 + i, values[i]);
  if (!qb_store_exec_step (store, stmt, error, "importing an experiment"))
    return 0;
  return sqlite3_last_insert_rowid (store->db);
}

/* The stored-tensor count is what is there, whatever the file said. */
/* Inside the import's transaction: one experiment, its id in *id (0 when
 * it was already there). */
static gboolean
import_experiment (QbStore *store, Ctx *c, JsonObject *o, const char *where, gint64 *id)
{
  g_autoptr(QbExperiment) e = qb_experiment_new ();
  g_autoptr(QbModelRecord) model = NULL;
  g_autoptr(QbCalibrationSet) calibration = NULL;
  g_autofree char *model_where = g_strconcat (where, ".model", NULL);
  g_autofree char *calib_where = g_strconcat (where, ".calibration_set", NULL);
  JsonObject *mo, *co;
  JsonArray *evaluations, *tensors;
  gint64 existing, model_id, calibration_id = 0;

  *id = 0;
  if (!read_summary (c, o, where, e))
    return FALSE;
  if ((existing = find_by_uuid (store, e->uuid, c->error)) < 0)
    return FALSE;
  if (existing > 0)
    return qb_store_tag_locked (store, existing, (const char * const *) e->tags, c->error);
  if ((mo = get_object (c, o, where, "model", FALSE)) == NULL ||
      (model = read_model (c, mo, model_where)) == NULL)
    return FALSE;
  co = get_object (c, o, where, "calibration_set", TRUE);
  if (co == NULL && !is_null (member (o, "calibration_set")))
    return FALSE;
  if (co != NULL && (calibration = read_calibration_set (c, co, calib_where)) == NULL)
    return FALSE;
  if (get_object (c, o, where, "plan", FALSE) == NULL)
    return FALSE;
  e->plan_json = node_to_text (member (o, "plan"));
  if ((evaluations = get_array (c, o, where, "evaluations")) == NULL ||
      (tensors = get_array (c, o, where, "tensors")) == NULL)
    return FALSE;
  if ((model_id = qb_store_add_model_locked (store, model, FALSE, c->error)) == 0 ||
      (calibration && (calibration_id = qb_store_add_calibration_set_locked (store, calibration,
                                                                             c->error)) == 0) ||
      (*id = insert_imported (store, e, model_id, calibration_id, c->error)) == 0 ||
      !qb_store_tag_locked (store, *id, (const char * const *) e->tags, c->error))
    return FALSE;
  for (guint i = 0; i < json_array_get_length (evaluations); i++)
    {
      g_autofree char *here = g_strdup_printf ("%s.evaluations[%u]", where, i);
      JsonNode *n = json_array_get_element (evaluations, i);
      g_autoptr(QbEvaluation) ev = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        return invalid (c, here, "must be an object");
      if ((ev = read_evaluation (c, json_node_get_object (n), here)) == NULL ||
          !qb_store_write_evaluation_locked (store, *id, ev, NULL, c->error))
        return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (tensors); i++)
    {
      g_autofree char *here = g_strdup_printf ("%s.tensors[%u]", where, i);
      JsonNode *n = json_array_get_element (tensors, i);
      g_autoptr(QbStoredTensor) t = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        return invalid (c, here, "must be an object");
      if ((t = read_tensor (c, json_node_get_object (n), here)) == NULL ||
          !qb_store_write_tensor_locked (store, *id, t, c->error))
        return FALSE;
    }
  return qb_store_count_tensors_locked (store, *id, c->error);
}

static JsonArray *
read_envelope (Ctx *c, JsonParser *parser)
{
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *o;
  g_autofree char *format = NULL;
  gint64 version = 0;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      invalid (c, "top level", "not a Quantbench experiment export (expected an object)");
      return NULL;
    }
  o = json_node_get_object (root);
  if (!get_string (c, o, "top level", "format", FALSE, &format))
    return NULL;
  if (strcmp (format, EXPORT_FORMAT) != 0)
    {
      invalid (c, "top level", "format '%s' is not '" EXPORT_FORMAT "'", format);
      return NULL;
    }
  if (!get_int (c, o, "top level", "version", 1, &version))
    return NULL;
  if (version > EXPORT_VERSION)
    {
      invalid (c, "top level", "written by a newer Quantbench (export version %" G_GINT64_FORMAT
               "; this one reads version %d)", version, EXPORT_VERSION);
      return NULL;
    }
  return get_array (c, o, "top level", "experiments");
}

/* -- streaming ------------------------------------------------------------------
 *
 * An export of hundreds of MB would be a json-glib tree of many GB: the
 * text is walked instead (its nesting checked first), the envelope parsed
 * with an empty "experiments" array, then each experiment parsed alone —
 * memory for one experiment at a time. */

static gsize
skip_space (const char *t, gsize len, gsize i)
{
  while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
    i++;
  return i;
}

/* The end of the value starting at i (len when the text ends first). */
static gsize
value_end (const char *t, gsize len, gsize i)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  if (i < len && t[i] != '"' && t[i] != '{' && t[i] != '[')
    {
      while (i < len && !strchr (",}] \t\r\n", t[i]))
        i++;
      return i;
    }
  for (; i < len; i++)
    {
      char c = t[i];
      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            {
              in_string = FALSE;
              if (depth == 0)
                return i + 1;
            }
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '{' || c == '[')
        depth++;
      else if ((c == '}' || c == ']') && --depth == 0)
        return i + 1;
    }
  return len;
}

/* The byte range of the top-level member `key`'s value. */
static gboolean
find_member (const char *t, gsize len, const char *key, gsize *start, gsize *end)
{
  gsize i = skip_space (t, len, 0), klen = strlen (key);

  if (i >= len || t[i] != '{')
    return FALSE;
  for (i++;;)
    {
      gsize k, k_end, v;

      i = skip_space (t, len, i);
      if (i >= len || t[i] != '"')
        return FALSE;
      k = i + 1;
      k_end = value_end (t, len, i);     /* after the closing quote */
      i = skip_space (t, len, k_end);
      if (i >= len || t[i] != ':')
        return FALSE;
      v = skip_space (t, len, i + 1);
      i = value_end (t, len, v);
      if (k_end - k == klen + 1 && strncmp (t + k, key, klen) == 0)
        {
          *start = v;
          *end = i;
          return i <= len && i > v;
        }
      i = skip_space (t, len, i);
      if (i >= len || t[i] != ',')
        return FALSE;
      i++;
    }
}

static gboolean
parse_text (Ctx *c, JsonParser *parser, const char *text, gsize len, const char *where)
{
  g_autoptr(GError) local = NULL;

  if (json_parser_load_from_data (parser, text, (gssize) len, &local))
    return TRUE;
  g_set_error (c->error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID, "%s: %s: not valid JSON: %s",
               c->origin, where, local->message);
  return FALSE;
}

static gboolean
import_node (QbStore *store, Ctx *c, JsonNode *n, const char *where, GArray *ids, guint *skipped)
{
  gint64 id = 0;

  if (n == NULL || !JSON_NODE_HOLDS_OBJECT (n))
    return invalid (c, where, "must be an object");
  if (!import_experiment (store, c, json_node_get_object (n), where, &id))
    return FALSE;
  if (id > 0)
    g_array_append_val (ids, id);
  else
    (*skipped)++;
  return TRUE;
}

/* Imports the elements of the array at t[start..end), one parse each. */
static gboolean
import_array (QbStore *store, Ctx *c, const char *t, gsize start, gsize end, GArray *ids,
              guint *skipped)
{
  gsize i = skip_space (t, end, start + 1);

  for (guint n = 0; i < end && t[i] != ']'; n++)
    {
      g_autofree char *where = g_strdup_printf ("experiments[%u]", n);
      g_autoptr(JsonParser) parser = json_parser_new ();
      gsize e = value_end (t, end, i);

      if (!parse_text (c, parser, t + i, e - i, where) ||
          !import_node (store, c, json_parser_get_root (parser), where, ids, skipped))
        return FALSE;
      i = skip_space (t, end, e);
      if (i < end && t[i] == ',')
        i = skip_space (t, end, i + 1);
      else if (i >= end || t[i] != ']')
        return invalid (c, "experiments", "expected ',' or ']' at byte %" G_GSIZE_FORMAT, i);
    }
  return TRUE;
}

gboolean
qb_store_import_json (QbStore *store, const char *json, gssize length, const char *origin,
                      GArray **new_ids, guint *n_skipped, GError **error)
{
  QB_STORE_LOCK (store);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GError) local = NULL;
  g_autoptr(GString) envelope = NULL;
  Ctx c = { origin ? origin : "import", error };
  gsize len = length < 0 ? strlen (json) : (gsize) length, start = 0, end = 0;
  JsonArray *whole;
  guint skipped = 0;
  gboolean ok = TRUE;

  if (!qb_json_check_depth (json, (gssize) len, QB_JSON_MAX_NESTING, c.origin, &local))
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID, "%s: not valid JSON: %s",
                   c.origin, local->message);
      return FALSE;
    }
  /* The envelope without its experiments (they are read one by one); a
   * text that is not laid out so is parsed whole, for its error. */
  if (find_member (json, len, "experiments", &start, &end) && json[start] == '[')
    {
      envelope = g_string_new_len (json, start);
      g_string_append (envelope, "[]");
      g_string_append_len (envelope, json + end, len - end);
    }
  else
    start = end = 0;
  if (!parse_text (&c, parser, envelope ? envelope->str : json, envelope ? envelope->len : len,
                   "top level") ||
      (whole = read_envelope (&c, parser)) == NULL)
    return FALSE;
  /* All or nothing: a bad experiment anywhere leaves the database as it was. */
  if (!qb_store_begin (store, error))
    return FALSE;
  if (envelope != NULL)
    ok = import_array (store, &c, json, start, end, ids, &skipped);
  for (guint i = 0; ok && envelope == NULL && i < json_array_get_length (whole); i++)
    {
      g_autofree char *where = g_strdup_printf ("experiments[%u]", i);
      ok = import_node (store, &c, json_array_get_element (whole, i), where, ids, &skipped);
    }
  if (!ok)
    {
      qb_store_rollback (store);
      return FALSE;
    }
  if (!qb_store_commit (store, error))
    return FALSE;
  if (new_ids != NULL)
    *new_ids = g_steal_pointer (&ids);
  if (n_skipped != NULL)
    *n_skipped = skipped;
  return TRUE;
}

gboolean
qb_store_import_file (QbStore *store, const char *path, GArray **new_ids, guint *n_skipped,
                      GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GMappedFile) file = qb_file_map (path, &local);

  if (file == NULL)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED, "%s", local->message);
      return FALSE;
    }
  return qb_store_import_json (store, g_mapped_file_get_length (file) ? g_mapped_file_get_contents (file) : "",
                               g_mapped_file_get_length (file), path, new_ids, n_skipped, error);
}
