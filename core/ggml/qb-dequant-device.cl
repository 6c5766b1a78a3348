/* SPDX-License-Identifier: MIT */
/* qb-dequant-device.cl — ggml's storage blocks to float32 on an OpenCL
 * device, value for value what qb-ggml-quants-*.c and qb-dtype.c give on
 * the CPU: the same products in the same order (no contraction, and the
 * host's core is built with -ffp-contract=off), halves converted with
 * integer operations.  One work-item per block; a kernel reads n_blocks
 * blocks from src (byte offset src_off) and writes their values to dst
 * (float offset dst_off). */
#pragma OPENCL FP_CONTRACT OFF

#define QK   32
#define QK_K 256

typedef __global const uchar *bytes_t;

/* The half at p (little-endian) as a float, exactly (qb_fp16_to_fp32). */
static float
f16 (bytes_t p)
{
  uint h = (uint) p[0] | (uint) p[1] << 8;
  uint sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  float v;

  if (e == 0x1fu)
    return as_float (sign | 0x7f800000u | m << 13);
  if (e == 0)
    {
      v = (float) m * (1.0f / 16777216.0f);
      return sign ? -v : v;
    }
  return as_float (sign | (e + 112u) << 23 | m << 13);
}

#define DEQUANT_KERNEL(name, block_bytes, values)                                 \
  __kernel void                                                                    \
  name (__global const uchar *src, const ulong src_off, __global float *dst,       \
        const ulong dst_off, const ulong n_blocks)                                 \
  {                                                                                \
    ulong i = get_global_id (0);                                                   \
    if (i < n_blocks)                                                              \
      name##_block (src + src_off + i * (block_bytes), dst + dst_off + i * (values)); \
  }

static void
dequant_f16_block (bytes_t x, __global float *y)
{
  y[0] = f16 (x);
}
DEQUANT_KERNEL (dequant_f16, 2, 1)

static void
dequant_bf16_block (bytes_t x, __global float *y)
{
  y[0] = as_float ((uint) x[0] << 16 | (uint) x[1] << 24);
}
DEQUANT_KERNEL (dequant_bf16, 2, 1)

/* ---- legacy blocks of 32 ------------------------------------------------ */

static void
dequant_q4_0_block (bytes_t x, __global float *y)
{
  float d = f16 (x);
  bytes_t qs = x + 2;

  for (int j = 0; j < 16; j++)
    {
      y[j] = (float) ((qs[j] & 0x0f) - 8) * d;
      y[j + 16] = (float) ((qs[j] >> 4) - 8) * d;
    }
}
DEQUANT_KERNEL (dequant_q4_0, 18, QK)

static void
dequant_q4_1_block (bytes_t x, __global float *y)
{
  float d = f16 (x), m = f16 (x + 2);
  bytes_t qs = x + 4;

  for (int j = 0; j < 16; j++)
    {
      y[j] = (float) (qs[j] & 0x0f) * d + m;
      y[j + 16] = (float) (qs[j] >> 4) * d + m;
    }
}
DEQUANT_KERNEL (dequant_q4_1, 20, QK)

static uint
u32_le (bytes_t p)
{
  return (uint) p[0] | (uint) p[1] << 8 | (uint) p[2] << 16 | (uint) p[3] << 24;
}

static void
dequant_q5_0_block (bytes_t x, __global float *y)
{
  float d = f16 (x);
  uint qh = u32_le (x + 2);
  bytes_t qs = x + 6;

  for (int j = 0; j < 16; j++)
    {
      int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[j] = (float) (((qs[j] & 0x0f) | h0) - 16) * d;
      y[j + 16] = (float) (((qs[j] >> 4) | h1) - 16) * d;
    }
}
DEQUANT_KERNEL (dequant_q5_0, 22, QK)

static void
dequant_q5_1_block (bytes_t x, __global float *y)
{
  float d = f16 (x), m = f16 (x + 2);
  uint qh = u32_le (x + 4);
  bytes_t qs = x + 8;

  for (int j = 0; j < 16; j++)
    {
      int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[j] = (float) ((qs[j] & 0x0f) | h0) * d + m;
      y[j + 16] = (float) ((qs[j] >> 4) | h1) * d + m;
    }
}
DEQUANT_KERNEL (dequant_q5_1, 24, QK)

static void
dequant_q8_0_block (bytes_t x, __global float *y)
{
  float d = f16 (x);
  __global const char *qs = (__global const char *) (x + 2);

  for (int j = 0; j < QK; j++)
    y[j] = (float) qs[j] * d;
}
DEQUANT_KERNEL (dequant_q8_0, 34, QK)

__constant char iq4_levels[16] = {
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

static void
dequant_iq4_nl_block (bytes_t x, __global float *y)
{
  float d = f16 (x);
  bytes_t qs = x + 2;

  for (int j = 0; j < 16; j++)
    {
      y[j] = d * (float) iq4_levels[qs[j] & 0xf];
      y[j + 16] = d * (float) iq4_levels[qs[j] >> 4];
    }
}
DEQUANT_KERNEL (dequant_iq4_nl, 18, QK)

/* ---- K-quants: super-blocks of 256 -------------------------------------- */

static void
dequant_q2_k_block (bytes_t x, __global float *y)
{
  bytes_t scales = x, q = x + 16;
  float d = f16 (x + 80), min = f16 (x + 82);
  int is = 0;

  for (int k = 0; k < QK_K; k += 128, q += 32)
    for (int shift = 0; shift < 8; shift += 2)
      for (int part = 0; part < 2; part++)
        {
          uchar sc = scales[is++];
          float dl = d * (float) (sc & 0xf), ml = min * (float) (sc >> 4);
          for (int l = 0; l < 16; l++)
            *y++ = dl * (float) ((q[l + 16 * part] >> shift) & 3) - ml;
        }
}
DEQUANT_KERNEL (dequant_q2_k, 84, QK_K)

static int
scale_q3 (bytes_t scales, int j)
{
  int sc = j < 8 ? scales[j] & 0xf : scales[j - 8] >> 4;
  return (sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

static void
dequant_q3_k_block (bytes_t x, __global float *y)
{
  bytes_t hmask = x, q = x + 32, scales = x + 96;
  float d_all = f16 (x + 108);
  int is = 0;

  for (int k = 0, bit = 0; k < QK_K; k += 128, q += 32)
    for (int shift = 0; shift < 8; shift += 2, bit++)
      for (int part = 0; part < 2; part++)
        {
          float dl = d_all * (float) scale_q3 (scales, is++);
          for (int l = 0; l < 16; l++)
            {
              int hi = hmask[l + 16 * part] >> bit & 1;
              *y++ = dl * (float) (((q[l + 16 * part] >> shift) & 3) - (hi ? 0 : 4));
            }
        }
}
DEQUANT_KERNEL (dequant_q3_k, 110, QK_K)

static void
scale_min_k4 (int j, bytes_t q, uchar *d, uchar *m)
{
  if (j < 4)
    {
      *d = q[j] & 63;
      *m = q[j + 4] & 63;
    }
  else
    {
      *d = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
      *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K (qh NULL) and Q5_K: d1·q − m1 per group of 32. */
static void
dequant_q45_k (bytes_t x, bytes_t qh, bytes_t ql, __global float *y)
{
  float d = f16 (x), min = f16 (x + 2);
  bytes_t scales = x + 4;

  for (int is = 0; is < 8; is += 2, ql += 32)
    {
      uchar sc, m;
      float d1, m1, d2, m2;

      scale_min_k4 (is, scales, &sc, &m);
      d1 = d * (float) sc;
      m1 = min * (float) m;
      scale_min_k4 (is + 1, scales, &sc, &m);
      d2 = d * (float) sc;
      m2 = min * (float) m;
      for (int l = 0; l < 32; l++)
        *y++ = d1 * (float) ((ql[l] & 0xf) + (qh != 0 && (qh[l] >> is & 1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; l++)
        *y++ = d2 * (float) ((ql[l] >> 4) + (qh != 0 && (qh[l] >> (is + 1) & 1) ? 16 : 0)) - m2;
    }
}

static void
dequant_q4_k_block (bytes_t x, __global float *y)
{
  dequant_q45_k (x, 0, x + 16, y);
}
DEQUANT_KERNEL (dequant_q4_k, 144, QK_K)

static void
dequant_q5_k_block (bytes_t x, __global float *y)
{
  dequant_q45_k (x, x + 16, x + 48, y);
}
DEQUANT_KERNEL (dequant_q5_k, 176, QK_K)

static void
dequant_q6_k_block (bytes_t x, __global float *y)
{
  bytes_t ql = x, qh = x + 128;
  __global const char *sc = (__global const char *) (x + 192);
  float d = f16 (x + 208);

  for (int k = 0; k < QK_K; k += 128, y += 128, ql += 64, qh += 32, sc += 8)
    for (int l = 0; l < 32; l++)
      {
        int is = l / 16;
        int q1 = ((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
        int q2 = ((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
        int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
        int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
        y[l] = (d * (float) sc[is]) * (float) q1;
        y[l + 32] = (d * (float) sc[is + 2]) * (float) q2;
        y[l + 64] = (d * (float) sc[is + 4]) * (float) q3;
        y[l + 96] = (d * (float) sc[is + 6]) * (float) q4;
      }
}
DEQUANT_KERNEL (dequant_q6_k, 210, QK_K)

static void
dequant_iq4_xs_block (bytes_t x, __global float *y)
{
  float d = f16 (x);
  uint scales_h = (uint) x[2] | (uint) x[3] << 8;
  bytes_t scales_l = x + 4, qs = x + 8;

  for (int ib = 0; ib < 8; ib++, y += 32, qs += 16)
    {
      int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | ((scales_h >> (2 * ib)) & 3) << 4;
      float dl = d * (float) (ls - 32);
      for (int j = 0; j < 16; j++)
        {
          y[j] = dl * (float) iq4_levels[qs[j] & 0xf];
          y[j + 16] = dl * (float) iq4_levels[qs[j] >> 4];
        }
    }
}
DEQUANT_KERNEL (dequant_iq4_xs, 136, QK_K)
