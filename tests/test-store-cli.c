/* SPDX-License-Identifier: MIT */
/* test-store-cli.c — `quantbench experiments` on a database the test fills. */
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/wait.h>

#include "qb-store.h"
#include "qb-test-store.h"
#include "qb-test-util.h"

/* Runs `quantbench experiments --db DB ARGS...`; returns the exit status. */
static int
run (const char *db, char **out, char **err, ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  const char *arg;
  va_list ap;

  g_ptr_array_add (args, "experiments");
  g_ptr_array_add (args, "--db");
  g_ptr_array_add (args, (char *) db);
  va_start (ap, err);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (args, (char *) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return qb_test_quantbench_argv ((const char * const *) args->pdata, NULL, out, err);
}

static gboolean
have_binary (void)
{
  g_autofree char *exe = qb_test_quantbench_path ();
  return exe != NULL;
}

static char *
fill (gint64 *ids)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  char *path = g_build_filename (dir, "cli.db", NULL);
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autoptr(QbModelRecord) model = qb_test_model_record ("c11c11c11c11", "stories260K");
  g_autoptr(QbEvaluation) ev = qb_evaluation_new ();

  g_assert_no_error (error);
  ids[0] = qb_test_store_run (store, model, "all Q4_K", "Q4_K", 4, QB_EXPERIMENT_DONE);
  ids[1] = qb_test_store_run (store, model, "all Q8_0", "Q8_0", 4, QB_EXPERIMENT_DONE);
  ids[2] = qb_test_store_run (store, model, "all Q2_K", "Q2_K", 4, QB_EXPERIMENT_FAILED);
  ev->text_hash = g_strdup ("t");
  ev->text_name = g_strdup ("val.txt");
  ev->perplexity = 9.25;
  qb_store_set_evaluation (store, ids[0], ev, NULL, &error);
  g_assert_no_error (error);
  return path;
}

static void
test_list_show (void)
{
  g_autofree char *db = NULL, *out = NULL, *err = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *id0 = NULL;
  gint64 ids[3];

  if (!have_binary ())
    return;
  db = fill (ids);
  id0 = g_strdup_printf ("%" G_GINT64_FORMAT, ids[0]);
  g_assert_cmpint (run (db, &out, &err, "list", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "all Q4_K"));
  g_assert_nonnull (strstr (out, "all Q8_0"));
  g_assert_nonnull (strstr (out, "failed"));
  g_assert_nonnull (strstr (out, "9.2500"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run (db, &out, &err, "list", "--status", "done", "--sort", "bpw", "--asc",
                        "--json", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  {
    JsonArray *a = json_node_get_array (json_parser_get_root (parser));
    g_assert_cmpuint (json_array_get_length (a), ==, 2);
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (a, 0), "name"),
                     ==, "all Q4_K");
  }
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run (db, &out, &err, "list", "--model", "stories260K", "--search", "q8", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "all Q8_0"));
  g_assert_null (strstr (out, "all Q4_K"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run (db, &out, &err, "show", id0, "--tensors", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "all Q4_K"));
  g_assert_nonnull (strstr (out, "blk.3.attn_q.weight"));
  g_assert_nonnull (strstr (out, "val.txt"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run (db, &out, &err, "show", "999", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "no experiment with id 999"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (db, &out, &err, "show", "abc", NULL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (db, &out, &err, "frobnicate", NULL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (db, &out, &err, "list", "--sort", "nonsense", NULL), ==, 2);
}

static void
test_compare_pareto (void)
{
  g_autofree char *db = NULL, *out = NULL;
  g_autofree char *a = NULL, *b = NULL;
  gint64 ids[3];

  if (!have_binary ())
    return;
  db = fill (ids);
  a = g_strdup_printf ("%" G_GINT64_FORMAT, ids[0]);
  b = g_strdup_printf ("%" G_GINT64_FORMAT, ids[1]);
  g_assert_cmpint (run (db, &out, NULL, "compare", a, b, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "blk.0.attn_q.weight"));
  g_assert_nonnull (strstr (out, "Q4_K"));
  g_assert_nonnull (strstr (out, "Q8_0"));
  g_assert_nonnull (strstr (out, "TOTAL"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run (db, &out, NULL, "pareto", "--all", "--x", "bpw", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "all Q4_K"));
  g_assert_nonnull (strstr (out, "all Q8_0"));
  g_assert_null (strstr (out, "all Q2_K"));      /* failed runs have no place on it */
}

static void
test_edit_export_import (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *db = NULL, *out = NULL, *err = NULL, *json = NULL, *csv = NULL, *other = NULL;
  g_autofree char *a = NULL, *c = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) e = NULL;
  guint count = 0;
  gint64 ids[3];

  if (!have_binary ())
    return;
  db = fill (ids);
  a = g_strdup_printf ("%" G_GINT64_FORMAT, ids[0]);
  c = g_strdup_printf ("%" G_GINT64_FORMAT, ids[2]);
  g_assert_cmpint (run (db, NULL, NULL, "rename", a, "the keeper", NULL), ==, 0);
  g_assert_cmpint (run (db, NULL, NULL, "tag", a, "best", "small", NULL), ==, 0);
  g_assert_cmpint (run (db, NULL, NULL, "untag", a, "small", NULL), ==, 0);
  g_assert_cmpint (run (db, NULL, NULL, "note", a, "ship", "this", "one", NULL), ==, 0);
  g_assert_cmpint (run (db, NULL, NULL, "delete", c, NULL), ==, 0);
  store = qb_store_open (db, &error);
  e = qb_store_get_experiment (store, ids[0], &error);
  g_assert_no_error (error);
  g_assert_cmpstr (e->name, ==, "the keeper");
  g_assert_cmpstrv (e->tags, ((const char *[]) { "best", NULL }));
  g_assert_cmpstr (e->notes, ==, "ship this one");
  g_assert_true (qb_store_count_experiments (store, NULL, &count, &error));
  g_assert_cmpuint (count, ==, 2);
  g_clear_pointer (&store, qb_store_unref);

  json = g_strconcat (db, ".json", NULL);
  csv = g_strconcat (db, ".csv", NULL);
  other = g_strconcat (db, "-other.db", NULL);
  g_assert_cmpint (run (db, NULL, NULL, "export", "--all", "--format", "json", "--out", json, NULL), ==, 0);
  g_assert_cmpint (run (db, NULL, NULL, "export", a, "--format", "csv", "--tensors", "--out", csv, NULL), ==, 0);
  {
    g_autofree char *text = NULL;
    g_assert_true (g_file_get_contents (csv, &text, NULL, NULL));
    g_assert_true (g_str_has_prefix (text, "experiment_id,experiment,position,tensor"));
    g_assert_nonnull (strstr (text, "the keeper"));
  }
  g_assert_cmpint (run (other, &out, &err, "import", json, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "imported 2 experiments"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (other, &out, &err, "import", json, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "imported 0 experiments; 2 already present"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (other, &out, &err, "import", csv, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "not valid JSON"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* A file that is not a database: refused, as the store refuses it. */
  g_assert_cmpint (run (csv, &out, &err, "list", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "not a SQLite database"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/cli/list-show", test_list_show);
  g_test_add_func ("/store/cli/compare-pareto", test_compare_pareto);
  g_test_add_func ("/store/cli/edit-export-import", test_edit_export_import);
  return g_test_run ();
}
