/* SPDX-License-Identifier: MIT */
/* qb-chart.c — the chart interface: one draw function for screen and file. */
#include "qb-chart.h"

#include <math.h>
#include <cairo-pdf.h>
#include <cairo-svg.h>

G_DEFINE_INTERFACE (QbChart, qb_chart, GTK_TYPE_WIDGET)

static void
qb_chart_default_init (QbChartInterface *iface)
{
}

void
qb_chart_draw (QbChart              *chart,
               cairo_t              *cr,
               double                width,
               double                height,
               const QbChartPalette *palette)
{
  QbChartInterface *iface;

  g_return_if_fail (QB_IS_CHART (chart));
  iface = QB_CHART_GET_IFACE (chart);
  cairo_save (cr);
  iface->draw (chart, cr, width, height, palette);
  cairo_restore (cr);
}

/* Named colours of the theme: libadwaita-style names first, then GTK 4.8's
 * built-in theme's.  GTK has no replacement for the style context lookup;
 * it is deprecated from 4.10 on but still works. */
static void
lookup_color (GtkWidget  *widget,
              const char *name,
              const char *fallback_name,
              const char *fallback,
              GdkRGBA    *out)
{
  GtkStyleContext *context;
  gboolean found;

  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  context = gtk_widget_get_style_context (widget);
  found = gtk_style_context_lookup_color (context, name, out)
          || (fallback_name && gtk_style_context_lookup_color (context, fallback_name, out));
  G_GNUC_END_IGNORE_DEPRECATIONS
  if (!found)
    gdk_rgba_parse (out, fallback);
}

static double
luminance (const GdkRGBA *c)
{
  return 0.299 * c->red + 0.587 * c->green + 0.114 * c->blue;
}

/* Mixes a colour toward white. */
static void
lighten (GdkRGBA *c,
         double   amount)
{
  c->red += (1 - c->red) * amount;
  c->green += (1 - c->green) * amount;
  c->blue += (1 - c->blue) * amount;
}

static gboolean
is_dark (const GdkRGBA *fg)
{
  /* Light text means a dark background. */
  return luminance (fg) > 0.5;
}

void
qb_chart_palette_init (QbChartPalette *palette,
                       GtkWidget      *widget)
{
  PangoContext *context = gtk_widget_get_pango_context (widget);
  gboolean dark;

#if GTK_CHECK_VERSION (4, 10, 0)
  gtk_widget_get_color (widget, &palette->fg);
#else
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &palette->fg);
#endif
  dark = is_dark (&palette->fg);
  lookup_color (widget, "view_bg_color", "theme_base_color", dark ? "#1e1e1e" : "#ffffff", &palette->bg);
  lookup_color (widget, "accent_color", "theme_selected_bg_color", dark ? "#78aeed" : "#1c71d8",
                &palette->accent);
  /* A selection colour made for white text is too dark to draw with on a
   * dark background. */
  if (dark && luminance (&palette->accent) < 0.45)
    lighten (&palette->accent, 0.45);
  /* The quantized series needs to stand out against the accent fill in
   * both styles: orange does against blue. */
  gdk_rgba_parse (&palette->contrast, dark ? "#ffa348" : "#c64600");
  lookup_color (widget, "error_color", NULL, dark ? "#ff7b63" : "#c01c28", &palette->error);
  lookup_color (widget, "success_color", NULL, dark ? "#8ff0a4" : "#1b8553", &palette->success);
  palette->font = pango_font_description_copy (pango_context_get_font_description (context));
  palette->for_export = FALSE;
}

void
qb_chart_palette_clear (QbChartPalette *palette)
{
  g_clear_pointer (&palette->font, pango_font_description_free);
}

void
qb_chart_snapshot (QbChart     *chart,
                   GtkSnapshot *snapshot)
{
  GtkWidget *widget = GTK_WIDGET (chart);
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);
  QbChartPalette palette;
  cairo_t *cr;

  if (width <= 0 || height <= 0)
    return;
  qb_chart_palette_init (&palette, widget);
  cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  qb_chart_draw (chart, cr, width, height, &palette);
  cairo_destroy (cr);
  qb_chart_palette_clear (&palette);
}

gboolean
qb_chart_format_from_path (const char    *path,
                           QbChartFormat *format)
{
  g_autofree char *lower = g_ascii_strdown (path, -1);

  if (g_str_has_suffix (lower, ".png"))
    *format = QB_CHART_FORMAT_PNG;
  else if (g_str_has_suffix (lower, ".svg"))
    *format = QB_CHART_FORMAT_SVG;
  else if (g_str_has_suffix (lower, ".pdf"))
    *format = QB_CHART_FORMAT_PDF;
  else
    return FALSE;
  return TRUE;
}

static gboolean
check_surface (cairo_surface_t *surface,
               const char      *path,
               GError         **error)
{
  cairo_status_t status = cairo_surface_status (surface);

  if (status == CAIRO_STATUS_SUCCESS)
    return TRUE;
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
               "Could not write chart to “%s”: %s", path, cairo_status_to_string (status));
  return FALSE;
}

/* Exported charts get the theme's background so they read on their own. */
static void
draw_page (QbChart              *chart,
           cairo_surface_t      *surface,
           int                   width,
           int                   height,
           const QbChartPalette *palette)
{
  cairo_t *cr = cairo_create (surface);

  qb_chart_set_color (cr, &palette->bg, 1.0);
  cairo_paint (cr);
  qb_chart_draw (chart, cr, width, height, palette);
  cairo_show_page (cr);
  cairo_destroy (cr);
}

gboolean
qb_chart_export (QbChart     *chart,
                 const char  *path,
                 int          width,
                 int          height,
                 GError     **error)
{
  QbChartFormat format;
  QbChartPalette palette;
  cairo_surface_t *surface;
  gboolean ok;

  g_return_val_if_fail (QB_IS_CHART (chart), FALSE);

  if (!qb_chart_format_from_path (path, &format))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "Cannot export “%s”: the name must end in .png, .svg or .pdf", path);
      return FALSE;
    }
  if (width <= 0 || height <= 0)
    {
      width = MAX (gtk_widget_get_width (GTK_WIDGET (chart)), 320);
      height = MAX (gtk_widget_get_height (GTK_WIDGET (chart)), 200);
    }

  qb_chart_palette_init (&palette, GTK_WIDGET (chart));
  palette.for_export = TRUE;
  switch (format)
    {
    case QB_CHART_FORMAT_PNG:
      /* Twice the pixels, so the file is sharp on high-density screens. */
      surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, width * 2, height * 2);
      cairo_surface_set_device_scale (surface, 2, 2);
      break;
    case QB_CHART_FORMAT_SVG:
      surface = cairo_svg_surface_create (path, width, height);
      break;
    case QB_CHART_FORMAT_PDF:
    default:
      surface = cairo_pdf_surface_create (path, width, height);
      break;
    }

  ok = check_surface (surface, path, error);
  if (ok)
    {
      draw_page (chart, surface, width, height, &palette);
      if (format == QB_CHART_FORMAT_PNG)
        {
          cairo_status_t status = cairo_surface_write_to_png (surface, path);
          if (status != CAIRO_STATUS_SUCCESS)
            {
              ok = FALSE;
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           "Could not write chart to “%s”: %s", path,
                           cairo_status_to_string (status));
            }
        }
      cairo_surface_finish (surface);
      ok = ok && check_surface (surface, path, error);
    }
  cairo_surface_destroy (surface);
  qb_chart_palette_clear (&palette);
  return ok;
}

void
qb_chart_set_color (cairo_t       *cr,
                    const GdkRGBA *color,
                    double         alpha)
{
  cairo_set_source_rgba (cr, color->red, color->green, color->blue, color->alpha * alpha);
}

double
qb_chart_text (cairo_t              *cr,
               const QbChartPalette *palette,
               const char           *text,
               double                x,
               double                y,
               double                xalign,
               double                yalign,
               double                scale)
{
  PangoLayout *layout = pango_cairo_create_layout (cr);
  PangoFontDescription *font = pango_font_description_copy (palette->font);
  PangoAttrList *attrs = pango_attr_list_new ();
  int w, h;

  if (scale != 1.0)
    {
      int size = pango_font_description_get_size (font);
      if (size <= 0)
        size = 10 * PANGO_SCALE;
      pango_font_description_set_size (font, (int) (size * scale));
    }
  /* Tabular figures keep columns of numbers aligned. */
  pango_attr_list_insert (attrs, pango_attr_font_features_new ("tnum"));
  pango_layout_set_attributes (layout, attrs);
  pango_layout_set_font_description (layout, font);
  pango_layout_set_text (layout, text, -1);
  pango_layout_get_pixel_size (layout, &w, &h);
  cairo_move_to (cr, round (x - xalign * w), round (y - yalign * h));
  pango_cairo_show_layout (cr, layout);
  pango_attr_list_unref (attrs);
  pango_font_description_free (font);
  g_object_unref (layout);
  return w;
}

double
qb_chart_text_width (cairo_t              *cr,
                     const QbChartPalette *palette,
                     const char           *text,
                     double                scale)
{
  PangoLayout *layout = pango_cairo_create_layout (cr);
  PangoFontDescription *font = pango_font_description_copy (palette->font);
  PangoAttrList *attrs = pango_attr_list_new ();
  int w;

  if (scale != 1.0)
    {
      int size = pango_font_description_get_size (font);
      pango_font_description_set_size (font, (int) ((size > 0 ? size : 10 * PANGO_SCALE) * scale));
    }
  /* As qb_chart_text draws it: tabular figures. */
  pango_attr_list_insert (attrs, pango_attr_font_features_new ("tnum"));
  pango_layout_set_attributes (layout, attrs);
  pango_layout_set_font_description (layout, font);
  pango_layout_set_text (layout, text, -1);
  pango_layout_get_pixel_size (layout, &w, NULL);
  pango_attr_list_unref (attrs);
  pango_font_description_free (font);
  g_object_unref (layout);
  return w;
}

double
qb_chart_text_clamped (cairo_t              *cr,
                       const QbChartPalette *palette,
                       const char           *text,
                       double                x,
                       double                y,
                       double                yalign,
                       double                scale,
                       double                left,
                       double                right)
{
  double w = qb_chart_text_width (cr, palette, text, scale);

  x = CLAMP (x - w / 2.0, left, MAX (left, right - w));
  return qb_chart_text (cr, palette, text, x, y, 0.0, yalign, scale);
}

void
qb_chart_tooltip (cairo_t               *cr,
                  const QbChartPalette  *palette,
                  const char            *text,
                  double                 x,
                  double                 y,
                  const graphene_rect_t *bounds)
{
  PangoLayout *layout = pango_cairo_create_layout (cr);
  double bx, by, bw, bh;
  int tw, th;

  pango_layout_set_font_description (layout, palette->font);
  pango_layout_set_text (layout, text, -1);
  pango_layout_get_pixel_size (layout, &tw, &th);
  g_object_unref (layout);
  bw = tw + 12;
  bh = th + 8;
  bx = x + 12;
  if (bx + bw > bounds->origin.x + bounds->size.width)
    bx = x - 12 - bw;
  bx = MAX (bx, bounds->origin.x + 2);
  by = CLAMP (y - bh / 2, bounds->origin.y + 2, bounds->origin.y + bounds->size.height - bh - 2);

  qb_chart_set_color (cr, &palette->bg, 0.94);
  cairo_rectangle (cr, bx, by, bw, bh);
  cairo_fill_preserve (cr);
  qb_chart_set_color (cr, &palette->fg, 0.3);
  cairo_stroke (cr);
  qb_chart_set_color (cr, &palette->fg, 1.0);
  qb_chart_text (cr, palette, text, bx + 6, by + 4, 0.0, 0.0, 1.0);
}

guint
qb_chart_nice_ticks (double  lo,
                     double  hi,
                     guint   target,
                     double *ticks,
                     guint   max_ticks)
{
  static const double multiples[] = { 0.5, 1, 2, 5, 10 };
  double span = hi - lo;
  double base, step = 0, first;
  double best_score = G_MAXDOUBLE;
  guint n = 0;

  if (!(span > 0) || !isfinite (span) || target == 0)
    return 0;
  /* Of the 1-2-5 steps near span / target, the one whose tick count is
   * closest to the target, never fewer than two ticks. */
  base = pow (10, floor (log10 (span / target)));
  for (gsize i = 0; i < G_N_ELEMENTS (multiples); i++)
    {
      double s = multiples[i] * base;
      double count = floor (hi / s) - ceil (lo / s) + 1;
      double score = fabs (count - target) + (count < 2 ? 1000 : 0);

      if (score < best_score)
        {
          best_score = score;
          step = s;
        }
    }
  first = ceil (lo / step) * step;
  for (double v = first; v <= hi + step * 1e-9 && n < max_ticks; v = first + step * n)
    ticks[n++] = fabs (v) < step * 1e-9 ? 0.0 : v;
  return n;
}

char *
qb_chart_format_value (double value,
                       double step)
{
  double a = fabs (value);

  if (value == 0)
    return g_strdup ("0");
  if (a >= 1e6)
    return g_strdup_printf ("%.3gM", value / 1e6);
  if (a >= 1e4)
    return g_strdup_printf ("%.3gk", value / 1e3);
  if (a < 1e-3)
    return g_strdup_printf ("%.1e", value);
  if (step <= 0 && a >= 1 && value == round (value))
    return g_strdup_printf ("%.0f", value);
  if (step > 0)
    {
      int decimals = (int) CLAMP (-floor (log10 (step)), 0, 6);
      return g_strdup_printf ("%.*f", decimals, value);
    }
  return g_strdup_printf ("%.3g", value);
}

static void
axis_clamp (QbChartAxis *axis)
{
  double full = axis->data_hi - axis->data_lo;
  double span = axis->hi - axis->lo;
  double min_span = full / MAX (axis->max_zoom, 1.0);

  if (!(full > 0))
    return;
  if (!(span >= min_span))
    {
      double mid = (axis->lo + axis->hi) / 2;
      axis->lo = mid - min_span / 2;
      axis->hi = mid + min_span / 2;
      span = min_span;
    }
  if (span >= full)
    {
      axis->lo = axis->data_lo;
      axis->hi = axis->data_hi;
      return;
    }
  if (axis->lo < axis->data_lo)
    {
      axis->lo = axis->data_lo;
      axis->hi = axis->data_lo + span;
    }
  if (axis->hi > axis->data_hi)
    {
      axis->hi = axis->data_hi;
      axis->lo = axis->data_hi - span;
    }
}

void
qb_chart_axis_set_data (QbChartAxis *axis,
                        double       lo,
                        double       hi,
                        gboolean     keep_view)
{
  gboolean same = lo == axis->data_lo && hi == axis->data_hi;

  axis->data_lo = lo;
  axis->data_hi = hi;
  if (!(keep_view && same))
    qb_chart_axis_reset (axis);
}

void
qb_chart_axis_set_view (QbChartAxis *axis,
                        double       lo,
                        double       hi)
{
  if (!(hi > lo))
    return;
  axis->lo = lo;
  axis->hi = hi;
  axis_clamp (axis);
}

void
qb_chart_axis_reset (QbChartAxis *axis)
{
  axis->lo = axis->data_lo;
  axis->hi = axis->data_hi;
}

void
qb_chart_axis_zoom (QbChartAxis *axis,
                    double       value,
                    double       factor)
{
  if (!(factor > 0) || !(axis->hi > axis->lo))
    return;
  axis->lo = value - (value - axis->lo) / factor;
  axis->hi = value + (axis->hi - value) / factor;
  axis_clamp (axis);
}

void
qb_chart_axis_drag_begin (QbChartAxis *axis)
{
  axis->drag_lo = axis->lo;
  axis->drag_hi = axis->hi;
}

void
qb_chart_axis_drag_update (QbChartAxis *axis,
                           double       fraction)
{
  double shift = fraction * (axis->drag_hi - axis->drag_lo);

  axis->lo = axis->drag_lo - shift;
  axis->hi = axis->drag_hi - shift;
  axis_clamp (axis);
}
