"""Jobs: capture a notebook or script, resolve its dependencies, and handle its parameters."""

from __future__ import annotations

from launch_jupyter.jobs.capture import CapturedJob, JobFile, capture, capture_cells
from launch_jupyter.jobs.deps import check_requirements, imported_modules, resolve_requirements
from launch_jupyter.jobs.names import (
    NAME_RULE,
    default_job_name,
    parse_ref,
    validate_alias,
    validate_name,
)
from launch_jupyter.jobs.parameters import (
    PRIORITIES,
    Parameters,
    effective_parameters,
    inject_parameters,
    parse_overrides,
    parse_priority,
    render_literal,
    schema_for,
    validate_parameters,
)
from launch_jupyter.jobs.sweep import grid_points, parse_grid, random_points, sweep_points
from launch_jupyter.runtime import parameters

__all__ = [
    "NAME_RULE",
    "PRIORITIES",
    "CapturedJob",
    "JobFile",
    "Parameters",
    "capture",
    "capture_cells",
    "check_requirements",
    "default_job_name",
    "effective_parameters",
    "grid_points",
    "imported_modules",
    "inject_parameters",
    "parameters",
    "parse_grid",
    "parse_overrides",
    "parse_priority",
    "parse_ref",
    "random_points",
    "render_literal",
    "resolve_requirements",
    "schema_for",
    "sweep_points",
    "validate_alias",
    "validate_name",
    "validate_parameters",
]
