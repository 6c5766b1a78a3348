/* SPDX-License-Identifier: MIT */
/* qb-format-grid.c — units, levels and code packing of the formats that
 * have a grid (see qb-format-grid.h).
 *
 * The packers write only the code bits of a unit, in the layouts the
 * dequantizers of qb-ggml-quants-*.c and qb-format-*.c read.  Code k of a
 * uniform ggml type is its value index from the lowest level up: Q4_0 code
 * k is the value k - 8, Q8_0's k - 128, Q3_K's k - 4 (low two bits in qs,
 * the third in hmask), Q6_K's k - 32.
 */
#include "qb-format-grid.h"
#include "qb-format-private.h"
#include "qb-ggml-quants-private.h"

#include <stddef.h>
#include <string.h>

#define MAX_UNIT_LEVELS 256

/* ---- packers, one unit each --------------------------------------------- */

/* Values j and j + 16 of a 32-block share byte j: the first in the low nibble. */
static void
pack_nibbles32 (const guint8 *codes, guint8 *qs)
{
  for (int j = 0; j < 16; j++)
    qs[j] = (guint8) ((codes[j] & 0xf) | (codes[j + 16] & 0xf) << 4);
}

/* Q5_0 / Q5_1: low nibbles as above, the fifth bit of value j in bit j of qh. */
static void
pack_q5 (const guint8 *codes, guint8 *qh, guint8 *qs)
{
  guint32 h = 0;

  pack_nibbles32 (codes, qs);
  for (int j = 0; j < 32; j++)
    h |= (guint32) (codes[j] >> 4 & 1) << j;
  qh[0] = h & 0xff;
  qh[1] = h >> 8 & 0xff;
  qh[2] = h >> 16 & 0xff;
  qh[3] = h >> 24;
}

/* Q2_K and Q3_K: two bits of values l, l + 32, l + 64, l + 96 of each half
 * super-block in one byte. */
static void
pack_2bit_k (const guint8 *codes, guint8 *qs)
{
  for (int j = 0; j < QB_QK_K; j += 128)
    for (int l = 0; l < 32; l++)
      qs[j / 4 + l] = (guint8) ((codes[j + l] & 3) | (codes[j + l + 32] & 3) << 2
                                | (codes[j + l + 64] & 3) << 4 | (codes[j + l + 96] & 3) << 6);
}

/* Q3_K: the high bit of value j is bit j / 32 of hmask[j % 32]. */
static void
pack_q3_K (const guint8 *codes, guint8 *block)
{
  QbBlockQ3_K *b = (QbBlockQ3_K *) block;

  memset (b->hmask, 0, sizeof b->hmask);
  for (int j = 0; j < QB_QK_K; j++)
    b->hmask[j % 32] |= (guint8) ((codes[j] >> 2 & 1) << (j / 32));
  pack_2bit_k (codes, b->qs);
}

/* Q4_K / Q5_K: per 64 values, value l in the low nibble of byte l and value
 * l + 32 in its high nibble; Q5_K's fifth bits in qh, two bits per 64. */
static void
pack_k4 (const guint8 *codes, guint8 *qh, guint8 *qs)
{
  if (qh != NULL)
    memset (qh, 0, 32);
  for (int n = 0, s = 0; n < QB_QK_K; n += 64, s += 2, qs += 32)
    for (int l = 0; l < 32; l++)
      {
        qs[l] = (guint8) ((codes[n + l] & 0xf) | (codes[n + l + 32] & 0xf) << 4);
        if (qh != NULL)
          qh[l] |= (guint8) ((codes[n + l] >> 4 & 1) << s | (codes[n + l + 32] >> 4 & 1) << (s + 1));
      }
}

/* Q6_K: low four bits in ql, high two in qh, per 128 values. */
static void
pack_q6_K (const guint8 *codes, guint8 *block)
{
  QbBlockQ6_K *b = (QbBlockQ6_K *) block;
  guint8 *ql = b->ql, *qh = b->qh;

  for (int j = 0; j < QB_QK_K; j += 128, ql += 64, qh += 32)
    for (int l = 0; l < 32; l++)
      {
        const guint8 *c = codes + j + l;
        ql[l] = (guint8) ((c[0] & 0xf) | (c[64] & 0xf) << 4);
        ql[l + 32] = (guint8) ((c[32] & 0xf) | (c[96] & 0xf) << 4);
        qh[l] = (guint8) ((c[0] >> 4) | (c[32] >> 4) << 2 | (c[64] >> 4) << 4 | (c[96] >> 4) << 6);
      }
}

static void
pack_ggml (QbDType dtype, const guint8 *codes, guint8 *block)
{
  switch (dtype)
    {
    case QB_DTYPE_Q4_0:
      pack_nibbles32 (codes, block + offsetof (QbBlockQ4_0, qs));
      break;
    case QB_DTYPE_Q4_1:
      pack_nibbles32 (codes, block + offsetof (QbBlockQ4_1, qs));
      break;
    case QB_DTYPE_IQ4_NL:
      pack_nibbles32 (codes, block + offsetof (QbBlockIQ4_NL, qs));
      break;
    case QB_DTYPE_Q5_0:
      pack_q5 (codes, block + offsetof (QbBlockQ5_0, qh), block + offsetof (QbBlockQ5_0, qs));
      break;
    case QB_DTYPE_Q5_1:
      pack_q5 (codes, block + offsetof (QbBlockQ5_1, qh), block + offsetof (QbBlockQ5_1, qs));
      break;
    case QB_DTYPE_Q8_0:
      for (int j = 0; j < QB_QK; j++)
        block[offsetof (QbBlockQ8_0, qs) + j] = (guint8) (codes[j] - 128);
      break;
    case QB_DTYPE_Q2_K:
      pack_2bit_k (codes, block + offsetof (QbBlockQ2_K, qs));
      break;
    case QB_DTYPE_Q3_K:
      pack_q3_K (codes, block);
      break;
    case QB_DTYPE_Q4_K:
      pack_k4 (codes, NULL, block + offsetof (QbBlockQ4_K, qs));
      break;
    case QB_DTYPE_Q5_K:
      pack_k4 (codes, block + offsetof (QbBlockQ5_K, qh), block + offsetof (QbBlockQ5_K, qs));
      break;
    case QB_DTYPE_Q6_K:
      pack_q6_K (codes, block);
      break;
    case QB_DTYPE_IQ4_XS:
      for (int ib = 0; ib < 8; ib++)
        pack_nibbles32 (codes + 32 * ib, block + offsetof (QbBlockIQ4_XS, qs) + 16 * ib);
      break;
    default:
      g_return_if_reached ();
    }
}

/* ---- the grid of each format -------------------------------------------- */

/* Levels of the ggml types: 2^bits codes, IQ4 through a table. */
static gboolean
ggml_grid (const QbFormat *f, QbFormatGrid *grid)
{
  switch (f->dtype)
    {
    case QB_DTYPE_Q4_0: case QB_DTYPE_Q4_1: case QB_DTYPE_Q5_0: case QB_DTYPE_Q5_1:
    case QB_DTYPE_Q8_0: case QB_DTYPE_Q2_K: case QB_DTYPE_Q3_K: case QB_DTYPE_Q4_K:
    case QB_DTYPE_Q5_K: case QB_DTYPE_Q6_K:
      grid->uniform = TRUE;
      break;
    case QB_DTYPE_IQ4_NL: case QB_DTYPE_IQ4_XS:
      grid->uniform = FALSE;
      break;
    default:
      return FALSE;
    }
  grid->n_levels = 1u << f->bits;
  return TRUE;
}

gboolean
qb_format_get_grid (const QbFormat *format, gint64 n_cols, QbFormatGrid *grid)
{
  guint64 row_bytes;

  memset (grid, 0, sizeof *grid);
  if (format == NULL || !qb_format_row_bytes (format, n_cols, &row_bytes))
    return FALSE;
  grid->format = format;
  switch (format->family)
    {
    case QB_FAMILY_GGML:
      if (!ggml_grid (format, grid))
        return FALSE;
      break;
    case QB_FAMILY_INT:
      grid->uniform = TRUE;
      grid->n_levels = 1u << format->bits;
      break;
    case QB_FAMILY_NF:
    case QB_FAMILY_MX:
      grid->uniform = FALSE;
      grid->n_levels = 16;
      break;
    default:
      return FALSE;   /* floats and FP8 */
    }
  if (format->scope == QB_SCOPE_BLOCK)
    {
      grid->unit = format->block_size;
      grid->unit_bytes = format->block_bytes;
    }
  else
    {
      grid->unit = n_cols;
      grid->unit_bytes = row_bytes;
    }
  return grid->n_levels <= MAX_UNIT_LEVELS;
}

guint
qb_format_grid_level_floats (const QbFormatGrid *grid)
{
  return grid->uniform ? 2 : grid->n_levels;
}

void
qb_format_grid_pack (const QbFormatGrid *grid, const guint8 *codes, guint8 *unit_bytes)
{
  const QbFormat *f = grid->format;

  switch (f->family)
    {
    case QB_FAMILY_GGML:
      pack_ggml (f->dtype, codes, unit_bytes);
      break;
    case QB_FAMILY_INT:
      {
        /* INTn layouts (qb-format.h): groups and rows open with their f16
         * scale (and u8 zero); per-tensor rows are codes only. */
        guint header = f->scope == QB_SCOPE_BLOCK ? 2 + (f->asymmetric ? 1 : 0)
                       : f->scope == QB_SCOPE_CHANNEL ? f->scale_bytes : 0;
        qb_pack_bits (codes, grid->unit, f->bits, unit_bytes + header);
        break;
      }
    case QB_FAMILY_NF:
      /* After the f32 absmax; the first value of a pair in the high nibble. */
      for (gint64 j = 0; j < grid->unit / 2; j++)
        unit_bytes[4 + j] = (guint8) ((codes[2 * j] & 0xf) << 4 | (codes[2 * j + 1] & 0xf));
      break;
    case QB_FAMILY_MX:
      /* After the E8M0 byte; value 2j in the low nibble of byte j. */
      for (gint64 j = 0; j < grid->unit / 2; j++)
        unit_bytes[1 + j] = (guint8) ((codes[2 * j] & 0xf) | (codes[2 * j + 1] & 0xf) << 4);
      break;
    default:
      g_return_if_reached ();
    }
}

/* The unit dequantized with every code set to k. */
static void
dequantize_with_code (const QbFormatGrid *grid, const QbQuantParams *p, guint8 *unit_bytes,
                      guint k, guint8 *codes, float *y)
{
  memset (codes, (int) k, grid->unit);
  qb_format_grid_pack (grid, codes, unit_bytes);
  grid->format->dequantize_row (p, unit_bytes, y, grid->unit);
}

void
qb_format_grid_read_levels (const QbFormatGrid *grid, const QbQuantParams *p,
                            guint8 *unit_bytes, float *levels)
{
  gint64 n = grid->unit;
  guint nl = qb_format_grid_level_floats (grid);
  guint8 stack_codes[QB_QK_K];
  float stack_y[QB_QK_K];
  g_autofree guint8 *heap_codes = n > QB_QK_K ? g_malloc (n) : NULL;
  g_autofree float *heap_y = n > QB_QK_K ? g_new (float, n) : NULL;
  guint8 *codes = heap_codes ? heap_codes : stack_codes;
  float *y = heap_y ? heap_y : stack_y;

  if (grid->uniform)
    {
      guint top = grid->n_levels - 1;

      dequantize_with_code (grid, p, unit_bytes, 0, codes, y);
      for (gint64 i = 0; i < n; i++)
        levels[2 * i] = y[i];
      dequantize_with_code (grid, p, unit_bytes, top, codes, y);
      for (gint64 i = 0; i < n; i++)
        levels[2 * i + 1] = (y[i] - levels[2 * i]) / (float) top;
      return;
    }
  for (guint k = 0; k < grid->n_levels; k++)
    {
      dequantize_with_code (grid, p, unit_bytes, k, codes, y);
      for (gint64 i = 0; i < n; i++)
        levels[i * nl + k] = y[i];
    }
}

void
qb_format_grid_fix (const QbFormatGrid *grid, const QbQuantParams *p, const float *x,
                    guint8 *unit_bytes, float *levels)
{
  grid->format->quantize_row (p, x, unit_bytes, grid->unit);
  qb_format_grid_read_levels (grid, p, unit_bytes, levels);
}
