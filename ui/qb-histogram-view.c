/* SPDX-License-Identifier: MIT */
/* qb-histogram-view.c — weight and error histograms with zoom, pan, hover. */
#include "qb-histogram-view.h"

#include <math.h>

#include "qb-chart.h"
#include "qb-format-levels.h"

#define MARGIN_LEFT   66.0      /* tick labels and the rotated axis title */
#define MARGIN_RIGHT  12.0
#define MARGIN_TOP    26.0      /* one legend line; more when it wraps */
#define LEGEND_LINE   16.0
#define MARGIN_BOTTOM 42.0      /* tick labels and the axis title */
#define MAX_ZOOM      4096.0

struct _QbHistogramView
{
  GtkWidget        parent_instance;

  QbHistogramKind  kind;
  QbHistogram     *original;
  QbHistogram     *quantized;
  double          *grid;
  guint            n_grid;
  char            *grid_label;
  char            *placeholder;
  char            *title;        /* the tensor's name, drawn in exports */
  int              natural_height; /* asked for; 0: the default */
  gboolean         log_scale;
  gboolean         difference;   /* quantized − original counts instead of both */
  double           top;          /* the top margin as last drawn (legend lines) */

  QbChartAxis      axis;         /* the value axis */
  double           hover_x;      /* widget x of the pointer, or -1 */
};

static void qb_histogram_view_chart_init (QbChartInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (QbHistogramView, qb_histogram_view, GTK_TYPE_WIDGET,
                               G_IMPLEMENT_INTERFACE (QB_TYPE_CHART, qb_histogram_view_chart_init))

enum {
  PROP_0,
  PROP_LOG_SCALE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* The full value range of the data: both series share bin edges, but be
 * generous if a caller hands two different ranges. */
static gboolean
data_range (QbHistogramView *self,
            double          *lo,
            double          *hi)
{
  const QbHistogram *a = self->original ? self->original : self->quantized;
  const QbHistogram *b = self->quantized ? self->quantized : self->original;

  if (a == NULL)
    return FALSE;
  *lo = MIN (a->lo, b->lo);
  *hi = MAX (a->hi, b->hi);
  return *hi > *lo;
}

static void
plot_rect (double            width,
           double            height,
           double            top,
           graphene_rect_t  *rect)
{
  graphene_rect_init (rect, MARGIN_LEFT, top,
                      MAX (1.0, width - MARGIN_LEFT - MARGIN_RIGHT),
                      MAX (1.0, height - top - MARGIN_BOTTOM));
}

static double
value_to_x (QbHistogramView       *self,
            const graphene_rect_t *r,
            double                 v)
{
  return r->origin.x + (v - self->axis.lo) / (self->axis.hi - self->axis.lo) * r->size.width;
}

static double
x_to_value (QbHistogramView *self,
            double           x,
            double           width)
{
  graphene_rect_t r;

  plot_rect (width, 1000, MARGIN_TOP, &r);
  return self->axis.lo + (x - r.origin.x) / r.size.width * (self->axis.hi - self->axis.lo);
}

static double
count_to_unit (QbHistogramView *self,
               guint64          count)
{
  return self->log_scale ? log10 (1.0 + (double) count) : (double) count;
}

static double
bin_width (const QbHistogram *h)
{
  return (h->hi - h->lo) / h->n_bins;
}

/* Bins of h that overlap the visible range. */
static void
visible_bins (QbHistogramView   *self,
              const QbHistogram *h,
              guint             *first,
              guint             *last)
{
  double w = bin_width (h);
  double f = floor ((self->axis.lo - h->lo) / w);
  double l = ceil ((self->axis.hi - h->lo) / w);

  *first = (guint) CLAMP (f, 0, h->n_bins - 1);
  *last = (guint) CLAMP (l, 0, h->n_bins - 1);
}

static double
visible_max (QbHistogramView   *self,
             const QbHistogram *h)
{
  guint first, last;
  guint64 max = 0;

  if (h == NULL)
    return 0;
  visible_bins (self, h, &first, &last);
  for (guint i = first; i <= last; i++)
    max = MAX (max, h->counts[i]);
  return count_to_unit (self, max);
}

/* One series as a step path along the bottom of the plot. */
static void
path_series (QbHistogramView       *self,
             cairo_t               *cr,
             const graphene_rect_t *r,
             const QbHistogram     *h,
             double                 ymax)
{
  double bottom = r->origin.y + r->size.height;
  double w = bin_width (h);
  guint first, last;

  visible_bins (self, h, &first, &last);
  cairo_move_to (cr, value_to_x (self, r, h->lo + first * w), bottom);
  for (guint i = first; i <= last; i++)
    {
      double x0 = value_to_x (self, r, h->lo + i * w);
      double x1 = value_to_x (self, r, h->lo + (i + 1) * w);
      double y = bottom - count_to_unit (self, h->counts[i]) / ymax * r->size.height;

      cairo_line_to (cr, x0, y);
      cairo_line_to (cr, x1, y);
    }
  cairo_line_to (cr, value_to_x (self, r, h->lo + (last + 1) * w), bottom);
}

/* The difference series, as bars from the zero line (mid-height). */
static void
draw_difference (QbHistogramView       *self,
                 cairo_t               *cr,
                 const graphene_rect_t *r,
                 double                 dmax,
                 const QbChartPalette  *palette)
{
  const QbHistogram *o = self->original, *q = self->quantized;
  double zero = r->origin.y + r->size.height / 2;
  double w = bin_width (o);
  guint first, last;

  visible_bins (self, o, &first, &last);
  qb_chart_set_color (cr, &palette->contrast, 0.8);
  for (guint i = first; i <= last; i++)
    {
      double d = (double) q->counts[i] - (double) o->counts[i];
      double x0 = value_to_x (self, r, o->lo + i * w);
      double x1 = value_to_x (self, r, o->lo + (i + 1) * w);
      double y = zero - d / dmax * (r->size.height / 2);

      if (d != 0)
        cairo_rectangle (cr, x0, MIN (y, zero), MAX (1.0, x1 - x0), fabs (y - zero));
    }
  cairo_fill (cr);
}

static double
visible_difference_max (QbHistogramView *self)
{
  guint first, last;
  double max = 0;

  visible_bins (self, self->original, &first, &last);
  for (guint i = first; i <= last; i++)
    max = MAX (max, fabs ((double) self->quantized->counts[i] - (double) self->original->counts[i]));
  return max > 0 ? max * 1.05 : 1;
}

static void
draw_axes (QbHistogramView       *self,
           cairo_t               *cr,
           const graphene_rect_t *r,
           double                 ymax,
           const QbChartPalette  *palette)
{
  double ticks[16];
  double bottom = r->origin.y + r->size.height;
  guint n;

  /* Value axis. */
  n = qb_chart_nice_ticks (self->axis.lo, self->axis.hi,
                           MAX (2, (guint) (r->size.width / 90)), ticks, G_N_ELEMENTS (ticks));
  for (guint i = 0; i < n; i++)
    {
      double x = round (value_to_x (self, r, ticks[i])) + 0.5;
      g_autofree char *label = qb_chart_format_value (ticks[i], n > 1 ? ticks[1] - ticks[0] : 0);

      qb_chart_set_color (cr, &palette->fg, 0.10);
      cairo_move_to (cr, x, r->origin.y);
      cairo_line_to (cr, x, bottom);
      cairo_stroke (cr);
      qb_chart_set_color (cr, &palette->fg, 0.75);
      qb_chart_text_clamped (cr, palette, label, x, bottom + 4, 0.0, 0.85,
                             0, r->origin.x + r->size.width + MARGIN_RIGHT);
    }

  /* Count axis: 0..ymax, or -ymax..ymax for the difference. */
  {
    double ylo = self->difference ? -ymax : 0;

  n = qb_chart_nice_ticks (ylo, ymax, MAX (2, (guint) (r->size.height / 40)), ticks, G_N_ELEMENTS (ticks));
  for (guint i = 0; i < n; i++)
    {
      double y = round (bottom - (ticks[i] - ylo) / (ymax - ylo) * r->size.height) + 0.5;
      g_autofree char *label = NULL;

      if (self->log_scale)
        label = qb_chart_format_value (pow (10, ticks[i]), 0);
      else
        label = qb_chart_format_value (ticks[i], 0);
      qb_chart_set_color (cr, &palette->fg, 0.10);
      cairo_move_to (cr, r->origin.x, y);
      cairo_line_to (cr, r->origin.x + r->size.width, y);
      cairo_stroke (cr);
      qb_chart_set_color (cr, &palette->fg, 0.75);
      qb_chart_text (cr, palette, label, r->origin.x - 6, y, 1.0, 0.5, 0.85);
    }
  }

  qb_chart_set_color (cr, &palette->fg, 0.45);
  cairo_rectangle (cr, r->origin.x + 0.5, r->origin.y + 0.5, r->size.width - 1, r->size.height - 1);
  cairo_stroke (cr);
}

static void
draw_grid_marks (QbHistogramView       *self,
                 cairo_t               *cr,
                 const graphene_rect_t *r,
                 const QbChartPalette  *palette)
{
  static const double dash[] = { 3.0, 3.0 };
  double bottom = r->origin.y + r->size.height;

  qb_chart_set_color (cr, &palette->contrast, 0.55);
  cairo_set_dash (cr, dash, G_N_ELEMENTS (dash), 0);
  for (guint i = 0; i < self->n_grid; i++)
    {
      double x;

      if (self->grid[i] < self->axis.lo || self->grid[i] > self->axis.hi)
        continue;
      x = round (value_to_x (self, r, self->grid[i])) + 0.5;
      cairo_move_to (cr, x, r->origin.y);
      cairo_line_to (cr, x, bottom);
    }
  cairo_stroke (cr);
  cairo_set_dash (cr, NULL, 0, 0);

  /* Small ticks on the axis, so the grid reads even where bars cover it. */
  qb_chart_set_color (cr, &palette->contrast, 1.0);
  for (guint i = 0; i < self->n_grid; i++)
    {
      double x;

      if (self->grid[i] < self->axis.lo || self->grid[i] > self->axis.hi)
        continue;
      x = value_to_x (self, r, self->grid[i]);
      cairo_move_to (cr, x, bottom);
      cairo_line_to (cr, x - 3, bottom + 4);
      cairo_line_to (cr, x + 3, bottom + 4);
      cairo_close_path (cr);
    }
  cairo_fill (cr);
}

typedef enum {
  MARK_FILL,
  MARK_LINE,
  MARK_DASH,
} Mark;

typedef struct {
  Mark           mark;
  const GdkRGBA *color;
  const char    *text;
} LegendEntry;

static guint
legend_entries (QbHistogramView      *self,
                const QbChartPalette *palette,
                LegendEntry          *out)
{
  guint n = 0;

  if (self->kind == QB_HISTOGRAM_KIND_ERROR)
    {
      out[n++] = (LegendEntry) { MARK_FILL, &palette->error, "error (quantized − original)" };
      return n;
    }
  if (self->difference && self->original && self->quantized)
    {
      out[n++] = (LegendEntry) { MARK_FILL, &palette->contrast, "quantized − original, per bin" };
      return n;
    }
  if (self->original)
    out[n++] = (LegendEntry) { MARK_FILL, &palette->accent, "original" };
  if (self->quantized)
    out[n++] = (LegendEntry) { MARK_LINE, &palette->contrast, "quantized" };
  if (self->n_grid > 0 && self->grid_label)
    out[n++] = (LegendEntry) { MARK_DASH, &palette->contrast, self->grid_label };
  return n;
}

static void
draw_mark (cairo_t           *cr,
           const LegendEntry *e,
           double             x,
           double             y)
{
  static const double dash[] = { 3.0, 3.0 };

  switch (e->mark)
    {
    case MARK_FILL:
      qb_chart_set_color (cr, e->color, 0.45);
      cairo_rectangle (cr, x, y - 5, 14, 10);
      cairo_fill (cr);
      break;
    case MARK_LINE:
      qb_chart_set_color (cr, e->color, 1.0);
      cairo_set_line_width (cr, 2.0);
      cairo_move_to (cr, x, y);
      cairo_line_to (cr, x + 14, y);
      cairo_stroke (cr);
      cairo_set_line_width (cr, 1.0);
      break;
    case MARK_DASH:
    default:
      qb_chart_set_color (cr, e->color, 0.8);
      cairo_set_dash (cr, dash, G_N_ELEMENTS (dash), 0);
      cairo_move_to (cr, x + 7.5, y - 6);
      cairo_line_to (cr, x + 7.5, y + 6);
      cairo_stroke (cr);
      cairo_set_dash (cr, NULL, 0, 0);
      break;
    }
}

/* The legend from (left, y), on as many lines as the width needs: an entry
 * is never cut.  Draws only when draw is set; returns the lines used. */
static guint
layout_legend (QbHistogramView      *self,
               cairo_t              *cr,
               const QbChartPalette *palette,
               double                left,
               double                right,
               double                y,
               gboolean              draw)
{
  LegendEntry entries[4];
  guint n = legend_entries (self, palette, entries), lines = n > 0 ? 1 : 0;
  double x = left;

  for (guint i = 0; i < n; i++)
    {
      double w = 18 + qb_chart_text_width (cr, palette, entries[i].text, 0.85);

      if (x > left && x + w > right)
        {
          x = left;
          y += LEGEND_LINE;
          lines++;
        }
      if (draw)
        {
          draw_mark (cr, &entries[i], x, y);
          qb_chart_set_color (cr, &palette->fg, 0.85);
          qb_chart_text (cr, palette, entries[i].text, x + 18, y, 0.0, 0.5, 0.85);
        }
      x += w + 14;
    }
  return lines;
}

/* Counts of the series beyond the visible range, left and right: the view
 * starts on the bulk and may hide a few far values. */
static void
hidden_counts (QbHistogramView   *self,
               const QbHistogram *h,
               guint64           *left,
               guint64           *right)
{
  double w = bin_width (h);

  *left = *right = 0;
  for (guint i = 0; i < h->n_bins; i++)
    {
      if (h->lo + (i + 1) * w <= self->axis.lo)
        *left += h->counts[i];
      else if (h->lo + i * w >= self->axis.hi)
        *right += h->counts[i];
    }
}

static void
draw_hidden_marks (QbHistogramView       *self,
                   cairo_t               *cr,
                   const graphene_rect_t *r,
                   const QbChartPalette  *palette)
{
  const QbHistogram *h = self->original ? self->original : self->quantized;
  guint64 left, right;

  hidden_counts (self, h, &left, &right);
  qb_chart_set_color (cr, &palette->error, 1.0);
  if (left > 0)
    {
      g_autofree char *text = g_strdup_printf ("◀ %" G_GUINT64_FORMAT " beyond", left);
      qb_chart_text (cr, palette, text, r->origin.x + 4, r->origin.y + 4, 0.0, 0.0, 0.85);
    }
  if (right > 0)
    {
      g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT " beyond ▶", right);
      qb_chart_text (cr, palette, text, r->origin.x + r->size.width - 4, r->origin.y + 4, 1.0, 0.0, 0.85);
    }
}

/* TRUE when the quantized curve lies on the original (within 5 % of the
 * counts): the overlay then shows nothing, the difference does. */
static gboolean
curves_coincide (QbHistogramView *self)
{
  guint64 moved = 0, total = 0;

  if (self->original == NULL || self->quantized == NULL
      || self->original->n_bins != self->quantized->n_bins)
    return FALSE;
  for (guint i = 0; i < self->original->n_bins; i++)
    {
      guint64 a = self->original->counts[i], b = self->quantized->counts[i];
      moved += a > b ? a - b : b - a;
      total += a;
    }
  return total > 0 && moved < 0.05 * total;
}

static void
draw_axis_titles (QbHistogramView       *self,
                  cairo_t               *cr,
                  const graphene_rect_t *r,
                  const QbChartPalette  *palette)
{
  const char *x_title = self->kind == QB_HISTOGRAM_KIND_ERROR ? "error (quantized − original)" : "weight value";
  const char *y_title = self->difference && self->quantized ? "count difference"
                        : self->log_scale ? "count (log scale)" : "count";

  qb_chart_set_color (cr, &palette->fg, 0.85);
  qb_chart_text (cr, palette, x_title, r->origin.x + r->size.width / 2,
                 r->origin.y + r->size.height + 22, 0.5, 0.0, 0.85);
  cairo_save (cr);
  cairo_translate (cr, 10, r->origin.y + r->size.height / 2);
  cairo_rotate (cr, -G_PI / 2);
  qb_chart_text (cr, palette, y_title, 0, 0, 0.5, 0.5, 0.85);
  cairo_restore (cr);
}

static void
draw_hover (QbHistogramView       *self,
            cairo_t               *cr,
            const graphene_rect_t *r,
            const QbChartPalette  *palette)
{
  g_autofree char *text = NULL;
  double x = round (self->hover_x) + 0.5;

  if (self->hover_x < r->origin.x || self->hover_x > r->origin.x + r->size.width)
    return;
  text = qb_histogram_view_describe_value (self, self->axis.lo + (self->hover_x - r->origin.x)
                                           / r->size.width * (self->axis.hi - self->axis.lo));
  if (text == NULL)
    return;
  qb_chart_set_color (cr, &palette->fg, 0.5);
  cairo_move_to (cr, x, r->origin.y);
  cairo_line_to (cr, x, r->origin.y + r->size.height);
  cairo_stroke (cr);
  qb_chart_tooltip (cr, palette, text, x, r->origin.y + 40, r);
}

static void
qb_histogram_view_draw (QbChart              *chart,
                        cairo_t              *cr,
                        double                width,
                        double                height,
                        const QbChartPalette *palette)
{
  QbHistogramView *self = QB_HISTOGRAM_VIEW (chart);
  const GdkRGBA *fill = self->kind == QB_HISTOGRAM_KIND_ERROR ? &palette->error : &palette->accent;
  gboolean difference = self->difference && self->original && self->quantized;
  gboolean titled = palette->for_export && self->title;
  double legend_y = titled ? MARGIN_TOP / 2 + 18 : MARGIN_TOP / 2;
  graphene_rect_t r;
  double ymax;
  guint lines;

  cairo_set_line_width (cr, 1.0);
  if (!qb_histogram_view_has_data (self))
    {
      qb_chart_set_color (cr, &palette->fg, 0.55);
      qb_chart_text (cr, palette, self->placeholder ? self->placeholder : "No data",
                     width / 2, height / 2, 0.5, 0.5, 1.0);
      return;
    }

  /* An exported chart says which tensor it shows. */
  if (titled)
    {
      qb_chart_set_color (cr, &palette->fg, 1.0);
      qb_chart_text (cr, palette, self->title, MARGIN_LEFT, MARGIN_TOP / 2, 0.0, 0.5, 1.0);
    }
  lines = layout_legend (self, cr, palette, MARGIN_LEFT, width - MARGIN_RIGHT, legend_y, FALSE);
  self->top = legend_y - MARGIN_TOP / 2 + MARGIN_TOP + (MAX (lines, 1) - 1) * LEGEND_LINE;
  plot_rect (width, height, self->top, &r);
  if (difference)
    ymax = visible_difference_max (self);
  else
    {
      ymax = MAX (visible_max (self, self->original), visible_max (self, self->quantized));
      if (!(ymax > 0))
        ymax = 1;
      ymax *= 1.05;
    }

  draw_axes (self, cr, &r, ymax, palette);
  draw_axis_titles (self, cr, &r, palette);

  cairo_save (cr);
  cairo_rectangle (cr, r.origin.x, r.origin.y, r.size.width, r.size.height);
  cairo_clip (cr);
  if (difference)
    draw_difference (self, cr, &r, ymax, palette);
  else if (self->original)
    {
      path_series (self, cr, &r, self->original, ymax);
      qb_chart_set_color (cr, fill, 0.35);
      cairo_fill_preserve (cr);
      qb_chart_set_color (cr, fill, 0.9);
      cairo_stroke (cr);
    }
  if (self->n_grid > 0)
    draw_grid_marks (self, cr, &r, palette);
  if (self->quantized && !difference)
    {
      path_series (self, cr, &r, self->quantized, ymax);
      qb_chart_set_color (cr, &palette->contrast, 1.0);
      cairo_set_line_width (cr, 1.5);
      cairo_stroke (cr);
      cairo_set_line_width (cr, 1.0);
    }
  draw_hidden_marks (self, cr, &r, palette);
  if (!difference && self->kind == QB_HISTOGRAM_KIND_WEIGHTS && curves_coincide (self))
    {
      const char *hint = "The curves nearly coincide: Diff (Ctrl+Shift+D) shows what moved";

      /* Under the out-of-view marks, shortened where the plot is narrow. */
      if (qb_chart_text_width (cr, palette, hint, 0.85) > r.size.width - 8)
        hint = "Curves coincide: see Diff";
      double w = qb_chart_text_width (cr, palette, hint, 0.85);

      /* On a backing, so that the curve under it does not cross the words. */
      qb_chart_set_color (cr, &palette->bg, 0.85);
      cairo_rectangle (cr, r.origin.x + (r.size.width - w) / 2 - 4, r.origin.y + 20, w + 8, 18);
      cairo_fill (cr);
      qb_chart_set_color (cr, &palette->fg, 0.75);
      qb_chart_text (cr, palette, hint, r.origin.x + r.size.width / 2, r.origin.y + 22, 0.5, 0.0, 0.85);
    }
  cairo_restore (cr);

  /* Grid ticks sit just under the axis, outside the clip. */
  layout_legend (self, cr, palette, MARGIN_LEFT, width - MARGIN_RIGHT, legend_y, TRUE);
  if (!palette->for_export && self->hover_x >= 0)
    draw_hover (self, cr, &r, palette);
}

static void
qb_histogram_view_chart_init (QbChartInterface *iface)
{
  iface->draw = qb_histogram_view_draw;
}

static void
qb_histogram_view_snapshot (GtkWidget   *widget,
                            GtkSnapshot *snapshot)
{
  qb_chart_snapshot (QB_CHART (widget), snapshot);
}

static void
update_accessible_description (QbHistogramView *self)
{
  g_autofree char *text = NULL;
  const QbHistogram *h = self->original ? self->original : self->quantized;

  if (h == NULL)
    text = g_strdup (self->placeholder ? self->placeholder : "No data");
  else
    text = g_strdup_printf ("%u bins from %g to %g%s%s, %s counts", h->n_bins, h->lo, h->hi,
                            self->quantized && self->original ? ", original and quantized" : "",
                            self->n_grid ? ", quantization grid marked" : "",
                            self->log_scale ? "logarithmic" : "linear");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, text, -1);
}

static void
on_scroll (GtkEventControllerScroll *controller,
           double                    dx,
           double                    dy,
           QbHistogramView          *self)
{
  double value;

  if (!qb_histogram_view_has_data (self) || dy == 0)
    return;
  value = x_to_value (self, self->hover_x >= 0 ? self->hover_x
                                               : gtk_widget_get_width (GTK_WIDGET (self)) / 2.0,
                      gtk_widget_get_width (GTK_WIDGET (self)));
  qb_histogram_view_zoom (self, value, pow (1.2, -dy));
}

static void
on_drag_begin (GtkGestureDrag  *gesture,
               double           x,
               double           y,
               QbHistogramView *self)
{
  qb_chart_axis_drag_begin (&self->axis);
}

static void
on_drag_update (GtkGestureDrag  *gesture,
                double           dx,
                double           dy,
                QbHistogramView *self)
{
  graphene_rect_t r;

  plot_rect (gtk_widget_get_width (GTK_WIDGET (self)), 100, MARGIN_TOP, &r);
  qb_chart_axis_drag_update (&self->axis, dx / r.size.width);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_click (GtkGestureClick *gesture,
          int              n_press,
          double           x,
          double           y,
          QbHistogramView *self)
{
  if (n_press == 2)
    qb_histogram_view_reset_zoom (self);
}

static void
on_motion (GtkEventControllerMotion *controller,
           double                    x,
           double                    y,
           QbHistogramView          *self)
{
  self->hover_x = x;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_leave (GtkEventControllerMotion *controller,
          QbHistogramView          *self)
{
  self->hover_x = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* A few far outliers can stretch the value axis so that the bulk of the
 * weights fills a sliver: start zoomed on the central 99.8 % (with a
 * margin) when that is much narrower.  Zooming out shows everything. */
static void
focus_bulk (QbHistogramView *self)
{
  const QbHistogram *h = self->original ? self->original : self->quantized;
  double lo = qb_histogram_quantile (h, 0.001, FALSE);
  double hi = qb_histogram_quantile (h, 0.999, FALSE);
  double margin = (hi - lo) * 0.15 + (h->hi - h->lo) / h->n_bins;

  if (qb_histogram_total (h) == 0 || hi - lo + 2 * margin > 0.6 * (h->hi - h->lo))
    return;
  qb_chart_axis_set_view (&self->axis, lo - margin, hi + margin);
}

static void
qb_histogram_view_finalize (GObject *object)
{
  QbHistogramView *self = QB_HISTOGRAM_VIEW (object);

  g_clear_pointer (&self->original, qb_histogram_free);
  g_clear_pointer (&self->quantized, qb_histogram_free);
  g_clear_pointer (&self->grid, g_free);
  g_clear_pointer (&self->grid_label, g_free);
  g_clear_pointer (&self->placeholder, g_free);
  g_clear_pointer (&self->title, g_free);
  G_OBJECT_CLASS (qb_histogram_view_parent_class)->finalize (object);
}

static void
qb_histogram_view_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  QbHistogramView *self = QB_HISTOGRAM_VIEW (object);

  switch (prop_id)
    {
    case PROP_LOG_SCALE:
      g_value_set_boolean (value, self->log_scale);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_histogram_view_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  QbHistogramView *self = QB_HISTOGRAM_VIEW (object);

  switch (prop_id)
    {
    case PROP_LOG_SCALE:
      qb_histogram_view_set_log_scale (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_histogram_view_measure (GtkWidget      *widget,
                           GtkOrientation  orientation,
                           int             for_size,
                           int            *minimum,
                           int            *natural,
                           int            *minimum_baseline,
                           int            *natural_baseline)
{
  QbHistogramView *self = QB_HISTOGRAM_VIEW (widget);

  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 240 : 140;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 480
             : self->natural_height > 0 ? MAX (self->natural_height, *minimum) : 240;
}

void
qb_histogram_view_set_natural_height (QbHistogramView *self,
                                      int              height)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));
  self->natural_height = height;
  gtk_widget_queue_resize (GTK_WIDGET (self));
}

static void
qb_histogram_view_class_init (QbHistogramViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = qb_histogram_view_finalize;
  object_class->get_property = qb_histogram_view_get_property;
  object_class->set_property = qb_histogram_view_set_property;
  widget_class->snapshot = qb_histogram_view_snapshot;
  widget_class->measure = qb_histogram_view_measure;

  properties[PROP_LOG_SCALE] =
    g_param_spec_boolean ("log-scale", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_css_name (widget_class, "histogram");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
qb_histogram_view_init (QbHistogramView *self)
{
  GtkEventController *controller;
  GtkGesture *gesture;

  self->hover_x = -1;
  self->axis.max_zoom = MAX_ZOOM;

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

  update_accessible_description (self);
}

GtkWidget *
qb_histogram_view_new (QbHistogramKind kind)
{
  QbHistogramView *self = g_object_new (QB_TYPE_HISTOGRAM_VIEW, NULL);

  self->kind = kind;
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  kind == QB_HISTOGRAM_KIND_ERROR ? "Quantization error histogram"
                                                                  : "Weight histogram", -1);
  return GTK_WIDGET (self);
}

const QbHistogram *
qb_histogram_view_get_histogram (QbHistogramView *self)
{
  g_return_val_if_fail (QB_IS_HISTOGRAM_VIEW (self), NULL);
  return self->original;
}

void
qb_histogram_view_set_histograms (QbHistogramView   *self,
                                  const QbHistogram *original,
                                  const QbHistogram *quantized)
{
  double lo, hi;

  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));

  g_clear_pointer (&self->original, qb_histogram_free);
  g_clear_pointer (&self->quantized, qb_histogram_free);
  self->original = qb_histogram_copy (original);
  self->quantized = qb_histogram_copy (quantized);

  /* Keep the zoom when the same range comes back (a result arriving for
   * the tensor on screen); reset it for a different tensor. */
  if (data_range (self, &lo, &hi))
    {
      gboolean same = lo == self->axis.data_lo && hi == self->axis.data_hi;

      qb_chart_axis_set_data (&self->axis, lo, hi, TRUE);
      if (!same)
        focus_bulk (self);
    }
  update_accessible_description (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_histogram_view_set_grid (QbHistogramView *self,
                            const double    *levels,
                            guint            n_levels,
                            const char      *label)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));

  g_clear_pointer (&self->grid, g_free);
  g_clear_pointer (&self->grid_label, g_free);
  self->n_grid = levels ? n_levels : 0;
  if (self->n_grid > 0)
    self->grid = g_memdup2 (levels, sizeof (double) * n_levels);
  self->grid_label = g_strdup (label);
  update_accessible_description (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_histogram_view_set_placeholder (QbHistogramView *self,
                                   const char      *text)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));

  g_free (self->placeholder);
  self->placeholder = g_strdup (text);
  update_accessible_description (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_histogram_view_set_log_scale (QbHistogramView *self,
                                 gboolean         log_scale)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));

  log_scale = !!log_scale;
  if (self->log_scale == log_scale)
    return;
  self->log_scale = log_scale;
  update_accessible_description (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOG_SCALE]);
}

gboolean
qb_histogram_view_get_log_scale (QbHistogramView *self)
{
  g_return_val_if_fail (QB_IS_HISTOGRAM_VIEW (self), FALSE);
  return self->log_scale;
}

void
qb_histogram_view_set_range (QbHistogramView *self,
                             double           lo,
                             double           hi)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));

  qb_chart_axis_set_view (&self->axis, lo, hi);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_histogram_view_get_range (QbHistogramView *self,
                             double          *lo,
                             double          *hi)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));
  *lo = self->axis.lo;
  *hi = self->axis.hi;
}

void
qb_histogram_view_reset_zoom (QbHistogramView *self)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));
  qb_chart_axis_reset (&self->axis);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_histogram_view_zoom (QbHistogramView *self,
                        double           value,
                        double           factor)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));

  if (!qb_histogram_view_has_data (self))
    return;
  qb_chart_axis_zoom (&self->axis, value, factor);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static gboolean
bin_of (const QbHistogram *h,
        double             value,
        guint             *bin)
{
  double pos;

  if (h == NULL)
    return FALSE;
  pos = (value - h->lo) / bin_width (h);
  if (!(pos >= 0) || pos >= h->n_bins)
    return FALSE;
  *bin = (guint) pos;
  return TRUE;
}

char *
qb_histogram_view_describe_value (QbHistogramView *self,
                                  double           value)
{
  const QbHistogram *h = self->original ? self->original : self->quantized;
  GString *s;
  guint bin;
  double w;

  g_return_val_if_fail (QB_IS_HISTOGRAM_VIEW (self), NULL);

  if (!bin_of (h, value, &bin))
    return NULL;
  w = bin_width (h);
  s = g_string_new (NULL);
  g_string_append_printf (s, "[%.4g, %.4g)", h->lo + bin * w, h->lo + (bin + 1) * w);
  if (self->kind == QB_HISTOGRAM_KIND_ERROR)
    g_string_append_printf (s, "\nerrors: %" G_GUINT64_FORMAT, h->counts[bin]);
  else
    {
      if (self->original)
        g_string_append_printf (s, "\noriginal: %" G_GUINT64_FORMAT, self->original->counts[bin]);
      if (self->quantized && bin_of (self->quantized, value, &bin))
        g_string_append_printf (s, "\nquantized: %" G_GUINT64_FORMAT, self->quantized->counts[bin]);
    }
  return g_string_free (s, FALSE);
}

gboolean
qb_histogram_view_has_data (QbHistogramView *self)
{
  g_return_val_if_fail (QB_IS_HISTOGRAM_VIEW (self), FALSE);
  return self->original != NULL || self->quantized != NULL;
}

void
qb_histogram_view_set_title (QbHistogramView *self,
                             const char      *title)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));
  g_free (self->title);
  self->title = g_strdup (title);
}

void
qb_histogram_view_set_difference (QbHistogramView *self,
                                  gboolean         difference)
{
  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));
  self->difference = !!difference;
  update_accessible_description (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
qb_histogram_view_get_difference (QbHistogramView *self)
{
  g_return_val_if_fail (QB_IS_HISTOGRAM_VIEW (self), FALSE);
  return self->difference;
}

void
qb_histogram_view_get_hidden (QbHistogramView *self,
                              guint64         *left,
                              guint64         *right)
{
  const QbHistogram *h;

  g_return_if_fail (QB_IS_HISTOGRAM_VIEW (self));
  h = self->original ? self->original : self->quantized;
  *left = *right = 0;
  if (h)
    hidden_counts (self, h, left, right);
}

gboolean
qb_histogram_view_curves_coincide (QbHistogramView *self)
{
  g_return_val_if_fail (QB_IS_HISTOGRAM_VIEW (self), FALSE);
  return curves_coincide (self);
}
