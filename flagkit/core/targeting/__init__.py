"""Local targeting: parse, validate, compile and evaluate flags and segments.

See ``docs/targeting.md`` for the model and ``docs/architecture.md`` for where this
package sits. Modules, bottom up: ``model`` (specs, models, decisions), ``attributes``,
``operators`` (the operator table), ``bucketing``, ``parse`` (wire objects -> specs,
document checks), ``interpreter`` (the specification of evaluation), ``compiler`` (the
code generator, an optimisation proven equal to the interpreter) and ``engine``
(``compile_flag``, ``compile_segment``, ``evaluate``, ``validate_flags_document``).
"""

from __future__ import annotations

from flagkit.core.targeting.engine import (
    compile_flag,
    compile_segment,
    evaluate,
    validate_flags_document,
)
from flagkit.core.targeting.interpreter import MAX_PREREQUISITE_DEPTH, interpret
from flagkit.core.targeting.model import Decision, FlagModel, SegmentModel, TargetingError
from flagkit.core.targeting.operators import (
    MAX_MATCH_INPUT_LENGTH,
    MAX_PATTERN_LENGTH,
    OPERATORS,
    date_key,
    parse_semver,
)
from flagkit.core.targeting.parse import TARGETING_FIELDS

__all__ = [
    "MAX_MATCH_INPUT_LENGTH",
    "MAX_PATTERN_LENGTH",
    "MAX_PREREQUISITE_DEPTH",
    "OPERATORS",
    "TARGETING_FIELDS",
    "Decision",
    "FlagModel",
    "SegmentModel",
    "TargetingError",
    "compile_flag",
    "compile_segment",
    "date_key",
    "evaluate",
    "interpret",
    "parse_semver",
    "validate_flags_document",
]
