/* SPDX-License-Identifier: MIT */
/* test-core-layers.c — core/ is a stack of folders: a file may include
 * headers from its own folder and from the folders listed before it in
 * core_layers, never from one after it; core never includes GTK, and no
 * source file sits in core/ itself.  See core/README.md. */
#include <string.h>

#include "qb-test-util.h"

/* The layers, lowest first.  A new folder is added here and to
 * core/README.md; a folder missing from this list fails the test. */
static const char *const core_layers[] = {
  "support", "device", "ggml", "model", "formats", "quantize", "allocate", "store", "eval", "calib",
  "workflow",
};

static int
layer_rank (const char *folder)
{
  for (guint i = 0; i < G_N_ELEMENTS (core_layers); i++)
    if (g_str_equal (core_layers[i], folder))
      return (int) i;
  return -1;
}

static gboolean
is_source_name (const char *name)
{
  return g_str_has_suffix (name, ".c") || g_str_has_suffix (name, ".h");
}

/* Header file name -> the folder it lives in, for every core header. */
static GHashTable *
index_headers (const char *core_dir, GPtrArray *problems)
{
  GHashTable *where = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GDir) top = g_dir_open (core_dir, 0, NULL);
  g_assert_nonnull (top);
  const char *folder;
  while ((folder = g_dir_read_name (top)) != NULL) {
    g_autofree char *path = g_build_filename (core_dir, folder, NULL);
    if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
      if (is_source_name (folder))
        g_ptr_array_add (problems, g_strdup_printf ("core/%s is outside every layer folder", folder));
      continue;
    }
    if (layer_rank (folder) < 0) {
      g_ptr_array_add (problems, g_strdup_printf ("core/%s/ is not in the layer list", folder));
      continue;
    }
    g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
    const char *name;
    while (dir && (name = g_dir_read_name (dir)) != NULL)
      if (g_str_has_suffix (name, ".h"))
        g_hash_table_insert (where, g_strdup (name), g_strdup (folder));
  }
  return where;
}

/* Checks one file's quoted includes; appends what breaks the rule. */
static void
check_file (const char *folder, const char *name, const char *text,
            GHashTable *where, GPtrArray *problems)
{
  int own = layer_rank (folder);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    const char *line = g_strchug (lines[i]);
    if (!g_str_has_prefix (line, "#include"))
      continue;
    if (strstr (line, "<gtk/") || strstr (line, "<gdk/")) {
      g_ptr_array_add (problems, g_strdup_printf ("core/%s/%s:%u includes GTK", folder, name, i + 1));
      continue;
    }
    const char *open = strchr (line, '"');
    const char *close = open ? strchr (open + 1, '"') : NULL;
    if (!close)
      continue;
    g_autofree char *header = g_strndup (open + 1, close - open - 1);
    const char *target = g_hash_table_lookup (where, header);
    if (target && layer_rank (target) > own)
      g_ptr_array_add (problems,
                       g_strdup_printf ("core/%s/%s:%u includes %s from core/%s/, a layer above",
                                        folder, name, i + 1, header, target));
  }
}

static GPtrArray *
check_core (const char *core_dir)
{
  GPtrArray *problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) where = index_headers (core_dir, problems);
  for (guint l = 0; l < G_N_ELEMENTS (core_layers); l++) {
    g_autofree char *path = g_build_filename (core_dir, core_layers[l], NULL);
    g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
    const char *name;
    while (dir && (name = g_dir_read_name (dir)) != NULL) {
      if (!is_source_name (name))
        continue;
      g_autofree char *file = g_build_filename (path, name, NULL);
      g_autofree char *text = NULL;
      g_assert_true (g_file_get_contents (file, &text, NULL, NULL));
      check_file (core_layers[l], name, text, where, problems);
    }
  }
  return problems;
}

static void
test_tree_follows_layers (void)
{
  const char *core_dir = g_getenv ("QB_CORE_DIR");
  g_assert_nonnull (core_dir);
  g_autoptr(GPtrArray) problems = check_core (core_dir);
  for (guint i = 0; i < problems->len; i++)
    g_test_message ("%s", (char *) problems->pdata[i]);
  g_assert_cmpuint (problems->len, ==, 0);
}

/* The checker itself catches a violation: a model/ file that includes a
 * quantize/ header, in a tree made for the purpose. */
static void
test_checker_catches_upward_include (void)
{
  g_autofree char *root = qb_test_tmpdir ();
  g_autofree char *model = g_build_filename (root, "model", NULL);
  g_autofree char *quantize = g_build_filename (root, "quantize", NULL);
  g_assert_cmpint (g_mkdir_with_parents (model, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (quantize, 0700), ==, 0);
  g_autofree char *h = g_build_filename (quantize, "qb-up.h", NULL);
  g_autofree char *c = g_build_filename (model, "qb-down.c", NULL);
  g_assert_true (g_file_set_contents (h, "#pragma once\n", -1, NULL));
  g_assert_true (g_file_set_contents (c, "#include \"qb-up.h\"\n", -1, NULL));

  g_autoptr(GPtrArray) problems = check_core (root);
  g_assert_cmpuint (problems->len, ==, 1);
  g_assert_nonnull (strstr (problems->pdata[0], "qb-up.h"));

  /* The same include the other way round is allowed. */
  g_assert_true (g_file_set_contents (c, "#pragma once\n", -1, NULL));
  g_assert_true (g_file_set_contents (h, "#include \"qb-down.c\"\n", -1, NULL));
  g_autoptr(GPtrArray) none = check_core (root);
  g_assert_cmpuint (none->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core-layers/tree", test_tree_follows_layers);
  g_test_add_func ("/core-layers/checker", test_checker_catches_upward_include);
  return g_test_run ();
}
