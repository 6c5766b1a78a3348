/* SPDX-License-Identifier: MIT */
/* qb-store-blob.c — compact encodings of histograms and channel ranges.
 *
 * The store keeps a tensor's three histograms and its per-channel ranges
 * as BLOBs in this layout (all multi-byte numbers little-endian; a
 * "varint" is unsigned LEB128: 7 bits per byte, low bits first, the high
 * bit set on every byte but the last, at most 10 bytes):
 *
 *   histogram, version 1
 *     byte 0       'H'
 *     byte 1       1 (the version)
 *     varint       n_bins, 1 .. 2^20
 *     8 bytes      lo, IEEE-754 binary64
 *     8 bytes      hi, IEEE-754 binary64
 *     n_bins varints: the counts, bin 0 first
 *
 *   channel ranges, version 1
 *     byte 0       'C'
 *     byte 1       1 (the version)
 *     varint       n_channels, 0 .. 2^24
 *     n_channels × 4 bytes   minimum of each channel, IEEE-754 binary32
 *     n_channels × 4 bytes   maximum of each channel
 *
 * Counts are mostly small or zero in the tails, so varints keep a 512-bin
 * histogram near 0.6-1.5 KB instead of 4 KB; the floats are kept exactly.
 * A decoder refuses anything else — another tag or version, a count past
 * the end, bytes left over — with an error saying where.
 */
#include "qb-store-private.h"

#include <string.h>

#define HIST_TAG        'H'
#define CHANNELS_TAG    'C'
#define BLOB_VERSION    1
#define MAX_BINS        QB_STORE_MAX_BINS
#define MAX_CHANNELS    QB_STORE_MAX_CHANNELS

static void
put_varint (GByteArray *out, guint64 v)
{
  guint8 buf[10];
  guint n = 0;

  do
    {
      buf[n] = v & 0x7f;
      v >>= 7;
      if (v != 0)
        buf[n] |= 0x80;
      n++;
    }
  while (v != 0);
  g_byte_array_append (out, buf, n);
}

static void
put_f64 (GByteArray *out, double d)
{
  guint64 u;

  memcpy (&u, &d, 8);
  u = GUINT64_TO_LE (u);
  g_byte_array_append (out, (const guint8 *) &u, 8);
}

static void
put_f32s (GByteArray *out, const float *x, guint n)
{
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  g_byte_array_append (out, (const guint8 *) x, n * 4);
#else
  for (guint i = 0; i < n; i++)
    {
      guint32 u;
      memcpy (&u, &x[i], 4);
      u = GUINT32_TO_LE (u);
      g_byte_array_append (out, (const guint8 *) &u, 4);
    }
#endif
}

/* A bounded reader over a BLOB; `what` names it in errors. */
typedef struct {
  const guint8 *data;
  gsize         len;
  gsize         pos;
  const char   *what;
} Reader;

static gboolean
truncated (Reader *r, GError **error)
{
  g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
               "%s: truncated at byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT,
               r->what, r->pos, r->len);
  return FALSE;
}

static gboolean
get_varint (Reader *r, guint64 *v, GError **error)
{
  gsize start = r->pos;
  guint64 result = 0;

  for (guint shift = 0; ; shift += 7)
    {
      guint8 b;

      if (r->pos >= r->len)
        return truncated (r, error);
      b = r->data[r->pos++];
      /* The tenth byte may carry only the top bit of a 64-bit value. */
      if (shift == 63 && b > 1)
        {
          g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
                       "%s: number at byte %" G_GSIZE_FORMAT " overflows 64 bits",
                       r->what, start);
          return FALSE;
        }
      result |= (guint64) (b & 0x7f) << shift;
      if (!(b & 0x80))
        break;
    }
  *v = result;
  return TRUE;
}

static gboolean
get_f64 (Reader *r, double *d, GError **error)
{
  guint64 u;

  if (r->len - r->pos < 8)
    return truncated (r, error);
  memcpy (&u, r->data + r->pos, 8);
  u = GUINT64_FROM_LE (u);
  memcpy (d, &u, 8);
  r->pos += 8;
  return TRUE;
}

static float *
get_f32s (Reader *r, guint n, GError **error)
{
  float *x;

  if ((r->len - r->pos) / 4 < n)
    {
      truncated (r, error);
      return NULL;
    }
  x = g_new (float, n);
  memcpy (x, r->data + r->pos, (gsize) n * 4);
#if G_BYTE_ORDER != G_LITTLE_ENDIAN
  for (guint i = 0; i < n; i++)
    {
      guint32 u;
      memcpy (&u, &x[i], 4);
      u = GUINT32_FROM_LE (u);
      memcpy (&x[i], &u, 4);
    }
#endif
  r->pos += (gsize) n * 4;
  return x;
}

static gboolean
get_header (Reader *r, guint8 tag, GError **error)
{
  if (r->len < 2)
    return truncated (r, error);
  if (r->data[0] != tag)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
                   "%s: starts with byte 0x%02x, expected '%c'", r->what, r->data[0], tag);
      return FALSE;
    }
  if (r->data[1] != BLOB_VERSION)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
                   "%s: encoding version %u is not known (this Quantbench reads version %u)",
                   r->what, r->data[1], BLOB_VERSION);
      return FALSE;
    }
  r->pos = 2;
  return TRUE;
}

static gboolean
get_end (Reader *r, GError **error)
{
  if (r->pos == r->len)
    return TRUE;
  g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
               "%s: %" G_GSIZE_FORMAT " unexpected bytes after byte %" G_GSIZE_FORMAT,
               r->what, r->len - r->pos, r->pos);
  return FALSE;
}

void
qb_histogram_encode (const QbHistogram *h, GByteArray *out)
{
  const guint8 header[2] = { HIST_TAG, BLOB_VERSION };

  g_byte_array_append (out, header, 2);
  put_varint (out, h->n_bins);
  put_f64 (out, h->lo);
  put_f64 (out, h->hi);
  for (guint i = 0; i < h->n_bins; i++)
    put_varint (out, h->counts[i]);
}

QbHistogram *
qb_histogram_decode (const guint8 *data, gsize len, GError **error)
{
  Reader r = { data, len, 0, "histogram" };
  g_autoptr(QbHistogram) h = NULL;
  guint64 n_bins;
  double lo, hi;

  if (!get_header (&r, HIST_TAG, error) || !get_varint (&r, &n_bins, error))
    return NULL;
  if (n_bins == 0 || n_bins > MAX_BINS)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
                   "histogram: %" G_GUINT64_FORMAT " bins is out of range (1 to %u)",
                   n_bins, MAX_BINS);
      return NULL;
    }
  /* Every count takes at least one byte: refuse before allocating. */
  if (len - r.pos < 16 + n_bins)
    {
      truncated (&r, error);
      return NULL;
    }
  if (!get_f64 (&r, &lo, error) || !get_f64 (&r, &hi, error))
    return NULL;
  h = g_new0 (QbHistogram, 1);
  h->n_bins = n_bins;
  h->lo = lo;
  h->hi = hi;
  h->counts = g_new (guint64, n_bins);
  for (guint i = 0; i < n_bins; i++)
    if (!get_varint (&r, &h->counts[i], error))
      return NULL;
  if (!get_end (&r, error))
    return NULL;
  return g_steal_pointer (&h);
}

void
qb_channel_ranges_encode (guint n, const float *min, const float *max, GByteArray *out)
{
  const guint8 header[2] = { CHANNELS_TAG, BLOB_VERSION };

  g_byte_array_append (out, header, 2);
  put_varint (out, n);
  put_f32s (out, min, n);
  put_f32s (out, max, n);
}

gboolean
qb_channel_ranges_decode (const guint8 *data, gsize len, guint *n,
                          float **min, float **max, GError **error)
{
  Reader r = { data, len, 0, "channel ranges" };
  g_autofree float *lo = NULL;
  g_autofree float *hi = NULL;
  guint64 count;

  if (!get_header (&r, CHANNELS_TAG, error) || !get_varint (&r, &count, error))
    return FALSE;
  if (count > MAX_CHANNELS)
    {
      g_set_error (error, QB_STORE_ERROR, QB_STORE_ERROR_CORRUPT,
                   "channel ranges: %" G_GUINT64_FORMAT " channels is out of range (at most %u)",
                   count, MAX_CHANNELS);
      return FALSE;
    }
  /* No channels: NULL arrays, as in a fresh QbTensorResult. */
  if (count > 0 &&
      ((lo = get_f32s (&r, count, error)) == NULL || (hi = get_f32s (&r, count, error)) == NULL))
    return FALSE;
  if (!get_end (&r, error))
    return FALSE;
  *n = count;
  *min = g_steal_pointer (&lo);
  *max = g_steal_pointer (&hi);
  return TRUE;
}
