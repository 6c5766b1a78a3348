/* SPDX-License-Identifier: MIT */
/* test-ui-charts.c — the Cairo chart widgets: data, zoom, read-out, export. */
#include <math.h>
#include <string.h>
#include <gtk/gtk.h>

#include "qb-channel-range-view.h"
#include "qb-chart.h"
#include "qb-format-button.h"
#include "qb-format-levels.h"
#include "qb-histogram-view.h"
#include "qb-metric-cell.h"
#include "qb-layer-bars-view.h"
#include "qb-scatter-view.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"

/* A heavy-ish tailed sample and its 4-bit-like rounding, as histograms with
 * shared edges (what the engine hands the view). */
static void
make_histograms (QbHistogram **original,
                 QbHistogram **quantized)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  g_autofree float *x = g_new (float, 20000);
  g_autofree float *q = g_new (float, 20000);

  for (int i = 0; i < 20000; i++)
    {
      /* Sum of uniforms: roughly normal, std ~0.05. */
      double s = 0;
      for (int k = 0; k < 6; k++)
        s += g_rand_double (rand) - 0.5;
      x[i] = (float) (s * 0.07);
      q[i] = roundf (x[i] / 0.02f) * 0.02f;
    }
  *original = qb_histogram_new (512, -0.25, 0.25);
  *quantized = qb_histogram_new (512, -0.25, 0.25);
  qb_histogram_add (*original, x, 20000);
  qb_histogram_add (*quantized, q, 20000);
}

static GtkWidget *
in_window (GtkWidget *chart)
{
  GtkWidget *window = gtk_window_new ();

  gtk_window_set_child (GTK_WINDOW (window), chart);
  gtk_window_set_default_size (GTK_WINDOW (window), 640, 320);
  gtk_window_present (GTK_WINDOW (window));
  return window;
}

static void
test_histogram_readout (void)
{
  g_autoptr(QbHistogram) original = NULL;
  g_autoptr(QbHistogram) quantized = NULL;
  GtkWidget *view = qb_histogram_view_new (QB_HISTOGRAM_KIND_WEIGHTS);
  GtkWidget *window = in_window (view);
  g_autofree char *text = NULL;
  g_autofree char *expect_o = NULL;
  g_autofree char *expect_q = NULL;
  guint bin;

  make_histograms (&original, &quantized);
  g_assert_false (qb_histogram_view_has_data (QB_HISTOGRAM_VIEW (view)));
  g_assert_null (qb_histogram_view_describe_value (QB_HISTOGRAM_VIEW (view), 0.0));

  qb_histogram_view_set_histograms (QB_HISTOGRAM_VIEW (view), original, quantized);
  /* Assistive technologies get what the picture shows. */
  gtk_test_accessible_assert_role (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_ROLE_IMG);
  gtk_test_accessible_assert_property (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_PROPERTY_LABEL, "Weight histogram");
  gtk_test_accessible_assert_property (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                       "512 bins from -0.25 to 0.25, original and quantized, linear counts");
  g_assert_true (qb_histogram_view_has_data (QB_HISTOGRAM_VIEW (view)));

  /* The read-out names the bin holding the value and both counts. */
  bin = (guint) ((0.0201 - original->lo) / ((original->hi - original->lo) / original->n_bins));
  text = qb_histogram_view_describe_value (QB_HISTOGRAM_VIEW (view), 0.0201);
  expect_o = g_strdup_printf ("original: %" G_GUINT64_FORMAT, original->counts[bin]);
  expect_q = g_strdup_printf ("quantized: %" G_GUINT64_FORMAT, quantized->counts[bin]);
  g_assert_nonnull (strstr (text, expect_o));
  g_assert_nonnull (strstr (text, expect_q));
  /* That bin holds the grid level 0.02, so rounding piled values there. */
  g_assert_cmpuint (quantized->counts[bin], >, original->counts[bin]);
  /* Outside the data there is nothing to read. */
  g_assert_null (qb_histogram_view_describe_value (QB_HISTOGRAM_VIEW (view), 1.0));

  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_histogram_zoom (void)
{
  g_autoptr(QbHistogram) original = NULL;
  g_autoptr(QbHistogram) quantized = NULL;
  GtkWidget *view = qb_histogram_view_new (QB_HISTOGRAM_KIND_WEIGHTS);
  QbHistogramView *hv = QB_HISTOGRAM_VIEW (view);
  GtkWidget *window = in_window (view);
  double lo, hi;

  make_histograms (&original, &quantized);
  qb_histogram_view_set_histograms (hv, original, quantized);
  qb_histogram_view_get_range (hv, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (lo, -0.25, 1e-12);
  g_assert_cmpfloat_with_epsilon (hi, 0.25, 1e-12);

  /* Zooming 4x around 0.1 keeps 0.1 in place and shrinks the span. */
  qb_histogram_view_zoom (hv, 0.1, 4.0);
  qb_histogram_view_get_range (hv, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (hi - lo, 0.125, 1e-9);
  g_assert_cmpfloat_with_epsilon ((0.1 - lo) / (hi - lo), (0.1 + 0.25) / 0.5, 1e-9);

  /* Panning past the end stops at the data's edge. */
  qb_histogram_view_set_range (hv, 0.2, 0.4);
  qb_histogram_view_get_range (hv, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (hi, 0.25, 1e-12);
  g_assert_cmpfloat_with_epsilon (lo, 0.05, 1e-12);

  /* Zooming out past the data shows all of it. */
  qb_histogram_view_zoom (hv, 0.0, 1e-3);
  qb_histogram_view_get_range (hv, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (lo, -0.25, 1e-12);
  g_assert_cmpfloat_with_epsilon (hi, 0.25, 1e-12);

  /* The same histograms again (a result for the tensor on screen) keep the
   * zoom; a different range resets it. */
  qb_histogram_view_zoom (hv, 0.0, 2.0);
  qb_histogram_view_set_histograms (hv, original, quantized);
  qb_histogram_view_get_range (hv, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (hi - lo, 0.25, 1e-9);
  {
    g_autoptr(QbHistogram) other = qb_histogram_new (64, -1, 1);
    qb_histogram_view_set_histograms (hv, other, NULL);
    qb_histogram_view_get_range (hv, &lo, &hi);
    g_assert_cmpfloat (lo, ==, -1);
    g_assert_cmpfloat (hi, ==, 1);
  }

  qb_histogram_view_set_log_scale (hv, TRUE);
  g_assert_true (qb_histogram_view_get_log_scale (hv));
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
assert_file_starts_with (const char *path,
                         const char *magic,
                         gsize       len)
{
  g_autoptr(GBytes) bytes = qb_test_read_file (path);

  g_assert_cmpuint (g_bytes_get_size (bytes), >, len);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), len, magic, len);
}

/* Counts pixels close to a colour. */
static guint
count_color (cairo_surface_t *surface,
             const GdkRGBA   *color)
{
  int w = cairo_image_surface_get_width (surface);
  int h = cairo_image_surface_get_height (surface);
  int stride = cairo_image_surface_get_stride (surface);
  const guint8 *data = cairo_image_surface_get_data (surface);
  guint n = 0;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        const guint8 *p = data + y * stride + x * 4;   /* BGRA, premultiplied, opaque here */
        if (abs (p[2] - (int) (color->red * 255)) < 8 && abs (p[1] - (int) (color->green * 255)) < 8
            && abs (p[0] - (int) (color->blue * 255)) < 8)
          n++;
      }
  return n;
}

static void
test_histogram_export (void)
{
  g_autoptr(QbHistogram) original = NULL;
  g_autoptr(QbHistogram) quantized = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *png = g_build_filename (dir, "hist.png", NULL);
  g_autofree char *svg = g_build_filename (dir, "hist.svg", NULL);
  g_autofree char *pdf = g_build_filename (dir, "hist.PDF", NULL);
  g_autofree char *bad = g_build_filename (dir, "hist.bmp", NULL);
  g_autofree char *missing = g_build_filename (dir, "no", "such", "dir.png", NULL);
  GtkWidget *view = qb_histogram_view_new (QB_HISTOGRAM_KIND_WEIGHTS);
  GtkWidget *window = in_window (view);
  g_autoptr(GError) error = NULL;
  cairo_surface_t *surface;
  QbChartPalette palette;

  make_histograms (&original, &quantized);
  qb_histogram_view_set_histograms (QB_HISTOGRAM_VIEW (view), original, quantized);

  g_assert_true (qb_chart_export (QB_CHART (view), png, 400, 250, &error));
  g_assert_no_error (error);
  g_assert_true (qb_chart_export (QB_CHART (view), svg, 400, 250, &error));
  g_assert_no_error (error);
  g_assert_true (qb_chart_export (QB_CHART (view), pdf, 400, 250, &error));
  g_assert_no_error (error);
  assert_file_starts_with (png, "\x89PNG", 4);
  assert_file_starts_with (svg, "<?xml", 5);
  assert_file_starts_with (pdf, "%PDF", 4);

  /* The PNG is drawn at twice the size, on the theme's background, with
   * the quantized outline in the contrast colour. */
  surface = cairo_image_surface_create_from_png (png);
  g_assert_cmpint (cairo_surface_status (surface), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint (cairo_image_surface_get_width (surface), ==, 800);
  g_assert_cmpint (cairo_image_surface_get_height (surface), ==, 500);
  qb_chart_palette_init (&palette, view);
  g_assert_cmpuint (count_color (surface, &palette.bg), >, 800 * 500 / 4);
  g_assert_cmpuint (count_color (surface, &palette.contrast), >, 100);
  qb_chart_palette_clear (&palette);
  cairo_surface_destroy (surface);

  g_assert_false (qb_chart_export (QB_CHART (view), bad, 400, 250, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (qb_chart_export (QB_CHART (view), missing, 400, 250, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "dir.png"));

  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_channel_outliers (void)
{
  GtkWidget *view = qb_channel_range_view_new ();
  QbChannelRangeView *cv = QB_CHANNEL_RANGE_VIEW (view);
  GtkWidget *window = in_window (view);
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *png = g_build_filename (dir, "channels.png", NULL);
  g_autoptr(GError) error = NULL;
  float min[300], max[300];
  g_autofree char *text = NULL;

  for (int i = 0; i < 300; i++)
    {
      min[i] = -0.1f - 0.001f * (i % 7);
      max[i] = 0.1f + 0.001f * (i % 5);
    }
  max[7] = 0.5f;      /* 5x the typical magnitude */
  min[211] = -0.35f;  /* 3.5x */
  max[99] = 0.25f;    /* 2.5x: not an outlier */

  qb_channel_range_view_set_ranges (cv, min, max, 300, 300);
  g_assert_cmpuint (qb_channel_range_view_get_n_channels (cv), ==, 300);
  g_assert_cmpuint (qb_channel_range_view_get_n_outliers (cv), ==, 2);
  g_assert_true (qb_channel_range_view_is_outlier (cv, 7));
  g_assert_true (qb_channel_range_view_is_outlier (cv, 211));
  g_assert_false (qb_channel_range_view_is_outlier (cv, 99));
  g_assert_false (qb_channel_range_view_is_outlier (cv, 300));

  text = qb_channel_range_view_describe (cv, 7);
  g_assert_nonnull (strstr (text, "channel 7"));
  g_assert_nonnull (strstr (text, "outlier"));
  g_assert_null (qb_channel_range_view_describe (cv, 300));

  g_assert_true (qb_chart_export (QB_CHART (view), png, 0, 0, &error));
  g_assert_no_error (error);

  /* Buckets of rows are called so, with the rows they cover. */
  {
    g_autofree float *lo = g_new (float, 4000);
    g_autofree float *hi = g_new (float, 4000);
    g_autofree char *title = NULL;
    g_autofree char *hover = NULL;

    for (int i = 0; i < 4000; i++)
      {
        lo[i] = -0.1f;
        hi[i] = 0.1f;
      }
    qb_channel_range_view_set_ranges (cv, lo, hi, 4000, 32000);
    title = qb_channel_range_view_describe_buckets (cv);
    g_assert_nonnull (strstr (title, "bucket of 8 rows"));
    g_assert_nonnull (strstr (title, "32000 rows in 4000 buckets"));
    hover = qb_channel_range_view_describe (cv, 2650);
    g_assert_nonnull (strstr (hover, "rows 21200–21207 (8 channels)"));
    g_assert_true (qb_chart_export (QB_CHART (view), png, 0, 0, &error));
    g_assert_no_error (error);
  }

  qb_channel_range_view_set_ranges (cv, NULL, NULL, 0, 0);
  g_assert_cmpuint (qb_channel_range_view_get_n_channels (cv), ==, 0);
  gtk_window_destroy (GTK_WINDOW (window));
}

/* A narrow bulk with a far outlier opens zoomed on the bulk; zooming out
 * still reaches the outlier. */
static void
test_histogram_focus (void)
{
  g_autoptr(QbHistogram) h = qb_histogram_new (512, -1.0, 1.0);
  GtkWidget *view = qb_histogram_view_new (QB_HISTOGRAM_KIND_WEIGHTS);
  GtkWidget *window = in_window (view);
  float bulk[4000], far = 0.99f;
  double lo, hi;

  for (int i = 0; i < 4000; i++)
    bulk[i] = 0.05f * ((i % 200) - 100) / 100.0f;
  qb_histogram_add (h, bulk, 4000);
  qb_histogram_add (h, &far, 1);
  qb_histogram_view_set_histograms (QB_HISTOGRAM_VIEW (view), h, NULL);
  qb_histogram_view_get_range (QB_HISTOGRAM_VIEW (view), &lo, &hi);
  g_assert_cmpfloat (lo, <, -0.05);
  g_assert_cmpfloat (hi, >, 0.05);
  g_assert_cmpfloat (hi - lo, <, 0.5);
  /* The far value is out of view, and the chart counts it. */
  {
    guint64 left, right;
    qb_histogram_view_get_hidden (QB_HISTOGRAM_VIEW (view), &left, &right);
    g_assert_cmpuint (left, ==, 0);
    g_assert_cmpuint (right, ==, 1);
  }
  qb_histogram_view_reset_zoom (QB_HISTOGRAM_VIEW (view));
  qb_histogram_view_get_range (QB_HISTOGRAM_VIEW (view), &lo, &hi);
  g_assert_cmpfloat (lo, ==, -1.0);
  g_assert_cmpfloat (hi, ==, 1.0);
  {
    guint64 left, right;
    qb_histogram_view_get_hidden (QB_HISTOGRAM_VIEW (view), &left, &right);
    g_assert_cmpuint (left + right, ==, 0);
  }
  gtk_window_destroy (GTK_WINDOW (window));
}

/* A quantized curve on the original is detected and the difference view
 * offered; a narrow export wraps the legend instead of cutting it. */
static void
test_histogram_difference (void)
{
  g_autoptr(QbHistogram) a = qb_histogram_new (512, -1.0, 1.0);
  g_autoptr(QbHistogram) b = NULL;
  GtkWidget *view = qb_histogram_view_new (QB_HISTOGRAM_KIND_WEIGHTS);
  QbHistogramView *hv = QB_HISTOGRAM_VIEW (view);
  GtkWidget *window = in_window (view);
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *png = g_build_filename (dir, "narrow.png", NULL);
  g_autoptr(GError) error = NULL;
  double levels[] = { -0.5, 0, 0.5 };
  float x[2000];

  for (int i = 0; i < 2000; i++)
    x[i] = 0.3f * ((i % 400) - 200) / 200.0f;
  qb_histogram_add (a, x, 2000);
  b = qb_histogram_copy (a);
  b->counts[200] += 5;      /* 0.5 % of the values moved */
  b->counts[300] -= 5;
  qb_histogram_view_set_histograms (hv, a, b);
  g_assert_true (qb_histogram_view_curves_coincide (hv));
  qb_histogram_view_set_difference (hv, TRUE);
  g_assert_true (qb_histogram_view_get_difference (hv));
  g_assert_true (qb_chart_export (QB_CHART (view), png, 300, 200, &error));
  g_assert_no_error (error);

  qb_histogram_view_set_difference (hv, FALSE);
  qb_histogram_view_set_grid (hv, levels, 3, "Q4_K grid (typical block |max| 0.117)");
  qb_histogram_view_set_title (hv, "blk.1.attn_q.weight");
  g_assert_true (qb_chart_export (QB_CHART (view), png, 300, 200, &error));
  g_assert_no_error (error);

  /* Far apart: not on each other. */
  b->counts[250] += 1000;
  qb_histogram_view_set_histograms (hv, a, b);
  g_assert_false (qb_histogram_view_curves_coincide (hv));
  gtk_window_destroy (GTK_WINDOW (window));
}

/* The scatter marks the front as the store defines it (NAN points left
 * out, the y direction per measure). */
static void
test_pareto_front (void)
{
  /* size, error (lower better) */
  const char *labels[] = { "a", "b", "c", "d", "e", "f", "g", "h" };
  const double x[] = { 1, 2, 3, 4, 2, 5, NAN, 4 };
  const double y[] = { 5, 3, 4, 1, 3, 1, 0, 0.5 };
  GtkWidget *view = qb_scatter_view_new ();
  QbScatterView *sv = QB_SCATTER_VIEW (view);
  GtkWidget *window = in_window (view);

  qb_scatter_view_set_axes (sv, "bpw", "error", FALSE);
  qb_scatter_view_set_points (sv, labels, x, y, 8);
  g_assert_cmpuint (qb_scatter_view_get_n_points (sv), ==, 7);   /* g has no size */
  g_assert_true (qb_scatter_view_is_on_front (sv, 0));    /* a: smallest */
  /* b (2, 3) and its twin e: the store keeps one of equal points. */
  g_assert_true (qb_scatter_view_is_on_front (sv, 1) != qb_scatter_view_is_on_front (sv, 4));
  g_assert_false (qb_scatter_view_is_on_front (sv, 2));   /* c (3, 4) is worse than b */
  g_assert_false (qb_scatter_view_is_on_front (sv, 3));   /* d (4, 1) is beaten by h (4, 0.5) */
  g_assert_false (qb_scatter_view_is_on_front (sv, 5));   /* f (5, 1) too */
  g_assert_true (qb_scatter_view_is_on_front (sv, 6));    /* h */

  /* Higher-is-better measures (SQNR) flip the y direction. */
  {
    const double sx[] = { 4.5, 5.5, 8.5, 6.0 };
    const double sqnr[] = { 18, 24, 40, 22 };

    qb_scatter_view_set_axes (sv, "bpw", "SQNR", TRUE);
    qb_scatter_view_set_points (sv, labels, sx, sqnr, 4);
    g_assert_true (qb_scatter_view_is_on_front (sv, 0));
    g_assert_true (qb_scatter_view_is_on_front (sv, 1));
    g_assert_true (qb_scatter_view_is_on_front (sv, 2));
    g_assert_false (qb_scatter_view_is_on_front (sv, 3));
  }
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_scatter_and_bars (void)
{
  const char *labels[] = { "q4_0 all", "q4_k_m", "q8_0 all", "no size" };
  const double size[] = { 4.5, 4.9, 8.5, NAN };
  const double err[] = { 0.08, 0.05, 0.01, 0.02 };
  const char *series[] = { "q4_0 all", "q8_0 all", NULL };
  const char *groups[] = { "0", "1", "2", NULL };
  const double values[] = { 20, 21, NAN, 40, 41, 39 };
  GtkWidget *scatter = qb_scatter_view_new ();
  GtkWidget *bars = qb_layer_bars_view_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  GtkWidget *window = in_window (box);
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *pdf = g_build_filename (dir, "scatter.pdf", NULL);
  g_autofree char *png = g_build_filename (dir, "bars.png", NULL);
  g_autofree char *point = NULL;
  g_autofree char *bar = NULL;
  g_autoptr(GError) error = NULL;

  gtk_box_append (GTK_BOX (box), scatter);
  gtk_box_append (GTK_BOX (box), bars);
  qb_scatter_view_set_axes (QB_SCATTER_VIEW (scatter), "bits per weight", "relative RMSE", FALSE);
  qb_scatter_view_set_points (QB_SCATTER_VIEW (scatter), labels, size, err, 4);
  g_assert_cmpuint (qb_scatter_view_get_n_points (QB_SCATTER_VIEW (scatter)), ==, 3);
  g_assert_true (qb_scatter_view_is_on_front (QB_SCATTER_VIEW (scatter), 0));
  g_assert_true (qb_scatter_view_is_on_front (QB_SCATTER_VIEW (scatter), 1));
  g_assert_true (qb_scatter_view_is_on_front (QB_SCATTER_VIEW (scatter), 2));
  point = qb_scatter_view_describe_point (QB_SCATTER_VIEW (scatter), 1);
  g_assert_nonnull (strstr (point, "q4_k_m"));
  g_assert_nonnull (strstr (point, "Pareto"));
  g_assert_true (qb_chart_export (QB_CHART (scatter), pdf, 500, 300, &error));
  g_assert_no_error (error);

  qb_layer_bars_view_set_data (QB_LAYER_BARS_VIEW (bars), 2, series, 3, groups, values, "SQNR (dB)");
  bar = qb_layer_bars_view_describe (QB_LAYER_BARS_VIEW (bars), 1, 2);
  g_assert_cmpstr (bar, ==, "2 · q8_0 all: 39");
  g_assert_null (qb_layer_bars_view_describe (QB_LAYER_BARS_VIEW (bars), 0, 2));
  g_assert_true (qb_chart_export (QB_CHART (bars), png, 500, 300, &error));
  g_assert_no_error (error);
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
on_chosen (QbFormatButton *button,
           const char     *format,
           char          **out)
{
  g_free (*out);
  *out = g_strdup (format);
}

/* The format button shows without announcing; choosing announces. */
static void
test_format_button (void)
{
  GtkWidget *button = qb_format_button_new ();
  GtkWidget *window = in_window (button);
  g_autofree char *chosen = NULL;

  g_signal_connect (button, "format-chosen", G_CALLBACK (on_chosen), &chosen);
  qb_format_button_set_format (QB_FORMAT_BUTTON (button), "Q4_K");
  g_assert_null (chosen);
  g_assert_cmpstr (qb_format_button_get_format (QB_FORMAT_BUTTON (button)), ==, "Q4_K");
  qb_format_button_choose (QB_FORMAT_BUTTON (button), "Q8_0");
  g_assert_cmpstr (chosen, ==, "Q8_0");
  g_assert_cmpstr (qb_format_button_get_format (QB_FORMAT_BUTTON (button)), ==, "Q8_0");
  gtk_test_accessible_assert_property (GTK_ACCESSIBLE (gtk_widget_get_first_child (button)),
                                       GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, "Format: Q8_0");
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_metric_cell (void)
{
  GtkWidget *cell = qb_metric_cell_new ();
  GtkWidget *window = in_window (cell);

  qb_metric_cell_set_value (QB_METRIC_CELL (cell), "21.3", 0.5);
  g_assert_cmpstr (qb_metric_cell_get_text (QB_METRIC_CELL (cell)), ==, "21.3");
  gtk_test_accessible_assert_property (GTK_ACCESSIBLE (cell), GTK_ACCESSIBLE_PROPERTY_LABEL, "21.3");
  qb_metric_cell_set_value (QB_METRIC_CELL (cell), "", NAN);
  g_assert_cmpstr (qb_metric_cell_get_text (QB_METRIC_CELL (cell)), ==, "");
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_nice_ticks (void)
{
  double t[16];
  guint n = qb_chart_nice_ticks (-0.23, 0.23, 5, t, 16);

  g_assert_cmpuint (n, ==, 5);
  g_assert_cmpfloat_with_epsilon (t[0], -0.2, 1e-12);
  g_assert_cmpfloat (t[2], ==, 0.0);
  g_assert_cmpfloat_with_epsilon (t[4], 0.2, 1e-12);
  g_assert_cmpuint (qb_chart_nice_ticks (1, 1, 5, t, 16), ==, 0);
  g_assert_cmpuint (qb_chart_nice_ticks (0, 1e9, 1000, t, 16), ==, 16);
  /* Never a single tick where two fit (a 0.98 span asked for 4). */
  g_assert_cmpuint (qb_chart_nice_ticks (-0.478, 0.499, 4, t, 16), >=, 3);
}

/* A format's levels for a typical block come from the format itself (core's
 * grid): as many as its codes, sorted, inside the typical range. */
static void
test_format_levels (void)
{
  g_autoptr(QbHistogram) h = qb_histogram_new (1024, -0.1, 0.1);
  g_autofree float *x = g_new (float, 100000);
  static const struct { const char *format; guint n; } cases[] = {
    { "Q4_0", 16 }, { "Q4_K", 16 }, { "Q3_K", 8 }, { "IQ4_NL", 16 }, { "NF4", 16 },
    { "MXFP4", 15 }, { "INT3_G32", 8 }, { "Q8_0", 0 }, { "F16", 0 },
  };

  /* A bell-shaped tensor: the sum of three uniforms. */
  for (guint i = 0; i < 100000; i++)
    x[i] = (float) ((g_test_rand_double () + g_test_rand_double () + g_test_rand_double () - 1.5)
                    * 0.04);
  qb_histogram_add (h, x, 100000);
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      const QbFormat *f = qb_format_find (cases[c].format);
      double levels[QB_FORMAT_LEVELS_MAX];
      g_autofree char *label = NULL;
      guint n;

      g_assert_nonnull (f);
      n = qb_format_levels_typical (f, h, 4096, levels, &label);
      g_test_message ("%s: %u levels, %s", cases[c].format, n, label ? label : "-");
      g_assert_cmpuint (n, ==, cases[c].n);
      for (guint k = 1; k < n; k++)
        g_assert_cmpfloat (levels[k - 1], <, levels[k]);
      if (n > 0)
        {
          g_assert_nonnull (strstr (label, cases[c].format));
          g_assert_cmpfloat (levels[0], <, 0);
          g_assert_cmpfloat (levels[n - 1], >, 0);
          g_assert_cmpfloat (fabs (levels[0]), <, 0.1);
        }
    }
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);

  g_test_add_func ("/ui/charts/histogram-readout", test_histogram_readout);
  g_test_add_func ("/ui/charts/histogram-zoom", test_histogram_zoom);
  g_test_add_func ("/ui/charts/histogram-export", test_histogram_export);
  g_test_add_func ("/ui/charts/channel-outliers", test_channel_outliers);
  g_test_add_func ("/ui/charts/histogram-focus", test_histogram_focus);
  g_test_add_func ("/ui/charts/histogram-difference", test_histogram_difference);
  g_test_add_func ("/ui/charts/pareto-front", test_pareto_front);
  g_test_add_func ("/ui/charts/scatter-and-bars", test_scatter_and_bars);
  g_test_add_func ("/ui/charts/nice-ticks", test_nice_ticks);
  g_test_add_func ("/ui/charts/format-levels", test_format_levels);
  g_test_add_func ("/ui/widgets/format-button", test_format_button);
  g_test_add_func ("/ui/widgets/metric-cell", test_metric_cell);
  return g_test_run ();
}
