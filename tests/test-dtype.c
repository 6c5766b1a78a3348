/* SPDX-License-Identifier: MIT */
/* test-dtype.c — the storage type table and scalar conversions. */
#include <math.h>
#include <string.h>

#include "qb-dtype.h"

static float
bits_to_float (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

/* Every half converts to float and back to itself (NaNs stay NaN). */
static void
test_fp16_round_trip (void)
{
  for (guint32 h = 0; h < 0x10000; h++)
    {
      float f = qb_fp16_to_fp32 ((guint16) h);
      guint16 back = qb_fp32_to_fp16 (f);

      if (isnan (f))
        g_assert_true (isnan (qb_fp16_to_fp32 (back)));
      else
        g_assert_cmphex (back, ==, h);
    }
}

/* Rounding to nearest, ties to even, overflow to infinity. */
static void
test_fp16_rounding (void)
{
  /* 1 + 2^-11 is halfway between 1 and the next half: ties to even (1). */
  g_assert_cmphex (qb_fp32_to_fp16 (1.0f + ldexpf (1, -11)), ==, 0x3c00);
  /* 1 + 3*2^-11 is halfway between two halves: rounds up to even 0x3c02. */
  g_assert_cmphex (qb_fp32_to_fp16 (1.0f + 3 * ldexpf (1, -11)), ==, 0x3c02);
  g_assert_cmphex (qb_fp32_to_fp16 (65504.0f), ==, 0x7bff);
  g_assert_cmphex (qb_fp32_to_fp16 (65520.0f), ==, 0x7c00);
  g_assert_cmphex (qb_fp32_to_fp16 (-1e9f), ==, 0xfc00);
  g_assert_cmphex (qb_fp32_to_fp16 (ldexpf (1, -24)), ==, 0x0001);
  g_assert_cmphex (qb_fp32_to_fp16 (ldexpf (1, -25)), ==, 0x0000);      /* tie to even: 0 */
  g_assert_cmphex (qb_fp32_to_fp16 (ldexpf (3, -25)), ==, 0x0002);      /* tie to even: 2 */
  g_assert_cmphex (qb_fp32_to_fp16 (-0.0f), ==, 0x8000);
}

static void
test_bf16 (void)
{
  g_assert_cmphex (qb_fp32_to_bf16 (1.0f), ==, 0x3f80);
  g_assert_cmphex (qb_fp32_to_bf16 (bits_to_float (0x3f808000)), ==, 0x3f80);  /* tie: even */
  g_assert_cmphex (qb_fp32_to_bf16 (bits_to_float (0x3f818000)), ==, 0x3f82);  /* tie: even */
  g_assert_cmphex (qb_fp32_to_bf16 (bits_to_float (0x7fc00001)), ==, 0x7fc0);
  g_assert_cmpfloat (qb_bf16_to_fp32 (0xc000), ==, -2.0f);
}

static void
test_fp8 (void)
{
  g_assert_cmpfloat (qb_fp8_e4m3_to_fp32 (0x7e), ==, 448.0f);
  g_assert_true (isnan (qb_fp8_e4m3_to_fp32 (0x7f)));
  g_assert_cmpfloat (qb_fp8_e4m3_to_fp32 (0x01), ==, ldexpf (1, -9));
  g_assert_cmpfloat (qb_fp8_e4m3_to_fp32 (0x38), ==, 1.0f);
  g_assert_cmpfloat (qb_fp8_e5m2_to_fp32 (0x3c), ==, 1.0f);
  g_assert_cmpfloat (qb_fp8_e5m2_to_fp32 (0x7b), ==, 57344.0f);
}

static void
test_table (void)
{
  guint64 bytes = 0;

  g_assert_cmpstr (qb_dtype_name (QB_DTYPE_Q4_K), ==, "Q4_K");
  g_assert_cmpint (qb_dtype_from_name ("q6_k"), ==, QB_DTYPE_Q6_K);
  g_assert_cmpint (qb_dtype_from_name ("nonsense"), ==, QB_DTYPE_INVALID);
  g_assert_null (qb_dtype_info (4));               /* removed Q4_2 */
  g_assert_null (qb_dtype_info (500));
  g_assert_cmpstr (qb_dtype_name (500), ==, "type 500");
  g_assert_true (qb_dtype_bytes (QB_DTYPE_Q4_K, 512, &bytes));
  g_assert_cmpuint (bytes, ==, 288);
  g_assert_false (qb_dtype_bytes (QB_DTYPE_Q4_K, 172, &bytes));
  g_assert_false (qb_dtype_bytes (QB_DTYPE_F64, G_MAXINT64, &bytes));   /* overflow */
  g_assert_false (qb_dtype_is_readable (QB_DTYPE_IQ2_XXS));
  g_assert_true (qb_dtype_is_readable (QB_DTYPE_BF16));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dtype/fp16/round-trip", test_fp16_round_trip);
  g_test_add_func ("/dtype/fp16/rounding", test_fp16_rounding);
  g_test_add_func ("/dtype/bf16", test_bf16);
  g_test_add_func ("/dtype/fp8", test_fp8);
  g_test_add_func ("/dtype/table", test_table);
  return g_test_run ();
}
