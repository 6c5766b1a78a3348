/* SPDX-License-Identifier: MIT */
/* qb-store-export-private.h — the JSON export's layout, shared by the
 * writer (qb-store-export.c, which describes it) and the reader
 * (qb-store-import.c). */
#pragma once

#include "qb-store-private.h"

G_BEGIN_DECLS

#define EXPORT_FORMAT  "quantbench-experiments"
#define EXPORT_VERSION 1

/* Name and place of every double of a record, in one list for writing
 * and reading. */
#define EVALUATION_DOUBLES(e) { \
  { "perplexity", &(e)->perplexity }, { "perplexity_err", &(e)->perplexity_err }, \
  { "base_perplexity", &(e)->base_perplexity }, { "kld_mean", &(e)->kld_mean }, \
  { "kld_median", &(e)->kld_median }, { "kld_p90", &(e)->kld_p90 }, \
  { "kld_p95", &(e)->kld_p95 }, { "kld_p99", &(e)->kld_p99 }, { "kld_max", &(e)->kld_max }, \
  { "top1_agreement", &(e)->top1_agreement }, { "dp_mean", &(e)->dp_mean }, \
  { "dp_rms", &(e)->dp_rms }, { "seconds", &(e)->seconds } }

#define TOTALS_DOUBLES(t) { \
  { "bpw", &(t)->bpw }, { "compression", &(t)->compression }, { "seconds", &(t)->seconds }, \
  { "sqnr_db", &(t)->sqnr_db }, { "rmse_rel", &(t)->rmse_rel }, \
  { "cosine_min", &(t)->cosine_min }, { "max_abs_err", &(t)->max_abs_err }, \
  { "out_rel_err", &(t)->out_rel_err } }

#define METRICS_DOUBLES(m) { \
  { "mse", &(m)->mse }, { "rmse_rel", &(m)->rmse_rel }, { "sqnr_db", &(m)->sqnr_db }, \
  { "cosine", &(m)->cosine }, { "max_abs_err", &(m)->max_abs_err }, { "wmse", &(m)->wmse }, \
  { "out_rel_err", &(m)->out_rel_err }, { "mean", &(m)->mean }, { "std", &(m)->std }, \
  { "min", &(m)->min }, { "max", &(m)->max }, { "kurtosis", &(m)->kurtosis }, \
  { "outlier_share", &(m)->outlier_share } }

typedef struct {
  const char *key;
  double     *value;
} NamedDouble;

G_END_DECLS
