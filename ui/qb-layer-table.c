/* SPDX-License-Identifier: MIT */
/* qb-layer-table.c — the tensor table: columns, sorting, filters, groups. */
#include "qb-layer-table.h"

#include "qb-ui.h"

#include <math.h>

#include "qb-format-button.h"
#include "qb-metric-cell.h"

/* -- columns -------------------------------------------------------------- */

typedef enum {
  CELL_STATUS,
  CELL_GROUP,
  CELL_TEXT,
  CELL_NUMBER,
  CELL_FORMAT,
  CELL_METRIC,
} CellKind;

typedef enum {
  SORT_NONE,
  SORT_STRING,
  SORT_NUMERIC,
  SORT_METRIC,    /* numeric with missing values (NaN) last */
} SortKind;

typedef struct {
  const char  *id;
  const char  *title;
  const char  *tooltip;
  CellKind     kind;
  const char  *watch[3];            /* row properties the cell follows */
  char      *(*text) (QbTensorRow *row);
  SortKind     sort;
  const char  *sort_property;
  double     (*metric) (QbTensorRow *row);
  double       bar_lo, bar_hi;      /* metric value for an empty and a full bar */
  int          width;
  gboolean     expand;
} ColumnSpec;

static char *
text_name (QbTensorRow *row)
{
  return g_strdup (qb_tensor_row_get_name (row));
}

static char *
text_layer (QbTensorRow *row)
{
  int layer = qb_tensor_row_get_layer (row);
  return layer < 0 ? g_strdup ("–") : g_strdup_printf ("%d", layer);
}

static char *
text_role (QbTensorRow *row)
{
  return g_strdup (qb_tensor_row_get_role_name (row));
}

static char *
text_shape (QbTensorRow *row)
{
  return g_strdup (qb_tensor_row_get_shape (row));
}

static char *
text_dtype (QbTensorRow *row)
{
  return g_strdup (qb_tensor_row_get_dtype (row));
}

static char *
text_params (QbTensorRow *row)
{
  gint64 n = qb_tensor_row_get_n_params (row);

  if (n >= 1000000)
    return g_strdup_printf ("%.2fM", n / 1e6);
  if (n >= 10000)
    return g_strdup_printf ("%.1fK", n / 1e3);
  return g_strdup_printf ("%" G_GINT64_FORMAT, n);
}

static char *
text_bpw (QbTensorRow *row)
{
  return g_strdup_printf ("%.2f", qb_tensor_row_get_bpw (row));
}

static char *
text_size (QbTensorRow *row)
{
  return g_format_size (qb_tensor_row_get_bytes (row));
}

static char *
text_sqnr (QbTensorRow *row)
{
  double v = qb_tensor_row_get_sqnr (row);

  /* Undefined, not empty: the weights hold NaN or infinities. */
  if (qb_tensor_row_get_n_nonfinite (row) > 0)
    return g_strdup ("NaN/inf");
  return isnan (v) ? g_strdup ("") : isinf (v) ? g_strdup ("∞") : g_strdup_printf ("%.1f", v);
}

static char *
text_rmse (QbTensorRow *row)
{
  double v = qb_tensor_row_get_rmse_rel (row);
  return isnan (v) ? g_strdup ("") : g_strdup_printf ("%.4f", v);
}

static char *
text_cosine (QbTensorRow *row)
{
  double v = qb_tensor_row_get_cosine (row);
  return isnan (v) ? g_strdup ("") : g_strdup_printf ("%.5f", v);
}

static char *
text_out_err (QbTensorRow *row)
{
  double v = qb_tensor_row_get_out_rel_err (row);
  return isnan (v) ? g_strdup ("") : g_strdup_printf ("%.2e", v);
}

/* Bars grow with quality: SQNR up to 40 dB, RMSE down to 0, cosine to 1
 * (mapped through 1 − cos, which is what differs between formats). */
static double
bar_sqnr (QbTensorRow *row)
{
  return qb_tensor_row_get_sqnr (row);
}

static double
bar_rmse (QbTensorRow *row)
{
  return qb_tensor_row_get_rmse_rel (row);
}

static double
bar_cosine (QbTensorRow *row)
{
  double c = qb_tensor_row_get_cosine (row);
  return isnan (c) ? NAN : -log10 (MAX (1.0 - c, 1e-9));
}

/* Output error: full bar at 1e-4, empty at 1 (relative, squared). */
static double
bar_out_err (QbTensorRow *row)
{
  double e = qb_tensor_row_get_out_rel_err (row);
  return isnan (e) ? NAN : -log10 (MAX (e, 1e-12));
}

static const ColumnSpec columns[] = {
  { "status", "", "Run state", CELL_STATUS, { "state", "stale" }, NULL, SORT_NONE, NULL,
    NULL, 0, 0, 28, FALSE },
  { "group", "Group", "The group each row belongs to, with its tensors, size and bits per weight; "
    "click to fold or unfold it", CELL_GROUP, { NULL }, NULL, SORT_NONE, NULL,
    NULL, 0, 0, 180, FALSE },
  { "name", "Tensor", "Tensor name", CELL_TEXT, { "highlighted" }, text_name, SORT_STRING, "name",
    NULL, 0, 0, 170, TRUE },
  { "layer", "Layer", "Block index (– outside the repeated blocks)", CELL_NUMBER, { NULL }, text_layer,
    SORT_NUMERIC, "layer", NULL, 0, 0, 52, FALSE },
  { "role", "Role", "What the tensor does", CELL_TEXT, { NULL }, text_role, SORT_STRING, "role",
    NULL, 0, 0, 88, FALSE },
  { "shape", "Shape", "Row length × rows (ggml order)", CELL_NUMBER, { NULL }, text_shape,
    SORT_NUMERIC, "n-params", NULL, 0, 0, 84, FALSE },
  { "dtype", "Type", "Stored type", CELL_TEXT, { NULL }, text_dtype, SORT_STRING, "dtype",
    NULL, 0, 0, 44, FALSE },
  { "params", "Params", "Number of weights", CELL_NUMBER, { NULL }, text_params, SORT_NUMERIC, "n-params",
    NULL, 0, 0, 60, FALSE },
  { "format", "Format", "Format the plan gives the tensor", CELL_FORMAT, { "requested", "format-label", "source" },
    NULL, SORT_STRING, "format", NULL, 0, 0, 104, FALSE },
  { "bpw", "bpw", "Bits per weight, scales included", CELL_NUMBER, { "bpw" }, text_bpw, SORT_NUMERIC, "bpw",
    NULL, 0, 0, 44, FALSE },
  { "size", "Size", "Bytes after quantization", CELL_NUMBER, { "bytes" }, text_size, SORT_NUMERIC, "bytes",
    NULL, 0, 0, 70, FALSE },
  { "sqnr", "SQNR dB", "Signal-to-quantization-noise ratio of the last run", CELL_METRIC,
    { "has-result", "stale" }, text_sqnr, SORT_METRIC, "sqnr", bar_sqnr, 0, 40, 80, FALSE },
  { "rmse", "Rel. RMSE", "RMS error relative to the weights' RMS", CELL_METRIC, { "has-result", "stale" },
    text_rmse, SORT_METRIC, "rmse-rel", bar_rmse, 0.5, 0, 80, FALSE },
  { "cosine", "Cosine", "Cosine similarity of original and quantized weights", CELL_METRIC,
    { "has-result", "stale" }, text_cosine, SORT_METRIC, "cosine", bar_cosine, 0, 6, 88, FALSE },
  /* Shown only when a result has it (qb_layer_table_update_columns). */
  { "out-err", "Out err", "Output error ‖WX − ŴX‖² / ‖WX‖² on the calibration inputs "
    "(what hurts the model; estimated from the importance alone where XᵀX was not kept)",
    CELL_METRIC, { "has-result", "stale" }, text_out_err, SORT_METRIC, NULL, bar_out_err, 0, 4, 80,
    FALSE },
};

/* -- the widget ----------------------------------------------------------- */

struct _QbLayerTable
{
  GtkWidget           parent_instance;

  GtkSearchEntry     *search_entry;
  GtkDropDown        *layer_dropdown;
  GtkDropDown        *role_dropdown;
  GtkDropDown        *group_dropdown;
  GtkLabel           *count_label;
  GtkBox             *bulk_box;
  GtkWidget          *bulk_format;
  GtkColumnView      *column_view;

  QbDocument         *document;
  GtkFilterListModel *filter_model;
  GtkSortListModel   *sort_model;
  GListStore         *view_rows;        /* the sorted rows the view has, see "filling the view" */
  guint               view_limit;       /* how many sorted rows it follows; G_MAXUINT: all */
  gboolean            draining;         /* it lets go of another model's rows, see begin_switch () */
  QbTensorRow        *pending;          /* the row to select once the view has rows again */
  GHashTable         *name_items;       /* the bound GtkListItems of the name column */
  GtkMultiSelection  *selection;
  GtkStringFilter    *name_filter;
  GtkCustomFilter    *layer_role_filter;
  GtkCustomSorter    *group_sorter;
  GtkColumnViewColumn *group_column;

  int                 layer_filter;
  int                 role_filter;
  QbGroupBy           group_by;
  int                *layer_choices;    /* layer_dropdown position -> filter value */
  int                *role_choices;     /* role_dropdown position -> filter value */
  QbTensorRow        *focused;
  gboolean            updating_filters;
  GHashTable         *subtotals;        /* group key + 2 -> Subtotal */
  GHashTable         *collapsed;        /* group keys + 2 folded to their first row */
  GHashTable         *group_items;      /* the bound GtkListItems of the group column */
  GListStore         *expert_rows;      /* every 3-D expert tensor's experts' rows */
  GHashTable         *expanded;         /* tensor rows showing their experts */
  GtkSorter          *row_sorter;       /* group, then the clicked column, over tensors */
  GtkCustomSorter    *family_sorter;    /* keeps experts under their tensor */
  guint               n_rows_built;     /* rows whose cells were made (name cells set up) */
  guint               n_rows_freed;     /* rows whose cells were freed */
  guint               n_rows_bound;     /* rows whose cells were given a row to show (new or kept cells) */
  guint               unbind_serial;    /* counts cells unbound, see park_cell () */
  guint               fill_tick;        /* tick callback draining or growing the view; 0 when done */
  guint               built_at_tick;    /* n_rows_built at the fill's previous frame */
};

/* A group's tensors, planned size and parameters, and the row that stands
 * for it when folded (the first in model order). */
typedef struct {
  guint   n;
  gint64  params;
  guint64 bytes;
  guint   first_index;
} Subtotal;

G_DEFINE_FINAL_TYPE (QbLayerTable, qb_layer_table, GTK_TYPE_WIDGET)

enum {
  PROP_0,
  PROP_FOCUSED_ROW,
  PROP_FILLING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static QbTensorRow *
item_row (GtkListItem *item)
{
  return QB_TENSOR_ROW (gtk_list_item_get_item (item));
}

/* A cell's tooltip is kept as data and handed to GTK when asked for
 * (query-tooltip): gtk_widget_set_tooltip_text () on every bind asked
 * the display server where the pointer was, one round trip per cell —
 * seconds of a stalled window for a 1,000-tensor model's first screen. */
static gboolean
on_cell_query_tooltip (GtkWidget  *widget,
                       int         x,
                       int         y,
                       gboolean    keyboard,
                       GtkTooltip *tooltip,
                       gpointer    data)
{
  const char *tip = g_object_get_data (G_OBJECT (widget), "qb-tip");

  if (tip == NULL || *tip == '\0')
    return FALSE;
  gtk_tooltip_set_text (tooltip, tip);
  return TRUE;
}

static void
enable_cell_tip (GtkWidget *widget)
{
  gtk_widget_set_has_tooltip (widget, TRUE);
  g_signal_connect (widget, "query-tooltip", G_CALLBACK (on_cell_query_tooltip), NULL);
}

static void
set_cell_tip (GtkWidget  *widget,
              const char *tip)
{
  g_object_set_data_full (G_OBJECT (widget), "qb-tip", g_strdup (tip), g_free);
}

/* Cells remember their row and spec so notify handlers can refresh them. */
static const ColumnSpec *
cell_spec (GtkWidget *cell)
{
  return g_object_get_data (G_OBJECT (cell), "qb-spec");
}

static void
refresh_label (GtkLabel          *label,
               QbTensorRow       *row,
               const ColumnSpec  *spec)
{
  g_autofree char *text = spec->text (row);

  gtk_label_set_text (label, text);
}

static void
refresh_status (GtkImage    *image,
                QbTensorRow *row)
{
  const char *icon = NULL, *tip = NULL;

  switch (qb_tensor_row_get_state (row))
    {
    case QB_TENSOR_ROW_RUNNING:
      icon = "media-playback-start-symbolic";
      tip = "Quantizing";
      break;
    case QB_TENSOR_ROW_QUEUED:
      icon = "content-loading-symbolic";
      tip = "Waiting in the run";
      break;
    case QB_TENSOR_ROW_DONE:
      icon = qb_tensor_row_get_stale (row) ? "view-refresh-symbolic" : "object-select-symbolic";
      tip = qb_tensor_row_get_stale (row) ? "Result from another format: run again"
                                          : "Quantized in the last run";
      break;
    case QB_TENSOR_ROW_IDLE:
    default:
      break;
    }
  gtk_image_set_from_icon_name (image, icon);
  set_cell_tip (GTK_WIDGET (image), tip);
}

static void
refresh_metric (GtkWidget        *cell,
                QbTensorRow      *row,
                const ColumnSpec *spec)
{
  g_autofree char *text = spec->text (row);
  double v = spec->metric (row);

  qb_metric_cell_set_value (QB_METRIC_CELL (cell), text,
                            isnan (v) ? NAN : CLAMP ((v - spec->bar_lo) / (spec->bar_hi - spec->bar_lo), 0, 1));
  if (qb_tensor_row_get_stale (row))
    gtk_widget_add_css_class (cell, "stale");
  else
    gtk_widget_remove_css_class (cell, "stale");
}

static void
refresh_format (GtkWidget   *box,
                QbTensorRow *row)
{
  GtkWidget *button = gtk_widget_get_first_child (box);
  GtkWidget *icon = gtk_widget_get_last_child (box);
  const char *fallback = qb_tensor_row_get_fallback (row);
  gboolean expert = qb_tensor_row_get_expert (row) >= 0;
  g_autofree char *tip = NULL;

  if (expert)
    {
      /* llama.cpp keeps a layer's experts in one tensor of one type. */
      g_autofree char *shown = g_strdup_printf ("%s · all experts", qb_tensor_row_get_format_label (row));
      g_autofree char *why = g_strdup_printf ("%s for all %u experts: llama.cpp stores them as one "
                                              "3-D tensor of one type (change it on the tensor's row)",
                                              qb_tensor_row_get_format_label (row),
                                              qb_tensor_row_get_n_experts (row));
      qb_format_button_set_format (QB_FORMAT_BUTTON (button), qb_tensor_row_get_requested (row));
      qb_format_button_set_shown_label (QB_FORMAT_BUTTON (button), shown);
      gtk_widget_set_sensitive (button, FALSE);
      set_cell_tip (box, why);
      gtk_widget_set_visible (icon, FALSE);
      gtk_widget_remove_css_class (button, "overridden");
      return;
    }
  gtk_widget_set_sensitive (button, TRUE);
  qb_format_button_set_format (QB_FORMAT_BUTTON (button), qb_tensor_row_get_requested (row));
  /* What the tensor really gets: "F16 ← Q6_K" when its rows do not fit. */
  qb_format_button_set_shown_label (QB_FORMAT_BUTTON (button),
                                    fallback ? qb_tensor_row_get_format_label (row) : NULL);
  qb_format_button_set_resettable (QB_FORMAT_BUTTON (button), qb_tensor_row_get_overridden (row));

  tip = g_strdup_printf ("%s — from %s%s%s", qb_tensor_row_get_format_label (row),
                         qb_tensor_row_get_source (row) ? qb_tensor_row_get_source (row) : "the plan",
                         fallback ? "\n" : "", fallback ? fallback : "");
  set_cell_tip (box, tip);
  gtk_widget_set_visible (icon, fallback != NULL);
  if (qb_tensor_row_get_overridden (row))
    gtk_widget_add_css_class (button, "overridden");
  else
    gtk_widget_remove_css_class (button, "overridden");
}

/* The name cell: an expert tensor's button that shows or hides its
 * experts, then the name; an expert's row says which expert it is,
 * indented under its tensor. */
static void
refresh_name (GtkWidget        *box,
              QbTensorRow      *row,
              const ColumnSpec *spec)
{
  QbLayerTable *self = g_object_get_data (G_OBJECT (box), "qb-table");
  GtkWidget *button = gtk_widget_get_first_child (box);
  GtkLabel *label = GTK_LABEL (gtk_widget_get_last_child (box));
  guint n_experts = qb_tensor_row_get_n_experts (row);
  int expert = qb_tensor_row_get_expert (row);

  gtk_widget_set_visible (button, n_experts > 0 && expert < 0);
  if (n_experts > 0 && expert < 0)
    {
      gboolean open = qb_layer_table_get_experts_expanded (self, row);
      g_autofree char *tip = g_strdup_printf ("%s its %u experts, each a row of its own",
                                              open ? "Hide" : "Show", n_experts);
      gtk_button_set_icon_name (GTK_BUTTON (button), open ? "pan-down-symbolic" : "pan-end-symbolic");
      set_cell_tip (button, tip);
    }
  if (expert >= 0)
    {
      g_autofree char *text = g_strdup_printf ("expert %d of %u", expert, n_experts);
      g_autofree char *tip = g_strdup_printf ("Expert %d of %s: its own rows of the 3-D tensor, "
                                              "measured on their own", expert,
                                              qb_tensor_row_get_name (row));
      gtk_label_set_text (label, text);
      gtk_widget_set_margin_start (GTK_WIDGET (label), 28);
      gtk_widget_add_css_class (GTK_WIDGET (label), "expert-row");
      set_cell_tip (GTK_WIDGET (label), tip);
      return;
    }
  gtk_widget_set_margin_start (GTK_WIDGET (label), 0);
  gtk_widget_remove_css_class (GTK_WIDGET (label), "expert-row");
  /* The name itself is marked: an arrow in the first column read as a
   * tree expander. */
  refresh_label (label, row, spec);
  if (qb_tensor_row_get_highlighted (row))
    gtk_widget_add_css_class (GTK_WIDGET (label), "rule-match");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (label), "rule-match");
  set_cell_tip (GTK_WIDGET (label), qb_tensor_row_get_highlighted (row)
                                    ? "Matched by the rule being edited" : NULL);
}

static void
refresh_cell (GtkWidget   *cell,
              QbTensorRow *row)
{
  const ColumnSpec *spec = cell_spec (cell);

  switch (spec->kind)
    {
    case CELL_STATUS:
      refresh_status (GTK_IMAGE (cell), row);
      break;
    case CELL_TEXT:
      if (g_str_equal (spec->id, "name"))
        refresh_name (cell, row, spec);
      else
        refresh_label (GTK_LABEL (cell), row, spec);
      break;
    case CELL_NUMBER:
      refresh_label (GTK_LABEL (cell), row, spec);
      break;
    case CELL_FORMAT:
      refresh_format (cell, row);
      break;
    case CELL_METRIC:
      refresh_metric (cell, row, spec);
      break;
    case CELL_GROUP:
    default:
      break;
    }
}

static void
on_row_notify (QbTensorRow *row,
               GParamSpec  *pspec,
               GtkWidget   *cell)
{
  const ColumnSpec *spec = cell_spec (cell);

  for (guint i = 0; i < G_N_ELEMENTS (spec->watch) && spec->watch[i]; i++)
    if (g_str_equal (pspec->name, spec->watch[i]))
      {
        refresh_cell (cell, row);
        return;
      }
}

static void
on_format_chosen (QbFormatButton *button,
                  const char     *format,
                  QbLayerTable   *self)
{
  QbTensorRow *row = g_object_get_data (G_OBJECT (button), "qb-row");

  if (row == NULL || self->document == NULL)
    return;
  if (qb_tensor_row_get_parent (row))
    row = qb_tensor_row_get_parent (row);
  qb_document_set_formats (self->document, &row, 1, format);
}

static void
on_format_reset (QbFormatButton *button,
                 QbLayerTable   *self)
{
  QbTensorRow *row = g_object_get_data (G_OBJECT (button), "qb-row");

  if (row && self->document)
    qb_document_clear_overrides (self->document, &row, 1);
}

static void on_group_clicked (GtkButton *button, QbLayerTable *self);

static void
on_experts_clicked (GtkButton    *button,
                    QbLayerTable *self)
{
  QbTensorRow *row = g_object_get_data (G_OBJECT (button), "qb-row");

  if (row)
    qb_layer_table_set_experts_expanded (self, row, !qb_layer_table_get_experts_expanded (self, row));
}

static GtkWidget *
make_name_cell (QbLayerTable *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 2);
  GtkWidget *button = gtk_button_new_from_icon_name ("pan-end-symbolic");
  GtkWidget *label = gtk_label_new (NULL);

  gtk_button_set_has_frame (GTK_BUTTON (button), FALSE);
  gtk_widget_add_css_class (button, "experts-button");
  enable_cell_tip (button);
  enable_cell_tip (label);
  gtk_widget_set_visible (button, FALSE);
  g_signal_connect (button, "clicked", G_CALLBACK (on_experts_clicked), self);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_set_hexpand (label, TRUE);
  gtk_box_append (GTK_BOX (box), button);
  gtk_box_append (GTK_BOX (box), label);
  g_object_set_data (G_OBJECT (box), "qb-table", self);
  return box;
}

static GtkWidget *
make_cell (QbLayerTable     *self,
           const ColumnSpec *spec)
{
  GtkWidget *cell;

  switch (spec->kind)
    {
    case CELL_STATUS:
      cell = gtk_image_new ();
      enable_cell_tip (cell);
      break;
    case CELL_FORMAT:
      {
        GtkWidget *button = qb_format_button_new ();
        GtkWidget *icon = gtk_image_new_from_icon_name ("dialog-warning-symbolic");

        cell = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
        enable_cell_tip (cell);
        qb_format_button_set_flat (QB_FORMAT_BUTTON (button), TRUE);
        gtk_widget_set_hexpand (button, TRUE);
        gtk_widget_add_css_class (icon, "warning");
        gtk_box_append (GTK_BOX (cell), button);
        gtk_box_append (GTK_BOX (cell), icon);
        g_signal_connect (button, "format-chosen", G_CALLBACK (on_format_chosen), self);
        g_signal_connect (button, "reset", G_CALLBACK (on_format_reset), self);
      }
      break;
    case CELL_METRIC:
      cell = qb_metric_cell_new ();
      break;
    case CELL_GROUP:
      {
        GtkWidget *label = gtk_label_new (NULL);

        gtk_label_set_xalign (GTK_LABEL (label), 0);
        gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
        gtk_widget_add_css_class (label, "group-label");
        cell = gtk_button_new ();
        gtk_button_set_child (GTK_BUTTON (cell), label);
        gtk_button_set_has_frame (GTK_BUTTON (cell), FALSE);
        gtk_widget_add_css_class (cell, "group-button");
        enable_cell_tip (cell);
        g_signal_connect (cell, "clicked", G_CALLBACK (on_group_clicked), self);
      }
      break;
    case CELL_TEXT:
      if (g_str_equal (spec->id, "name"))
        {
          cell = make_name_cell (self);
          break;
        }
      G_GNUC_FALLTHROUGH;
    case CELL_NUMBER:
    default:
      cell = gtk_label_new (NULL);
      gtk_label_set_xalign (GTK_LABEL (cell), spec->kind == CELL_NUMBER ? 1.0 : 0.0);
      /* A number cut short shows it ("2816 × 10…"), never drops digits silently. */
      gtk_label_set_ellipsize (GTK_LABEL (cell), spec->kind == CELL_NUMBER ? PANGO_ELLIPSIZE_END
                                                                          : PANGO_ELLIPSIZE_MIDDLE);
      if (spec->kind == CELL_NUMBER)
        gtk_widget_add_css_class (cell, "numeric");
      break;
    }
  g_object_set_data (G_OBJECT (cell), "qb-spec", (gpointer) spec);
  return cell;
}

static void
on_setup (GtkSignalListItemFactory *factory,
          GtkListItem              *item,
          QbLayerTable             *self)
{
  const ColumnSpec *spec = g_object_get_data (G_OBJECT (factory), "qb-spec");

  gtk_list_item_set_child (item, make_cell (self, spec));
  self->n_rows_built += g_str_equal (spec->id, "name");
}

static gboolean unpark_cell (QbLayerTable *self, GtkWidget *cell, QbTensorRow *row);

static void
on_teardown (GtkSignalListItemFactory *factory,
             GtkListItem              *item,
             QbLayerTable             *self)
{
  const ColumnSpec *spec = g_object_get_data (G_OBJECT (factory), "qb-spec");
  GtkWidget *cell = gtk_list_item_get_child (item);

  if (cell != NULL)
    unpark_cell (self, cell, NULL);
  self->n_rows_freed += g_str_equal (spec->id, "name");
}

static void refresh_group_cell (QbLayerTable *self, GtkListItem *item);
static void set_focused        (QbLayerTable *self, QbTensorRow *row);

static void
on_position_changed (GtkListItem  *item,
                     GParamSpec   *pspec,
                     QbLayerTable *self)
{
  refresh_group_cell (self, item);
}

/* GTK 4.8 unbinds a row's cells and binds them again whenever its
 * position or selection changes (rows added or removed above it, as when
 * experts are shown or the view lets go of rows): ~200 rows redrawn from
 * scratch, ~90 ms.  So an unbound cell keeps its row, and its row's
 * handler, until its next bind: given the row it had just now, it has
 * nothing to redo.  "Just now": no other cell was unbound since, as when
 * GTK unbinds and binds each cell in turn; a cell left unbound longer is
 * filled again as any. */
static void
park_cell (QbLayerTable *self,
           GtkWidget    *cell,
           QbTensorRow  *row)
{
  g_object_set_data_full (G_OBJECT (cell), "qb-parked-row", g_object_ref (row), g_object_unref);
  g_object_set_data (G_OBJECT (cell), "qb-parked-serial", GUINT_TO_POINTER (++self->unbind_serial));
}

/* TRUE when the cell was parked just now with row (it shows row and
 * follows it); otherwise the parked row, if any, is let go of. */
static gboolean
unpark_cell (QbLayerTable *self,
             GtkWidget    *cell,
             QbTensorRow  *row)
{
  QbTensorRow *parked = g_object_get_data (G_OBJECT (cell), "qb-parked-row");
  guint serial = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (cell), "qb-parked-serial"));
  gboolean same = parked != NULL && parked == row && serial == self->unbind_serial;

  if (parked != NULL && !same)
    g_signal_handlers_disconnect_by_func (parked, on_row_notify, cell);
  g_object_set_data (G_OBJECT (cell), "qb-parked-row", NULL);
  return same;
}

static void
on_bind (GtkSignalListItemFactory *factory,
         GtkListItem              *item,
         QbLayerTable             *self)
{
  GtkWidget *cell = gtk_list_item_get_child (item);
  const ColumnSpec *spec = cell_spec (cell);
  QbTensorRow *row = item_row (item);

  if (spec->kind == CELL_GROUP)
    {
      refresh_group_cell (self, item);
      g_hash_table_add (self->group_items, item);
      g_signal_connect (item, "notify::position", G_CALLBACK (on_position_changed), self);
      return;
    }
  if (spec->kind == CELL_FORMAT || g_str_equal (spec->id, "name"))
    g_object_set_data (G_OBJECT (gtk_widget_get_first_child (cell)), "qb-row", row);
  if (g_str_equal (spec->id, "name"))
    g_hash_table_add (self->name_items, item);
  if (unpark_cell (self, cell, row))
    return;
  self->n_rows_bound += g_str_equal (spec->id, "name");
  refresh_cell (cell, row);
  if (spec->watch[0])
    g_signal_connect_object (row, "notify", G_CALLBACK (on_row_notify), cell, 0);
}

static void
on_unbind (GtkSignalListItemFactory *factory,
           GtkListItem              *item,
           QbLayerTable             *self)
{
  GtkWidget *cell = gtk_list_item_get_child (item);
  const ColumnSpec *spec = cell_spec (cell);

  if (spec->kind == CELL_GROUP)
    {
      g_signal_handlers_disconnect_by_func (item, on_position_changed, self);
      if (self->group_items)
        g_hash_table_remove (self->group_items, item);
      return;
    }
  if (spec->kind == CELL_FORMAT || g_str_equal (spec->id, "name"))
    g_object_set_data (G_OBJECT (gtk_widget_get_first_child (cell)), "qb-row", NULL);
  if (self->name_items && g_str_equal (spec->id, "name"))
    g_hash_table_remove (self->name_items, item);
  park_cell (self, cell, item_row (item));
}

/* -- filling the view ------------------------------------------------------ */

/* GTK 4.8's list view makes the cells of up to ~200 rows (205 here) at
 * once when its model gets them, and frees them at once when its model
 * drops them: for a model of a thousand tensors either held the main loop
 * for 100–300 ms of CPU time in one piece.  So the view has a store of its
 * own, view_rows, that follows the sorted rows and changes a few rows a
 * frame: when another model opens, the view first lets go of the rows it
 * has, DRAIN_CHUNK a frame (begin_switch), then gets the new ones,
 * FILL_CHUNK a frame while GTK still makes rows for them, then, once a
 * chunk made none (the view has every row it keeps), the rest at once.
 * Filters, sorting, counts and group totals work on every sorted row from
 * the start (they make no widgets). */
#define FILL_CHUNK 8
#define DRAIN_CHUNK 16

static gboolean
view_has (QbLayerTable *self,
          guint         position,
          gpointer      row)
{
  g_autoptr(GObject) item = g_list_model_get_item (G_LIST_MODEL (self->view_rows), position);
  return item == row;
}

/* Makes the view's rows [position, position + n_old) the sorted rows
 * [position, position + n_new).  Rows that stay where they were at either
 * end keep their cells: a re-sort that moves nothing rebuilds nothing. */
static void
view_replace (QbLayerTable *self,
              guint         position,
              guint         n_old,
              guint         n_new)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_full (n_new, g_object_unref);
  guint head = 0, tail = 0;

  for (guint i = 0; i < n_new; i++)
    g_ptr_array_add (rows, g_list_model_get_item (G_LIST_MODEL (self->sort_model), position + i));
  while (head < MIN (n_old, n_new) && view_has (self, position + head, rows->pdata[head]))
    head++;
  while (tail < MIN (n_old, n_new) - head
         && view_has (self, position + n_old - 1 - tail, rows->pdata[n_new - 1 - tail]))
    tail++;
  if (n_old > head + tail || n_new > head + tail)
    g_list_store_splice (self->view_rows, position + head, n_old - head - tail,
                         rows->pdata + head, n_new - head - tail);
}

/* The sorted rows changed: so does the view, up to its limit, unless it
 * is still letting go of another model's rows. */
static void
on_sorted_changed (GListModel   *sorted,
                   guint         position,
                   guint         removed,
                   guint         added,
                   QbLayerTable *self)
{
  guint n_view = g_list_model_get_n_items (G_LIST_MODEL (self->view_rows));
  guint from = MIN (position, n_view);
  guint to = MIN (self->view_limit, g_list_model_get_n_items (sorted));

  if (self->draining)
    return;
  if (self->view_limit == G_MAXUINT)
    view_replace (self, position, removed, added);
  else
    view_replace (self, from, n_view - from, MAX (to, from) - from);
}

/* The view follows the first `limit` sorted rows. */
static void
grow_view (QbLayerTable *self,
           guint         limit)
{
  guint n_view = g_list_model_get_n_items (G_LIST_MODEL (self->view_rows));
  guint n = MIN (limit, g_list_model_get_n_items (G_LIST_MODEL (self->sort_model)));

  self->view_limit = limit;
  if (n > n_view)
    view_replace (self, n_view, 0, n - n_view);
}

static GtkWidget *
inner_list (QbLayerTable *self)
{
  for (GtkWidget *child = gtk_widget_get_first_child (GTK_WIDGET (self->column_view));
       child; child = gtk_widget_get_next_sibling (child))
    if (GTK_IS_LIST_VIEW (child))
      return child;
  return NULL;
}

/* While the view lets go of a model's rows it is blank and takes no
 * clicks, scrolling or keys (they would act on the previous model's rows,
 * or scroll to rows it would have to build). */
static void
set_view_blank (QbLayerTable *self,
                gboolean      blank)
{
  GtkWidget *list = inner_list (self);

  if (list)
    gtk_widget_set_opacity (list, blank ? 0 : 1);
  gtk_widget_set_can_target (gtk_widget_get_parent (GTK_WIDGET (self->column_view)), !blank);
}

static gboolean
on_view_key (GtkEventControllerKey *keys,
             guint                  keyval,
             guint                  keycode,
             GdkModifierType        state,
             QbLayerTable          *self)
{
  return self->draining;
}

static void fit_columns (QbLayerTable *self);

/* The view has let go of the previous model's rows. */
static void
end_drain (QbLayerTable *self)
{
  self->draining = FALSE;
  set_view_blank (self, FALSE);
  /* Widths now: changed under the old rows they relaid all of them out. */
  if (self->document)
    fit_columns (self);
  qb_layer_table_update_columns (self);
}

static void
end_fill (QbLayerTable *self)
{
  grow_view (self, G_MAXUINT);
  self->fill_tick = 0;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FILLING]);
}

static void
stop_fill_tick (QbLayerTable *self)
{
  if (self->fill_tick)
    gtk_widget_remove_tick_callback (GTK_WIDGET (self), self->fill_tick);
  self->fill_tick = 0;
}

/* Every row to the view now (a row far down is wanted, or all of them). */
static void
finish_fill (QbLayerTable *self)
{
  if (self->fill_tick == 0)
    return;
  stop_fill_tick (self);
  if (self->draining)
    {
      g_clear_object (&self->pending);
      g_list_store_remove_all (self->view_rows);
      end_drain (self);
    }
  end_fill (self);
}

/* A row selected while the view had none of the model's rows. */
static void
select_pending (QbLayerTable *self)
{
  g_autoptr(QbTensorRow) row = g_steal_pointer (&self->pending);

  if (row && !qb_layer_table_select_row (self, row))
    set_focused (self, NULL);
}

static gboolean
fill_step (GtkWidget     *widget,
           GdkFrameClock *clock,
           gpointer       data)
{
  QbLayerTable *self = QB_LAYER_TABLE (widget);
  guint n_view = g_list_model_get_n_items (G_LIST_MODEL (self->view_rows));
  gboolean built = self->n_rows_built != self->built_at_tick;

  if (self->draining && n_view > 0)
    {
      guint n = MIN (n_view, DRAIN_CHUNK);
      g_list_store_splice (self->view_rows, n_view - n, n, NULL, 0);
      return G_SOURCE_CONTINUE;
    }
  if (self->draining)
    {
      /* The next frame, not this one: it freed rows. */
      end_drain (self);
      self->built_at_tick = self->n_rows_built;
      grow_view (self, FILL_CHUNK);
      select_pending (self);
      return self->fill_tick ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
    }
  if (!built || n_view >= g_list_model_get_n_items (G_LIST_MODEL (self->sort_model)))
    {
      end_fill (self);
      return G_SOURCE_REMOVE;
    }
  self->built_at_tick = self->n_rows_built;
  grow_view (self, n_view + FILL_CHUNK);
  return G_SOURCE_CONTINUE;
}

/* The first chunk now (a row can be selected at once) unless the view is
 * still letting go of another model's rows, the rest frame by frame once
 * the table is on screen. */
static void
start_fill (QbLayerTable *self)
{
  self->built_at_tick = self->n_rows_built;
  if (!self->draining)
    grow_view (self, FILL_CHUNK);
  if (self->fill_tick == 0)
    self->fill_tick = gtk_widget_add_tick_callback (GTK_WIDGET (self), fill_step, NULL, NULL);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FILLING]);
}

/* Rows the view has no cells for go at once: they cost GTK nothing, and
 * the view then keeps every row it has, so rows leaving make it build
 * none in their place. */
static void
drop_rows_without_cells (QbLayerTable *self)
{
  g_autoptr(GtkBitset) cells = gtk_bitset_new_empty ();
  GHashTableIter iter;
  gpointer item;

  g_hash_table_iter_init (&iter, self->name_items);
  while (g_hash_table_iter_next (&iter, &item, NULL))
    gtk_bitset_add (cells, gtk_list_item_get_position (item));
  for (guint end = g_list_model_get_n_items (G_LIST_MODEL (self->view_rows)); end > 0;)
    {
      guint start = end;

      while (start > 0 && !gtk_bitset_contains (cells, start - 1))
        start--;
      if (start < end)
        g_list_store_splice (self->view_rows, start, end - start, NULL, 0);
      while (start > 0 && gtk_bitset_contains (cells, start - 1))
        start--;
      end = start;
    }
}

/* Before another model's rows (or none) come: the view stops following
 * the sorted rows and, if it has rows with cells, lets go of them frame
 * by frame, blank meanwhile (GTK 4.8 would free ~200 rows of cells in one
 * go, ~100 ms, when the sorted rows change under it). */
static void
begin_switch (QbLayerTable *self)
{
  stop_fill_tick (self);
  self->view_limit = 0;
  g_clear_object (&self->pending);
  if (self->draining)
    return;
  drop_rows_without_cells (self);
  if (g_list_model_get_n_items (G_LIST_MODEL (self->view_rows)) == 0)
    return;
  self->draining = TRUE;
  set_view_blank (self, TRUE);
}

gboolean
qb_layer_table_is_filling (QbLayerTable *self)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), FALSE);
  return self->fill_tick != 0;
}

/* -- sorting and grouping ------------------------------------------------- */

static int
compare_metric (gconstpointer a,
                gconstpointer b,
                gpointer      user_data)
{
  const ColumnSpec *spec = user_data;
  double x = spec->metric ((QbTensorRow *) a);
  double y = spec->metric ((QbTensorRow *) b);

  /* Missing values last in both directions would need the sort order;
   * treat them as the lowest value, which lists them together. */
  if (isnan (x) || isnan (y))
    return isnan (x) && isnan (y) ? GTK_ORDERING_EQUAL : isnan (x) ? GTK_ORDERING_SMALLER
                                                                    : GTK_ORDERING_LARGER;
  return x < y ? GTK_ORDERING_SMALLER : x > y ? GTK_ORDERING_LARGER : GTK_ORDERING_EQUAL;
}

static GtkSorter *
make_sorter (const ColumnSpec *spec)
{
  GtkExpression *expr;

  switch (spec->sort)
    {
    case SORT_STRING:
      expr = gtk_property_expression_new (QB_TYPE_TENSOR_ROW, NULL, spec->sort_property);
      return GTK_SORTER (gtk_string_sorter_new (expr));
    case SORT_NUMERIC:
      expr = gtk_property_expression_new (QB_TYPE_TENSOR_ROW, NULL, spec->sort_property);
      return GTK_SORTER (gtk_numeric_sorter_new (expr));
    case SORT_METRIC:
      return GTK_SORTER (gtk_custom_sorter_new (compare_metric, (gpointer) spec, NULL));
    case SORT_NONE:
    default:
      return NULL;
    }
}

static QbTensorRow *
tensor_of (QbTensorRow *row)
{
  QbTensorRow *parent = qb_tensor_row_get_parent (row);

  return parent ? parent : row;
}

/* Tensors by the group and the clicked column (ties in model order);
 * an expert's row right under its tensor's, experts in order. */
static int
compare_family (gconstpointer a,
                gconstpointer b,
                gpointer      user_data)
{
  QbLayerTable *self = user_data;
  QbTensorRow *x = (QbTensorRow *) a, *y = (QbTensorRow *) b;
  QbTensorRow *tx = tensor_of (x), *ty = tensor_of (y);
  int ex = qb_tensor_row_get_expert (x), ey = qb_tensor_row_get_expert (y);

  if (tx != ty)
    {
      GtkOrdering o = gtk_sorter_compare (self->row_sorter, tx, ty);
      guint ix = qb_tensor_row_get_index (tx), iy = qb_tensor_row_get_index (ty);

      if (o != GTK_ORDERING_EQUAL)
        return o;
      return ix < iy ? GTK_ORDERING_SMALLER : ix > iy ? GTK_ORDERING_LARGER : GTK_ORDERING_EQUAL;
    }
  return ex < ey ? GTK_ORDERING_SMALLER : ex > ey ? GTK_ORDERING_LARGER : GTK_ORDERING_EQUAL;
}

static void
on_row_sorter_changed (GtkSorter       *sorter,
                       GtkSorterChange  change,
                       QbLayerTable    *self)
{
  gtk_sorter_changed (GTK_SORTER (self->family_sorter), change);
}

/* Tensors outside the blocks (-1) sort before layer 0. */
static int
group_key (QbLayerTable *self,
           QbTensorRow  *row)
{
  switch (self->group_by)
    {
    case QB_GROUP_LAYER:
      return qb_tensor_row_get_layer (row);
    case QB_GROUP_ROLE:
      return qb_tensor_row_get_role (row);
    case QB_GROUP_NONE:
    default:
      return 0;
    }
}

static int
compare_group (gconstpointer a,
               gconstpointer b,
               gpointer      user_data)
{
  QbLayerTable *self = user_data;
  int x = group_key (self, (QbTensorRow *) a);
  int y = group_key (self, (QbTensorRow *) b);

  return x < y ? GTK_ORDERING_SMALLER : x > y ? GTK_ORDERING_LARGER : GTK_ORDERING_EQUAL;
}

static char *
group_name (QbLayerTable *self,
            QbTensorRow  *row)
{
  int layer;

  if (self->group_by == QB_GROUP_ROLE)
    return g_strdup (qb_tensor_row_get_role_name (row));
  layer = qb_tensor_row_get_layer (row);
  return layer < 0 ? g_strdup ("outside") : g_strdup_printf ("layer %d", layer);
}

char *
qb_layer_table_get_group_label (QbLayerTable *self,
                                guint         position)
{
  GListModel *model = G_LIST_MODEL (self->sort_model);
  g_autoptr(QbTensorRow) row = NULL;
  g_autoptr(QbTensorRow) prev = NULL;

  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), NULL);

  if (self->group_by == QB_GROUP_NONE || model == NULL)
    return NULL;
  row = g_list_model_get_item (model, position);
  if (row == NULL)
    return NULL;
  if (position > 0)
    prev = g_list_model_get_item (model, position - 1);
  if (prev && group_key (self, prev) == group_key (self, row))
    return NULL;
  return group_name (self, row);
}

static int
group_slot (QbLayerTable *self,
            QbTensorRow  *row)
{
  return group_key (self, row) + 2;   /* layers start at -1: keep 0 out of the tables */
}

/* Per group: tensors, planned bytes and parameters, over every row of the
 * model (filters do not change a group's total). */
static void
compute_subtotals (QbLayerTable *self)
{
  guint n = self->document ? g_list_model_get_n_items (qb_document_get_rows (self->document)) : 0;

  g_hash_table_remove_all (self->subtotals);
  if (self->group_by == QB_GROUP_NONE)
    return;
  for (guint i = 0; i < n; i++)
    {
      QbTensorRow *row = qb_document_get_row (self->document, i);
      gpointer slot = GINT_TO_POINTER (group_slot (self, row));
      Subtotal *t = g_hash_table_lookup (self->subtotals, slot);

      if (t == NULL)
        {
          t = g_new0 (Subtotal, 1);
          t->first_index = qb_tensor_row_get_index (row);
          g_hash_table_insert (self->subtotals, slot, t);
        }
      t->n++;
      t->params += qb_tensor_row_get_n_params (row);
      t->bytes += qb_tensor_row_get_bytes (row);
      t->first_index = MIN (t->first_index, qb_tensor_row_get_index (row));
    }
}

char *
qb_layer_table_get_group_summary (QbLayerTable *self,
                                  guint         position)
{
  g_autoptr(QbTensorRow) row = NULL;
  g_autofree char *name = qb_layer_table_get_group_label (self, position);
  g_autofree char *size = NULL;
  Subtotal *t;
  gboolean folded;

  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), NULL);

  if (name == NULL || self->subtotals == NULL)
    return g_steal_pointer (&name);
  row = g_list_model_get_item (G_LIST_MODEL (self->sort_model), position);
  t = g_hash_table_lookup (self->subtotals, GINT_TO_POINTER (group_slot (self, row)));
  if (t == NULL)
    return g_steal_pointer (&name);
  folded = g_hash_table_contains (self->collapsed, GINT_TO_POINTER (group_slot (self, row)));
  size = g_format_size (t->bytes);
  return g_strdup_printf ("%s %s · %u tensor%s · %s · %.2f bpw", folded ? "▸" : "▾", name, t->n,
                          t->n == 1 ? "" : "s", size, t->params > 0 ? t->bytes * 8.0 / t->params : 0);
}

/* The group column grows with its summaries up to this, and its cells
 * cut the rest (in their tooltips in full): wider, it squeezed the
 * tensors' names in a 1024-px window. */
#define GROUP_WIDTH_MAX 240

static int
needed_group_width (QbLayerTable *self,
                    const char   *text)
{
  g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (GTK_WIDGET (self->column_view), text);
  int w;

  pango_layout_get_pixel_size (layout, &w, NULL);
  return MIN ((int) (w * 1.3) + 48, GROUP_WIDTH_MAX);
}

static void
refresh_group_cell (QbLayerTable *self,
                    GtkListItem  *item)
{
  GtkWidget *button = gtk_list_item_get_child (item);
  g_autofree char *label = NULL;

  /* A row of the previous model, on its way out. */
  if (self->draining)
    return;
  label = qb_layer_table_get_group_summary (self, gtk_list_item_get_position (item));

  gtk_label_set_text (GTK_LABEL (gtk_button_get_child (GTK_BUTTON (button))), label ? label : "");
  gtk_widget_set_visible (button, label != NULL);
  if (label && gtk_column_view_column_get_fixed_width (self->group_column) < needed_group_width (self, label))
    {
      /* Wide enough for the summaries (bold, an arrow, the button's padding). */
      int width = needed_group_width (self, label);
      g_object_set_data (G_OBJECT (self->group_column), "qb-width", GINT_TO_POINTER (width));
      gtk_column_view_column_set_fixed_width (self->group_column, width);
    }
  g_object_set_data (G_OBJECT (button), "qb-row", label ? gtk_list_item_get_item (item) : NULL);
  {
    g_autofree char *tip = label ? g_strdup_printf ("%s\nClick to fold or unfold this group", label) : NULL;
    set_cell_tip (button, tip);
  }
}

/* Summaries change without their row moving (folding, new totals). */
static void
refresh_group_cells (QbLayerTable *self)
{
  GHashTableIter iter;
  gpointer item;

  g_hash_table_iter_init (&iter, self->group_items);
  while (g_hash_table_iter_next (&iter, &item, NULL))
    refresh_group_cell (self, item);
}

static void
on_group_clicked (GtkButton    *button,
                  QbLayerTable *self)
{
  QbTensorRow *row = g_object_get_data (G_OBJECT (button), "qb-row");

  if (row)
    qb_layer_table_set_group_collapsed (self, row, !qb_layer_table_get_group_collapsed (self, row));
}

gboolean
qb_layer_table_get_group_collapsed (QbLayerTable *self,
                                    QbTensorRow  *row)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), FALSE);
  return self->group_by != QB_GROUP_NONE
         && g_hash_table_contains (self->collapsed, GINT_TO_POINTER (group_slot (self, row)));
}

void
qb_layer_table_set_group_collapsed (QbLayerTable *self,
                                    QbTensorRow  *row,
                                    gboolean      collapsed)
{
  gpointer slot;

  g_return_if_fail (QB_IS_LAYER_TABLE (self));

  if (self->group_by == QB_GROUP_NONE || row == NULL)
    return;
  slot = GINT_TO_POINTER (group_slot (self, row));
  if (collapsed)
    g_hash_table_add (self->collapsed, slot);
  else
    g_hash_table_remove (self->collapsed, slot);
  gtk_filter_changed (GTK_FILTER (self->layer_role_filter),
                      collapsed ? GTK_FILTER_CHANGE_MORE_STRICT : GTK_FILTER_CHANGE_LESS_STRICT);
  qb_layer_table_refresh_sort (self);
  refresh_group_cells (self);
}

/* Re-sorting replaces every item, which would drop the selection: keep it. */
void
qb_layer_table_refresh_sort (QbLayerTable *self)
{
  g_autoptr(GPtrArray) selected = qb_layer_table_get_selected_rows (self);
  g_autoptr(QbTensorRow) focused = self->focused ? g_object_ref (self->focused) : NULL;
  GListModel *model = G_LIST_MODEL (self->sort_model);
  g_autoptr(GHashTable) wanted = g_hash_table_new (NULL, NULL);
  g_autoptr(GtkBitset) set = gtk_bitset_new_empty ();
  g_autoptr(GtkBitset) mask = NULL;
  guint n;

  gtk_sorter_changed (GTK_SORTER (self->group_sorter), GTK_SORTER_CHANGE_DIFFERENT);
  if (self->draining)
    return;                     /* the pending row is selected later */

  for (guint i = 0; i < selected->len; i++)
    g_hash_table_add (wanted, g_ptr_array_index (selected, i));
  n = g_list_model_get_n_items (model);
  for (guint i = 0; i < n && g_hash_table_size (wanted) > 0; i++)
    {
      g_autoptr(QbTensorRow) row = g_list_model_get_item (model, i);
      if (g_hash_table_contains (wanted, row))
        gtk_bitset_add (set, i);
    }
  /* A selected row sorted past the rows the view has yet: give it all. */
  if (!gtk_bitset_is_empty (set)
      && gtk_bitset_get_maximum (set) >= g_list_model_get_n_items (G_LIST_MODEL (self->view_rows)))
    finish_fill (self);
  mask = gtk_bitset_new_range (0, g_list_model_get_n_items (G_LIST_MODEL (self->view_rows)));
  gtk_selection_model_set_selection (GTK_SELECTION_MODEL (self->selection), set, mask);
  set_focused (self, focused);
}

/* -- filters -------------------------------------------------------------- */

static gboolean
match_layer_role (gpointer item,
                  gpointer user_data)
{
  QbLayerTable *self = user_data;
  QbTensorRow *row = item;
  QbTensorRow *parent = qb_tensor_row_get_parent (row);

  /* An expert's row shows under its tensor's, when asked for. */
  if (parent && !g_hash_table_contains (self->expanded, parent))
    return FALSE;
  if (parent && self->group_by != QB_GROUP_NONE
      && g_hash_table_contains (self->collapsed, GINT_TO_POINTER (group_slot (self, row))))
    return FALSE;
  if (self->layer_filter != QB_LAYER_FILTER_ALL && qb_tensor_row_get_layer (row) != self->layer_filter)
    return FALSE;
  if (self->role_filter != QB_ROLE_FILTER_ALL && (int) qb_tensor_row_get_role (row) != self->role_filter)
    return FALSE;
  /* A folded group shows one row, which carries the group's summary. */
  if (self->group_by != QB_GROUP_NONE
      && g_hash_table_contains (self->collapsed, GINT_TO_POINTER (group_slot (self, row))))
    {
      Subtotal *t = g_hash_table_lookup (self->subtotals, GINT_TO_POINTER (group_slot (self, row)));
      return t == NULL || t->first_index == qb_tensor_row_get_index (row);
    }
  return TRUE;
}

/* Rows shown, experts' rows not counted: they are not tensors. */
static guint
count_shown_tensors (QbLayerTable *self)
{
  GListModel *model = G_LIST_MODEL (self->sort_model);
  guint n = g_list_model_get_n_items (model), experts = 0;

  if (g_hash_table_size (self->expanded) == 0)
    return n;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(QbTensorRow) row = g_list_model_get_item (model, i);
      experts += qb_tensor_row_get_parent (row) != NULL;
    }
  return n - experts;
}

static void
update_count (QbLayerTable *self)
{
  g_autoptr(GtkBitset) sel = NULL;
  g_autofree char *text = NULL;
  guint shown, total, selected;

  if (self->document == NULL)
    {
      gtk_label_set_text (self->count_label, "");
      return;
    }
  shown = count_shown_tensors (self);
  total = g_list_model_get_n_items (qb_document_get_rows (self->document));
  sel = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  selected = self->draining ? self->pending != NULL : (guint) gtk_bitset_get_size (sel);
  if (shown == total)
    text = g_strdup_printf ("%u tensors · %u selected", total, selected);
  else
    text = g_strdup_printf ("%u of %u tensors · %u selected", shown, total, selected);
  gtk_label_set_text (self->count_label, text);
  gtk_widget_set_sensitive (GTK_WIDGET (self->bulk_box), selected > 0);
}

static void
on_search_changed (QbLayerTable *self)
{
  gtk_string_filter_set_search (self->name_filter, gtk_editable_get_text (GTK_EDITABLE (self->search_entry)));
}

static void
on_filter_dropdown (GtkDropDown  *dropdown,
                    GParamSpec   *pspec,
                    QbLayerTable *self)
{
  guint pos = gtk_drop_down_get_selected (dropdown);

  if (self->updating_filters)
    return;
  if (dropdown == self->layer_dropdown && self->layer_choices)
    qb_layer_table_set_layer_filter (self, self->layer_choices[pos]);
  else if (dropdown == self->role_dropdown && self->role_choices)
    qb_layer_table_set_role_filter (self, self->role_choices[pos]);
  else if (dropdown == self->group_dropdown)
    qb_layer_table_set_group_by (self, (QbGroupBy) pos);
}

/* Drop-down entries for the layers and roles the model has. */
static void
fill_filter_choices (QbLayerTable *self)
{
  GListModel *rows = qb_document_get_rows (self->document);
  guint n = g_list_model_get_n_items (rows);
  gboolean roles[QB_ROLE_N_ROLES] = { FALSE };
  gboolean outside = FALSE;
  int max_layer = -1, k = 0;
  g_autoptr(GtkStringList) layers = gtk_string_list_new (NULL);
  g_autoptr(GtkStringList) role_list = gtk_string_list_new (NULL);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(QbTensorRow) row = g_list_model_get_item (rows, i);
      max_layer = MAX (max_layer, qb_tensor_row_get_layer (row));
      outside |= qb_tensor_row_get_layer (row) < 0;
      roles[qb_tensor_row_get_role (row)] = TRUE;
    }

  g_free (self->layer_choices);
  self->layer_choices = g_new (int, max_layer + 3);
  gtk_string_list_append (layers, "All layers");
  self->layer_choices[k++] = QB_LAYER_FILTER_ALL;
  if (outside)
    {
      gtk_string_list_append (layers, "Outside layers");
      self->layer_choices[k++] = QB_LAYER_FILTER_NONE;
    }
  for (int l = 0; l <= max_layer; l++)
    {
      g_autofree char *label = g_strdup_printf ("Layer %d", l);
      gtk_string_list_append (layers, label);
      self->layer_choices[k++] = l;
    }

  g_free (self->role_choices);
  self->role_choices = g_new (int, QB_ROLE_N_ROLES + 1);
  k = 0;
  gtk_string_list_append (role_list, "All roles");
  self->role_choices[k++] = QB_ROLE_FILTER_ALL;
  for (int r = 0; r < QB_ROLE_N_ROLES; r++)
    if (roles[r])
      {
        gtk_string_list_append (role_list, qb_tensor_role_name (r));
        self->role_choices[k++] = r;
      }

  self->updating_filters = TRUE;
  gtk_drop_down_set_model (self->layer_dropdown, G_LIST_MODEL (layers));
  gtk_drop_down_set_model (self->role_dropdown, G_LIST_MODEL (role_list));
  gtk_drop_down_set_selected (self->layer_dropdown, 0);
  gtk_drop_down_set_selected (self->role_dropdown, 0);
  self->updating_filters = FALSE;
  self->layer_filter = QB_LAYER_FILTER_ALL;
  self->role_filter = QB_ROLE_FILTER_ALL;
}

/* -- selection ------------------------------------------------------------ */

static void
set_focused (QbLayerTable *self,
             QbTensorRow  *row)
{
  if (g_set_object (&self->focused, row))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FOCUSED_ROW]);
}

static void
on_selection_changed (GtkSelectionModel *model,
                      guint              position,
                      guint              n_items,
                      QbLayerTable      *self)
{
  g_autoptr(GtkBitset) sel = gtk_selection_model_get_selection (model);
  guint64 size = gtk_bitset_get_size (sel);

  if (self->draining)
    ;                           /* the previous model's rows */
  else if (size == 0)
    set_focused (self, NULL);
  else if (size == 1 || self->focused == NULL)
    {
      g_autoptr(QbTensorRow) row = g_list_model_get_item (G_LIST_MODEL (model), gtk_bitset_get_minimum (sel));
      set_focused (self, row);
    }
  else
    {
      /* Several selected: follow the last click if it is in the changed range. */
      for (guint i = position; i < position + n_items; i++)
        if (gtk_bitset_contains (sel, i))
          {
            g_autoptr(QbTensorRow) row = g_list_model_get_item (G_LIST_MODEL (model), i);
            set_focused (self, row);
            break;
          }
    }
  update_count (self);
}

static void
on_items_changed (GListModel   *model,
                  guint         position,
                  guint         removed,
                  guint         added,
                  QbLayerTable *self)
{
  update_count (self);
}

static void
on_bulk_apply (QbLayerTable *self)
{
  const char *name = qb_format_button_get_format (QB_FORMAT_BUTTON (self->bulk_format));

  if (name)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.set-format", "s", name);
}

static void
on_totals_changed (QbDocument   *document,
                   QbLayerTable *self)
{
  /* Rows may move when sorted by format, bpw or size.  GTK 4.8 does not
   * say which column sorts, and a stable re-sort of a few thousand rows is
   * cheap, so always re-sort. */
  compute_subtotals (self);
  qb_layer_table_refresh_sort (self);
  qb_layer_table_update_columns (self);
  refresh_group_cells (self);
}

/* -- GObject -------------------------------------------------------------- */

static void
qb_layer_table_dispose (GObject *object)
{
  QbLayerTable *self = QB_LAYER_TABLE (object);

  /* The model chain announces its teardown: no one is listening now. */
  if (self->selection)
    g_signal_handlers_disconnect_by_data (self->selection, self);
  if (self->sort_model)
    g_signal_handlers_disconnect_by_data (self->sort_model, self);
  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_clear_object (&self->document);
  g_clear_object (&self->focused);
  g_clear_object (&self->pending);
  stop_fill_tick (self);
  qb_ui_dispose_template (GTK_WIDGET (self), QB_TYPE_LAYER_TABLE);
  g_clear_object (&self->selection);
  g_clear_object (&self->view_rows);
  g_clear_object (&self->sort_model);
  g_clear_pointer (&self->name_items, g_hash_table_unref);
  g_clear_pointer (&self->layer_choices, g_free);
  g_clear_pointer (&self->role_choices, g_free);
  g_clear_pointer (&self->subtotals, g_hash_table_unref);
  g_clear_pointer (&self->collapsed, g_hash_table_unref);
  g_clear_pointer (&self->group_items, g_hash_table_unref);
  g_clear_pointer (&self->expanded, g_hash_table_unref);
  g_clear_object (&self->expert_rows);
  if (self->row_sorter)
    g_signal_handlers_disconnect_by_data (self->row_sorter, self);
  g_clear_object (&self->row_sorter);
  G_OBJECT_CLASS (qb_layer_table_parent_class)->dispose (object);
}

static void
qb_layer_table_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  QbLayerTable *self = QB_LAYER_TABLE (object);

  switch (prop_id)
    {
    case PROP_FOCUSED_ROW:
      g_value_set_object (value, self->focused);
      break;
    case PROP_FILLING:
      g_value_set_boolean (value, qb_layer_table_is_filling (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_layer_table_class_init (QbLayerTableClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_layer_table_dispose;
  object_class->get_property = qb_layer_table_get_property;

  properties[PROP_FOCUSED_ROW] =
    g_param_spec_object ("focused-row", NULL, NULL, QB_TYPE_TENSOR_ROW,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_FILLING] =
    g_param_spec_boolean ("filling", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  qb_ui_ensure_resources ();
  gtk_widget_class_set_template_from_resource (widget_class, "/org/quantbench/Quantbench/ui/qb-layer-table.ui");
  gtk_widget_class_bind_template_child (widget_class, QbLayerTable, search_entry);
  gtk_widget_class_bind_template_child (widget_class, QbLayerTable, layer_dropdown);
  gtk_widget_class_bind_template_child (widget_class, QbLayerTable, role_dropdown);
  gtk_widget_class_bind_template_child (widget_class, QbLayerTable, group_dropdown);
  gtk_widget_class_bind_template_child (widget_class, QbLayerTable, count_label);
  gtk_widget_class_bind_template_child (widget_class, QbLayerTable, bulk_box);
  gtk_widget_class_bind_template_child (widget_class, QbLayerTable, column_view);
  gtk_widget_class_bind_template_callback (widget_class, on_search_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_bulk_apply);
  gtk_widget_class_set_css_name (widget_class, "layertable");
}

/* GTK 4.8 still counts a hidden column's fixed width when it shares out
 * the extra space of a wide view, so the last columns (and the row
 * highlight) stopped short: a hidden column gets no width. */
static void
show_column (GtkColumnViewColumn *column,
             gboolean             shown)
{
  int width = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (column), "qb-width"));

  gtk_column_view_column_set_fixed_width (column, shown ? width : 0);
  gtk_column_view_column_set_visible (column, shown);
}

/* Texts measured per column: the longest by characters (a layout per
 * row of a 1,000-tensor model held the main loop for ~0.2 s). */
#define FIT_SAMPLES 8

static int
compare_length (gconstpointer a,
                gconstpointer b)
{
  glong x = g_utf8_strlen (*(char * const *) a, -1), y = g_utf8_strlen (*(char * const *) b, -1);
  return x > y ? -1 : x < y;
}

/* Widens a column to its widest text, so numbers are never cut (the cells
 * still ellipsize, visibly, when the user narrows the column); at most
 * `most` pixels (0: no limit). */
static void
fit_column (QbLayerTable     *self,
            const ColumnSpec *spec,
            int               extra,
            int               most)
{
  GListModel *rows = qb_document_get_rows (self->document);
  GListModel *cols = gtk_column_view_get_columns (self->column_view);
  guint n = g_list_model_get_n_items (rows);
  g_autoptr(GPtrArray) texts = g_ptr_array_new_full (n, g_free);
  int widest = 0;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(QbTensorRow) row = g_list_model_get_item (rows, i);
      g_ptr_array_add (texts, spec->text ? spec->text (row) : g_strdup (qb_tensor_row_get_format_label (row)));
    }
  g_ptr_array_sort (texts, compare_length);
  for (guint i = 0; i < MIN (texts->len, FIT_SAMPLES); i++)
    {
      g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (GTK_WIDGET (self->column_view),
                                                                      g_ptr_array_index (texts, i));
      int w;

      pango_layout_get_pixel_size (layout, &w, NULL);
      widest = MAX (widest, w);
    }
  for (guint i = 0; i < g_list_model_get_n_items (cols); i++)
    {
      g_autoptr(GtkColumnViewColumn) column = g_list_model_get_item (cols, i);

      if (g_strcmp0 (g_object_get_data (G_OBJECT (column), "qb-id"), spec->id) != 0)
        continue;
      /* Cell padding and a little air around the text. */
      widest = MAX (spec->width, widest + 20 + extra);
      if (most > 0)
        widest = MIN (widest, most);
      g_object_set_data (G_OBJECT (column), "qb-width", GINT_TO_POINTER (widest));
      if (gtk_column_view_column_get_visible (column))
        gtk_column_view_column_set_fixed_width (column, widest);
    }
}

static void
fit_columns (QbLayerTable *self)
{
  for (gsize i = 0; i < G_N_ELEMENTS (columns); i++)
    if (g_str_equal (columns[i].id, "role") || g_str_equal (columns[i].id, "shape")
        || g_str_equal (columns[i].id, "params") || g_str_equal (columns[i].id, "layer")
        || g_str_equal (columns[i].id, "bpw") || g_str_equal (columns[i].id, "size"))
      fit_column (self, &columns[i], 0, 0);
    else if (g_str_equal (columns[i].id, "format"))
      fit_column (self, &columns[i], 40, 0);   /* the arrow, the frame, the warning icon */
    else if (g_str_equal (columns[i].id, "name"))
      fit_column (self, &columns[i], 24, 320);   /* the experts' arrow; still expands */
}

static void
add_columns (QbLayerTable *self)
{
  for (gsize i = 0; i < G_N_ELEMENTS (columns); i++)
    {
      const ColumnSpec *spec = &columns[i];
      GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
      GtkColumnViewColumn *column;
      GtkSorter *sorter;

      g_object_set_data (G_OBJECT (factory), "qb-spec", (gpointer) spec);
      g_signal_connect (factory, "setup", G_CALLBACK (on_setup), self);
      g_signal_connect (factory, "bind", G_CALLBACK (on_bind), self);
      g_signal_connect (factory, "unbind", G_CALLBACK (on_unbind), self);
      g_signal_connect (factory, "teardown", G_CALLBACK (on_teardown), self);

      column = gtk_column_view_column_new (spec->title, factory);
      g_object_set_data (G_OBJECT (column), "qb-id", (gpointer) spec->id);
      gtk_column_view_column_set_resizable (column, spec->kind != CELL_STATUS);
      gtk_column_view_column_set_expand (column, spec->expand);
      gtk_column_view_column_set_fixed_width (column, spec->width);
      g_object_set_data (G_OBJECT (column), "qb-width", GINT_TO_POINTER (spec->width));
      sorter = make_sorter (spec);
      if (sorter)
        {
          gtk_column_view_column_set_sorter (column, sorter);
          g_object_unref (sorter);
        }
      if (spec->kind == CELL_GROUP)
        {
          self->group_column = column;
          show_column (column, FALSE);
        }
      if (g_str_equal (spec->id, "out-err"))
        show_column (column, FALSE);
      gtk_column_view_append_column (self->column_view, column);
      g_object_unref (column);
    }
}

static void
qb_layer_table_init (QbLayerTable *self)
{
  g_autoptr(GtkMultiSorter) sorter = gtk_multi_sorter_new ();
  g_autoptr(GtkEveryFilter) filter = gtk_every_filter_new ();

  gtk_widget_init_template (GTK_WIDGET (self));

  self->layer_filter = QB_LAYER_FILTER_ALL;
  self->role_filter = QB_ROLE_FILTER_ALL;
  self->subtotals = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  self->collapsed = g_hash_table_new (NULL, NULL);
  self->group_items = g_hash_table_new (NULL, NULL);
  self->name_items = g_hash_table_new (NULL, NULL);
  self->expanded = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->expert_rows = g_list_store_new (QB_TYPE_TENSOR_ROW);

  self->bulk_format = qb_format_button_new ();
  gtk_widget_set_tooltip_text (self->bulk_format, "Format for the selected tensors");
  gtk_box_prepend (self->bulk_box, self->bulk_format);

  add_columns (self);

  /* tensors' rows + experts' rows → filter → sort (group key first, then
   * the clicked column, experts under their tensor) → the view's own copy
   * of the first rows, more each frame (start_fill) → selection */
  self->name_filter = gtk_string_filter_new (gtk_property_expression_new (QB_TYPE_TENSOR_ROW, NULL, "name"));
  gtk_string_filter_set_match_mode (self->name_filter, GTK_STRING_FILTER_MATCH_MODE_SUBSTRING);
  gtk_string_filter_set_ignore_case (self->name_filter, TRUE);
  self->layer_role_filter = gtk_custom_filter_new (match_layer_role, self, NULL);
  gtk_multi_filter_append (GTK_MULTI_FILTER (filter), GTK_FILTER (self->name_filter));
  gtk_multi_filter_append (GTK_MULTI_FILTER (filter), GTK_FILTER (self->layer_role_filter));
  self->filter_model = gtk_filter_list_model_new (NULL, GTK_FILTER (g_steal_pointer (&filter)));
  g_object_set_data_full (G_OBJECT (self->filter_model), "qb-sources",
                          g_list_store_new (G_TYPE_LIST_MODEL), g_object_unref);

  self->group_sorter = gtk_custom_sorter_new (compare_group, self, NULL);
  gtk_multi_sorter_append (sorter, GTK_SORTER (self->group_sorter));
  gtk_multi_sorter_append (sorter, GTK_SORTER (g_object_ref (gtk_column_view_get_sorter (self->column_view))));
  self->row_sorter = GTK_SORTER (g_steal_pointer (&sorter));
  g_signal_connect (self->row_sorter, "changed", G_CALLBACK (on_row_sorter_changed), self);
  self->family_sorter = gtk_custom_sorter_new (compare_family, self, NULL);
  self->sort_model = gtk_sort_list_model_new (G_LIST_MODEL (self->filter_model),
                                              GTK_SORTER (self->family_sorter));
  self->view_rows = g_list_store_new (QB_TYPE_TENSOR_ROW);
  self->view_limit = G_MAXUINT;
  g_signal_connect (self->sort_model, "items-changed", G_CALLBACK (on_sorted_changed), self);
  self->selection = gtk_multi_selection_new (G_LIST_MODEL (g_object_ref (self->view_rows)));
  gtk_column_view_set_model (self->column_view, GTK_SELECTION_MODEL (self->selection));
  {
    GtkEventController *keys = gtk_event_controller_key_new ();

    gtk_event_controller_set_propagation_phase (keys, GTK_PHASE_CAPTURE);
    g_signal_connect (keys, "key-pressed", G_CALLBACK (on_view_key), self);
    gtk_widget_add_controller (GTK_WIDGET (self->column_view), keys);
  }

  g_signal_connect (self->selection, "selection-changed", G_CALLBACK (on_selection_changed), self);
  g_signal_connect (self->selection, "items-changed", G_CALLBACK (on_items_changed), self);
  g_signal_connect (self->layer_dropdown, "notify::selected", G_CALLBACK (on_filter_dropdown), self);
  g_signal_connect (self->role_dropdown, "notify::selected", G_CALLBACK (on_filter_dropdown), self);
  g_signal_connect (self->group_dropdown, "notify::selected", G_CALLBACK (on_filter_dropdown), self);
  update_count (self);
}

GtkWidget *
qb_layer_table_new (void)
{
  return g_object_new (QB_TYPE_LAYER_TABLE, NULL);
}

/* The table's rows: the document's, then every expert's row of its 3-D
 * expert tensors (hidden until their tensor is expanded). */
static void
set_rows (QbLayerTable *self,
          QbDocument   *document)
{
  GListStore *sources = g_object_get_data (G_OBJECT (self->filter_model), "qb-sources");
  g_autoptr(GPtrArray) experts = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GtkFlattenListModel) flat = NULL;
  guint n = document ? g_list_model_get_n_items (qb_document_get_rows (document)) : 0;

  for (guint i = 0; i < n; i++)
    {
      QbTensorRow *row = qb_document_get_row (document, i);
      for (guint e = 0; e < qb_tensor_row_get_n_experts (row); e++)
        g_ptr_array_add (experts, qb_tensor_row_new_expert (row, e));
    }
  g_list_store_remove_all (self->expert_rows);
  g_list_store_splice (self->expert_rows, 0, 0, experts->pdata, experts->len);
  g_list_store_remove_all (sources);
  if (document == NULL)
    {
      gtk_filter_list_model_set_model (self->filter_model, NULL);
      return;
    }
  g_list_store_append (sources, qb_document_get_rows (document));
  g_list_store_append (sources, self->expert_rows);
  flat = gtk_flatten_list_model_new (G_LIST_MODEL (g_object_ref (sources)));
  gtk_filter_list_model_set_model (self->filter_model, G_LIST_MODEL (flat));
}

void
qb_layer_table_set_experts_expanded (QbLayerTable *self,
                                     QbTensorRow  *row,
                                     gboolean      expanded)
{
  g_return_if_fail (QB_IS_LAYER_TABLE (self));

  row = tensor_of (row);
  if (qb_tensor_row_get_n_experts (row) == 0 || expanded == qb_layer_table_get_experts_expanded (self, row))
    return;
  if (expanded)
    g_hash_table_add (self->expanded, g_object_ref (row));
  else
    g_hash_table_remove (self->expanded, row);
  gtk_filter_changed (GTK_FILTER (self->layer_role_filter),
                      expanded ? GTK_FILTER_CHANGE_LESS_STRICT : GTK_FILTER_CHANGE_MORE_STRICT);
  /* The tensor's own cell shows the other arrow. */
  g_object_notify (G_OBJECT (row), "highlighted");
}

gboolean
qb_layer_table_get_experts_expanded (QbLayerTable *self,
                                     QbTensorRow  *row)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), FALSE);
  return row != NULL && g_hash_table_contains (self->expanded, tensor_of (row));
}

void
qb_layer_table_set_document (QbLayerTable *self,
                             QbDocument   *document)
{
  g_return_if_fail (QB_IS_LAYER_TABLE (self));

  if (self->document == document)
    return;
  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_set_object (&self->document, document);
  set_focused (self, NULL);
  g_hash_table_remove_all (self->expanded);
  /* The view lets go of the old rows before the new ones come. */
  begin_switch (self);
  set_rows (self, document);
  if (document)
    {
      qb_format_button_set_format (QB_FORMAT_BUTTON (self->bulk_format),
                                   qb_plan_get_default_format (qb_document_get_plan (document)));
      fill_filter_choices (self);
      if (!self->draining)
        fit_columns (self);
      g_hash_table_remove_all (self->collapsed);
      compute_subtotals (self);
      gtk_filter_changed (GTK_FILTER (self->layer_role_filter), GTK_FILTER_CHANGE_DIFFERENT);
      g_signal_connect (document, "totals-changed", G_CALLBACK (on_totals_changed), self);
    }
  if (document || self->draining)
    start_fill (self);
  else
    end_fill (self);
  update_count (self);
}

QbTensorRow *
qb_layer_table_get_focused_row (QbLayerTable *self)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), NULL);
  return self->focused;
}

GPtrArray *
qb_layer_table_get_selected_rows (QbLayerTable *self)
{
  GPtrArray *rows = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GtkBitset) sel = NULL;
  GtkBitsetIter iter;
  guint pos;

  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), rows);

  if (self->draining)
    {
      if (self->pending)
        g_ptr_array_add (rows, g_object_ref (tensor_of (self->pending)));
      return rows;
    }
  sel = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  for (gboolean ok = gtk_bitset_iter_init_first (&iter, sel, &pos); ok;
       ok = gtk_bitset_iter_next (&iter, &pos))
    {
      g_autoptr(QbTensorRow) row = g_list_model_get_item (G_LIST_MODEL (self->selection), pos);
      QbTensorRow *tensor = tensor_of (row);

      /* An expert's row stands for its tensor (once). */
      if (!g_ptr_array_find (rows, tensor, NULL))
        g_ptr_array_add (rows, g_object_ref (tensor));
    }
  return rows;
}

/* GTK 4.8 has no gtk_column_view_scroll_to(); its inner list view has the
 * "list.scroll-to-item" action. */
static void
scroll_to (QbLayerTable *self,
           guint         position)
{
  GtkWidget *list = inner_list (self);

  if (list)
    gtk_widget_activate_action (list, "list.scroll-to-item", "u", position);
}

gboolean
qb_layer_table_select_row (QbLayerTable *self,
                           QbTensorRow  *row)
{
  GListModel *model = G_LIST_MODEL (self->sort_model);
  guint n = g_list_model_get_n_items (model);

  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), FALSE);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(QbTensorRow) item = g_list_model_get_item (model, i);
      if (item == row && self->draining)
        {
          /* Selected when the view has the new model's rows. */
          g_set_object (&self->pending, row);
          set_focused (self, row);
          update_count (self);
          return TRUE;
        }
      if (item == row)
        {
          if (i >= g_list_model_get_n_items (G_LIST_MODEL (self->view_rows)))
            finish_fill (self);
          gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), i, TRUE);
          scroll_to (self, i);
          return TRUE;
        }
    }
  return FALSE;
}

gboolean
qb_layer_table_select_expert (QbLayerTable *self,
                              QbTensorRow  *row,
                              guint         expert)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->expert_rows));

  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), FALSE);

  row = tensor_of (row);
  if (expert >= qb_tensor_row_get_n_experts (row))
    return FALSE;
  qb_layer_table_set_group_collapsed (self, row, FALSE);
  qb_layer_table_set_experts_expanded (self, row, TRUE);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(QbTensorRow) item = g_list_model_get_item (G_LIST_MODEL (self->expert_rows), i);
      if (qb_tensor_row_get_parent (item) == row && qb_tensor_row_get_expert (item) == (int) expert)
        return qb_layer_table_select_row (self, item);
    }
  return FALSE;
}

void
qb_layer_table_select_all (QbLayerTable *self)
{
  g_return_if_fail (QB_IS_LAYER_TABLE (self));
  finish_fill (self);
  gtk_selection_model_select_all (GTK_SELECTION_MODEL (self->selection));
}

void
qb_layer_table_focus_search (QbLayerTable *self)
{
  g_return_if_fail (QB_IS_LAYER_TABLE (self));
  gtk_widget_grab_focus (GTK_WIDGET (self->search_entry));
}

void
qb_layer_table_set_search (QbLayerTable *self,
                           const char   *text)
{
  g_return_if_fail (QB_IS_LAYER_TABLE (self));
  gtk_editable_set_text (GTK_EDITABLE (self->search_entry), text ? text : "");
  /* Apply now rather than after the entry's typing delay. */
  on_search_changed (self);
}

static guint
choice_position (const int *choices,
                 guint      n,
                 int        value)
{
  for (guint i = 0; i < n; i++)
    if (choices[i] == value)
      return i;
  return 0;
}

void
qb_layer_table_set_layer_filter (QbLayerTable *self,
                                 int           layer)
{
  g_return_if_fail (QB_IS_LAYER_TABLE (self));

  self->layer_filter = layer;
  if (self->layer_choices && !self->updating_filters)
    {
      self->updating_filters = TRUE;
      gtk_drop_down_set_selected (self->layer_dropdown,
                                  choice_position (self->layer_choices,
                                                   g_list_model_get_n_items (gtk_drop_down_get_model (self->layer_dropdown)),
                                                   layer));
      self->updating_filters = FALSE;
    }
  gtk_filter_changed (GTK_FILTER (self->layer_role_filter), GTK_FILTER_CHANGE_DIFFERENT);
}

void
qb_layer_table_set_role_filter (QbLayerTable *self,
                                int           role)
{
  g_return_if_fail (QB_IS_LAYER_TABLE (self));

  self->role_filter = role;
  if (self->role_choices && !self->updating_filters)
    {
      self->updating_filters = TRUE;
      gtk_drop_down_set_selected (self->role_dropdown,
                                  choice_position (self->role_choices,
                                                   g_list_model_get_n_items (gtk_drop_down_get_model (self->role_dropdown)),
                                                   role));
      self->updating_filters = FALSE;
    }
  gtk_filter_changed (GTK_FILTER (self->layer_role_filter), GTK_FILTER_CHANGE_DIFFERENT);
}

void
qb_layer_table_set_group_by (QbLayerTable *self,
                             QbGroupBy     group)
{
  g_return_if_fail (QB_IS_LAYER_TABLE (self));

  if (self->group_by == group)
    return;
  self->group_by = group;
  g_hash_table_remove_all (self->collapsed);
  compute_subtotals (self);
  gtk_filter_changed (GTK_FILTER (self->layer_role_filter), GTK_FILTER_CHANGE_DIFFERENT);
  if (gtk_drop_down_get_selected (self->group_dropdown) != (guint) group)
    gtk_drop_down_set_selected (self->group_dropdown, group);
  show_column (self->group_column, group != QB_GROUP_NONE);
  qb_layer_table_refresh_sort (self);
}

QbGroupBy
qb_layer_table_get_group_by (QbLayerTable *self)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), QB_GROUP_NONE);
  return self->group_by;
}

gboolean
qb_layer_table_sort_by (QbLayerTable *self,
                        const char   *column_id,
                        GtkSortType   order)
{
  GListModel *cols = gtk_column_view_get_columns (self->column_view);
  guint n = g_list_model_get_n_items (cols);

  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), FALSE);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GtkColumnViewColumn) column = g_list_model_get_item (cols, i);
      if (g_strcmp0 (g_object_get_data (G_OBJECT (column), "qb-id"), column_id) == 0)
        {
          if (gtk_column_view_column_get_sorter (column) == NULL)
            return FALSE;
          gtk_column_view_sort_by_column (self->column_view, column, order);
          return TRUE;
        }
    }
  return FALSE;
}

GListModel *
qb_layer_table_get_visible_rows (QbLayerTable *self)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), NULL);
  return G_LIST_MODEL (self->sort_model);
}

static GtkColumnViewColumn *
column_by_id (QbLayerTable *self,
              const char   *id)
{
  GListModel *cols = gtk_column_view_get_columns (self->column_view);

  for (guint i = 0; i < g_list_model_get_n_items (cols); i++)
    {
      g_autoptr(GtkColumnViewColumn) column = g_list_model_get_item (cols, i);
      if (g_strcmp0 (g_object_get_data (G_OBJECT (column), "qb-id"), id) == 0)
        return column;
    }
  return NULL;
}

void
qb_layer_table_update_columns (QbLayerTable *self)
{
  GtkColumnViewColumn *column;
  gboolean any = FALSE;
  guint n;

  g_return_if_fail (QB_IS_LAYER_TABLE (self));
  if (self->draining)
    return;                     /* once the previous model's rows are gone */
  n = self->document ? g_list_model_get_n_items (qb_document_get_rows (self->document)) : 0;
  for (guint i = 0; i < n && !any; i++)
    any = !isnan (qb_tensor_row_get_out_rel_err (qb_document_get_row (self->document, i)));
  column = column_by_id (self, "out-err");
  if (column != NULL && gtk_column_view_column_get_visible (column) != any)
    show_column (column, any);
}

gboolean
qb_layer_table_get_column_visible (QbLayerTable *self,
                                   const char   *column_id)
{
  GtkColumnViewColumn *column;

  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), FALSE);
  column = column_by_id (self, column_id);
  return column != NULL && gtk_column_view_column_get_visible (column);
}

guint
qb_layer_table_get_n_rows_built (QbLayerTable *self)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), 0);
  return self->n_rows_built;
}

guint
qb_layer_table_get_n_rows_freed (QbLayerTable *self)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), 0);
  return self->n_rows_freed;
}

guint
qb_layer_table_get_n_rows_bound (QbLayerTable *self)
{
  g_return_val_if_fail (QB_IS_LAYER_TABLE (self), 0);
  return self->n_rows_bound;
}
