/* SPDX-License-Identifier: MIT */
/* qb-logprobs.c — llama.cpp's log-probability files: encoding, a checked
 * reader over a mapping, and an atomic chunk-by-chunk writer. */
#include "qb-logprobs.h"
#include "qb-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK (qb-logprobs-error-quark, qb_logprobs_error)

#define MAGIC "_logits_"
#define HEADER_BYTES 20   /* magic, n_ctx, n_vocab, n_chunk */

/* ---- records ---------------------------------------------------------- */

double
qb_logprobs_encode (const float *logits, guint n_vocab, gint32 next, guint16 *record)
{
  float max = logits[0], min = logits[0], scale, lse, min_log_prob;
  double sum = 0;
  guint16 *q = record + 4;

  for (guint i = 1; i < n_vocab; i++)
    {
      max = MAX (max, logits[i]);
      min = MIN (min, logits[i]);
    }
  /* Only the top 16 nats are kept. */
  min = MAX (min, max - 16);
  for (guint i = 0; i < n_vocab; i++)
    sum += expf (logits[i] - max);
  lse = (float) log (sum);
  min_log_prob = min - max - lse;
  scale = (max - min) / 65535.0f;
  memcpy (record, &scale, sizeof scale);
  memcpy (record + 2, &min_log_prob, sizeof min_log_prob);
  if (scale > 0)
    {
      float inv = 1.0f / scale;
      for (guint i = 0; i < n_vocab; i++)
        q[i] = logits[i] > min ? (guint16) lrintf (inv * (logits[i] - min)) : 0;
    }
  else
    memset (q, 0, sizeof (guint16) * n_vocab);
  /* Padding of an odd vocabulary. */
  if (n_vocab % 2 != 0)
    q[n_vocab] = 0;
  return (double) max + log (sum) - (double) logits[next];
}

void
qb_logprobs_decode (const guint16 *record, guint n_vocab, float *log_probs)
{
  float scale, min_log_prob;

  memcpy (&scale, record, sizeof scale);
  memcpy (&min_log_prob, record + 2, sizeof min_log_prob);
  for (guint i = 0; i < n_vocab; i++)
    log_probs[i] = scale * record[4 + i] + min_log_prob;
}

/* ---- reading ---------------------------------------------------------- */

struct _QbLogprobFile {
  GMappedFile *map;
  const guint8 *data;
  guint         n_ctx;
  guint         n_vocab;
  guint         n_chunks;
  const gint32 *tokens;
  const guint8 *records;
};

static gboolean
bad_file (GError **error, const char *path, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static gboolean
bad_file (GError **error, const char *path, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, QB_LOGPROBS_ERROR, QB_LOGPROBS_ERROR_INVALID, "%s: %s", path, msg);
  return FALSE;
}

static gboolean
check_header (QbLogprobFile *f, const char *path, gsize size, GError **error)
{
  guint32 n_ctx;
  gint32 n_vocab, n_chunks;
  guint64 n_tokens, expected;

  if (size < HEADER_BYTES || memcmp (f->data, MAGIC, 8) != 0)
    return bad_file (error, path, "not a log-probability file (no \"_logits_\" at offset 0)");
  memcpy (&n_ctx, f->data + 8, 4);
  memcpy (&n_vocab, f->data + 12, 4);
  memcpy (&n_chunks, f->data + 16, 4);
  if (n_ctx < 4 || n_ctx > (1u << 24))
    return bad_file (error, path, "n_ctx %u at offset 8 is out of range", n_ctx);
  if (n_vocab < 2 || n_vocab > (1 << 24))
    return bad_file (error, path, "n_vocab %d at offset 12 is out of range", n_vocab);
  if (n_chunks < 1 || n_chunks > (1 << 24))
    return bad_file (error, path, "n_chunk %d at offset 16 is out of range", n_chunks);

  f->n_ctx = n_ctx;
  f->n_vocab = (guint) n_vocab;
  f->n_chunks = (guint) n_chunks;
  n_tokens = (guint64) n_ctx * (guint64) n_chunks;
  expected = HEADER_BYTES + 4 * n_tokens
             + 2 * (guint64) n_chunks * qb_logprobs_n_scored (n_ctx) * qb_logprobs_record_len (f->n_vocab);
  if (size != expected)
    return bad_file (error, path, "%" G_GSIZE_FORMAT " bytes, but its header (n_ctx %u, n_vocab %u, "
                     "%u chunks) needs %" G_GUINT64_FORMAT, size, n_ctx, f->n_vocab, f->n_chunks,
                     expected);
  return TRUE;
}

QbLogprobFile *
qb_logprob_file_open (const char *path, GError **error)
{
  g_autoptr(QbLogprobFile) f = g_new0 (QbLogprobFile, 1);
  g_autoptr(GError) local = NULL;
  gsize size, n_tokens;

  f->map = qb_file_map (path, &local);
  if (f->map == NULL)
    {
      g_set_error (error, QB_LOGPROBS_ERROR, QB_LOGPROBS_ERROR_IO, "%s", local->message);
      return NULL;
    }
  f->data = (const guint8 *) g_mapped_file_get_contents (f->map);
  size = g_mapped_file_get_length (f->map);
  if (!check_header (f, path, size, error))
    return NULL;

  n_tokens = (gsize) f->n_ctx * f->n_chunks;
  f->tokens = (const gint32 *) (const void *) (f->data + HEADER_BYTES);
  for (gsize i = 0; i < n_tokens; i++)
    if (f->tokens[i] < 0 || (guint) f->tokens[i] >= f->n_vocab)
      {
        bad_file (error, path, "token %d at offset %" G_GSIZE_FORMAT " is outside the vocabulary",
                  f->tokens[i], HEADER_BYTES + 4 * i);
        return NULL;
      }
  f->records = f->data + HEADER_BYTES + 4 * n_tokens;
  return g_steal_pointer (&f);
}

void
qb_logprob_file_free (QbLogprobFile *f)
{
  if (f == NULL)
    return;
  if (f->map)
    g_mapped_file_unref (f->map);
  g_free (f);
}

guint qb_logprob_file_get_n_ctx    (QbLogprobFile *f) { return f->n_ctx; }
guint qb_logprob_file_get_n_vocab  (QbLogprobFile *f) { return f->n_vocab; }
guint qb_logprob_file_get_n_chunks (QbLogprobFile *f) { return f->n_chunks; }
const gint32 *qb_logprob_file_get_tokens (QbLogprobFile *f) { return f->tokens; }

const guint16 *
qb_logprob_file_get_chunk (QbLogprobFile *f, guint chunk)
{
  gsize per_chunk = (gsize) qb_logprobs_n_scored (f->n_ctx) * qb_logprobs_record_len (f->n_vocab);

  g_return_val_if_fail (chunk < f->n_chunks, NULL);
  return (const guint16 *) (const void *) (f->records + 2 * per_chunk * chunk);
}

/* ---- writing ---------------------------------------------------------- */

struct _QbLogprobWriter {
  char   *path;
  char   *tmp_path;
  int     fd;
  guint   n_ctx;
  guint   n_vocab;
  guint   n_chunks;
  guint   written;
};

static gboolean
write_all (QbLogprobWriter *w, gconstpointer data, gsize len, GError **error)
{
  const guint8 *p = data;

  while (len > 0)
    {
      gssize n = write (w->fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          g_set_error (error, QB_LOGPROBS_ERROR, QB_LOGPROBS_ERROR_IO, "writing %s: %s",
                       w->tmp_path, g_strerror (saved));
          return FALSE;
        }
      p += n;
      len -= n;
    }
  return TRUE;
}

QbLogprobWriter *
qb_logprob_writer_new (const char *path, guint n_ctx, guint n_vocab, guint n_chunks,
                       const gint32 *tokens, GError **error)
{
  g_autoptr(QbLogprobWriter) w = g_new0 (QbLogprobWriter, 1);
  guint32 header[3] = { n_ctx, n_vocab, n_chunks };

  w->fd = -1;
  w->path = g_strdup (path);
  w->n_ctx = n_ctx;
  w->n_vocab = n_vocab;
  w->n_chunks = n_chunks;
  {
    g_autoptr(GError) local = NULL;
    w->fd = qb_file_create_temp (path, 0600, &w->tmp_path, &local);
    if (w->fd < 0)
      {
        g_set_error (error, QB_LOGPROBS_ERROR, QB_LOGPROBS_ERROR_IO, "%s", local->message);
        return NULL;
      }
  }
  if (!write_all (w, MAGIC, 8, error) || !write_all (w, header, sizeof header, error)
      || !write_all (w, tokens, sizeof (gint32) * n_ctx * n_chunks, error))
    return NULL;
  return g_steal_pointer (&w);
}

gboolean
qb_logprob_writer_add_chunk (QbLogprobWriter *w, const guint16 *records, GError **error)
{
  g_return_val_if_fail (w->written < w->n_chunks, FALSE);
  if (!write_all (w, records, sizeof (guint16) * qb_logprobs_n_scored (w->n_ctx)
                                * qb_logprobs_record_len (w->n_vocab), error))
    return FALSE;
  w->written++;
  return TRUE;
}

gboolean
qb_logprob_writer_finish (QbLogprobWriter *w, GError **error)
{
  int fd = w->fd, saved = 0;
  gboolean ok;

  if (w->written != w->n_chunks)
    {
      g_set_error (error, QB_LOGPROBS_ERROR, QB_LOGPROBS_ERROR_IO,
                   "%s: %u of %u chunks written", w->path, w->written, w->n_chunks);
      return FALSE;
    }
  w->fd = -1;
  ok = fsync (fd) == 0;
  if (!ok)
    saved = errno;
  if (close (fd) != 0 && ok)
    {
      ok = FALSE;
      saved = errno;
    }
  if (ok && g_rename (w->tmp_path, w->path) != 0)
    {
      ok = FALSE;
      saved = errno;
    }
  if (!ok)
    {
      g_set_error (error, QB_LOGPROBS_ERROR, QB_LOGPROBS_ERROR_IO, "saving %s: %s",
                   w->path, g_strerror (saved));
      return FALSE;
    }
  g_clear_pointer (&w->tmp_path, g_free);
  return TRUE;
}

void
qb_logprob_writer_free (QbLogprobWriter *w)
{
  if (w == NULL)
    return;
  if (w->fd >= 0)
    close (w->fd);
  if (w->tmp_path != NULL)
    g_unlink (w->tmp_path);
  g_free (w->tmp_path);
  g_free (w->path);
  g_free (w);
}
