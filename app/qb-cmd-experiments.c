/* SPDX-License-Identifier: MIT */
/* qb-cmd-experiments.c — `quantbench experiments`: the experiment store
 * from the command line.
 *
 *   quantbench experiments [--db FILE] [--json] SUBCOMMAND ...
 *
 * Every subcommand also takes --db and --json after its name.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <gio/gunixoutputstream.h>
#include <json-glib/json-glib.h>

#include "qb-cli.h"
#include "qb-json.h"
#include "qb-store.h"

static char *opt_db;
static gboolean opt_json;

static const GOptionEntry common_entries[] = {
  { "db", 0, 0, G_OPTION_ARG_FILENAME, &opt_db,
    "Experiment database (default: $XDG_DATA_HOME/quantbench/experiments.db)", "FILE" },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON instead of a table", NULL },
  { NULL }
};

/* -- output helpers --------------------------------------------------------- */

/* A table printed with columns as wide as their widest cell; numbers
 * (columns marked in `right`) are right-aligned. */
typedef struct {
  guint      n_columns;
  const char *right;       /* one char per column: 'r' right-aligned */
  GPtrArray *rows;         /* of GStrv */
} Table;

/* Takes ownership of the header. */
static Table *
table_new_strv (const char *right, char **header)
{
  Table *t = g_new0 (Table, 1);

  t->n_columns = g_strv_length (header);
  t->right = right;
  t->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  g_ptr_array_add (t->rows, header);
  return t;
}

static Table *
table_new (const char *right, ...)
{
  g_autoptr(GStrvBuilder) header = g_strv_builder_new ();
  va_list args;
  const char *name;

  va_start (args, right);
  while ((name = va_arg (args, const char *)) != NULL)
    g_strv_builder_add (header, name);
  va_end (args);
  return table_new_strv (right, g_strv_builder_end (header));
}

/* Adds a row of n_columns cells; takes ownership of each (may be NULL). */
static void
table_add (Table *t, ...)
{
  char **row = g_new0 (char *, t->n_columns + 1);
  va_list args;

  va_start (args, t);
  for (guint i = 0; i < t->n_columns; i++)
    {
      char *cell = va_arg (args, char *);
      row[i] = cell ? cell : g_strdup ("");
    }
  va_end (args);
  g_ptr_array_add (t->rows, row);
}

static void
table_print_free (Table *t)
{
  g_autofree guint *width = g_new0 (guint, t->n_columns);

  for (guint r = 0; r < t->rows->len; r++)
    {
      char **row = g_ptr_array_index (t->rows, r);
      for (guint c = 0; c < t->n_columns; c++)
        {
          char *safe = qb_cli_safe_text (row[c]);
          g_free (row[c]);
          row[c] = safe;
          width[c] = MAX (width[c], g_utf8_strlen (row[c], -1));
        }
    }
  for (guint r = 0; r < t->rows->len; r++)
    {
      char **row = g_ptr_array_index (t->rows, r);
      g_autoptr(GString) line = g_string_new (NULL);

      for (guint c = 0; c < t->n_columns; c++)
        {
          guint pad = width[c] - g_utf8_strlen (row[c], -1);
          gboolean right = t->right && c < strlen (t->right) && t->right[c] == 'r';

          if (c > 0)
            g_string_append (line, "  ");
          if (right)
            for (guint i = 0; i < pad; i++)
              g_string_append_c (line, ' ');
          g_string_append (line, row[c]);
          if (!right && c + 1 < t->n_columns)
            for (guint i = 0; i < pad; i++)
              g_string_append_c (line, ' ');
        }
      puts (line->str);
    }
  g_ptr_array_unref (t->rows);
  g_free (t);
}

static char *
size_text (guint64 bytes)
{
  if (bytes == 0)
    return g_strdup ("-");
  return qb_cli_format_size (bytes);
}

static char *
time_text (gint64 us)
{
  g_autoptr(GDateTime) t = NULL;

  if (us == 0)
    return g_strdup ("-");
  t = g_date_time_new_from_unix_local (us / G_USEC_PER_SEC);
  return t ? g_date_time_format (t, "%Y-%m-%d %H:%M") : g_strdup ("?");
}

static void
print_json (char *json)
{
  puts (json);
  g_free (json);
}

/* -- arguments ------------------------------------------------------------------ */

static int
usage_error (GOptionContext *ctx, const char *message)
{
  g_autofree char *help = g_option_context_get_help (ctx, TRUE, NULL);

  fprintf (stderr, "quantbench: %s\n\n%s", message, help);
  return 2;
}

static GOptionContext *
sub_context (const char *args, const char *summary, const GOptionEntry *entries)
{
  GOptionContext *ctx = g_option_context_new (args);

  g_option_context_set_summary (ctx, summary);
  if (entries != NULL)
    g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_main_entries (ctx, common_entries, NULL);
  return ctx;
}

static gboolean
parse_id (const char *text, gint64 *id)
{
  char *end = NULL;

  *id = g_ascii_strtoll (text, &end, 10);
  if (end == text || *end != '\0' || *id <= 0)
    {
      fprintf (stderr, "quantbench: '%s' is not an experiment id\n", text);
      return FALSE;
    }
  return TRUE;
}

static GArray *
parse_ids (int argc, char **argv)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (int i = 0; i < argc; i++)
    {
      gint64 id;
      if (!parse_id (argv[i], &id))
        {
          g_array_unref (ids);
          return NULL;
        }
      g_array_append_val (ids, id);
    }
  return ids;
}

static QbStore *
open_store (void)
{
  g_autoptr(GError) error = NULL;
  QbStore *store = qb_store_open (opt_db, &error);

  if (store == NULL)
    qb_cli_fail (error);
  return store;
}

/* Reading commands create nothing (a mistyped --db is an error, not a new
 * database) and write nothing (a read-only folder or full disk is fine);
 * only the default database is created on first use, as before. */
static QbStore *
open_store_for_reading (void)
{
  g_autoptr(GError) error = NULL;
  QbStore *store = qb_store_open_readonly (opt_db, &error);

  if (store == NULL && opt_db == NULL && g_error_matches (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND))
    return open_store ();
  if (store == NULL)
    qb_cli_fail (error);
  return store;
}

/* 0 (every model) when spec is NULL; -1 after printing an error. */
static gint64
resolve_model (QbStore *store, const char *spec)
{
  g_autoptr(GError) error = NULL;
  gint64 id;

  if (spec == NULL)
    return 0;
  if ((id = qb_store_find_model (store, spec, &error)) == 0)
    {
      qb_cli_fail (error);
      return -1;
    }
  return id;
}

/* -- list ------------------------------------------------------------------------ */

static char *
tensors_text (const QbExperiment *e)
{
  if (e->n_tensors_done == e->n_tensors)
    return g_strdup_printf ("%u", e->n_tensors);
  return g_strdup_printf ("%u/%u", e->n_tensors_done, e->n_tensors);
}

static void
print_experiments (GPtrArray *list)
{
  Table *t = table_new ("r....rrrrrrr.", "ID", "NAME", "MODEL", "STATUS", "CREATED",
                        "TENSORS", "SIZE", "BPW", "SQNR dB", "REL RMSE", "PPL", "KLD", "TAGS",
                        NULL);

  for (guint i = 0; i < list->len; i++)
    {
      const QbExperiment *e = g_ptr_array_index (list, i);
      const QbEvaluation *ev = e->evaluation;

      table_add (t, g_strdup_printf ("%" G_GINT64_FORMAT, e->id), g_strdup (e->name),
                 g_strdup (e->model_name), g_strdup (qb_experiment_status_name (e->status)),
                 time_text (e->created), tensors_text (e),
                 size_text (e->totals.quantized_bytes), qb_cli_number (e->totals.bpw, 3, 'f'),
                 qb_cli_number (e->totals.sqnr_db, 2, 'f'), qb_cli_number (e->totals.rmse_rel, 5, 'f'),
                 qb_cli_number (ev ? ev->perplexity : NAN, 4, 'f'), qb_cli_number (ev ? ev->kld_mean : NAN, 5, 'f'),
                 g_strjoinv (",", e->tags));
    }
  table_print_free (t);
}

static int
cmd_list (int argc, char **argv)
{
  g_autofree char *model = NULL, *tag = NULL, *search = NULL, *sort = NULL, *status = NULL;
  gboolean ascending = FALSE;
  int limit = 0, offset = 0;
  const GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_STRING, &model, "Only this model (id, name, path or fingerprint)", "M" },
    { "tag", 0, 0, G_OPTION_ARG_STRING, &tag, "Only experiments with this tag", "TAG" },
    { "search", 0, 0, G_OPTION_ARG_STRING, &search, "Text in the name, notes, model or tags", "TEXT" },
    { "status", 0, 0, G_OPTION_ARG_STRING, &status, "running, done, cancelled, failed or interrupted", "S" },
    { "sort", 0, 0, G_OPTION_ARG_STRING, &sort, "created, name, model, status, tensors, size, bpw, "
      "compression, seconds, sqnr, rmse, cosine, maxerr, outerr, ppl, kld or id", "COL" },
    { "asc", 0, 0, G_OPTION_ARG_NONE, &ascending, "Ascending order (default: descending)", NULL },
    { "limit", 0, 0, G_OPTION_ARG_INT, &limit, "At most N experiments", "N" },
    { "offset", 0, 0, G_OPTION_ARG_INT, &offset, "Skip the first N", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = sub_context ("", "List experiments.", entries);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  QbExperimentQuery q;
  QbExperimentStatus st;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc > 1)
    return usage_error (ctx, "list takes no arguments");
  qb_experiment_query_init (&q);
  if (sort != NULL && !qb_experiment_sort_parse (sort, &q.sort))
    return usage_error (ctx, "unknown --sort column");
  if (status != NULL && !qb_experiment_status_parse (status, &st))
    return usage_error (ctx, "unknown --status");
  if (limit < 0 || offset < 0)
    return usage_error (ctx, "--limit and --offset cannot be negative");
  if ((store = open_store_for_reading ()) == NULL || (q.model_id = resolve_model (store, model)) < 0)
    return 1;
  q.tag = tag;
  q.text = search;
  q.status = status ? (int) st : -1;
  q.descending = !ascending;
  q.limit = limit;
  q.offset = offset;
  if ((list = qb_store_list_experiments (store, &q, &error)) == NULL)
    return qb_cli_fail (error);
  if (opt_json)
    print_json (qb_experiments_to_json (list));
  else if (list->len == 0)
    printf ("No experiments in %s.\n", qb_store_get_path (store));
  else
    print_experiments (list);
  return 0;
}

/* -- show ------------------------------------------------------------------------ */

static void
print_field (const char *label, char *value)
{
  /* Padded by characters, not bytes: labels may hold a Δ. */
  int pad = 16 - (int) g_utf8_strlen (label, -1);
  g_autofree char *safe = value ? qb_cli_safe_text (value) : NULL;

  printf ("  %s%*s %s\n", label, MAX (pad, 0), "", safe ? safe : "-");
  g_free (value);
}

static void
print_evaluation (const QbEvaluation *ev)
{
  g_autofree char *ppl = qb_cli_number (ev->perplexity, 4, 'f');
  g_autofree char *ppl_err = qb_cli_number (ev->perplexity_err, 4, 'f');
  g_autofree char *base = qb_cli_number (ev->base_perplexity, 4, 'f');
  g_autofree char *mean = qb_cli_number (ev->kld_mean, 5, 'f');
  g_autofree char *median = qb_cli_number (ev->kld_median, 5, 'f');
  g_autofree char *p90 = qb_cli_number (ev->kld_p90, 5, 'f');
  g_autofree char *p99 = qb_cli_number (ev->kld_p99, 5, 'f');
  g_autofree char *max = qb_cli_number (ev->kld_max, 5, 'f');

  g_autofree char *text = qb_cli_safe_text (ev->text_name ? ev->text_name : ev->text_hash);

  printf ("  evaluation       %s, ctx %u, %u chunks (%" G_GUINT64_FORMAT " tokens)\n",
          text, ev->n_ctx, ev->n_chunks, ev->n_tokens);
  print_field ("  perplexity", g_strdup_printf ("%s ± %s (float model %s)", ppl, ppl_err, base));
  print_field ("  KLD", g_strdup_printf ("mean %s, median %s, p90 %s, p99 %s, max %s",
                                         mean, median, p90, p99, max));
  print_field ("  same top (%)", qb_cli_number (ev->top1_agreement * 100, 2, 'f'));
  print_field ("  device", g_strdup (ev->device ? ev->device : "cpu (not recorded)"));
  print_field ("  RMS Δp (%)", qb_cli_number (ev->dp_rms * 100, 3, 'f'));
}

/* NaN and infinite weights make a run's error figures undefined: say so. */
static void
print_nonfinite (QbStore *store, gint64 id)
{
  g_autoptr(GPtrArray) tensors = qb_store_get_tensors (store, id, NULL);
  gint64 values = 0;
  guint n = 0;

  for (guint i = 0; tensors && i < tensors->len; i++)
    {
      const QbTensorResult *r = ((QbStoredTensor *) g_ptr_array_index (tensors, i))->result;
      if (r->n_nonfinite > 0)
        {
          values += r->n_nonfinite;
          n++;
        }
    }
  if (n > 0)
    print_field ("non-finite weights", g_strdup_printf ("%" G_GINT64_FORMAT " NaN or infinite "
                                                        "values in %u tensor(s): error metrics "
                                                        "undefined", values, n));
}

static void
print_summary (QbStore *store, const QbExperiment *e)
{
  const QbExperimentTotals *t = &e->totals;
  g_autoptr(QbModelRecord) model = qb_store_get_model (store, e->model_id, NULL);
  g_autoptr(GPtrArray) evaluations = qb_store_list_evaluations (store, e->id, NULL);
  g_autofree char *original = size_text (t->original_bytes);
  g_autofree char *quantized = size_text (t->quantized_bytes);
  g_autofree char *compression = qb_cli_number (t->compression, 2, 'f');

  g_autofree char *name = qb_cli_safe_text (e->name);

  printf ("Experiment %" G_GINT64_FORMAT ": %s\n", e->id, name);
  print_field ("uuid", g_strdup (e->uuid));
  print_field ("status", g_strdup (qb_experiment_status_name (e->status)));
  if (e->error_message)
    print_field ("error", g_strdup (e->error_message));
  print_field ("model", model ? g_strdup_printf ("%s (%s)", e->model_name, model->path)
                              : g_strdup (e->model_name));
  print_field ("fingerprint", g_strdup (e->model_fingerprint));
  print_field ("created", time_text (e->created));
  print_field ("finished", time_text (e->finished));
  print_field ("threads", g_strdup_printf ("%u (%s)", e->threads, e->backend));
  print_field ("tensors", tensors_text (e));
  print_field ("size", g_strdup_printf ("%s → %s (%s×)", original, quantized, compression));
  print_field ("bits per weight", qb_cli_number (t->bpw, 4, 'f'));
  print_field ("seconds", qb_cli_number (t->seconds, 2, 'f'));
  print_field ("SQNR (dB)", qb_cli_number (t->sqnr_db, 2, 'f'));
  print_field ("relative RMSE", qb_cli_number (t->rmse_rel, 6, 'f'));
  print_field ("lowest cosine", qb_cli_number (t->cosine_min, 6, 'f'));
  print_field ("largest error", qb_cli_number (t->max_abs_err, 4, 'g'));
  print_field ("output error", qb_cli_number (t->out_rel_err, 6, 'f'));
  print_field ("fallbacks", g_strdup_printf ("%u", t->n_fallbacks));
  print_nonfinite (store, e->id);
  if (e->calibration_set_id != 0)
    {
      g_autoptr(QbCalibrationSet) c = qb_store_get_calibration_set (store, e->calibration_set_id, NULL);
      if (c != NULL)
        print_field ("calibration", g_strdup_printf ("%s (%" G_GUINT64_FORMAT " tokens, %u × %u, %s)",
                                                     c->name, c->n_tokens, c->n_chunks, c->chunk_len,
                                                     c->seeded ? "random" : "sequential"));
    }
  for (guint i = 0; evaluations && i < evaluations->len; i++)
    print_evaluation (g_ptr_array_index (evaluations, i));
  print_field ("tags", g_strjoinv (", ", e->tags));
  if (*e->notes)
    print_field ("notes", g_strdup (e->notes));
}

/* The measured columns of a tensor's or an expert's line: SQNR, relative
 * RMSE, cosine, max error, and the weights' mean, std and kurtosis. */
enum { N_MEASURED = 7 };

static void
measured_cells (const QbTensorMetrics *m, char *cells[N_MEASURED])
{
  cells[0] = qb_cli_number (m->sqnr_db, 2, 'f');
  cells[1] = qb_cli_number (m->rmse_rel, 5, 'f');
  cells[2] = qb_cli_number (m->cosine, 6, 'f');
  cells[3] = qb_cli_number (m->max_abs_err, 4, 'g');
  cells[4] = qb_cli_number (m->mean, 4, 'g');
  cells[5] = qb_cli_number (m->std, 4, 'g');
  cells[6] = qb_cli_number (m->kurtosis, 2, 'f');
}

static void
print_tensors (GPtrArray *tensors)
{
  Table *t = table_new ("r....rrrrrrrrrrr", "#", "TENSOR", "FORMAT", "REQUESTED", "METHOD",
                        "PARAMS", "SIZE", "BPW", "SQNR dB", "REL RMSE", "COSINE", "MAX ERR",
                        "MEAN", "STD", "KURTOSIS", "NON-FINITE", NULL);

  for (guint i = 0; i < tensors->len; i++)
    {
      QbStoredTensor *s = g_ptr_array_index (tensors, i);
      QbTensorResult *r = s->result;
      char *c[N_MEASURED];

      measured_cells (&r->metrics, c);
      table_add (t, g_strdup_printf ("%u", s->position), g_strdup (r->tensor_name),
                 g_strdup (r->format), g_strdup (r->fallback_reason ? r->requested_format : ""),
                 g_strdup (r->method), g_strdup_printf ("%" G_GINT64_FORMAT, r->n_params),
                 size_text (r->bytes), qb_cli_number (r->bpw, 3, 'f'),
                 c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                 r->n_nonfinite >= 0 ? g_strdup_printf ("%" G_GINT64_FORMAT, r->n_nonfinite)
                                     : g_strdup ("?"));
      /* A 3-D expert tensor's experts, each on a line of its own. */
      for (guint e = 0; e < r->n_experts; e++)
        {
          measured_cells (&r->expert_metrics[e], c);
          table_add (t, g_strdup (""), g_strdup_printf ("  expert %u of %u", e, r->n_experts),
                     g_strdup (r->format), g_strdup (""), g_strdup (""),
                     g_strdup_printf ("%" G_GINT64_FORMAT, r->n_params / r->n_experts),
                     size_text (r->bytes / r->n_experts), qb_cli_number (r->bpw, 3, 'f'),
                     c[0], c[1], c[2], c[3], c[4], c[5], c[6], g_strdup (""));
        }
    }
  table_print_free (t);
}

static int
export_ids (QbStore *store, GArray *ids, QbStoreExportFormat format, const char *out_path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GOutputStream) out = NULL;

  if (out_path != NULL)
    {
      const char *inputs[] = { qb_store_get_path (store) };
      if (!qb_cli_check_output (out_path, "--out", inputs, 1, NULL, &error))
        return qb_cli_fail (error);
      if (!qb_store_export_to_file (store, (gint64 *) ids->data, ids->len, format, out_path,
                                    NULL, &error))
        return qb_cli_fail (error);
      return 0;
    }
  fflush (stdout);
  out = g_unix_output_stream_new (1, FALSE);
  if (!qb_store_export (store, (gint64 *) ids->data, ids->len, format, out, NULL, &error))
    return qb_cli_fail (error);
  return 0;
}

static int
cmd_show (int argc, char **argv)
{
  gboolean with_tensors = FALSE;
  const GOptionEntry entries[] = {
    { "tensors", 't', 0, G_OPTION_ARG_NONE, &with_tensors, "List every tensor's result", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = sub_context ("ID", "Show one experiment (--json: its full "
                                               "export, histograms included).", entries);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(GPtrArray) tensors = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GError) error = NULL;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc != 2)
    return usage_error (ctx, "show takes one experiment id");
  if ((ids = parse_ids (1, argv + 1)) == NULL)
    return 2;
  if ((store = open_store_for_reading ()) == NULL)
    return 1;
  if (opt_json)
    return export_ids (store, ids, QB_STORE_EXPORT_JSON, NULL);
  if ((e = qb_store_get_experiment (store, g_array_index (ids, gint64, 0), &error)) == NULL)
    return qb_cli_fail (error);
  print_summary (store, e);
  if (with_tensors)
    {
      if ((tensors = qb_store_get_tensors (store, e->id, &error)) == NULL)
        return qb_cli_fail (error);
      printf ("\n");
      print_tensors (tensors);
    }
  return 0;
}

/* -- compare ------------------------------------------------------------------------ */

/* A tensor's value of the metric --metric chose (a per-tensor one). */
static double
cell_metric (const QbStoredTensor *t, QbMetric metric)
{
  const QbTensorMetrics *m = &t->result->metrics;

  switch (metric)
    {
    case QB_METRIC_RMSE_REL:    return m->rmse_rel;
    case QB_METRIC_COSINE_MIN:  return m->cosine;
    case QB_METRIC_MAX_ABS_ERR: return m->max_abs_err;
    case QB_METRIC_OUT_REL_ERR: return m->out_rel_err;
    default:                    return m->sqnr_db;
    }
}

static char *
cell_text (const QbStoredTensor *t, QbMetric metric)
{
  g_autofree char *value = NULL;

  if (t == NULL)
    return g_strdup ("(absent)");
  value = qb_cli_number (cell_metric (t, metric), 4, 'g');
  return g_strdup_printf ("%s %.2f %s", t->result->format ? t->result->format : "?",
                          t->result->bpw, value);
}

static void
print_comparison_json (QbComparison *c, QbMetric metric)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (b);
  qb_json_builder_add_string (b, "metric", qb_metric_name (metric));
  json_builder_set_member_name (b, "experiments");
  json_builder_begin_array (b);
  for (guint i = 0; i < c->n_experiments; i++)
    json_builder_add_int_value (b, c->experiments[i]->id);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "rows");
  json_builder_begin_array (b);
  for (guint r = 0; r < c->n_rows; r++)
    {
      json_builder_begin_object (b);
      qb_json_builder_add_string (b, "tensor", c->rows[r].tensor_name);
      json_builder_set_member_name (b, "differs");
      json_builder_add_boolean_value (b, c->rows[r].differs);
      json_builder_set_member_name (b, "cells");
      json_builder_begin_array (b);
      for (guint i = 0; i < c->n_experiments; i++)
        {
          const QbStoredTensor *t = c->rows[r].cells[i];
          if (t == NULL)
            {
              json_builder_add_null_value (b);
              continue;
            }
          json_builder_begin_object (b);
          qb_json_builder_add_string (b, "format", t->result->format);
          qb_json_builder_add_number (b, "bpw", t->result->bpw);
          qb_json_builder_add_number (b, "sqnr_db", t->result->metrics.sqnr_db);
          qb_json_builder_add_number (b, "rmse_rel", t->result->metrics.rmse_rel);
          qb_json_builder_add_number (b, "value", cell_metric (t, metric));
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  print_json (qb_json_to_string (root));
}

static void
print_comparison (QbComparison *c, QbMetric metric, gboolean only_differences)
{
  char **header = g_new0 (char *, c->n_experiments + 3);
  char **total = g_new0 (char *, c->n_experiments + 3);
  Table *t;

  printf ("Cells: format, bits per weight, %s.  '*': the formats differ.\n\n",
          qb_metric_label (metric));
  header[0] = g_strdup ("");
  header[1] = g_strdup ("TENSOR");
  for (guint i = 0; i < c->n_experiments; i++)
    header[2 + i] = g_strdup_printf ("#%" G_GINT64_FORMAT " %s", c->experiments[i]->id,
                                     c->experiments[i]->name);
  t = table_new_strv (NULL, header);
  for (guint r = 0; r < c->n_rows; r++)
    {
      char **row;

      if (only_differences && !c->rows[r].differs)
        continue;
      row = g_new0 (char *, t->n_columns + 1);
      row[0] = g_strdup (c->rows[r].differs ? "*" : "");
      row[1] = g_strdup (c->rows[r].tensor_name);
      for (guint i = 0; i < c->n_experiments; i++)
        row[2 + i] = cell_text (c->rows[r].cells[i], metric);
      g_ptr_array_add (t->rows, row);
    }
  total[0] = g_strdup ("");
  total[1] = g_strdup ("TOTAL");
  for (guint i = 0; i < c->n_experiments; i++)
    {
      g_autofree char *size = size_text (c->experiments[i]->totals.quantized_bytes);
      g_autofree char *value = qb_cli_number (qb_experiment_metric (c->experiments[i], metric), 4, 'g');
      total[2 + i] = g_strdup_printf ("%s %.3f %s", size, c->experiments[i]->totals.bpw, value);
    }
  g_ptr_array_add (t->rows, total);
  table_print_free (t);
}

static int
cmd_compare (int argc, char **argv)
{
  g_autofree char *metric_name = NULL;
  gboolean only_differences = FALSE;
  const GOptionEntry entries[] = {
    { "metric", 0, 0, G_OPTION_ARG_STRING, &metric_name, "sqnr (default), rmse, cosine, maxerr or outerr", "M" },
    { "differences", 'd', 0, G_OPTION_ARG_NONE, &only_differences, "Only tensors whose formats differ", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = sub_context ("ID ID...", "Compare experiments tensor by tensor.",
                                               entries);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbComparison) c = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GError) error = NULL;
  QbMetric metric = QB_METRIC_SQNR;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc < 3)
    return usage_error (ctx, "compare takes two or more experiment ids");
  if (metric_name && !qb_metric_parse (metric_name, &metric))
    return usage_error (ctx, "unknown --metric");
  if ((ids = parse_ids (argc - 1, argv + 1)) == NULL)
    return 2;
  if ((store = open_store_for_reading ()) == NULL)
    return 1;
  if ((c = qb_store_compare (store, (gint64 *) ids->data, ids->len, &error)) == NULL)
    return qb_cli_fail (error);
  if (opt_json)
    print_comparison_json (c, metric);
  else
    print_comparison (c, metric, only_differences);
  return 0;
}

/* -- export, import, delete --------------------------------------------------------- */

static GArray *
all_ids (QbStore *store)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  QbExperimentQuery q;
  GArray *ids;

  qb_experiment_query_init (&q);
  q.sort = QB_SORT_ID;
  q.descending = FALSE;
  if ((list = qb_store_list_experiments (store, &q, &error)) == NULL)
    {
      qb_cli_fail (error);
      return NULL;
    }
  ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint i = 0; i < list->len; i++)
    g_array_append_val (ids, ((QbExperiment *) g_ptr_array_index (list, i))->id);
  return ids;
}

static int
cmd_export (int argc, char **argv)
{
  g_autofree char *format_name = NULL, *out = NULL;
  gboolean all = FALSE, tensors = FALSE;
  const GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format_name, "json (lossless) or csv", "FORMAT" },
    { "tensors", 0, 0, G_OPTION_ARG_NONE, &tensors, "CSV: one row per tensor instead of per experiment", NULL },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write to FILE (default: standard output)", "FILE" },
    { "all", 0, 0, G_OPTION_ARG_NONE, &all, "Every experiment", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = sub_context ("ID...", "Export experiments to JSON or CSV.", entries);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GArray) ids = NULL;
  QbStoreExportFormat format;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (format_name == NULL || g_ascii_strcasecmp (format_name, "json") == 0)
    format = QB_STORE_EXPORT_JSON;
  else if (g_ascii_strcasecmp (format_name, "csv") == 0)
    format = tensors ? QB_STORE_EXPORT_CSV_TENSORS : QB_STORE_EXPORT_CSV;
  else
    return usage_error (ctx, "--format must be json or csv");
  if ((argc < 2) == !all)
    return usage_error (ctx, "give experiment ids or --all");
  if (!all && (ids = parse_ids (argc - 1, argv + 1)) == NULL)
    return 2;
  if ((store = open_store_for_reading ()) == NULL)
    return 1;
  if (all && (ids = all_ids (store)) == NULL)
    return 1;
  return export_ids (store, ids, format, out);
}

static int
cmd_import (int argc, char **argv)
{
  g_autoptr(GOptionContext) ctx = sub_context ("FILE...", "Import experiments from JSON exports "
                                               "(importing one twice adds nothing).", NULL);
  g_autoptr(QbStore) store = NULL;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc < 2)
    return usage_error (ctx, "import takes one or more files");
  if ((store = open_store ()) == NULL)
    return 1;
  for (int i = 1; i < argc; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) ids = NULL;
      g_autoptr(GString) list = g_string_new (NULL);
      guint skipped = 0;

      if (!qb_store_import_file (store, argv[i], &ids, &skipped, &error))
        return qb_cli_fail (error);
      for (guint k = 0; k < ids->len; k++)
        g_string_append_printf (list, "%s%" G_GINT64_FORMAT, k ? ", " : "",
                                g_array_index (ids, gint64, k));
      printf ("%s: imported %u experiment%s%s%s%s", argv[i], ids->len, ids->len == 1 ? "" : "s",
              ids->len ? " (ids " : "", list->str, ids->len ? ")" : "");
      if (skipped > 0)
        printf ("; %u already present", skipped);
      printf ("\n");
    }
  return 0;
}

static int
cmd_delete (int argc, char **argv)
{
  g_autoptr(GOptionContext) ctx = sub_context ("ID...", "Delete experiments with their tensors, "
                                               "histograms and evaluations.", NULL);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GArray) ids = NULL;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc < 2)
    return usage_error (ctx, "delete takes one or more experiment ids");
  if ((ids = parse_ids (argc - 1, argv + 1)) == NULL)
    return 2;
  if ((store = open_store ()) == NULL)
    return 1;
  for (guint i = 0; i < ids->len; i++)
    {
      g_autoptr(GError) error = NULL;
      if (!qb_store_delete_experiment (store, g_array_index (ids, gint64, i), &error))
        return qb_cli_fail (error);
      printf ("Deleted experiment %" G_GINT64_FORMAT ".\n", g_array_index (ids, gint64, i));
    }
  return 0;
}

/* -- rename, tag, untag, note --------------------------------------------------------- */

typedef enum { EDIT_RENAME, EDIT_TAG, EDIT_UNTAG, EDIT_NOTE } EditKind;

static int
edit (int argc, char **argv, EditKind kind)
{
  static const char * const args[] = { "ID NAME", "ID TAG...", "ID TAG...", "ID TEXT..." };
  static const char * const summaries[] = {
    "Rename an experiment.", "Tag an experiment.", "Remove tags from an experiment.",
    "Set an experiment's notes (an empty TEXT clears them).",
  };
  g_autoptr(GOptionContext) ctx = sub_context (args[kind], summaries[kind], NULL);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gint64 id;
  gboolean ok = FALSE;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc < (kind == EDIT_NOTE ? 2 : 3) || (kind == EDIT_RENAME && argc != 3))
    return usage_error (ctx, "wrong number of arguments");
  if (!parse_id (argv[1], &id))
    return 2;
  if ((store = open_store ()) == NULL)
    return 1;
  text = g_strjoinv (" ", argv + 2);
  switch (kind)
    {
    case EDIT_RENAME:
      ok = qb_store_rename_experiment (store, id, argv[2], &error);
      break;
    case EDIT_TAG:
      ok = qb_store_add_tags (store, id, (const char * const *) argv + 2, &error);
      break;
    case EDIT_UNTAG:
      ok = qb_store_remove_tags (store, id, (const char * const *) argv + 2, &error);
      break;
    case EDIT_NOTE:
      ok = qb_store_set_notes (store, id, text, &error);
      break;
    }
  return ok ? 0 : qb_cli_fail (error);
}

static int cmd_rename (int argc, char **argv) { return edit (argc, argv, EDIT_RENAME); }
static int cmd_tag    (int argc, char **argv) { return edit (argc, argv, EDIT_TAG); }
static int cmd_untag  (int argc, char **argv) { return edit (argc, argv, EDIT_UNTAG); }
static int cmd_note   (int argc, char **argv) { return edit (argc, argv, EDIT_NOTE); }

/* -- pareto, models ---------------------------------------------------------------------- */

static int
cmd_pareto (int argc, char **argv)
{
  g_autofree char *model = NULL, *metric_name = NULL, *x_name = NULL;
  gboolean all = FALSE;
  const GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_STRING, &model, "Only this model (id, name, path or fingerprint)", "M" },
    { "metric", 0, 0, G_OPTION_ARG_STRING, &metric_name, "sqnr (default), rmse, cosine, maxerr, "
      "outerr, ppl, kld, kld99, top1 or dp", "M" },
    { "x", 0, 0, G_OPTION_ARG_STRING, &x_name, "size (default) or bpw", "AXIS" },
    { "all", 0, 0, G_OPTION_ARG_NONE, &all, "Also the points off the front", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = sub_context ("", "The Pareto front of finished experiments: "
                                               "size against a metric.", entries);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GArray) points = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  QbMetric metric = QB_METRIC_SQNR;
  QbParetoX x = QB_PARETO_X_BYTES;
  g_autofree char *metric_upper = NULL;
  gint64 model_id;
  Table *t;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc > 1)
    return usage_error (ctx, "pareto takes no arguments");
  if (metric_name && !qb_metric_parse (metric_name, &metric))
    return usage_error (ctx, "unknown --metric");
  if (x_name && g_ascii_strcasecmp (x_name, "bpw") == 0)
    x = QB_PARETO_X_BPW;
  else if (x_name && g_ascii_strcasecmp (x_name, "size") != 0)
    return usage_error (ctx, "--x must be size or bpw");
  if ((store = open_store_for_reading ()) == NULL || (model_id = resolve_model (store, model)) < 0)
    return 1;
  if ((points = qb_store_pareto (store, model_id, x, metric, &error)) == NULL)
    return qb_cli_fail (error);
  metric_upper = g_ascii_strup (qb_metric_name (metric), -1);
  t = table_new (".rr.r", "", "ID", x == QB_PARETO_X_BPW ? "BPW" : "SIZE", "NAME",
                 metric_upper, NULL);
  json_builder_begin_array (b);
  for (guint i = 0; i < points->len; i++)
    {
      const QbParetoPoint *p = &g_array_index (points, QbParetoPoint, i);
      g_autoptr(QbExperiment) e = NULL;

      if (!p->on_front && !all)
        continue;
      e = qb_store_get_experiment (store, p->experiment_id, NULL);
      table_add (t, g_strdup (p->on_front ? "*" : ""), g_strdup_printf ("%" G_GINT64_FORMAT, p->experiment_id),
                 x == QB_PARETO_X_BPW ? qb_cli_number (p->x, 4, 'f') : size_text (p->x),
                 g_strdup (e ? e->name : "?"), qb_cli_number (p->y, 6, 'g'));
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "id");
      json_builder_add_int_value (b, p->experiment_id);
      qb_json_builder_add_number (b, "x", p->x);
      qb_json_builder_add_number (b, "y", p->y);
      json_builder_set_member_name (b, "on_front");
      json_builder_add_boolean_value (b, p->on_front);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  if (opt_json)
    {
      g_autoptr(JsonNode) root = json_builder_get_root (b);
      print_json (qb_json_to_string (root));
      g_ptr_array_unref (t->rows);
      g_free (t);
    }
  else
    {
      printf ("%s against %s (%s is better); '*' marks the front.\n\n",
              qb_metric_label (metric), x == QB_PARETO_X_BPW ? "bits per weight" : "size",
              qb_metric_higher_is_better (metric) ? "higher" : "lower");
      table_print_free (t);
    }
  return 0;
}

static int
cmd_models (int argc, char **argv)
{
  g_autoptr(GOptionContext) ctx = sub_context ("", "List the models experiments were run on.", NULL);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GPtrArray) models = NULL;
  g_autoptr(GError) error = NULL;
  Table *t;

  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if ((store = open_store_for_reading ()) == NULL)
    return 1;
  if ((models = qb_store_list_models (store, &error)) == NULL)
    return qb_cli_fail (error);
  t = table_new ("r..rr.", "ID", "NAME", "FAMILY", "PARAMS", "SIZE", "FINGERPRINT", NULL);
  for (guint i = 0; i < models->len; i++)
    {
      QbModelRecord *m = g_ptr_array_index (models, i);
      table_add (t, g_strdup_printf ("%" G_GINT64_FORMAT, m->id),
                 m->name ? g_strdup (m->name) : g_path_get_basename (m->path),
                 g_strdup (m->family ? m->family : "-"),
                 g_strdup_printf ("%" G_GINT64_FORMAT, m->n_params), size_text (m->file_size),
                 g_strndup (m->fingerprint, 16));
    }
  table_print_free (t);
  return 0;
}

/* -- dispatch ------------------------------------------------------------------------------ */

static const struct {
  const char   *name;
  QbCliCommand  run;
  const char   *summary;
} subcommands[] = {
  { "list",    cmd_list,    "List experiments (filter, sort)" },
  { "show",    cmd_show,    "Show one experiment (--tensors for every tensor)" },
  { "compare", cmd_compare, "Compare experiments tensor by tensor" },
  { "pareto",  cmd_pareto,  "The Pareto front of size against a metric" },
  { "export",  cmd_export,  "Export experiments to JSON or CSV" },
  { "import",  cmd_import,  "Import experiments from a JSON export" },
  { "delete",  cmd_delete,  "Delete experiments" },
  { "rename",  cmd_rename,  "Rename an experiment" },
  { "tag",     cmd_tag,     "Tag an experiment" },
  { "untag",   cmd_untag,   "Remove tags from an experiment" },
  { "note",    cmd_note,    "Set an experiment's notes" },
  { "models",  cmd_models,  "List the models in the database" },
};

static void
print_usage (FILE *f)
{
  fprintf (f, "Usage: quantbench experiments [--db FILE] [--json] SUBCOMMAND [OPTIONS]\n\n"
              "Subcommands (SUBCOMMAND --help for their options):\n");
  for (gsize i = 0; i < G_N_ELEMENTS (subcommands); i++)
    fprintf (f, "  %-9s %s\n", subcommands[i].name, subcommands[i].summary);
}

int
qb_cmd_experiments (int argc, char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("SUBCOMMAND ...");
  int status = 2;

  /* Options before the subcommand; the rest is the subcommand's. */
  g_option_context_set_strict_posix (ctx, TRUE);
  g_option_context_set_help_enabled (ctx, FALSE);
  g_option_context_add_main_entries (ctx, common_entries, NULL);
  if (!qb_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      print_usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (subcommands); i++)
    if (strcmp (argv[1], subcommands[i].name) == 0)
      {
        status = subcommands[i].run (argc - 1, argv + 1);
        g_clear_pointer (&opt_db, g_free);
        return status;
      }
  fprintf (stderr, "quantbench: no experiments subcommand named '%s'\n\n", argv[1]);
  print_usage (stderr);
  return 2;
}
