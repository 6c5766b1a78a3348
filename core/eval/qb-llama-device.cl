/* SPDX-License-Identifier: MIT */
/* qb-llama-device.cl — the element-wise steps of the LLaMA forward pass on
 * an OpenCL device (the products go through CLBlast): RMSNorm, RoPE,
 * causal softmax, SwiGLU, bias rows.  The same operations as
 * qb-llama-forward.c, sums in double where the device has it. */
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

/* Row i of s (n_keys wide, query i) over keys 0..i; later keys get 0. */
__kernel void
softmax_causal (__global float *s, const int n_rows, const int n_keys)
{
  int i = get_global_id (0);
  __global float *row = s + (long) i * n_keys;
  float max = -INFINITY, inv;
  acc_t sum = 0;

  if (i >= n_rows)
    return;
  for (int j = 0; j <= i; j++)
    max = row[j] > max ? row[j] : max;
  for (int j = 0; j <= i; j++)
    {
      float e = exp (row[j] - max);
      row[j] = e;
      sum += e;
    }
  inv = (float) ((acc_t) 1 / sum);
  for (int j = 0; j <= i; j++)
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
