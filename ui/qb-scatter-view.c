/* SPDX-License-Identifier: MIT */
/* qb-scatter-view.c — size against error, Pareto front, labels. */
#include "qb-scatter-view.h"

#include <math.h>

#include "qb-chart.h"
#include "qb-experiment.h"

#define MARGIN_LEFT   70.0
#define MARGIN_RIGHT  24.0
#define MARGIN_TOP    28.0
#define MARGIN_BOTTOM 44.0
#define HOVER_RADIUS  14.0

typedef struct {
  char    *label;
  double   x, y;
  gboolean front;
} Point;

struct _QbScatterView
{
  GtkWidget  parent_instance;

  GArray    *points;         /* Point */
  char      *x_title;
  char      *y_title;
  gboolean   y_higher_is_better;
  char      *placeholder;
  char      *note;           /* under the chart: what was left out, and why */
  double     margin_left;    /* as last drawn: wide enough for the y labels */
  double     y_label_width;  /* the widest y tick label, as last drawn */
  double     x_lo, x_hi, y_lo, y_hi;
  int        hover;          /* index into points, or -1 */
};

static void qb_scatter_view_chart_init (QbChartInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (QbScatterView, qb_scatter_view, GTK_TYPE_WIDGET,
                               G_IMPLEMENT_INTERFACE (QB_TYPE_CHART, qb_scatter_view_chart_init))

/* -- drawing -------------------------------------------------------------- */

/* A note takes a line under the x axis title. */
#define NOTE_HEIGHT 18.0

static void
plot_rect (QbScatterView   *self,
           double           width,
           double           height,
           graphene_rect_t *rect)
{
  double left = MAX (MARGIN_LEFT, self->margin_left);
  double bottom = MARGIN_BOTTOM + (self->note ? NOTE_HEIGHT : 0);

  graphene_rect_init (rect, left, MARGIN_TOP,
                      MAX (1.0, width - left - MARGIN_RIGHT),
                      MAX (1.0, height - MARGIN_TOP - bottom));
}

/* The left margin the y tick labels and the rotated title need: the title
 * sits left of the widest label, never on it. */
static double
needed_left_margin (QbScatterView        *self,
                    cairo_t              *cr,
                    double                height,
                    const QbChartPalette *palette)
{
  double ticks[16], widest = 0;
  double plot_h = MAX (1.0, height - MARGIN_TOP - MARGIN_BOTTOM - (self->note ? NOTE_HEIGHT : 0));
  guint n = qb_chart_nice_ticks (self->y_lo, self->y_hi, MAX (2, (guint) (plot_h / 45)), ticks, 16);

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *label = qb_chart_format_value (ticks[i], n > 1 ? ticks[1] - ticks[0] : 0);
      widest = MAX (widest, qb_chart_text_width (cr, palette, label, 0.85));
    }
  self->y_label_width = widest;
  /* 6 px gap to the axis, 8 px between labels and title, the title's line. */
  return MAX (MARGIN_LEFT, widest + 6 + 8 + 18);
}

static double
px (QbScatterView *self, const graphene_rect_t *r, double x)
{
  return r->origin.x + (x - self->x_lo) / (self->x_hi - self->x_lo) * r->size.width;
}

static double
py (QbScatterView *self, const graphene_rect_t *r, double y)
{
  return r->origin.y + (self->y_hi - y) / (self->y_hi - self->y_lo) * r->size.height;
}

static void
draw_axes (QbScatterView         *self,
           cairo_t               *cr,
           const graphene_rect_t *r,
           const QbChartPalette  *palette)
{
  double ticks[16];
  double bottom = r->origin.y + r->size.height;
  guint n;

  n = qb_chart_nice_ticks (self->x_lo, self->x_hi, MAX (2, (guint) (r->size.width / 100)), ticks, 16);
  for (guint i = 0; i < n; i++)
    {
      double x = round (px (self, r, ticks[i])) + 0.5;
      g_autofree char *label = qb_chart_format_value (ticks[i], n > 1 ? ticks[1] - ticks[0] : 0);

      qb_chart_set_color (cr, &palette->fg, 0.10);
      cairo_move_to (cr, x, r->origin.y);
      cairo_line_to (cr, x, bottom);
      cairo_stroke (cr);
      qb_chart_set_color (cr, &palette->fg, 0.75);
      qb_chart_text (cr, palette, label, x, bottom + 4, 0.5, 0.0, 0.85);
    }
  n = qb_chart_nice_ticks (self->y_lo, self->y_hi, MAX (2, (guint) (r->size.height / 45)), ticks, 16);
  for (guint i = 0; i < n; i++)
    {
      double y = round (py (self, r, ticks[i])) + 0.5;
      g_autofree char *label = qb_chart_format_value (ticks[i], n > 1 ? ticks[1] - ticks[0] : 0);

      qb_chart_set_color (cr, &palette->fg, 0.10);
      cairo_move_to (cr, r->origin.x, y);
      cairo_line_to (cr, r->origin.x + r->size.width, y);
      cairo_stroke (cr);
      qb_chart_set_color (cr, &palette->fg, 0.75);
      qb_chart_text (cr, palette, label, r->origin.x - 6, y, 1.0, 0.5, 0.85);
    }
  qb_chart_set_color (cr, &palette->fg, 0.45);
  cairo_rectangle (cr, r->origin.x + 0.5, r->origin.y + 0.5, r->size.width - 1, r->size.height - 1);
  cairo_stroke (cr);

  qb_chart_set_color (cr, &palette->fg, 0.85);
  if (self->x_title)
    qb_chart_text (cr, palette, self->x_title, r->origin.x + r->size.width / 2, bottom + 22, 0.5, 0.0, 0.9);
  if (self->note)
    {
      qb_chart_set_color (cr, &palette->fg, 0.65);
      qb_chart_text (cr, palette, self->note, r->origin.x, bottom + 40, 0.0, 0.0, 0.85);
      qb_chart_set_color (cr, &palette->fg, 0.85);
    }
  if (self->y_title)
    {
      cairo_save (cr);
      /* Centred on the space left of the widest tick label. */
      cairo_translate (cr, MAX (9.0, (r->origin.x - 6 - self->y_label_width - 8) / 2),
                       r->origin.y + r->size.height / 2);
      cairo_rotate (cr, -G_PI / 2);
      qb_chart_text (cr, palette, self->y_title, 0, 0, 0.5, 0.5, 0.9);
      cairo_restore (cr);
    }
}

typedef struct {
  double x, y;
} Corner;

static int
compare_corner (const void *a,
                const void *b)
{
  const Corner *p = a, *q = b;
  return (p->x > q->x) - (p->x < q->x);
}

/* The front as a staircase: what is attainable at each size. */
static void
draw_front (QbScatterView         *self,
            cairo_t               *cr,
            const graphene_rect_t *r,
            const QbChartPalette  *palette)
{
  static const double dash[] = { 5.0, 3.0 };
  g_autoptr(GArray) front = g_array_new (FALSE, FALSE, sizeof (Corner));
  gboolean first = TRUE;

  for (guint i = 0; i < self->points->len; i++)
    {
      Point *p = &g_array_index (self->points, Point, i);
      if (p->front)
        {
          Corner corner = { p->x, p->y };
          g_array_append_val (front, corner);
        }
    }
  if (front->len == 0)
    return;
  g_array_sort (front, compare_corner);
  qb_chart_set_color (cr, &palette->success, 0.9);
  cairo_set_line_width (cr, 2.0);
  cairo_set_dash (cr, dash, G_N_ELEMENTS (dash), 0);
  for (guint i = 0; i < front->len; i++)
    {
      Corner *p = &g_array_index (front, Corner, i);
      double x = px (self, r, p->x), y = py (self, r, p->y);

      if (first)
        cairo_move_to (cr, x, y);
      else
        {
          double dummy_x, prev_y;
          cairo_get_current_point (cr, &dummy_x, &prev_y);
          cairo_line_to (cr, x, prev_y);
          cairo_line_to (cr, x, y);
        }
      first = FALSE;
    }
  cairo_stroke (cr);
  cairo_set_dash (cr, NULL, 0, 0);
  cairo_set_line_width (cr, 1.0);
}

static void
draw_points (QbScatterView         *self,
             cairo_t               *cr,
             const graphene_rect_t *r,
             const QbChartPalette  *palette)
{
  for (guint i = 0; i < self->points->len; i++)
    {
      Point *p = &g_array_index (self->points, Point, i);
      double x = px (self, r, p->x), y = py (self, r, p->y);
      g_autofree char *label = g_utf8_strlen (p->label, -1) > 28
                               ? g_strdup_printf ("%.*s…", (int) (g_utf8_offset_to_pointer (p->label, 27) - p->label), p->label)
                               : g_strdup (p->label);

      cairo_new_path (cr);
      cairo_arc (cr, x, y, (int) i == self->hover ? 7 : 5, 0, 2 * G_PI);
      if (p->front)
        {
          qb_chart_set_color (cr, &palette->success, 1.0);
          cairo_fill_preserve (cr);
          qb_chart_set_color (cr, &palette->fg, 0.8);
          cairo_stroke (cr);
        }
      else
        {
          qb_chart_set_color (cr, &palette->bg, 1.0);
          cairo_fill_preserve (cr);
          qb_chart_set_color (cr, &palette->accent, 1.0);
          cairo_set_line_width (cr, 2.0);
          cairo_stroke (cr);
          cairo_set_line_width (cr, 1.0);
        }
      /* Labels sit to the right, or to the left near the right edge. */
      qb_chart_set_color (cr, &palette->fg, p->front ? 1.0 : 0.75);
      if (x > r->origin.x + r->size.width * 0.75)
        qb_chart_text (cr, palette, label, x - 9, y - 4, 1.0, 1.0, 0.85);
      else
        qb_chart_text (cr, palette, label, x + 9, y - 4, 0.0, 1.0, 0.85);
    }
}

static void
draw_hover (QbScatterView         *self,
            cairo_t               *cr,
            const graphene_rect_t *r,
            const QbChartPalette  *palette)
{
  Point *p = &g_array_index (self->points, Point, self->hover);
  g_autofree char *text = qb_scatter_view_describe_point (self, self->hover);

  qb_chart_tooltip (cr, palette, text, px (self, r, p->x), py (self, r, p->y), r);
}

static void
draw_legend (QbScatterView        *self,
             cairo_t              *cr,
             const QbChartPalette *palette)
{
  static const double dash[] = { 5.0, 3.0 };
  double x = MARGIN_LEFT, y = MARGIN_TOP / 2;

  qb_chart_set_color (cr, &palette->success, 0.9);
  cairo_set_line_width (cr, 2.0);
  cairo_set_dash (cr, dash, G_N_ELEMENTS (dash), 0);
  cairo_move_to (cr, x, y);
  cairo_line_to (cr, x + 20, y);
  cairo_stroke (cr);
  cairo_set_dash (cr, NULL, 0, 0);
  cairo_set_line_width (cr, 1.0);
  qb_chart_set_color (cr, &palette->fg, 0.85);
  qb_chart_text (cr, palette, self->y_higher_is_better ? "Pareto front (smaller and higher is better)"
                                                       : "Pareto front (smaller and lower is better)",
                 x + 26, y, 0.0, 0.5, 0.85);
}

static void
qb_scatter_view_draw (QbChart              *chart,
                      cairo_t              *cr,
                      double                width,
                      double                height,
                      const QbChartPalette *palette)
{
  QbScatterView *self = QB_SCATTER_VIEW (chart);
  graphene_rect_t r;

  cairo_set_line_width (cr, 1.0);
  if (self->points->len == 0)
    {
      qb_chart_set_color (cr, &palette->fg, 0.55);
      qb_chart_text (cr, palette, self->placeholder ? self->placeholder : "No experiments to compare",
                     width / 2, height / 2, 0.5, 0.5, 1.0);
      return;
    }
  self->margin_left = needed_left_margin (self, cr, height, palette);
  plot_rect (self, width, height, &r);
  draw_axes (self, cr, &r, palette);
  draw_legend (self, cr, palette);
  cairo_save (cr);
  cairo_rectangle (cr, r.origin.x, r.origin.y, r.size.width, r.size.height);
  cairo_clip (cr);
  draw_front (self, cr, &r, palette);
  cairo_restore (cr);
  draw_points (self, cr, &r, palette);
  if (!palette->for_export && self->hover >= 0 && (guint) self->hover < self->points->len)
    draw_hover (self, cr, &r, palette);
}

static void
qb_scatter_view_chart_init (QbChartInterface *iface)
{
  iface->draw = qb_scatter_view_draw;
}

static void
qb_scatter_view_snapshot (GtkWidget   *widget,
                          GtkSnapshot *snapshot)
{
  qb_chart_snapshot (QB_CHART (widget), snapshot);
}

/* -- interaction ---------------------------------------------------------- */

static void
on_motion (GtkEventControllerMotion *controller,
           double                    x,
           double                    y,
           QbScatterView            *self)
{
  graphene_rect_t r;
  double best = HOVER_RADIUS * HOVER_RADIUS;
  int hover = -1;

  plot_rect (self, gtk_widget_get_width (GTK_WIDGET (self)), gtk_widget_get_height (GTK_WIDGET (self)), &r);
  for (guint i = 0; i < self->points->len; i++)
    {
      Point *p = &g_array_index (self->points, Point, i);
      double dx = px (self, &r, p->x) - x, dy = py (self, &r, p->y) - y;

      if (dx * dx + dy * dy < best)
        {
          best = dx * dx + dy * dy;
          hover = i;
        }
    }
  if (hover != self->hover)
    {
      self->hover = hover;
      gtk_widget_queue_draw (GTK_WIDGET (self));
    }
}

static void
on_leave (GtkEventControllerMotion *controller,
          QbScatterView            *self)
{
  self->hover = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* -- GObject -------------------------------------------------------------- */

static void
clear_point (Point *p)
{
  g_free (p->label);
}

static void
qb_scatter_view_finalize (GObject *object)
{
  QbScatterView *self = QB_SCATTER_VIEW (object);

  g_array_unref (self->points);
  g_free (self->x_title);
  g_free (self->y_title);
  g_free (self->placeholder);
  g_free (self->note);
  G_OBJECT_CLASS (qb_scatter_view_parent_class)->finalize (object);
}

static void
qb_scatter_view_measure (GtkWidget      *widget,
                         GtkOrientation  orientation,
                         int             for_size,
                         int            *minimum,
                         int            *natural,
                         int            *minimum_baseline,
                         int            *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 300 : 200;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 640 : 400;
}

static void
qb_scatter_view_class_init (QbScatterViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = qb_scatter_view_finalize;
  widget_class->snapshot = qb_scatter_view_snapshot;
  widget_class->measure = qb_scatter_view_measure;
  gtk_widget_class_set_css_name (widget_class, "scatter");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
qb_scatter_view_init (QbScatterView *self)
{
  GtkEventController *controller = gtk_event_controller_motion_new ();

  self->points = g_array_new (FALSE, FALSE, sizeof (Point));
  g_array_set_clear_func (self->points, (GDestroyNotify) clear_point);
  self->hover = -1;
  g_signal_connect (controller, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (controller, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, "Experiments: size against error",
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, "No experiments",
                                  -1);
}

GtkWidget *
qb_scatter_view_new (void)
{
  return g_object_new (QB_TYPE_SCATTER_VIEW, NULL);
}

static void
pad_range (double *lo,
           double *hi)
{
  double span = *hi - *lo;

  if (!(span > 0))
    span = fabs (*lo) > 0 ? fabs (*lo) * 0.2 : 1.0;
  *lo -= span * 0.08;
  *hi += span * 0.12;   /* room for labels */
}

static void
update_description (QbScatterView *self)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "%u experiments, %s against %s. On the Pareto front:",
                          self->points->len, self->y_title ? self->y_title : "y",
                          self->x_title ? self->x_title : "x");
  for (guint i = 0; i < self->points->len; i++)
    if (g_array_index (self->points, Point, i).front)
      g_string_append_printf (s, " %s;", g_array_index (self->points, Point, i).label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, s->str, -1);
  g_string_free (s, TRUE);
}

static void
recompute (QbScatterView *self)
{
  guint n = self->points->len;
  g_autofree QbParetoPoint *pareto = g_new0 (QbParetoPoint, MAX (n, 1));

  self->x_lo = self->y_lo = G_MAXDOUBLE;
  self->x_hi = self->y_hi = -G_MAXDOUBLE;
  for (guint i = 0; i < n; i++)
    {
      Point *p = &g_array_index (self->points, Point, i);
      pareto[i] = (QbParetoPoint) { i, p->x, p->y, FALSE };
      self->x_lo = MIN (self->x_lo, p->x);
      self->x_hi = MAX (self->x_hi, p->x);
      self->y_lo = MIN (self->y_lo, p->y);
      self->y_hi = MAX (self->y_hi, p->y);
    }
  /* The store's definition of the front, so the UI and `quantbench
   * experiments` agree. */
  qb_pareto_mark (pareto, n, self->y_higher_is_better);
  for (guint i = 0; i < n; i++)
    g_array_index (self->points, Point, pareto[i].experiment_id).front = pareto[i].on_front;
  if (n > 0)
    {
      pad_range (&self->x_lo, &self->x_hi);
      pad_range (&self->y_lo, &self->y_hi);
    }
  update_description (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_scatter_view_set_points (QbScatterView      *self,
                            const char * const *labels,
                            const double       *x,
                            const double       *y,
                            guint               n)
{
  g_return_if_fail (QB_IS_SCATTER_VIEW (self));

  g_array_set_size (self->points, 0);
  for (guint i = 0; i < n; i++)
    {
      Point p = { g_strdup (labels[i]), x[i], y[i], FALSE };

      if (isnan (x[i]) || isnan (y[i]) || isinf (x[i]) || isinf (y[i]))
        {
          g_free (p.label);
          continue;
        }
      g_array_append_val (self->points, p);
    }
  self->hover = -1;
  recompute (self);
}

void
qb_scatter_view_set_axes (QbScatterView *self,
                          const char    *x_title,
                          const char    *y_title,
                          gboolean       y_higher_is_better)
{
  g_return_if_fail (QB_IS_SCATTER_VIEW (self));

  g_free (self->x_title);
  g_free (self->y_title);
  self->x_title = g_strdup (x_title);
  self->y_title = g_strdup (y_title);
  self->y_higher_is_better = y_higher_is_better;
  recompute (self);
}

void
qb_scatter_view_set_placeholder (QbScatterView *self,
                                 const char    *text)
{
  g_return_if_fail (QB_IS_SCATTER_VIEW (self));
  g_free (self->placeholder);
  self->placeholder = g_strdup (text);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
qb_scatter_view_is_on_front (QbScatterView *self,
                             guint          index)
{
  g_return_val_if_fail (QB_IS_SCATTER_VIEW (self), FALSE);
  return index < self->points->len && g_array_index (self->points, Point, index).front;
}

guint
qb_scatter_view_get_n_points (QbScatterView *self)
{
  g_return_val_if_fail (QB_IS_SCATTER_VIEW (self), 0);
  return self->points->len;
}

char *
qb_scatter_view_describe_point (QbScatterView *self,
                                guint          index)
{
  Point *p;

  g_return_val_if_fail (QB_IS_SCATTER_VIEW (self), NULL);
  if (index >= self->points->len)
    return NULL;
  p = &g_array_index (self->points, Point, index);
  return g_strdup_printf ("%s\n%s: %.4g\n%s: %.4g%s", p->label,
                          self->x_title ? self->x_title : "x", p->x,
                          self->y_title ? self->y_title : "y", p->y,
                          p->front ? "\non the Pareto front" : "");
}

void
qb_scatter_view_set_note (QbScatterView *self,
                          const char    *note)
{
  g_return_if_fail (QB_IS_SCATTER_VIEW (self));
  g_free (self->note);
  self->note = note && *note ? g_strdup (note) : NULL;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

const char *
qb_scatter_view_get_note (QbScatterView *self)
{
  g_return_val_if_fail (QB_IS_SCATTER_VIEW (self), NULL);
  return self->note;
}
