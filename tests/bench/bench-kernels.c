/* SPDX-License-Identifier: MIT */
/* bench-kernels.c — single-thread speed of every row quantizer.
 *
 *   meson test -C build --benchmark kernels -v      (or run the binary)
 *   bench-kernels [--all] [--seconds S] [FORMAT...]
 *
 * Input: 512 rows x 4096 of weight-like floats (8 MiB, beyond the L2
 * cache).  For each format: quantize throughput in MB/s of float input,
 * plain and with importance (llama.cpp's imatrix path for ggml types,
 * the weighted search elsewhere), and dequantize throughput in MB/s of
 * float output.  Baselines measured in the same run over the same
 * buffer: a plain sum (memory read) and memcpy.  Without --all, a
 * representative subset of the INTn rows is measured.  Times are the
 * thread's CPU time, so that other load on the machine does not count.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "qb-format.h"

#define N_ROWS 512
#define N_COLS 4096

static double seconds_per_case = 0.25;

typedef void (*PassFunc) (gpointer user_data);

static double
cpu_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs pass until at least seconds_per_case have gone by (and at least
 * twice); returns MB/s for bytes per pass. */
static double
measure (PassFunc pass, gpointer user_data, double bytes)
{
  double start, now;
  int n = 0;

  pass (user_data);   /* warm caches and pages */
  start = cpu_seconds ();
  do
    {
      pass (user_data);
      n++;
      now = cpu_seconds ();
    }
  while (n < 2 || now - start < seconds_per_case);
  return bytes * n / (now - start) / 1e6;
}

typedef struct {
  const float   *x;
  float         *y;
  guint8        *q;
  const float   *importance;
  const QbFormat *format;
  guint64        row_bytes;
  float          absmax;
  volatile float sink;
} Bench;

static void
pass_sum (gpointer data)
{
  Bench *b = data;
  float part[16] = { 0 }, s = 0;
  for (gsize i = 0; i < (gsize) N_ROWS * N_COLS; i += 16)
    for (int k = 0; k < 16; k++)
      part[k] += b->x[i + k];
  for (int k = 0; k < 16; k++)
    s += part[k];
  b->sink = s;
}

static void
pass_memcpy (gpointer data)
{
  Bench *b = data;
  memcpy (b->y, b->x, (gsize) N_ROWS * N_COLS * sizeof (float));
}

static void
pass_quantize (gpointer data)
{
  Bench *b = data;
  QbQuantParams p = { b->format, b->importance, FALSE, b->absmax };
  for (int r = 0; r < N_ROWS; r++)
    b->format->quantize_row (&p, b->x + (gsize) r * N_COLS, b->q + r * b->row_bytes, N_COLS);
}

static void
pass_dequantize (gpointer data)
{
  Bench *b = data;
  QbQuantParams p = { b->format, NULL, FALSE, b->absmax };
  for (int r = 0; r < N_ROWS; r++)
    b->format->dequantize_row (&p, b->q + r * b->row_bytes, b->y + (gsize) r * N_COLS, N_COLS);
}

static gboolean
selected (const QbFormat *f, gboolean all, char **names)
{
  static const char *subset[] = { "INT4_G128", "INT4_G128_ASYM", "INT4_G32", "INT8_CH",
                                  "INT8_T", "INT3_G64", "INT2_G128_ASYM" };
  if (names != NULL && names[0] != NULL)
    {
      for (int i = 0; names[i]; i++)
        if (g_ascii_strcasecmp (names[i], f->name) == 0)
          return TRUE;
      return FALSE;
    }
  if (all || f->family != QB_FAMILY_INT)
    return TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (subset); i++)
    if (strcmp (subset[i], f->name) == 0)
      return TRUE;
  return FALSE;
}

int
main (int argc, char **argv)
{
  gboolean all = FALSE;
  g_auto(GStrv) names = NULL;
  GOptionEntry entries[] = {
    { "all", 0, 0, G_OPTION_ARG_NONE, &all, "Measure every INTn row too", NULL },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds_per_case, "Time per measurement", "S" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &names, NULL, "FORMAT..." },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- quantizer throughput");
  g_autoptr(GError) error = NULL;
  g_autofree float *x = g_new (float, (gsize) N_ROWS * N_COLS);
  g_autofree float *y = g_new (float, (gsize) N_ROWS * N_COLS);
  g_autofree float *importance = g_new (float, N_COLS);
  g_autofree guint8 *q = NULL;
  Bench b = { x, y, NULL, NULL, NULL, 0, 0, 0 };
  double bytes = (double) N_ROWS * N_COLS * sizeof (float), sum_rate, copy_rate;
  guint64 state = 0x2545f4914f6cdd1dull;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  /* Laplace weights (scale 0.02) with rare 12x outliers. */
  for (gsize i = 0; i < (gsize) N_ROWS * N_COLS; i++)
    {
      double u, v;
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      u = (state >> 11) * (1.0 / 9007199254740992.0);
      v = (u < 0.5 ? 1 : -1) * log (fmod (u * 2, 1.0) + 1e-12) * 0.02;
      x[i] = (float) (i % 503 == 0 ? v * 12 : v);
      b.absmax = MAX (b.absmax, fabsf (x[i]));
    }
  for (int j = 0; j < N_COLS; j++)
    importance[j] = 0.5f + (j % 97 == 0 ? 50.0f : (j % 13) / 13.0f);
  q = g_malloc ((gsize) N_ROWS * N_COLS * sizeof (float) + 64);
  b.q = q;

  sum_rate = measure (pass_sum, &b, bytes);
  copy_rate = measure (pass_memcpy, &b, bytes);
  printf ("# single thread, %d x %d floats (%.0f MiB); MB/s of float input\n",
          N_ROWS, N_COLS, bytes / 1048576);
  printf ("# baselines over the same buffer: sum %.0f MB/s, memcpy %.0f MB/s\n", sum_rate, copy_rate);
  printf ("%-16s %10s %8s %12s %10s\n", "format", "quantize", "vs sum", "+importance", "dequant");

  for (guint i = 0; i < qb_format_count (); i++)
    {
      const QbFormat *f = qb_format_get (i);
      double qr, qi, dq;

      if (!selected (f, all, names) || !qb_format_row_bytes (f, N_COLS, &b.row_bytes))
        continue;
      b.format = f;
      b.importance = NULL;
      qr = measure (pass_quantize, &b, bytes);
      dq = measure (pass_dequantize, &b, bytes);
      qi = NAN;
      if (f->family != QB_FAMILY_FLOAT && f->scope != QB_SCOPE_TENSOR)
        {
          b.importance = importance;
          qi = measure (pass_quantize, &b, bytes);
        }
      printf ("%-16s %10.1f %7.1f%% %12.1f %10.1f\n", f->name, qr, 100 * qr / sum_rate, qi, dq);
      fflush (stdout);
    }
  return 0;
}
