/* SPDX-License-Identifier: MIT */
/* qb-ui.c — set-up shared by every widget of the UI library. */
#include "qb-ui.h"

#include "qb-resources.h"

#include <errno.h>
#include <string.h>

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

void
qb_ui_ensure_resources (void)
{
  static gsize done;

  if (g_once_init_enter (&done))
    {
      qb_register_resource ();
      g_once_init_leave (&done, 1);
    }
}

void
qb_ui_dispose_template (GtkWidget *widget,
                        GType      type)
{
  GtkWidget *child;

  gtk_widget_dispose_template (widget, type);
  while ((child = gtk_widget_get_first_child (widget)) != NULL)
    gtk_widget_unparent (child);
}

typedef struct {
  GThreadFunc func;
  gpointer    data;
} LowCall;

static gpointer
low_priority_thread (gpointer data)
{
  LowCall *call = data;

#ifdef __linux__
  setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), 10);
#endif
  return call->func (call->data);
}

void
qb_ui_call_at_low_priority (GThreadFunc func,
                            gpointer    data)
{
  /* A fresh thread: a pooled one would keep the lower priority for
   * whatever it runs next. */
  LowCall call = { func, data };

  g_thread_join (g_thread_new ("qb-low", low_priority_thread, &call));
}

/* -- settings ------------------------------------------------------------- */

#define QB_SCHEMA_ID "org.quantbench.Quantbench"

/* The resources' compiled schema, written where a schema source can read
 * it: a directory named after its checksum, so versions never mix. */
static GSettingsSchemaSource *
bundled_schema_source (GError **error)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *sum = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *file = NULL;
  g_autofree char *name = NULL;

  qb_ui_ensure_resources ();
  bytes = g_resources_lookup_data ("/org/quantbench/Quantbench/gschemas.compiled", 0, error);
  if (bytes == NULL)
    return NULL;
  sum = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);
  name = g_strdup_printf ("quantbench-schema-%.16s", sum);
  dir = g_build_filename (g_get_user_runtime_dir (), name, NULL);
  file = g_build_filename (dir, "gschemas.compiled", NULL);
  if (!g_file_test (file, G_FILE_TEST_IS_REGULAR))
    {
      if (g_mkdir_with_parents (dir, 0700) != 0)
        {
          int saved = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", dir, g_strerror (saved));
          return NULL;
        }
      if (!g_file_set_contents (file, g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes), error))
        return NULL;
    }
  return g_settings_schema_source_new_from_directory (dir, g_settings_schema_source_get_default (), TRUE, error);
}

static GSettingsSchema *
find_schema (void)
{
  GSettingsSchemaSource *system = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchemaSource) bundled = NULL;
  g_autoptr(GError) error = NULL;
  GSettingsSchema *schema = system ? g_settings_schema_source_lookup (system, QB_SCHEMA_ID, TRUE) : NULL;

  if (schema != NULL)
    return schema;
  bundled = bundled_schema_source (&error);
  if (bundled == NULL)
    g_error ("The settings schema %s is not installed and its built-in copy could not be used: %s",
             QB_SCHEMA_ID, error->message);
  return g_settings_schema_source_lookup (bundled, QB_SCHEMA_ID, FALSE);
}

GSettings *
qb_ui_settings_new (void)
{
  static GSettingsSchema *schema;
  static gsize done;

  if (g_once_init_enter (&done))
    {
      schema = find_schema ();
      g_once_init_leave (&done, 1);
    }
  return g_settings_new_full (schema, NULL, NULL);
}

/* -- messages ------------------------------------------------------------- */

/* What the core's message says is wrong, in words that lead. */
static const char *
classify_open_error (const char *detail)
{
  if (strstr (detail, "but the file ends") != NULL || strstr (detail, "truncated") != NULL)
    return "The file is truncated";
  if (strstr (detail, "magic") != NULL)
    return "Not a GGUF or safetensors file";
  if (strstr (detail, "no such file") != NULL)
    return "The file does not exist";
  return NULL;
}

char *
qb_ui_describe_open_error (const char   *path,
                           const GError *error)
{
  const char *detail = error->message;
  g_autofree char *at = NULL;
  const char *lead;

  /* The core says "PATH: byte N: where: what"; the path goes last, once. */
  if (path != NULL && g_str_has_prefix (detail, path) && g_str_has_prefix (detail + strlen (path), ": "))
    detail += strlen (path) + 2;
  if (g_str_has_prefix (detail, "byte "))
    {
      const char *end = strstr (detail, ": ");

      if (end != NULL)
        {
          at = g_strndup (detail, end - detail);
          detail = end + 2;
        }
    }
  lead = classify_open_error (detail);
  return g_strdup_printf ("%s%s%s%s%s%s — %s", lead ? lead : "", lead ? ": " : "",
                          detail, at ? " (at " : "", at ? at : "", at ? ")" : "",
                          path ? path : "the demo model");
}

char *
qb_ui_file_sha256 (const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;

  return g_file_get_contents (path, &text, &len, NULL)
         ? g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, len) : NULL;
}
