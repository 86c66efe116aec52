"""The pricing catalog: pydantic models of pricing_config/, their validation and compilation."""
from dagster_project.catalog.loader import Catalog, ConfigError, ConfigProblem, load_catalog, load_catalog_once

__all__ = ["Catalog", "ConfigError", "ConfigProblem", "load_catalog", "load_catalog_once"]
