/* SPDX-License-Identifier: MIT */
/* qb-experiment-row.c — a stored experiment as a list item. */
#include "qb-experiment-row.h"

struct _QbExperimentRow
{
  GObject       parent_instance;
  QbExperiment *experiment;
};

G_DEFINE_FINAL_TYPE (QbExperimentRow, qb_experiment_row, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_NAME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
qb_experiment_row_finalize (GObject *object)
{
  QbExperimentRow *self = QB_EXPERIMENT_ROW (object);

  g_clear_pointer (&self->experiment, qb_experiment_free);
  G_OBJECT_CLASS (qb_experiment_row_parent_class)->finalize (object);
}

static void
qb_experiment_row_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  QbExperimentRow *self = QB_EXPERIMENT_ROW (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->experiment->name);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_experiment_row_class_init (QbExperimentRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qb_experiment_row_finalize;
  object_class->get_property = qb_experiment_row_get_property;

  /* For the search filter and the name column's sorter. */
  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL,
                                               G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
qb_experiment_row_init (QbExperimentRow *self)
{
}

QbExperimentRow *
qb_experiment_row_new (QbExperiment *experiment)
{
  QbExperimentRow *self = g_object_new (QB_TYPE_EXPERIMENT_ROW, NULL);

  self->experiment = experiment;
  return self;
}

const QbExperiment *
qb_experiment_row_get_experiment (QbExperimentRow *self)
{
  g_return_val_if_fail (QB_IS_EXPERIMENT_ROW (self), NULL);
  return self->experiment;
}

gint64
qb_experiment_row_get_id (QbExperimentRow *self)
{
  g_return_val_if_fail (QB_IS_EXPERIMENT_ROW (self), 0);
  return self->experiment->id;
}

const char *
qb_experiment_row_get_name (QbExperimentRow *self)
{
  g_return_val_if_fail (QB_IS_EXPERIMENT_ROW (self), NULL);
  return self->experiment->name;
}
