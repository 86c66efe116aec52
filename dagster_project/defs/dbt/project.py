"""The dbt project, its manifest, and how its nodes become Dagster assets."""
from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
TARGET_DIR = DBT_PROJECT_DIR / dbt_project.target_path


def ensure_manifest(project: DbtProject = dbt_project) -> Path:
    """Parse the dbt project when its manifest is missing or older than any model, macro or setting.

    Only SQL files and settings are parsed: meter SQL is read from the warehouse at run time, so
    a change to pricing_config/ never needs a parse.
    """
    manifest = project.manifest_path
    sources = [p for folder in ("models", "macros", "tests") for p in (project.project_dir / folder).rglob("*")
               if p.is_file()] + [project.project_dir / "dbt_project.yml", project.project_dir / "profiles.yml"]

    def stale() -> bool:
        return not manifest.exists() or manifest.stat().st_mtime < max(p.stat().st_mtime for p in sources)

    if stale():
        TARGET_DIR.mkdir(parents=True, exist_ok=True)
        with (TARGET_DIR / ".parse.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once parse once
            if stale():
                dbt = Path(sys.executable).with_name("dbt")
                subprocess.run([str(dbt), "parse", "--quiet", "--project-dir", str(project.project_dir),
                                "--profiles-dir", str(project.profiles_dir)], check=True, cwd=project.project_dir)
    return manifest


class TallyDbtTranslator(DagsterDbtTranslator):
    """Each dbt layer is a Dagster group (staging, intermediate, marts)."""

    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id)
        if node is not None and node.get("resource_type") in ("model", "seed", "snapshot"):
            layer = node["fqn"][1] if len(node["fqn"]) > 2 else "marts"
            spec = spec.replace_attributes(group_name=layer)
        return spec


translator = TallyDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True))
MANIFEST = ensure_manifest()
