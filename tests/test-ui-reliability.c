/* SPDX-License-Identifier: MIT */
/* test-ui-reliability.c — the window when the input or the disk is hostile:
 * weights holding NaN or infinities (the layer table and the details say
 * so, never a perfect score), and an experiment database on a full disk
 * (the run is stored as failed and the user is told).  With
 * QB_SCREENSHOT_DIR set, each case leaves a PNG there to look at. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gtk/gtk.h>

#include "qb-demo-model.h"
#include "qb-metric-cell.h"
#include "qb-store.h"
#include "qb-test-model.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"
#include "qb-window.h"

typedef QbTestWindow Fixture;

#define POISONED "blk.0.attn_q.weight"

static void
screenshot (Fixture *f, const char *name)
{
  const char *dir = g_getenv ("QB_SCREENSHOT_DIR");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;

  if (dir == NULL)
    return;
  path = g_build_filename (dir, name, NULL);
  qb_test_ui_save_png (GTK_WIDGET (f->window), path, &error);
  g_assert_no_error (error);
  g_test_message ("screenshot: %s", path);
}

/* Every mapped metric cell under root that shows text; *n_cells counts
 * the mapped metric cells that show any text. */
static void
collect_cells (GtkWidget *root, const char *text, GPtrArray *out, guint *n_cells)
{
  if (QB_IS_METRIC_CELL (root) && gtk_widget_get_mapped (root))
    {
      const char *shown = qb_metric_cell_get_text (QB_METRIC_CELL (root));

      *n_cells += shown != NULL && *shown != '\0';
      if (g_strcmp0 (shown, text) == 0)
        g_ptr_array_add (out, root);
    }
  for (GtkWidget *child = gtk_widget_get_first_child (root); child; child = gtk_widget_get_next_sibling (child))
    collect_cells (child, text, out, n_cells);
}

static char *
write_demo_model (Fixture *f, const char *name)
{
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (f->dir, name, NULL);
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  spec.dtype = QB_DTYPE_F32;
  g_assert_true (qb_demo_model_write (&spec, path, NULL, NULL, &error));
  g_assert_no_error (error);
  return path;
}

static gboolean
run_over (gpointer data)
{
  QbRun *run = qb_window_get_run (data);
  return run != NULL && !qb_run_is_running (run);
}

static void
quantize (Fixture *f, const char *format)
{
  qb_test_window_activate (f, "set-default-format", g_variant_new_string (format));
  qb_test_window_activate (f, "quantize", NULL);
  qb_test_ui_wait_for (run_over, f->window, 120, "the run to end");
  qb_test_window_settle (f);
}

/* -- non-finite weights ------------------------------------------------------ */

/* One tensor holds two NaN and an infinity: its SQNR cell reads "NaN/inf"
 * (no other cell does), and its details name the count and call the
 * metrics undefined, never a number. */
static void
test_non_finite (Fixture *f, gconstpointer data)
{
  g_autofree char *model = write_demo_model (f, "nan.gguf");
  g_autoptr(GPtrArray) cells = g_ptr_array_new ();
  QbTensorDetails *details;
  QbTensorRow *row;
  const char *fact;
  guint n_cells = 0;

  qb_test_poison_tensor (model, POISONED, 5, NAN);
  qb_test_poison_tensor (model, POISONED, 77, NAN);
  qb_test_poison_tensor (model, POISONED, 300, INFINITY);
  qb_test_window_open (f, model);
  quantize (f, "Q4_0");
  g_assert_cmpint (qb_run_get_status (qb_window_get_run (f->window)), ==, QB_RUN_DONE);

  row = qb_test_window_row (f, POISONED);
  g_assert_cmpint (qb_tensor_row_get_n_nonfinite (row), ==, 3);
  g_assert_true (isnan (qb_tensor_row_get_sqnr (row)));
  g_assert_cmpint (qb_tensor_row_get_n_nonfinite (qb_test_window_row (f, "blk.0.attn_k.weight")), ==, 0);

  qb_test_window_activate (f, "select-tensor", g_variant_new_string (POISONED));
  qb_test_window_settle (f);
  collect_cells (GTK_WIDGET (qb_window_get_layer_table (f->window)), "NaN/inf", cells, &n_cells);
  g_test_message ("%u metric cells show a value, %u of them NaN/inf", n_cells, cells->len);
  g_assert_cmpuint (cells->len, ==, 1);
  g_assert_cmpuint (n_cells, >, 10);

  details = qb_window_get_details (f->window);
  g_assert_true (qb_tensor_details_get_row (details) == row);
  fact = qb_tensor_details_get_fact (details, "nonfinite");
  g_test_message ("details: Non-finite weights: %s; SQNR: %s", fact,
                  qb_tensor_details_get_fact (details, "sqnr"));
  g_assert_nonnull (strstr (fact, "3 NaN or ±inf"));
  g_assert_cmpstr (qb_tensor_details_get_fact (details, "sqnr"), ==, "undefined");
  g_assert_cmpstr (qb_tensor_details_get_fact (details, "rmse"), ==, "undefined");
  g_assert_cmpstr (qb_tensor_details_get_fact (details, "cosine"), ==, "undefined");
  g_assert_cmpstr (qb_tensor_details_get_fact (details, "maxerr"), ==, "undefined");
  screenshot (f, "reliability-non-finite.png");

  /* A clean tensor has neither. */
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.0.attn_k.weight"));
  qb_test_window_settle (f);
  g_assert_cmpstr (qb_tensor_details_get_fact (details, "nonfinite"), ==, "");
  g_assert_cmpstr (qb_tensor_details_get_fact (details, "sqnr"), !=, "undefined");
}

/* -- full disk ----------------------------------------------------------------- */

/* The database lives on a small tmpfs (root only); once the window has
 * opened it, the rest of the tmpfs is filled but for a little room: the
 * experiment begins, its results do not all fit. */
typedef struct {
  Fixture  window;
  char    *mnt;
  gboolean mounted;
} FullDisk;

static void
full_disk_setup (FullDisk *d, gconstpointer data)
{
  g_autofree char *db = NULL;

  d->window.dir = qb_test_tmpdir ();
  d->mnt = g_build_filename (d->window.dir, "full", NULL);
  g_assert_no_errno (g_mkdir (d->mnt, 0700));
  if (geteuid () == 0)
    d->mounted = mount ("tmpfs", d->mnt, "tmpfs", 0, "size=8m") == 0;
  if (!d->mounted)
    g_test_message ("no tmpfs: %s", geteuid () == 0 ? g_strerror (errno) : "not root");
  db = g_build_filename (d->mnt, "experiments.db", NULL);
  qb_test_window_setup_with_db (&d->window, db);
}

static void
full_disk_teardown (FullDisk *d, gconstpointer data)
{
  qb_test_window_teardown (&d->window, data);
  if (d->mounted)
    g_assert_no_errno (umount2 (d->mnt, MNT_DETACH));
  g_free (d->mnt);
}

/* Fills the filesystem of dir but for about `room` bytes. */
static void
fill_but (const char *dir, gsize room)
{
  g_autofree char *filler = g_build_filename (dir, "filler", NULL);
  static char block[4096];
  FILE *f = fopen (filler, "w");
  long written = 0;

  g_assert_nonnull (f);
  while (fwrite (block, 1, sizeof block, f) == sizeof block && fflush (f) == 0)
    written += sizeof block;
  fclose (f);
  g_assert_no_errno (truncate (filler, MAX (written - (long) room, 0)));
}

static QbExperiment *
stored_experiment (FullDisk *d, gint64 id)
{
  g_autofree char *db = g_build_filename (d->mnt, "experiments.db", NULL);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GError) error = NULL;
  QbExperiment *e;

  store = qb_store_open_readonly (db, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, id, &error);
  g_assert_no_error (error);
  return e;
}

/* With a few sizes of room left (where the disk fills up changes with
 * them): each run loses results; the experiment is stored as failed, or,
 * when even its end did not fit, left running — and the banner and the
 * run panel say which, and that the disk is full.  The usual case, stored
 * as failed, must be among them. */
static void
test_full_disk (FullDisk *d, gconstpointer data)
{
  Fixture *f = &d->window;
  const guint rooms_kib[] = { 32, 48, 64, 80, 96, 128, 160, 192 };
  g_autofree char *model = NULL, *filler = NULL;
  guint n_failed = 0;

  if (!d->mounted)
    {
      g_test_skip ("full disk: not root, or no tmpfs (a small tmpfs holds the database)");
      return;
    }
  model = write_demo_model (f, "m.gguf");
  filler = g_build_filename (d->mnt, "filler", NULL);
  qb_test_window_open (f, model);
  for (guint i = 0; i < G_N_ELEMENTS (rooms_kib); i++)
    {
      g_autoptr(QbExperiment) e = NULL;
      const char *message, *status;
      gint64 id = i + 1;   /* a fresh database: one experiment per run */

      fill_but (d->mnt, rooms_kib[i] * 1024);
      if (qb_window_get_error_message (f->window) != NULL)
        qb_test_window_activate (f, "dismiss-error", NULL);
      quantize (f, i % 2 ? "Q8_0" : "Q4_0");
      message = qb_window_get_error_message (f->window);
      status = qb_run_panel_get_status_text (qb_window_get_run_panel (f->window));
      e = stored_experiment (d, id);
      g_test_message ("%u KiB of room: experiment %" G_GINT64_FORMAT " %s, %u of %u tensors\n"
                      "banner: %s\nrun panel: %s", rooms_kib[i], id,
                      qb_experiment_status_name (e->status), e->n_tensors_done, e->n_tensors,
                      message, status);
      g_assert_nonnull (message);
      g_assert_nonnull (strstr (message, "full"));
      g_assert_cmpuint (e->n_tensors_done, <, e->n_tensors);
      if (e->status == QB_EXPERIMENT_FAILED)
        {
          n_failed++;
          g_assert_nonnull (strstr (message, "stored as failed"));
          g_assert_nonnull (strstr (status, "stored as failed"));
          if (n_failed == 1)
            screenshot (f, "reliability-full-disk.png");
        }
      else
        {
          /* Never called stored when it is not. */
          g_assert_cmpint (e->status, ==, QB_EXPERIMENT_RUNNING);
          g_assert_nonnull (strstr (message, "nor its end"));
          g_assert_nonnull (strstr (status, "its end not stored"));
        }
      g_assert_no_errno (g_unlink (filler));
    }
  g_assert_cmpuint (n_failed, >, 0);
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);
  g_test_add ("/ui/reliability/non-finite", Fixture, NULL, qb_test_window_setup, test_non_finite,
              qb_test_window_teardown);
  g_test_add ("/ui/reliability/full-disk", FullDisk, NULL, full_disk_setup, test_full_disk,
              full_disk_teardown);
  return g_test_run ();
}
