/* SPDX-License-Identifier: MIT */
/* test-cli-model.c — `quantbench inspect` and `quantbench demo-model`, run as
 * a user would run them.
 */
#include <json-glib/json-glib.h>
#include <string.h>

#include "qb-gguf.h"
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

static void
test_inspect_stories (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) root = NULL;
  JsonObject *arch, *t;
  JsonArray *tensors, *shape;

  if (path == NULL)
    return;

  g_assert_cmpint (run (&out, &err, "inspect", path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "48 tensors, 292800 parameters"));
  g_assert_nonnull (strstr (out, "blk.4.ffn_down.weight"));
  g_assert_nonnull (strstr (out, "layers 5  hidden 64  heads 8  kv-heads 4"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run (&out, &err, "inspect", "--json", path, NULL), ==, 0);
  root = parse_json (out);
  g_assert_cmpstr (json_object_get_string_member (root, "format"), ==, "gguf");
  arch = json_object_get_object_member (root, "architecture");
  g_assert_cmpstr (json_object_get_string_member (arch, "family"), ==, "llama");
  g_assert_cmpint (json_object_get_int_member (arch, "n_layer"), ==, 5);
  g_assert_cmpint (json_object_get_int_member (arch, "n_embd"), ==, 64);
  g_assert_cmpint (json_object_get_int_member (arch, "n_ff"), ==, 172);
  g_assert_cmpint (json_object_get_int_member (arch, "n_head"), ==, 8);
  g_assert_cmpint (json_object_get_int_member (arch, "n_head_kv"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (arch, "n_vocab"), ==, 512);
  g_assert_cmpint (json_object_get_int_member (arch, "n_ctx"), ==, 128);
  tensors = json_object_get_array_member (root, "tensors");
  g_assert_cmpuint (json_array_get_length (tensors), ==, 48);
  t = json_array_get_object_element (tensors, 9);
  g_assert_cmpstr (json_object_get_string_member (t, "name"), ==, "blk.0.ffn_down.weight");
  g_assert_cmpstr (json_object_get_string_member (t, "role"), ==, "ffn_down");
  g_assert_cmpint (json_object_get_int_member (t, "layer"), ==, 0);
  shape = json_object_get_array_member (t, "shape");
  g_assert_cmpint (json_array_get_int_element (shape, 0), ==, 172);
  g_assert_cmpint (json_array_get_int_element (shape, 1), ==, 64);
  g_assert_cmpstr (json_object_get_string_member (t, "dtype"), ==, "F32");
  g_assert_false (json_object_has_member (t, "stats"));
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (root, "totals"), "params"),
                   ==, 292800);
}

/* --stats: present for every tensor, the same for any thread count. */
static void
test_inspect_stats (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *one = NULL, *three = NULL, *err = NULL;
  g_autoptr(JsonObject) root = NULL;
  JsonArray *tensors;

  if (path == NULL)
    return;
  g_assert_cmpint (run (&one, &err, "inspect", "--json", "--stats", "--threads", "1", path, NULL), ==, 0);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&three, &err, "inspect", "--json", "--stats", "--threads", "3", path, NULL), ==, 0);
  g_assert_cmpstr (one, ==, three);

  root = parse_json (one);
  tensors = json_object_get_array_member (root, "tensors");
  for (guint i = 0; i < json_array_get_length (tensors); i++)
    {
      JsonObject *t = json_array_get_object_element (tensors, i);
      JsonObject *s = json_object_get_object_member (t, "stats");
      g_assert_nonnull (s);
      g_assert_cmpint (json_object_get_int_member (s, "count"), ==, json_object_get_int_member (t, "params"));
      g_assert_cmpfloat (json_object_get_double_member (s, "min"), <=, json_object_get_double_member (s, "mean"));
      g_assert_cmpfloat (json_object_get_double_member (s, "std"), >, 0);
      g_assert_true (json_object_has_member (s, "kurtosis"));
      g_assert_cmpfloat (json_object_get_double_member (s, "outlier_share"), <, 0.01);
    }
}

static void
test_errors (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *bad = g_build_filename (dir, "bad.gguf", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.gguf", NULL);
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (run (&out, &err, "inspect", NULL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&out, &err, "inspect", "--threads", "-1", missing, NULL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* A missing path that is not a command: main() reports it. */
  g_assert_cmpint (run (&out, &err, "inspect", missing, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "missing.gguf"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_true (g_file_set_contents (bad, "GGUF\x03\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\0\0\0\0\0\0\0\0", 24, NULL));
  g_assert_cmpint (run (&out, &err, "inspect", bad, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "bad.gguf: byte 8: header: tensor count"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run (&out, &err, "demo-model", "--dtype", "q4", "--out", bad, NULL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&out, &err, "demo-model", "--params", "lots", "--out", bad, NULL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&out, &err, "demo-model", NULL), ==, 2);
}

/* Tensors of types without a converter are listed, marked, and skipped. */
static void
test_unreadable (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "mixed.gguf", NULL);
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) root = NULL;
  guint8 zeros[256] = { 0 };
  JsonObject *t;

  qb_gguf_writer_add_tensor (w, "a", 2, (gint64[]) { 4, 4 }, QB_DTYPE_F32);
  qb_gguf_writer_add_tensor (w, "b", 2, (gint64[]) { 256, 1 }, QB_DTYPE_IQ2_XXS);
  g_assert_true (qb_gguf_writer_begin (w, path, &error));
  g_assert_true (qb_gguf_writer_write_tensor (w, 0, zeros, 64, &error));
  g_assert_true (qb_gguf_writer_write_tensor (w, 1, zeros, 66, &error));
  g_assert_true (qb_gguf_writer_finish (w, &error));

  g_assert_cmpint (run (&out, &err, "inspect", "--stats", path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "not readable: no converter for IQ2_XXS"));
  g_assert_nonnull (strstr (out, "--stats skipped 1 tensor"));
  /* No architecture: inspect says why it cannot be evaluated. */
  g_assert_nonnull (strstr (out, "evaluation    no (quantizing works): "));
  g_assert_nonnull (strstr (out, "architecture 'unknown' is not a decoder family"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run (&out, &err, "inspect", "--stats", "--json", path, NULL), ==, 0);
  root = parse_json (out);
  g_assert_false (json_object_get_boolean_member (root, "evaluable"));
  g_assert_nonnull (strstr (json_object_get_string_member (root, "not_evaluable_because"), "gemma2"));
  t = json_array_get_object_element (json_object_get_array_member (root, "tensors"), 1);
  g_assert_false (json_object_get_boolean_member (t, "readable"));
  g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (t, "stats")));
  t = json_array_get_object_element (json_object_get_array_member (root, "tensors"), 0);
  g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (json_object_get_object_member (t, "stats"), "kurtosis")));
}

static void
test_demo_model (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "demo.gguf", NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) root = NULL;

  g_assert_cmpint (run (&out, &err, "demo-model", "--seed", "5", "--dtype", "f32", "--out", path, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "4 layers, hidden 256"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&out, &err, "inspect", "--json", "--stats", path, NULL), ==, 0);
  root = parse_json (out);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (root, "tensors")), ==, 39);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (root, "architecture"),
                                                  "name"), ==, "Quantbench demo 3.4M");
}

/* --arch: each family, as inspect sees it. */
static void
test_demo_model_arch (void)
{
  static const char *const archs[][2] = { { "qwen3", "47" }, { "phi3", "27" }, { "gemma2", "288" } };
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *out = NULL, *err = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (archs); i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/%s.gguf", dir, archs[i][0]);
      g_autoptr(JsonObject) root = NULL;
      JsonObject *arch;

      g_assert_cmpint (run (&out, &err, "demo-model", "--arch", archs[i][0], "--out", path, NULL), ==, 0);
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
      g_assert_cmpint (run (&out, &err, "inspect", "--json", path, NULL), ==, 0);
      root = parse_json (out);
      arch = json_object_get_object_member (root, "architecture");
      g_assert_cmpstr (json_object_get_string_member (arch, "family"), ==, archs[i][0]);
      g_assert_true (json_object_get_boolean_member (root, "evaluable"));
      g_assert_cmpuint (json_array_get_length (json_object_get_array_member (root, "tensors")), ==,
                        g_ascii_strtoull (archs[i][1], NULL, 10));
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
    }
  g_assert_cmpint (run (&out, &err, "demo-model", "--arch", "gpt2", "--out", "x.gguf", NULL), ==, 2);
  g_assert_nonnull (strstr (err, "--arch"));   /* the usage, with the families */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/inspect-stories", test_inspect_stories);
  g_test_add_func ("/cli/demo-model-arch", test_demo_model_arch);
  g_test_add_func ("/cli/inspect-stats", test_inspect_stats);
  g_test_add_func ("/cli/errors", test_errors);
  g_test_add_func ("/cli/unreadable", test_unreadable);
  g_test_add_func ("/cli/demo-model", test_demo_model);
  return g_test_run ();
}
