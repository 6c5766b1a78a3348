/* SPDX-License-Identifier: MIT */
/* qb-format.c — the format table and its queries.
 *
 * Each row names a format and says how it is stored; the row functions
 * live in one file per family (qb-format-*.c) and read the row's bits,
 * block size and scope, so a family's rows share them.
 */
#include "qb-format-private.h"
#include "qb-ggml-quants-private.h"

#include <math.h>
#include <string.h>

#define FLOAT_ROW(nm, dt, nbits, text)                                        \
  { .name = nm, .family = QB_FAMILY_FLOAT, .summary = text,                   \
    .dtype = QB_DTYPE_##dt, .bits = nbits, .block_size = 1,                   \
    .block_bytes = nbits / 8, .scope = QB_SCOPE_BLOCK,                        \
    .quantize_row = qb_format_float_quantize_row,                             \
    .dequantize_row = qb_format_float_dequantize_row }

#define GGML_ROW(dt, nbits, bs, bb, asym, fb, kernel, kernel_imp, text)       \
  { .name = #dt, .family = QB_FAMILY_GGML, .summary = text,                   \
    .dtype = QB_DTYPE_##dt, .bits = nbits, .block_size = bs,                  \
    .block_bytes = bb, .scope = QB_SCOPE_BLOCK, .asymmetric = asym,           \
    .fallback = fb, .device_kernel = kernel,                                  \
    .device_kernel_imatrix = kernel_imp,                                      \
    .quantize_row = qb_format_ggml_quantize_row,                              \
    .dequantize_row = qb_format_ggml_dequantize_row }

/* INTn rows.  Groups: f16 scale (+ u8 zero) and g·n/8 code bytes. */
#define INT_FIELDS(n)                                                         \
  .family = QB_FAMILY_INT, .dtype = QB_DTYPE_INVALID, .bits = n,              \
  .device_kernel = "quantize_int",                                            \
  .quantize_row = qb_format_int_quantize_row,                                 \
  .dequantize_row = qb_format_int_dequantize_row

#define INT_TENSOR(n)                                                         \
  { .name = "INT" #n "_T", INT_FIELDS (n), .scope = QB_SCOPE_TENSOR,          \
    .scale_bytes = 2,                                                         \
    .summary = #n "-bit integers, symmetric, one f16 scale per tensor" }

#define INT_CHANNEL(n, sfx, asym, kind)                                       \
  { .name = "INT" #n "_CH" sfx, INT_FIELDS (n), .scope = QB_SCOPE_CHANNEL,    \
    .scale_bytes = 2 + asym, .asymmetric = asym,                              \
    .summary = #n "-bit integers, " kind ", f16 scale per row (output channel)" }

#define INT_GROUP(n, g, sfx, asym, fb, kind)                                  \
  { .name = "INT" #n "_G" #g sfx, INT_FIELDS (n), .scope = QB_SCOPE_BLOCK,    \
    .block_size = g, .block_bytes = 2 + asym + g * n / 8, .asymmetric = asym, \
    .fallback = fb,                                                           \
    .summary = #n "-bit integers, " kind ", f16 scale per " #g " values" }

#define INT_ROWS(n)                                                           \
  INT_TENSOR (n),                                                             \
  INT_CHANNEL (n, "", FALSE, "symmetric"),                                    \
  INT_CHANNEL (n, "_ASYM", TRUE, "u8 zero point"),                            \
  INT_GROUP (n, 32, "", FALSE, "INT" #n "_CH", "symmetric"),                  \
  INT_GROUP (n, 32, "_ASYM", TRUE, "INT" #n "_CH_ASYM", "u8 zero point"),     \
  INT_GROUP (n, 64, "", FALSE, "INT" #n "_G32", "symmetric"),                 \
  INT_GROUP (n, 64, "_ASYM", TRUE, "INT" #n "_G32_ASYM", "u8 zero point"),    \
  INT_GROUP (n, 128, "", FALSE, "INT" #n "_G64", "symmetric"),                \
  INT_GROUP (n, 128, "_ASYM", TRUE, "INT" #n "_G64_ASYM", "u8 zero point"),   \
  INT_GROUP (n, 256, "", FALSE, "INT" #n "_G128", "symmetric"),               \
  INT_GROUP (n, 256, "_ASYM", TRUE, "INT" #n "_G128_ASYM", "u8 zero point")

#define FP8_ROWS(nm, text)                                                    \
  { .name = "FP8_" #nm "_T", .family = QB_FAMILY_FP8,                         \
    .summary = "FP8 " #nm " (" text "), f32 scale per tensor",                \
    .dtype = QB_DTYPE_INVALID, .bits = 8, .scope = QB_SCOPE_TENSOR,           \
    .scale_bytes = 4, .quantize_row = qb_format_fp8_quantize_row,             \
    .dequantize_row = qb_format_fp8_dequantize_row,                           \
    .device_kernel = "quantize_fp8" },                                        \
  { .name = "FP8_" #nm "_CH", .family = QB_FAMILY_FP8,                        \
    .summary = "FP8 " #nm " (" text "), f32 scale per row (output channel)",  \
    .dtype = QB_DTYPE_INVALID, .bits = 8, .scope = QB_SCOPE_CHANNEL,          \
    .scale_bytes = 4, .quantize_row = qb_format_fp8_quantize_row,             \
    .dequantize_row = qb_format_fp8_dequantize_row,                           \
    .device_kernel = "quantize_fp8" }

static const QbFormat formats[] = {
  FLOAT_ROW ("F32",  F32,  32, "32-bit float, unchanged"),
  FLOAT_ROW ("F16",  F16,  16, "IEEE half, rounded to nearest even"),
  FLOAT_ROW ("BF16", BF16, 16, "bfloat16, rounded to nearest even"),

  /*        type    bits block bytes asym   fallback  device kernel      its importance kernel
   *                                                                     (Q8_0 ignores importance) */
  GGML_ROW (Q4_0,   4,   32,   18,   FALSE, NULL,     "quantize_q4_0",   "quantize_q4_0_imatrix",
            "llama.cpp 4-bit, f16 scale per 32"),
  GGML_ROW (Q4_1,   4,   32,   20,   TRUE,  NULL,     "quantize_q4_1",   "quantize_q4_1_imatrix",
            "llama.cpp 4-bit, f16 scale and minimum per 32"),
  GGML_ROW (Q5_0,   5,   32,   22,   FALSE, NULL,     "quantize_q5_0",   "quantize_q5_0_imatrix",
            "llama.cpp 5-bit, f16 scale per 32"),
  GGML_ROW (Q5_1,   5,   32,   24,   TRUE,  NULL,     "quantize_q5_1",   "quantize_q5_1_imatrix",
            "llama.cpp 5-bit, f16 scale and minimum per 32"),
  GGML_ROW (Q8_0,   8,   32,   34,   FALSE, NULL,     "quantize_q8_0",   "quantize_q8_0",
            "llama.cpp 8-bit, f16 scale per 32"),
  GGML_ROW (Q2_K,   2,   256,  84,   TRUE,  "IQ4_NL", "quantize_q2_k",   NULL,
            "K-quant 2-bit, 4-bit scales and minimums per 16"),
  GGML_ROW (Q3_K,   3,   256,  110,  FALSE, "IQ4_NL", "quantize_q3_k",   NULL,
            "K-quant 3-bit, 6-bit scales per 16"),
  GGML_ROW (Q4_K,   4,   256,  144,  TRUE,  "Q5_0",   "quantize_q4_k",   "quantize_q4_k_imatrix",
            "K-quant 4-bit, 6-bit scales and minimums per 32"),
  GGML_ROW (Q5_K,   5,   256,  176,  TRUE,  "Q5_1",   "quantize_q5_k",   "quantize_q5_k_imatrix",
            "K-quant 5-bit, 6-bit scales and minimums per 32"),
  GGML_ROW (Q6_K,   6,   256,  210,  FALSE, "Q8_0",   "quantize_q6_k",   "quantize_q6_k_imatrix",
            "K-quant 6-bit, 8-bit scales per 16"),
  GGML_ROW (IQ4_NL, 4,   32,   18,   FALSE, NULL,     "quantize_iq4_nl", NULL,
            "non-linear 4-bit levels, f16 scale per 32"),
  GGML_ROW (IQ4_XS, 4,   256,  136,  FALSE, "IQ4_NL", "quantize_iq4_xs", NULL,
            "non-linear 4-bit levels, 6-bit scales per 32"),

  INT_ROWS (2), INT_ROWS (3), INT_ROWS (4), INT_ROWS (5),
  INT_ROWS (6), INT_ROWS (7), INT_ROWS (8),

  { .name = "NF4", .family = QB_FAMILY_NF, .dtype = QB_DTYPE_INVALID,
    .summary = "4-bit NormalFloat (bitsandbytes), f32 absmax per 64",
    .bits = 4, .block_size = 64, .block_bytes = 36, .scope = QB_SCOPE_BLOCK,
    .fallback = "INT4_G32",
    .quantize_row = qb_format_nf4_quantize_row,
    .dequantize_row = qb_format_nf4_dequantize_row,
    .device_kernel = "quantize_nf4" },
  { .name = "MXFP4", .family = QB_FAMILY_MX, .dtype = QB_DTYPE_INVALID,
    .summary = "OCP MX FP4: E2M1 values, E8M0 power-of-two scale per 32",
    .bits = 4, .block_size = 32, .block_bytes = 17, .scope = QB_SCOPE_BLOCK,
    .fallback = "INT4_CH",
    .quantize_row = qb_format_mxfp4_quantize_row,
    .dequantize_row = qb_format_mxfp4_dequantize_row,
    .device_kernel = "quantize_mxfp4" },

  FP8_ROWS (E4M3, "max 448"),
  FP8_ROWS (E5M2, "max 57344"),
};

guint
qb_format_count (void)
{
  return G_N_ELEMENTS (formats);
}

const QbFormat *
qb_format_get (guint index)
{
  return index < G_N_ELEMENTS (formats) ? &formats[index] : NULL;
}

const QbFormat *
qb_format_find (const char *name)
{
  if (name == NULL)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    if (g_ascii_strcasecmp (formats[i].name, name) == 0)
      return &formats[i];
  return NULL;
}

const QbFormat *
qb_format_for_dtype (QbDType dtype)
{
  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    if (formats[i].dtype == dtype && dtype != QB_DTYPE_INVALID)
      return &formats[i];
  return NULL;
}

gboolean
qb_format_fits (const QbFormat *format, gint64 n)
{
  g_return_val_if_fail (format != NULL, FALSE);
  if (n <= 0 || n > G_MAXINT64 / 8)
    return FALSE;
  return format->scope != QB_SCOPE_BLOCK || n % format->block_size == 0;
}

gboolean
qb_format_row_bytes (const QbFormat *format, gint64 n, guint64 *bytes)
{
  guint64 code_bytes;

  if (!qb_format_fits (format, n))
    return FALSE;
  if (format->scope == QB_SCOPE_BLOCK)
    {
      *bytes = (guint64) (n / format->block_size) * format->block_bytes;
      return TRUE;
    }
  code_bytes = ((guint64) n * format->bits + 7) / 8;
  *bytes = code_bytes + (format->scope == QB_SCOPE_CHANNEL ? format->scale_bytes : 0);
  return TRUE;
}

float
qb_format_tensor_scale (const QbFormat *format, float tensor_absmax)
{
  if (format->family == QB_FAMILY_INT)
    {
      int top = (1 << (format->bits - 1)) - 1;
      return qb_fp16_to_fp32 (qb_fp32_to_fp16 (tensor_absmax / (top > 0 ? top : 1)));
    }
  if (format->family == QB_FAMILY_FP8)
    {
      float max = g_str_has_prefix (format->name, "FP8_E4M3") ? 448.0f : 57344.0f;
      return tensor_absmax > 0 && isfinite (tensor_absmax) ? tensor_absmax / max : 1.0f;
    }
  return 1.0f;
}

gboolean
qb_format_tensor_bytes (const QbFormat *format, gint64 n, gint64 n_rows, guint64 *bytes)
{
  guint64 row = 0;

  if (n_rows < 0 || !qb_format_row_bytes (format, n, &row))
    return FALSE;
  if (row != 0 && (guint64) n_rows > (G_MAXUINT64 - format->scale_bytes) / row)
    return FALSE;
  *bytes = row * (guint64) n_rows;
  if (format->scope == QB_SCOPE_TENSOR)
    *bytes += format->scale_bytes;
  return TRUE;
}

double
qb_format_bpw (const QbFormat *format, gint64 n)
{
  guint64 row = 0;

  if (!qb_format_row_bytes (format, n, &row))
    return NAN;
  return (double) row * 8.0 / (double) n;
}

const QbFormat *
qb_format_fit (const QbFormat *format, gint64 n)
{
  /* Chains are short; the bound only guards against a cycle in the table. */
  for (guint step = 0; format != NULL && step < 16; step++)
    {
      if (qb_format_fits (format, n))
        return format;
      format = qb_format_find (format->fallback ? format->fallback : "F16");
    }
  return NULL;
}

const char *
qb_format_family_name (QbFormatFamily family)
{
  switch (family)
    {
    case QB_FAMILY_FLOAT: return "float";
    case QB_FAMILY_GGML:  return "ggml";
    case QB_FAMILY_INT:   return "int";
    case QB_FAMILY_NF:    return "normal-float";
    case QB_FAMILY_MX:    return "microscaling";
    case QB_FAMILY_FP8:   return "fp8";
    default:              return "unknown";
    }
}

/* ---- shared by the families --------------------------------------------- */

/* Eight partial sums keep the loop vectorizable; the order is fixed, so
 * the result is deterministic. */
/* Sixteen partial sums keep the loops vectorizable; the order is fixed,
 * so the result is deterministic. */
#define PARTS 16

static double
sum_parts (const float *part)
{
  double sum = 0;
  for (int k = 0; k < PARTS; k++)
    sum += part[k];
  return sum;
}

QB_KERNEL double
qb_format_weighted_sse (const float *x, const float *y, const float *w, gint64 n)
{
  float part[PARTS] = { 0 };
  gint64 i = 0;

  if (w == NULL)
    for (; i + PARTS <= n; i += PARTS)
      for (int k = 0; k < PARTS; k++)
        part[k] += (x[i + k] - y[i + k]) * (x[i + k] - y[i + k]);
  else
    for (; i + PARTS <= n; i += PARTS)
      for (int k = 0; k < PARTS; k++)
        part[k] += w[i + k] * (x[i + k] - y[i + k]) * (x[i + k] - y[i + k]);
  for (; i < n; i++)
    part[0] += (w ? w[i] : 1.0f) * (x[i] - y[i]) * (x[i] - y[i]);
  return sum_parts (part);
}

QB_KERNEL double
qb_format_codes_sse (const float *x, const float *w, const guint8 *codes, gint64 n,
                     float d, float z)
{
  float part[PARTS] = { 0 };
  gint64 i = 0;

  if (w == NULL)
    for (; i + PARTS <= n; i += PARTS)
      for (int k = 0; k < PARTS; k++)
        {
          float e = x[i + k] - d * (codes[i + k] - z);
          part[k] += e * e;
        }
  else
    for (; i + PARTS <= n; i += PARTS)
      for (int k = 0; k < PARTS; k++)
        {
          float e = x[i + k] - d * (codes[i + k] - z);
          part[k] += w[i + k] * e * e;
        }
  for (; i < n; i++)
    {
      float e = x[i] - d * (codes[i] - z);
      part[0] += (w ? w[i] : 1.0f) * e * e;
    }
  return sum_parts (part);
}

QB_KERNEL float
qb_format_absmax (const float *x, gint64 n)
{
  float part[8] = { 0 };
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      {
        float a = fabsf (x[i + k]);
        part[k] = a > part[k] ? a : part[k];
      }
  for (; i < n; i++)
    part[0] = fabsf (x[i]) > part[0] ? fabsf (x[i]) : part[0];
  for (int k = 1; k < 8; k++)
    part[0] = part[k] > part[0] ? part[k] : part[0];
  return part[0];
}

QB_KERNEL void
qb_format_min_max (const float *x, gint64 n, float *lo, float *hi)
{
  float mn[8] = { 0 }, mx[8] = { 0 };
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      {
        mn[k] = x[i + k] < mn[k] ? x[i + k] : mn[k];
        mx[k] = x[i + k] > mx[k] ? x[i + k] : mx[k];
      }
  for (; i < n; i++)
    {
      mn[0] = x[i] < mn[0] ? x[i] : mn[0];
      mx[0] = x[i] > mx[0] ? x[i] : mx[0];
    }
  for (int k = 1; k < 8; k++)
    {
      mn[0] = mn[k] < mn[0] ? mn[k] : mn[0];
      mx[0] = mx[k] > mx[0] ? mx[k] : mx[0];
    }
  *lo = mn[0];
  *hi = mx[0];
}

QB_KERNEL void
qb_pack_bits (const guint8 *codes, gint64 n, guint bits, guint8 *out)
{
  guint64 acc = 0;
  guint fill = 0;
  gint64 i = 0;

  if (bits == 8)
    {
      memcpy (out, codes, n);
      return;
    }
  if (bits == 4)
    {
      for (gint64 j = 0; j < n / 2; j++)
        out[j] = codes[2 * j] | codes[2 * j + 1] << 4;
      if (n % 2)
        out[n / 2] = codes[n - 1];
      return;
    }
  for (; i < n; i++)
    {
      acc |= (guint64) codes[i] << fill;
      fill += bits;
      while (fill >= 8)
        {
          *out++ = acc & 0xff;
          acc >>= 8;
          fill -= 8;
        }
    }
  if (fill > 0)
    *out = acc & 0xff;
}

QB_KERNEL void
qb_unpack_bits (const guint8 *in, gint64 n, guint bits, guint8 *codes)
{
  guint64 acc = 0;
  guint fill = 0;
  guint mask = (1u << bits) - 1;
  gint64 i = 0;

  if (bits == 8)
    {
      memcpy (codes, in, n);
      return;
    }
  if (bits == 4)
    {
      for (gint64 j = 0; j < n / 2; j++)
        {
          codes[2 * j] = in[j] & 0xf;
          codes[2 * j + 1] = in[j] >> 4;
        }
      if (n % 2)
        codes[n - 1] = in[n / 2] & 0xf;
      return;
    }
  for (; i < n; i++)
    {
      while (fill < bits)
        {
          acc |= (guint64) *in++ << fill;
          fill += 8;
        }
      codes[i] = acc & mask;
      acc >>= bits;
      fill -= bits;
    }
}
