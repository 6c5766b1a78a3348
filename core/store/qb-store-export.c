/* SPDX-License-Identifier: MIT */
/* qb-store-export.c — experiments to JSON and CSV (qb-store-import.c
 * reads the JSON back).
 *
 * The JSON export is lossless: an import into another database gives
 * back every field of every experiment, its model record, calibration
 * set, evaluations with per-chunk results, tensors, histograms and
 * channel ranges.  Its layout (version 1):
 *
 *   { "format": "quantbench-experiments", "version": 1,
 *     "experiments": [ { "uuid", "name", "status", "created", ...,
 *                        "model": {...}, "calibration_set": {...} | null,
 *                        "plan": {...}, "totals": {...}, "evaluations": [...],
 *                        "tensors": [ { ..., "metrics": {...},
 *                                       "hist_original": { "lo", "hi", "counts": [...] },
 *                                       "channels": { "n", "encoding": "f32le-base64",
 *                                                     "min": "...", "max": "..." },
 *                                       "experts": [ { "sqnr_db", "rmse_rel", "mse", "cosine",
 *                                                      "max_abs_err", "wmse", "out_rel_err",
 *                                                      "min", "max", "outlier_share",
 *                                                      "mean", "std", "kurtosis",
 *                                                      "hist_original", "hist_quantized",
 *                                                      "hist_error" } ]
 *                                       (3-D expert tensors only; exports made before
 *                                       schema 9 have sqnr_db and rmse_rel only, before
 *                                       schema 10 no moments) } ] } ] }
 *
 * Times are ISO 8601 in UTC with microseconds.  Doubles are written in the
 * fewest digits that read back exactly; a measure not taken (NAN) is
 * null, and infinities are the strings "inf" and "-inf".  Per-channel
 * ranges — thousands of floats a tensor — are their little-endian
 * binary32 bytes in base64 (in Python: numpy.frombuffer (base64.b64decode
 * (s), "<f4")).  Local ids are not
 * exported: an experiment is known by its uuid, a model by its
 * fingerprint, a calibration set by its hash.  That is what makes import
 * idempotent: an experiment whose uuid is already in the database is not
 * imported again (its tags are merged).  An experiment exported while
 * `running` is imported as `interrupted`: its process lives elsewhere.
 */
#include "qb-store-export-private.h"
#include "qb-file.h"
#include "qb-json.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixoutputstream.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

/* -- writing JSON --------------------------------------------------------------- */

static char *
format_time (gint64 us)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  g_autoptr(GDateTime) exact = NULL;

  if (t == NULL)
    return NULL;
  exact = g_date_time_add (t, us % G_USEC_PER_SEC);
  return g_date_time_format (exact, "%Y-%m-%dT%H:%M:%S.%fZ");
}

/* 0 means "not yet" (a running experiment's end): null. */
static void
add_time (QbJsonWriter *w, const char *key, gint64 us)
{
  g_autofree char *text = us != 0 ? format_time (us) : NULL;

  qb_json_write_string (w, key, text);
}

static void
add_strv (QbJsonWriter *w, const char *key, char **strv)
{
  qb_json_begin_array (w, key);
  for (guint i = 0; strv && strv[i]; i++)
    qb_json_write_string (w, NULL, strv[i]);
  qb_json_end_array (w);
}

/* Stored JSON text (the plan, the architecture) goes in as a value. */
static void
add_json_text (QbJsonWriter *w, const char *key, const char *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  if (json != NULL && qb_json_parser_load (parser, json, -1, QB_JSON_MAX_NESTING, "plan", NULL))
    qb_json_write_node (w, key, json_parser_get_root (parser));
  else
    qb_json_write_null (w, key);
}

static void
add_model (QbJsonWriter *w, const QbModelRecord *m)
{
  qb_json_begin_object (w, "model");
  qb_json_write_string (w, "fingerprint", m->fingerprint);
  qb_json_write_string (w, "path", m->path);
  qb_json_write_int (w, "file_size", m->file_size);
  qb_json_write_string (w, "name", m->name);
  qb_json_write_string (w, "family", m->family);
  qb_json_write_int (w, "n_params", m->n_params);
  qb_json_write_int (w, "n_tensors", m->n_tensors);
  add_json_text (w, "arch", m->arch_json);
  add_time (w, "first_seen", m->first_seen);
  qb_json_end_object (w);
}

static void
add_calibration_set (QbJsonWriter *w, const QbCalibrationSet *c)
{
  if (c == NULL)
    {
      qb_json_write_null (w, "calibration_set");
      return;
    }
  qb_json_begin_object (w, "calibration_set");
  qb_json_write_string (w, "hash", c->hash);
  qb_json_write_string (w, "name", c->name);
  add_strv (w, "sources", c->sources);
  qb_json_write_int (w, "n_tokens", c->n_tokens);
  qb_json_write_int (w, "chunk_len", c->chunk_len);
  qb_json_write_int (w, "n_chunks", c->n_chunks);
  qb_json_write_int (w, "skip_chunks", c->skip_chunks);
  qb_json_write_bool (w, "seeded", c->seeded);
  qb_json_write_int (w, "seed", (gint64) c->seed);
  add_time (w, "created", c->created);
  qb_json_end_object (w);
}

static void
add_doubles (QbJsonWriter *w, const NamedDouble *d, guint n)
{
  for (guint i = 0; i < n; i++)
    qb_json_write_number (w, d[i].key, *d[i].value);
}

static void
add_evaluation (QbJsonWriter *w, const char *key, QbEvaluation *e, gboolean with_chunks)
{
  const NamedDouble values[] = EVALUATION_DOUBLES (e);

  qb_json_begin_object (w, key);
  add_time (w, "created", e->created);
  qb_json_write_string (w, "text_name", e->text_name);
  qb_json_write_string (w, "text_hash", e->text_hash);
  qb_json_write_int (w, "n_ctx", e->n_ctx);
  qb_json_write_int (w, "n_chunks", e->n_chunks);
  qb_json_write_int (w, "n_tokens", e->n_tokens);
  add_doubles (w, values, G_N_ELEMENTS (values));
  qb_json_write_string (w, "device", e->device);
  if (with_chunks)
    {
      qb_json_begin_object (w, "chunks");
      qb_json_begin_array (w, "perplexity");
      for (guint i = 0; i < e->n_chunk_results; i++)
        qb_json_write_number (w, NULL, e->chunk_ppl[i]);
      qb_json_end_array (w);
      qb_json_begin_array (w, "kld_mean");
      for (guint i = 0; i < e->n_chunk_results; i++)
        qb_json_write_number (w, NULL, e->chunk_kld[i]);
      qb_json_end_array (w);
      qb_json_end_object (w);
    }
  qb_json_end_object (w);
}

/* What lists show and exports keep; with_id adds the local id. */
static void
add_summary (QbJsonWriter *w, QbExperiment *e, gboolean with_id)
{
  QbExperimentTotals *t = &e->totals;
  const NamedDouble totals[] = TOTALS_DOUBLES (t);

  if (with_id)
    {
      qb_json_write_int (w, "id", e->id);
      qb_json_write_string (w, "model_name", e->model_name);
      qb_json_write_string (w, "model_fingerprint", e->model_fingerprint);
    }
  qb_json_write_string (w, "uuid", e->uuid);
  qb_json_write_string (w, "name", e->name);
  qb_json_write_string (w, "status", qb_experiment_status_name (e->status));
  add_time (w, "created", e->created);
  add_time (w, "updated", e->updated);
  add_time (w, "finished", e->finished);
  qb_json_write_int (w, "threads", e->threads);
  qb_json_write_string (w, "backend", e->backend);
  qb_json_write_int (w, "n_tensors", e->n_tensors);
  qb_json_write_int (w, "n_tensors_done", e->n_tensors_done);
  qb_json_write_string (w, "notes", e->notes);
  add_strv (w, "tags", e->tags);
  qb_json_write_string (w, "error", e->error_message);
  qb_json_begin_object (w, "totals");
  qb_json_write_int (w, "n_params", t->n_params);
  qb_json_write_int (w, "original_bytes", t->original_bytes);
  qb_json_write_int (w, "quantized_bytes", t->quantized_bytes);
  add_doubles (w, totals, G_N_ELEMENTS (totals));
  qb_json_write_int (w, "n_fallbacks", t->n_fallbacks);
  qb_json_end_object (w);
  if (with_id && e->evaluation != NULL)
    add_evaluation (w, "evaluation", e->evaluation, FALSE);
  else if (with_id)
    qb_json_write_null (w, "evaluation");
}

static void
add_histogram (QbJsonWriter *w, const char *key, const QbHistogram *h)
{
  if (h == NULL)
    {
      qb_json_write_null (w, key);
      return;
    }
  qb_json_begin_object (w, key);
  qb_json_write_number (w, "lo", h->lo);
  qb_json_write_number (w, "hi", h->hi);
  qb_json_begin_array (w, "counts");
  for (guint i = 0; i < h->n_bins; i++)
    qb_json_write_uint (w, NULL, h->counts[i]);
  qb_json_end_array (w);
  qb_json_end_object (w);
}

/* Floats as their bytes (IEEE-754 binary32, little-endian) in base64:
 * exact, a third of the size of decimal text, and far quicker to write
 * and read for thousands of channels a tensor. */
static void
add_floats (QbJsonWriter *w, const char *key, const float *x, guint n)
{
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  g_autofree char *text = g_base64_encode ((const guchar *) x, (gsize) n * 4);
#else
  g_autofree guint32 *le = g_new (guint32, n);
  g_autofree char *text = NULL;

  for (guint i = 0; i < n; i++)
    {
      memcpy (&le[i], &x[i], 4);
      le[i] = GUINT32_TO_LE (le[i]);
    }
  text = g_base64_encode ((const guchar *) le, (gsize) n * 4);
#endif
  qb_json_write_string (w, key, text);
}

/* A 3-D expert tensor's experts, in order: metrics and histograms. */
static void
add_experts (QbJsonWriter *w, const QbTensorResult *r)
{
  static const char * const keys[3] = { "hist_original", "hist_quantized", "hist_error" };

  qb_json_begin_array (w, "experts");
  for (guint e = 0; e < r->n_experts; e++)
    {
      qb_json_begin_object (w, NULL);
      for (guint i = 0; i < QB_N_EXPERT_METRICS; i++)
        qb_json_write_number (w, qb_expert_metrics[i].key,
                              *QB_EXPERT_METRIC (&r->expert_metrics[e], i));
      for (guint k = 0; k < 3; k++)
        add_histogram (w, keys[k], qb_tensor_result_expert_histogram (r, e, k));
      qb_json_end_object (w);
    }
  qb_json_end_array (w);
}

static void
add_tensor (QbJsonWriter *w, QbStoredTensor *t)
{
  QbTensorResult *r = t->result;
  const NamedDouble metrics[] = METRICS_DOUBLES (&r->metrics);

  qb_json_begin_object (w, NULL);
  qb_json_write_int (w, "position", t->position);
  qb_json_write_string (w, "name", r->tensor_name);
  qb_json_write_string (w, "format", r->format);
  qb_json_write_string (w, "requested_format", r->requested_format);
  qb_json_write_string (w, "fallback_reason", r->fallback_reason);
  qb_json_write_string (w, "method", r->method);
  qb_json_write_int (w, "n_params", r->n_params);
  if (r->n_nonfinite >= 0)
    qb_json_write_int (w, "n_nonfinite", r->n_nonfinite);
  else
    qb_json_write_null (w, "n_nonfinite");
  qb_json_write_int (w, "original_bytes", t->original_bytes);
  qb_json_write_int (w, "bytes", r->bytes);
  qb_json_write_number (w, "bpw", r->bpw);
  qb_json_write_number (w, "seconds", r->seconds);
  qb_json_begin_object (w, "metrics");
  add_doubles (w, metrics, G_N_ELEMENTS (metrics));
  qb_json_end_object (w);
  add_histogram (w, "hist_original", r->hist_original);
  add_histogram (w, "hist_quantized", r->hist_quantized);
  add_histogram (w, "hist_error", r->hist_error);
  if (r->n_channels > 0)
    {
      qb_json_begin_object (w, "channels");
      qb_json_write_int (w, "n", r->n_channels);
      qb_json_write_string (w, "encoding", "f32le-base64");
      add_floats (w, "min", r->channel_min, r->n_channels);
      add_floats (w, "max", r->channel_max, r->n_channels);
      qb_json_end_object (w);
    }
  else
    qb_json_write_null (w, "channels");
  if (r->n_experts > 0)
    add_experts (w, r);
  qb_json_end_object (w);
}

/* Everything about one experiment, read in one snapshot. */
typedef struct {
  QbExperiment     *experiment;
  QbModelRecord    *model;
  QbCalibrationSet *calibration;
  GPtrArray        *evaluations;
  GPtrArray        *tensors;
} FullExperiment;

static void
full_experiment_clear (FullExperiment *f)
{
  g_clear_pointer (&f->experiment, qb_experiment_free);
  g_clear_pointer (&f->model, qb_model_record_free);
  g_clear_pointer (&f->calibration, qb_calibration_set_free);
  g_clear_pointer (&f->evaluations, g_ptr_array_unref);
  g_clear_pointer (&f->tensors, g_ptr_array_unref);
}

/* A CSV summary needs no tensors; only JSON needs their data. */
static gboolean
load_full (QbStore *store, gint64 id, QbStoreExportFormat format, FullExperiment *f,
           GError **error)
{
  QB_STORE_LOCK (store);
  gboolean with_data = format == QB_STORE_EXPORT_JSON;
  gboolean ok;

  if (!qb_store_begin_read (store, error))
    return FALSE;
  ok = (f->experiment = qb_store_get_experiment_locked (store, id, error)) != NULL &&
       (f->model = qb_store_get_model (store, f->experiment->model_id, error)) != NULL &&
       (f->experiment->calibration_set_id == 0 ||
        (f->calibration = qb_store_get_calibration_set (store, f->experiment->calibration_set_id,
                                                        error)) != NULL) &&
       (f->evaluations = qb_store_list_evaluations_locked (store, id, error)) != NULL &&
       (format == QB_STORE_EXPORT_CSV ||
        (f->tensors = qb_store_get_tensors_locked (store, id, error)) != NULL);
  for (guint i = 0; ok && with_data && i < f->tensors->len; i++)
    ok = qb_store_load_tensor_data_locked (store, g_ptr_array_index (f->tensors, i), error);
  qb_store_end_read (store);
  return ok;
}

static void
full_to_json (FullExperiment *f, GString *out)
{
  QbJsonWriter w;

  qb_json_writer_init (&w, out);
  qb_json_begin_object (&w, NULL);
  add_summary (&w, f->experiment, FALSE);
  add_model (&w, f->model);
  add_calibration_set (&w, f->calibration);
  add_json_text (&w, "plan", f->experiment->plan_json);
  qb_json_begin_array (&w, "evaluations");
  for (guint i = 0; i < f->evaluations->len; i++)
    add_evaluation (&w, NULL, g_ptr_array_index (f->evaluations, i), TRUE);
  qb_json_end_array (&w);
  qb_json_begin_array (&w, "tensors");
  for (guint i = 0; i < f->tensors->len; i++)
    add_tensor (&w, g_ptr_array_index (f->tensors, i));
  qb_json_end_array (&w);
  qb_json_end_object (&w);
}

char *
qb_experiments_to_json (GPtrArray *experiments)
{
  GString *out = g_string_new (NULL);
  QbJsonWriter w;

  qb_json_writer_init (&w, out);
  qb_json_begin_array (&w, NULL);
  for (guint i = 0; i < experiments->len; i++)
    {
      qb_json_begin_object (&w, NULL);
      add_summary (&w, g_ptr_array_index (experiments, i), TRUE);
      qb_json_end_object (&w);
    }
  qb_json_end_array (&w);
  return g_string_free (out, FALSE);
}

/* -- writing CSV ------------------------------------------------------------------ */

/* RFC 4180: a field with a comma, quote or line break is quoted.  Every
 * field is followed by a comma; csv_end_row turns the last into a line
 * break. */
static void
csv_text (GString *s, const char *text)
{
  if (text != NULL && strpbrk (text, ",\"\r\n") == NULL)
    g_string_append (s, text);
  else if (text != NULL)
    {
      g_string_append_c (s, '"');
      for (const char *p = text; *p; p++)
        {
          if (*p == '"')
            g_string_append_c (s, '"');
          g_string_append_c (s, *p);
        }
      g_string_append_c (s, '"');
    }
  g_string_append_c (s, ',');
}

static void
csv_end_row (GString *s)
{
  s->str[s->len - 1] = '\n';
}

static void
csv_int (GString *s, gint64 v)
{
  char buf[32];

  g_snprintf (buf, sizeof buf, "%" G_GINT64_FORMAT, v);
  csv_text (s, buf);
}

/* The fewest digits that read back exactly; empty for NAN. */
static void
csv_double (GString *s, double v)
{

  if (isnan (v))
    {
      csv_text (s, "");
      return;
    }
  if (isinf (v))
    {
      csv_text (s, v > 0 ? "inf" : "-inf");
      return;
    }
  {
    g_autoptr(GString) text = g_string_new (NULL);
    qb_json_append_double (text, v);
    csv_text (s, text->str);
  }
}

static void
csv_time (GString *s, gint64 us)
{
  g_autofree char *text = us != 0 ? format_time (us) : NULL;

  csv_text (s, text ? text : "");
}

static const char csv_summary_header[] =
  "id,uuid,name,model,model_fingerprint,status,created,finished,threads,backend,n_tensors,"
  "n_tensors_done,n_params,original_bytes,quantized_bytes,bpw,compression,seconds,sqnr_db,"
  "rmse_rel,cosine_min,max_abs_err,out_rel_err,n_fallbacks,perplexity,kld_mean,kld_p99,"
  "top1_agreement,tags,notes,error\n";

static void
csv_summary_row (GString *s, const QbExperiment *e)
{
  const QbExperimentTotals *t = &e->totals;
  const QbEvaluation *ev = e->evaluation;
  g_autofree char *tags = g_strjoinv (";", e->tags);

  csv_int (s, e->id);
  csv_text (s, e->uuid);
  csv_text (s, e->name);
  csv_text (s, e->model_name);
  csv_text (s, e->model_fingerprint);
  csv_text (s, qb_experiment_status_name (e->status));
  csv_time (s, e->created);
  csv_time (s, e->finished);
  csv_int (s, e->threads);
  csv_text (s, e->backend);
  csv_int (s, e->n_tensors);
  csv_int (s, e->n_tensors_done);
  csv_int (s, t->n_params);
  csv_int (s, t->original_bytes);
  csv_int (s, t->quantized_bytes);
  csv_double (s, t->bpw);
  csv_double (s, t->compression);
  csv_double (s, t->seconds);
  csv_double (s, t->sqnr_db);
  csv_double (s, t->rmse_rel);
  csv_double (s, t->cosine_min);
  csv_double (s, t->max_abs_err);
  csv_double (s, t->out_rel_err);
  csv_int (s, t->n_fallbacks);
  csv_double (s, ev ? ev->perplexity : NAN);
  csv_double (s, ev ? ev->kld_mean : NAN);
  csv_double (s, ev ? ev->kld_p99 : NAN);
  csv_double (s, ev ? ev->top1_agreement : NAN);
  csv_text (s, tags);
  csv_text (s, e->notes);
  csv_text (s, e->error_message);
  csv_end_row (s);
}

static const char csv_tensor_header[] =
  "experiment_id,experiment,position,tensor,format,requested_format,fallback_reason,method,"
  "n_params,original_bytes,bytes,bpw,seconds,mse,rmse_rel,sqnr_db,cosine,max_abs_err,wmse,"
  "out_rel_err,mean,std,min,max,kurtosis,outlier_share,n_nonfinite\n";

static void
csv_tensor_row (GString *s, const QbExperiment *e, QbStoredTensor *t)
{
  QbTensorResult *r = t->result;
  const NamedDouble metrics[] = METRICS_DOUBLES (&r->metrics);

  csv_int (s, e->id);
  csv_text (s, e->name);
  csv_int (s, t->position);
  csv_text (s, r->tensor_name);
  csv_text (s, r->format);
  csv_text (s, r->requested_format);
  csv_text (s, r->fallback_reason);
  csv_text (s, r->method);
  csv_int (s, r->n_params);
  csv_int (s, t->original_bytes);
  csv_int (s, r->bytes);
  csv_double (s, r->bpw);
  csv_double (s, r->seconds);
  for (guint i = 0; i < G_N_ELEMENTS (metrics); i++)
    csv_double (s, *metrics[i].value);
  if (r->n_nonfinite >= 0)
    csv_int (s, r->n_nonfinite);
  else
    csv_text (s, "");
  csv_end_row (s);
}

/* -- export ----------------------------------------------------------------------- */

static gboolean
write_string (GOutputStream *out, const char *text, gsize len, GCancellable *cancellable,
              GError **error)
{
  return g_output_stream_write_all (out, text, len, NULL, cancellable, error);
}

static char *
export_one (QbStore *store, gint64 id, QbStoreExportFormat format, GError **error)
{
  FullExperiment f = { 0 };
  GString *s;

  if (!load_full (store, id, format, &f, error))
    {
      full_experiment_clear (&f);
      return NULL;
    }
  s = g_string_new (NULL);
  if (format == QB_STORE_EXPORT_JSON)
    full_to_json (&f, s);
  else if (format == QB_STORE_EXPORT_CSV)
    csv_summary_row (s, f.experiment);
  else
    for (guint i = 0; i < f.tensors->len; i++)
      csv_tensor_row (s, f.experiment, g_ptr_array_index (f.tensors, i));
  full_experiment_clear (&f);
  return g_string_free (s, FALSE);
}

gboolean
qb_store_export (QbStore *store, const gint64 *ids, guint n, QbStoreExportFormat format,
                 GOutputStream *out, GCancellable *cancellable, GError **error)
{
  static const char json_head[] =
    "{\"format\":\"" EXPORT_FORMAT "\",\"version\":" G_STRINGIFY (EXPORT_VERSION)
    ",\"experiments\":[\n";
  const char *head = format == QB_STORE_EXPORT_JSON ? json_head
                   : format == QB_STORE_EXPORT_CSV ? csv_summary_header : csv_tensor_header;

  if (!write_string (out, head, strlen (head), cancellable, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *part = NULL;

      if (g_cancellable_set_error_if_cancelled (cancellable, error) ||
          (part = export_one (store, ids[i], format, error)) == NULL)
        return FALSE;
      if ((format == QB_STORE_EXPORT_JSON && i > 0 &&
           !write_string (out, ",\n", 2, cancellable, error)) ||
          !write_string (out, part, strlen (part), cancellable, error))
        return FALSE;
    }
  if (format == QB_STORE_EXPORT_JSON && !write_string (out, "\n]}\n", 4, cancellable, error))
    return FALSE;
  return g_output_stream_flush (out, cancellable, error);
}

/* The folder's entry for the renamed file reaches the disk too. */
static void
sync_folder (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd >= 0)
    {
      fsync (fd);
      close (fd);
    }
}

gboolean
qb_store_export_to_file (QbStore *store, const gint64 *ids, guint n, QbStoreExportFormat format,
                         const char *path, GCancellable *cancellable, GError **error)
{
  g_autofree char *tmp = NULL;
  g_autoptr(GOutputStream) out = NULL;
  g_autoptr(GError) local = NULL;
  gboolean ok;
  int fd = qb_file_create_temp (path, 0644, &tmp, &local);

  if (fd < 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED, "%s", local->message);
      return FALSE;
    }
  out = g_unix_output_stream_new (fd, FALSE);
  ok = qb_store_export (store, ids, n, format, out, cancellable, error);
  if (ok && fsync (fd) != 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED, "%s: cannot write: %s",
                   path, g_strerror (errno));
      ok = FALSE;
    }
  close (fd);
  if (ok && g_rename (tmp, path) != 0)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED, "%s: cannot rename to %s: %s",
                   tmp, path, g_strerror (errno));
      ok = FALSE;
    }
  if (!ok)
    g_unlink (tmp);
  else
    sync_folder (path);
  return ok;
}
