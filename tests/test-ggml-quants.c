/* SPDX-License-Identifier: MIT */
/* test-ggml-quants.c — the ggml kernels against llama.cpp's own output.
 *
 * ../shared/golden/ggml-quants holds 16 rows x 4096 of weight-like data,
 * an importance vector, and what ggml_quantize_chunk and to_float made of
 * them.  Every kernel must reproduce those bytes and floats exactly.
 */
#include <math.h>
#include <string.h>

#include "qb-dtype.h"
#include "qb-format.h"
#include "qb-ggml-quants.h"
#include "qb-ggml-quants-private.h"
#include "qb-test-util.h"

#define N_ROWS 16
#define N_COLS 4096

typedef gsize (*QuantizeFunc) (const float *src, void *dst, gint64 n_rows,
                               gint64 n_per_row, const float *imatrix);

typedef struct {
  const char   *name;
  QbDType       dtype;
  QuantizeFunc  quantize;
  gboolean      has_imatrix;   /* ggml uses importance for this type */
} KernelCase;

static const KernelCase kernel_cases[] = {
  { "Q4_0",   QB_DTYPE_Q4_0,   qb_quantize_q4_0,   TRUE },
  { "Q4_1",   QB_DTYPE_Q4_1,   qb_quantize_q4_1,   TRUE },
  { "Q5_0",   QB_DTYPE_Q5_0,   qb_quantize_q5_0,   TRUE },
  { "Q5_1",   QB_DTYPE_Q5_1,   qb_quantize_q5_1,   TRUE },
  { "Q8_0",   QB_DTYPE_Q8_0,   qb_quantize_q8_0,   FALSE },
  { "Q2_K",   QB_DTYPE_Q2_K,   qb_quantize_q2_K,   TRUE },
  { "Q3_K",   QB_DTYPE_Q3_K,   qb_quantize_q3_K,   TRUE },
  { "Q4_K",   QB_DTYPE_Q4_K,   qb_quantize_q4_K,   TRUE },
  { "Q5_K",   QB_DTYPE_Q5_K,   qb_quantize_q5_K,   TRUE },
  { "Q6_K",   QB_DTYPE_Q6_K,   qb_quantize_q6_K,   TRUE },
  { "IQ4_NL", QB_DTYPE_IQ4_NL, qb_quantize_iq4_nl, TRUE },
  { "IQ4_XS", QB_DTYPE_IQ4_XS, qb_quantize_iq4_xs, TRUE },
};

typedef struct {
  GBytes      *input;
  GBytes      *imatrix;
} Golden;

/* Loads input.f32 and imatrix.f32, or skips the test. */
static gboolean
golden_load (Golden *g)
{
  g_autofree char *in_path = qb_test_shared_path ("golden/ggml-quants/input.f32");
  g_autofree char *im_path = NULL;

  if (in_path == NULL)
    return FALSE;
  im_path = qb_test_shared_path ("golden/ggml-quants/imatrix.f32");
  if (im_path == NULL)
    return FALSE;
  g->input = qb_test_read_file (in_path);
  g->imatrix = qb_test_read_file (im_path);
  g_assert_cmpuint (g_bytes_get_size (g->input), ==, N_ROWS * N_COLS * sizeof (float));
  g_assert_cmpuint (g_bytes_get_size (g->imatrix), ==, N_COLS * sizeof (float));
  return TRUE;
}

static void
golden_clear (Golden *g)
{
  g_clear_pointer (&g->input, g_bytes_unref);
  g_clear_pointer (&g->imatrix, g_bytes_unref);
}

static GBytes *
golden_file (const char *type, gboolean imatrix, const char *suffix)
{
  g_autofree char *rel = g_strdup_printf ("golden/ggml-quants/%s%s%s", type,
                                          imatrix ? "-IMATRIX" : "", suffix);
  g_autofree char *path = qb_test_shared_path (rel);
  return path ? qb_test_read_file (path) : NULL;
}

/* Fails with the row and byte of the first difference. */
static void
assert_same_bytes (const char *what, const guint8 *got, const guint8 *want, gsize n, gsize row_bytes)
{
  for (gsize i = 0; i < n; i++)
    if (got[i] != want[i])
      g_error ("%s: byte %" G_GSIZE_FORMAT " (row %" G_GSIZE_FORMAT ", offset %" G_GSIZE_FORMAT
               ") is 0x%02x, ggml wrote 0x%02x", what, i, i / row_bytes, i % row_bytes, got[i], want[i]);
}

static void
assert_same_floats (const char *what, const float *got, const float *want, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (memcmp (&got[i], &want[i], sizeof (float)) != 0)
      g_error ("%s: value %" G_GSIZE_FORMAT " (row %" G_GSIZE_FORMAT ") is %.9g, ggml gave %.9g",
               what, i, i / N_COLS, got[i], want[i]);
}

/* Quantizes the golden input, compares with TYPE[-IMATRIX].bin, then checks
 * the dequantizer against TYPE[-IMATRIX].dequant.f32. */
static void
check_kernel (const KernelCase *kc, gboolean with_imatrix)
{
  Golden g = { 0 };
  g_autoptr(GBytes) want = NULL;
  g_autoptr(GBytes) want_f32 = NULL;
  g_autofree guint8 *got = NULL;
  g_autofree float *deq = NULL;
  const QbDTypeInfo *info = qb_dtype_info (kc->dtype);
  guint64 row_bytes = 0;
  g_autofree char *what = g_strdup_printf ("%s%s", kc->name, with_imatrix ? "-IMATRIX" : "");
  gsize n;

  if (!golden_load (&g))
    return;
  want = golden_file (kc->name, with_imatrix, ".bin");
  want_f32 = golden_file (kc->name, with_imatrix, ".dequant.f32");
  if (want == NULL || want_f32 == NULL)
    {
      golden_clear (&g);
      return;
    }

  g_assert_true (qb_dtype_bytes (kc->dtype, N_COLS, &row_bytes));
  g_assert_cmpuint (g_bytes_get_size (want), ==, N_ROWS * row_bytes);
  got = g_malloc0 (N_ROWS * row_bytes);
  n = kc->quantize (g_bytes_get_data (g.input, NULL), got, N_ROWS, N_COLS,
                    with_imatrix ? g_bytes_get_data (g.imatrix, NULL) : NULL);
  g_assert_cmpuint (n, ==, N_ROWS * row_bytes);
  assert_same_bytes (what, got, g_bytes_get_data (want, NULL), n, row_bytes);

  deq = g_new (float, N_ROWS * N_COLS);
  info->to_float (g_bytes_get_data (want, NULL), deq, N_ROWS * N_COLS);
  assert_same_floats (what, deq, g_bytes_get_data (want_f32, NULL), N_ROWS * N_COLS);
  golden_clear (&g);
}

static void
test_kernel_plain (gconstpointer data)
{
  check_kernel (data, FALSE);
}

static void
test_kernel_imatrix (gconstpointer data)
{
  const KernelCase *kc = data;
  check_kernel (kc, kc->has_imatrix);
}

/* The registry's row of the type, one row at a time, is the same kernel:
 * with importance it must give the -IMATRIX bytes (Q8_0 ignores it). */
static void
test_registry_row (gconstpointer data)
{
  const KernelCase *kc = data;
  const QbFormat *f = qb_format_find (kc->name);
  Golden g = { 0 };
  g_autoptr(GBytes) want = NULL;
  g_autofree guint8 *got = NULL;
  g_autofree float *deq = NULL;
  guint64 row_bytes = 0;
  QbQuantParams p = { f, NULL, FALSE, 0 };
  const float *input;

  g_assert_nonnull (f);
  g_assert_cmpint (f->dtype, ==, kc->dtype);
  if (!golden_load (&g))
    return;
  want = golden_file (kc->name, kc->has_imatrix, ".bin");
  if (want == NULL)
    {
      golden_clear (&g);
      return;
    }
  input = g_bytes_get_data (g.input, NULL);
  p.importance = g_bytes_get_data (g.imatrix, NULL);
  g_assert_true (qb_format_row_bytes (f, N_COLS, &row_bytes));
  got = g_malloc (N_ROWS * row_bytes);
  for (int r = 0; r < N_ROWS; r++)
    f->quantize_row (&p, input + (gsize) r * N_COLS, got + r * row_bytes, N_COLS);
  assert_same_bytes (kc->name, got, g_bytes_get_data (want, NULL), N_ROWS * row_bytes, row_bytes);

  deq = g_new (float, N_COLS);
  f->dequantize_row (&p, got, deq, N_COLS);
  for (int j = 0; j < N_COLS; j++)
    g_assert_true (isfinite (deq[j]));
  golden_clear (&g);
}

/* F16 and BF16 through the registry: ggml's conversions, and back. */
static void
test_float_golden (gconstpointer data)
{
  const char *name = data;
  const QbFormat *f = qb_format_find (name);
  QbQuantParams p = { f, NULL, FALSE, 0 };
  Golden g = { 0 };
  g_autoptr(GBytes) want = NULL;
  g_autoptr(GBytes) want_f32 = NULL;
  g_autofree guint8 *got = NULL;
  g_autofree float *deq = NULL;
  const float *input;

  if (!golden_load (&g))
    return;
  want = golden_file (name, FALSE, ".bin");
  want_f32 = golden_file (name, FALSE, ".dequant.f32");
  if (want == NULL || want_f32 == NULL)
    {
      golden_clear (&g);
      return;
    }
  input = g_bytes_get_data (g.input, NULL);
  got = g_malloc (N_ROWS * N_COLS * 2);
  deq = g_new (float, N_ROWS * N_COLS);
  for (int r = 0; r < N_ROWS; r++)
    {
      f->quantize_row (&p, input + (gsize) r * N_COLS, got + r * N_COLS * 2, N_COLS);
      f->dequantize_row (&p, got + r * N_COLS * 2, deq + (gsize) r * N_COLS, N_COLS);
    }
  assert_same_bytes (name, got, g_bytes_get_data (want, NULL), N_ROWS * N_COLS * 2, N_COLS * 2);
  assert_same_floats (name, deq, g_bytes_get_data (want_f32, NULL), N_ROWS * N_COLS);
  golden_clear (&g);
}

/* Quantizing rows one at a time, or all at once, or with rows in another
 * order gives the same bytes per row: rows are independent. */
static void
test_row_independence (gconstpointer data)
{
  const KernelCase *kc = data;
  Golden g = { 0 };
  guint64 row_bytes = 0;
  g_autofree guint8 *all = NULL;
  g_autofree guint8 *one = NULL;
  const float *input;

  if (!golden_load (&g))
    return;
  input = g_bytes_get_data (g.input, NULL);
  g_assert_true (qb_dtype_bytes (kc->dtype, N_COLS, &row_bytes));
  all = g_malloc (N_ROWS * row_bytes);
  one = g_malloc (row_bytes);
  for (int with_imatrix = 0; with_imatrix < 2; with_imatrix++)
    {
      const float *im = with_imatrix ? g_bytes_get_data (g.imatrix, NULL) : NULL;
      kc->quantize (input, all, N_ROWS, N_COLS, im);
      for (int r = N_ROWS - 1; r >= 0; r--)
        {
          kc->quantize (input + (gsize) r * N_COLS, one, 1, N_COLS, im);
          g_assert_cmpmem (one, row_bytes, all + r * row_bytes, row_bytes);
        }
      /* Without importance every block depends on its own values only,
       * so cutting the rows in four changes nothing. */
      if (!with_imatrix)
        {
          g_autofree guint8 *quarters = g_malloc (N_ROWS * row_bytes);
          kc->quantize (input, quarters, N_ROWS * 4, N_COLS / 4, NULL);
          g_assert_cmpmem (quarters, N_ROWS * row_bytes, all, N_ROWS * row_bytes);
        }
    }
  golden_clear (&g);
}

/* Rows of a few blocks, not a multiple of the eight groups the kernels
 * search side by side, with an importance array of exactly n floats (so
 * that AddressSanitizer sees any read past it): finite results, the same
 * each time, and close to the input. */
static void
test_narrow_rows (gconstpointer data)
{
  const KernelCase *kc = data;
  const QbDTypeInfo *info = qb_dtype_info (kc->dtype);
  const gint64 blocks[] = { 1, 3, 5, 9 };

  for (gsize k = 0; k < G_N_ELEMENTS (blocks); k++)
    {
      gint64 n = blocks[k] * info->block_size;
      g_autofree float *x = g_new (float, n);
      g_autofree float *w = g_new (float, n);
      g_autofree float *y = g_new (float, n);
      g_autofree guint8 *q1 = NULL;
      g_autofree guint8 *q2 = NULL;
      guint64 row_bytes = 0;
      double err = 0, sig = 0;

      g_assert_true (qb_dtype_bytes (kc->dtype, n, &row_bytes));
      q1 = g_malloc (row_bytes);
      q2 = g_malloc (row_bytes);
      for (gint64 i = 0; i < n; i++)
        {
          x[i] = sinf (i * 0.37f) * (1 + (i % 11 == 0) * 4);
          w[i] = 1 + (i % 5);
        }
      kc->quantize (x, q1, 1, n, w);
      kc->quantize (x, q2, 1, n, w);
      g_assert_cmpmem (q1, row_bytes, q2, row_bytes);
      info->to_float (q1, y, n);
      for (gint64 i = 0; i < n; i++)
        {
          g_assert_true (isfinite (y[i]));
          err += (x[i] - y[i]) * (x[i] - y[i]);
          sig += x[i] * x[i];
        }
      g_assert_cmpfloat (sqrt (err / sig), <, 0.5);
    }
}

/* All-zero, constant, single-spike and tiny blocks take ggml's special
 * branches; they must give blocks that dequantize to finite values close
 * to the input, and the dequantized zeros must stay zero. */
static void
test_degenerate_blocks (gconstpointer data)
{
  const KernelCase *kc = data;
  const int n = 512;
  g_autofree float *x = g_new0 (float, n);
  g_autofree float *y = g_new (float, n);
  g_autofree float *w = g_new (float, n);
  g_autofree guint8 *q = NULL;
  const QbDTypeInfo *info = qb_dtype_info (kc->dtype);
  guint64 row_bytes = 0;

  g_assert_true (qb_dtype_bytes (kc->dtype, n, &row_bytes));
  q = g_malloc (row_bytes);
  for (int i = 0; i < n; i++)
    w[i] = 1.0f + (i % 7);
  /* 0..255 zero, 256..287 constant -0.5, 288..319 one spike, then tiny. */
  for (int i = 256; i < 288; i++)
    x[i] = -0.5f;
  x[300] = 3.0f;
  for (int i = 320; i < n; i++)
    x[i] = ((i % 5) - 2) * 1e-20f;

  for (int with_w = 0; with_w < 2; with_w++)
    {
      kc->quantize (x, q, 1, n, with_w ? w : NULL);
      info->to_float (q, y, n);
      for (int i = 0; i < n; i++)
        {
          g_assert_true (isfinite (y[i]));
          if (i < 256)
            g_assert_cmpfloat (y[i], ==, 0.0f);
          else
            g_assert_cmpfloat (fabsf (y[i] - x[i]), <=, 0.5f);
        }
    }
}

/* Eight or more blocks go through the batched kernels.  Q8_0 rounds half
 * away from zero: with the largest value 127 (d = 1), x.5 becomes x + 1
 * away from zero, just below x.5 stays x. */
static void
test_q8_0_rounding (void)
{
  const int nb = 9;
  g_autofree float *x = g_new0 (float, nb * 32);
  g_autofree guint8 *q = g_malloc (nb * 34);

  for (int b = 0; b < nb; b++)
    {
      float *p = x + b * 32;
      p[0] = 127.0f;
      for (int j = 1; j < 32; j++)
        {
          float half = (j * 4 + b) % 126 + 0.5f;
          p[j] = (j % 2 ? 1 : -1) * (j % 4 < 2 ? half : nextafterf (half, 0.0f));
        }
    }
  qb_quantize_q8_0 (x, q, 1, nb * 32, NULL);
  for (int b = 0; b < nb; b++)
    {
      const guint8 *blk = q + b * 34;
      g_assert_cmpuint (blk[0] | blk[1] << 8, ==, 0x3c00);   /* d = 1.0 */
      for (int j = 0; j < 32; j++)
        g_assert_cmpint ((gint8) blk[2 + j], ==, (int) roundf (x[b * 32 + j]));
    }
}

/* Q4_0 scales by the value of largest magnitude, the first of two equal
 * magnitudes of opposite sign: d = max / -8; a zero block by +0. */
static void
test_q4_0_signed_max (void)
{
  const int nb = 10;
  g_autofree float *x = g_new0 (float, nb * 32);
  g_autofree guint8 *q = g_malloc (nb * 18);

  for (int b = 0; b < nb; b++)
    {
      float *p = x + b * 32;
      float first = b % 2 ? 2.0f : -2.0f;
      for (int j = 0; j < 32; j++)
        p[j] = 0.1f * (j % 3);
      p[3 + b] = first;
      p[20 + b] = -first;
    }
  qb_quantize_q4_0 (x, q, 1, nb * 32, NULL);
  for (int b = 0; b < nb; b++)
    {
      const guint8 *blk = q + b * 18;
      guint h = blk[0] | blk[1] << 8;
      int j = 3 + b;
      int code = j < 16 ? blk[2 + j] & 0x0f : blk[2 + j - 16] >> 4;

      /* d = -2 / -8 = 0.25 (0x3400) or 2 / -8 = -0.25 (0xb400); the
       * first extreme gets code 0 (x/d + 8.5 = 0.5). */
      g_assert_cmpuint (h, ==, b % 2 ? 0xb400 : 0x3400);
      g_assert_cmpint (code, ==, 0);
    }

  /* A batch of zero blocks: d = +0 / -8 = -0 (f16 0x8000), codes 8. */
  memset (x, 0, sizeof (float) * nb * 32);
  qb_quantize_q4_0 (x, q, 1, nb * 32, NULL);
  for (int b = 0; b < nb; b++)
    {
      const guint8 *blk = q + b * 18;
      g_assert_cmpuint (blk[0] | blk[1] << 8, ==, 0x8000);
      for (int j = 0; j < 16; j++)
        g_assert_cmpuint (blk[2 + j], ==, 0x88);
    }
}

/* Blocks so small that 1/d overflows: every x/d is infinite or NaN,
 * which ggml's x86 build converts to the integer indefinite (low byte 0):
 * Q8_0 codes 0 and a zero scale, Q4_0 codes 0 (checked against
 * libggml-base's quantize_row_*_ref on 320,000 such blocks). */
static void
test_overflowing_inverse (void)
{
  const int nb = 9;
  g_autofree float *x = g_new (float, nb * 32);
  g_autofree guint8 *q = g_malloc (nb * 34);

  for (int i = 0; i < nb * 32; i++)
    x[i] = 1e-40f * ((i * 7) % 11 - 5);
  qb_quantize_q8_0 (x, q, 1, nb * 32, NULL);
  for (int i = 0; i < nb * 34; i++)
    g_assert_cmpuint (q[i], ==, 0);
  qb_quantize_q4_0 (x, q, 1, nb * 32, NULL);
  for (int b = 0; b < nb; b++)
    for (int j = 2; j < 18; j++)
      g_assert_cmpuint (q[b * 18 + j], ==, 0);
}

/* One value of an adversarial block: ordinary values over a wide range of
 * scales, exact halves, ties of opposite sign, zeros of both signs,
 * subnormals, infinities and NaN. */
static float
adversarial_value (GRand *rand, float scale, float tie)
{
  switch (g_rand_int_range (rand, 0, 24))
    {
    case 0: return tie;
    case 1: return -tie;
    case 2: return 0.0f;
    case 3: return -0.0f;
    case 4: return scale * (g_rand_int_range (rand, -16, 17) + 0.5f) / 16.0f;
    case 5: return g_rand_int_range (rand, 0, 400) == 0 ? NAN : scale;
    case 6: return g_rand_int_range (rand, 0, 400) == 0 ? -INFINITY : -scale;
    case 7: return 1e-40f * g_rand_int_range (rand, -8, 9);   /* subnormal */
    default: return scale * (float) g_rand_double_range (rand, -1.0, 1.0);
    }
}

/* The run-time selected kernels (AVX2 where the CPU has it) give the same
 * bytes as the portable ones on any data, whole batches of eight blocks
 * and tails alike. */
static void
test_selected_kernels (gconstpointer data)
{
  QbDType dtype = GPOINTER_TO_INT (data);
  gsize block_bytes = dtype == QB_DTYPE_Q8_0 ? sizeof (QbBlockQ8_0) : sizeof (QbBlockQ4_0);
  QbBlockKernel portable, selected;
  g_autoptr(GRand) rand = g_rand_new_with_seed (20261124);
  g_autofree float *x = g_new (float, 40 * QB_QK);
  g_autofree guint8 *a = g_malloc (40 * block_bytes);
  g_autofree guint8 *b = g_malloc (40 * block_bytes);

  g_assert_true (qb_ggml_block_kernels (dtype, &portable, &selected));
  for (int round = 0; round < 20000; round++)
    {
      gint64 nb = g_rand_int_range (rand, 1, 41);

      for (gint64 k = 0; k < nb; k++)
        {
          float scale = ldexpf (1.0f, g_rand_int_range (rand, -140, 120));
          float tie = scale * (float) g_rand_double_range (rand, 0.5, 1.0);
          gboolean plain = g_rand_boolean (rand);

          for (int j = 0; j < QB_QK; j++)
            x[k * QB_QK + j] = plain ? scale * (float) g_rand_double_range (rand, -1.0, 1.0)
                                     : adversarial_value (rand, scale, tie);
        }
      memset (a, 0xaa, nb * block_bytes);
      memset (b, 0x55, nb * block_bytes);
      portable (x, a, nb);
      selected (x, b, nb);
      if (memcmp (a, b, nb * block_bytes) != 0)
        {
          for (gint64 k = 0; k < nb; k++)
            if (memcmp (a + k * block_bytes, b + k * block_bytes, block_bytes) != 0)
              g_error ("round %d: block %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                       " differs (first value %a)", round, k, nb, x[k * QB_QK]);
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (kernel_cases); i++)
    {
      const KernelCase *kc = &kernel_cases[i];
      g_autofree char *p1 = g_strdup_printf ("/ggml-quants/golden/%s", kc->name);
      g_autofree char *p3 = g_strdup_printf ("/ggml-quants/rows/%s", kc->name);
      g_autofree char *p4 = g_strdup_printf ("/ggml-quants/degenerate/%s", kc->name);

      g_test_add_data_func (p1, kc, test_kernel_plain);
      if (kc->has_imatrix)
        {
          g_autofree char *p2 = g_strdup_printf ("/ggml-quants/golden/%s-IMATRIX", kc->name);
          g_test_add_data_func (p2, kc, test_kernel_imatrix);
        }
      g_test_add_data_func (p3, kc, test_row_independence);
      {
        g_autofree char *p5 = g_strdup_printf ("/ggml-quants/registry/%s", kc->name);
        g_test_add_data_func (p5, kc, test_registry_row);
      }
      g_test_add_data_func (p4, kc, test_degenerate_blocks);
      {
        g_autofree char *p6 = g_strdup_printf ("/ggml-quants/narrow/%s", kc->name);
        g_test_add_data_func (p6, kc, test_narrow_rows);
      }
    }
  g_test_add_func ("/ggml-quants/q8_0/rounding", test_q8_0_rounding);
  g_test_add_func ("/ggml-quants/q4_0/signed-max", test_q4_0_signed_max);
  g_test_add_func ("/ggml-quants/overflowing-inverse", test_overflowing_inverse);
  g_test_add_data_func ("/ggml-quants/q8_0/selected-kernel", GINT_TO_POINTER (QB_DTYPE_Q8_0),
                        test_selected_kernels);
  g_test_add_data_func ("/ggml-quants/q4_0/selected-kernel", GINT_TO_POINTER (QB_DTYPE_Q4_0),
                        test_selected_kernels);
  g_test_add_data_func ("/ggml-quants/golden/F16", "F16", test_float_golden);
  g_test_add_data_func ("/ggml-quants/golden/BF16", "BF16", test_float_golden);
  return g_test_run ();
}
