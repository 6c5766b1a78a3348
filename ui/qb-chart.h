/* SPDX-License-Identifier: MIT */
/* qb-chart.h — what every Quantbench chart widget shares.
 *
 * A chart draws itself through one function, qb_chart_draw(), on any cairo
 * context: the widget's snapshot uses it, and so does export to PNG, SVG or
 * PDF, so what is saved is what is on screen.  Colours come from the
 * widget's theme (QbChartPalette), so charts work in light and dark styles.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef struct {
  GdkRGBA fg;        /* text, axes */
  GdkRGBA bg;        /* background when exporting */
  GdkRGBA accent;    /* the primary series (original weights) */
  GdkRGBA contrast;  /* the secondary series (quantized weights) */
  GdkRGBA error;     /* errors, outliers */
  GdkRGBA success;
  PangoFontDescription *font;   /* owned */
  gboolean for_export;           /* a file, not the screen: no hover read-outs */
} QbChartPalette;

#define QB_TYPE_CHART (qb_chart_get_type ())
G_DECLARE_INTERFACE (QbChart, qb_chart, QB, CHART, GtkWidget)

struct _QbChartInterface
{
  GTypeInterface parent_iface;

  /* Draws the whole chart in a width x height area at the origin. */
  void (*draw) (QbChart              *chart,
                cairo_t              *cr,
                double                width,
                double                height,
                const QbChartPalette *palette);
};

typedef enum {
  QB_CHART_FORMAT_PNG,
  QB_CHART_FORMAT_SVG,
  QB_CHART_FORMAT_PDF,
} QbChartFormat;

void      qb_chart_draw                (QbChart              *chart,
                                        cairo_t              *cr,
                                        double                width,
                                        double                height,
                                        const QbChartPalette *palette);
/* The snapshot vfunc of a chart widget: draws at the widget's size. */
void      qb_chart_snapshot            (QbChart              *chart,
                                        GtkSnapshot          *snapshot);
/* Writes the chart to a file; the format comes from the extension (.png,
 * .svg, .pdf).  Width and height of 0 use the widget's size. */
gboolean  qb_chart_export              (QbChart              *chart,
                                        const char           *path,
                                        int                   width,
                                        int                   height,
                                        GError              **error);
gboolean  qb_chart_format_from_path    (const char           *path,
                                        QbChartFormat        *format);

void      qb_chart_palette_init        (QbChartPalette       *palette,
                                        GtkWidget            *widget);
void      qb_chart_palette_clear       (QbChartPalette       *palette);

/* A zoomable axis: the visible range [lo, hi] inside the data's range
 * [data_lo, data_hi], zoomed at most max_zoom times. */
typedef struct {
  double lo, hi;
  double data_lo, data_hi;
  double drag_lo, drag_hi;   /* the visible range when a drag began */
  double max_zoom;
} QbChartAxis;

void      qb_chart_axis_set_data       (QbChartAxis          *axis,
                                        double                lo,
                                        double                hi,
                                        gboolean              keep_view);
void      qb_chart_axis_set_view       (QbChartAxis          *axis,
                                        double                lo,
                                        double                hi);
void      qb_chart_axis_reset          (QbChartAxis          *axis);
/* factor > 1 zooms in, keeping `value` where it is. */
void      qb_chart_axis_zoom           (QbChartAxis          *axis,
                                        double                value,
                                        double                factor);
void      qb_chart_axis_drag_begin     (QbChartAxis          *axis);
/* Moves the view by `fraction` of its span since the drag began. */
void      qb_chart_axis_drag_update    (QbChartAxis          *axis,
                                        double                fraction);

/* Drawing helpers shared by the charts. */
void      qb_chart_set_color           (cairo_t              *cr,
                                        const GdkRGBA        *color,
                                        double                alpha);
/* Draws text with its anchor at (x, y); xalign/yalign in 0..1 say which
 * point of the text's box the anchor is.  Returns the text width. */
double    qb_chart_text                (cairo_t              *cr,
                                        const QbChartPalette *palette,
                                        const char           *text,
                                        double                x,
                                        double                y,
                                        double                xalign,
                                        double                yalign,
                                        double                scale);
/* The width qb_chart_text would give the text. */
double    qb_chart_text_width          (cairo_t              *cr,
                                        const QbChartPalette *palette,
                                        const char           *text,
                                        double                scale);
/* An axis label centred on x but shifted to lie within left..right, so
 * the last tick's label is never cut at the chart's edge. */
double    qb_chart_text_clamped        (cairo_t              *cr,
                                        const QbChartPalette *palette,
                                        const char           *text,
                                        double                x,
                                        double                y,
                                        double                yalign,
                                        double                scale,
                                        double                left,
                                        double                right);
/* A read-out box with text next to the point (x, y), on the side away
 * from it and kept inside bounds. */
void      qb_chart_tooltip             (cairo_t               *cr,
                                        const QbChartPalette  *palette,
                                        const char            *text,
                                        double                 x,
                                        double                 y,
                                        const graphene_rect_t *bounds);
/* "Nice" tick positions (1, 2, 5 × 10^k steps) covering [lo, hi];
 * returns how many were written (at most max_ticks). */
guint     qb_chart_nice_ticks          (double                lo,
                                        double                hi,
                                        guint                 target,
                                        double               *ticks,
                                        guint                 max_ticks);
/* A short label for an axis value ("0.012", "-1.5e-04", "3.2k"). */
char     *qb_chart_format_value        (double                value,
                                        double                step);

G_END_DECLS
