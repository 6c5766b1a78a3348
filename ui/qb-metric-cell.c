/* SPDX-License-Identifier: MIT */
/* qb-metric-cell.c — a right-aligned number over a thin quality bar. */
#include "qb-metric-cell.h"

#include <math.h>

#define BAR_HEIGHT 3.0
#define BAR_WIDTH  44.0

struct _QbMetricCell
{
  GtkWidget    parent_instance;

  char        *text;
  double       fraction;
  PangoLayout *layout;
};

G_DEFINE_FINAL_TYPE (QbMetricCell, qb_metric_cell, GTK_TYPE_WIDGET)

static PangoLayout *
ensure_layout (QbMetricCell *self)
{
  if (self->layout == NULL)
    {
      PangoAttrList *attrs = pango_attr_list_new ();

      self->layout = gtk_widget_create_pango_layout (GTK_WIDGET (self), self->text ? self->text : "");
      pango_attr_list_insert (attrs, pango_attr_font_features_new ("tnum"));
      pango_layout_set_attributes (self->layout, attrs);
      pango_attr_list_unref (attrs);
    }
  return self->layout;
}

static void
qb_metric_cell_measure (GtkWidget      *widget,
                        GtkOrientation  orientation,
                        int             for_size,
                        int            *minimum,
                        int            *natural,
                        int            *minimum_baseline,
                        int            *natural_baseline)
{
  QbMetricCell *self = QB_METRIC_CELL (widget);
  int w, h;

  pango_layout_get_pixel_size (ensure_layout (self), &w, &h);
  if (orientation == GTK_ORIENTATION_HORIZONTAL)
    *minimum = *natural = MAX (w, (int) BAR_WIDTH);
  else
    *minimum = *natural = h + (int) BAR_HEIGHT + 1;
}

static void
qb_metric_cell_snapshot (GtkWidget   *widget,
                         GtkSnapshot *snapshot)
{
  QbMetricCell *self = QB_METRIC_CELL (widget);
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);
  PangoLayout *layout = ensure_layout (self);
  GdkRGBA color, bar;
  int w, h;

  G_GNUC_BEGIN_IGNORE_DEPRECATIONS   /* gtk_widget_get_color() is 4.10+ */
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &color);
  if (!gtk_style_context_lookup_color (gtk_widget_get_style_context (widget), "theme_selected_bg_color", &bar))
    bar = color;
  G_GNUC_END_IGNORE_DEPRECATIONS

  pango_layout_get_pixel_size (layout, &w, &h);
  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (width - w, (height - h - BAR_HEIGHT - 1) / 2));
  gtk_snapshot_append_layout (snapshot, layout, &color);
  gtk_snapshot_restore (snapshot);

  if (!isnan (self->fraction))
    {
      double bx = width - BAR_WIDTH, by = (height + h - BAR_HEIGHT - 1) / 2 + 1;
      GdkRGBA trough = color;

      trough.alpha *= 0.15;
      gtk_snapshot_append_color (snapshot, &trough, &GRAPHENE_RECT_INIT (bx, by, BAR_WIDTH, BAR_HEIGHT));
      gtk_snapshot_append_color (snapshot, &bar,
                                 &GRAPHENE_RECT_INIT (bx, by, BAR_WIDTH * CLAMP (self->fraction, 0, 1), BAR_HEIGHT));
    }
}

static void
qb_metric_cell_css_changed (GtkWidget         *widget,
                            GtkCssStyleChange *change)
{
  QbMetricCell *self = QB_METRIC_CELL (widget);

  GTK_WIDGET_CLASS (qb_metric_cell_parent_class)->css_changed (widget, change);
  /* Fonts may have changed: lay out again. */
  g_clear_object (&self->layout);
  gtk_widget_queue_resize (widget);
}

static void
qb_metric_cell_finalize (GObject *object)
{
  QbMetricCell *self = QB_METRIC_CELL (object);

  g_free (self->text);
  g_clear_object (&self->layout);
  G_OBJECT_CLASS (qb_metric_cell_parent_class)->finalize (object);
}

static void
qb_metric_cell_class_init (QbMetricCellClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = qb_metric_cell_finalize;
  widget_class->measure = qb_metric_cell_measure;
  widget_class->snapshot = qb_metric_cell_snapshot;
  widget_class->css_changed = qb_metric_cell_css_changed;
  gtk_widget_class_set_css_name (widget_class, "metriccell");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_LABEL);
}

static void
qb_metric_cell_init (QbMetricCell *self)
{
  self->fraction = NAN;
}

GtkWidget *
qb_metric_cell_new (void)
{
  return g_object_new (QB_TYPE_METRIC_CELL, NULL);
}

void
qb_metric_cell_set_value (QbMetricCell *self,
                          const char   *text,
                          double        fraction)
{
  g_return_if_fail (QB_IS_METRIC_CELL (self));

  if (g_strcmp0 (self->text, text) != 0)
    {
      g_free (self->text);
      self->text = g_strdup (text);
      if (self->layout)
        pango_layout_set_text (self->layout, text ? text : "", -1);
      gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      text ? text : "", -1);
      gtk_widget_queue_resize (GTK_WIDGET (self));
    }
  if (!(self->fraction == fraction || (isnan (self->fraction) && isnan (fraction))))
    {
      self->fraction = fraction;
      gtk_widget_queue_draw (GTK_WIDGET (self));
    }
}

const char *
qb_metric_cell_get_text (QbMetricCell *self)
{
  g_return_val_if_fail (QB_IS_METRIC_CELL (self), NULL);
  return self->text;
}
