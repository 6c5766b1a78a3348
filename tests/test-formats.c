/* SPDX-License-Identifier: MIT */
/* test-formats.c — the format registry: table, accounting, fallbacks, and
 * every format's round trip, importance weighting and search.
 *
 * The data imitate LLM weights (Laplace values, rare 12x outliers, two
 * outlier columns) and are generated here, so these tests need nothing
 * from ../shared.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "qb-format.h"

#define N_ROWS 4
#define N_COLS 2048

/* ---- data ----------------------------------------------------------------- */

typedef struct {
  float *x;            /* N_ROWS x N_COLS */
  float *importance;   /* N_COLS */
  float  absmax;
} Data;

static guint64 rng_state;

static double
rng_uniform (void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static Data *
data_new (void)
{
  Data *d = g_new0 (Data, 1);

  rng_state = 0x9e3779b97f4a7c15ull;
  d->x = g_new (float, N_ROWS * N_COLS);
  d->importance = g_new (float, N_COLS);
  for (int r = 0; r < N_ROWS; r++)
    for (int j = 0; j < N_COLS; j++)
      {
        double v = (rng_uniform () < 0.5 ? 1 : -1) * log (rng_uniform () + 1e-300) * 0.02;
        if (rng_uniform () < 0.002)
          v *= 12;
        if (j == 17 || j == 1041)
          v *= 20;
        d->x[r * N_COLS + j] = (float) v;
        d->absmax = MAX (d->absmax, fabsf ((float) v));
      }
  /* Every 97th column matters 50x, as an importance matrix's hot columns. */
  for (int j = 0; j < N_COLS; j++)
    d->importance[j] = j % 97 == 0 ? 50.0f : (float) (0.5 + rng_uniform ());
  return d;
}

static void
data_free (Data *d)
{
  g_free (d->x);
  g_free (d->importance);
  g_free (d);
}

static Data *shared_data;

/* Quantizes all rows with the given options, dequantizes them into y, and
 * returns Σ w (x - y)² (w = importance, or 1 when weighted is FALSE). */
static double
round_trip (const QbFormat *f, const Data *d, gboolean search, gboolean importance,
            gboolean weighted, float *y, guint8 *q_out)
{
  QbQuantParams p = { f, importance ? d->importance : NULL, search, d->absmax };
  guint64 row_bytes = 0;
  g_autofree guint8 *q = NULL;
  double err = 0;

  g_assert_true (qb_format_row_bytes (f, N_COLS, &row_bytes));
  q = g_malloc (row_bytes);
  for (int r = 0; r < N_ROWS; r++)
    {
      f->quantize_row (&p, d->x + r * N_COLS, q, N_COLS);
      f->dequantize_row (&p, q, y + r * N_COLS, N_COLS);
      if (q_out)
        memcpy (q_out + r * row_bytes, q, row_bytes);
      for (int j = 0; j < N_COLS; j++)
        {
          double e = d->x[r * N_COLS + j] - y[r * N_COLS + j];
          err += (weighted ? d->importance[j] : 1.0) * e * e;
        }
    }
  return err;
}

/* ---- the table ------------------------------------------------------------ */

static void
test_table (void)
{
  guint n = qb_format_count ();
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

  g_assert_cmpuint (n, ==, 3 + 12 + 7 * 11 + 2 + 4);
  for (guint i = 0; i < n; i++)
    {
      const QbFormat *f = qb_format_get (i);
      g_autofree char *lower = g_ascii_strdown (f->name, -1);

      g_assert_nonnull (f->summary);
      g_assert_true (g_hash_table_add (names, (gpointer) f->name));
      g_assert_true (qb_format_find (lower) == f);
      g_assert_nonnull (f->quantize_row);
      g_assert_nonnull (f->dequantize_row);
      g_assert_cmpuint (f->bits, >=, 2);
      g_assert_cmpuint (f->bits, <=, 32);
      g_assert_cmpstr (qb_format_family_name (f->family), !=, "unknown");
      if (f->scope == QB_SCOPE_BLOCK)
        g_assert_true (f->block_size > 0 && f->block_bytes > 0);
      else
        g_assert_true (f->block_size == 0 && f->scale_bytes > 0);
      if (f->fallback)
        g_assert_nonnull (qb_format_find (f->fallback));
      /* Native formats agree with the storage type table. */
      if (f->dtype != QB_DTYPE_INVALID)
        {
          const QbDTypeInfo *info = qb_dtype_info (f->dtype);
          g_assert_cmpuint (info->block_size, ==, f->block_size);
          g_assert_cmpuint (info->type_size, ==, f->block_bytes);
          g_assert_true (qb_format_for_dtype (f->dtype) == f);
        }
    }
  g_assert_null (qb_format_find ("Q4_Q"));
  g_assert_null (qb_format_find (NULL));
  g_assert_null (qb_format_get (n));
  g_assert_null (qb_format_for_dtype (QB_DTYPE_IQ2_XXS));
  g_assert_true (qb_format_find ("q4_k") == qb_format_for_dtype (QB_DTYPE_Q4_K));
  for (int bits = 2; bits <= 8; bits++)
    for (int g = 32; g <= 256; g *= 2)
      {
        g_autofree char *sym = g_strdup_printf ("int%d_g%d", bits, g);
        g_autofree char *asym = g_strdup_printf ("Int%d_G%d_asym", bits, g);
        g_assert_nonnull (qb_format_find (sym));
        g_assert_true (qb_format_find (asym)->asymmetric);
      }
}

/* ---- accounting ----------------------------------------------------------- */

/* Bytes per row from the layouts documented in qb-format.h, computed here
 * independently of the table. */
static guint64
documented_row_bytes (const QbFormat *f, gint64 n)
{
  guint64 code_bytes = ((guint64) n * f->bits + 7) / 8;

  switch (f->family)
    {
    case QB_FAMILY_FLOAT:
      return (guint64) n * f->bits / 8;
    case QB_FAMILY_GGML:
      {
        guint64 bytes = 0;
        g_assert_true (qb_dtype_bytes (f->dtype, n, &bytes));
        return bytes;
      }
    case QB_FAMILY_INT:
      if (f->scope == QB_SCOPE_BLOCK)
        return (guint64) (n / f->block_size) * (2 + f->asymmetric + f->block_size * f->bits / 8);
      return code_bytes + (f->scope == QB_SCOPE_CHANNEL ? 2 + f->asymmetric : 0);
    case QB_FAMILY_NF:
      return (guint64) n / 64 * (4 + 32);
    case QB_FAMILY_MX:
      return (guint64) n / 32 * (1 + 16);
    case QB_FAMILY_FP8:
      return n + (f->scope == QB_SCOPE_CHANNEL ? 4 : 0);
    }
  g_assert_not_reached ();
}

static void
test_accounting (void)
{
  static const gint64 widths[] = { 1, 96, 172, 256, 4096 };
  static const struct { const char *name; double bpw; } nominal[] = {
    { "F16", 16 }, { "Q4_0", 4.5 }, { "Q4_1", 5 }, { "Q5_0", 5.5 }, { "Q5_1", 6 },
    { "Q8_0", 8.5 }, { "Q2_K", 2.625 }, { "Q3_K", 3.4375 }, { "Q4_K", 4.5 },
    { "Q5_K", 5.5 }, { "Q6_K", 6.5625 }, { "IQ4_NL", 4.5 }, { "IQ4_XS", 4.25 },
    { "INT4_G128", 4.125 }, { "INT4_G128_ASYM", 4.1875 }, { "INT8_G32", 8.5 },
    { "INT3_G64", 3.25 }, { "INT2_G256_ASYM", 2.09375 }, { "NF4", 4.5 },
    { "MXFP4", 4.25 }, { "INT8_T", 8 }, { "FP8_E4M3_T", 8 },
    { "INT4_CH", 4 + 16.0 / 4096 }, { "INT4_CH_ASYM", 4 + 24.0 / 4096 },
    { "FP8_E5M2_CH", 8 + 32.0 / 4096 },
  };

  for (guint i = 0; i < qb_format_count (); i++)
    {
      const QbFormat *f = qb_format_get (i);
      for (gsize k = 0; k < G_N_ELEMENTS (widths); k++)
        {
          gint64 n = widths[k];
          guint64 row = 0, tensor = 0;
          gboolean fits = f->scope != QB_SCOPE_BLOCK || n % f->block_size == 0;

          g_assert_cmpint (qb_format_fits (f, n), ==, fits);
          g_assert_cmpint (qb_format_row_bytes (f, n, &row), ==, fits);
          if (!fits)
            {
              g_assert_true (isnan (qb_format_bpw (f, n)));
              continue;
            }
          g_assert_cmpuint (row, ==, documented_row_bytes (f, n));
          g_assert_cmpfloat_with_epsilon (qb_format_bpw (f, n), row * 8.0 / n, 1e-12);
          g_assert_true (qb_format_tensor_bytes (f, n, 3, &tensor));
          g_assert_cmpuint (tensor, ==, 3 * row + (f->scope == QB_SCOPE_TENSOR ? f->scale_bytes : 0));
        }
    }
  for (gsize k = 0; k < G_N_ELEMENTS (nominal); k++)
    g_assert_cmpfloat_with_epsilon (qb_format_bpw (qb_format_find (nominal[k].name), 4096),
                                    nominal[k].bpw, 1e-12);
  g_assert_cmpfloat (qb_format_bpw (qb_format_find ("Q4_0"), 0), !=, 4.5);
  g_assert_false (qb_format_fits (qb_format_find ("F16"), 0));
  g_assert_false (qb_format_fits (qb_format_find ("F16"), -32));
  {
    guint64 b;
    g_assert_false (qb_format_tensor_bytes (qb_format_find ("F32"), G_MAXINT64 / 16, G_MAXINT64 / 16, &b));
    g_assert_false (qb_format_tensor_bytes (qb_format_find ("F32"), 64, -1, &b));
  }
}

/* A quantizer writes exactly row_bytes: run it over two differently
 * pre-filled buffers; every byte of the row must be the same afterwards
 * (so it was written) and the guard bytes beyond must be untouched. */
static void
test_packing_size (void)
{
  const gint64 n = 1024;
  float x[1024];

  for (int j = 0; j < n; j++)
    x[j] = shared_data->x[j];
  for (guint i = 0; i < qb_format_count (); i++)
    {
      const QbFormat *f = qb_format_get (i);
      QbQuantParams p = { f, NULL, FALSE, shared_data->absmax };
      guint64 row = 0;
      guint8 *a, *b;

      g_assert_true (qb_format_row_bytes (f, n, &row));
      a = g_malloc (row + 16);
      b = g_malloc (row + 16);
      memset (a, 0x00, row + 16);
      memset (b, 0xff, row + 16);
      f->quantize_row (&p, x, a, n);
      f->quantize_row (&p, x, b, n);
      if (memcmp (a, b, row) != 0)
        g_error ("%s leaves bytes of its %" G_GUINT64_FORMAT "-byte row unwritten", f->name, row);
      for (int k = 0; k < 16; k++)
        g_assert_true (a[row + k] == 0x00 && b[row + k] == 0xff);
      g_free (a);
      g_free (b);
    }
}

/* ---- fallbacks ------------------------------------------------------------ */

static void
assert_fit (const char *name, gint64 n, const char *want)
{
  const QbFormat *f = qb_format_fit (qb_format_find (name), n);
  g_assert_nonnull (f);
  if (g_strcmp0 (f->name, want) != 0)
    g_error ("%s for rows of %" G_GINT64_FORMAT ": got %s, want %s", name, n, f->name, want);
}

static void
test_fallbacks (void)
{
  /* stories260K's ffn_down: 172 wide fits no 32-block format. */
  assert_fit ("Q4_K", 172, "F16");
  assert_fit ("Q4_0", 172, "F16");
  assert_fit ("Q8_0", 172, "F16");
  assert_fit ("IQ4_XS", 172, "F16");
  assert_fit ("INT4_G128", 172, "INT4_CH");
  assert_fit ("INT4_G128_ASYM", 172, "INT4_CH_ASYM");
  assert_fit ("NF4", 172, "INT4_CH");
  assert_fit ("MXFP4", 172, "INT4_CH");
  assert_fit ("FP8_E4M3_T", 172, "FP8_E4M3_T");
  /* 96 = 3 x 32: K-quants fall back as llama.cpp's llama-quant.cpp does. */
  assert_fit ("Q2_K", 96, "IQ4_NL");
  assert_fit ("Q3_K", 96, "IQ4_NL");
  assert_fit ("Q4_K", 96, "Q5_0");
  assert_fit ("Q5_K", 96, "Q5_1");
  assert_fit ("Q6_K", 96, "Q8_0");
  assert_fit ("IQ4_XS", 96, "IQ4_NL");
  /* Group chain G256 -> G128 -> G64 -> G32 -> CH. */
  assert_fit ("INT3_G256", 384, "INT3_G128");
  assert_fit ("INT3_G256", 192, "INT3_G64");
  assert_fit ("INT3_G256", 96, "INT3_G32");
  assert_fit ("INT3_G256_ASYM", 80, "INT3_CH_ASYM");
  assert_fit ("NF4", 96, "INT4_G32");
  /* Everything fits 4096. */
  for (guint i = 0; i < qb_format_count (); i++)
    g_assert_true (qb_format_fit (qb_format_get (i), 4096) == qb_format_get (i));
  g_assert_null (qb_format_fit (qb_format_find ("Q4_0"), 0));
  g_assert_null (qb_format_fit (NULL, 64));
}

/* ---- round trips ---------------------------------------------------------- */

static float
f32_le (const guint8 *p)
{
  guint32 u = (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static float
f16_le (const guint8 *p)
{
  return qb_fp16_to_fp32 ((guint16) (p[0] | p[1] << 8));
}

/* n-bit code i of a LSB-first bit stream. */
static int
code_at (const guint8 *codes, int i, int bits)
{
  int v = 0;
  for (int b = 0; b < bits; b++)
    {
      int bit = i * bits + b;
      v |= ((codes[bit / 8] >> (bit % 8)) & 1) << b;
    }
  return v;
}

/* Decodes an INTn row from the documented layout and checks it against
 * dequantize_row, and that plain rounding is within half a step (a full
 * step where an asymmetric range end was rounded to a whole zero point). */
static void
check_int_layout (const QbFormat *f, const float *x, const guint8 *q, const float *y, gint64 n)
{
  gint64 g = f->scope == QB_SCOPE_BLOCK ? f->block_size : n;
  int half = 1 << (f->bits - 1);

  for (gint64 i0 = 0; i0 < n; i0 += g)
    {
      const guint8 *blk = f->scope == QB_SCOPE_BLOCK ? q + i0 / g * f->block_bytes : q;
      float d;
      int z = half;
      const guint8 *codes;

      if (f->scope == QB_SCOPE_TENSOR)
        {
          d = qb_fp16_to_fp32 (qb_fp32_to_fp16 (shared_data->absmax / (half - 1 > 0 ? half - 1 : 1)));
          codes = blk;
        }
      else
        {
          d = f16_le (blk);
          if (f->asymmetric)
            z = blk[2];
          codes = blk + 2 + f->asymmetric;
        }
      for (gint64 i = 0; i < g; i++)
        {
          float want = d * (code_at (codes, (int) i, f->bits) - z);
          g_assert_cmpfloat (y[i0 + i], ==, want);
          g_assert_cmpfloat (fabsf (x[i0 + i] - want), <=, (f->asymmetric ? 1.0f : 0.5f) * d * 1.0001f);
        }
    }
}

static void
check_nf4_layout (const float *x, const guint8 *q, const float *y, gint64 n)
{
  static const float top_half_gap = (1.0f - 0.6961928009986877f) / 2;  /* widest gap: -1 .. -0.696 */

  for (gint64 i0 = 0; i0 < n; i0 += 64, q += 36)
    {
      float absmax = f32_le (q), m = 0;
      for (int i = 0; i < 64; i++)
        m = MAX (m, fabsf (x[i0 + i]));
      g_assert_cmpfloat (absmax, ==, m);
      for (int i = 0; i < 64; i++)
        {
          int code = i % 2 ? q[4 + i / 2] & 0xf : q[4 + i / 2] >> 4;
          g_assert_cmpfloat (fabsf (y[i0 + i]), <=, absmax);
          g_assert_cmpfloat (fabsf (x[i0 + i] - y[i0 + i]), <=, top_half_gap * absmax * 1.0001f);
          if (fabsf (x[i0 + i]) == absmax)
            g_assert_cmpint (code, ==, x[i0 + i] > 0 ? 15 : 0);
        }
    }
}

static void
check_mxfp4_layout (const float *x, const guint8 *q, const float *y, gint64 n)
{
  static const float e2m1[8] = { 0, 0.5f, 1, 1.5f, 2, 3, 4, 6 };

  for (gint64 i0 = 0; i0 < n; i0 += 32, q += 17)
    {
      float scale = ldexpf (1.0f, q[0] - 127), m = 0;
      for (int i = 0; i < 32; i++)
        m = MAX (m, fabsf (x[i0 + i]));
      /* The spec's shared exponent: floor (log2 (absmax)) - 2. */
      g_assert_cmpint (q[0] - 127, ==, (int) floorf (log2f (m)) - 2);
      for (int i = 0; i < 32; i++)
        {
          int c = i % 2 ? q[1 + i / 2] >> 4 : q[1 + i / 2] & 0xf;
          float want = (c & 8 ? -1 : 1) * e2m1[c & 7] * scale;
          g_assert_cmpfloat (y[i0 + i], ==, want);
          g_assert_cmpfloat (fabsf (x[i0 + i] - want), <=, 2 * scale);
        }
    }
}

static void
check_fp8_layout (const QbFormat *f, const float *x, const guint8 *q, const float *y, gint64 n)
{
  gboolean e4m3 = g_str_has_prefix (f->name, "FP8_E4M3");
  float max = e4m3 ? 448.0f : 57344.0f;
  float s = f->scope == QB_SCOPE_TENSOR ? shared_data->absmax / max : f32_le (q);
  const guint8 *codes = f->scope == QB_SCOPE_TENSOR ? q : q + 4;
  float rel = e4m3 ? 1.0f / 16 : 1.0f / 8, tiny = ldexpf (1.0f, e4m3 ? -10 : -17);

  for (gint64 i = 0; i < n; i++)
    {
      float v = (e4m3 ? qb_fp8_e4m3_to_fp32 (codes[i]) : qb_fp8_e5m2_to_fp32 (codes[i])) * s;
      g_assert_cmpfloat (y[i], ==, v);
      /* Half an ulp relative in the normal range, half the smallest step
       * below it. */
      g_assert_cmpfloat (fabsf (x[i] - v), <=, MAX (rel * fabsf (x[i]), tiny * s) * 1.0001f);
    }
}

static void
test_round_trip (gconstpointer data)
{
  const QbFormat *f = data;
  g_autofree float *y = g_new (float, N_ROWS * N_COLS);
  g_autofree guint8 *q = NULL;
  guint64 row_bytes = 0;
  double err, signal = 0, rel;

  g_assert_true (qb_format_row_bytes (f, N_COLS, &row_bytes));
  q = g_malloc (N_ROWS * row_bytes);
  err = round_trip (f, shared_data, FALSE, FALSE, FALSE, y, q);
  for (int i = 0; i < N_ROWS * N_COLS; i++)
    signal += (double) shared_data->x[i] * shared_data->x[i];
  rel = sqrt (err / signal);
  g_test_message ("%s: %.4f bpw, relative RMSE %.5f", f->name, qb_format_bpw (f, N_COLS), rel);

  /* A scale per 64 values or fewer: relative RMSE within 2^(2 - bits)
   * even on heavy-tailed data; wider scopes are checked per value below. */
  if (f->family == QB_FAMILY_FLOAT)
    g_assert_cmpfloat (rel, <=, f->bits == 32 ? 0 : ldexp (1, f->dtype == QB_DTYPE_BF16 ? -8 : -11));
  else if (f->family == QB_FAMILY_FP8)
    g_assert_cmpfloat (rel, <=, g_str_has_prefix (f->name, "FP8_E4M3") ? 1.0 / 16 : 1.0 / 8);
  else if (f->scope == QB_SCOPE_BLOCK && f->block_size <= 64)
    g_assert_cmpfloat (rel, <=, ldexp (1, 2 - (int) f->bits));

  for (int r = 0; r < N_ROWS; r++)
    {
      const float *x = shared_data->x + r * N_COLS, *yr = y + r * N_COLS;
      const guint8 *qr = q + r * row_bytes;
      switch (f->family)
        {
        case QB_FAMILY_INT: check_int_layout (f, x, qr, yr, N_COLS); break;
        case QB_FAMILY_NF:  check_nf4_layout (x, qr, yr, N_COLS); break;
        case QB_FAMILY_MX:  check_mxfp4_layout (x, qr, yr, N_COLS); break;
        case QB_FAMILY_FP8: check_fp8_layout (f, x, qr, yr, N_COLS); break;
        default: break;
        }
    }
}

/* Importance lowers the importance-weighted error wherever the format
 * has a per-group or per-row scale to choose. */
static void
test_importance (gconstpointer data)
{
  const QbFormat *f = data;
  g_autofree float *y = g_new (float, N_ROWS * N_COLS);
  double plain = round_trip (f, shared_data, FALSE, FALSE, TRUE, y, NULL);
  double weighted = round_trip (f, shared_data, FALSE, TRUE, TRUE, y, NULL);

  g_test_message ("%s: weighted error %.5g plain, %.5g with importance", f->name, plain, weighted);
  g_assert_cmpfloat (weighted, <, plain);
}

/* Search never does worse than plain rounding on its own objective, with
 * or without importance; and it is deterministic. */
static void
test_search (gconstpointer data)
{
  const QbFormat *f = data;
  g_autofree float *y = g_new (float, N_ROWS * N_COLS);
  guint64 row_bytes = 0;
  g_autofree guint8 *q1 = NULL;
  g_autofree guint8 *q2 = NULL;
  double rtn, searched, rtn_w, searched_w;

  g_assert_true (qb_format_row_bytes (f, N_COLS, &row_bytes));
  q1 = g_malloc (N_ROWS * row_bytes);
  q2 = g_malloc (N_ROWS * row_bytes);
  rtn = round_trip (f, shared_data, FALSE, FALSE, FALSE, y, NULL);
  searched = round_trip (f, shared_data, TRUE, FALSE, FALSE, y, q1);
  rtn_w = round_trip (f, shared_data, FALSE, FALSE, TRUE, y, NULL);
  searched_w = round_trip (f, shared_data, TRUE, TRUE, TRUE, y, q2);
  g_test_message ("%s: error %.5g -> %.5g searched; weighted %.5g -> %.5g", f->name,
                  rtn, searched, rtn_w, searched_w);
  g_assert_cmpfloat (searched, <=, rtn);
  /* K-quants and IQ4_XS search inside llama.cpp's algorithm, whose imatrix
   * objective weighs values by importance · sqrt(σ² + x²): not the plain
   * weighted error, so no promise is made for them there. */
  if (!(f->family == QB_FAMILY_GGML && f->block_size == 256))
    g_assert_cmpfloat (searched_w, <=, rtn_w);

  /* Same bytes every time. */
  round_trip (f, shared_data, TRUE, TRUE, TRUE, y, q1);
  g_assert_cmpmem (q1, N_ROWS * row_bytes, q2, N_ROWS * row_bytes);
}

/* Where plain rounding is far from optimal (4-bit groups, per-row INT4),
 * search finds something strictly better. */
static void
test_search_improves (void)
{
  static const char *names[] = { "Q4_0", "Q4_1", "IQ4_NL", "INT4_G128", "INT4_CH_ASYM",
                                 "NF4", "MXFP4", "INT3_G32" };
  g_autofree float *y = g_new (float, N_ROWS * N_COLS);

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const QbFormat *f = qb_format_find (names[i]);
      double rtn = round_trip (f, shared_data, FALSE, FALSE, FALSE, y, NULL);
      double searched = round_trip (f, shared_data, TRUE, FALSE, FALSE, y, NULL);
      g_assert_cmpfloat (searched, <, rtn);
    }
}

/* ---- per-tensor scales and format specifics --------------------------------- */

static void
quantize_one (const char *name, const float *x, gint64 n, float absmax, guint8 *q, float *y)
{
  const QbFormat *f = qb_format_find (name);
  QbQuantParams p = { f, NULL, FALSE, absmax };
  f->quantize_row (&p, x, q, n);
  if (y)
    f->dequantize_row (&p, q, y, n);
}

static void
test_tensor_scale (void)
{
  float x[64], y[64];
  guint8 q[64];
  guint64 bytes;

  /* INT8_T: the tensor's absmax is ±127 d, d stored once as f16. */
  for (int i = 0; i < 64; i++)
    x[i] = (i - 32) / 16.0f;
  quantize_one ("INT8_T", x, 64, 2.0f, q, y);
  g_assert_cmpint (q[0], ==, 128 - 127);        /* -2.0 */
  g_assert_cmpint (q[32], ==, 128);             /* 0 */
  g_assert_cmpfloat (y[0], ==, -127 * qb_fp16_to_fp32 (qb_fp32_to_fp16 (2.0f / 127)));
  g_assert_true (qb_format_tensor_bytes (qb_format_find ("INT8_T"), 64, 10, &bytes));
  g_assert_cmpuint (bytes, ==, 640 + 2);
  /* A row of the same tensor with smaller values still uses the tensor's
   * scale: values, not rows, decide the codes. */
  quantize_one ("INT8_T", x + 16, 32, 2.0f, q, NULL);
  g_assert_cmpint (q[0], ==, 128 - 64);         /* -1.0 at d = 2/127: -63.5 -> -64 */

  /* FP8 with tensor absmax 448 (E4M3) gives scale 1: the codes are plain
   * round-to-nearest-even conversions, saturating. */
  {
    static const float in[] = { 1.0f, 448.0f, 500.0f, -1.0f, 0x1p-9f, 0x1p-10f, 0x3p-10f,
                                1.0625f, 1.1875f, 1e9f, 0.0f, -0x1p-6f };
    static const guint8 want[] = { 0x38, 0x7e, 0x7e, 0xb8, 0x01, 0x00, 0x02,
                                   0x38, 0x3a, 0x7e, 0x00, 0x88 };
    quantize_one ("FP8_E4M3_T", in, G_N_ELEMENTS (in), 448.0f, q, NULL);
    g_assert_cmpmem (q, sizeof want, want, sizeof want);
    g_assert_true (qb_format_tensor_bytes (qb_format_find ("FP8_E4M3_T"), 12, 2, &bytes));
    g_assert_cmpuint (bytes, ==, 24 + 4);
  }
  {
    static const float in[] = { 1.0f, 57344.0f, 1e6f, 1.125f, 1.375f, -2.0f, 0x1p-16f, 0x1p-14f };
    static const guint8 want[] = { 0x3c, 0x7b, 0x7b, 0x3c, 0x3e, 0xc0, 0x01, 0x04 };
    quantize_one ("FP8_E5M2_T", in, G_N_ELEMENTS (in), 57344.0f, q, NULL);
    g_assert_cmpmem (q, sizeof want, want, sizeof want);
  }
}

static void
test_mxfp4_rounding (void)
{
  /* absmax 6 -> shared exponent 0 (E8M0 127); ties go to the even code. */
  float x[32] = { 6, 5, 3.5f, 2.5f, 0.75f, 0.25f, -6, -1.25f, 7.5f / 2, 1.75f };
  float y[32];
  guint8 q[17];
  static const float want[10] = { 6, 4, 4, 2, 1, 0, -6, -1, 4, 2 };

  quantize_one ("MXFP4", x, 32, 0, q, y);
  g_assert_cmpint (q[0], ==, 127);
  for (int i = 0; i < 10; i++)
    g_assert_cmpfloat (y[i], ==, want[i]);
  /* The whole block scaled by 2^-20 moves only the exponent. */
  for (int i = 0; i < 32; i++)
    x[i] = ldexpf (x[i], -20);
  quantize_one ("MXFP4", x, 32, 0, q, y);
  g_assert_cmpint (q[0], ==, 127 - 20);
  for (int i = 0; i < 10; i++)
    g_assert_cmpfloat (y[i], ==, ldexpf (want[i], -20));
}

static void
test_nf4_levels (void)
{
  float x[64] = { 0 }, y[64];
  guint8 q[36];

  x[0] = -3.0f;     /* -absmax: level 0 */
  x[1] = 3.0f;      /* absmax: level 15 */
  x[2] = 0.0f;      /* level 7 */
  x[3] = 0.2f;
  quantize_one ("NF4", x, 64, 0, q, y);
  g_assert_cmpfloat (f32_le (q), ==, 3.0f);
  g_assert_cmphex (q[4], ==, 0x0f);          /* first value in the high nibble */
  g_assert_cmpint (q[5] >> 4, ==, 7);
  g_assert_cmpfloat (y[0], ==, -3.0f);
  g_assert_cmpfloat (y[1], ==, 3.0f);
  g_assert_cmpfloat (y[2], ==, 0.0f);
  g_assert_cmpfloat (fabsf (y[3] - 0.2f), <, 0.05f * 3.0f);
}

/* NaN, infinities and subnormal blocks give some bytes, never a crash,
 * an out-of-range read or undefined arithmetic (the sanitizer build
 * checks); with plain rounding the blocks without them quantize
 * normally. */
static void
test_non_finite (void)
{
  const gint64 n = 512;
  float x[512], y[512];

  for (int j = 0; j < n; j++)
    x[j] = shared_data->x[j];
  x[3] = NAN;
  x[40] = INFINITY;
  x[41] = -INFINITY;
  x[300] = -NAN;
  /* Values so small that a scale's inverse overflows to infinity. */
  for (int j = 128; j < 192; j++)
    x[j] = shared_data->x[j] * 1e-39f;
  for (guint i = 0; i < qb_format_count (); i++)
    {
      const QbFormat *f = qb_format_get (i);
      guint64 row = 0;
      g_autofree guint8 *q = NULL;

      g_assert_true (qb_format_row_bytes (f, n, &row));
      q = g_malloc (row);
      /* Search and importance (some use row-wide statistics): no crash. */
      {
        QbQuantParams p = { f, shared_data->importance, TRUE, INFINITY };
        f->quantize_row (&p, x, q, n);
        f->dequantize_row (&p, q, y, n);
      }
      /* Plain rounding: values 384.. share no block with the bad ones in
       * block formats of up to 128 values. */
      {
        QbQuantParams p = { f, NULL, FALSE, INFINITY };
        f->quantize_row (&p, x, q, n);
        f->dequantize_row (&p, q, y, n);
      }
      if (f->scope == QB_SCOPE_BLOCK && f->block_size <= 128 && f->family != QB_FAMILY_FLOAT)
        for (int j = 384; j < n; j++)
          if (!isfinite (y[j]))
            g_error ("%s: value %d is %g", f->name, j, y[j]);
    }
}

/* Non-finite and extreme values in the last block of an exactly sized
 * row, for every format: no read past the row (the sanitizer build
 * checks), no crash, and the row's finite blocks stay finite. */
static void
test_non_finite_edges (void)
{
  const gint64 n = 256;
  const float bad[] = { NAN, -NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e-45f };

  for (guint i = 0; i < qb_format_count (); i++)
    {
      const QbFormat *f = qb_format_get (i);
      guint64 row = 0;

      g_assert_true (qb_format_row_bytes (f, n, &row));
      for (guint b = 0; b < G_N_ELEMENTS (bad); b++)
        for (int pos = 0; pos < 3; pos++)
          for (int search = 0; search < 2; search++)
            {
              g_autofree float *x = g_new (float, n);
              g_autofree float *y = g_new (float, n);
              g_autofree guint8 *q = g_malloc (row);
              QbQuantParams p = { f, search ? shared_data->importance : NULL, search, INFINITY };
              /* first, middle or last value of the last 32, or all of them */
              int at[] = { 0, 13, 31 };

              memcpy (x, shared_data->x, n * sizeof (float));
              if (search && pos == 2)
                for (int j = n - 32; j < n; j++)
                  x[j] = bad[b];
              else
                x[n - 32 + at[pos]] = bad[b];
              f->quantize_row (&p, x, q, n);
              f->dequantize_row (&p, q, y, n);
              if (!search && f->scope == QB_SCOPE_BLOCK && f->family != QB_FAMILY_FLOAT
                  && f->block_size <= 128 && isfinite (bad[b]))
                for (int j = 0; j < n - 128; j++)
                  if (!isfinite (y[j]))
                    g_error ("%s: value %d is %g", f->name, j, y[j]);
            }
    }
}

/* Q4_0 and Q5_0 take a block's extreme as ggml's scan does, which skips a
 * NaN: here -5, so -5 comes back exactly, wherever the NaN sits.  (The
 * vector search once found no lane equal to a NaN maximum and read the
 * value after the block: here 100, the next block's first.) */
static void
test_nan_block_extreme (void)
{
  const char *names[] = { "Q4_0", "Q5_0" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    for (int nan_at = 0; nan_at < 32; nan_at++)
      {
        const QbFormat *f = qb_format_find (names[i]);
        const gint64 n = 64;
        const int extreme_at = nan_at == 3 ? 4 : 3;
        g_autofree float *x = g_new (float, n);
        g_autofree float *y = g_new (float, n);
        guint64 row = 0;
        g_autofree guint8 *q = NULL;
        QbQuantParams p = { f, NULL, FALSE, INFINITY };

        g_assert_nonnull (f);
        g_assert_true (qb_format_row_bytes (f, n, &row));
        q = g_malloc (row);
        for (int j = 0; j < n; j++)
          x[j] = 0.25f * (float) ((j % 7) - 3);
        x[nan_at] = NAN;
        x[extreme_at] = -5.0f;
        x[32] = 100.0f;
        f->quantize_row (&p, x, q, n);
        f->dequantize_row (&p, q, y, n);
        if (y[extreme_at] != -5.0f)
          g_error ("%s, NaN at %d: the extreme came back as %g", names[i], nan_at, y[extreme_at]);
        g_assert_cmpfloat (y[32], ==, 100.0f);
      }
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  shared_data = data_new ();

  g_test_add_func ("/formats/table", test_table);
  g_test_add_func ("/formats/accounting", test_accounting);
  g_test_add_func ("/formats/packing-size", test_packing_size);
  g_test_add_func ("/formats/fallbacks", test_fallbacks);
  g_test_add_func ("/formats/search-improves", test_search_improves);
  g_test_add_func ("/formats/tensor-scale", test_tensor_scale);
  g_test_add_func ("/formats/mxfp4-rounding", test_mxfp4_rounding);
  g_test_add_func ("/formats/nf4-levels", test_nf4_levels);
  g_test_add_func ("/formats/non-finite", test_non_finite);
  g_test_add_func ("/formats/non-finite-edges", test_non_finite_edges);
  g_test_add_func ("/formats/nan-block-extreme", test_nan_block_extreme);
  for (guint i = 0; i < qb_format_count (); i++)
    {
      const QbFormat *f = qb_format_get (i);
      g_autofree char *rt = g_strdup_printf ("/formats/round-trip/%s", f->name);
      g_autofree char *se = g_strdup_printf ("/formats/search/%s", f->name);

      g_test_add_data_func (rt, f, test_round_trip);
      g_test_add_data_func (se, f, test_search);
      /* Floats have no scale; a per-tensor scale is fixed; ggml's Q8_0
       * ignores importance as llama.cpp does. */
      if (f->family != QB_FAMILY_FLOAT && f->scope != QB_SCOPE_TENSOR && f->dtype != QB_DTYPE_Q8_0)
        {
          g_autofree char *im = g_strdup_printf ("/formats/importance/%s", f->name);
          g_test_add_data_func (im, f, test_importance);
        }
    }
  ret = g_test_run ();
  data_free (shared_data);
  return ret;
}
