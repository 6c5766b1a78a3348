/* SPDX-License-Identifier: MIT */
/* qb-tensor-quantizer.c — one tensor: pre-pass, sample, main pass. */
#include "qb-tensor-quantizer.h"
#include "qb-tensor-quantizer-private.h"
#include "qb-linalg-private.h"
#include "qb-measure-private.h"
#include "qb-moments.h"
#include "qb-quantize-device-private.h"
#include "qb-scan-cache-private.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* About 64K values per work item: large enough that per-item overhead is
 * noise, small enough for fine progress, prompt cancellation and a little
 * scratch per thread. */
#define CHUNK_VALUES   (64 * 1024)
/* A chunk is read and processed a group of rows at a time, about 4K
 * values (16 KiB of floats), so that the values read, quantized,
 * dequantized and measured stay in the L1 cache between the steps. */
#define GROUP_VALUES   (4 * 1024)
/* Rows quantized up front to size the error histogram. */
#define N_SAMPLE_ROWS  32
/* Share of the progress bar given to the pre-pass. */
#define PREPASS_SHARE  0.2
/* 16-bit sources of at least this many values are measured from their
 * pattern counts: below it, going over 65,536 counters costs more than
 * the values. */
#define PATTERN_MIN_VALUES (16 * 1024)
#define N_PATTERNS     65536

static QbMeasurePath measure_path = QB_MEASURE_PATH_AUTO;

void
qb_tensor_quantizer_set_measure_path (QbMeasurePath path)
{
  measure_path = path;
}

gint64
qb_tensor_chunk_rows (gint64 n_cols)
{
  if (n_cols <= 0)
    return 1;
  return MAX (1, CHUNK_VALUES / n_cols);
}

/* ---- the shared frame of a pass over a tensor ------------------------ */

typedef struct _Pass Pass;
/* Called for each group of rows of a chunk, in order: x holds rows
 * row0..row0 + n_rows - 1 of chunk. */
typedef void (*ChunkFunc) (Pass *pass, gint64 chunk, guint thread,
                           float *x, gint64 row0, gint64 n_rows);

/* Per-thread scratch.  The three buffers come from the pool's per-thread
 * scratch (qb_workers_scratch), reused from tensor to tensor. */
enum { SLOT_X, SLOT_Y, SLOT_Q, SLOT_PATTERNS };

typedef struct {
  float    *x;          /* scratch_rows * n_cols originals */
  float    *y;          /* scratch_rows * n_cols dequantized */
  guint8   *q;          /* scratch_rows * row_bytes when not writing in place */
  guint32  *patterns;   /* N_PATTERNS counts of raw 16-bit values, or NULL */
  QbHistSet hist;       /* original (, dequantized, error) */
  float    *ch_min;     /* per-thread channel buckets */
  float    *ch_max;
  gboolean  hist_ready;
} Scratch;

struct _Pass {
  QbModel        *model;
  guint           index;
  const QbTensor *tensor;
  gint64          n_cols;
  gint64          n_rows;
  gint64          chunk_rows;
  gint64          group_rows;   /* rows read at a time, at most a chunk's */
  gint64          scratch_rows; /* rows of a group, at most the tensor's */
  gint64          n_chunks;
  GCancellable   *cancellable;
  QbWorkers      *workers;
  Scratch        *scratch;     /* one per worker thread */
  guint           n_threads;

  ChunkFunc       func;
  gpointer        data;
  gboolean        prefault;    /* the first read of the tensor's mapping */
  gboolean        raw;         /* func reads the stored rows itself (x is NULL) */

  /* Progress: chunks done over the whole pass, reported every few. */
  gint64          done;        /* atomic */
  gint64          report_every;
  double          progress_base;
  double          progress_span;
  QbQuantizeProgressFunc progress;
  gpointer        progress_data;
  GMutex          progress_lock;
  double          reported;    /* the last fraction reported, under the lock */

  /* First error, by chunk order so the message is deterministic too. */
  GMutex          error_lock;
  gint64          error_chunk;
  GError         *error;
  gboolean        stop;        /* atomic: error or cancel */
};

static void
pass_init (Pass *pass, QbModel *model, guint index, QbWorkers *workers,
           GCancellable *cancellable)
{
  memset (pass, 0, sizeof *pass);
  pass->model = model;
  pass->index = index;
  pass->tensor = qb_model_get_tensor (model, index);
  pass->n_cols = pass->tensor->ne[0];
  pass->n_rows = qb_tensor_n_rows (pass->tensor);
  pass->chunk_rows = qb_tensor_chunk_rows (pass->n_cols);
  pass->n_chunks = (pass->n_rows + pass->chunk_rows - 1) / pass->chunk_rows;
  pass->group_rows = MIN (pass->chunk_rows, MAX (1, GROUP_VALUES / MAX (pass->n_cols, 1)));
  pass->scratch_rows = MAX (1, MIN (pass->group_rows, pass->n_rows));
  pass->cancellable = cancellable;
  pass->workers = workers;
  pass->n_threads = qb_workers_get_n_threads (workers);
  pass->scratch = g_new0 (Scratch, pass->n_threads);
  pass->error_chunk = G_MAXINT64;
  g_mutex_init (&pass->progress_lock);
  g_mutex_init (&pass->error_lock);
}

static void
pass_clear (Pass *pass)
{
  for (guint t = 0; t < pass->n_threads; t++)
    {
      Scratch *s = &pass->scratch[t];
      g_free (s->ch_min);
      g_free (s->ch_max);
      qb_hist_set_clear (&s->hist);
    }
  g_free (pass->scratch);
  g_clear_error (&pass->error);
  g_mutex_clear (&pass->progress_lock);
  g_mutex_clear (&pass->error_lock);
}

/* Larger chunks for a method that asks for them (before the main pass),
 * handed to it whole: the per-thread row buffers are sized again on first
 * use. */
static void
pass_set_chunk_rows (Pass *pass, gint64 chunk_rows)
{
  for (guint t = 0; t < pass->n_threads; t++)
    {
      pass->scratch[t].x = NULL;
      pass->scratch[t].y = NULL;
      pass->scratch[t].q = NULL;
    }
  pass->chunk_rows = chunk_rows;
  pass->group_rows = chunk_rows;
  pass->n_chunks = (pass->n_rows + chunk_rows - 1) / chunk_rows;
  pass->scratch_rows = MAX (1, MIN (chunk_rows, pass->n_rows));
}

static void
pass_fail (Pass *pass, gint64 chunk, GError *error)
{
  g_mutex_lock (&pass->error_lock);
  if (chunk < pass->error_chunk)
    {
      g_clear_error (&pass->error);
      pass->error = error;
      pass->error_chunk = chunk;
      error = NULL;
    }
  g_mutex_unlock (&pass->error_lock);
  g_clear_error (&error);
  __atomic_store_n (&pass->stop, TRUE, __ATOMIC_RELAXED);
}

/* Threads finish chunks in any order: report only progress forward. */
static void
pass_report (Pass *pass, gint64 done, gint64 total)
{
  double fraction = pass->progress_base + pass->progress_span * done / (double) total;

  if (pass->progress == NULL)
    return;
  g_mutex_lock (&pass->progress_lock);
  if (fraction > pass->reported)
    {
      pass->reported = fraction;
      pass->progress (fraction, pass->progress_data);
    }
  g_mutex_unlock (&pass->progress_lock);
}

/* Maps a chunk's pages in one call before the first pass reads them:
 * faulting them in one at a time costs more than reading them.  Harmless
 * where the kernel lacks MADV_POPULATE_READ. */
static void
prefault_rows (Pass *pass, gint64 row0, gint64 n_rows)
{
#ifdef MADV_POPULATE_READ
  const QbTensor *t = pass->tensor;
  guint64 row_bytes;
  guintptr page = (guintptr) sysconf (_SC_PAGESIZE);
  guintptr start, end;

  if (t->data == NULL || !qb_dtype_bytes (t->dtype, t->ne[0], &row_bytes))
    return;
  start = ((guintptr) t->data + row0 * row_bytes) & ~(page - 1);
  end = (guintptr) t->data + (row0 + n_rows) * row_bytes;
  if (end > start)
    madvise ((void *) start, end - start, MADV_POPULATE_READ);
#endif
}

static void
pass_item (gint64 item, guint thread, gpointer user_data)
{
  Pass *pass = user_data;
  Scratch *s = &pass->scratch[thread];
  gint64 chunk = item;
  gint64 row0 = chunk * pass->chunk_rows;
  gint64 n_rows = MIN (pass->chunk_rows, pass->n_rows - row0);
  GError *error = NULL;
  gint64 done;

  if (__atomic_load_n (&pass->stop, __ATOMIC_RELAXED))
    return;
  if (g_cancellable_is_cancelled (pass->cancellable))
    {
      __atomic_store_n (&pass->stop, TRUE, __ATOMIC_RELAXED);
      return;
    }
  if (pass->prefault)
    prefault_rows (pass, row0, n_rows);
  if (pass->raw)
    pass->func (pass, chunk, thread, NULL, row0, n_rows);
  else
    {
      if (s->x == NULL)
        s->x = qb_workers_scratch (pass->workers, thread, SLOT_X,
                                   sizeof (float) * pass->scratch_rows * pass->n_cols);
      for (gint64 r = 0; r < n_rows; r += pass->group_rows)
        {
          gint64 n = MIN (pass->group_rows, n_rows - r);

          if (!qb_model_read_rows (pass->model, pass->index, row0 + r, n, s->x, &error))
            {
              pass_fail (pass, chunk, error);
              return;
            }
          pass->func (pass, chunk, thread, s->x, row0 + r, n);
        }
    }

  done = __atomic_add_fetch (&pass->done, 1, __ATOMIC_RELAXED);
  if (done % pass->report_every == 0 || done == pass->n_chunks)
    pass_report (pass, done, pass->n_chunks);
}

/* Runs func over every chunk.  FALSE on error or cancel, with error set. */
static gboolean
pass_run (Pass *pass, QbWorkers *workers, ChunkFunc func, gpointer data,
          double progress_base, double progress_span, GError **error)
{
  pass->func = func;
  pass->data = data;
  pass->done = 0;
  pass->report_every = MAX (1, pass->n_chunks / 64);
  pass->progress_base = progress_base;
  pass->progress_span = progress_span;

  qb_workers_run (workers, pass->n_chunks, pass_item, pass);

  if (pass->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&pass->error));
      return FALSE;
    }
  if (g_cancellable_set_error_if_cancelled (pass->cancellable, error))
    return FALSE;
  return TRUE;
}

/* ---- pre-pass: range and moments --------------------------------------- */

static void
moments_chunk (Pass *pass, gint64 chunk, guint thread, float *x,
               gint64 row0, gint64 n_rows)
{
  QbMoments *per_chunk = pass->data;
  QbMoments m;

  qb_measure_moments (x, n_rows * pass->n_cols, &m);
  qb_moments_merge (&per_chunk[chunk], &m);
}

static void
scan_from_moments (const QbMoments *all, QbTensorScan *scan)
{
  memset (scan, 0, sizeof *scan);
  scan->n = all->n;
  scan->n_nonfinite = all->n_nonfinite;
  if (all->n == 0)
    return;
  scan->min = all->min;
  scan->max = all->max;
  scan->absmax = MAX (fabs (scan->min), fabs (scan->max));
  scan->mean = all->mean;
  scan->std = qb_moments_std (all);
  scan->kurtosis = qb_moments_kurtosis (all);
  scan->outlier_radius = qb_moments_outlier_radius (all);
}

/* Moments per chunk, merged in chunk order with qb-moments: the same
 * figures for any number of threads.  NaN and infinities are left out. */
static gboolean
run_moments_prepass (Pass *pass, QbWorkers *workers, QbTensorScan *scan,
                     double progress_span, GError **error)
{
  g_autofree QbMoments *per_chunk = g_new (QbMoments, MAX (pass->n_chunks, 1));
  QbMoments all;
  gboolean ok;

  for (gint64 c = 0; c < pass->n_chunks; c++)
    qb_moments_init (&per_chunk[c]);
  pass->prefault = qb_model_claim_first_read (pass->model, pass->index);
  ok = pass_run (pass, workers, moments_chunk, per_chunk, 0, progress_span, error);
  pass->prefault = FALSE;
  if (!ok)
    return FALSE;

  qb_moments_init (&all);
  for (gint64 c = 0; c < pass->n_chunks; c++)
    qb_moments_merge (&all, &per_chunk[c]);
  scan_from_moments (&all, scan);
  return TRUE;
}

/* ---- pre-pass of 16-bit sources: counts of the raw patterns -------------- */

/* F16 and BF16 stored little-endian and aligned, as the mapping holds
 * them; at most 2^32 - 1 values so that 32-bit counts cannot overflow. */
static gboolean
counts_patterns (Pass *pass)
{
  const QbTensor *t = pass->tensor;

  if (measure_path == QB_MEASURE_PATH_REFERENCE || G_BYTE_ORDER != G_LITTLE_ENDIAN)
    return FALSE;
  if ((t->dtype != QB_DTYPE_F16 && t->dtype != QB_DTYPE_BF16) || t->data == NULL
      || (guintptr) t->data % 2 != 0 || t->n_params > G_MAXUINT32
      || t->n_bytes < (guint64) t->n_params * 2)
    return FALSE;
  return measure_path == QB_MEASURE_PATH_PATTERNS || t->n_params >= PATTERN_MIN_VALUES;
}

/* The value of each of the 65,536 patterns of an F16 or BF16, computed
 * once per type by the type's own conversion. */
static const float *
pattern_values (QbDType dtype)
{
  static float *tables[2];
  float **table = &tables[dtype == QB_DTYPE_BF16];

  if (g_once_init_enter (table))
    {
      g_autofree guint16 *all = g_new (guint16, N_PATTERNS);
      float *values = g_new (float, N_PATTERNS);

      for (guint p = 0; p < N_PATTERNS; p++)
        all[p] = GUINT16_TO_LE ((guint16) p);
      qb_dtype_info (dtype)->to_float ((const guint8 *) all, values, N_PATTERNS);
      g_once_init_leave (table, values);
    }
  return *table;
}

static void
patterns_chunk (Pass *pass, gint64 chunk, guint thread, float *x,
                gint64 row0, gint64 n_rows)
{
  Scratch *s = &pass->scratch[thread];
  const guint16 *p = (const guint16 *) pass->tensor->data + row0 * pass->n_cols;

  if (s->patterns == NULL)
    {
      s->patterns = qb_workers_scratch (pass->workers, thread, SLOT_PATTERNS,
                                        sizeof (guint32) * N_PATTERNS);
      memset (s->patterns, 0, sizeof (guint32) * N_PATTERNS);
    }
  qb_measure_count_u16 (p, n_rows * pass->n_cols, s->patterns);
}

/* Moments about the exact mean, in double, pattern by pattern in a fixed
 * order: the same figures for any number of threads. */
static void
moments_from_patterns (const float *values, const guint32 *counts, QbMoments *m)
{
  double sum = 0, s2 = 0, s3 = 0, s4 = 0;

  qb_moments_init (m);
  for (guint p = 0; p < N_PATTERNS; p++)
    {
      float v = values[p];

      if (counts[p] == 0)
        continue;
      if (!isfinite (v))
        {
          m->n_nonfinite += counts[p];
          continue;
        }
      m->n += counts[p];
      sum += (double) counts[p] * v;
      m->min = MIN (m->min, v);
      m->max = MAX (m->max, v);
    }
  if (m->n == 0)
    return;
  m->mean = sum / (double) m->n;
  for (guint p = 0; p < N_PATTERNS; p++)
    if (counts[p] != 0 && isfinite (values[p]))
      {
        double d = (double) values[p] - m->mean, d2 = d * d, c = counts[p];
        s2 += c * d2;
        s3 += c * d2 * d;
        s4 += c * d2 * d2;
      }
  m->m2 = s2;
  m->m3 = s3;
  m->m4 = s4;
}

static QbHistogram *histogram_for (const QbTensorScan *stats);

/* Counts every raw pattern on the workers; the scan and (when original is
 * not NULL) the histogram of the stored values follow from the counts. */
static gboolean
run_patterns_prepass (Pass *pass, QbWorkers *workers, QbTensorScan *scan,
                      QbHistogram **original, double progress_span, GError **error)
{
  const float *values = pattern_values (pass->tensor->dtype);
  guint32 *counts = NULL;
  QbMoments all;
  gboolean ok;

  pass->prefault = qb_model_claim_first_read (pass->model, pass->index);
  pass->raw = TRUE;
  ok = pass_run (pass, workers, patterns_chunk, NULL, 0, progress_span, error);
  pass->raw = FALSE;
  pass->prefault = FALSE;
  if (!ok)
    return FALSE;

  /* Into the first thread's table: the sum fits, as the tensor does. */
  for (guint t = 0; t < pass->n_threads; t++)
    {
      guint32 *c = pass->scratch[t].patterns;

      if (c == NULL)
        continue;
      if (counts == NULL)
        counts = c;
      else
        for (guint p = 0; p < N_PATTERNS; p++)
          counts[p] += c[p];
      pass->scratch[t].patterns = NULL;
    }
  if (counts == NULL)
    {
      qb_moments_init (&all);
      scan_from_moments (&all, scan);
      if (original)
        *original = histogram_for (scan);
      return TRUE;
    }
  moments_from_patterns (values, counts, &all);
  scan_from_moments (&all, scan);
  if (original)
    {
      QbHistSet set;

      *original = histogram_for (scan);
      qb_hist_set_init (&set, 1, original);
      qb_hist_set_add_counts (&set, values, counts, N_PATTERNS);
      qb_hist_set_collect (&set, original);
      qb_hist_set_clear (&set);
    }
  return TRUE;
}

/* The range and moments of the stored values, and their histogram when
 * original is not NULL and the source's patterns give it for free
 * (*original is left NULL otherwise); from the scan cache when a run has
 * counted the patterns before (the tensor is then not read here). */
static gboolean
run_prepass (Pass *pass, QbWorkers *workers, QbTensorScan *scan, QbHistogram **original,
             double progress_span, GError **error)
{
  QbHistogram *hist = NULL;

  if (original)
    *original = NULL;
  if (!counts_patterns (pass))
    return run_moments_prepass (pass, workers, scan, progress_span, error);
  /* The patterns' figures do not depend on the plan: kept across runs. */
  if (qb_scan_cache_load (pass->model, pass->index, scan, original))
    return TRUE;
  if (!run_patterns_prepass (pass, workers, scan, &hist, progress_span, error))
    return FALSE;
  qb_scan_cache_store (pass->model, pass->index, scan, hist);
  if (original)
    *original = hist;
  else
    qb_histogram_free (hist);
  return TRUE;
}

gboolean
qb_tensor_scan (QbModel *model, guint index, QbWorkers *workers,
                 GCancellable *cancellable, QbTensorScan *stats, GError **error)
{
  Pass pass;
  gboolean ok;

  g_return_val_if_fail (index < qb_model_get_n_tensors (model), FALSE);
  pass_init (&pass, model, index, workers, cancellable);
  ok = run_prepass (&pass, workers, stats, NULL, 1.0, error);
  pass_clear (&pass);
  return ok;
}

/* The histogram edges of a tensor: its range, so every run of the tensor
 * (and the histogram shown before any run) bins the same way. */
static QbHistogram *
histogram_for (const QbTensorScan *stats)
{
  return qb_histogram_new (QB_HISTOGRAM_BINS, stats->min, stats->max);
}

/* The stored values before any run: histogram, channel ranges and the
 * count of outliers, on the run's histogram edges and channel buckets. */
typedef struct {
  QbHistogram *hist;
  guint        n_channels;
  gint64       rows_per_bucket;
  double       center, radius;
  guint64     *outliers;       /* per thread */
} Original;

static void
scratch_prepare_original (Scratch *s, Original *o)
{
  if (s->hist_ready)
    return;
  qb_hist_set_init (&s->hist, 1, &o->hist);
  s->ch_min = g_new (float, o->n_channels);
  s->ch_max = g_new (float, o->n_channels);
  for (guint c = 0; c < o->n_channels; c++)
    {
      s->ch_min[c] = INFINITY;
      s->ch_max[c] = -INFINITY;
    }
  s->hist_ready = TRUE;
}

static void
original_chunk (Pass *pass, gint64 chunk, guint thread, float *x,
                gint64 row0, gint64 n_rows)
{
  Scratch *s = &pass->scratch[thread];
  Original *o = pass->data;

  scratch_prepare_original (s, o);
  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *xr = x + r * pass->n_cols;
      guint bucket = (guint) ((row0 + r) / o->rows_per_bucket);
      float mn = INFINITY, mx = -INFINITY;

      qb_hist_set_add (&s->hist, xr, NULL, pass->n_cols);
      /* As the run's error pass does: NaN left out. */
      for (gint64 j = 0; j < pass->n_cols; j++)
        {
          mn = xr[j] < mn ? xr[j] : mn;
          mx = xr[j] > mx ? xr[j] : mx;
        }
      s->ch_min[bucket] = MIN (s->ch_min[bucket], mn);
      s->ch_max[bucket] = MAX (s->ch_max[bucket], mx);
    }
  o->outliers[thread] += qb_moments_count_outliers (x, n_rows * pass->n_cols, o->center, o->radius);
}

static void
fill_original (Pass *pass, Original *o, const QbTensorScan *st, QbTensorResult *r)
{
  QbTensorMetrics *m = &r->metrics;
  guint64 outliers = 0;

  m->mse = m->rmse_rel = m->sqnr_db = m->cosine = NAN;
  m->max_abs_err = m->wmse = m->out_rel_err = NAN;
  m->mean = st->mean;
  m->std = st->std;
  m->min = st->min;
  m->max = st->max;
  m->kurtosis = st->kurtosis;

  r->n_channels = o->n_channels;
  r->channel_min = g_new (float, o->n_channels);
  r->channel_max = g_new (float, o->n_channels);
  for (guint c = 0; c < o->n_channels; c++)
    {
      r->channel_min[c] = INFINITY;
      r->channel_max[c] = -INFINITY;
    }
  for (guint t = 0; t < pass->n_threads; t++)
    {
      outliers += o->outliers[t];
      if (!pass->scratch[t].hist_ready)
        continue;
      qb_hist_set_collect (&pass->scratch[t].hist, &o->hist);
      for (guint c = 0; c < o->n_channels; c++)
        {
          r->channel_min[c] = MIN (r->channel_min[c], pass->scratch[t].ch_min[c]);
          r->channel_max[c] = MAX (r->channel_max[c], pass->scratch[t].ch_max[c]);
        }
    }
  m->outlier_share = st->n > 0 ? (double) outliers / st->n : 0;
  r->hist_original = g_steal_pointer (&o->hist);
}

QbTensorResult *
qb_tensor_describe_original (QbModel *model, guint index, QbWorkers *workers,
                             GCancellable *cancellable, GError **error)
{
  g_autoptr(QbTensorResult) r = NULL;
  const QbTensor *t;
  QbTensorScan stats;
  Original o = { 0 };
  Pass pass;
  gboolean ok;

  g_return_val_if_fail (index < qb_model_get_n_tensors (model), NULL);
  t = qb_model_get_tensor (model, index);
  pass_init (&pass, model, index, workers, cancellable);
  ok = run_prepass (&pass, workers, &stats, NULL, 0.5, error);
  if (ok)
    {
      o.hist = histogram_for (&stats);
      o.n_channels = qb_channel_n_buckets (pass.n_rows);
      o.rows_per_bucket = qb_channel_rows_per_bucket (pass.n_rows);
      o.center = stats.mean;
      o.radius = stats.outlier_radius;
      o.outliers = g_new0 (guint64, pass.n_threads);
      pass.prefault = qb_model_claim_first_read (model, index);
      ok = pass_run (&pass, workers, original_chunk, &o, 0.5, 0.5, error);
    }
  if (ok)
    {
      r = qb_tensor_result_new ();
      r->tensor_name = g_strdup (t->name);
      r->n_params = t->n_params;
      r->n_nonfinite = (gint64) stats.n_nonfinite;
      fill_original (&pass, &o, &stats, r);
    }
  qb_histogram_free (o.hist);
  g_free (o.outliers);
  pass_clear (&pass);
  return g_steal_pointer (&r);
}

QbHistogram *
qb_tensor_original_histogram (QbModel *model, guint index, QbWorkers *workers,
                              GCancellable *cancellable, GError **error)
{
  g_autoptr(QbTensorResult) r = qb_tensor_describe_original (model, index, workers, cancellable, error);

  return r ? g_steal_pointer (&r->hist_original) : NULL;
}

/* ---- quantization ------------------------------------------------------- */

/* The method for one expert's rows of a 3-D tensor with an XᵀX per expert
 * (QbQuantizeSpec.expert_grams): prepared by the first thread that needs
 * it, released once its last rows are done. */
typedef struct {
  GMutex           lock;
  gboolean         prepared;
  gpointer         state;
  const QbMethod  *method;     /* the tensor's, or rtn for a rounded expert */
  QbMethodContext  ctx;
  gint64           rows_left;  /* under lock */
  char            *why;        /* why it was rounded, or NULL */
} ExpertMethod;

/* A thread's counts of one expert's rows (x, y and x − y), drained into
 * that expert's histograms when its rows move on: a chunk's rows may
 * cross an expert's boundary. */
typedef struct {
  QbHistSet set;
  gint64    expert;            /* whose rows set holds; -1: none */
} ExpertHist;

/* One row of an expert tensor as measured: its error sums, its range,
 * its share of the output error and its moments; an expert's metrics are
 * its rows' sums added (its moments merged) in row order (the same for any
 * thread count). */
typedef struct {
  QbErrorSums sums;
  float       min, max;
  double      out_err[2];       /* Σ ΔwᵀGΔw and Σ wᵀGw (or their diagonal) */
  QbMoments   moments;
} RowSums;

typedef struct {
  const QbQuantizeSpec   *spec;
  const QbQuantizeOutput *output;
  QbMethodContext         ctx;
  gpointer                state;
  QbQuantParams           params;      /* for dequantizing */
  QbTensorScan           stats;
  float                   out_lo;      /* outlier bounds: mean -+ 6 std */
  float                   out_hi;
  const float            *row_weights; /* importance, or NULL */
  gint64                  rows_per_set; /* rows sharing one set of importance (an expert's) */
  gint64                  n_experts;    /* of a 3-D expert tensor, else 1 */
  RowSums                *row_sums;     /* n_experts > 1: one per row */
  ExpertHist             *expert_sets;  /* n_experts > 1: one per thread */
  QbHistogram           **expert_hists; /* n_experts × 3, the tensor's bins */
  GMutex                  expert_lock;
  ExpertMethod           *expert_methods; /* n_expert_grams > 1: one per expert */
  gint64                  rows_per_gram;  /* rows of one expert's XᵀX */
  /* Main pass results. */
  QbErrorSums            *per_chunk;
  double                 *out_err;     /* per chunk: Σ ΔWᵀGΔW and Σ WᵀGW (or their diagonal) */
  QbHistogram            *hists[3];    /* original, dequantized, error */
  guint                   first_hist;  /* 1 when the pre-pass gave the original's */
  guint                   n_channels;
  gint64                  rows_per_bucket;
} Quant;

/* The importance of a row: its expert's set (spec->importance_sets). */
static const float *
row_importance (const Quant *qt, const float *base, gint64 n_cols, gint64 row)
{
  if (base == NULL || qt->rows_per_set <= 0)
    return base;
  return base + (row / qt->rows_per_set) * n_cols;
}

/* The XᵀX of a row: its expert's, or the tensor's. */
static const double *
row_gram (const Quant *qt, gint64 row)
{
  if (qt->spec->n_expert_grams > 1)
    return qt->spec->expert_grams[row / qt->rows_per_gram];
  return qt->spec->gram;
}

static gboolean
has_gram (const Quant *qt)
{
  return qt->spec->gram != NULL || qt->spec->n_expert_grams > 1;
}

/* Expert e's context: its XᵀX and its rows' importance. */
static void
expert_context (Quant *qt, guint e, QbMethodContext *ctx)
{
  *ctx = qt->ctx;
  ctx->gram = qt->spec->expert_grams[e];
  ctx->gram_samples = qt->spec->expert_gram_samples[e];
  ctx->importance = row_importance (qt, qt->ctx.importance, ctx->n_cols, e * qt->rows_per_gram);
}

/* Prepares expert e's method (under its lock): an expert no calibration
 * token reached has nothing for GPTQ to work with and is rounded, as is
 * one whose preparation fails (its error kept for the result). */
static void
expert_prepare_locked (Quant *qt, guint e, GError **error)
{
  ExpertMethod *em = &qt->expert_methods[e];
  g_autoptr(GError) local = NULL;

  em->prepared = TRUE;
  expert_context (qt, e, &em->ctx);
  em->method = qt->ctx.method;
  if (em->ctx.gram_samples == 0)
    em->why = g_strdup ("no calibration tokens routed to it");
  else if (em->method->prepare != NULL)
    em->state = em->method->prepare (&em->ctx, &local);
  if (local != NULL)
    {
      em->why = g_strdup (local->message);
      if (error != NULL)
        g_propagate_error (error, g_steal_pointer (&local));
    }
  if (em->why != NULL)
    {
      em->method = qb_method_find ("rtn");
      em->ctx.method = em->method;
    }
}

static ExpertMethod *
expert_method (Quant *qt, guint e)
{
  ExpertMethod *em = &qt->expert_methods[e];

  g_mutex_lock (&em->lock);
  if (!em->prepared)
    expert_prepare_locked (qt, e, NULL);
  g_mutex_unlock (&em->lock);
  return em;
}

/* n of expert e's rows are done: after its last, its state goes. */
static void
expert_done (ExpertMethod *em, gint64 n)
{
  g_mutex_lock (&em->lock);
  em->rows_left -= n;
  if (em->rows_left <= 0 && em->state != NULL && em->method->release != NULL)
    {
      em->method->release (em->state);
      em->state = NULL;
    }
  g_mutex_unlock (&em->lock);
}

/* Rows row0.. are done: an expert whose last rows they were lets its
 * state go (a few experts' states are held at once, not all). */
static void
expert_rows_done (Quant *qt, gint64 row0, gint64 n_rows)
{
  for (gint64 r = row0; qt->expert_methods != NULL && r < row0 + n_rows; )
    {
      guint e = (guint) (r / qt->rows_per_gram);
      gint64 n = MIN (row0 + n_rows - r, (e + 1) * qt->rows_per_gram - r);

      expert_done (&qt->expert_methods[e], n);
      r += n;
    }
}

/* Rows row0.. through the method, split where the importance set or the
 * expert's XᵀX changes (each expert's rows of a 3-D tensor with its own).
 * sample: rows quantized only to size the error histogram; with an XᵀX per
 * expert they are rounded, since preparing every expert for them would
 * hold all the experts' states at once. */
static void
method_quantize (Quant *qt, const float *x, gint64 row0, gint64 n_rows, guint8 *q, gboolean sample)
{
  QbMethodContext ctx = qt->ctx;
  gint64 per = qt->rows_per_set > 0 ? qt->rows_per_set : n_rows + row0;
  gint64 per_gram = qt->expert_methods != NULL ? qt->rows_per_gram : n_rows + row0;

  for (gint64 r = 0; r < n_rows; )
    {
      gint64 row = row0 + r;
      gint64 n = MIN (n_rows - r, MIN (per - row % per, per_gram - row % per_gram));
      const QbMethod *method = qt->ctx.method;
      gpointer state = qt->state;

      ctx.importance = row_importance (qt, qt->ctx.importance, ctx.n_cols, row);
      if (qt->expert_methods != NULL)
        {
          ExpertMethod *em = sample ? NULL : expert_method (qt, (guint) (row / qt->rows_per_gram));
          method = em != NULL ? em->method : qb_method_find ("rtn");
          if (em != NULL)
            {
              ctx = em->ctx;
              state = em->state;
            }
          else
            ctx.method = method;
        }
      method->quantize_rows (&ctx, state, x + r * ctx.n_cols, n, q + r * ctx.row_bytes);
      r += n;
    }
}

/* Quantizes and dequantizes a chunk: q is where the bytes go, y gets the
 * dequantized values. */
static guint8 *
quantize_chunk (Pass *pass, Quant *qt, guint thread, const float *x,
                gint64 row0, gint64 n_rows)
{
  Scratch *s = &pass->scratch[thread];
  guint64 row_bytes = qt->ctx.row_bytes;
  guint8 *q;

  if (s->y == NULL)
    s->y = qb_workers_scratch (pass->workers, thread, SLOT_Y,
                               sizeof (float) * pass->scratch_rows * pass->n_cols);
  if (qt->spec->format == NULL)
    {
      memcpy (s->y, x, sizeof (float) * n_rows * pass->n_cols);
      return NULL;
    }
  if (qt->output && qt->output->data)
    q = qt->output->data + row0 * row_bytes;
  else
    {
      if (s->q == NULL)
        s->q = qb_workers_scratch (pass->workers, thread, SLOT_Q, pass->scratch_rows * row_bytes);
      q = s->q;
    }
  method_quantize (qt, x, row0, n_rows, q, FALSE);
  expert_rows_done (qt, row0, n_rows);
  if (qt->spec->no_metrics && !(qt->output && (qt->output->f16 || qt->output->f32)))
    return q;
  for (gint64 r = 0; r < n_rows; r++)
    qt->spec->format->dequantize_row (&qt->params, q + r * row_bytes,
                                      s->y + r * pass->n_cols, pass->n_cols);
  return q;
}

static void
scratch_prepare_main (Pass *pass, Quant *qt, Scratch *s)
{
  if (s->hist_ready)
    return;
  qb_hist_set_init (&s->hist, 3 - qt->first_hist, qt->hists + qt->first_hist);
  s->ch_min = g_new (float, qt->n_channels);
  s->ch_max = g_new (float, qt->n_channels);
  for (guint c = 0; c < qt->n_channels; c++)
    {
      s->ch_min[c] = INFINITY;
      s->ch_max[c] = -INFINITY;
    }
  s->hist_ready = TRUE;
}

/* The chunk's share of the output error ‖(W − Ŵ)X‖² and of ‖WX‖²: with
 * XᵀX, the quadratic forms of the error rows and of the weight rows; with
 * importance only, their diagonal Σ imp·Δw² and Σ imp·w². */
static void
output_error_chunk (Pass *pass, Quant *qt, const float *x, const float *y, gint64 row0,
                    gint64 n_rows, double *sums)
{
  gint64 n = pass->n_cols;
  g_autofree double *q = g_new0 (double, 2 * n_rows);

  if (has_gram (qt))
    {
      g_autofree double *e = g_new (double, (gsize) 2 * n_rows * n);

      /* Rows of one XᵀX at a time (an expert's rows through its own). */
      for (gint64 r0 = 0, r1; r0 < n_rows; r0 = r1)
        {
          gint64 m;
          const double *gram = row_gram (qt, row0 + r0);
          g_autofree double *qq = NULL;

          for (r1 = r0 + 1; r1 < n_rows && row_gram (qt, row0 + r1) == gram; r1++)
            ;
          m = r1 - r0;
          qq = g_new (double, 2 * m);
          for (gint64 i = 0; i < m * n; i++)
            {
              e[i] = (double) x[r0 * n + i] - y[r0 * n + i];
              e[m * n + i] = x[r0 * n + i];
            }
          qb_quadratic_forms (gram, e, 2 * m, n, qq);
          for (gint64 r = 0; r < m; r++)
            {
              q[r0 + r] = qq[r];
              q[n_rows + r0 + r] = qq[m + r];
            }
        }
    }
  else if (qt->spec->importance != NULL)
    for (gint64 r = 0; r < n_rows; r++)
      {
        const float *imp = row_importance (qt, qt->spec->importance, n, row0 + r);
        for (gint64 j = 0; j < n; j++)
          {
            double w = imp[j], d = (double) x[r * n + j] - y[r * n + j];
            q[r] += w * d * d;
            q[n_rows + r] += w * x[r * n + j] * x[r * n + j];
          }
      }
  else
    return;
  for (gint64 r = 0; r < n_rows; r++)
    {
      sums[0] += q[r];
      sums[1] += q[n_rows + r];
      if (qt->row_sums != NULL)
        {
          qt->row_sums[row0 + r].out_err[0] = q[r];
          qt->row_sums[row0 + r].out_err[1] = q[n_rows + r];
        }
    }
}

static void
expert_hist_drain (Quant *qt, ExpertHist *eh)
{
  if (eh->expert < 0)
    return;
  g_mutex_lock (&qt->expert_lock);
  qb_hist_set_collect (&eh->set, qt->expert_hists + 3 * eh->expert);
  g_mutex_unlock (&qt->expert_lock);
  memset (eh->set.totals, 0, sizeof (guint64) * eh->set.n_hist * eh->set.n_bins);
  eh->expert = -1;
}

/* A row of an expert tensor goes to its expert's histograms only; the
 * tensor's are their sums (fill_result). */
static void
expert_hist_add (Quant *qt, guint thread, gint64 row, gint64 n_rows_total,
                 const float *xr, const float *yr, gint64 n_cols)
{
  ExpertHist *eh = &qt->expert_sets[thread];
  gint64 e = row / (n_rows_total / qt->n_experts);

  if (eh->set.counts == NULL)
    {
      qb_hist_set_init (&eh->set, 3, qt->hists);
      eh->expert = -1;
    }
  if (eh->expert != e)
    {
      expert_hist_drain (qt, eh);
      eh->expert = e;
    }
  qb_hist_set_add (&eh->set, xr, yr, n_cols);
}

/* Rows row0.. of a chunk, x quantized to y, measured as the CPU's thread
 * measures them: their error sums added to *sums row by row, their
 * histograms, channel ranges and output error. */
static void
measure_rows (Pass *pass, Quant *qt, guint thread, const float *x, const float *y,
              gint64 chunk, gint64 row0, gint64 n_rows, QbErrorSums *sums)
{
  Scratch *s = &pass->scratch[thread];
  gint64 n_cols = pass->n_cols;

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *xr = x + r * n_cols, *yr = y + r * n_cols;
      gint64 row = row0 + r;
      guint bucket = (guint) (row / qt->rows_per_bucket);
      float mn, mx;

      const float *w = row_importance (qt, qt->row_weights, n_cols, row);

      if (qt->row_sums != NULL)
        {
          /* The row's own sums, then the chunk's: its expert's metrics
           * and the tensor's come from the same products. */
          RowSums *rs = &qt->row_sums[row];
          memset (&rs->sums, 0, sizeof rs->sums);
          qb_measure_error_row (xr, yr, w, n_cols, qt->out_lo, qt->out_hi, &rs->sums, &mn, &mx);
          rs->min = mn;
          rs->max = mx;
          /* The row is in cache: its moments cost no read of the weights. */
          qb_measure_moments (xr, n_cols, &rs->moments);
          qb_measure_error_merge (sums, &rs->sums);
        }
      else
        qb_measure_error_row (xr, yr, w, n_cols, qt->out_lo, qt->out_hi, sums, &mn, &mx);
      if (qt->expert_sets != NULL)
        expert_hist_add (qt, thread, row, pass->n_rows, xr, yr, n_cols);
      else
        qb_hist_set_add (&s->hist, xr, yr, n_cols);
      s->ch_min[bucket] = MIN (s->ch_min[bucket], mn);
      s->ch_max[bucket] = MAX (s->ch_max[bucket], mx);
    }
  if (qt->expert_sets != NULL)
    expert_hist_drain (qt, &qt->expert_sets[thread]);
  if (qt->spec->format != NULL)
    output_error_chunk (pass, qt, x, y, row0, n_rows, qt->out_err + 2 * chunk);
}

static void
main_chunk (Pass *pass, gint64 chunk, guint thread, float *x,
            gint64 row0, gint64 n_rows)
{
  Quant *qt = pass->data;
  Scratch *s = &pass->scratch[thread];
  QbErrorSums sums = { 0 };
  gint64 n_cols = pass->n_cols;

  scratch_prepare_main (pass, qt, s);
  quantize_chunk (pass, qt, thread, x, row0, n_rows);
  if (qt->output && qt->output->f16)
    qb_measure_to_f16 (s->y, qt->output->f16 + row0 * n_cols, n_rows * n_cols);
  if (qt->output && qt->output->f32)
    memcpy (qt->output->f32 + row0 * n_cols, s->y, sizeof (float) * n_rows * n_cols);
  measure_rows (pass, qt, thread, x, s->y, chunk, row0, n_rows, &sums);
  qb_measure_error_merge (&qt->per_chunk[chunk], &sums);
}

/* Without metrics: the output only. */
static void
output_chunk (Pass *pass, gint64 chunk, guint thread, float *x,
              gint64 row0, gint64 n_rows)
{
  Quant *qt = pass->data;
  Scratch *s = &pass->scratch[thread];
  gint64 n_cols = pass->n_cols;

  quantize_chunk (pass, qt, thread, x, row0, n_rows);
  if (qt->output && qt->output->f16)
    qb_measure_to_f16 (s->y, qt->output->f16 + row0 * n_cols, n_rows * n_cols);
  if (qt->output && qt->output->f32)
    memcpy (qt->output->f32 + row0 * n_cols, s->y, sizeof (float) * n_rows * n_cols);
}

/* An XᵀX per expert: a method per expert, prepared when its rows come up.
 * The first expert with samples is prepared here, so that what fails for
 * every expert (a bad option) fails the tensor; BLAS on one thread, as the
 * workers' are when the others are prepared. */
static gboolean
prepare_expert_methods (Pass *pass, Quant *qt, const char *name, GError **error)
{
  const QbQuantizeSpec *spec = qt->spec;
  guint n = spec->n_expert_grams;
  g_autoptr(GError) local = NULL;
  int blas_threads;

  if (pass->n_rows % n != 0 || (gint64) n != qt->n_experts)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: %u XᵀX for a tensor of %" G_GINT64_FORMAT " experts", name, n, qt->n_experts);
      return FALSE;
    }
  qt->rows_per_gram = pass->n_rows / n;
  if (!qt->ctx.method->needs_gram)
    return TRUE;   /* XᵀX to measure the output error through */
  qt->expert_methods = g_new0 (ExpertMethod, n);
  for (guint e = 0; e < n; e++)
    {
      g_mutex_init (&qt->expert_methods[e].lock);
      qt->expert_methods[e].rows_left = qt->rows_per_gram;
    }
  blas_threads = openblas_get_num_threads ();
  openblas_set_num_threads (1);
  for (guint e = 0; e < n; e++)
    if (spec->expert_gram_samples[e] > 0)
      {
        expert_prepare_locked (qt, e, &local);
        break;
      }
  openblas_set_num_threads (blas_threads);
  /* What fails for the first expert fails the tensor, as for a dense
   * one; a later expert's failure rounds that expert alone. */
  if (local != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "%s: ", name);
      return FALSE;
    }
  return TRUE;
}

/* The experts the method rounded, for the result: NULL when none. */
static char *
expert_methods_note (Quant *qt)
{
  g_autoptr(GString) s = NULL;
  guint n = qt->spec->n_expert_grams, n_rounded = 0;

  for (guint e = 0; qt->expert_methods != NULL && e < n; e++)
    {
      ExpertMethod *em = &qt->expert_methods[e];
      if (em->why == NULL)
        continue;
      if (s == NULL)
        s = g_string_new (NULL);
      g_string_append_printf (s, "%sexpert %u: %s", n_rounded++ ? "; " : "", e, em->why);
    }
  if (s == NULL)
    return NULL;
  return g_strdup_printf ("%s on %u of %u experts; rounded (rtn): %s", qt->ctx.method->name,
                          n - n_rounded, n, s->str);
}

static void
expert_methods_free (Quant *qt)
{
  /* Each state put back the BLAS thread count it found, 1 when it was
   * prepared inside the main pass; released after it (a run stopped
   * midway), that would leave the process on one thread. */
  int blas_threads = openblas_get_num_threads ();

  for (guint e = 0; qt->expert_methods != NULL && e < qt->spec->n_expert_grams; e++)
    {
      ExpertMethod *em = &qt->expert_methods[e];
      if (em->state != NULL && em->method->release != NULL)
        em->method->release (em->state);
      g_free (em->why);
      g_mutex_clear (&em->lock);
    }
  g_clear_pointer (&qt->expert_methods, g_free);
  openblas_set_num_threads (blas_threads);
}

static gboolean
prepare_method (Pass *pass, Quant *qt, const char *name, GError **error)
{
  const QbQuantizeSpec *spec = qt->spec;
  const QbMethod *method = spec->method ? spec->method : qb_method_find ("rtn");
  QbMethodContext *ctx = &qt->ctx;

  ctx->method = method;
  ctx->format = spec->format;
  ctx->tensor_name = name;
  ctx->n_cols = pass->n_cols;
  ctx->n_rows = pass->n_rows;
  ctx->importance = spec->importance;
  ctx->gram = spec->gram;
  ctx->gram_samples = spec->gram_samples;
  ctx->tensor_absmax = (float) qt->stats.absmax;
  ctx->options = spec->options;
  qb_method_context_params (ctx, &qt->params);

  if (spec->format == NULL)
    return TRUE;
  if (!qb_format_row_bytes (spec->format, pass->n_cols, &ctx->row_bytes))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: rows of %" G_GINT64_FORMAT " values do not fit format %s",
                   name, pass->n_cols, spec->format->name);
      return FALSE;
    }
  if (method->needs_importance && spec->importance == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: method %s needs an importance matrix", name, method->name);
      return FALSE;
    }
  if (spec->n_expert_grams > 1)
    return prepare_expert_methods (pass, qt, name, error);
  if (method->needs_gram && spec->gram == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: method %s needs calibration statistics (XᵀX)", name, method->name);
      return FALSE;
    }
  if (method->prepare != NULL)
    {
      g_autoptr(GError) local = NULL;
      qt->state = method->prepare (ctx, &local);
      if (local != NULL)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local), "%s: ", name);
          return FALSE;
        }
    }
  return TRUE;
}

/* The rows sampled to size the error histogram, each quantized on its
 * own (on the workers: the largest error does not depend on the order). */
typedef struct {
  Pass    *pass;
  Quant   *qt;
  gint64   n;
  float   *err;      /* per sample */
  GError **errors;   /* per sample */
} Sample;

static void
sample_row (gint64 k, guint thread, gpointer data)
{
  Sample *s = data;
  Pass *pass = s->pass;
  gint64 row = s->n == 1 ? 0 : k * (pass->n_rows - 1) / (s->n - 1);
  g_autofree float *x = g_new (float, pass->n_cols);
  g_autofree float *y = g_new (float, pass->n_cols);
  g_autofree guint8 *q = g_malloc (MAX (s->qt->ctx.row_bytes, 1));

  if (!qb_model_read_rows (pass->model, pass->index, row, 1, x, &s->errors[k]))
    return;
  method_quantize (s->qt, x, row, 1, q, TRUE);
  s->qt->spec->format->dequantize_row (&s->qt->params, q, y, pass->n_cols);
  s->err[k] = qb_measure_max_err (x, y, pass->n_cols);
}

/* Error histogram edges: the largest error over a few rows spread through
 * the tensor, with a margin; larger errors land in the end bins
 * (max_abs_err stays exact).  Rows are independent, so quantizing them
 * here gives the same bytes as in the main pass. */
static gboolean
size_error_histogram (Pass *pass, QbWorkers *workers, Quant *qt, GError **error)
{
  gint64 n = MIN (pass->n_rows, N_SAMPLE_ROWS);
  double e = 0;

  if (qt->spec->format != NULL && n > 0)
    {
      float err[N_SAMPLE_ROWS] = { 0 };
      GError *errors[N_SAMPLE_ROWS] = { NULL };
      Sample s = { pass, qt, n, err, errors };
      gboolean ok = TRUE;

      qb_workers_run (workers, n, sample_row, &s);
      for (gint64 k = 0; k < n; k++)
        {
          if (errors[k] != NULL && ok)
            {
              g_propagate_error (error, errors[k]);
              ok = FALSE;
            }
          else
            g_clear_error (&errors[k]);
          e = MAX (e, err[k]);
        }
      if (!ok)
        return FALSE;
      e *= 1.25;
    }
  if (!(e > 0) || !isfinite (e))
    e = qt->stats.absmax > 0 ? qt->stats.absmax * 1e-6 : 1e-9;
  qt->hists[2] = qb_histogram_new (QB_HISTOGRAM_BINS, -e, e);
  return TRUE;
}

/* Sums over a NaN or infinity say nothing (a NaN error never compares
 * greater than zero, which read as a lossless tensor): the error metrics
 * of such a tensor are undefined. */
static void
clear_error_metrics (QbTensorMetrics *m)
{
  m->mse = m->rmse_rel = m->sqnr_db = m->cosine = m->max_abs_err = NAN;
  m->wmse = m->out_rel_err = NAN;
}

/* The error metrics of n values from their sums: the tensor's and each
 * expert's. */
static void
metrics_from_sums (const QbErrorSums *all, double n, QbTensorMetrics *m)
{
  m->mse = all->s_ee / n;
  m->rmse_rel = all->s_xx > 0 ? sqrt (all->s_ee / all->s_xx) : (all->s_ee > 0 ? INFINITY : 0);
  m->sqnr_db = all->s_ee > 0 ? 10.0 * log10 (all->s_xx / all->s_ee) : INFINITY;
  if (all->s_xx > 0 && all->s_yy > 0)
    m->cosine = all->s_xy / sqrt (all->s_xx * all->s_yy);
  else
    m->cosine = all->s_xx == all->s_yy ? 1.0 : 0.0;
  m->max_abs_err = all->max_err;
  m->outlier_share = all->n_out / n;
}

/* Σ over the rows first..first+n of their importance sums: the
 * denominator of the weighted MSE. */
static double
importance_rows_sum (Quant *qt, gint64 n_cols, gint64 first, gint64 n)
{
  double total = 0, set_sum = 0;
  gint64 set = -1;

  for (gint64 row = first; row < first + n; row++)
    {
      gint64 s = qt->rows_per_set > 0 ? row / qt->rows_per_set : 0;
      if (s != set)
        {
          const float *w = row_importance (qt, qt->row_weights, n_cols, row);
          set = s;
          set_sum = 0;
          for (gint64 j = 0; j < n_cols; j++)
            set_sum += w[j];
        }
      total += set_sum;
    }
  return total;
}

/* An expert's mean, std and kurtosis, of its finite weights as the
 * tensor's (NAN when it has none). */
static void
expert_moments (const QbMoments *moments, QbTensorMetrics *m)
{
  if (moments->n == 0)
    {
      m->mean = m->std = m->kurtosis = NAN;
      return;
    }
  m->mean = moments->mean;
  m->std = qb_moments_std (moments);
  m->kurtosis = qb_moments_kurtosis (moments);
}

/* Each expert's metrics from its rows' sums (in row order: the same for
 * any thread count), as the tensor's from all of them. */
static void
fill_expert_metrics (Pass *pass, Quant *qt, QbTensorResult *r)
{
  gint64 per = pass->n_rows / qt->n_experts;
  gboolean out_err = qt->spec->format != NULL && (has_gram (qt) || qt->spec->importance != NULL);

  qb_tensor_result_set_n_experts (r, (guint) qt->n_experts);
  for (guint e = 0; e < r->n_experts; e++)
    {
      QbTensorMetrics *m = &r->expert_metrics[e];
      QbErrorSums all = { 0 };
      QbMoments moments;
      double num = 0, den = 0;

      m->min = INFINITY;
      m->max = -INFINITY;
      qb_moments_init (&moments);
      for (gint64 row = e * per; row < (e + 1) * per; row++)
        {
          const RowSums *rs = &qt->row_sums[row];
          qb_measure_error_merge (&all, &rs->sums);
          qb_moments_merge (&moments, &rs->moments);
          m->min = MIN (m->min, rs->min);
          m->max = MAX (m->max, rs->max);
          num += rs->out_err[0];
          den += rs->out_err[1];
        }
      metrics_from_sums (&all, (double) per * pass->n_cols, m);
      expert_moments (&moments, m);
      if (qt->row_weights != NULL)
        {
          double wsum = importance_rows_sum (qt, pass->n_cols, e * per, per);
          m->wmse = wsum > 0 ? all.s_wee / wsum : NAN;
        }
      if (out_err)
        {
          m->out_rel_err = den > 0 ? num / den : (num > 0 ? INFINITY : 0);
          m->out_rel_err_diag = !has_gram (qt);
          /* No token reached the expert: nothing measured its output. */
          if (qt->spec->n_expert_grams > 1 && qt->spec->expert_gram_samples[e] == 0)
            m->out_rel_err = NAN;
        }
      /* A NaN or infinity among the expert's weights leaves its error
       * metrics undefined, as the tensor's. */
      if (!isfinite (all.s_xx) || isnan (all.s_ee) || isnan (all.s_xy))
        clear_error_metrics (m);
    }
  if (qt->expert_hists == NULL)
    return;
  /* The tensor's histograms are the experts' sums; each expert keeps its
   * own in coarser bins. */
  r->expert_hists = g_new0 (QbHistogram *, 3 * (gsize) r->n_experts);
  for (gsize i = 0; i < 3 * (gsize) r->n_experts; i++)
    {
      guint k = i % 3;
      if (k >= qt->first_hist)
        for (guint b = 0; b < qt->hists[k]->n_bins; b++)
          qt->hists[k]->counts[b] += qt->expert_hists[i]->counts[b];
      r->expert_hists[i] = qb_histogram_coarsen (qt->expert_hists[i],
                                                 QB_HISTOGRAM_BINS / QB_EXPERT_HISTOGRAM_BINS);
    }
}

/* Histogram edges exist once the main pass starts; the experts' are made
 * then (expert_hists_create). */
static void
expert_measure_init (Quant *qt, Pass *pass)
{
  qt->row_sums = g_new0 (RowSums, pass->n_rows);
  qt->expert_sets = g_new0 (ExpertHist, pass->n_threads);
  g_mutex_init (&qt->expert_lock);
}

static void
expert_hists_create (Quant *qt)
{
  if (qt->expert_sets == NULL)
    return;
  qt->expert_hists = g_new0 (QbHistogram *, 3 * (gsize) qt->n_experts);
  for (gsize i = 0; i < 3 * (gsize) qt->n_experts; i++)
    {
      const QbHistogram *edges = qt->hists[i % 3];
      qt->expert_hists[i] = qb_histogram_new (edges->n_bins, edges->lo, edges->hi);
    }
}

static void
expert_measure_clear (Quant *qt, Pass *pass)
{
  g_free (qt->row_sums);
  if (qt->expert_sets == NULL)
    return;
  for (guint t = 0; t < pass->n_threads; t++)
    qb_hist_set_clear (&qt->expert_sets[t].set);
  g_free (qt->expert_sets);
  if (qt->expert_hists != NULL)
    for (gsize i = 0; i < 3 * (gsize) qt->n_experts; i++)
      qb_histogram_free (qt->expert_hists[i]);
  g_free (qt->expert_hists);
  g_mutex_clear (&qt->expert_lock);
}

static void
fill_result (Pass *pass, Quant *qt, QbTensorResult *r)
{
  const QbTensorScan *st = &qt->stats;
  QbTensorMetrics *m = &r->metrics;
  QbErrorSums all = { 0 };
  double n = (double) MAX (st->n, 1);

  for (gint64 c = 0; c < pass->n_chunks; c++)
    qb_measure_error_merge (&all, &qt->per_chunk[c]);

  metrics_from_sums (&all, n, m);
  if (qt->row_weights != NULL)
    {
      /* Σ over rows of the row's importance sum. */
      double wsum = 0;
      gint64 sets = qt->rows_per_set > 0 ? pass->n_rows / qt->rows_per_set : 1;
      for (gint64 j = 0; j < pass->n_cols * sets; j++)
        wsum += qt->row_weights[j];
      m->wmse = wsum > 0 ? all.s_wee / (wsum * (pass->n_rows / sets)) : NAN;
    }
  if (qt->spec->format != NULL && (has_gram (qt) || qt->spec->importance != NULL))
    {
      double num = 0, den = 0;
      for (gint64 c = 0; c < pass->n_chunks; c++)
        {
          num += qt->out_err[2 * c];
          den += qt->out_err[2 * c + 1];
        }
      m->out_rel_err = den > 0 ? num / den : (num > 0 ? INFINITY : 0);
      m->out_rel_err_diag = !has_gram (qt);
    }
  m->mean = st->mean;
  m->std = st->std;
  m->min = st->min;
  m->max = st->max;
  m->kurtosis = st->kurtosis;
  r->n_nonfinite = (gint64) st->n_nonfinite;
  if (st->n_nonfinite > 0 || isnan (all.s_ee) || isnan (all.s_xy))
    clear_error_metrics (m);

  for (guint t = 0; t < pass->n_threads; t++)
    if (pass->scratch[t].hist_ready)
      qb_hist_set_collect (&pass->scratch[t].hist, qt->hists + qt->first_hist);
  if (qt->row_sums != NULL)
    fill_expert_metrics (pass, qt, r);
  r->hist_original = g_steal_pointer (&qt->hists[0]);
  r->hist_quantized = g_steal_pointer (&qt->hists[1]);
  r->hist_error = g_steal_pointer (&qt->hists[2]);

  r->n_channels = qt->n_channels;
  r->channel_min = g_new (float, qt->n_channels);
  r->channel_max = g_new (float, qt->n_channels);
  for (guint c = 0; c < qt->n_channels; c++)
    {
      r->channel_min[c] = INFINITY;
      r->channel_max[c] = -INFINITY;
      for (guint t = 0; t < pass->n_threads; t++)
        if (pass->scratch[t].hist_ready)
          {
            r->channel_min[c] = MIN (r->channel_min[c], pass->scratch[t].ch_min[c]);
            r->channel_max[c] = MAX (r->channel_max[c], pass->scratch[t].ch_max[c]);
          }
    }
}

/* Per-tensor formats store their one scale after the rows, as the layout
 * in qb-format.h gives it: INTn_T the f16 step d = absmax / (2^(n-1) - 1),
 * FP8_*_T the f32 scale absmax / (largest finite value). */
static void
write_tensor_scale (const QbFormat *format, Pass *pass, Quant *qt, guint8 *data)
{
  guint8 *tail = data + qt->ctx.row_bytes * (guint64) pass->n_rows;
  float absmax = qt->ctx.tensor_absmax;

  if (format->scope != QB_SCOPE_TENSOR)
    return;
  memset (tail, 0, format->scale_bytes);
  if (format->family == QB_FAMILY_INT && format->scale_bytes == 2)
    {
      guint16 h = GUINT16_TO_LE (qb_fp32_to_fp16 (qb_format_tensor_scale (format, absmax)));
      memcpy (tail, &h, 2);
    }
  else if (format->family == QB_FAMILY_FP8 && format->scale_bytes == 4)
    {
      float scale = qb_format_tensor_scale (format, absmax);
      guint32 bits;
      memcpy (&bits, &scale, 4);
      bits = GUINT32_TO_LE (bits);
      memcpy (tail, &bits, 4);
    }
}

/* After prepare: larger chunks for a method that wants them (GPTQ). */
static void
method_chunks (Pass *pass, Quant *qt)
{
  gint64 rows;

  if (qt->spec->format == NULL || qt->ctx.method->chunk_values <= 0)
    return;
  rows = MAX (1, qt->ctx.method->chunk_values / MAX (pass->n_cols, 1));
  if (rows > pass->chunk_rows)
    pass_set_chunk_rows (pass, rows);
}

/* ---- the main pass on the selected device ------------------------------
 *
 * Formats with a device kernel (qb-quantize-device-private.h), plain
 * rounding, go through the default device in slabs of whole chunks; the
 * per-stripe sums are added in the order the CPU's groups add them, the
 * histogram counts and channel ranges go where the CPU's threads put
 * theirs, so fill_result reads the same figures.  With an importance
 * matrix the formats whose importance path has a kernel round on the
 * device too, and the host measures the device's output with the CPU's
 * own code (weighted error and output error included), chunk by chunk;
 * the others say once that they stay on the CPU.
 * Anything the device cannot take (no kernel, not enough memory, a build
 * or run error, NaN or infinities in the tensor) sends the tensor to the
 * CPU pass, with a message when it is the device that failed. */

typedef enum { DEVICE_DECLINED, DEVICE_DONE, DEVICE_FAILED } DeviceOutcome;

typedef struct {
  gboolean     host_measure;  /* importance: measure_rows on the host */
  QbErrorSums  pending;       /* of the chunk a slab ends inside */
  QbErrorSums *per_chunk;
  float       *ch_min;
  float       *ch_max;
  guint64     *totals;
  float       *x, *y;
  guint8      *q;
  QbDeviceStripe *stripes;
} DeviceSlabs;

static void
device_slabs_clear (DeviceSlabs *d)
{
  g_free (d->per_chunk);
  g_free (d->ch_min);
  g_free (d->ch_max);
  g_free (d->totals);
  g_free (d->x);
  g_free (d->y);
  g_free (d->q);
  g_free (d->stripes);
}

/* Once per format and process: why its tensors with importance stay on
 * the CPU. */
static void
say_no_importance_kernel (const QbFormat *format)
{
  static GMutex lock;
  static GHashTable *told;

  g_mutex_lock (&lock);
  if (told == NULL)
    told = g_hash_table_new (NULL, NULL);
  if (g_hash_table_add (told, (gpointer) format))
    g_message ("%s has no device kernel for rounding with an importance matrix: "
               "such tensors are quantized on the CPU", format->name);
  g_mutex_unlock (&lock);
}

static gboolean
device_takes (const Quant *qt)
{
  const QbQuantizeSpec *spec = qt->spec;

  /* Per-expert metrics are summed row by row on the CPU. */
  if (!qb_device_quantize_supports (spec->format) || has_gram (qt) ||
      !g_str_equal (qt->ctx.method->name, "rtn") || qt->row_sums != NULL)
    return FALSE;
  if (spec->importance == NULL)
    return TRUE;
  /* One importance set per expert: the device kernels take one (the
   * format has them, so no message). */
  if (spec->importance_sets > 1)
    return FALSE;
  if (qb_device_quantize_supports_importance (spec->format))
    return TRUE;
  say_no_importance_kernel (spec->format);
  return FALSE;
}

/* With importance: rows row0.. (x read, y from the device) measured on
 * the host as main_chunk measures a chunk; a chunk that goes on into the
 * next slab carries its sums over. */
static void
device_measure_on_host (Pass *pass, Quant *qt, DeviceSlabs *d, const float *y, gint64 row0,
                        gint64 n_rows)
{
  gint64 n_cols = pass->n_cols;

  for (gint64 r = row0, end; r < row0 + n_rows; r = end)
    {
      gint64 chunk = r / pass->chunk_rows;
      gint64 c_end = MIN ((chunk + 1) * pass->chunk_rows, pass->n_rows);

      end = MIN (c_end, row0 + n_rows);
      measure_rows (pass, qt, 0, d->x + (r - row0) * n_cols, y + (r - row0) * n_cols, chunk, r,
                    end - r, &d->pending);
      if (end == c_end)
        {
          qb_measure_error_merge (&qt->per_chunk[chunk], &d->pending);
          memset (&d->pending, 0, sizeof d->pending);
        }
    }
}

/* A device pass measured on the host that gives up leaves the CPU pass a
 * clean slate. */
static void
device_measure_undo (Pass *pass, Quant *qt)
{
  Scratch *s = &pass->scratch[0];

  memset (qt->per_chunk, 0, sizeof (QbErrorSums) * MAX (pass->n_chunks, 1));
  memset (qt->out_err, 0, sizeof (double) * 2 * MAX (pass->n_chunks, 1));
  g_clear_pointer (&s->ch_min, g_free);
  g_clear_pointer (&s->ch_max, g_free);
  qb_hist_set_clear (&s->hist);
  s->hist_ready = FALSE;
}

/* Adds the stripes of rows row0.. (whole chunks) as main_chunk would. */
static void
device_merge (Pass *pass, Quant *qt, DeviceSlabs *d, gint64 row0, gint64 n_rows)
{
  gint64 per_row = qb_device_stripes_per_row (pass->n_cols);

  for (gint64 c0 = row0; c0 < row0 + n_rows; c0 += pass->chunk_rows)
    {
      gint64 chunk = c0 / pass->chunk_rows, c_end = MIN (c0 + pass->chunk_rows, pass->n_rows);
      for (gint64 g0 = c0; g0 < c_end; g0 += pass->group_rows)
        {
          QbErrorSums sums = { 0 };
          for (gint64 row = g0; row < MIN (g0 + pass->group_rows, c_end); row++)
            {
              const QbDeviceStripe *st = d->stripes + (row - row0) * per_row;
              guint bucket = (guint) (row / qt->rows_per_bucket);
              for (gint64 k = 0; k < per_row; k++)
                {
                  sums.s_xx += st[k].s_xx;
                  sums.s_yy += st[k].s_yy;
                  sums.s_xy += st[k].s_xy;
                  sums.s_ee += st[k].s_ee;
                  sums.max_err = MAX (sums.max_err, st[k].max_err);
                  sums.n_out += st[k].n_out;
                  d->ch_min[bucket] = MIN (d->ch_min[bucket], st[k].min);
                  d->ch_max[bucket] = MAX (d->ch_max[bucket], st[k].max);
                }
            }
          qb_measure_error_merge (&d->per_chunk[chunk], &sums);
        }
    }
}

/* The results into the places the CPU pass fills. */
static void
device_commit (Pass *pass, Quant *qt, DeviceSlabs *d)
{
  Scratch *s = &pass->scratch[0];

  gsize skip = (gsize) qt->first_hist * s->hist.n_bins;

  memcpy (qt->per_chunk, d->per_chunk, sizeof (QbErrorSums) * pass->n_chunks);
  /* The device counts all three histograms; the pre-pass may have given
   * the original's already (the same counts). */
  for (gsize b = 0; b < (gsize) s->hist.n_hist * s->hist.n_bins; b++)
    s->hist.totals[b] += d->totals[skip + b];
  memcpy (s->ch_min, d->ch_min, sizeof (float) * qt->n_channels);
  memcpy (s->ch_max, d->ch_max, sizeof (float) * qt->n_channels);
}

static DeviceOutcome
device_slabs (Pass *pass, Quant *qt, QbDeviceQuantizer *dq, DeviceSlabs *d, gboolean measure,
              GError **error)
{
  const QbQuantizeOutput *out = qt->output;
  gint64 n_cols = pass->n_cols, slab = qb_device_quantizer_slab_rows (dq);
  guint64 row_bytes = qt->ctx.row_bytes;

  slab = MAX (pass->chunk_rows, slab - slab % pass->chunk_rows);
  slab = MIN (slab, qb_device_quantizer_slab_rows (dq));
  for (gint64 row0 = 0; row0 < pass->n_rows; row0 += slab)
    {
      gint64 n = MIN (slab, pass->n_rows - row0);
      guint8 *q = out && out->data ? out->data + row0 * row_bytes : d->q;
      float *y = out && out->f32 ? out->f32 + row0 * n_cols : d->y;
      gboolean nonfinite = FALSE;
      g_autoptr(GError) local = NULL;

      if (g_cancellable_set_error_if_cancelled (pass->cancellable, error))
        return DEVICE_FAILED;
      if (!qb_model_read_rows (pass->model, pass->index, row0, n, d->x, error))
        return DEVICE_FAILED;
      if (!qb_device_quantizer_run (dq, d->x, n, q, (measure || (out && (out->f32 || out->f16))) ? y : NULL,
                                    d->host_measure ? NULL : d->stripes,
                                    d->host_measure ? NULL : d->totals, &nonfinite, &local))
        {
          g_message ("%s: %s; quantizing it on the CPU", pass->tensor->name, local->message);
          return DEVICE_DECLINED;
        }
      if (nonfinite)
        return DEVICE_DECLINED;   /* the CPU kernels define NaN's bytes */
      if (out && out->f16)
        qb_measure_to_f16 (y, out->f16 + row0 * n_cols, n * n_cols);
      if (d->host_measure)
        device_measure_on_host (pass, qt, d, y, row0, n);
      else if (measure)
        device_merge (pass, qt, d, row0, n);
      pass_report (pass, row0 + n, pass->n_rows);
    }
  return DEVICE_DONE;
}

static DeviceOutcome
device_run (Pass *pass, Quant *qt, gboolean measure, double base, double span, GError **error)
{
  g_autoptr(QbDevice) dev = qb_device_dup_default ();
  g_autoptr(QbDeviceQuantizer) dq = NULL;
  g_autoptr(GError) local = NULL;
  QbDeviceMeasure m = { 0 };
  DeviceSlabs d = { 0 };
  DeviceOutcome outcome;
  gint64 slab;

  if (dev == NULL || qt->spec->format == NULL || !device_takes (qt) || pass->n_rows == 0)
    return DEVICE_DECLINED;
  d.host_measure = measure && qt->spec->importance != NULL;
  if (measure)
    {
      Scratch *s = &pass->scratch[0];
      scratch_prepare_main (pass, qt, s);
      m.out_lo = qt->out_lo;
      m.out_hi = qt->out_hi;
      m.n_bins = s->hist.n_bins;
      for (int h = 0; h < 3; h++)
        qb_hist_edges (qt->hists[h], &m.lo[h], &m.scale[h]);
    }
  dq = qb_device_quantizer_new (dev, qt->spec->format, pass->n_cols, pass->n_rows,
                                qt->ctx.tensor_absmax, measure && !d.host_measure ? &m : NULL, &local);
  if (dq != NULL && qt->spec->importance != NULL &&
      !qb_device_quantizer_set_importance (dq, qt->spec->importance, &local))
    g_clear_pointer (&dq, qb_device_quantizer_free);
  if (dq == NULL)
    {
      g_message ("%s: %s; quantizing it on the CPU", pass->tensor->name, local->message);
      return DEVICE_DECLINED;
    }
  slab = qb_device_quantizer_slab_rows (dq);
  d.x = g_new (float, slab * pass->n_cols);
  d.y = g_new (float, slab * pass->n_cols);
  d.q = g_malloc (slab * qt->ctx.row_bytes);
  if (measure && !d.host_measure)
    {
      d.per_chunk = g_new0 (QbErrorSums, MAX (pass->n_chunks, 1));
      d.stripes = g_new (QbDeviceStripe, slab * qb_device_stripes_per_row (pass->n_cols));
      d.totals = g_new0 (guint64, 3 * m.n_bins);
      d.ch_min = g_new (float, qt->n_channels);
      d.ch_max = g_new (float, qt->n_channels);
      for (guint c = 0; c < qt->n_channels; c++)
        {
          d.ch_min[c] = INFINITY;
          d.ch_max[c] = -INFINITY;
        }
    }
  pass->progress_base = base;
  pass->progress_span = span;
  outcome = device_slabs (pass, qt, dq, &d, measure, error);
  if (outcome == DEVICE_DONE && measure && !d.host_measure)
    device_commit (pass, qt, &d);
  if (outcome == DEVICE_DECLINED && d.host_measure)
    device_measure_undo (pass, qt);
  device_slabs_clear (&d);
  return outcome;
}

/* The workers are the parallelism: BLAS calls in a chunk (the output
 * error, methods) run on one thread each, so sums do not depend on it. */
static gboolean
run_main (Pass *pass, QbWorkers *workers, ChunkFunc func, Quant *qt, double base, double span,
          GError **error)
{
  int blas_threads = openblas_get_num_threads ();
  gboolean ok;

  switch (device_run (pass, qt, func == main_chunk, base, span, error))
    {
    case DEVICE_DONE:   return TRUE;
    case DEVICE_FAILED: return FALSE;
    default:            break;
    }
  openblas_set_num_threads (1);
  ok = pass_run (pass, workers, func, qt, base, span, error);
  openblas_set_num_threads (blas_threads);
  return ok;
}

static gboolean
quantize_and_measure (Pass *pass, QbWorkers *workers, Quant *qt, const QbTensor *t,
                      GError **error)
{
  if (!run_prepass (pass, workers, &qt->stats, &qt->hists[0], PREPASS_SHARE, error))
    return FALSE;
  qt->first_hist = qt->hists[0] != NULL;
  qt->out_lo = (float) (qt->stats.mean - qt->stats.outlier_radius);
  qt->out_hi = (float) (qt->stats.mean + qt->stats.outlier_radius);
  if (!prepare_method (pass, qt, t->name, error))
    return FALSE;
  method_chunks (pass, qt);
  if (!size_error_histogram (pass, workers, qt, error))
    return FALSE;
  if (qt->hists[0] == NULL)
    qt->hists[0] = histogram_for (&qt->stats);
  qt->hists[1] = histogram_for (&qt->stats);
  qt->per_chunk = g_new0 (QbErrorSums, MAX (pass->n_chunks, 1));
  qt->out_err = g_new0 (double, 2 * MAX (pass->n_chunks, 1));
  expert_hists_create (qt);
  /* The first read when the pre-pass came from the scan cache. */
  pass->prefault = qb_model_claim_first_read (pass->model, pass->index);
  return run_main (pass, workers, main_chunk, qt, PREPASS_SHARE, 1.0 - PREPASS_SHARE, error);
}

/* The output alone: the pre-pass only for a per-tensor scale, nothing at
 * all for a kept tensor. */
static gboolean
quantize_only (Pass *pass, QbWorkers *workers, Quant *qt, const QbTensor *t, GError **error)
{
  const QbFormat *format = qt->spec->format;
  gboolean need_scan = format != NULL && format->scope == QB_SCOPE_TENSOR;

  if (format == NULL)
    return TRUE;
  if (need_scan && !run_prepass (pass, workers, &qt->stats, NULL, PREPASS_SHARE, error))
    return FALSE;
  if (!prepare_method (pass, qt, t->name, error))
    return FALSE;
  method_chunks (pass, qt);
  /* Unless the scan just read the tensor, this pass may be the first. */
  pass->prefault = qb_model_claim_first_read (pass->model, pass->index);
  return run_main (pass, workers, output_chunk, qt, need_scan ? PREPASS_SHARE : 0,
                   need_scan ? 1.0 - PREPASS_SHARE : 1.0, error);
}

/* Unmeasured: NAN, but the range when the per-tensor scale needed it (the
 * absmax that dequantizing takes). */
static void
fill_unmeasured (Quant *qt, QbTensorResult *r)
{
  QbTensorMetrics *m = &r->metrics;

  m->mse = m->rmse_rel = m->sqnr_db = m->cosine = m->max_abs_err = NAN;
  m->mean = m->std = m->min = m->max = m->kurtosis = m->outlier_share = NAN;
  if (qt->stats.n > 0)
    {
      m->min = qt->stats.min;
      m->max = qt->stats.max;
    }
}

QbTensorResult *
qb_tensor_quantize (QbModel *model, guint index, const QbQuantizeSpec *spec,
                    QbWorkers *workers, const QbQuantizeOutput *output,
                    QbQuantizeProgressFunc progress, gpointer progress_data,
                    GCancellable *cancellable, GError **error)
{
  g_autoptr(QbTensorResult) r = NULL;
  const QbTensor *t;
  gint64 start = g_get_monotonic_time ();
  Quant qt = { 0 };
  Pass pass;
  gboolean ok;

  g_return_val_if_fail (index < qb_model_get_n_tensors (model), NULL);
  t = qb_model_get_tensor (model, index);
  pass_init (&pass, model, index, workers, cancellable);
  pass.progress = progress;
  pass.progress_data = progress_data;
  qt.spec = spec;
  qt.output = output;
  qt.n_channels = qb_channel_n_buckets (pass.n_rows);
  qt.rows_per_bucket = qb_channel_rows_per_bucket (pass.n_rows);
  if (spec->importance != NULL && spec->format != NULL)
    qt.row_weights = spec->importance;
  if (spec->importance_sets > 1)
    {
      if (pass.n_rows % spec->importance_sets != 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "%s: %" G_GINT64_FORMAT " rows do not split into %u importance sets",
                       t->name, pass.n_rows, spec->importance_sets);
          pass_clear (&pass);
          return NULL;
        }
      qt.rows_per_set = pass.n_rows / spec->importance_sets;
    }
  qt.n_experts = qb_tensor_n_experts (t);
  if (qt.n_experts > 1 && !spec->no_metrics && pass.n_rows % qt.n_experts == 0)
    expert_measure_init (&qt, &pass);

  if (spec->no_metrics)
    ok = quantize_only (&pass, workers, &qt, t, error);
  else
    ok = quantize_and_measure (&pass, workers, &qt, t, error);
  if (ok)
    {
      r = qb_tensor_result_new ();
      r->tensor_name = g_strdup (t->name);
      r->n_params = t->n_params;
      if (spec->format != NULL)
        {
          r->format = g_strdup (spec->format->name);
          r->method = g_strdup (qt.ctx.method->name);
          qb_format_tensor_bytes (spec->format, pass.n_cols, pass.n_rows, &r->bytes);
          if (output && output->data)
            write_tensor_scale (spec->format, &pass, &qt, output->data);
        }
      else
        {
          r->format = g_strdup (qb_dtype_name (t->dtype));
          r->method = g_strdup ("keep");
          r->bytes = t->n_bytes;
        }
      r->requested_format = g_strdup (r->format);
      r->bpw = t->n_params > 0 ? r->bytes * 8.0 / t->n_params : 0;
      if (spec->no_metrics)
        fill_unmeasured (&qt, r);
      else
        fill_result (&pass, &qt, r);
      r->fallback_reason = expert_methods_note (&qt);
      r->seconds = (g_get_monotonic_time () - start) / 1e6;
    }

  if (qt.state != NULL && qt.ctx.method->release != NULL)
    qt.ctx.method->release (qt.state);
  expert_methods_free (&qt);
  for (int h = 0; h < 3; h++)
    qb_histogram_free (qt.hists[h]);
  g_free (qt.per_chunk);
  g_free (qt.out_err);
  expert_measure_clear (&qt, &pass);
  pass_clear (&pass);
  return g_steal_pointer (&r);
}
