/* SPDX-License-Identifier: MIT */
/* qb-test-util.c — helpers shared by the test programs. */
#include "qb-test-util.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/wait.h>

char *
qb_test_shared_path (const char *relative)
{
  const char *dir = g_getenv ("QB_SHARED_DIR");
  g_autofree char *path = NULL;

  if (dir == NULL)
    dir = QB_DEFAULT_SHARED_DIR;
  path = g_build_filename (dir, relative, NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_autofree char *msg = g_strdup_printf ("reference data %s is absent (set QB_SHARED_DIR "
                                              "to the shared/ folder)", path);
      g_test_skip (msg);
      return NULL;
    }
  return g_steal_pointer (&path);
}

GBytes *
qb_test_read_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  char *contents = NULL;
  gsize len = 0;

  g_file_get_contents (path, &contents, &len, &error);
  g_assert_no_error (error);
  return g_bytes_new_take (contents, len);
}

GBytes *
qb_test_golden (const char *name)
{
  g_autofree char *rel = g_strdup_printf ("golden/ggml-quants/%s", name);
  g_autofree char *path = qb_test_shared_path (rel);

  return path ? qb_test_read_file (path) : NULL;
}

static GPtrArray *tmpdirs;

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
            remove_tree (child);
          else
            g_unlink (child);
        }
      g_dir_close (dir);
    }
  g_rmdir (path);
}

static void
remove_tmpdirs (void)
{
  for (guint i = 0; tmpdirs && i < tmpdirs->len; i++)
    remove_tree (g_ptr_array_index (tmpdirs, i));
}

char *
qb_test_tmpdir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("quantbench-test-XXXXXX", &error);

  g_assert_no_error (error);
  if (tmpdirs == NULL)
    {
      tmpdirs = g_ptr_array_new_with_free_func (g_free);
      atexit (remove_tmpdirs);
    }
  g_ptr_array_add (tmpdirs, g_strdup (dir));
  return dir;
}

char *
qb_test_quantbench_path (void)
{
  const char *build = g_getenv ("QB_BUILD_DIR");
  g_autofree char *path = NULL;

  if (build == NULL)
    {
      g_test_skip ("QB_BUILD_DIR is not set (run through meson test)");
      return NULL;
    }
  path = g_build_filename (build, "app", "quantbench", NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("the quantbench executable is not built");
      return NULL;
    }
  return g_steal_pointer (&path);
}

int
qb_test_quantbench_argv (const char * const *args, char **envp, char **out, char **err)
{
  g_autofree char *exe = qb_test_quantbench_path ();
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *stdout_text = NULL, *stderr_text = NULL;
  int status = -1;

  if (exe == NULL)
    return -1;
  g_ptr_array_add (argv, exe);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &stdout_text,
                &stderr_text, &status, &error);
  g_assert_no_error (error);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_test_message ("quantbench %s: exit status %d, stderr: %s", args[0] ? args[0] : "", status,
                    stderr_text);
  if (out != NULL)
    *out = g_steal_pointer (&stdout_text);
  if (err != NULL)
    *err = g_steal_pointer (&stderr_text);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

int
qb_test_quantbench (char **out, char **err, ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  const char *arg;
  va_list ap;

  va_start (ap, err);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return qb_test_quantbench_argv ((const char * const *) args->pdata, NULL, out, err);
}

static GString *kept_log;

static GLogWriterOutput
keep_log (GLogLevelFlags   level,
          const GLogField *fields,
          gsize            n_fields,
          gpointer         data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE") && fields[i].length < 0)
      g_string_append_printf (kept_log, "%s\n", (const char *) fields[i].value);
  return g_log_writer_default (level, fields, n_fields, data);
}

void
qb_test_log_keep (void)
{
  kept_log = g_string_new (NULL);
  g_log_set_writer_func (keep_log, NULL, NULL);
}

void
qb_test_log_clear (void)
{
  g_string_truncate (kept_log, 0);
}

const char *
qb_test_log_text (void)
{
  return kept_log->str;
}
