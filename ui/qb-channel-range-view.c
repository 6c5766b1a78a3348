/* SPDX-License-Identifier: MIT */
/* qb-channel-range-view.c — min/max per output channel, outliers marked. */
#include "qb-channel-range-view.h"

#include "qb-tensor-result.h"

#include <math.h>
#include <stdlib.h>

#include "qb-chart.h"

#define MARGIN_LEFT   56.0
#define MARGIN_RIGHT  12.0
#define MARGIN_TOP    26.0
#define MARGIN_BOTTOM 26.0

struct _QbChannelRangeView
{
  GtkWidget    parent_instance;

  guint        n;            /* buckets */
  gint64       n_rows;       /* rows (output channels) they cover */
  float       *min;
  float       *max;
  guint8      *outlier;      /* one flag per channel */
  guint        n_outliers;
  double       lo, hi;       /* value range over all channels */
  char        *placeholder;

  QbChartAxis  axis;         /* the channel axis, in bucket units */
  double       hover_x;
};

static void qb_channel_range_view_chart_init (QbChartInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (QbChannelRangeView, qb_channel_range_view, GTK_TYPE_WIDGET,
                               G_IMPLEMENT_INTERFACE (QB_TYPE_CHART, qb_channel_range_view_chart_init))

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
channel_to_x (QbChannelRangeView    *self,
              const graphene_rect_t *r,
              double                 c)
{
  return r->origin.x + (c - self->axis.lo) / (self->axis.hi - self->axis.lo) * r->size.width;
}

static double
value_to_y (QbChannelRangeView    *self,
            const graphene_rect_t *r,
            double                 v)
{
  return r->origin.y + (self->hi - v) / (self->hi - self->lo) * r->size.height;
}

static int
compare_float (const void *a,
               const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

/* Flags channels whose largest magnitude is far above the median one. */
static void
find_outliers (QbChannelRangeView *self)
{
  g_autofree float *mag = g_new (float, self->n);
  float median;

  for (guint i = 0; i < self->n; i++)
    mag[i] = MAX (fabsf (self->min[i]), fabsf (self->max[i]));
  qsort (mag, self->n, sizeof (float), compare_float);
  median = mag[self->n / 2];

  self->n_outliers = 0;
  for (guint i = 0; i < self->n; i++)
    {
      float m = MAX (fabsf (self->min[i]), fabsf (self->max[i]));
      self->outlier[i] = median > 0 && m > QB_CHANNEL_OUTLIER_FACTOR * median;
      self->n_outliers += self->outlier[i];
    }
}

/* The rows bucket c covers: core's bucketing (qb_channel_rows_per_bucket),
 * or for ranges stored by an older build, which spread rows*n/n_rows,
 * the rows that formula put in it. */
static void
bucket_rows (QbChannelRangeView *self,
             guint               c,
             gint64             *first,
             gint64             *last)
{
  gint64 per = qb_channel_rows_per_bucket (self->n_rows);

  if (self->n == qb_channel_n_buckets (self->n_rows))
    {
      *first = c * per;
      *last = MIN (self->n_rows, (c + 1) * per) - 1;
      return;
    }
  *first = ((gint64) c * self->n_rows + self->n - 1) / self->n;
  *last = (((gint64) c + 1) * self->n_rows + self->n - 1) / self->n - 1;
}

/* Rows in a bucket, when all buckets but the last hold the same number;
 * 0 when they differ. */
static gint64
rows_per_bucket (QbChannelRangeView *self)
{
  if (self->n == qb_channel_n_buckets (self->n_rows))
    return qb_channel_rows_per_bucket (self->n_rows);
  return self->n_rows % self->n == 0 ? self->n_rows / self->n : 0;
}

static void
draw_axes (QbChannelRangeView    *self,
           cairo_t               *cr,
           const graphene_rect_t *r,
           const QbChartPalette  *palette)
{
  double ticks[16];
  double bottom = r->origin.y + r->size.height;
  guint n;

  /* Ticks in rows (the tensor's output channels), whatever the buckets. */
  {
    double rows_per = (double) self->n_rows / self->n;

    n = qb_chart_nice_ticks (self->axis.lo * rows_per, self->axis.hi * rows_per,
                             MAX (2, (guint) (r->size.width / 90)), ticks, G_N_ELEMENTS (ticks));
    for (guint i = 0; i < n; i++)
      {
        double x = round (channel_to_x (self, r, ticks[i] / rows_per)) + 0.5;
        g_autofree char *label = g_strdup_printf ("%.0f", ticks[i]);

        if (x < r->origin.x - 0.5 || x > r->origin.x + r->size.width + 0.5)
          continue;
        qb_chart_set_color (cr, &palette->fg, 0.75);
        qb_chart_text_clamped (cr, palette, label, x, bottom + 4, 0.0, 0.85,
                               0, r->origin.x + r->size.width + MARGIN_RIGHT);
      }
  }

  n = qb_chart_nice_ticks (self->lo, self->hi, MAX (2, (guint) (r->size.height / 40)),
                           ticks, G_N_ELEMENTS (ticks));
  for (guint i = 0; i < n; i++)
    {
      double y = round (value_to_y (self, r, ticks[i])) + 0.5;
      g_autofree char *label = qb_chart_format_value (ticks[i], n > 1 ? ticks[1] - ticks[0] : 0);

      qb_chart_set_color (cr, &palette->fg, ticks[i] == 0 ? 0.35 : 0.10);
      cairo_move_to (cr, r->origin.x, y);
      cairo_line_to (cr, r->origin.x + r->size.width, y);
      cairo_stroke (cr);
      qb_chart_set_color (cr, &palette->fg, 0.75);
      qb_chart_text (cr, palette, label, r->origin.x - 6, y, 1.0, 0.5, 0.85);
    }

  qb_chart_set_color (cr, &palette->fg, 0.45);
  cairo_rectangle (cr, r->origin.x + 0.5, r->origin.y + 0.5, r->size.width - 1, r->size.height - 1);
  cairo_stroke (cr);
}

static void
draw_bar (QbChannelRangeView    *self,
          cairo_t               *cr,
          const graphene_rect_t *r,
          const QbChartPalette  *palette,
          double                 x,
          double                 width,
          float                  lo,
          float                  hi,
          gboolean               outlier)
{
  double top = value_to_y (self, r, hi);

  qb_chart_set_color (cr, outlier ? &palette->error : &palette->accent, outlier ? 1.0 : 0.7);
  cairo_rectangle (cr, x, top, width, MAX (1.0, value_to_y (self, r, lo) - top));
  cairo_fill (cr);
}

/* Zoomed out, channels are drawn per pixel column: a column spans the union
 * of its channels and is an outlier if any of them is.  Zoomed in, each
 * channel gets its own bar.  Outliers are drawn last, on top. */
static void
draw_bars (QbChannelRangeView    *self,
           cairo_t               *cr,
           const graphene_rect_t *r,
           const QbChartPalette  *palette)
{
  double per_px = (self->axis.hi - self->axis.lo) / r->size.width;

  for (int pass = 0; pass < 2; pass++)
    {
      if (per_px <= 1.0)
        {
          double bar = CLAMP (1.0 / per_px - 1.0, 1.0, 12.0);
          guint first = (guint) CLAMP (floor (self->axis.lo), 0, self->n - 1);
          guint last = (guint) CLAMP (ceil (self->axis.hi), 0, self->n - 1);

          for (guint c = first; c <= last; c++)
            if (self->outlier[c] == pass)
              draw_bar (self, cr, r, palette, channel_to_x (self, r, c + 0.5) - bar / 2, bar,
                        self->min[c], self->max[c], pass);
          continue;
        }
      for (int px = 0; px < (int) ceil (r->size.width); px++)
        {
          double c0 = self->axis.lo + px * per_px;
          guint first = (guint) CLAMP (floor (c0), 0, self->n - 1);
          guint last = (guint) CLAMP (ceil (c0 + per_px) - 1, first, self->n - 1);
          float lo = G_MAXFLOAT, hi = -G_MAXFLOAT;
          gboolean outlier = FALSE;

          for (guint c = first; c <= last; c++)
            {
              lo = MIN (lo, self->min[c]);
              hi = MAX (hi, self->max[c]);
              outlier |= self->outlier[c];
            }
          if (outlier == pass)
            draw_bar (self, cr, r, palette, r->origin.x + px, outlier ? 2.0 : 1.0, lo, hi, outlier);
        }
    }
}

static void
draw_title (QbChannelRangeView    *self,
            cairo_t               *cr,
            const graphene_rect_t *r,
            const QbChartPalette  *palette)
{
  g_autofree char *text = qb_channel_range_view_describe_buckets (self);

  qb_chart_set_color (cr, &palette->fg, 0.85);
  qb_chart_text (cr, palette, text, r->origin.x, MARGIN_TOP / 2, 0.0, 0.5, 0.85);
}

static void
draw_hover (QbChannelRangeView    *self,
            cairo_t               *cr,
            const graphene_rect_t *r,
            const QbChartPalette  *palette)
{
  double c = self->axis.lo + (self->hover_x - r->origin.x) / r->size.width * (self->axis.hi - self->axis.lo);
  double x = round (self->hover_x) + 0.5;
  g_autofree char *text = NULL;

  if (self->hover_x < r->origin.x || self->hover_x > r->origin.x + r->size.width || c < 0)
    return;
  text = qb_channel_range_view_describe (self, (guint) c);
  if (text == NULL)
    return;
  qb_chart_set_color (cr, &palette->fg, 0.5);
  cairo_move_to (cr, x, r->origin.y);
  cairo_line_to (cr, x, r->origin.y + r->size.height);
  cairo_stroke (cr);
  qb_chart_tooltip (cr, palette, text, x, r->origin.y + 24, r);
}

static void
qb_channel_range_view_draw (QbChart              *chart,
                            cairo_t              *cr,
                            double                width,
                            double                height,
                            const QbChartPalette *palette)
{
  QbChannelRangeView *self = QB_CHANNEL_RANGE_VIEW (chart);
  graphene_rect_t r;

  cairo_set_line_width (cr, 1.0);
  if (self->n == 0)
    {
      qb_chart_set_color (cr, &palette->fg, 0.55);
      qb_chart_text (cr, palette, self->placeholder ? self->placeholder : "No data",
                     width / 2, height / 2, 0.5, 0.5, 1.0);
      return;
    }
  plot_rect (width, height, &r);
  draw_axes (self, cr, &r, palette);
  cairo_save (cr);
  cairo_rectangle (cr, r.origin.x, r.origin.y, r.size.width, r.size.height);
  cairo_clip (cr);
  draw_bars (self, cr, &r, palette);
  cairo_restore (cr);
  draw_title (self, cr, &r, palette);
  if (!palette->for_export && self->hover_x >= 0)
    draw_hover (self, cr, &r, palette);
}

static void
qb_channel_range_view_chart_init (QbChartInterface *iface)
{
  iface->draw = qb_channel_range_view_draw;
}

static void
qb_channel_range_view_snapshot (GtkWidget   *widget,
                                GtkSnapshot *snapshot)
{
  qb_chart_snapshot (QB_CHART (widget), snapshot);
}

static double
pointer_channel (QbChannelRangeView *self,
                 double              x)
{
  graphene_rect_t r;

  plot_rect (gtk_widget_get_width (GTK_WIDGET (self)), 100, &r);
  return self->axis.lo + (x - r.origin.x) / r.size.width * (self->axis.hi - self->axis.lo);
}

static void
on_scroll (GtkEventControllerScroll *controller,
           double                    dx,
           double                    dy,
           QbChannelRangeView       *self)
{
  double x = self->hover_x >= 0 ? self->hover_x : gtk_widget_get_width (GTK_WIDGET (self)) / 2.0;

  if (self->n == 0 || dy == 0)
    return;
  qb_chart_axis_zoom (&self->axis, pointer_channel (self, x), pow (1.2, -dy));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_drag_begin (GtkGestureDrag     *gesture,
               double              x,
               double              y,
               QbChannelRangeView *self)
{
  qb_chart_axis_drag_begin (&self->axis);
}

static void
on_drag_update (GtkGestureDrag     *gesture,
                double              dx,
                double              dy,
                QbChannelRangeView *self)
{
  graphene_rect_t r;

  plot_rect (gtk_widget_get_width (GTK_WIDGET (self)), 100, &r);
  qb_chart_axis_drag_update (&self->axis, dx / r.size.width);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_click (GtkGestureClick    *gesture,
          int                 n_press,
          double              x,
          double              y,
          QbChannelRangeView *self)
{
  if (n_press == 2)
    qb_channel_range_view_reset_zoom (self);
}

static void
on_motion (GtkEventControllerMotion *controller,
           double                    x,
           double                    y,
           QbChannelRangeView       *self)
{
  self->hover_x = x;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_leave (GtkEventControllerMotion *controller,
          QbChannelRangeView       *self)
{
  self->hover_x = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
clear_ranges (QbChannelRangeView *self)
{
  g_clear_pointer (&self->min, g_free);
  g_clear_pointer (&self->max, g_free);
  g_clear_pointer (&self->outlier, g_free);
  self->n = 0;
  self->n_outliers = 0;
}

static void
qb_channel_range_view_finalize (GObject *object)
{
  QbChannelRangeView *self = QB_CHANNEL_RANGE_VIEW (object);

  clear_ranges (self);
  g_clear_pointer (&self->placeholder, g_free);
  G_OBJECT_CLASS (qb_channel_range_view_parent_class)->finalize (object);
}

static void
qb_channel_range_view_measure (GtkWidget      *widget,
                               GtkOrientation  orientation,
                               int             for_size,
                               int            *minimum,
                               int            *natural,
                               int            *minimum_baseline,
                               int            *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 240 : 140;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 480 : 240;
}

static void
qb_channel_range_view_class_init (QbChannelRangeViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = qb_channel_range_view_finalize;
  widget_class->snapshot = qb_channel_range_view_snapshot;
  widget_class->measure = qb_channel_range_view_measure;
  gtk_widget_class_set_css_name (widget_class, "channelranges");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
qb_channel_range_view_init (QbChannelRangeView *self)
{
  GtkEventController *controller;
  GtkGesture *gesture;

  self->hover_x = -1;
  self->axis.max_zoom = 1e6;   /* down to single channels */

  controller = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
  g_signal_connect (controller, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);

  gesture = gtk_gesture_drag_new ();
  g_signal_connect (gesture, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (gesture, "drag-update", G_CALLBACK (on_drag_update), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (gesture));

  gesture = gtk_gesture_click_new ();
  g_signal_connect (gesture, "pressed", G_CALLBACK (on_click), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (gesture));

  controller = gtk_event_controller_motion_new ();
  g_signal_connect (controller, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (controller, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);

  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, "Per-channel weight ranges",
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, "No data",
                                  -1);
}

GtkWidget *
qb_channel_range_view_new (void)
{
  return g_object_new (QB_TYPE_CHANNEL_RANGE_VIEW, NULL);
}

void
qb_channel_range_view_set_ranges (QbChannelRangeView *self,
                                  const float        *min,
                                  const float        *max,
                                  guint               n,
                                  gint64              n_rows)
{
  g_autofree char *description = NULL;

  g_return_if_fail (QB_IS_CHANNEL_RANGE_VIEW (self));

  clear_ranges (self);
  if (min != NULL && max != NULL && n > 0)
    {
      self->n = n;
      self->n_rows = MAX (n_rows, (gint64) n);
      self->min = g_memdup2 (min, sizeof (float) * n);
      self->max = g_memdup2 (max, sizeof (float) * n);
      self->outlier = g_new0 (guint8, n);
      self->lo = G_MAXDOUBLE;
      self->hi = -G_MAXDOUBLE;
      for (guint i = 0; i < n; i++)
        {
          self->lo = MIN (self->lo, min[i]);
          self->hi = MAX (self->hi, max[i]);
        }
      if (!(self->hi > self->lo))
        {
          self->lo -= 1e-6;
          self->hi += 1e-6;
        }
      {
        /* Room above and below the longest bars. */
        double pad = (self->hi - self->lo) * 0.04;
        self->lo -= pad;
        self->hi += pad;
      }
      find_outliers (self);
      qb_chart_axis_set_data (&self->axis, 0, n, TRUE);
      {
        g_autofree char *buckets = qb_channel_range_view_describe_buckets (self);
        description = g_strdup_printf ("%s; weights from %g to %g", buckets, self->lo, self->hi);
      }
    }
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                  description ? description
                                              : self->placeholder ? self->placeholder : "No data",
                                  -1);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_channel_range_view_set_placeholder (QbChannelRangeView *self,
                                       const char         *text)
{
  g_return_if_fail (QB_IS_CHANNEL_RANGE_VIEW (self));
  g_free (self->placeholder);
  self->placeholder = g_strdup (text);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

guint
qb_channel_range_view_get_n_channels (QbChannelRangeView *self)
{
  g_return_val_if_fail (QB_IS_CHANNEL_RANGE_VIEW (self), 0);
  return self->n;
}

guint
qb_channel_range_view_get_n_outliers (QbChannelRangeView *self)
{
  g_return_val_if_fail (QB_IS_CHANNEL_RANGE_VIEW (self), 0);
  return self->n_outliers;
}

gboolean
qb_channel_range_view_is_outlier (QbChannelRangeView *self,
                                  guint               channel)
{
  g_return_val_if_fail (QB_IS_CHANNEL_RANGE_VIEW (self), FALSE);
  return channel < self->n && self->outlier[channel];
}

void
qb_channel_range_view_reset_zoom (QbChannelRangeView *self)
{
  g_return_if_fail (QB_IS_CHANNEL_RANGE_VIEW (self));
  qb_chart_axis_reset (&self->axis);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

char *
qb_channel_range_view_describe (QbChannelRangeView *self,
                                guint               channel)
{
  gint64 first, last;

  g_return_val_if_fail (QB_IS_CHANNEL_RANGE_VIEW (self), NULL);

  if (channel >= self->n)
    return NULL;
  bucket_rows (self, channel, &first, &last);
  if (first == last)
    return g_strdup_printf ("channel %" G_GINT64_FORMAT ": min %.4g, max %.4g%s", first,
                            self->min[channel], self->max[channel],
                            self->outlier[channel] ? " · outlier" : "");
  return g_strdup_printf ("rows %" G_GINT64_FORMAT "–%" G_GINT64_FORMAT " (%" G_GINT64_FORMAT
                          " channels): min %.4g, max %.4g%s", first, last, last - first + 1,
                          self->min[channel], self->max[channel],
                          self->outlier[channel] ? " · outlier" : "");
}

char *
qb_channel_range_view_describe_buckets (QbChannelRangeView *self)
{
  gint64 per;
  const char *what;

  g_return_val_if_fail (QB_IS_CHANNEL_RANGE_VIEW (self), NULL);

  if (self->n == 0)
    return NULL;
  per = rows_per_bucket (self);
  what = self->n_outliers == 1 ? "" : "s";
  if (self->n == self->n_rows)
    return g_strdup_printf ("min–max per output channel (row) · %u channels · "
                            "%u outlier%s (|w| > %.0f× median)",
                            self->n, self->n_outliers, what, QB_CHANNEL_OUTLIER_FACTOR);
  if (per > 0)
    return g_strdup_printf ("min–max per bucket of %" G_GINT64_FORMAT " rows · %" G_GINT64_FORMAT
                            " rows in %u buckets · %u outlier bucket%s (|w| > %.0f× median)",
                            per, self->n_rows, self->n, self->n_outliers, what,
                            QB_CHANNEL_OUTLIER_FACTOR);
  return g_strdup_printf ("min–max per bucket of %.1f rows on average · %" G_GINT64_FORMAT
                          " rows in %u buckets · %u outlier bucket%s (|w| > %.0f× median)",
                          (double) self->n_rows / self->n, self->n_rows, self->n,
                          self->n_outliers, what, QB_CHANNEL_OUTLIER_FACTOR);
}
