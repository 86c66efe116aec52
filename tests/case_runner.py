"""Run a behaviour case (tests/cases/<case>/) through the real `tally run` and list every difference.

A case holds pricing_config/, data/ (events under data/events/) and case.yaml: either `as_of` and
`expect`, or `runs`, a list of {as_of, events, config, expect} sharing one warehouse. `expect` may
give: exit_code, output_contains, invoices (compared field by field, lines by type and billable
item; no other invoice may exist unless exact_invoice_set is false), event_status (counts in
marts.event_pipeline_log), sql (rows as text), rerun_identical (a second run changes no file) and
finals_unchanged (invoices final before the run keep their bytes).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.conftest import digests, query, run_tally


def run_case(case: Path, workdir: Path) -> list[str]:
    """Every difference between what the case expects and what tally did (empty: it passes)."""
    spec = yaml.safe_load((case / "case.yaml").read_text())
    runs = spec.get("runs") or [{"as_of": spec["as_of"], "events": None, "expect": spec.get("expect", {})}]
    shutil.copytree(case / "pricing_config", workdir / "config")
    shutil.copytree(case / "data", workdir / "data", ignore=shutil.ignore_patterns("events"))
    (workdir / "data" / "events").mkdir()
    differences: list[str] = []
    for number, run in enumerate(runs, start=1):
        label = f"run {number} (as of {run['as_of']})"
        if run.get("config"):
            shutil.rmtree(workdir / "config")
            shutil.copytree(case / run["config"], workdir / "config")
        names = run.get("events")
        if names is None:
            names = [f"events/{p.name}" for p in sorted((case / "data" / "events").glob("*"))] \
                if (case / "data" / "events").is_dir() else []
        for name in names:
            shutil.copy(case / "data" / name, workdir / "data" / "events" / Path(name).name)
        expect = run.get("expect", {})
        finals_before = _final_documents(workdir / "invoices")
        proc = _tally_run(workdir, str(run["as_of"]))
        found = _compare(expect, proc, workdir)
        if not found and expect.get("finals_unchanged"):
            now = digests(workdir / "invoices")
            found += [f"final invoice {name} changed" for name, digest in finals_before.items()
                      if now.get(name) != digest]
        if not found and expect.get("rerun_identical"):
            before = digests(workdir / "invoices")
            again = _tally_run(workdir, str(run["as_of"]))
            if again.returncode != 0:
                found.append(f"the rerun exited {again.returncode}: {(again.stdout + again.stderr)[-600:]}")
            elif digests(workdir / "invoices") != before:
                found.append("the rerun changed published invoices")
        differences += [f"{label}: {difference}" for difference in found]
    return differences


def _tally_run(workdir: Path, as_of: str):
    return run_tally("run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
                     "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
                     "--as-of", as_of, home=workdir / ".dagster")


def _compare(expect: dict, proc, workdir: Path) -> list[str]:
    output = proc.stdout + proc.stderr
    if proc.returncode != expect.get("exit_code", 0):
        return [f"exit code {proc.returncode}, expected {expect.get('exit_code', 0)}: {output[-800:]}"]
    found = [f"the output does not say {text!r}" for text in expect.get("output_contains", []) if text not in output]
    if "invoices" in expect:
        published, twice = _published(workdir / "invoices")
        found += [f"two invoice files for {key}" for key in twice]
        found += _compare_invoices(expect["invoices"], published, expect.get("exact_invoice_set", True))
    if "event_status" in expect:
        counts = dict(query(workdir, "select status, count(*) from marts.event_pipeline_log group by 1"))
        wanted = {status: int(count) for status, count in expect["event_status"].items() if int(count)}
        if {status: count for status, count in counts.items() if count} != wanted:
            found.append(f"event statuses {counts}, expected {wanted}")
    for check in expect.get("sql", []):
        rows = [[str(value) for value in row] for row in query(workdir, check["query"])]
        wanted = [[str(value) for value in row] for row in check["rows"]]
        if rows != wanted:
            found.append(f"{check['query']!r} gave {rows}, expected {wanted}")
    return found


def _compare_invoices(expected: list[dict], published: dict, exact: bool) -> list[str]:
    found, keys = [], set()
    for want in expected:
        key = (want["account_id"], want["period_start"], want.get("kind", "cycle"))
        keys.add(key)
        got = published.get(key)
        if got is None:
            found.append(f"no invoice {key} (published: {sorted(published)})")
            continue
        for field, value in want.items():
            if field in ("account_id", "period_start", "kind", "lines"):
                continue
            have = got.get(field)
            if field == "custom_charges":
                have = [{"name": charge["name"], "amount": charge["amount"]} for charge in have or []]
            if have != value:
                found.append(f"{key} {field} is {have!r}, expected {value!r}")
        if "lines" in want:
            found += _compare_lines(key, want["lines"], got.get("lines", []))
    if exact:
        found += [f"unexpected invoice {key}" for key in sorted(set(published) - keys)]
    return found


def _line_key(line: dict) -> tuple:
    key = (line.get("type"), line.get("billable_item"))
    return key + (line.get("description"),) if line.get("type") == "pricing_rule" else key


def _compare_lines(invoice: tuple, expected: list[dict], lines: list[dict]) -> list[str]:
    by_key: dict[tuple, list[dict]] = {}
    for line in lines:
        by_key.setdefault(_line_key(line), []).append(line)
    found = []
    for want in expected:
        matches = by_key.get(_line_key(want), [])
        if len(matches) != 1:
            found.append(f"{invoice}: {len(matches)} lines {_line_key(want)}, expected one")
            continue
        for field, value in want.items():
            if field in ("type", "billable_item") or (field == "description" and want.get("type") == "pricing_rule"):
                continue  # part of the key
            if matches[0].get(field) != value:
                found.append(f"{invoice}: line {_line_key(want)} {field} is {matches[0].get(field)!r}, "
                             f"expected {value!r}")
    extra = sorted(set(by_key) - {_line_key(want) for want in expected}, key=str)
    if extra:
        found.append(f"{invoice}: unexpected lines {extra}")
    return found


def _published(directory: Path) -> tuple[dict[tuple, dict], list[tuple]]:
    """The invoice documents by (account_id, period_start, kind), and the keys published more than once."""
    documents, twice = {}, []
    for path in sorted(directory.rglob("*.json")) if directory.exists() else []:
        document = json.loads(path.read_text())
        key = (document.get("account_id"), document.get("period_start"), document.get("kind"))
        if key in documents:
            twice.append(key)
        documents[key] = document
    return documents, twice




def _final_documents(directory: Path) -> dict[str, str]:
    files = digests(directory)
    finals = {}
    for name in files:
        if name.endswith(".json") and json.loads((directory / name).read_text()).get("status") == "final":
            for suffix in (".json", ".html"):
                sibling = name[:-len(".json")] + suffix
                if sibling in files:
                    finals[sibling] = files[sibling]
    return finals

