/* SPDX-License-Identifier: MIT */
/* qb-experiments-page.c — saved experiments: list, details, edits. */
#include "qb-experiments-page.h"

#include <math.h>

#include "qb-stored-tensors-view.h"
#include "qb-ui.h"

/* -- columns -------------------------------------------------------------- */

typedef struct {
  const char *title;
  const char *tooltip;
  char     *(*text) (const QbExperiment *e);
  double    (*key)  (const QbExperiment *e);   /* NULL: sort by text */
  gboolean    numeric;
  int         width;
  gboolean    expand;
} Column;

/* "–" for a measure that is missing (NAN). */
static char *
text_or_dash (double      v,
              const char *format)
{
  if (isnan (v))
    return g_strdup ("–");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  return g_strdup_printf (format, v);
#pragma GCC diagnostic pop
}

static char *col_name (const QbExperiment *e) { return g_strdup (e->name); }
static char *col_model (const QbExperiment *e) { return g_strdup (e->model_name ? e->model_name : ""); }
static char *col_status (const QbExperiment *e) { return g_strdup (qb_experiment_status_name (e->status)); }
static char *col_tensors (const QbExperiment *e) { return g_strdup_printf ("%u/%u", e->n_tensors_done, e->n_tensors); }
static char *col_size (const QbExperiment *e) { return e->totals.quantized_bytes ? g_format_size (e->totals.quantized_bytes) : g_strdup ("–"); }
static char *col_bpw (const QbExperiment *e) { return text_or_dash (e->totals.bpw, "%.2f"); }
static char *col_sqnr (const QbExperiment *e) { return isinf (e->totals.sqnr_db) ? g_strdup ("∞") : text_or_dash (e->totals.sqnr_db, "%.1f"); }
static char *col_rmse (const QbExperiment *e) { return text_or_dash (e->totals.rmse_rel, "%.4f"); }
static char *col_cosine (const QbExperiment *e) { return text_or_dash (e->totals.cosine_min, "%.5f"); }
static char *col_ppl (const QbExperiment *e) { return text_or_dash (qb_experiment_metric (e, QB_METRIC_PERPLEXITY), "%.3f"); }
static char *col_kld (const QbExperiment *e) { return text_or_dash (qb_experiment_metric (e, QB_METRIC_KLD_MEAN), "%.5f"); }
static char *col_tags (const QbExperiment *e) { return g_strjoinv (", ", e->tags); }

/* "tinystories-val.txt · 40 × 128": what the PPL and KLD were measured on. */
static char *
col_eval (const QbExperiment *e)
{
  const QbEvaluation *ev = e->evaluation;

  if (ev == NULL)
    return g_strdup ("–");
  return g_strdup_printf ("%s · %u × %u", ev->text_name ? ev->text_name : "?", ev->n_chunks, ev->n_ctx);
}

static char *
col_created (const QbExperiment *e)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local (e->created / G_USEC_PER_SEC);

  return t ? g_date_time_format (t, "%Y-%m-%d %H:%M") : g_strdup ("?");
}

static double key_created (const QbExperiment *e) { return e->created; }
static double key_tensors (const QbExperiment *e) { return e->n_tensors_done; }
static double key_size (const QbExperiment *e) { return e->totals.quantized_bytes; }
static double key_bpw (const QbExperiment *e) { return e->totals.bpw; }
static double key_sqnr (const QbExperiment *e) { return e->totals.sqnr_db; }
static double key_rmse (const QbExperiment *e) { return e->totals.rmse_rel; }
static double key_cosine (const QbExperiment *e) { return e->totals.cosine_min; }
static double key_ppl (const QbExperiment *e) { return qb_experiment_metric (e, QB_METRIC_PERPLEXITY); }
static double key_kld (const QbExperiment *e) { return qb_experiment_metric (e, QB_METRIC_KLD_MEAN); }

static const Column columns[] = {
  { "Name", "Experiment name", col_name, NULL, FALSE, 200, TRUE },
  { "bpw", "Bits per weight", col_bpw, key_bpw, TRUE, 56, FALSE },
  { "Size", "Quantized size", col_size, key_size, TRUE, 80, FALSE },
  { "SQNR dB", "Parameter-weighted mean SQNR", col_sqnr, key_sqnr, TRUE, 80, FALSE },
  { "PPL", "Perplexity of the latest evaluation (its setting: Evaluated on)", col_ppl, key_ppl, TRUE, 64, FALSE },
  { "KLD", "Mean KL divergence to the float model, latest evaluation (its setting: Evaluated on)", col_kld, key_kld, TRUE, 70, FALSE },
  { "Evaluated on", "The text and chunking of the latest evaluation: compare PPL and KLD only between equal settings", col_eval, NULL, FALSE, 150, FALSE },
  { "Rel. RMSE", "Parameter-weighted mean relative RMSE", col_rmse, key_rmse, TRUE, 76, FALSE },
  { "Min cos", "Lowest cosine similarity of any tensor", col_cosine, key_cosine, TRUE, 76, FALSE },
  { "Tags", "Tags", col_tags, NULL, FALSE, 110, FALSE },
  { "Status", "done, cancelled, failed, interrupted or running", col_status, NULL, FALSE, 80, FALSE },
  { "Tensors", "Tensors stored / planned", col_tensors, key_tensors, TRUE, 70, FALSE },
  { "Created", "When the run started", col_created, key_created, FALSE, 130, FALSE },
  { "Model", "The model it quantized", col_model, NULL, FALSE, 110, FALSE },
};

/* -- the widget ----------------------------------------------------------- */

struct _QbExperimentsPage
{
  GtkWidget          parent_instance;

  GtkSearchEntry    *search_entry;
  GtkCheckButton    *all_models_check;
  GtkLabel          *count_label;
  GtkWidget         *compare_button;
  GtkStack          *list_stack;
  GtkLabel          *empty_label;
  GtkColumnView     *column_view;
  GtkWidget         *details_box;
  GtkEntry          *name_entry;
  GtkLabel          *info_label;
  GtkGrid           *facts_grid;
  GtkEntry          *tags_entry;
  GtkTextView       *notes_view;
  GtkLabel          *evaluation_label;
  GtkWidget         *evaluation_progress;
  GtkLabel          *evaluation_status;
  GtkProgressBar    *evaluation_bar;
  QbStoredTensorsView *tensors_view;

  GListStore        *rows;
  GtkFilterListModel *filtered;
  GtkSortListModel  *sorted;
  GtkMultiSelection *selection;
  GtkStringFilter   *filter;

  QbStore           *store;
  char              *fingerprint;   /* of the open model, NULL: none */
  QbExperimentRow   *focused;
  QbEvaluator       *evaluator;
  guint              generation;    /* of the latest list request */
  guint              n_pending;
  GHashTable        *calibration_sets;  /* id → QbCalibrationSet, from the latest list */
};

G_DEFINE_FINAL_TYPE (QbExperimentsPage, qb_experiments_page, GTK_TYPE_WIDGET)

enum {
  ERROR,
  LOADED,
  SELECTION_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* -- cells ------------------------------------------------------------------ */

static void
on_setup (GtkSignalListItemFactory *factory,
          GtkListItem              *item,
          gpointer                  data)
{
  const Column *col = data;
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (label), col->numeric ? 1.0 : 0.0);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
  if (col->numeric)
    gtk_widget_add_css_class (label, "numeric");
  gtk_list_item_set_child (item, label);
}

static void
on_bind (GtkSignalListItemFactory *factory,
         GtkListItem              *item,
         gpointer                  data)
{
  const Column *col = data;
  const QbExperiment *e = qb_experiment_row_get_experiment (gtk_list_item_get_item (item));
  g_autofree char *text = col->text (e);
  GtkWidget *label = gtk_list_item_get_child (item);

  gtk_label_set_text (GTK_LABEL (label), text);
  if (col->text == col_status && e->status != QB_EXPERIMENT_DONE)
    gtk_widget_add_css_class (label, "warning");
  else
    gtk_widget_remove_css_class (label, "warning");
}

static int
compare_column (gconstpointer a,
                gconstpointer b,
                gpointer      data)
{
  const Column *col = data;
  const QbExperiment *x = qb_experiment_row_get_experiment ((QbExperimentRow *) a);
  const QbExperiment *y = qb_experiment_row_get_experiment ((QbExperimentRow *) b);

  if (col->key)
    {
      double u = col->key (x), v = col->key (y);
      if (isnan (u) || isnan (v))
        return isnan (u) && isnan (v) ? 0 : isnan (u) ? 1 : -1;
      return u < v ? -1 : u > v ? 1 : 0;
    }
  else
    {
      g_autofree char *s = col->text (x);
      g_autofree char *t = col->text (y);
      return g_utf8_collate (s, t);
    }
}

/* A column never narrower than its title with the sort arrow beside it
 * (a clipped "SQNR dB" read "SQNR dE"). */
static int
column_width (QbExperimentsPage *self, const Column *col)
{
  g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (GTK_WIDGET (self->column_view), NULL);
  g_autofree char *markup = g_markup_printf_escaped ("<b>%s</b>", col->title);
  int title = 0;

  pango_layout_set_markup (layout, markup, -1);
  pango_layout_get_pixel_size (layout, &title, NULL);
  return MAX (col->width, title + 36);
}

static void
add_columns (QbExperimentsPage *self)
{
  for (gsize i = 0; i < G_N_ELEMENTS (columns); i++)
    {
      GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
      GtkColumnViewColumn *column;
      GtkSorter *sorter;

      g_signal_connect (factory, "setup", G_CALLBACK (on_setup), (gpointer) &columns[i]);
      g_signal_connect (factory, "bind", G_CALLBACK (on_bind), (gpointer) &columns[i]);
      column = gtk_column_view_column_new (columns[i].title, factory);
      gtk_column_view_column_set_resizable (column, TRUE);
      gtk_column_view_column_set_fixed_width (column, column_width (self, &columns[i]));
      gtk_column_view_column_set_expand (column, columns[i].expand);
      sorter = GTK_SORTER (gtk_custom_sorter_new (compare_column, (gpointer) &columns[i], NULL));
      gtk_column_view_column_set_sorter (column, sorter);
      g_object_unref (sorter);
      gtk_column_view_append_column (self->column_view, column);
      g_object_unref (column);
    }
}

/* -- details ------------------------------------------------------------------ */

static void
add_fact (QbExperimentsPage *self,
          int                row,
          const char        *key,
          char              *value)   /* takes */
{
  GtkWidget *k = gtk_label_new (key);
  GtkWidget *v = gtk_label_new (value);

  gtk_label_set_xalign (GTK_LABEL (k), 0);
  gtk_label_set_xalign (GTK_LABEL (v), 0);
  gtk_label_set_selectable (GTK_LABEL (v), TRUE);
  gtk_widget_add_css_class (k, "dim-label");
  gtk_widget_add_css_class (v, "numeric");
  gtk_grid_attach (self->facts_grid, k, 0, row, 1, 1);
  gtk_grid_attach (self->facts_grid, v, 1, row, 1, 1);
  g_free (value);
}

/* "tinystories-val.txt: 128 × 128 tokens, in order" */
static char *
describe_calibration (QbExperimentsPage *self,
                      gint64             id)
{
  const QbCalibrationSet *c = self->calibration_sets
                              ? g_hash_table_lookup (self->calibration_sets, &id) : NULL;

  if (c == NULL)
    return g_strdup_printf ("set #%" G_GINT64_FORMAT, id);
  if (c->seeded)
    return g_strdup_printf ("%s: %u × %u tokens, random (seed %" G_GUINT64_FORMAT ")", c->name,
                            c->n_chunks, c->chunk_len, c->seed);
  return g_strdup_printf ("%s: %u × %u tokens, in order", c->name, c->n_chunks, c->chunk_len);
}

static char *
describe_evaluation (const QbEvaluation *ev)
{
  GString *s = g_string_new (NULL);

  if (ev == NULL)
    return g_string_free (s, FALSE);
  g_string_append_printf (s, "PPL %.4f ± %.4f", ev->perplexity, ev->perplexity_err);
  if (!isnan (ev->base_perplexity))
    g_string_append_printf (s, " (float %.4f, ×%.4f)", ev->base_perplexity, ev->perplexity / ev->base_perplexity);
  if (!isnan (ev->kld_mean))
    g_string_append_printf (s, "\nKLD mean %.5f · median %.5f · p99 %.4f\nsame top token %.2f %% · RMS Δp %.2f %%",
                            ev->kld_mean, ev->kld_median, ev->kld_p99, 100 * ev->top1_agreement,
                            100 * ev->dp_rms);
  g_string_append_printf (s, "\n%s · %u chunks of %u tokens", ev->text_name ? ev->text_name : "?",
                          ev->n_chunks, ev->n_ctx);
  return g_string_free (s, FALSE);
}

/* An evaluation of the shown experiment under way, or how it ended. */
static void
show_evaluation_progress (QbExperimentsPage *self)
{
  gboolean show = self->evaluator && self->focused
                  && qb_evaluator_get_experiment_id (self->evaluator) == qb_experiment_row_get_id (self->focused)
                  && qb_evaluator_get_status (self->evaluator) != QB_EVALUATOR_DONE;

  gtk_widget_set_visible (self->evaluation_progress, show);
  if (!show)
    return;
  gtk_progress_bar_set_fraction (self->evaluation_bar, qb_evaluator_get_fraction (self->evaluator));
  switch (qb_evaluator_get_status (self->evaluator))
    {
    case QB_EVALUATOR_CANCELLED:
      gtk_label_set_text (self->evaluation_status, "Evaluation cancelled");
      break;
    case QB_EVALUATOR_FAILED:
      gtk_label_set_text (self->evaluation_status, qb_evaluator_get_error (self->evaluator)->message);
      break;
    default:
      gtk_label_set_text (self->evaluation_status, qb_evaluator_get_text (self->evaluator));
      break;
    }
}

static void
show_details (QbExperimentsPage *self)
{
  const QbExperiment *e = self->focused ? qb_experiment_row_get_experiment (self->focused) : NULL;
  GtkTextBuffer *notes = gtk_text_view_get_buffer (self->notes_view);
  GtkWidget *child;
  int row = 0;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->facts_grid))) != NULL)
    gtk_grid_remove (self->facts_grid, child);
  gtk_widget_set_sensitive (self->details_box, e != NULL);
  if (e == NULL)
    {
      gtk_widget_set_visible (self->evaluation_progress, FALSE);
      gtk_label_set_text (self->evaluation_label, "");
      gtk_editable_set_text (GTK_EDITABLE (self->name_entry), "");
      gtk_label_set_text (self->info_label, "Select an experiment");
      gtk_editable_set_text (GTK_EDITABLE (self->tags_entry), "");
      gtk_text_buffer_set_text (notes, "", -1);
      return;
    }

  {
    g_autofree char *created = col_created (e);
    /* 0: as many threads as cores, whatever the machine had. */
    g_autofree char *threads = e->threads ? g_strdup_printf ("%u thread%s", e->threads, e->threads == 1 ? "" : "s")
                                          : g_strdup ("threads: automatic");
    g_autofree char *info = g_strdup_printf ("#%" G_GINT64_FORMAT " · %s · %s · %s · %s%s%s", e->id,
                                             qb_experiment_status_name (e->status), created,
                                             e->model_name ? e->model_name : "?", threads,
                                             e->error_message ? "\n" : "",
                                             e->error_message ? e->error_message : "");
    gtk_editable_set_text (GTK_EDITABLE (self->name_entry), e->name);
    gtk_label_set_text (self->info_label, info);
  }
  add_fact (self, row++, "Tensors", col_tensors (e));
  add_fact (self, row++, "Size", col_size (e));
  add_fact (self, row++, "Bits per weight", col_bpw (e));
  add_fact (self, row++, "Compression", text_or_dash (e->totals.compression, "%.2f×"));
  add_fact (self, row++, "Time", text_or_dash (e->totals.seconds, "%.2f s"));
  add_fact (self, row++, "SQNR", col_sqnr (e));
  add_fact (self, row++, "Relative RMSE", col_rmse (e));
  add_fact (self, row++, "Lowest cosine", col_cosine (e));
  add_fact (self, row++, "Max |error|", text_or_dash (e->totals.max_abs_err, "%.4g"));
  add_fact (self, row++, "Fallbacks", g_strdup_printf ("%u", e->totals.n_fallbacks));
  /* What ran the quantization and the latest evaluation: "cpu" or
   * "opencl:N (name)", recorded since schema v5. */
  add_fact (self, row++, "Device", g_strdup (e->backend ? e->backend : "cpu"));
  if (e->evaluation != NULL && e->evaluation->device != NULL)
    add_fact (self, row++, "Evaluation device", g_strdup (e->evaluation->device));
  if (!isnan (e->totals.out_rel_err))
    add_fact (self, row++, "Output error", g_strdup_printf ("%.3e", e->totals.out_rel_err));
  if (e->calibration_set_id != 0)
    add_fact (self, row++, "Calibration", describe_calibration (self, e->calibration_set_id));
  {
    g_autofree char *evaluation = describe_evaluation (e->evaluation);
    gtk_label_set_text (self->evaluation_label, e->evaluation ? evaluation
                                                              : "Not evaluated yet.");
  }
  show_evaluation_progress (self);
  {
    g_autofree char *tags = col_tags (e);
    gtk_editable_set_text (GTK_EDITABLE (self->tags_entry), tags);
  }
  gtk_text_buffer_set_text (notes, e->notes ? e->notes : "", -1);
}

static void
set_focused (QbExperimentsPage *self,
             QbExperimentRow   *row)
{
  const QbExperiment *e = row ? qb_experiment_row_get_experiment (row) : NULL;

  g_set_object (&self->focused, row);
  show_details (self);
  /* Read again when a run still going stored more tensors. */
  qb_stored_tensors_view_show (self->tensors_view, e ? e->id : 0, e ? e->name : NULL,
                               e ? e->n_tensors_done : 0);
}

static void
update_count (QbExperimentsPage *self)
{
  g_autoptr(GtkBitset) sel = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  guint shown = g_list_model_get_n_items (G_LIST_MODEL (self->sorted));
  guint selected = (guint) gtk_bitset_get_size (sel);
  /* Compare is disabled below two: say how to get there. */
  const char *hint = selected >= 2 ? "" : shown >= 2 ? " · select two or more to compare"
                                                     : " · run two or more to compare";
  g_autofree char *text = g_strdup_printf ("%u experiment%s · %u selected%s", shown, shown == 1 ? "" : "s",
                                           selected, hint);

  gtk_label_set_text (self->count_label, text);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->count_label), text);   /* whole when ellipsized */
  gtk_widget_set_tooltip_text (self->compare_button,
                               selected >= 2 ? "Compare the selected experiments (Ctrl+D)"
                                             : "Select two or more experiments to compare (Ctrl or Shift and click)");
  gtk_stack_set_visible_child_name (self->list_stack, shown > 0 ? "list" : "empty");
  g_signal_emit (self, signals[SELECTION_CHANGED], 0);
}

static void
on_selection_changed (GtkSelectionModel *model,
                      guint              position,
                      guint              n_items,
                      QbExperimentsPage *self)
{
  g_autoptr(GtkBitset) sel = gtk_selection_model_get_selection (model);
  g_autoptr(QbExperimentRow) row = NULL;

  if (gtk_bitset_get_size (sel) > 0)
    {
      guint pos = gtk_bitset_get_minimum (sel);
      /* Several selected: follow the one in the changed range. */
      for (guint i = position; i < position + n_items; i++)
        if (gtk_bitset_contains (sel, i))
          {
            pos = i;
            break;
          }
      row = g_list_model_get_item (G_LIST_MODEL (model), pos);
    }
  if (row != self->focused)
    set_focused (self, row);
  update_count (self);
}

/* -- background work ------------------------------------------------------- */

typedef enum {
  OP_LIST,
  OP_RENAME,
  OP_NOTES,
  OP_TAGS,
  OP_DELETE,
} OpKind;

typedef struct {
  OpKind         kind;
  QbStore       *store;
  gint64         id;
  char          *text;
  char          *fingerprint;   /* OP_LIST: NULL for every model */
  guint          generation;
} Op;

static void
op_free (Op *op)
{
  qb_store_unref (op->store);
  g_free (op->text);
  g_free (op->fingerprint);
  g_free (op);
}

static GPtrArray *
list_experiments (QbStore     *store,
                  const char  *fingerprint,
                  GError     **error)
{
  QbExperimentQuery query;
  GError *local = NULL;

  qb_experiment_query_init (&query);
  if (fingerprint)
    {
      query.model_id = qb_store_find_model (store, fingerprint, &local);
      if (query.model_id == 0)
        {
          /* A model never run has no experiments: not an error. */
          if (g_error_matches (local, QB_STORE_ERROR, QB_STORE_ERROR_NOT_FOUND))
            {
              g_error_free (local);
              return g_ptr_array_new_with_free_func ((GDestroyNotify) qb_experiment_free);
            }
          g_propagate_error (error, local);
          return NULL;
        }
    }
  return qb_store_list_experiments (store, &query, error);
}

/* Replaces an experiment's tags by those in a comma-separated list. */
static gboolean
replace_tags (QbStore     *store,
              gint64       id,
              const char  *text,
              GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (text, ",", -1);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) tags = NULL;

  for (guint i = 0; parts[i]; i++)
    {
      g_strstrip (parts[i]);
      if (*parts[i])
        g_strv_builder_add (builder, parts[i]);
    }
  tags = g_strv_builder_end (builder);
  return qb_store_set_tags (store, id, (const char * const *) tags, error);
}

/* What a list operation brings back. */
typedef struct {
  GPtrArray *experiments;
  GPtrArray *calibration_sets;
} Listed;

static void
listed_free (Listed *listed)
{
  g_clear_pointer (&listed->experiments, g_ptr_array_unref);
  g_clear_pointer (&listed->calibration_sets, g_ptr_array_unref);
  g_free (listed);
}

static void
op_thread (GTask        *task,
           gpointer      source,
           gpointer      data,
           GCancellable *cancellable)
{
  Op *op = data;
  QbStore *store = op->store;
  GError *error = NULL;
  gboolean ok = FALSE;

  switch (op->kind)
    {
    case OP_LIST:
      {
        Listed *listed = g_new0 (Listed, 1);

        listed->experiments = list_experiments (store, op->fingerprint, &error);
        if (listed->experiments)
          listed->calibration_sets = qb_store_list_calibration_sets (store, &error);
        if (listed->calibration_sets)
          g_task_return_pointer (task, listed, (GDestroyNotify) listed_free);
        else
          {
            listed_free (listed);
            g_task_return_error (task, error);
          }
      }
      return;
    case OP_RENAME:
      ok = qb_store_rename_experiment (store, op->id, op->text, &error);
      break;
    case OP_NOTES:
      ok = qb_store_set_notes (store, op->id, op->text, &error);
      break;
    case OP_TAGS:
      ok = replace_tags (store, op->id, op->text, &error);
      break;
    case OP_DELETE:
      ok = qb_store_delete_experiment (store, op->id, &error);
      break;
    default:
      g_assert_not_reached ();
    }
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
apply_list (QbExperimentsPage *self,
            Listed            *listed)
{
  GPtrArray *list = listed->experiments;
  g_autoptr(GArray) keep = qb_experiments_page_get_selected_ids (self);
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func (g_object_unref);
  gint64 focused = self->focused ? qb_experiment_row_get_id (self->focused) : 0;

  g_hash_table_remove_all (self->calibration_sets);
  for (guint i = 0; i < listed->calibration_sets->len; i++)
    {
      QbCalibrationSet *c = qb_calibration_set_copy (g_ptr_array_index (listed->calibration_sets, i));
      g_hash_table_insert (self->calibration_sets, &c->id, c);
    }

  for (guint i = 0; i < list->len; i++)
    g_ptr_array_add (rows, qb_experiment_row_new (qb_experiment_copy (g_ptr_array_index (list, i))));
  g_list_store_splice (self->rows, 0, g_list_model_get_n_items (G_LIST_MODEL (self->rows)),
                       rows->pdata, rows->len);

  /* Keep what was selected, the focused row last so it stays focused. */
  for (guint i = 0; i < keep->len; i++)
    if (g_array_index (keep, gint64, i) != focused)
      qb_experiments_page_select_id (self, g_array_index (keep, gint64, i), TRUE);
  if (focused && !qb_experiments_page_select_id (self, focused, keep->len > 1))
    set_focused (self, NULL);
  update_count (self);
}

static void
op_done (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  QbExperimentsPage *self = QB_EXPERIMENTS_PAGE (object);
  Op *op = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;

  self->n_pending--;
  /* The page may have been closed while the task ran. */
  if (self->rows == NULL)
    return;
  if (op->kind == OP_LIST)
    {
      Listed *listed = g_task_propagate_pointer (G_TASK (result), &error);

      if (op->generation == self->generation && listed)
        apply_list (self, listed);
      g_clear_pointer (&listed, listed_free);
      if (error)
        g_signal_emit (self, signals[ERROR], 0, error->message);
      if (op->generation == self->generation)
        g_signal_emit (self, signals[LOADED], 0);
      return;
    }
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    g_signal_emit (self, signals[ERROR], 0, error->message);
  qb_experiments_page_refresh (self);
}

static void
run_op (QbExperimentsPage *self,
        OpKind             kind,
        gint64             id,
        const char        *text)
{
  g_autoptr(GTask) task = NULL;
  Op *op;

  if (self->store == NULL)
    return;
  op = g_new0 (Op, 1);
  op->kind = kind;
  op->store = qb_store_ref (self->store);
  op->id = id;
  op->text = g_strdup (text);
  if (kind == OP_LIST)
    {
      op->generation = ++self->generation;
      if (!gtk_check_button_get_active (self->all_models_check))
        op->fingerprint = g_strdup (self->fingerprint);
    }
  self->n_pending++;
  task = g_task_new (self, NULL, op_done, NULL);
  g_task_set_source_tag (task, run_op);
  g_task_set_task_data (task, op, (GDestroyNotify) op_free);
  g_task_run_in_thread (task, op_thread);
}

/* -- template callbacks ---------------------------------------------------- */

static void
on_search_changed (QbExperimentsPage *self)
{
  gtk_string_filter_set_search (self->filter, gtk_editable_get_text (GTK_EDITABLE (self->search_entry)));
  update_count (self);
}

static void
on_all_models_toggled (QbExperimentsPage *self)
{
  qb_experiments_page_refresh (self);
}

static gint64
focused_id (QbExperimentsPage *self)
{
  return self->focused ? qb_experiment_row_get_id (self->focused) : 0;
}

static void
on_name_activate (QbExperimentsPage *self)
{
  if (focused_id (self))
    gtk_widget_activate_action (GTK_WIDGET (self), "win.rename-experiment", "(xs)", focused_id (self),
                                gtk_editable_get_text (GTK_EDITABLE (self->name_entry)));
}

static void
on_tags_activate (QbExperimentsPage *self)
{
  if (focused_id (self))
    gtk_widget_activate_action (GTK_WIDGET (self), "win.set-experiment-tags", "(xs)", focused_id (self),
                                gtk_editable_get_text (GTK_EDITABLE (self->tags_entry)));
}

static void
on_save_notes (QbExperimentsPage *self)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (self->notes_view);
  GtkTextIter start, end;
  g_autofree char *text = NULL;

  if (!focused_id (self))
    return;
  gtk_text_buffer_get_bounds (buffer, &start, &end);
  text = gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
  gtk_widget_activate_action (GTK_WIDGET (self), "win.set-experiment-notes", "(xs)", focused_id (self), text);
}

static void
on_open_clicked (QbExperimentsPage *self)
{
  if (focused_id (self))
    gtk_widget_activate_action (GTK_WIDGET (self), "win.open-experiment", "x", focused_id (self));
}

static void
on_export_model_clicked (QbExperimentsPage *self)
{
  if (focused_id (self))
    gtk_widget_activate_action (GTK_WIDGET (self), "win.export-experiment-model", "x", focused_id (self));
}

G_GNUC_BEGIN_IGNORE_DEPRECATIONS   /* GtkMessageDialog: GtkAlertDialog is 4.10+ */
static void
on_delete_response (GtkDialog         *dialog,
                    int                response,
                    QbExperimentsPage *self)
{
  gint64 id = GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (dialog), "qb-id"));

  if (response == GTK_RESPONSE_ACCEPT)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.delete-experiment", "x", id);
  gtk_window_destroy (GTK_WINDOW (dialog));
}

static void
on_delete_clicked (QbExperimentsPage *self)
{
  GtkWidget *dialog;
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));

  if (!focused_id (self))
    return;
  dialog = gtk_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                   GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                   GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE,
                                   "Delete “%s”?", qb_experiment_row_get_name (self->focused));
  gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog),
                                            "Its tensors, histograms and evaluations are deleted with it.");
  gtk_dialog_add_button (GTK_DIALOG (dialog), "_Cancel", GTK_RESPONSE_CANCEL);
  gtk_widget_add_css_class (gtk_dialog_add_button (GTK_DIALOG (dialog), "_Delete", GTK_RESPONSE_ACCEPT),
                            "destructive-action");
  g_object_set_data (G_OBJECT (dialog), "qb-id", GSIZE_TO_POINTER (focused_id (self)));
  g_signal_connect (dialog, "response", G_CALLBACK (on_delete_response), self);
  gtk_window_present (GTK_WINDOW (dialog));
}
G_GNUC_END_IGNORE_DEPRECATIONS

/* -- GObject -------------------------------------------------------------- */

static void
qb_experiments_page_dispose (GObject *object)
{
  QbExperimentsPage *self = QB_EXPERIMENTS_PAGE (object);

  if (self->selection)
    g_signal_handlers_disconnect_by_data (self->selection, self);
  g_clear_object (&self->focused);
  if (self->evaluator)
    g_signal_handlers_disconnect_by_data (self->evaluator, self);
  g_clear_object (&self->evaluator);
  g_clear_pointer (&self->store, qb_store_unref);
  qb_ui_dispose_template (GTK_WIDGET (self), QB_TYPE_EXPERIMENTS_PAGE);
  g_clear_object (&self->selection);
  g_clear_object (&self->rows);
  g_clear_pointer (&self->fingerprint, g_free);
  g_clear_pointer (&self->calibration_sets, g_hash_table_unref);
  G_OBJECT_CLASS (qb_experiments_page_parent_class)->dispose (object);
}

static void
qb_experiments_page_class_init (QbExperimentsPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_experiments_page_dispose;

  /* A read or write failed; the argument is the message. */
  signals[ERROR] = g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /* The selection changed (what Compare compares). */
  signals[SELECTION_CHANGED] = g_signal_new ("selection-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                             0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /* A fresh list is shown. */
  signals[LOADED] = g_signal_new ("loaded", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  qb_ui_ensure_resources ();
  g_type_ensure (QB_TYPE_STORED_TENSORS_VIEW);
  gtk_widget_class_set_template_from_resource (widget_class, "/org/quantbench/Quantbench/ui/qb-experiments-page.ui");
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, search_entry);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, all_models_check);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, count_label);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, compare_button);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, list_stack);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, empty_label);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, column_view);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, details_box);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, name_entry);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, info_label);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, facts_grid);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, tags_entry);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, notes_view);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, evaluation_label);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, evaluation_progress);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, evaluation_status);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, evaluation_bar);
  gtk_widget_class_bind_template_child (widget_class, QbExperimentsPage, tensors_view);
  gtk_widget_class_bind_template_callback (widget_class, on_search_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_all_models_toggled);
  gtk_widget_class_bind_template_callback (widget_class, on_name_activate);
  gtk_widget_class_bind_template_callback (widget_class, on_tags_activate);
  gtk_widget_class_bind_template_callback (widget_class, on_save_notes);
  gtk_widget_class_bind_template_callback (widget_class, on_open_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_delete_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_export_model_clicked);
  gtk_widget_class_set_css_name (widget_class, "experimentspage");
}

static void
qb_experiments_page_init (QbExperimentsPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->calibration_sets = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                                  (GDestroyNotify) qb_calibration_set_free);
  self->rows = g_list_store_new (QB_TYPE_EXPERIMENT_ROW);
  self->filter = gtk_string_filter_new (gtk_property_expression_new (QB_TYPE_EXPERIMENT_ROW, NULL, "name"));
  gtk_string_filter_set_match_mode (self->filter, GTK_STRING_FILTER_MATCH_MODE_SUBSTRING);
  self->filtered = gtk_filter_list_model_new (g_object_ref (G_LIST_MODEL (self->rows)),
                                              GTK_FILTER (self->filter));
  self->sorted = gtk_sort_list_model_new (G_LIST_MODEL (self->filtered),
                                          g_object_ref (gtk_column_view_get_sorter (self->column_view)));
  self->selection = gtk_multi_selection_new (G_LIST_MODEL (self->sorted));
  gtk_column_view_set_model (self->column_view, GTK_SELECTION_MODEL (self->selection));
  g_signal_connect (self->selection, "selection-changed", G_CALLBACK (on_selection_changed), self);
  add_columns (self);
  show_details (self);
  update_count (self);
}

GtkWidget *
qb_experiments_page_new (void)
{
  return g_object_new (QB_TYPE_EXPERIMENTS_PAGE, NULL);
}

void
qb_experiments_page_set_store (QbExperimentsPage *self,
                               QbStore           *store)
{
  g_return_if_fail (QB_IS_EXPERIMENTS_PAGE (self));

  g_clear_pointer (&self->store, qb_store_unref);
  if (store)
    self->store = qb_store_ref (store);
  qb_stored_tensors_view_set_store (self->tensors_view, store);
  gtk_label_set_text (self->empty_label, store ? "No experiments yet. Every run of Quantize is kept here."
                                               : "The experiment database is not open.");
  qb_experiments_page_refresh (self);
}

void
qb_experiments_page_set_model (QbExperimentsPage *self,
                               QbModel           *model)
{
  g_return_if_fail (QB_IS_EXPERIMENTS_PAGE (self));

  g_free (self->fingerprint);
  self->fingerprint = model ? g_strdup (qb_model_get_fingerprint (model)) : NULL;
  qb_experiments_page_refresh (self);
}

void
qb_experiments_page_refresh (QbExperimentsPage *self)
{
  g_return_if_fail (QB_IS_EXPERIMENTS_PAGE (self));

  if (self->store == NULL)
    {
      g_list_store_remove_all (self->rows);
      update_count (self);
      return;
    }
  run_op (self, OP_LIST, 0, NULL);
}

gboolean
qb_experiments_page_is_busy (QbExperimentsPage *self)
{
  g_return_val_if_fail (QB_IS_EXPERIMENTS_PAGE (self), FALSE);
  return self->n_pending > 0;
}

GListModel *
qb_experiments_page_get_rows (QbExperimentsPage *self)
{
  g_return_val_if_fail (QB_IS_EXPERIMENTS_PAGE (self), NULL);
  return G_LIST_MODEL (self->sorted);
}

GArray *
qb_experiments_page_get_selected_ids (QbExperimentsPage *self)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GtkBitset) sel = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  GtkBitsetIter iter;
  guint pos;

  for (gboolean ok = gtk_bitset_iter_init_first (&iter, sel, &pos); ok; ok = gtk_bitset_iter_next (&iter, &pos))
    {
      g_autoptr(QbExperimentRow) row = g_list_model_get_item (G_LIST_MODEL (self->selection), pos);
      gint64 id = qb_experiment_row_get_id (row);
      g_array_append_val (ids, id);
    }
  return ids;
}

const char *
qb_experiments_page_get_count_text (QbExperimentsPage *self)
{
  g_return_val_if_fail (QB_IS_EXPERIMENTS_PAGE (self), NULL);
  return gtk_label_get_text (self->count_label);
}

QbExperimentRow *
qb_experiments_page_get_focused (QbExperimentsPage *self)
{
  g_return_val_if_fail (QB_IS_EXPERIMENTS_PAGE (self), NULL);
  return self->focused;
}

gboolean
qb_experiments_page_select_id (QbExperimentsPage *self,
                               gint64             id,
                               gboolean           extend)
{
  GListModel *model = G_LIST_MODEL (self->selection);
  guint n = g_list_model_get_n_items (model);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(QbExperimentRow) row = g_list_model_get_item (model, i);
      if (qb_experiment_row_get_id (row) == id)
        {
          gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), i, !extend);
          return TRUE;
        }
    }
  return FALSE;
}

void
qb_experiments_page_rename (QbExperimentsPage *self,
                            gint64             id,
                            const char        *name)
{
  run_op (self, OP_RENAME, id, name);
}

void
qb_experiments_page_set_notes (QbExperimentsPage *self,
                               gint64             id,
                               const char        *notes)
{
  run_op (self, OP_NOTES, id, notes);
}

void
qb_experiments_page_set_tags (QbExperimentsPage *self,
                              gint64             id,
                              const char        *tags)
{
  run_op (self, OP_TAGS, id, tags);
}

void
qb_experiments_page_delete (QbExperimentsPage *self,
                            gint64             id)
{
  run_op (self, OP_DELETE, id, NULL);
}

static void
on_evaluator_progress (QbEvaluator       *evaluator,
                       QbExperimentsPage *self)
{
  show_evaluation_progress (self);
}

static void
on_evaluator_finished (QbEvaluator       *evaluator,
                       QbExperimentsPage *self)
{
  show_evaluation_progress (self);
  qb_experiments_page_refresh (self);
}

void
qb_experiments_page_set_evaluator (QbExperimentsPage *self,
                                   QbEvaluator       *evaluator)
{
  g_return_if_fail (QB_IS_EXPERIMENTS_PAGE (self));

  if (self->evaluator)
    g_signal_handlers_disconnect_by_data (self->evaluator, self);
  g_set_object (&self->evaluator, evaluator);
  if (evaluator)
    {
      g_signal_connect (evaluator, "progress", G_CALLBACK (on_evaluator_progress), self);
      g_signal_connect (evaluator, "finished", G_CALLBACK (on_evaluator_finished), self);
    }
  show_evaluation_progress (self);
}

char *
qb_experiments_page_get_fact (QbExperimentsPage *self,
                              const char        *key)
{
  g_return_val_if_fail (QB_IS_EXPERIMENTS_PAGE (self), NULL);
  for (int row = 0;; row++)
    {
      GtkWidget *k = gtk_grid_get_child_at (self->facts_grid, 0, row);
      GtkWidget *v = gtk_grid_get_child_at (self->facts_grid, 1, row);

      if (k == NULL || v == NULL)
        return NULL;
      if (g_strcmp0 (gtk_label_get_text (GTK_LABEL (k)), key) == 0)
        return g_strdup (gtk_label_get_text (GTK_LABEL (v)));
    }
}

QbStoredTensorsView *
qb_experiments_page_get_tensors_view (QbExperimentsPage *self)
{
  g_return_val_if_fail (QB_IS_EXPERIMENTS_PAGE (self), NULL);
  return self->tensors_view;
}
