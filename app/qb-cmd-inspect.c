/* SPDX-License-Identifier: MIT */
/* qb-cmd-inspect.c — `quantbench inspect FILE [--json] [--stats] [--threads N]`. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qb-cli.h"
#include "qb-json.h"
#include "qb-model.h"
#include "qb-model-stats.h"

/* Text from a file, safe to print: valid UTF-8, no control characters. */
static char *
printable (const char *s)
{
  char *out = g_utf8_make_valid (s ? s : "", -1);

  for (char *p = out; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      *p = '?';
  return out;
}

static const char *
format_kind (QbModel *model)
{
  static char buf[32];

  if (qb_model_get_file_kind (model) == QB_MODEL_FILE_SAFETENSORS)
    return "safetensors";
  g_snprintf (buf, sizeof buf, "GGUF v%u", qb_gguf_get_version (qb_model_get_gguf (model)));
  return buf;
}

/* ---- text ------------------------------------------------------------- */

static void
print_fact (const char *label, guint value)
{
  if (value)
    printf ("  %s %u", label, value);
  else
    printf ("  %s -", label);
}

static void
print_header (QbModel *model)
{
  const QbArchInfo *a = qb_model_get_arch (model);
  g_autofree char *path = printable (qb_model_get_path (model));
  g_autofree char *family = printable (a->family);
  g_autofree char *name = printable (a->name);
  g_autofree char *size = qb_cli_format_size (qb_model_get_file_size (model));

  printf ("%s\n", path);
  printf ("  format        %s, %s, fingerprint %.16s\n", format_kind (model), size,
          qb_model_get_fingerprint (model));
  printf ("  architecture  %s%s%s%s\n", family, a->name ? " (" : "", a->name ? name : "",
          a->name ? ")" : "");
  printf ("  facts       ");
  print_fact ("layers", a->n_layer);
  print_fact ("hidden", a->n_embd);
  print_fact ("heads", a->n_head);
  print_fact ("kv-heads", a->n_head_kv);
  print_fact ("head-dim", a->head_dim);
  print_fact ("ffn", a->n_ff);
  print_fact ("vocab", a->n_vocab);
  print_fact ("context", a->n_ctx);
  printf ("\n              ");
  if (a->rms_eps > 0)
    printf ("  rms-eps %g", a->rms_eps);
  else
    printf ("  rms-eps -");
  if (a->rope_freq_base > 0)
    printf ("  rope-base %g", a->rope_freq_base);
  else
    printf ("  rope-base -");
  printf ("  tied-embeddings %s\n", a->tied_embeddings ? "yes" : "no");
  if (a->n_expert > 0)
    printf ("  experts       %u per layer, %u per token, width %u, shared expert %s%.0u\n",
            a->n_expert, a->n_expert_used, a->n_ff_exp, a->n_ff_shexp ? "width " : "none",
            a->n_ff_shexp);
  printf ("\n");
}

static void
print_stat (double v)
{
  if (isfinite (v))
    printf (" %10.4g", v);
  else
    printf (" %10s", "-");
}

static void
print_table (QbModel *model, const QbTensorStats *stats)
{
  guint n = qb_model_get_n_tensors (model);
  int name_w = 4, shape_w = 5, role_w = 12;
  guint n_unreadable = 0;

  for (guint i = 0; i < n; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      g_autofree char *shape = qb_cli_shape (t, " x ");
      name_w = MAX (name_w, (int) MIN (g_utf8_strlen (t->name, -1), 60));
      shape_w = MAX (shape_w, (int) strlen (shape));
      role_w = MAX (role_w, (int) strlen (qb_tensor_role_name (t->role)));
    }

  printf ("  %4s  %-*s %5s  %-*s %-*s %-7s %10s %12s", "#", name_w, "name", "layer", role_w,
          "role", shape_w, "shape", "dtype", "params", "bytes");
  if (stats)
    printf (" %10s %10s %10s %10s %10s %10s", "min", "max", "mean", "std", "kurtosis", "outliers%");
  printf ("\n");

  for (guint i = 0; i < n; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      g_autofree char *shape = qb_cli_shape (t, " x ");
      char layer[16] = "-";
      int pad = name_w - (int) g_utf8_strlen (t->name, -1);

      if (t->layer >= 0)
        g_snprintf (layer, sizeof layer, "%d", t->layer);
      printf ("  %4u  %s%*s %5s  %-*s %-*s %-7s %10" G_GINT64_FORMAT " %12" G_GUINT64_FORMAT,
              i, t->name, MAX (pad, 0), "", layer, role_w,
              t->is_bias ? "bias" : qb_tensor_role_name (t->role), shape_w, shape,
              qb_dtype_name (t->dtype), t->n_params, t->n_bytes);
      if (stats && stats[i].readable)
        {
          const QbMoments *m = &stats[i].moments;
          print_stat (m->n ? m->min : NAN);
          print_stat (m->n ? m->max : NAN);
          print_stat (m->n ? m->mean : NAN);
          print_stat (m->n ? qb_moments_std (m) : NAN);
          print_stat (qb_moments_kurtosis (m));
          print_stat (m->n ? 100.0 * qb_tensor_stats_outlier_share (&stats[i]) : NAN);
          if (m->n_nonfinite)
            printf ("  (%" G_GUINT64_FORMAT " NaN/inf)", m->n_nonfinite);
        }
      else if (stats)
        {
          printf ("  not readable: no converter for %s", qb_dtype_name (t->dtype));
          n_unreadable++;
        }
      printf ("\n");
    }

  {
    g_autofree char *size = qb_cli_format_size (qb_model_get_n_bytes (model));
    printf ("\n  %u tensors, %" G_GINT64_FORMAT " parameters, %" G_GUINT64_FORMAT
            " bytes of tensor data (%s)\n", n, qb_model_get_n_params (model),
            qb_model_get_n_bytes (model), size);
  }
  if (n_unreadable)
    printf ("  --stats skipped %u tensor%s whose type Quantbench cannot convert to float\n",
            n_unreadable, n_unreadable == 1 ? "" : "s");
}

/* ---- JSON ------------------------------------------------------------- */

static void
add_uint (JsonBuilder *b, const char *key, guint64 v)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, (gint64) v);
}

static void
add_arch (JsonBuilder *b, const QbArchInfo *a)
{
  json_builder_set_member_name (b, "architecture");
  json_builder_begin_object (b);
  qb_json_builder_add_string (b, "family", a->family);
  qb_json_builder_add_string (b, "name", a->name);
  add_uint (b, "n_layer", a->n_layer);
  add_uint (b, "n_embd", a->n_embd);
  add_uint (b, "n_head", a->n_head);
  add_uint (b, "n_head_kv", a->n_head_kv);
  add_uint (b, "head_dim", a->head_dim);
  add_uint (b, "n_ff", a->n_ff);
  add_uint (b, "n_vocab", a->n_vocab);
  add_uint (b, "n_ctx", a->n_ctx);
  qb_json_builder_add_number (b, "rms_eps", a->rms_eps > 0 ? a->rms_eps : NAN);
  qb_json_builder_add_number (b, "rope_freq_base", a->rope_freq_base > 0 ? a->rope_freq_base : NAN);
  json_builder_set_member_name (b, "tied_embeddings");
  json_builder_add_boolean_value (b, a->tied_embeddings);
  json_builder_end_object (b);
}

static void
add_stats (JsonBuilder *b, const QbTensorStats *s)
{
  const QbMoments *m = &s->moments;

  json_builder_set_member_name (b, "stats");
  if (!s->readable)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  add_uint (b, "count", m->n);
  add_uint (b, "nonfinite", m->n_nonfinite);
  qb_json_builder_add_number (b, "min", m->n ? m->min : NAN);
  qb_json_builder_add_number (b, "max", m->n ? m->max : NAN);
  qb_json_builder_add_number (b, "mean", m->n ? m->mean : NAN);
  qb_json_builder_add_number (b, "std", m->n ? qb_moments_std (m) : NAN);
  qb_json_builder_add_number (b, "kurtosis", qb_moments_kurtosis (m));
  qb_json_builder_add_number (b, "outlier_share", qb_tensor_stats_outlier_share (s));
  json_builder_end_object (b);
}

static void
print_json (QbModel *model, const QbTensorStats *stats)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  qb_json_builder_add_string (b, "file", qb_model_get_path (model));
  qb_json_builder_add_string (b, "format", qb_model_get_file_kind (model) == QB_MODEL_FILE_GGUF ? "gguf" : "safetensors");
  if (qb_model_get_gguf (model))
    add_uint (b, "gguf_version", qb_gguf_get_version (qb_model_get_gguf (model)));
  add_uint (b, "file_size", qb_model_get_file_size (model));
  qb_json_builder_add_string (b, "fingerprint", qb_model_get_fingerprint (model));
  add_arch (b, qb_model_get_arch (model));

  json_builder_set_member_name (b, "tensors");
  json_builder_begin_array (b);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);

      json_builder_begin_object (b);
      qb_json_builder_add_string (b, "name", t->name);
      json_builder_set_member_name (b, "layer");
      if (t->layer >= 0)
        json_builder_add_int_value (b, t->layer);
      else
        json_builder_add_null_value (b);
      qb_json_builder_add_string (b, "role", qb_tensor_role_name (t->role));
      json_builder_set_member_name (b, "is_bias");
      json_builder_add_boolean_value (b, t->is_bias);
      json_builder_set_member_name (b, "shape");
      json_builder_begin_array (b);
      for (guint d = 0; d < t->n_dims; d++)
        json_builder_add_int_value (b, t->ne[d]);
      json_builder_end_array (b);
      qb_json_builder_add_string (b, "dtype", qb_dtype_name (t->dtype));
      json_builder_set_member_name (b, "readable");
      json_builder_add_boolean_value (b, qb_dtype_is_readable (t->dtype));
      add_uint (b, "params", (guint64) t->n_params);
      add_uint (b, "bytes", t->n_bytes);
      if (stats)
        add_stats (b, &stats[i]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "totals");
  json_builder_begin_object (b);
  add_uint (b, "tensors", qb_model_get_n_tensors (model));
  add_uint (b, "params", (guint64) qb_model_get_n_params (model));
  add_uint (b, "bytes", qb_model_get_n_bytes (model));
  json_builder_end_object (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  /* qb-json writes every double as valid JSON (json-glib 1.6 may not). */
  text = qb_json_to_string (root);
  printf ("%s\n", text);
}

/* ---- command ---------------------------------------------------------- */

int
qb_cmd_inspect (int argc, char **argv)
{
  gboolean json = FALSE, stats_wanted = FALSE;
  int threads = 0;
  g_auto(GStrv) files = NULL;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON instead of a table", NULL },
    { "stats", 0, 0, G_OPTION_ARG_NONE, &stats_wanted, "Add per-tensor weight statistics (reads all data)", NULL },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads for --stats (default: all CPUs)", "N" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, "FILE" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("FILE — show a model's architecture and tensors");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autofree QbTensorStats *stats = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context,
    "FILE is a .gguf, a .safetensors, a model.safetensors.index.json, or a folder holding one.");
  if (!qb_cli_parse (context, &argc, &argv) || !qb_cli_check_threads (threads))
    return 2;
  if (files == NULL || files[0] == NULL || files[1] != NULL || threads < 0)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      fprintf (stderr, "%s", help);
      return 2;
    }

  model = qb_model_open (files[0], &error);
  if (model == NULL)
    return qb_cli_fail (error);

  if (stats_wanted)
    {
      g_autoptr(QbWorkers) workers = qb_workers_new ((guint) threads);
      stats = g_new0 (QbTensorStats, MAX (qb_model_get_n_tensors (model), 1));
      if (!qb_model_compute_stats (model, workers, stats, NULL, NULL, NULL, &error))
        return qb_cli_fail (error);
    }

  if (json)
    print_json (model, stats);
  else
    {
      print_header (model);
      print_table (model, stats);
    }
  return 0;
}
