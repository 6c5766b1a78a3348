/* SPDX-License-Identifier: MIT */
/* qb-llama-accum.cl — activation statistics on the device (qb-llama-accum.c):
 * Σ x² per column in double, and the float inputs widened to double for
 * CLBlast's DSYRK (XᵀX), as the CPU widens them for OpenBLAS's. */
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#pragma OPENCL FP_CONTRACT OFF

/* sums[j] += Σ_r x[r][j]² (rows × n floats), one column per work-item. */
__kernel void
sum_squares (__global const float *x, const int rows, const int n, __global double *sums,
             const int sums_off)
{
  int j = get_global_id (0);
  double s = 0;

  if (j >= n)
    return;
  for (int r = 0; r < rows; r++)
    {
      double v = x[(long) r * n + j];
      s += v * v;
    }
  sums[sums_off + j] += s;
}

/* y = (double) x, n values. */
__kernel void
widen (__global const float *x, __global double *y, const long n)
{
  long i = get_global_id (0);

  if (i < n)
    y[i] = x[i];
}
