/* SPDX-License-Identifier: MIT */
/* qb-llama-device.cl — the element-wise steps of the forward pass on an
 * OpenCL device (the products go through CLBlast): RMSNorm (of rows and of
 * Q/K heads), RoPE, causal softmax with the sliding window and soft-cap,
 * SwiGLU, GeGLU, bias rows, residual adds, the final soft-cap; then the scores of the positions
 * (log-softmax, NLL, KL divergence) so that the logits stay here.  The
 * same operations as qb-llama-forward.c and qb-eval.c, sums in double
 * where the device has it. */
#pragma OPENCL FP_CONTRACT OFF

#ifdef QB_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
#else
typedef float acc_t;
#endif

/* y = x / rms(x) * w for rows row0.. of x, one row per work-item. */
__kernel void
rms_norm (__global const float *x, __global const float *w, __global float *y,
          const int n_rows, const int n, const float eps, const int row0)
{
  int r = get_global_id (0);
  __global const float *xr = x + (long) (row0 + r) * n;
  __global float *yr = y + (long) r * n;
  acc_t sum = 0;
  float scale;

  if (r >= n_rows)
    return;
  for (int i = 0; i < n; i++)
    sum += (acc_t) (xr[i] * xr[i]);
  scale = 1.0f / sqrt ((float) (sum / n + eps));
  for (int i = 0; i < n; i++)
    yr[i] = (xr[i] * scale) * w[i];
}

/* Every row of y (n values) = bias. */
__kernel void
fill_rows (__global float *y, __global const float *bias, const int n, const long total)
{
  long i = get_global_id (0);

  if (i < total)
    y[i] = bias[i % n];
}

/* Rotates pair i0 of head h of token t; rope holds cos, sin per pair. */
__kernel void
rope (__global float *x, __global const float *rope, const int n_tokens, const int n_heads,
      const int head_dim, const int n_rot, const int neox)
{
  long g = get_global_id (0);
  int pairs = n_rot / 2;
  int p = (int) (g % pairs), h = (int) ((g / pairs) % n_heads);
  long t = g / ((long) pairs * n_heads);
  int i0 = 2 * p;
  int a = neox ? p : i0, b = neox ? p + pairs : i0 + 1;
  __global float *v;
  __global const float *c;
  float x0, x1;

  if (t >= n_tokens)
    return;
  v = x + (t * n_heads + h) * head_dim;
  c = rope + t * n_rot;
  x0 = v[a];
  x1 = v[b];
  v[a] = x0 * c[i0] - x1 * c[i0 + 1];
  v[b] = x0 * c[i0 + 1] + x1 * c[i0];
}

/* Row i of s (n_keys wide, query i) over keys lo..i, lo > 0 in a sliding
 * window of `window` keys (0: none), the scores first capped at
 * cap · tanh (s / cap) when cap > 0; the other keys get 0. */
__kernel void
softmax_causal (__global float *s, const int n_rows, const int n_keys, const int window,
                const float cap)
{
  int i = get_global_id (0);
  __global float *row = s + (long) i * n_keys;
  int lo = window > 0 && i + 1 > window ? i + 1 - window : 0;
  float max = -INFINITY, inv;
  acc_t sum = 0;

  if (i >= n_rows)
    return;
  if (cap > 0.0f)
    {
      float ic = 1.0f / cap;
      for (int j = lo; j <= i; j++)
        row[j] = tanh (row[j] * ic) * cap;
    }
  for (int j = lo; j <= i; j++)
    max = row[j] > max ? row[j] : max;
  for (int j = lo; j <= i; j++)
    {
      float e = exp (row[j] - max);
      row[j] = e;
      sum += e;
    }
  inv = (float) ((acc_t) 1 / sum);
  for (int j = 0; j < lo; j++)
    row[j] = 0.0f;
  for (int j = lo; j <= i; j++)
    row[j] *= inv;
  for (int j = i + 1; j < n_keys; j++)
    row[j] = 0.0f;
}

__kernel void
swiglu (__global float *gate, __global const float *up, const long n)
{
  long i = get_global_id (0);

  if (i < n)
    gate[i] = gate[i] / (1.0f + exp (-gate[i])) * up[i];
}

/* GELU, tanh approximation (Gemma's gelu_pytorch_tanh) of the gate, times up. */
__kernel void
geglu (__global float *gate, __global const float *up, const long n)
{
  const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
  long i = get_global_id (0);
  float x;

  if (i >= n)
    return;
  x = gate[i];
  gate[i] = 0.5f * x * (1.0f + tanh (sqrt_2_over_pi * x * (1.0f + 0.044715f * x * x))) * up[i];
}

/* x += y (the post-norms' residual add). */
__kernel void
add_rows (__global float *x, __global const float *y, const long n)
{
  long i = get_global_id (0);

  if (i < n)
    x[i] += y[i];
}

/* cap · tanh (x / cap) (the final logits' soft-cap). */
__kernel void
softcap (__global float *x, const long n, const float cap)
{
  long i = get_global_id (0);

  if (i < n)
    x[i] = tanh (x[i] * (1.0f / cap)) * cap;
}

/* ---- scoring: log-softmax, NLL, KL divergence, records -----------------------
 *
 * qb-eval.c's score_position and qb_logprobs_encode with the sums spread
 * over a work-group of SCORE_GROUP (a power of two) per scored position:
 * the first largest logit, Σ exp (l - max) in double, the NLL of the next
 * token; against a base record (llama.cpp's uint16 log-probabilities) the
 * KL divergence, the base's top token and NLL; for a base model, its own
 * record.  Only these come back to the host, never the logits.  Built
 * only where the device has fp64 (the host scores otherwise). */

#ifdef QB_FP64
#define SCORE_GROUP 64

typedef struct {
  double nll, nll_base, kld;
  int    top, top_base;
  int    n_bad;          /* logits that are NaN or infinite */
  float  bad;            /* the first of them */
} Score;

/* The group's largest v (the lowest index on ties, as a scan from 0 with
 * a strict comparison keeps it) into v[0], ix[0]; ix < 0: none. */
static void
reduce_max (__local float *v, __local int *ix, int lid)
{
  for (int s = SCORE_GROUP / 2; s > 0; s >>= 1)
    {
      barrier (CLK_LOCAL_MEM_FENCE);
      if (lid < s && ix[lid + s] >= 0 &&
          (ix[lid] < 0 || v[lid + s] > v[lid] || (v[lid + s] == v[lid] && ix[lid + s] < ix[lid])))
        {
          v[lid] = v[lid + s];
          ix[lid] = ix[lid + s];
        }
    }
  barrier (CLK_LOCAL_MEM_FENCE);
}

/* The group's sum of mine, returned to every work-item. */
static double
reduce_sum (__local double *a, double mine, int lid)
{
  double total;

  barrier (CLK_LOCAL_MEM_FENCE);
  a[lid] = mine;
  for (int s = SCORE_GROUP / 2; s > 0; s >>= 1)
    {
      barrier (CLK_LOCAL_MEM_FENCE);
      if (lid < s)
        a[lid] += a[lid + s];
    }
  barrier (CLK_LOCAL_MEM_FENCE);
  total = a[0];
  barrier (CLK_LOCAL_MEM_FENCE);
  return total;
}

static float
record_float (__global const ushort *r)
{
  return as_float ((uint) r[0] | (uint) r[1] << 16);
}

static void
put_record_float (__global ushort *r, float f)
{
  r[0] = (ushort) (as_uint (f) & 0xffffu);
  r[1] = (ushort) (as_uint (f) >> 16);
}

/* Per position: logits row pos, its next token targets[pos]; base
 * (record_len values per position) or NULL; records (the same length)
 * or NULL. */
__kernel void
score_positions (__global const float *logits, const int n_vocab, __global const int *targets,
                 __global const ushort *base, __global ushort *records, const int record_len,
                 __global Score *scores)
{
  int pos = get_group_id (0), lid = get_local_id (0), next = targets[pos];
  __global const float *l = logits + (long) pos * n_vocab;
  __local float v[SCORE_GROUP];
  __local int ix[SCORE_GROUP];
  __local double sums[SCORE_GROUP];
  float my_max = 0.0f, my_min = INFINITY, lmax, lmin, lse;
  int my_ix = -1, my_bad = n_vocab;
  double sum;
  Score s = { 0 };

  /* The largest logit, the smallest, the first that is not finite. */
  for (int i = lid; i < n_vocab; i += SCORE_GROUP)
    {
      float x = l[i];
      if (!isfinite (x))
        {
          my_bad = min (my_bad, i);
          continue;
        }
      if (my_ix < 0 || x > my_max)
        {
          my_max = x;
          my_ix = i;
        }
      my_min = x < my_min ? x : my_min;
    }
  v[lid] = -convert_float (my_bad);
  ix[lid] = my_bad < n_vocab ? lid : -1;
  s.n_bad = (int) reduce_sum (sums, my_bad < n_vocab, lid);
  if (s.n_bad > 0)
    {
      reduce_max (v, ix, lid);   /* the lowest bad index */
      if (lid == 0)
        {
          s.bad = l[(int) -v[0]];
          scores[pos] = s;
        }
      return;
    }
  v[lid] = my_min;
  ix[lid] = my_ix;
  barrier (CLK_LOCAL_MEM_FENCE);
  lmin = INFINITY;
  for (int k = 0; k < SCORE_GROUP; k++)
    lmin = ix[k] >= 0 && v[k] < lmin ? v[k] : lmin;
  barrier (CLK_LOCAL_MEM_FENCE);
  v[lid] = my_max;
  reduce_max (v, ix, lid);
  lmax = v[0];
  s.top = ix[0];

  /* Σ exp (l - max): the NLL of the next token. */
  sum = 0;
  for (int i = lid; i < n_vocab; i += SCORE_GROUP)
    sum += (double) exp (l[i] - lmax);
  sum = reduce_sum (sums, sum, lid);
  s.nll = (double) lmax + log (sum) - (double) l[next];
  lse = (float) log (sum);

  /* Against the base's record. */
  if (base != NULL)
    {
      __global const ushort *b = base + (long) pos * record_len;
      float scale = record_float (b), min_log_prob = record_float (b + 2), shift = lmax + lse;
      float pb_max = 0.0f;
      int pb_ix = -1;
      double kld = 0;

      for (int i = lid; i < n_vocab; i += SCORE_GROUP)
        {
          float p = scale * convert_float (b[4 + i]) + min_log_prob;
          if (pb_ix < 0 || p > pb_max)
            {
              pb_max = p;
              pb_ix = i;
            }
          if (p > -16.0f)
            kld += (double) (exp (p) * (p - l[i] + shift));
        }
      s.kld = reduce_sum (sums, kld, lid);
      v[lid] = pb_max;
      ix[lid] = pb_ix;
      reduce_max (v, ix, lid);
      s.top_base = ix[0];
      s.nll_base = -(double) (scale * convert_float (b[4 + next]) + min_log_prob);
    }

  /* This position's own record: the top 16 nats in 65536 steps. */
  if (records != NULL)
    {
      __global ushort *r = records + (long) pos * record_len;
      float lo = lmin > lmax - 16.0f ? lmin : lmax - 16.0f;
      float scale = (lmax - lo) / 65535.0f, inv = scale > 0.0f ? 1.0f / scale : 0.0f;

      if (lid == 0)
        {
          put_record_float (r, scale);
          put_record_float (r + 2, lo - lmax - lse);
          if (n_vocab % 2 != 0)
            r[4 + n_vocab] = 0;
        }
      for (int i = lid; i < n_vocab; i += SCORE_GROUP)
        r[4 + i] = scale > 0.0f && l[i] > lo ? convert_ushort_sat (rint (inv * (l[i] - lo))) : 0;
    }
  if (lid == 0)
    scores[pos] = s;
}
#endif
