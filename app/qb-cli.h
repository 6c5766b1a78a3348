/* SPDX-License-Identifier: MIT */
/* qb-cli.h — the command-line subcommands of `quantbench`.
 *
 * Each returns a process exit status: 0 success, 1 failure (message
 * printed), 2 usage error.
 */
#pragma once

#include <gio/gio.h>

#include "qb-model.h"

G_BEGIN_DECLS

typedef int (*QbCliCommand) (int argc, char **argv);

typedef struct {
  const char   *name;
  QbCliCommand  run;
  const char   *summary;
} QbCliEntry;

/* Prints "quantbench: <message>" to stderr and returns 1. */
int  qb_cli_fail          (GError *error);
/* qb_cli_fail, except for a cancelled run (G_IO_ERROR_CANCELLED: a
 * signal): "cancelled", and 130 as a shell gives for Ctrl-C. */
int  qb_cli_fail_or_cancelled (GError *error);
/* Parses options; prints usage and returns FALSE on error. */
gboolean qb_cli_parse     (GOptionContext *context, int *argc, char ***argv);

/* qb-cli-text.c: how every command writes values in its tables. */
/* A size in IEC units (KiB, MiB, ...). */
char *qb_cli_format_size  (guint64 bytes);
/* The tensor's dimensions joined by `separator` ("x" or " x "). */
char *qb_cli_shape        (const QbTensor *t, const char *separator);
/* v with `digits` decimals (style 'f') or significant digits ('g');
 * "-" for a value not measured (NAN), "inf" or "-inf" for an infinite one. */
char *qb_cli_number       (double v, int digits, char style);

/* qb-cli-check.c: FALSE (error set) when `out`, given as `option`, is one
 * of the inputs (NULL entries skipped) or of the texts (NULL-terminated,
 * may be NULL), or cannot be written in its folder; see qb-file.h.  Then
 * removes, and names, the temporary files a killed run left beside out. */
gboolean qb_cli_check_output (const char *out, const char *option, const char * const *inputs,
                              guint n_inputs, char **texts, GError **error);
/* qb-cli-interrupt.c: runs func (returning an exit status) on a thread of
 * its own; SIGINT, SIGTERM and SIGHUP cancel its cancellable meanwhile,
 * and it is expected to end cleanly (qb_cli_fail_or_cancelled: 130). */
typedef int (*QbCliWorkFunc) (gpointer data, GCancellable *cancellable);
int      qb_cli_run_interruptible (QbCliWorkFunc func, gpointer data);
/* FALSE, with a message, when --threads is out of range (a usage error). */
gboolean qb_cli_check_threads (int threads);
/* text for a terminal: valid UTF-8, control characters shown as \xHH or
 * \uHHHH (names and notes come from files and other users). */
char    *qb_cli_safe_text     (const char *text);

int  qb_cmd_demo          (int argc, char **argv);  /* headless demo */
int  qb_cmd_inspect       (int argc, char **argv);
int  qb_cmd_quantize      (int argc, char **argv);
int  qb_cmd_plan          (int argc, char **argv);
int  qb_cmd_formats       (int argc, char **argv);
int  qb_cmd_imatrix       (int argc, char **argv);  /* importance matrix from calibration text */
int  qb_cmd_demo_model    (int argc, char **argv);  /* write a demo GGUF */
int  qb_cmd_eval          (int argc, char **argv);  /* perplexity, KL divergence */
int  qb_cmd_experiments   (int argc, char **argv);  /* qb-cmd-experiments.c */
int  qb_cmd_sensitivity   (int argc, char **argv);  /* per-tensor sensitivity study */
int  qb_cmd_sweep         (int argc, char **argv);  /* automatic plans per budget, measured */
int  qb_cmd_devices       (int argc, char **argv);  /* OpenCL devices */
/* Takes `--device SPEC` out of argv and selects it (qb-cmd-devices.c). */
gboolean qb_cli_take_device (int *argc, char **argv);

G_END_DECLS
