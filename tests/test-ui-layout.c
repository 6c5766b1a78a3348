/* SPDX-License-Identifier: MIT */
/* test-ui-layout.c — the window at the sizes people use (1024×700, a
 * half-screen tile, full HD): nothing clipped, and the format picker. */
#include <string.h>
#include <gtk/gtk.h>

#include "qb-format-button.h"
#include "qb-format-list.h"
#include "qb-plan-panel.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"

typedef QbTestWindow Fixture;

/* With QB_TEST_SHOTS set, the sizes tested are saved there as PNG, to look at. */
static void
maybe_save (Fixture    *f,
            const char *name)
{
  const char *dir = g_getenv ("QB_TEST_SHOTS");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;

  if (dir == NULL)
    return;
  path = g_build_filename (dir, name, NULL);
  if (!qb_test_ui_save_png (GTK_WIDGET (f->window), path, &error))
    g_printerr ("%s: %s\n", path, error->message);
}

static void
assert_unclipped (Fixture    *f,
                  const char *where)
{
  g_autofree char *clipped = qb_test_window_find_clipped (f);

  if (clipped)
    g_error ("clipped at %d×%d (%s):\n%s", gtk_widget_get_width (GTK_WIDGET (f->window)),
             gtk_widget_get_height (GTK_WIDGET (f->window)), where, clipped);
}

/* The demo model after a run with a rule, one tensor selected: the Plan
 * page at its widest content. */
static void
open_and_run (Fixture *f)
{
  qb_test_window_activate (f, "open-demo", NULL);
  qb_test_window_settle (f);
  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "blk.*.attn_[qkv].weight", "glob", "Q6_K"));
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q4_K"));
  g_assert_cmpint (qb_run_get_status (qb_test_window_run (f)), ==, QB_RUN_DONE);
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.1.attn_q.weight"));
  qb_test_window_settle (f);
}

static GtkWidget *
find_widget (GtkWidget *root,
             GType      type)
{
  if (G_TYPE_CHECK_INSTANCE_TYPE (root, type))
    return root;
  for (GtkWidget *child = gtk_widget_get_first_child (root); child; child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found = find_widget (child, type);
      if (found)
        return found;
    }
  return NULL;
}

/* Every page, at each size: nothing allocated below its minimum, nothing
 * outside the window but inside a scroller. */
static void
test_sizes (Fixture       *f,
            gconstpointer  data)
{
  const struct { int width, height; const char *name; } sizes[] = {
    { 1024, 700, "1024x700" },
    { 960, 1040, "half-tile" },
    { 1920, 1080, "1920x1080" },
  };
  const char *pages[] = { "plan", "sensitivity", "experiments", "compare" };

  open_and_run (f);
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      qb_test_window_resize (f, sizes[s].width, sizes[s].height);
      for (guint p = 0; p < G_N_ELEMENTS (pages); p++)
        {
          g_autofree char *where = g_strdup_printf ("%s page", pages[p]);
          g_autofree char *png = g_strdup_printf ("%s-%s.png", pages[p], sizes[s].name);

          qb_test_window_activate (f, "show-page", g_variant_new_string (pages[p]));
          qb_test_window_settle (f);
          qb_test_window_resize (f, sizes[s].width, sizes[s].height);
          maybe_save (f, png);
          assert_unclipped (f, where);
        }
      qb_test_window_activate (f, "show-page", g_variant_new_string ("plan"));
    }

  /* Grouped by layer with one group folded: the summaries fit too. */
  qb_test_window_activate (f, "group-by", g_variant_new_string ("layer"));
  {
    QbLayerTable *table = qb_window_get_layer_table (f->window);
    g_autoptr(QbTensorRow) first = g_list_model_get_item (qb_layer_table_get_visible_rows (table), 1);

    qb_layer_table_set_group_collapsed (table, first, TRUE);
    qb_test_window_settle (f);
    maybe_save (f, "plan-grouped-1920x1080.png");
    assert_unclipped (f, "plan page, grouped");
  }
}

/* The string of the format list's selected item, or NULL. */
static const char *
selected_format (GtkWidget *popover)
{
  GtkListView *view = GTK_LIST_VIEW (find_widget (popover, GTK_TYPE_LIST_VIEW));
  GtkSingleSelection *selection = GTK_SINGLE_SELECTION (gtk_list_view_get_model (view));
  GtkStringObject *item = gtk_single_selection_get_selected_item (selection);

  return item ? gtk_string_object_get_string (item) : NULL;
}

/* Types into the open list and presses Enter. */
static void
type_and_enter (GtkWidget  *popover,
                const char *text)
{
  GtkWidget *search = find_widget (popover, GTK_TYPE_SEARCH_ENTRY);

  gtk_editable_set_text (GTK_EDITABLE (search), text);
  /* Enter right after typing, before the entry's own search delay. */
  g_signal_emit_by_name (search, "activate");
  qb_test_ui_flush ();
}

static GtkWidget *
open_picker (QbFormatButton *button)
{
  GtkWidget *popover;

  g_signal_emit_by_name (gtk_widget_get_first_child (GTK_WIDGET (button)), "clicked");
  qb_test_ui_flush ();
  popover = find_widget (GTK_WIDGET (button), GTK_TYPE_POPOVER);
  g_assert_nonnull (popover);
  g_assert_true (gtk_widget_get_visible (popover));
  return popover;
}

/* The first format of the list whose name contains text (as the picker
 * filters: ignoring case). */
static const char *
first_containing (const char *text)
{
  GListModel *formats = qb_format_list_get ();
  g_autofree char *needle = g_utf8_casefold (text, -1);

  for (guint i = 0; i < g_list_model_get_n_items (formats); i++)
    {
      g_autoptr(GtkStringObject) item = g_list_model_get_item (formats, i);
      g_autofree char *name = g_utf8_casefold (gtk_string_object_get_string (item), -1);
      if (strstr (name, needle))
        return gtk_string_object_get_string (item);
    }
  return NULL;
}

/* The picker opens on the current format; Enter with nothing typed keeps
 * it (never "keep"); typing filters and Enter takes the exact name or the
 * first match; nothing matching chooses nothing. */
static void
test_format_picker (Fixture       *f,
                    gconstpointer  data)
{
  QbPlan *plan;
  QbFormatButton *button;
  GtkWidget *popover;

  qb_test_window_activate (f, "open-demo", NULL);
  qb_test_window_settle (f);
  plan = qb_document_get_plan (qb_window_get_document (f->window));
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q5_K"));
  button = QB_FORMAT_BUTTON (find_widget (find_widget (GTK_WIDGET (f->window), QB_TYPE_PLAN_PANEL),
                                          QB_TYPE_FORMAT_BUTTON));
  g_assert_cmpstr (qb_format_button_get_format (button), ==, "Q5_K");

  popover = open_picker (button);
  g_assert_cmpstr (selected_format (popover), ==, "Q5_K");
  type_and_enter (popover, "");
  g_assert_cmpstr (qb_plan_get_default_format (plan), ==, "Q5_K");
  g_assert_false (gtk_widget_get_visible (popover));

  popover = open_picker (button);
  g_assert_cmpstr (selected_format (popover), ==, "Q5_K");
  type_and_enter (popover, "q8_0");
  g_assert_cmpstr (qb_plan_get_default_format (plan), ==, "Q8_0");
  g_assert_cmpstr (qb_format_button_get_format (button), ==, "Q8_0");

  popover = open_picker (button);
  g_assert_cmpstr (selected_format (popover), ==, "Q8_0");
  type_and_enter (popover, "iq4");
  g_assert_nonnull (first_containing ("iq4"));
  g_assert_cmpstr (qb_plan_get_default_format (plan), ==, first_containing ("iq4"));

  /* Nothing matches: nothing chosen, the list stays open. */
  popover = open_picker (button);
  type_and_enter (popover, "no such format");
  g_assert_cmpstr (qb_plan_get_default_format (plan), ==, first_containing ("iq4"));
  g_assert_true (gtk_widget_get_visible (popover));
  gtk_popover_popdown (GTK_POPOVER (popover));
}

/* Every label under root whose text contains needle, in tree order. */
static void
collect_labels (GtkWidget  *root,
                const char *needle,
                GPtrArray  *out)
{
  if (GTK_IS_LABEL (root) && gtk_widget_get_mapped (root)
      && strstr (gtk_label_get_text (GTK_LABEL (root)), needle))
    g_ptr_array_add (out, root);
  for (GtkWidget *child = gtk_widget_get_first_child (root); child; child = gtk_widget_get_next_sibling (child))
    collect_labels (child, needle, out);
}

/* The label shows its whole text: not ellipsized, not cut. */
static void
assert_label_whole (GtkWidget *label)
{
  g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (label, gtk_label_get_text (GTK_LABEL (label)));
  int w;

  pango_layout_get_pixel_size (layout, &w, NULL);
  if (gtk_widget_get_width (label) + 1 < w || pango_layout_is_ellipsized (gtk_label_get_layout (GTK_LABEL (label))))
    g_error ("“%s” is %d px wide, needs %d", gtk_label_get_text (GTK_LABEL (label)),
             gtk_widget_get_width (label), w);
}

/* stories260K: its 172-wide rows do not fit Q4_K.  The cell shows what the
 * tensor gets ("Q5_0 ← Q4_K" or so), shapes are never cut, and the
 * sidebar gives back the width a long rule took. */
static void
test_table_cells (Fixture       *f,
                  gconstpointer  data)
{
  QbLayerTable *table;
  GtkWidget *panel;
  g_autoptr(GPtrArray) shapes = g_ptr_array_new ();
  g_autoptr(GPtrArray) fallbacks = g_ptr_array_new ();
  int width;

  if (!qb_test_window_open_shared (f, "models/stories260K.gguf"))
    return;
  qb_test_window_resize (f, 1024, 700);
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q4_K"));
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.0.ffn_down.weight"));
  qb_test_window_settle (f);
  table = qb_window_get_layer_table (f->window);
  g_assert_nonnull (qb_tensor_row_get_fallback (qb_test_window_row (f, "blk.0.ffn_down.weight")));

  collect_labels (GTK_WIDGET (table), "← Q4_K", fallbacks);
  g_assert_cmpuint (fallbacks->len, >, 0);
  collect_labels (GTK_WIDGET (table), " × ", shapes);
  g_assert_cmpuint (shapes->len, >, 0);
  for (guint i = 0; i < shapes->len; i++)
    assert_label_whole (g_ptr_array_index (shapes, i));
  /* The reason, whole, in the details pane. */
  g_assert_nonnull (strstr (qb_tensor_details_get_fact (qb_window_get_details (f->window), "fallback"),
                            "do not fit"));

  panel = find_widget (GTK_WIDGET (f->window), QB_TYPE_PLAN_PANEL);
  width = gtk_widget_get_width (panel);
  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "blk.*.ffn_[gu]*.weight_with_a_long_tail",
                                                         "glob", "Q6_K"));
  qb_test_window_resize (f, 1024, 700);
  g_assert_cmpint (gtk_widget_get_width (panel), <=, width + 40);
  assert_unclipped (f, "plan page with a rule");
  qb_test_window_activate (f, "remove-rule", g_variant_new_uint32 (0));
  qb_test_window_resize (f, 1024, 700);
  g_assert_cmpint (gtk_widget_get_width (panel), ==, width);
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);
#define ADD(path, fn) g_test_add ("/ui-layout/" path, Fixture, NULL, qb_test_window_setup, fn, qb_test_window_teardown)
  ADD ("sizes", test_sizes);
  ADD ("format-picker", test_format_picker);
  ADD ("table-cells", test_table_cells);
#undef ADD
  return g_test_run ();
}
