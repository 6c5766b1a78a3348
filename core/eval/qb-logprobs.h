/* SPDX-License-Identifier: MIT */
/* qb-logprobs.h — llama.cpp's log-probability ("logits") files, as written
 * by `llama-perplexity --kl-divergence-base FILE` and read by
 * `--kl-divergence`.  Quantbench caches a float model's log-probabilities
 * in the same format, so its cache files work with llama.cpp and the other
 * way round.
 *
 * Layout (little-endian): the 8 bytes "_logits_"; uint32 n_ctx; int32
 * n_vocab; int32 n_chunk; n_ctx × n_chunk int32 token ids (the text's
 * tokens, first of each chunk not replaced by BOS); then per chunk, for each
 * of its n_ctx - 1 - n_ctx/2 scored positions, a record of
 * 2·ceil(n_vocab/2) + 4 uint16: float32 scale, float32 min_log_prob, then
 * n_vocab values q with log p = min_log_prob + scale·q.
 *
 * Precision: the range kept is [max - 16, max] of the position's logits,
 * in 65535 steps: scale ≤ 16/65535 ≈ 2.4e-4 nats, so a kept log-probability
 * is off by at most 1.2e-4 nats.  Tokens below max - 16 (probability under
 * about 1e-7 of the top token's) read back as min_log_prob and are left
 * out of KL divergence sums, as llama.cpp does.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define QB_LOGPROBS_ERROR (qb_logprobs_error_quark ())
GQuark qb_logprobs_error_quark (void);

typedef enum {
  QB_LOGPROBS_ERROR_INVALID,   /* not a logits file, or damaged */
  QB_LOGPROBS_ERROR_IO,
} QbLogprobsError;

/* uint16 values per position record. */
static inline gsize
qb_logprobs_record_len (guint n_vocab)
{
  return 2 * (((gsize) n_vocab + 1) / 2) + 4;
}

/* Scored positions per chunk: n_ctx/2 .. n_ctx-2 predicting the next token. */
static inline guint
qb_logprobs_n_scored (guint n_ctx)
{
  return n_ctx - 1 - n_ctx / 2;
}

/* Encodes one position's logits into a record and returns the negative
 * log-likelihood of token `next` (in double, as llama-perplexity does). */
double qb_logprobs_encode (const float *logits, guint n_vocab, gint32 next, guint16 *record);
/* Decodes a record into n_vocab log-probabilities. */
void   qb_logprobs_decode (const guint16 *record, guint n_vocab, float *log_probs);

typedef struct _QbLogprobFile QbLogprobFile;

/* Maps and checks a file: magic, header ranges, tokens inside the
 * vocabulary, and a size that is exactly the header, tokens and records. */
QbLogprobFile *qb_logprob_file_open       (const char     *path,
                                           GError        **error);
void           qb_logprob_file_free       (QbLogprobFile  *file);
guint          qb_logprob_file_get_n_ctx  (QbLogprobFile  *file);
guint          qb_logprob_file_get_n_vocab (QbLogprobFile *file);
guint          qb_logprob_file_get_n_chunks (QbLogprobFile *file);
/* n_ctx × n_chunks ids. */
const gint32  *qb_logprob_file_get_tokens (QbLogprobFile  *file);
/* The records of one chunk: n_scored × record_len uint16, in the mapping
 * (2-byte aligned; read the two header floats with memcpy). */
const guint16 *qb_logprob_file_get_chunk  (QbLogprobFile  *file,
                                           guint           chunk);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbLogprobFile, qb_logprob_file_free)

/* Writes a file chunk by chunk to a temporary name beside path; finish()
 * fsyncs and renames it into place, so readers never see a partial file. */
typedef struct _QbLogprobWriter QbLogprobWriter;

QbLogprobWriter *qb_logprob_writer_new      (const char      *path,
                                             guint            n_ctx,
                                             guint            n_vocab,
                                             guint            n_chunks,
                                             const gint32    *tokens,
                                             GError         **error);
/* records: n_scored × record_len uint16 for the next chunk. */
gboolean         qb_logprob_writer_add_chunk (QbLogprobWriter *w,
                                             const guint16   *records,
                                             GError         **error);
gboolean         qb_logprob_writer_finish   (QbLogprobWriter *w,
                                             GError         **error);
/* Removes the temporary file and frees the writer (also after finish). */
void             qb_logprob_writer_free     (QbLogprobWriter *w);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbLogprobWriter, qb_logprob_writer_free)

G_END_DECLS
