/* SPDX-License-Identifier: MIT */
/* test-cli-calib.c — `quantbench imatrix` and `quantbench quantize --calib`
 * as a user runs them, on stories260K and TinyStories (../shared). */
#include <json-glib/json-glib.h>
#include <string.h>

#include "qb-imatrix.h"
#include "qb-store.h"
#include "qb-test-util.h"

/* Runs quantbench with args; returns its exit status, output in *out. */
static int
run (const char * const *args, char **out, char **err)
{
  return qb_test_quantbench_argv (args, NULL, out, err);
}

typedef struct {
  char *model;
  char *text;
  char *dir;
  char *cache;
} Setup;

static gboolean
setup (Setup *s)
{
  g_autofree char *exe = NULL;

  s->model = qb_test_shared_path ("models/stories260K.gguf");
  s->text = s->model ? qb_test_shared_path ("text/tinystories-val.txt") : NULL;
  if (s->text == NULL || (exe = qb_test_quantbench_path ()) == NULL)
    return FALSE;
  s->dir = qb_test_tmpdir ();
  s->cache = g_build_filename (s->dir, "cache", NULL);
  return TRUE;
}

static void
setup_clear (Setup *s)
{
  g_free (s->model);
  g_free (s->text);
  g_free (s->dir);
  g_free (s->cache);
}

static void
test_imatrix (void)
{
  Setup s = { 0 };
  g_autofree char *dat = NULL, *gguf = NULL, *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbImatrix) a = NULL, b = NULL;

  if (!setup (&s))
    return;
  dat = g_build_filename (s.dir, "im.dat", NULL);
  gguf = g_build_filename (s.dir, "im.gguf", NULL);
  {
    const char *args[] = { "imatrix", s.model, "--calib", s.text, "--calib-chunks", "8",
                           "--calib-skip", "100", "--calib-cache-dir", s.cache, "--out", dat, NULL };
    g_assert_cmpint (run (args, &out, &err), ==, 0);
    g_assert_nonnull (strstr (out, "35 entries, 8 chunks of 128 tokens"));
  }
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  {
    const char *args[] = { "imatrix", s.model, "--calib", s.text, "--calib-chunks", "8",
                           "--calib-skip", "100", "--calib-cache-dir", s.cache, "--out", gguf, NULL };
    g_assert_cmpint (run (args, &out, &err), ==, 0);
    /* The second run reads the cached statistics. */
    g_assert_nonnull (strstr (err, "0 forward passes"));
  }
  a = qb_imatrix_load (dat, &error);
  g_assert_no_error (error);
  b = qb_imatrix_load (gguf, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_imatrix_get_n_entries (a), ==, 35);
  g_assert_cmpuint (qb_imatrix_get_n_entries (b), ==, 35);
  g_assert_null (qb_imatrix_get (a, "output.weight", NULL));
  g_assert_cmpuint (qb_imatrix_get_samples (b, "blk.3.ffn_down.weight"), ==, 8 * 128);
  for (guint i = 0; i < 35; i++)
    {
      const char *name = qb_imatrix_get_name (a, i);
      guint n = 0;
      const float *x = qb_imatrix_get (a, name, &n), *y = qb_imatrix_get (b, name, NULL);
      g_assert_nonnull (y);
      for (guint j = 0; j < n; j++)
        g_assert_cmpfloat_with_epsilon (x[j], y[j], 1e-6 * (1 + y[j]));
    }
  setup_clear (&s);
}

/* llama-imatrix's figures for stories260K over the first 8 chunks of 128
 * tokens of tinystories-val.txt: per entry, the sum and the largest of
 * its values (each value divided by its call count).  Produced with the
 * llama.cpp build of commit c392e50: `llama-imatrix -m stories260K.gguf
 * -f tinystories-val.txt -c 128 --chunks 8 -t 2 -ctk f32 -ctv f32`.  The
 * KV cache in F32 matters: llama-imatrix's default F16 cache rounds K
 * and V and moves the attention outputs' entries by up to ~1e-3. */
static const struct { const char *name; double sum, max; } llama_imatrix_ref[] = {
    { "blk.0.attn_k.weight", 82.3346332, 4.23247099 },
    { "blk.0.attn_output.weight", 5.56348994, 0.337839007 },
    { "blk.0.attn_q.weight", 82.3346332, 4.23247099 },
    { "blk.0.attn_v.weight", 82.3346332, 4.23247099 },
    { "blk.0.ffn_down.weight", 6.97153683, 0.316665262 },
    { "blk.0.ffn_gate.weight", 19.6015381, 0.785006225 },
    { "blk.0.ffn_up.weight", 19.6015381, 0.785006225 },
    { "blk.1.attn_k.weight", 112.306444, 13.7881804 },
    { "blk.1.attn_output.weight", 6.14905021, 0.193871781 },
    { "blk.1.attn_q.weight", 112.306444, 13.7881804 },
    { "blk.1.attn_v.weight", 112.306444, 13.7881804 },
    { "blk.1.ffn_down.weight", 9.85344406, 0.154932782 },
    { "blk.1.ffn_gate.weight", 32.3290848, 1.29469991 },
    { "blk.1.ffn_up.weight", 32.3290848, 1.29469991 },
    { "blk.2.attn_k.weight", 101.894104, 9.30858803 },
    { "blk.2.attn_output.weight", 5.64575595, 0.348377943 },
    { "blk.2.attn_q.weight", 101.894104, 9.30858803 },
    { "blk.2.attn_v.weight", 101.894104, 9.30858803 },
    { "blk.2.ffn_down.weight", 15.3090075, 2.07981873 },
    { "blk.2.ffn_gate.weight", 37.5119603, 1.37258208 },
    { "blk.2.ffn_up.weight", 37.5119603, 1.37258208 },
    { "blk.3.attn_k.weight", 104.367155, 8.41653824 },
    { "blk.3.attn_output.weight", 8.77059156, 0.285601646 },
    { "blk.3.attn_q.weight", 104.367155, 8.41653824 },
    { "blk.3.attn_v.weight", 104.367155, 8.41653824 },
    { "blk.3.ffn_down.weight", 27.7090784, 0.859841228 },
    { "blk.3.ffn_gate.weight", 46.9640801, 1.7734381 },
    { "blk.3.ffn_up.weight", 46.9640801, 1.7734381 },
    { "blk.4.attn_k.weight", 93.1155748, 7.36184883 },
    { "blk.4.attn_output.weight", 8.43128289, 0.232819542 },
    { "blk.4.attn_q.weight", 93.1155748, 7.36184883 },
    { "blk.4.attn_v.weight", 93.1155748, 7.36184883 },
    { "blk.4.ffn_down.weight", 55.8536505, 1.02257395 },
    { "blk.4.ffn_gate.weight", 59.2075004, 2.29291344 },
    { "blk.4.ffn_up.weight", 59.2075004, 2.29291344 },
};

/* Quantbench's importance matrix is llama-imatrix's, to float rounding. */
static void
test_imatrix_matches_llama (void)
{
  Setup s = { 0 };
  g_autofree char *dat = NULL, *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbImatrix) im = NULL;

  if (!setup (&s))
    return;
  dat = g_build_filename (s.dir, "ref.dat", NULL);
  {
    const char *args[] = { "imatrix", s.model, "--calib", s.text, "--calib-chunks", "8",
                           "--calib-ctx", "128", "--calib-no-cache", "--out", dat, NULL };
    g_assert_cmpint (run (args, &out, &err), ==, 0);
  }
  im = qb_imatrix_load (dat, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_imatrix_get_n_entries (im), ==, G_N_ELEMENTS (llama_imatrix_ref));
  for (guint i = 0; i < G_N_ELEMENTS (llama_imatrix_ref); i++)
    {
      guint n = 0;
      const float *x = qb_imatrix_get (im, llama_imatrix_ref[i].name, &n);
      double sum = 0, max = 0;

      g_assert_nonnull (x);
      for (guint j = 0; j < n; j++)
        {
          sum += x[j];
          max = MAX (max, x[j]);
        }
      g_test_message ("%s: sum %.9g (llama-imatrix %.9g), max %.9g (%.9g)", llama_imatrix_ref[i].name,
                      sum, llama_imatrix_ref[i].sum, max, llama_imatrix_ref[i].max);
      g_assert_cmpfloat_with_epsilon (sum, llama_imatrix_ref[i].sum, 2e-5 * llama_imatrix_ref[i].sum);
      g_assert_cmpfloat_with_epsilon (max, llama_imatrix_ref[i].max, 2e-5 * llama_imatrix_ref[i].max);
    }
  setup_clear (&s);
}

static JsonObject *
tensor_named (JsonArray *tensors, const char *name)
{
  for (guint i = 0; i < json_array_get_length (tensors); i++)
    {
      JsonObject *t = json_array_get_object_element (tensors, i);
      if (strcmp (json_object_get_string_member (t, "name"), name) == 0)
        return t;
    }
  g_assert_not_reached ();
}

static void
test_quantize_gptq (void)
{
  Setup s = { 0 };
  g_autofree char *gguf = NULL, *out = NULL, *err = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonArray *tensors;
  JsonObject *t;

  if (!setup (&s))
    return;
  gguf = g_build_filename (s.dir, "gptq.gguf", NULL);
  {
    const char *args[] = { "quantize", s.model, "--calib", s.text, "--calib-chunks", "8",
                           "--calib-skip", "100", "--calib-cache-dir", s.cache,
                           "--default", "Q8_0", "--rule", "*.ffn_up.*=Q4_0:gptq",
                           "--gptq-damp", "0.02", "--gptq-act-order", "--json", "--out", gguf, NULL };
    g_assert_cmpint (run (args, &out, &err), ==, 0);
  }
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  tensors = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "tensors");
  {
    JsonObject *plan = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "plan");
    JsonObject *opts = json_object_get_object_member (plan, "options");
    g_assert_cmpstr (json_object_get_string_member (opts, "gptq.damp"), ==, "0.02");
    g_assert_cmpstr (json_object_get_string_member (opts, "gptq.act_order"), ==, "true");
  }
  t = tensor_named (tensors, "blk.2.ffn_up.weight");
  g_assert_cmpstr (json_object_get_string_member (t, "method"), ==, "gptq");
  g_assert_cmpstr (json_object_get_string_member (t, "format"), ==, "Q4_0");
  /* XᵀX was computed for it: the exact output error. */
  g_assert_false (json_object_get_boolean_member (t, "out_rel_err_diag"));
  g_assert_cmpfloat (json_object_get_double_member (t, "out_rel_err"), >, 0);
  g_assert_cmpfloat (json_object_get_double_member (t, "out_rel_err"), <, 0.05);
  /* The others: rounding with the calibration's importance, estimated error. */
  t = tensor_named (tensors, "blk.2.attn_q.weight");
  g_assert_cmpstr (json_object_get_string_member (t, "method"), ==, "rtn");
  g_assert_true (json_object_get_boolean_member (t, "out_rel_err_diag"));
  g_assert_true (g_file_test (gguf, G_FILE_TEST_IS_REGULAR));
  setup_clear (&s);
}

/* The calibration set of the newest experiment in db, checked against
 * what the command line asked for. */
static QbCalibrationSet *
calibration_of_latest (const char *db, const Setup *s)
{
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  QbCalibrationSet *c;
  const QbExperiment *e;
  QbExperimentQuery query;

  qb_experiment_query_init (&query);
  query.sort = QB_SORT_ID;
  query.descending = TRUE;
  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  list = qb_store_list_experiments (store, &query, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, >, 0);
  e = g_ptr_array_index (list, 0);
  g_assert_cmpint (e->calibration_set_id, >, 0);
  c = qb_store_get_calibration_set (store, e->calibration_set_id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->name, ==, "tinystories-val.txt");
  g_assert_cmpstr (c->sources[0], ==, s->text);
  g_assert_null (c->sources[1]);
  g_assert_cmpuint (c->chunk_len, ==, 128);
  g_assert_cmpuint (c->n_chunks, ==, 4);
  g_assert_true (c->seeded);
  g_assert_cmpuint (c->seed, ==, 7);
  g_assert_cmpuint (strlen (c->hash), ==, 64);
  g_assert_cmpuint (c->n_tokens, >, 100 * 128);
  return c;
}

/* A run with --calib stores its calibration set and refers to it; a second
 * run with another plan finds the same set (and its cached statistics). */
static void
test_quantize_stores_set (void)
{
  Setup s = { 0 };
  g_autofree char *db = NULL;
  g_autoptr(QbCalibrationSet) first = NULL, second = NULL;

  if (!setup (&s))
    return;
  db = g_build_filename (s.dir, "experiments.db", NULL);
  for (guint run_i = 0; run_i < 2; run_i++)
    {
      g_autofree char *out = NULL, *err = NULL;
      const char *args[] = { "quantize", s.model, "--calib", s.text, "--calib-chunks", "4",
                             "--calib-random", "7", "--calib-cache-dir", s.cache,
                             "--default", run_i == 0 ? "Q8_0" : "Q4_0",
                             "--rule", "*.ffn_up.*=Q4_0:gptq", "--db", db, NULL };
      g_assert_cmpint (run (args, &out, &err), ==, 0);
      g_assert_nonnull (strstr (out, "saved as experiment"));
      if (run_i == 1)
        g_assert_nonnull (strstr (err, "0 forward passes"));
      if (run_i == 0)
        first = calibration_of_latest (db, &s);
      else
        second = calibration_of_latest (db, &s);
    }
  g_assert_cmpint (first->id, ==, second->id);
  g_assert_cmpstr (first->hash, ==, second->hash);
  setup_clear (&s);
}

static gint64
saved_experiment_id (const char *out)
{
  const char *at = strstr (out, "saved as experiment ");

  g_assert_nonnull (at);
  return g_ascii_strtoll (at + strlen ("saved as experiment "), NULL, 10);
}

/* `eval --experiment` of a GPTQ run calibrates again on the experiment's
 * stored set (from the cache), also one made with --calib-skip. */
static void
test_eval_experiment (void)
{
  Setup s = { 0 };
  g_autofree char *db = NULL;

  if (!setup (&s))
    return;
  db = g_build_filename (s.dir, "experiments.db", NULL);
  for (guint skip = 0; skip < 2; skip++)
    {
      g_autofree char *out = NULL, *err = NULL, *eout = NULL, *eerr = NULL, *id = NULL;
      const char *args[] = { "quantize", s.model, "--calib", s.text, "--calib-chunks", "4",
                             "--calib-skip", skip ? "3" : "0", "--calib-cache-dir", s.cache,
                             "--default", "Q8_0", "--rule", "*.ffn_up.*=Q4_0:gptq", "--db", db,
                             NULL };
      g_assert_cmpint (run (args, &out, &err), ==, 0);
      id = g_strdup_printf ("%" G_GINT64_FORMAT, saved_experiment_id (out));
      {
        const char *eargs[] = { "eval", s.model, "--experiment", id, "--db", db, "--text", s.text,
                                "--chunks", "2", "--calib-cache-dir", s.cache, "--no-cache", NULL };
        g_assert_cmpint (run (eargs, &eout, &eerr), ==, 0);
        g_assert_nonnull (strstr (eerr, "0 forward passes"));
        g_assert_nonnull (strstr (eout, "stored with experiment"));
      }
    }
  setup_clear (&s);
}

static void
test_errors (void)
{
  Setup s = { 0 };

  if (!setup (&s))
    return;
  {
    g_autofree char *out = NULL, *err = NULL;
    const char *args[] = { "quantize", s.model, "--calib", s.text, "--calib-chunks", "2",
                           "--calib-cache-dir", s.cache, "--method", "gptq", "--option",
                           "gptq.damp=2", NULL };
    g_assert_cmpint (run (args, &out, &err), ==, 1);
    g_assert_nonnull (strstr (err, "gptq.damp"));
  }
  {
    g_autofree char *out = NULL, *err = NULL;
    const char *args[] = { "quantize", s.model, "--default", "Q8_0", "--method", "gptq", NULL };
    g_assert_cmpint (run (args, &out, &err), ==, 1);
    g_assert_nonnull (strstr (err, "calibration"));
  }
  {
    g_autofree char *out = NULL, *err = NULL;
    const char *args[] = { "imatrix", s.model, "--calib", s.text, NULL };
    g_assert_cmpint (run (args, &out, &err), ==, 2);
  }
  {
    g_autofree char *out = NULL, *err = NULL;
    const char *args[] = { "quantize", s.model, "--rule", "*.ffn_up.*=Q4_0:nosuch", NULL };
    g_assert_cmpint (run (args, &out, &err), ==, 1);
    g_assert_nonnull (strstr (err, "unknown method"));
  }
  setup_clear (&s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli-calib/imatrix", test_imatrix);
  g_test_add_func ("/cli-calib/imatrix-matches-llama", test_imatrix_matches_llama);
  g_test_add_func ("/cli-calib/quantize-gptq", test_quantize_gptq);
  g_test_add_func ("/cli-calib/quantize-stores-set", test_quantize_stores_set);
  g_test_add_func ("/cli-calib/eval-experiment", test_eval_experiment);
  g_test_add_func ("/cli-calib/errors", test_errors);
  return g_test_run ();
}
