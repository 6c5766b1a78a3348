/* SPDX-License-Identifier: MIT */
/* test-store-export.c — JSON export and import (lossless, idempotent,
 * all or nothing) and CSV export. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "qb-json.h"
#include "qb-store-private.h"
#include "qb-test-store.h"
#include "qb-test-util.h"

static QbStore *
open_in (const char *dir, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, name, NULL);
  QbStore *store = qb_store_open (path, &error);

  g_assert_no_error (error);
  return store;
}

/* Three experiments with everything a store can hold: a done run with
 * histograms, channel ranges, lossless and unmeasured metrics, two
 * evaluations with per-chunk results, a calibration set, tags, notes
 * with awkward characters; a failed run; a cancelled empty one. */
static GArray *
populate (QbStore *store)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModelRecord) model = qb_test_model_record ("e4b0e4b0e4b0", "stories");
  g_autoptr(QbModelRecord) other = qb_test_model_record ("0e0e0e0e0e0e", "other");
  g_autoptr(QbCalibrationSet) set = qb_calibration_set_new ();
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  const char *tags[] = { "ship it", "q4", "日本語", NULL };
  QbExperimentSpec spec = {
    .name = "Q4_K, \"mixed\"\nwith ffn_down in Q8_0 — ünïcode",
    .plan_json = "{\"version\":1,\"default_format\":\"Q4_K\",\"options\":{\"damp\":0.01,"
                 "\"ratio\":0.33333333333333331},\"rules\":[{\"pattern\":\"*ffn_down*\","
                 "\"format\":\"Q8_0\"}],\"note\":\"\\u00e9\\t\"}",
    .threads = 8, .backend = "cpu", .n_tensors = 12, .notes = "notes, with \"quotes\"\nand lines",
    .tags = tags,
  };
  gint64 id, set_id = 0;

  set->name = g_strdup ("tinystories 32×256");
  g_strfreev (set->sources);
  set->sources = g_strdupv ((char *[]) { "/data/tinystories-val.txt", NULL });
  set->hash = g_strdup ("9f86d081884c7d65");
  set->n_tokens = 8192;
  set->chunk_len = 256;
  set->n_chunks = 32;
  set->seeded = TRUE;
  set->skip_chunks = 40;
  set->seed = 1234567890123ULL;
  qb_store_add_calibration_set (store, set, &set_id, &error);
  g_assert_no_error (error);
  spec.calibration_set_id = set_id;

  id = qb_store_begin_experiment (store, model, &spec, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 12; i++)
    {
      g_autofree char *name = g_strdup_printf ("blk.%u.ffn_down.weight", i);
      g_autoptr(QbTensorResult) r = qb_test_tensor_result (name, i, i != 7, i % 4 == 3 ? 0 : 48);

      if (i == 5)
        {
          r->metrics.sqnr_db = INFINITY;
          r->metrics.mse = 0;
          r->metrics.kurtosis = -INFINITY;
          g_free (r->method);
          r->method = g_strdup ("keep");
        }
      if (i == 6)
        g_clear_pointer (&r->hist_error, qb_histogram_free);
      r->metrics.wmse = i % 2 ? NAN : 1.0 / 3 * 1e-7;
      qb_store_add_tensor_result (store, id, 11 - i, i == 2 ? 0 : r->n_params * 2, r, &error);
      g_assert_no_error (error);
    }
  qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 3.14159, NULL, &error);
  g_assert_no_error (error);
  for (guint k = 0; k < 2; k++)
    {
      g_autoptr(QbEvaluation) ev = qb_evaluation_new ();
      const double ppl[] = { 10.125, 9.875, 11.0 / 3 }, kld[] = { 0.01, NAN, 0.0300000001 };

      ev->created = 1700000000123456 + k;
      ev->text_name = g_strdup ("tinystories-val.txt");
      ev->text_hash = g_strdup ("5fc1fb01");
      ev->n_ctx = 128 << k;
      ev->n_chunks = 3;
      ev->n_tokens = 381;
      ev->perplexity = 10.3;
      ev->perplexity_err = 0.25;
      ev->base_perplexity = 9.8;
      ev->kld_mean = 0.0123;
      ev->kld_median = 0.01;
      ev->kld_p90 = 0.03;
      ev->kld_p95 = 0.04;
      ev->kld_p99 = 0.08;
      ev->kld_max = 1.5;
      ev->top1_agreement = 0.9375;
      ev->dp_mean = -0.001;
      ev->dp_rms = 0.02;
      ev->seconds = 0.5;
      ev->device = g_strdup ("cpu");
      qb_evaluation_set_chunks (ev, 3, ppl, kld);
      qb_store_set_evaluation (store, id, ev, NULL, &error);
      g_assert_no_error (error);
    }
  g_array_append_val (ids, id);

  id = qb_test_store_run (store, other, "failed one", "Q2_K", 2, QB_EXPERIMENT_FAILED);
  g_array_append_val (ids, id);
  id = qb_test_store_run (store, model, "cancelled, nothing done", "Q4_K", 0, QB_EXPERIMENT_CANCELLED);
  g_array_append_val (ids, id);
  return ids;
}

static void
assert_same_evaluation (const QbEvaluation *a, const QbEvaluation *b, gboolean chunks)
{
  g_assert_cmpint (a->created, ==, b->created);
  g_assert_cmpstr (a->text_name, ==, b->text_name);
  g_assert_cmpstr (a->text_hash, ==, b->text_hash);
  g_assert_cmpuint (a->n_ctx, ==, b->n_ctx);
  g_assert_cmpuint (a->n_chunks, ==, b->n_chunks);
  g_assert_cmpuint (a->n_tokens, ==, b->n_tokens);
  g_assert_true (qb_test_same_double (a->perplexity, b->perplexity));
  g_assert_true (qb_test_same_double (a->perplexity_err, b->perplexity_err));
  g_assert_true (qb_test_same_double (a->base_perplexity, b->base_perplexity));
  g_assert_true (qb_test_same_double (a->kld_mean, b->kld_mean));
  g_assert_true (qb_test_same_double (a->kld_median, b->kld_median));
  g_assert_true (qb_test_same_double (a->kld_p90, b->kld_p90));
  g_assert_true (qb_test_same_double (a->kld_p95, b->kld_p95));
  g_assert_true (qb_test_same_double (a->kld_p99, b->kld_p99));
  g_assert_true (qb_test_same_double (a->kld_max, b->kld_max));
  g_assert_true (qb_test_same_double (a->top1_agreement, b->top1_agreement));
  g_assert_true (qb_test_same_double (a->dp_mean, b->dp_mean));
  g_assert_true (qb_test_same_double (a->dp_rms, b->dp_rms));
  g_assert_true (qb_test_same_double (a->seconds, b->seconds));
  g_assert_cmpstr (a->device, ==, b->device);
  if (!chunks)
    return;
  g_assert_cmpuint (a->n_chunk_results, ==, b->n_chunk_results);
  for (guint i = 0; i < a->n_chunk_results; i++)
    {
      g_assert_true (qb_test_same_double (a->chunk_ppl[i], b->chunk_ppl[i]));
      g_assert_true (qb_test_same_double (a->chunk_kld[i], b->chunk_kld[i]));
    }
}

/* Everything but the local ids and the owning process (which stays with
 * the machine that ran it). */
static void
assert_same_experiment (QbStore *sa, gint64 ida, QbStore *sb, gint64 idb)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbExperiment) a = qb_store_get_experiment (sa, ida, &error);
  g_autoptr(QbExperiment) b = qb_store_get_experiment (sb, idb, &error);
  g_autoptr(QbModelRecord) ma = qb_store_get_model (sa, a->model_id, &error);
  g_autoptr(QbModelRecord) mb = qb_store_get_model (sb, b->model_id, &error);
  g_autoptr(GPtrArray) ea = qb_store_list_evaluations (sa, ida, &error);
  g_autoptr(GPtrArray) eb = qb_store_list_evaluations (sb, idb, &error);
  g_autoptr(GPtrArray) ta = qb_store_get_tensors (sa, ida, &error);
  g_autoptr(GPtrArray) tb = qb_store_get_tensors (sb, idb, &error);
  const QbExperimentTotals *x = &a->totals, *y = &b->totals;

  g_assert_no_error (error);
  g_assert_cmpstr (a->uuid, ==, b->uuid);
  g_assert_cmpstr (a->name, ==, b->name);
  g_assert_cmpstr (a->model_name, ==, b->model_name);
  g_assert_cmpstr (a->model_fingerprint, ==, b->model_fingerprint);
  g_assert_cmpint (a->created, ==, b->created);
  g_assert_cmpint (a->updated, ==, b->updated);
  g_assert_cmpint (a->finished, ==, b->finished);
  g_assert_cmpint (a->status, ==, b->status);
  g_assert_cmpstr (a->plan_json, ==, b->plan_json);
  g_assert_cmpuint (a->threads, ==, b->threads);
  g_assert_cmpstr (a->backend, ==, b->backend);
  g_assert_cmpuint (a->n_tensors, ==, b->n_tensors);
  g_assert_cmpuint (a->n_tensors_done, ==, b->n_tensors_done);
  g_assert_cmpstr (a->notes, ==, b->notes);
  g_assert_cmpstrv (a->tags, b->tags);
  g_assert_cmpstr (a->error_message, ==, b->error_message);
  g_assert_cmpint (x->n_params, ==, y->n_params);
  g_assert_cmpuint (x->original_bytes, ==, y->original_bytes);
  g_assert_cmpuint (x->quantized_bytes, ==, y->quantized_bytes);
  g_assert_cmpuint (x->n_fallbacks, ==, y->n_fallbacks);
  g_assert_true (qb_test_same_double (x->bpw, y->bpw));
  g_assert_true (qb_test_same_double (x->compression, y->compression));
  g_assert_true (qb_test_same_double (x->seconds, y->seconds));
  g_assert_true (qb_test_same_double (x->sqnr_db, y->sqnr_db));
  g_assert_true (qb_test_same_double (x->rmse_rel, y->rmse_rel));
  g_assert_true (qb_test_same_double (x->cosine_min, y->cosine_min));
  g_assert_true (qb_test_same_double (x->max_abs_err, y->max_abs_err));
  g_assert_true (qb_test_same_double (x->out_rel_err, y->out_rel_err));
  g_assert_true ((a->evaluation == NULL) == (b->evaluation == NULL));
  if (a->evaluation)
    assert_same_evaluation (a->evaluation, b->evaluation, FALSE);

  g_assert_cmpstr (ma->fingerprint, ==, mb->fingerprint);
  g_assert_cmpstr (ma->path, ==, mb->path);
  g_assert_cmpuint (ma->file_size, ==, mb->file_size);
  g_assert_cmpstr (ma->name, ==, mb->name);
  g_assert_cmpstr (ma->family, ==, mb->family);
  g_assert_cmpint (ma->n_params, ==, mb->n_params);
  g_assert_cmpuint (ma->n_tensors, ==, mb->n_tensors);
  g_assert_cmpstr (ma->arch_json, ==, mb->arch_json);
  g_assert_cmpint (ma->first_seen, ==, mb->first_seen);

  g_assert_true ((a->calibration_set_id == 0) == (b->calibration_set_id == 0));
  if (a->calibration_set_id)
    {
      g_autoptr(QbCalibrationSet) ca = qb_store_get_calibration_set (sa, a->calibration_set_id, &error);
      g_autoptr(QbCalibrationSet) cb = qb_store_get_calibration_set (sb, b->calibration_set_id, &error);
      g_assert_cmpstr (ca->name, ==, cb->name);
      g_assert_cmpstr (ca->hash, ==, cb->hash);
      g_assert_cmpstrv (ca->sources, cb->sources);
      g_assert_cmpuint (ca->n_tokens, ==, cb->n_tokens);
      g_assert_cmpuint (ca->chunk_len, ==, cb->chunk_len);
      g_assert_cmpuint (ca->n_chunks, ==, cb->n_chunks);
      g_assert_true (ca->seeded == cb->seeded);
      g_assert_cmpuint (ca->skip_chunks, ==, cb->skip_chunks);
      g_assert_cmpuint (ca->seed, ==, cb->seed);
      g_assert_cmpint (ca->created, ==, cb->created);
    }

  g_assert_cmpuint (ea->len, ==, eb->len);
  for (guint i = 0; i < ea->len; i++)
    assert_same_evaluation (ea->pdata[i], eb->pdata[i], TRUE);

  g_assert_cmpuint (ta->len, ==, tb->len);
  for (guint i = 0; i < ta->len; i++)
    {
      QbStoredTensor *p = ta->pdata[i], *q = tb->pdata[i];
      g_assert_cmpuint (p->position, ==, q->position);
      g_assert_cmpuint (p->original_bytes, ==, q->original_bytes);
      g_assert_true (qb_store_load_tensor_data (sa, p, &error));
      g_assert_true (qb_store_load_tensor_data (sb, q, &error));
      qb_test_assert_same_result (p->result, q->result);
    }
}

static char *
export_to_string (QbStore *store, GArray *ids, QbStoreExportFormat format)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  g_assert_true (qb_store_export (store, (gint64 *) ids->data, ids->len, format, out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_write_all (out, "", 1, NULL, NULL, NULL));   /* NUL */
  g_output_stream_close (out, NULL, NULL);
  return g_memory_output_stream_steal_data (G_MEMORY_OUTPUT_STREAM (out));
}

static void
test_round_trip (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *file = g_build_filename (dir, "export.json", NULL);
  g_autoptr(QbStore) a = open_in (dir, "a.db");
  g_autoptr(QbStore) b = open_in (dir, "b.db");
  g_autoptr(GArray) ids = populate (a);
  g_autoptr(GArray) new_ids = NULL;
  g_autoptr(GArray) again = NULL;
  g_autofree char *first = NULL, *second = NULL;
  g_autoptr(GBytes) written = NULL;
  guint skipped = 99, count = 0;

  g_assert_true (qb_store_export_to_file (a, (gint64 *) ids->data, ids->len, QB_STORE_EXPORT_JSON,
                                          file, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (qb_store_import_file (b, file, &new_ids, &skipped, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (new_ids->len, ==, 3);
  g_assert_cmpuint (skipped, ==, 0);
  for (guint i = 0; i < 3; i++)
    assert_same_experiment (a, g_array_index (ids, gint64, i), b, g_array_index (new_ids, gint64, i));

  /* Exporting the imported copy gives the same file, byte for byte. */
  written = qb_test_file_bytes (file);
  first = g_strndup (g_bytes_get_data (written, NULL), g_bytes_get_size (written));
  second = export_to_string (b, new_ids, QB_STORE_EXPORT_JSON);
  g_assert_cmpstr (first, ==, second);
  g_assert_nonnull (strstr (first, "\"sqnr_db\":\"inf\""));
  g_assert_nonnull (strstr (first, "\"wmse\":null"));

  /* Importing again adds nothing. */
  g_assert_true (qb_store_import_file (b, file, &again, &skipped, &error));
  g_assert_cmpuint (again->len, ==, 0);
  g_assert_cmpuint (skipped, ==, 3);
  g_assert_true (qb_store_count_experiments (b, NULL, &count, &error));
  g_assert_cmpuint (count, ==, 3);
}

/* The import walks the text and parses one experiment at a time: the
 * same result whatever the layout — pretty-printed, "experiments" first,
 * names holding brackets, quotes and commas — and a damaged element late
 * in the array still rolls the whole import back. */
static void
test_import_streamed (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(QbStore) a = open_in (dir, "a.db");
  g_autoptr(QbStore) b = open_in (dir, "b.db");
  g_autoptr(QbStore) c = open_in (dir, "c.db");
  g_autoptr(GArray) ids = populate (a);
  g_autoptr(GArray) new_ids = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *json = NULL, *pretty = NULL, *broken = NULL, *experiments = NULL;
  JsonObject *root;
  guint count = 0;

  g_assert_true (qb_store_rename_experiment (a, g_array_index (ids, gint64, 0),
                                             "odd ]},[{\"name\": \"x\"", &error));
  g_assert_no_error (error);
  json = export_to_string (a, ids, QB_STORE_EXPORT_JSON);
  g_assert_true (json_parser_load_from_data (parser, json, -1, &error));
  root = json_node_get_object (json_parser_get_root (parser));
  /* experiments first, spaced out, then the envelope's other members */
  experiments = qb_json_to_string (json_object_get_member (root, "experiments"));
  pretty = g_strdup_printf ("\n {\n  \"experiments\" :\t%s ,\r\n  \"format\" : \"%s\",\n"
                            "  \"version\" : %" G_GINT64_FORMAT "\n}\n", experiments,
                            json_object_get_string_member (root, "format"),
                            json_object_get_int_member (root, "version"));

  g_assert_true (qb_store_import_json (b, pretty, -1, "pretty.json", &new_ids, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (new_ids->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    assert_same_experiment (a, g_array_index (ids, gint64, i), b, g_array_index (new_ids, gint64, i));

  /* The last experiment damaged (its tensors renamed away), after two
   * were written: nothing of them stays. */
  broken = g_strdup (json);
  memcpy (g_strrstr (broken, "\"tensors\":"), "\"tensorz\":", 10);
  g_assert_false (qb_store_import_json (c, broken, -1, "broken.json", NULL, NULL, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_test_message ("%s", error->message);
  g_assert_true (qb_store_count_experiments (c, NULL, &count, NULL));
  g_assert_cmpuint (count, ==, 0);
}

/* Imported twice after a colleague added a tag: the tag is merged, the
 * local name and notes kept. */
static void
test_import_merges (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(QbStore) a = open_in (dir, "a.db");
  g_autoptr(QbStore) b = open_in (dir, "b.db");
  g_autoptr(GArray) ids = populate (a);
  g_autoptr(GArray) new_ids = NULL;
  g_autoptr(GPtrArray) models = NULL;
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(QbModelRecord) local = qb_test_model_record ("e4b0e4b0e4b0", "stories");
  g_autofree char *json = NULL, *json2 = NULL;
  const char *more[] = { "reviewed", NULL };
  gint64 local_model = 0, first;
  guint skipped = 0;

  /* b already knows the model, at another path: the import uses it. */
  g_free (local->path);
  local->path = g_strdup ("/home/me/stories.gguf");
  qb_store_add_model (b, local, &local_model, &error);
  g_assert_no_error (error);

  json = export_to_string (a, ids, QB_STORE_EXPORT_JSON);
  g_assert_true (qb_store_import_json (b, json, -1, "colleague.json", &new_ids, NULL, &error));
  g_assert_no_error (error);
  first = g_array_index (new_ids, gint64, 0);
  e = qb_store_get_experiment (b, first, &error);
  g_assert_cmpint (e->model_id, ==, local_model);
  models = qb_store_list_models (b, &error);
  g_assert_cmpuint (models->len, ==, 2);
  {
    g_autoptr(QbModelRecord) m = qb_store_get_model (b, local_model, &error);
    g_assert_cmpstr (m->path, ==, "/home/me/stories.gguf");
  }
  g_clear_pointer (&e, qb_experiment_free);

  qb_store_rename_experiment (b, first, "my name for it", &error);
  qb_store_add_tags (a, g_array_index (ids, gint64, 0), more, &error);
  g_assert_no_error (error);
  json2 = export_to_string (a, ids, QB_STORE_EXPORT_JSON);
  g_clear_pointer (&new_ids, g_array_unref);
  g_assert_true (qb_store_import_json (b, json2, -1, "colleague.json", &new_ids, &skipped, &error));
  g_assert_cmpuint (new_ids->len, ==, 0);
  g_assert_cmpuint (skipped, ==, 3);
  e = qb_store_get_experiment (b, first, &error);
  g_assert_cmpstr (e->name, ==, "my name for it");
  g_assert_cmpstrv (e->tags, ((const char *[]) { "q4", "reviewed", "ship it", "日本語", NULL }));
}

/* A running experiment imported is interrupted: its process is elsewhere. */
static void
test_import_running (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(QbStore) a = open_in (dir, "a.db");
  g_autoptr(QbStore) b = open_in (dir, "b.db");
  g_autoptr(QbModelRecord) model = qb_test_model_record ("7a7a7a7a", "m");
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) new_ids = NULL;
  g_autoptr(QbExperiment) e = NULL;
  g_autofree char *json = NULL;
  gint64 id = qb_test_store_run (a, model, "still going", "Q4_K", 2, QB_EXPERIMENT_RUNNING);

  g_array_append_val (ids, id);
  json = export_to_string (a, ids, QB_STORE_EXPORT_JSON);
  g_assert_true (qb_store_import_json (b, json, -1, "x", &new_ids, NULL, &error));
  e = qb_store_get_experiment (b, g_array_index (new_ids, gint64, 0), &error);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_INTERRUPTED);
  g_assert_cmpint (e->finished, ==, e->updated);
  g_assert_cmpuint (e->n_tensors_done, ==, 2);
}

static void
assert_import_fails (QbStore *store, const char *json, const char *words)
{
  g_autoptr(GError) error = NULL;
  guint before = 0, after = 0;

  g_assert_true (qb_store_count_experiments (store, NULL, &before, NULL));
  g_assert_false (qb_store_import_json (store, json, -1, "bad.json", NULL, NULL, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_INVALID);
  g_assert_true (g_str_has_prefix (error->message, "bad.json: "));
  if (strstr (error->message, words) == NULL)
    g_error ("'%s' does not say '%s'", error->message, words);
  g_assert_true (qb_store_count_experiments (store, NULL, &after, NULL));
  g_assert_cmpuint (before, ==, after);
}

/* Replaces the first occurrence of `from` in s. */
static char *
replace_once (const char *s, const char *from, const char *to)
{
  const char *at = strstr (s, from);

  g_assert_nonnull (at);
  return g_strdup_printf ("%.*s%s%s", (int) (at - s), s, to, at + strlen (from));
}

static void
test_import_bad (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(QbStore) a = open_in (dir, "a.db");
  g_autoptr(QbStore) b = open_in (dir, "b.db");
  g_autoptr(GArray) ids = populate (a);
  g_autofree char *good = export_to_string (a, ids, QB_STORE_EXPORT_JSON);
  g_autofree char *bpw = replace_once (good, "\"bpw\":", "\"bpw\":\"fast\",\"x\":");
  g_autoptr(GString) third = g_string_new (good);
  g_autofree char *counts = NULL, *status = NULL, *version = NULL, *format = NULL;
  g_autofree char *fingerprint = NULL, *tag = NULL, *time = NULL, *chunks = NULL;

  assert_import_fails (b, "{ not json", "not valid JSON");
  assert_import_fails (b, "[1, 2]", "not a Quantbench experiment export");
  format = replace_once (good, "quantbench-experiments", "something-else");
  assert_import_fails (b, format, "format 'something-else'");
  version = replace_once (good, "\"version\":1,\"experiments\"", "\"version\":2,\"experiments\"");
  assert_import_fails (b, version, "newer Quantbench");
  assert_import_fails (b, bpw, "experiments[0].totals: 'bpw' must be a number");
  status = replace_once (good, "\"status\":\"done\"", "\"status\":\"great\"");
  assert_import_fails (b, status, "'great' is not a status");
  fingerprint = replace_once (good, "\"fingerprint\":\"e4b0e4b0e4b0\"", "\"fingerprint\":7");
  assert_import_fails (b, fingerprint, "experiments[0].model: 'fingerprint' must be a string");
  counts = replace_once (good, "\"counts\":[", "\"counts\":[-1,");
  assert_import_fails (b, counts, "experiments[0].tensors[0].hist_original: counts[0]");
  tag = replace_once (good, "\"ship it\"", "\"\"");
  assert_import_fails (b, tag, "is not a valid tag");
  time = replace_once (good, "\"created\":\"", "\"created\":\"yesterday");
  assert_import_fails (b, time, "not an ISO 8601 time");
  chunks = replace_once (good, "\"kld_mean\":[", "\"kld_mean\":[1,");
  assert_import_fails (b, chunks, "'kld_mean' has 4 values, expected 3");

  /* All or nothing: good experiments before a bad one are not kept. */
  {
    const char *last = strstr (good, "\"name\":\"cancelled");
    g_autofree char *broken = g_strdup_printf ("%.*s\"name\":7,%s", (int) (last - good), good,
                                               last + strlen ("\"name\":\"cancelled, nothing done\","));
    assert_import_fails (b, broken, "experiments[2]: 'name' must be a string");
  }
  (void) third;
}

/* -- CSV -------------------------------------------------------------------------------------- */

/* Splits one CSV document (RFC 4180) into rows of fields. */
static GPtrArray *
parse_csv (const char *text)
{
  GPtrArray *rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  GPtrArray *row = g_ptr_array_new_with_free_func (g_free);
  GString *field = g_string_new (NULL);
  gboolean quoted = FALSE;

  for (const char *p = text; *p; p++)
    {
      if (quoted)
        {
          if (*p == '"' && p[1] == '"')
            g_string_append_c (field, '"'), p++;
          else if (*p == '"')
            quoted = FALSE;
          else
            g_string_append_c (field, *p);
        }
      else if (*p == '"')
        quoted = TRUE;
      else if (*p == ',')
        {
          g_ptr_array_add (row, g_string_free (field, FALSE));
          field = g_string_new (NULL);
        }
      else if (*p == '\n')
        {
          g_ptr_array_add (row, g_string_free (field, FALSE));
          field = g_string_new (NULL);
          g_ptr_array_add (rows, row);
          row = g_ptr_array_new_with_free_func (g_free);
        }
      else
        g_string_append_c (field, *p);
    }
  g_string_free (field, TRUE);
  g_ptr_array_unref (row);
  return rows;
}

static int
column (GPtrArray *header, const char *name)
{
  for (guint i = 0; i < header->len; i++)
    if (strcmp (header->pdata[i], name) == 0)
      return i;
  g_error ("no column %s", name);
}

static void
test_csv (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(QbStore) a = open_in (dir, "a.db");
  g_autoptr(GArray) ids = populate (a);
  g_autofree char *summary = export_to_string (a, ids, QB_STORE_EXPORT_CSV);
  g_autofree char *tensors = export_to_string (a, ids, QB_STORE_EXPORT_CSV_TENSORS);
  g_autoptr(GPtrArray) rows = parse_csv (summary);
  g_autoptr(GPtrArray) trows = parse_csv (tensors);
  g_autoptr(QbExperiment) e = qb_store_get_experiment (a, g_array_index (ids, gint64, 0), &error);
  GPtrArray *header = rows->pdata[0], *first = rows->pdata[1];

  g_assert_cmpuint (rows->len, ==, 4);
  for (guint i = 1; i < rows->len; i++)
    g_assert_cmpuint (((GPtrArray *) rows->pdata[i])->len, ==, header->len);
  g_assert_cmpstr (first->pdata[column (header, "name")], ==, e->name);     /* comma, quotes, newline */
  g_assert_cmpstr (first->pdata[column (header, "notes")], ==, e->notes);
  g_assert_cmpstr (first->pdata[column (header, "tags")], ==, "q4;ship it;日本語");
  g_assert_cmpfloat (g_ascii_strtod (first->pdata[column (header, "bpw")], NULL), ==, e->totals.bpw);
  g_assert_cmpfloat (g_ascii_strtod (first->pdata[column (header, "sqnr_db")], NULL), ==, e->totals.sqnr_db);
  g_assert_cmpstr (first->pdata[column (header, "perplexity")], ==, "10.3");
  g_assert_cmpstr (((GPtrArray *) rows->pdata[2])->pdata[column (header, "error")], ==, "boom");
  g_assert_cmpstr (((GPtrArray *) rows->pdata[3])->pdata[column (header, "bpw")], ==, "");

  /* One row per tensor: 12 + 2 + 0. */
  g_assert_cmpuint (trows->len, ==, 1 + 14);
  header = trows->pdata[0];
  for (guint i = 1; i < trows->len; i++)
    g_assert_cmpuint (((GPtrArray *) trows->pdata[i])->len, ==, header->len);
  first = trows->pdata[1];
  g_assert_cmpstr (first->pdata[column (header, "tensor")], ==, "blk.11.ffn_down.weight");
  g_assert_cmpstr (first->pdata[column (header, "position")], ==, "0");
  g_assert_cmpstr (((GPtrArray *) trows->pdata[7])->pdata[column (header, "sqnr_db")], ==, "inf");
  g_assert_cmpstr (((GPtrArray *) trows->pdata[7])->pdata[column (header, "method")], ==, "keep");
}

/* -- files -------------------------------------------------------------------------------------- */

static guint
count_files (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (g_dir_read_name (d) != NULL)
    n++;
  return n;
}

static void
test_export_files (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *out_dir = g_build_filename (dir, "out", NULL);
  g_autofree char *file = g_build_filename (out_dir, "runs.csv", NULL);
  g_autofree char *missing = g_build_filename (dir, "no", "such", "runs.csv", NULL);
  g_autoptr(QbStore) a = open_in (dir, "a.db");
  g_autoptr(GArray) ids = populate (a);
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_autoptr(GBytes) before = NULL, after = NULL;
  gint64 absent = 999;

  g_assert_cmpint (g_mkdir (out_dir, 0700), ==, 0);
  g_assert_false (qb_store_export_to_file (a, (gint64 *) ids->data, ids->len, QB_STORE_EXPORT_CSV,
                                           missing, NULL, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_FAILED);
  g_clear_error (&error);

  g_assert_true (qb_store_export_to_file (a, (gint64 *) ids->data, ids->len, QB_STORE_EXPORT_CSV,
                                          file, NULL, &error));
  g_assert_no_error (error);
  before = qb_test_file_bytes (file);
  /* A failed or cancelled export leaves the earlier file and no temporary. */
  g_assert_false (qb_store_export_to_file (a, &absent, 1, QB_STORE_EXPORT_CSV, file, NULL, &error));
  g_assert_error (error, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_cancellable_cancel (cancel);
  g_assert_false (qb_store_export_to_file (a, (gint64 *) ids->data, ids->len, QB_STORE_EXPORT_JSON,
                                           file, cancel, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  after = qb_test_file_bytes (file);
  g_assert_true (g_bytes_equal (before, after));
  g_assert_cmpuint (count_files (out_dir), ==, 1);
}

static void
test_summaries_json (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(QbStore) a = open_in (dir, "a.db");
  g_autoptr(GArray) ids = populate (a);
  g_autoptr(GPtrArray) list = qb_store_list_experiments (a, NULL, &error);
  g_autofree char *json = qb_experiments_to_json (list);
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonArray *array;
  JsonObject *o;

  g_assert_true (json_parser_load_from_data (parser, json, -1, &error));
  array = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (array), ==, 3);
  o = json_array_get_object_element (array, 2);          /* oldest last */
  g_assert_cmpint (json_object_get_int_member (o, "id"), ==, g_array_index (ids, gint64, 0));
  g_assert_cmpstr (json_object_get_string_member (o, "model_name"), ==, "stories");
  g_assert_cmpfloat (json_object_get_double_member (json_object_get_object_member (o, "evaluation"),
                                                    "perplexity"), ==, 10.3);
  g_assert_false (json_object_has_member (o, "tensors"));
}

/* Every finite double comes back exactly, in valid JSON; strings too. */
static void
test_json_numbers (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);
  g_autoptr(GString) text = g_string_new ("[");
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  double values[2000] = { 1e-8, 1e20, 5e-324, G_MAXDOUBLE, -2.5e-7, 0.1, 3.0, 1.0 / 3 };
  const char *tricky = "quote \" backslash \\ tab \t nul-ish \x01 é ✓";
  JsonArray *array;

  for (guint i = 8; i < G_N_ELEMENTS (values); i++)
    do
      {
        guint64 bits = ((guint64) g_rand_int (rand) << 32) | g_rand_int (rand);
        memcpy (&values[i], &bits, 8);
      }
    while (!isfinite (values[i]));
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      qb_json_append_double (text, values[i]);
      g_string_append_c (text, ',');
    }
  qb_json_append_string (text, tricky);
  g_string_append (text, ",");
  qb_json_append_double (text, NAN);
  g_string_append (text, "]");
  g_assert_nonnull (strstr (text->str, "[1e-08,1e+20,"));
  g_assert_true (json_parser_load_from_data (parser, text->str, -1, &error));
  g_assert_no_error (error);
  array = json_node_get_array (json_parser_get_root (parser));
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    g_assert_cmpfloat (json_array_get_double_element (array, i), ==, values[i]);
  g_assert_cmpstr (json_array_get_string_element (array, G_N_ELEMENTS (values)), ==, tricky);
  g_assert_true (json_array_get_null_element (array, G_N_ELEMENTS (values) + 1));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/export/round-trip", test_round_trip);
  g_test_add_func ("/store/export/import-merges", test_import_merges);
  g_test_add_func ("/store/export/import-streamed", test_import_streamed);
  g_test_add_func ("/store/export/import-running", test_import_running);
  g_test_add_func ("/store/export/import-bad", test_import_bad);
  g_test_add_func ("/store/export/csv", test_csv);
  g_test_add_func ("/store/export/files", test_export_files);
  g_test_add_func ("/store/export/summaries-json", test_summaries_json);
  g_test_add_func ("/store/export/json-numbers", test_json_numbers);
  return g_test_run ();
}
