/* SPDX-License-Identifier: MIT */
/* qb-calibration.h — a calibration set: the token chunks a model is run on
 * to measure its activations.
 *
 * The user picks one or more text files, a chunk length and a number of
 * chunks, taken in order or drawn at random with a seed.  Each file is
 * tokenized with the model's tokenizer (BOS as the vocabulary asks, as
 * llama-imatrix does), the token streams are joined and cut into chunks of
 * n_ctx tokens; the first token of each chunk is replaced by BOS when it is
 * evaluated (QbCalibration keeps the text's own tokens).  skip_chunks
 * leaves the first chunks out, so that the start of a text can serve for
 * evaluation while the rest calibrates.
 *
 * Identity: the hash (hex SHA-256) covers the tokenizer's fingerprint, the
 * SHA-256 of every text in order, and the chunking (n_ctx, n_chunks,
 * skip_chunks, random, seed): the same inputs give the same hash, and any
 * change gives another.  The chosen chunks' tokens are cached under the
 * user's cache folder, keyed by that hash, so a second set-up reads the
 * texts (for their hashes) but does not tokenize them again.
 *
 * The experiment store keeps a calibration set as a record (name, sources,
 * hash, token count, chunking): qb_calibration_to_record.
 */
#pragma once

#include <gio/gio.h>

#include "qb-experiment.h"
#include "qb-model.h"
#include "qb-tokenizer.h"

G_BEGIN_DECLS

#define QB_CALIBRATION_ERROR (qb_calibration_error_quark ())
GQuark qb_calibration_error_quark (void);

typedef enum {
  QB_CALIBRATION_ERROR_TEXT,      /* a text unreadable, or too short for one chunk */
  QB_CALIBRATION_ERROR_INVALID,   /* bad options */
  QB_CALIBRATION_ERROR_CHANGED,   /* not the set expect_hash names */
} QbCalibrationError;

#define QB_CALIBRATION_DEFAULT_CTX    512
#define QB_CALIBRATION_DEFAULT_CHUNKS 128
#define QB_CALIBRATION_MIN_CTX        16   /* llama-imatrix ignores shorter batches */

typedef struct {
  guint        n_ctx;        /* tokens per chunk; 0: 512, or the model's context if shorter */
  guint        n_chunks;     /* 0: 128; fewer when the texts have fewer */
  guint        skip_chunks;  /* chunks left out at the start of the joined texts */
  gboolean     random;       /* draw the chunks at random (with seed) instead of in order */
  guint64      seed;
  const char  *cache_dir;    /* NULL: $XDG_CACHE_HOME/quantbench/calibration */
  gboolean     no_cache;     /* neither read nor write cached tokens */
  const char  *expect_hash;  /* when set: fail (before tokenizing) unless the set has this hash */
} QbCalibrationOptions;

typedef struct _QbCalibration QbCalibration;

void               qb_calibration_options_init  (QbCalibrationOptions *opts);
/* Options that rebuild a stored set from its record (its chunking and
 * skip, and expect_hash, borrowed from record).  Texts that changed since
 * are reported as changed rather than used differently. */
void               qb_calibration_options_for_record (QbCalibrationOptions   *opts,
                                                 const QbCalibrationSet *record);

/* Reads and tokenizes the texts (NULL-terminated paths).  model gives the
 * default context.  Blocks: call from a worker thread; cancellable while
 * tokenizing. (transfer full) */
QbCalibration     *qb_calibration_new           (QbModel                    *model,
                                                 QbTokenizer                *tok,
                                                 const char * const         *paths,
                                                 const QbCalibrationOptions *opts,
                                                 GCancellable               *cancellable,
                                                 GError                    **error);
/* From tokens already at hand (tests, other sources); bos -1 keeps each
 * chunk's first token.  The hash covers the tokens themselves. (transfer full) */
QbCalibration     *qb_calibration_new_from_tokens (const gint32             *tokens,
                                                 gsize                       n_tokens,
                                                 gint32                      bos,
                                                 const QbCalibrationOptions *opts,
                                                 GError                    **error);
/* (transfer full) */
QbCalibration     *qb_calibration_ref           (QbCalibration *calib);
void               qb_calibration_unref         (QbCalibration *calib);

/* "a.txt", or "a.txt + 2 more". */
const char        *qb_calibration_get_name      (QbCalibration *calib);
/* NULL-terminated paths of the texts (empty for token sets). */
const char * const *qb_calibration_get_sources  (QbCalibration *calib);
const char        *qb_calibration_get_hash      (QbCalibration *calib);
/* Tokens of the joined texts, before chunking. */
guint64            qb_calibration_get_n_text_tokens (QbCalibration *calib);
guint              qb_calibration_get_n_ctx     (QbCalibration *calib);
guint              qb_calibration_get_n_chunks  (QbCalibration *calib);
guint              qb_calibration_get_skip_chunks (QbCalibration *calib);
gboolean           qb_calibration_get_random    (QbCalibration *calib);
guint64            qb_calibration_get_seed      (QbCalibration *calib);
/* Index of chunk i in the joined texts (in n_ctx units), ascending. */
guint              qb_calibration_get_chunk_index (QbCalibration *calib,
                                                 guint          i);
/* Writes chunk i (n_ctx tokens, BOS first when the set has one) into dst. */
void               qb_calibration_get_chunk     (QbCalibration *calib,
                                                 guint          i,
                                                 gint32        *dst);
/* The tokens came from the cache. */
gboolean           qb_calibration_get_from_cache (QbCalibration *calib);

/* The experiment store's record of the set (id 0; n_tokens: the joined
 * texts' tokens); qb_store_add_calibration_set stores it, or finds the one
 * with the same hash, and its id goes into QbExperimentSpec. (transfer full) */
QbCalibrationSet  *qb_calibration_to_record     (QbCalibration *calib);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbCalibration, qb_calibration_unref)

G_END_DECLS
