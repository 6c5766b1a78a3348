/* SPDX-License-Identifier: MIT */
/* test-cli-eval.c — `quantbench eval`, run as a user would run it. */
#include <json-glib/json-glib.h>
#include <string.h>

#include "qb-model.h"
#include "qb-plan.h"
#include "qb-store.h"
#include "qb-test-util.h"

#define run qb_test_quantbench

static JsonObject *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* The float model and a Q4_0 plan of stories260K over 12 chunks: the
 * plan's perplexity is higher, its KLD against the float model positive,
 * and the float model's log-probabilities come from the cache the second
 * time. */
static void
test_eval (void)
{
  g_autofree char *model = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *text = NULL, *cache = NULL;
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
  g_autoptr(JsonObject) f = NULL, q = NULL;
  JsonObject *kld;

  if (model == NULL || (text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return;
  cache = qb_test_tmpdir ();
  g_assert_cmpint (run (&out, &err, "eval", model, "--text", text, "--ctx", "128", "--chunks", "12",
                        "--threads", "2", "--json", NULL), ==, 0);
  f = parse_json (out);
  g_assert_cmpint (json_object_get_int_member (f, "n_chunks"), ==, 12);
  g_assert_cmpint (json_object_get_int_member (f, "n_scored"), ==, 12 * 63);
  g_assert_false (json_object_has_member (f, "kld"));

  g_assert_cmpint (run (&out2, &err2, "eval", model, "--text", text, "--ctx", "128", "--chunks",
                        "12", "--default", "Q4_0", "--kld", "--cache-dir", cache, "--json", NULL), ==, 0);
  q = parse_json (out2);
  kld = json_object_get_object_member (q, "kld");
  g_test_message ("float PPL %.4f; Q4_0 PPL %.4f, KLD %.4f, same top %.3f",
                  json_object_get_double_member (f, "ppl"), json_object_get_double_member (q, "ppl"),
                  json_object_get_double_member (kld, "mean"), json_object_get_double_member (kld, "same_top"));
  g_assert_cmpfloat (json_object_get_double_member (q, "ppl"), >, json_object_get_double_member (f, "ppl"));
  /* The base's figure comes from the cached log-probabilities (1.2e-4 nats). */
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (kld, "base_ppl")
                                  / json_object_get_double_member (f, "ppl"), 1.0, 1e-5);
  g_assert_cmpfloat (json_object_get_double_member (kld, "mean"), >, 0.01);
  g_assert_false (json_object_get_boolean_member (kld, "base_from_cache"));
  g_clear_pointer (&out2, g_free);
  g_clear_pointer (&err2, g_free);
  g_clear_pointer (&q, json_object_unref);

  g_assert_cmpint (run (&out2, &err2, "eval", model, "--text", text, "--ctx", "128", "--chunks",
                        "12", "--default", "Q8_0", "--kld", "--cache-dir", cache, "--json", NULL), ==, 0);
  q = parse_json (out2);
  kld = json_object_get_object_member (q, "kld");
  g_assert_true (json_object_get_boolean_member (kld, "base_from_cache"));
  g_assert_cmpfloat (json_object_get_double_member (kld, "mean"), <, 0.01);
}

static void
test_errors (void)
{
  g_autofree char *model = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;

  if (model == NULL)
    return;
  /* No text: usage. */
  g_assert_cmpint (run (&out, &err, "eval", model, NULL), ==, 2);
  /* A text that does not exist: a message naming it. */
  g_assert_cmpint (run (&out2, &err2, "eval", model, "--text", "/nonexistent/t.txt", NULL), ==, 1);
  g_assert_nonnull (strstr (err2, "/nonexistent/t.txt"));
}

/* A stored experiment (a Q4_0 plan) is evaluated with its own plan and
 * the result lands with it; a plan option beside --experiment is refused,
 * and an experiment of another model is refused by name. */
static gint64
store_experiment (const char *db, const char *model_path, const char *format)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (model_path, &error);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbModelRecord) record = NULL;
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autofree char *plan_json = NULL;
  QbExperimentSpec spec = { 0 };
  gint64 id;

  g_assert_no_error (error);
  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  qb_plan_set_default_format (plan, format);
  plan_json = qb_plan_to_json (plan);
  record = qb_model_record_new_from_model (model);
  spec.name = format;
  spec.plan_json = plan_json;
  spec.n_tensors = qb_model_get_n_tensors (model);
  id = qb_store_begin_experiment (store, record, &spec, &error);
  g_assert_no_error (error);
  g_assert_true (qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 0.1, NULL, &error));
  return id;
}

static void
test_experiment (void)
{
  g_autofree char *model = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *text = NULL, *dir = NULL, *db = NULL, *id_text = NULL, *other = NULL;
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL, *out3 = NULL, *err3 = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(JsonObject) r = NULL;
  g_autoptr(GError) error = NULL;
  gint64 id;

  if (model == NULL || (text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return;
  dir = qb_test_tmpdir ();
  db = g_build_filename (dir, "experiments.db", NULL);
  id = store_experiment (db, model, "Q4_0");
  id_text = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  g_assert_cmpint (run (&out, &err, "eval", model, "--text", text, "--ctx", "128", "--chunks", "4",
                        "--kld", "--cache-dir", dir, "--db", db, "--experiment", id_text, "--json",
                        NULL), ==, 0);
  r = parse_json (out);

  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_no_error (error);
  g_assert_nonnull (e->evaluation);
  g_assert_cmpfloat (e->evaluation->perplexity, ==, json_object_get_double_member (r, "ppl"));
  g_assert_cmpuint (e->evaluation->n_chunks, ==, 4);
  g_assert_cmpfloat (e->evaluation->kld_mean, >, 0.01);   /* Q4_0, not the float model */
  g_assert_cmpstr (e->evaluation->text_name, ==, "tinystories-val.txt");
  g_assert_cmpuint (strlen (e->evaluation->text_hash), ==, 64);

  g_assert_cmpint (run (&out2, &err2, "eval", model, "--text", text, "--db", db, "--experiment",
                        id_text, "--default", "Q8_0", NULL), ==, 2);
  /* The experiment's model fingerprint is not the demo model's. */
  other = g_build_filename (dir, "other.gguf", NULL);
  qb_store_unref (g_steal_pointer (&store));
  {
    g_autofree char *o = NULL, *e2 = NULL;
    g_assert_cmpint (run (&o, &e2, "demo-model", "--out", other, NULL), ==, 0);
  }
  g_assert_cmpint (run (&out3, &err3, "eval", other, "--text", text, "--db", db, "--experiment",
                        id_text, NULL), ==, 1);
  g_assert_nonnull (strstr (err3, "was run on another model"));
}

/* What was evaluated is said: a Q4_K plan on stories260K (rows of 64
 * values) is a mix of fallbacks, and eval names them — with plan options
 * and with a stored experiment's plan, as text and in --json. */
static void
assert_fallbacks_json (const char *out)
{
  g_autoptr(JsonObject) r = parse_json (out);
  JsonArray *list;
  JsonObject *first;

  g_assert_true (json_object_has_member (r, "fallbacks"));
  list = json_object_get_array_member (r, "fallbacks");
  g_assert_cmpint (json_object_get_int_member (r, "n_fallbacks"), >, 0);
  g_assert_cmpint (json_object_get_int_member (r, "n_fallbacks"), ==, json_array_get_length (list));
  first = json_array_get_object_element (list, 0);
  g_assert_cmpstr (json_object_get_string_member (first, "requested"), ==, "Q4_K");
  g_assert_cmpstr (json_object_get_string_member (first, "format"), !=, "Q4_K");
  g_assert_nonnull (json_object_get_string_member (first, "reason"));
}

static void
test_fallbacks (void)
{
  g_autofree char *model = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *text = NULL, *dir = NULL, *db = NULL, *id_text = NULL;
  const char *common[] = { "--ctx", "128", "--chunks", "2", "--threads", "2" };

  if (model == NULL || (text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return;
  dir = qb_test_tmpdir ();
  db = g_build_filename (dir, "experiments.db", NULL);
  id_text = g_strdup_printf ("%" G_GINT64_FORMAT, store_experiment (db, model, "Q4_K"));
  for (int json = 0; json < 2; json++)
    for (int experiment = 0; experiment < 2; experiment++)
      {
        g_autofree char *out = NULL, *err = NULL;

        g_assert_cmpint (run (&out, &err, "eval", model, "--text", text, common[0], common[1],
                              common[2], common[3], common[4], common[5],
                              experiment ? "--db" : "--default", experiment ? db : "Q4_K",
                              experiment ? "--experiment" : "--no-cache",
                              experiment ? id_text : "--no-cache",
                              json ? "--json" : NULL, NULL), ==, 0);
        g_test_message ("json %d, experiment %d:\n%s", json, experiment, out);
        if (json)
          assert_fallbacks_json (out);
        else
          {
            g_assert_nonnull (strstr (out, "fallback: "));
            g_assert_null (strstr (out, " 0 fallbacks"));
          }
      }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/eval", test_eval);
  g_test_add_func ("/cli/eval-errors", test_errors);
  g_test_add_func ("/cli/eval-experiment", test_experiment);
  g_test_add_func ("/cli/eval-fallbacks", test_fallbacks);
  return g_test_run ();
}
