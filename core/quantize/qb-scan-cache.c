/* SPDX-License-Identifier: MIT */
/* qb-scan-cache.c — one tensor's pre-pass kept in a file (see the header). */
#include "qb-scan-cache-private.h"

#include <stdint.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "QBSCAN01"
#define SUM_BYTES 32   /* SHA-256 */

/* The fixed part of an entry, as stored (host order: the cache is the
 * machine's own); the counts, the name and the checksum follow. */
typedef struct {
  char    magic[8];
  guint32 dtype;
  guint32 name_len;
  guint64 n_params;
  guint64 n;
  guint64 n_nonfinite;
  double  min, max, absmax, mean, std, kurtosis, outlier_radius;
  guint32 n_bins;
  guint32 reserved;
  double  lo, hi;
} Entry;

static gboolean
enabled (void)
{
  return g_strcmp0 (g_getenv ("QB_SCAN_CACHE"), "0") != 0 && G_BYTE_ORDER == G_LITTLE_ENDIAN;
}

char *
qb_scan_cache_dir (QbModel *model)
{
  g_autoptr(GChecksum) sum = NULL;
  g_autofree char *identity = NULL;
  const char *path = qb_model_get_path (model);
  struct stat st;

  if (!enabled () || qb_model_get_file_kind (model) != QB_MODEL_FILE_GGUF || path == NULL
      || g_stat (path, &st) != 0)
    return NULL;
  identity = g_strdup_printf ("%s %ju %ju %jd %jd.%09ld %jd.%09ld",
                              qb_model_get_fingerprint (model), (uintmax_t) st.st_dev,
                              (uintmax_t) st.st_ino, (intmax_t) st.st_size,
                              (intmax_t) st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                              (intmax_t) st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (sum, (const guchar *) identity, -1);
  return g_build_filename (g_get_user_cache_dir (), "quantbench", "scans",
                           g_checksum_get_string (sum), NULL);
}

static char *
entry_path (QbModel *model, guint index)
{
  g_autofree char *dir = qb_scan_cache_dir (model);
  g_autofree char *name = g_strdup_printf ("%u.scan", index);

  return dir ? g_build_filename (dir, name, NULL) : NULL;
}

static void
checksum (const guint8 *data, gsize n, guint8 out[SUM_BYTES])
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  gsize len = SUM_BYTES;

  g_checksum_update (sum, data, (gssize) n);
  g_checksum_get_digest (sum, out, &len);
}

static gsize
entry_size (guint n_bins, guint name_len)
{
  return sizeof (Entry) + sizeof (guint64) * n_bins + name_len + SUM_BYTES;
}

gboolean
qb_scan_cache_load (QbModel *model, guint index, QbTensorScan *scan, QbHistogram **original)
{
  g_autofree char *path = entry_path (model, index);
  g_autofree guint8 *data = NULL;
  const QbTensor *t = qb_model_get_tensor (model, index);
  gsize name_len = strlen (t->name), size = 0;
  guint8 sum[SUM_BYTES];
  guint64 total = 0;
  const guint64 *counts;
  Entry e;

  if (path == NULL || !g_file_get_contents (path, (char **) &data, &size, NULL)
      || size != entry_size (QB_HISTOGRAM_BINS, name_len))
    return FALSE;
  checksum (data, size - SUM_BYTES, sum);
  memcpy (&e, data, sizeof e);
  counts = (const guint64 *) (data + sizeof e);
  if (memcmp (sum, data + size - SUM_BYTES, SUM_BYTES) != 0 || memcmp (e.magic, MAGIC, 8) != 0
      || e.dtype != (guint32) t->dtype || e.name_len != name_len || e.n_params != t->n_params
      || e.n_bins != QB_HISTOGRAM_BINS || e.n + e.n_nonfinite != t->n_params
      || memcmp (data + sizeof e + sizeof (guint64) * e.n_bins, t->name, name_len) != 0)
    return FALSE;
  for (guint b = 0; b < e.n_bins; b++)
    total += counts[b];
  if (total != t->n_params)
    return FALSE;

  *scan = (QbTensorScan) { .n = e.n, .n_nonfinite = e.n_nonfinite, .min = e.min, .max = e.max,
                           .absmax = e.absmax, .mean = e.mean, .std = e.std,
                           .kurtosis = e.kurtosis, .outlier_radius = e.outlier_radius };
  if (original != NULL)
    {
      *original = qb_histogram_new (e.n_bins, e.lo, e.hi);
      memcpy ((*original)->counts, counts, sizeof (guint64) * e.n_bins);
    }
  return TRUE;
}

/* Written to a temporary name and renamed, without fsync: a file torn by
 * a crash fails its checksum and is computed again. */
void
qb_scan_cache_store (QbModel *model, guint index, const QbTensorScan *scan,
                     const QbHistogram *original)
{
  g_autofree char *path = entry_path (model, index);
  g_autofree char *tmp = NULL;
  g_autofree guint8 *data = NULL;
  g_autofree char *dir = NULL;
  const QbTensor *t = qb_model_get_tensor (model, index);
  gsize name_len = strlen (t->name), size;
  Entry e = { 0 };

  if (path == NULL || original == NULL || original->n_bins != QB_HISTOGRAM_BINS
      || name_len > G_MAXUINT32)
    return;
  memcpy (e.magic, MAGIC, 8);
  e.dtype = (guint32) t->dtype;
  e.name_len = (guint32) name_len;
  e.n_params = t->n_params;
  e.n = scan->n;
  e.n_nonfinite = scan->n_nonfinite;
  e.min = scan->min;
  e.max = scan->max;
  e.absmax = scan->absmax;
  e.mean = scan->mean;
  e.std = scan->std;
  e.kurtosis = scan->kurtosis;
  e.outlier_radius = scan->outlier_radius;
  e.n_bins = original->n_bins;
  e.lo = original->lo;
  e.hi = original->hi;

  size = entry_size (e.n_bins, e.name_len);
  data = g_malloc (size);
  memcpy (data, &e, sizeof e);
  memcpy (data + sizeof e, original->counts, sizeof (guint64) * e.n_bins);
  memcpy (data + sizeof e + sizeof (guint64) * e.n_bins, t->name, name_len);
  checksum (data, size - SUM_BYTES, data + size - SUM_BYTES);

  dir = g_path_get_dirname (path);
  tmp = g_strdup_printf ("%s.XXXXXX", path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    return;
  {
    int fd = g_mkstemp (tmp);
    gboolean ok;

    if (fd < 0)
      return;
    ok = write (fd, data, size) == (gssize) size;
    ok = close (fd) == 0 && ok;
    if (!ok || g_rename (tmp, path) != 0)
      g_unlink (tmp);
  }
}
