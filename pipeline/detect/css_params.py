"""Moved to pipeline.shared.css_params (read by the agency's feature computation and by the
central side alike); kept so `from pipeline.detect import css_params` still works."""

from pipeline.shared.css_params import *  # noqa: F403
from pipeline.shared.css_params import (  # noqa: F401
    MAX_RANK,
    ZONES,
    CssPeriod,
    ParameterSelection,
    default_parameters_path,
    dependant_age_limit,
    describe,
    forfait_table,
    increments_table,
    load_parameters,
    round_euro,
    select_period,
    use_parameters,
    zone_cells,
)
