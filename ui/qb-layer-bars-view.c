/* SPDX-License-Identifier: MIT */
/* qb-layer-bars-view.c — grouped bars: a measure per layer per experiment. */
#include "qb-layer-bars-view.h"

#include <math.h>

#include "qb-chart.h"

#define MARGIN_LEFT   64.0
#define MARGIN_RIGHT  16.0
#define MARGIN_TOP    30.0
#define MARGIN_BOTTOM 30.0

struct _QbLayerBarsView
{
  GtkWidget  parent_instance;

  guint      n_series;
  guint      n_groups;
  GStrv      series;
  GStrv      groups;
  double    *values;
  char      *measure;
  char      *placeholder;
  double     lo, hi;
  int        hover_series;
  int        hover_group;
};

static void qb_layer_bars_view_chart_init (QbChartInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (QbLayerBarsView, qb_layer_bars_view, GTK_TYPE_WIDGET,
                               G_IMPLEMENT_INTERFACE (QB_TYPE_CHART, qb_layer_bars_view_chart_init))

/* Distinct hues that read on light and dark backgrounds; the first come
 * from the theme. */
static void
series_color (const QbChartPalette *palette,
              guint                 s,
              GdkRGBA              *color)
{
  static const char *extra[] = { "#9141ac", "#2190a4", "#986a44", "#c061cb", "#63452c", "#e5a50a" };

  switch (s)
    {
    case 0: *color = palette->accent; break;
    case 1: *color = palette->contrast; break;
    case 2: *color = palette->success; break;
    case 3: *color = palette->error; break;
    default:
      gdk_rgba_parse (color, extra[(s - 4) % G_N_ELEMENTS (extra)]);
      break;
    }
}

static void
plot_rect (double           width,
           double           height,
           graphene_rect_t *rect)
{
  graphene_rect_init (rect, MARGIN_LEFT, MARGIN_TOP,
                      MAX (1.0, width - MARGIN_LEFT - MARGIN_RIGHT),
                      MAX (1.0, height - MARGIN_TOP - MARGIN_BOTTOM));
}

static double
value_y (QbLayerBarsView       *self,
         const graphene_rect_t *r,
         double                 v)
{
  return r->origin.y + (self->hi - v) / (self->hi - self->lo) * r->size.height;
}

/* Where bar (s, g) is: x and width. */
static void
bar_geometry (QbLayerBarsView       *self,
              const graphene_rect_t *r,
              guint                  s,
              guint                  g,
              double                *x,
              double                *w)
{
  double group_w = r->size.width / self->n_groups;
  double inner = group_w * (self->n_groups > 1 ? 0.8 : 0.5);

  *w = inner / self->n_series;
  *x = r->origin.x + g * group_w + (group_w - inner) / 2 + s * *w;
}

static void
draw_axes (QbLayerBarsView       *self,
           cairo_t               *cr,
           const graphene_rect_t *r,
           const QbChartPalette  *palette)
{
  double ticks[16];
  double bottom = r->origin.y + r->size.height;
  double group_w = r->size.width / self->n_groups;
  guint n, every;

  n = qb_chart_nice_ticks (self->lo, self->hi, MAX (2, (guint) (r->size.height / 45)), ticks, 16);
  for (guint i = 0; i < n; i++)
    {
      double y = round (value_y (self, r, ticks[i])) + 0.5;
      g_autofree char *label = qb_chart_format_value (ticks[i], n > 1 ? ticks[1] - ticks[0] : 0);

      qb_chart_set_color (cr, &palette->fg, ticks[i] == 0 ? 0.4 : 0.10);
      cairo_move_to (cr, r->origin.x, y);
      cairo_line_to (cr, r->origin.x + r->size.width, y);
      cairo_stroke (cr);
      qb_chart_set_color (cr, &palette->fg, 0.75);
      qb_chart_text (cr, palette, label, r->origin.x - 6, y, 1.0, 0.5, 0.85);
    }

  /* Label as many groups as fit, evenly. */
  every = MAX (1, (guint) ceil (48.0 / group_w));
  qb_chart_set_color (cr, &palette->fg, 0.75);
  for (guint g = 0; g < self->n_groups; g += every)
    qb_chart_text (cr, palette, self->groups[g], r->origin.x + (g + 0.5) * group_w, bottom + 4, 0.5, 0.0, 0.85);

  qb_chart_set_color (cr, &palette->fg, 0.45);
  cairo_rectangle (cr, r->origin.x + 0.5, r->origin.y + 0.5, r->size.width - 1, r->size.height - 1);
  cairo_stroke (cr);
  if (self->measure)
    {
      cairo_save (cr);
      cairo_translate (cr, 12, r->origin.y + r->size.height / 2);
      cairo_rotate (cr, -G_PI / 2);
      qb_chart_set_color (cr, &palette->fg, 0.85);
      qb_chart_text (cr, palette, self->measure, 0, 0, 0.5, 0.5, 0.9);
      cairo_restore (cr);
    }
}

static void
draw_legend (QbLayerBarsView      *self,
             cairo_t              *cr,
             const QbChartPalette *palette,
             double                width)
{
  double x = MARGIN_LEFT, y = MARGIN_TOP / 2;

  for (guint s = 0; s < self->n_series && x < width - 40; s++)
    {
      GdkRGBA color;

      series_color (palette, s, &color);
      qb_chart_set_color (cr, &color, 0.85);
      cairo_rectangle (cr, x, y - 5, 12, 10);
      cairo_fill (cr);
      qb_chart_set_color (cr, &palette->fg, 0.85);
      x += 16 + qb_chart_text (cr, palette, self->series[s], x + 16, y, 0.0, 0.5, 0.85) + 14;
    }
}

static void
qb_layer_bars_view_draw (QbChart              *chart,
                         cairo_t              *cr,
                         double                width,
                         double                height,
                         const QbChartPalette *palette)
{
  QbLayerBarsView *self = QB_LAYER_BARS_VIEW (chart);
  graphene_rect_t r;
  double zero;

  cairo_set_line_width (cr, 1.0);
  if (self->n_series == 0 || self->n_groups == 0)
    {
      qb_chart_set_color (cr, &palette->fg, 0.55);
      qb_chart_text (cr, palette, self->placeholder ? self->placeholder : "No data",
                     width / 2, height / 2, 0.5, 0.5, 1.0);
      return;
    }
  plot_rect (width, height, &r);
  draw_axes (self, cr, &r, palette);
  zero = value_y (self, &r, CLAMP (0.0, self->lo, self->hi));
  for (guint s = 0; s < self->n_series; s++)
    {
      GdkRGBA color;

      series_color (palette, s, &color);
      for (guint g = 0; g < self->n_groups; g++)
        {
          double v = self->values[s * self->n_groups + g], x, w, y;
          gboolean hovered = (int) s == self->hover_series && (int) g == self->hover_group;

          if (isnan (v))
            continue;
          bar_geometry (self, &r, s, g, &x, &w);
          y = value_y (self, &r, v);
          qb_chart_set_color (cr, &color, hovered ? 1.0 : 0.8);
          cairo_rectangle (cr, x, MIN (y, zero), MAX (w - (w > 3 ? 1 : 0), 0.5), MAX (fabs (zero - y), 1.0));
          cairo_fill (cr);
        }
    }
  draw_legend (self, cr, palette, width);

  if (self->hover_series >= 0 && !palette->for_export)
    {
      g_autofree char *text = qb_layer_bars_view_describe (self, self->hover_series, self->hover_group);
      double x, w;

      bar_geometry (self, &r, self->hover_series, self->hover_group, &x, &w);
      if (text)
        qb_chart_tooltip (cr, palette, text, x + w / 2, r.origin.y + 30, &r);
    }
}

static void
qb_layer_bars_view_chart_init (QbChartInterface *iface)
{
  iface->draw = qb_layer_bars_view_draw;
}

static void
qb_layer_bars_view_snapshot (GtkWidget   *widget,
                             GtkSnapshot *snapshot)
{
  qb_chart_snapshot (QB_CHART (widget), snapshot);
}

static void
on_motion (GtkEventControllerMotion *controller,
           double                    x,
           double                    y,
           QbLayerBarsView          *self)
{
  graphene_rect_t r;
  int hs = -1, hg = -1;

  plot_rect (gtk_widget_get_width (GTK_WIDGET (self)), gtk_widget_get_height (GTK_WIDGET (self)), &r);
  if (self->n_groups > 0 && x >= r.origin.x && x < r.origin.x + r.size.width)
    {
      guint g = (guint) ((x - r.origin.x) / (r.size.width / self->n_groups));
      for (guint s = 0; s < self->n_series && g < self->n_groups; s++)
        {
          double bx, bw;
          bar_geometry (self, &r, s, g, &bx, &bw);
          if (x >= bx && x < bx + bw)
            {
              hs = s;
              hg = g;
            }
        }
    }
  if (hs != self->hover_series || hg != self->hover_group)
    {
      self->hover_series = hs;
      self->hover_group = hg;
      gtk_widget_queue_draw (GTK_WIDGET (self));
    }
}

static void
on_leave (GtkEventControllerMotion *controller,
          QbLayerBarsView          *self)
{
  self->hover_series = self->hover_group = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
clear_data (QbLayerBarsView *self)
{
  g_clear_pointer (&self->series, g_strfreev);
  g_clear_pointer (&self->groups, g_strfreev);
  g_clear_pointer (&self->values, g_free);
  g_clear_pointer (&self->measure, g_free);
  self->n_series = self->n_groups = 0;
}

static void
qb_layer_bars_view_finalize (GObject *object)
{
  QbLayerBarsView *self = QB_LAYER_BARS_VIEW (object);

  clear_data (self);
  g_free (self->placeholder);
  G_OBJECT_CLASS (qb_layer_bars_view_parent_class)->finalize (object);
}

static void
qb_layer_bars_view_measure (GtkWidget      *widget,
                            GtkOrientation  orientation,
                            int             for_size,
                            int            *minimum,
                            int            *natural,
                            int            *minimum_baseline,
                            int            *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 300 : 180;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 640 : 320;
}

static void
qb_layer_bars_view_class_init (QbLayerBarsViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = qb_layer_bars_view_finalize;
  widget_class->snapshot = qb_layer_bars_view_snapshot;
  widget_class->measure = qb_layer_bars_view_measure;
  gtk_widget_class_set_css_name (widget_class, "layerbars");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
qb_layer_bars_view_init (QbLayerBarsView *self)
{
  GtkEventController *controller = gtk_event_controller_motion_new ();

  self->hover_series = self->hover_group = -1;
  g_signal_connect (controller, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (controller, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, "Per-layer comparison",
                                  -1);
}

GtkWidget *
qb_layer_bars_view_new (void)
{
  return g_object_new (QB_TYPE_LAYER_BARS_VIEW, NULL);
}

void
qb_layer_bars_view_set_data (QbLayerBarsView    *self,
                             guint               n_series,
                             const char * const *series,
                             guint               n_groups,
                             const char * const *groups,
                             const double       *values,
                             const char         *measure)
{
  g_autofree char *description = NULL;

  g_return_if_fail (QB_IS_LAYER_BARS_VIEW (self));

  clear_data (self);
  self->hover_series = self->hover_group = -1;
  if (n_series > 0 && n_groups > 0)
    {
      self->n_series = n_series;
      self->n_groups = n_groups;
      self->series = g_strdupv ((char **) series);
      self->groups = g_strdupv ((char **) groups);
      self->values = g_memdup2 (values, sizeof (double) * n_series * n_groups);
      self->measure = g_strdup (measure);
      self->lo = 0;
      self->hi = 0;
      for (guint i = 0; i < n_series * n_groups; i++)
        if (!isnan (values[i]) && !isinf (values[i]))
          {
            self->lo = MIN (self->lo, values[i]);
            self->hi = MAX (self->hi, values[i]);
          }
      if (!(self->hi > self->lo))
        self->hi = self->lo + 1;
      self->hi += (self->hi - self->lo) * 0.05;
    }
  description = g_strdup_printf ("%s of %u experiments over %u groups", measure ? measure : "values",
                                 n_series, n_groups);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, description, -1);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_layer_bars_view_set_placeholder (QbLayerBarsView *self,
                                    const char      *text)
{
  g_return_if_fail (QB_IS_LAYER_BARS_VIEW (self));
  g_free (self->placeholder);
  self->placeholder = g_strdup (text);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

char *
qb_layer_bars_view_describe (QbLayerBarsView *self,
                             guint            series,
                             guint            group)
{
  double v;

  g_return_val_if_fail (QB_IS_LAYER_BARS_VIEW (self), NULL);
  if (series >= self->n_series || group >= self->n_groups)
    return NULL;
  v = self->values[series * self->n_groups + group];
  if (isnan (v))
    return NULL;
  return g_strdup_printf ("%s · %s: %.4g", self->groups[group], self->series[series], v);
}
