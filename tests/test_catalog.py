"""The Glue catalog against the parquet files of a real run.

terraform/catalog.tf creates a Glue table per table of each zone from what the module
terraform/modules/zone_tables computes out of the contracts (the source contract for the lake,
the enforced dbt contracts of the marts for the processed zone). These tests write both zones with
real runs and check, file by file, that every Glue column is in the file with the type Athena
reads it as, that every column of the file is in Glue, and that every partition folder is one the
table's partition projection points at. So a contract, a writer or the catalog that changes
alone fails here.

The catalog is Terraform's own evaluation of the module where a terraform binary is installed
(it needs no provider, so it runs offline). Where none is (GitHub's ubuntu-24.04 runners), it is
`module_tables`: the same HCL arguments and yml files read by a few lines of Python, which
`test_terraform_computes_the_tables_this_test_reads` holds equal to Terraform's wherever both run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import hcl2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.lake.storage import arrow_filesystem, filesystem
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.deliveries import drop_deliveries
from ingestion.local.source.generate import init_source
from ingestion.pipeline import run
from tests.conftest import execute, new_stack, query

REPO = Path(__file__).resolve().parent.parent
TERRAFORM = REPO / "terraform"
MODULE = "zone_tables"
PLAIN = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)
# what the module gets from the stack's own resources; the tests give it stand-ins
ZONE_URLS = {"lake": "s3://lake-bucket/landing", "processed": "s3://processed-bucket/star"}
FIRST_DAY = "2020-01-01"
TERRAFORM_BINARY = shutil.which("terraform")

Tables = dict[str, dict[str, dict[str, Any]]]  # zone -> Glue table name -> table


# --- the catalog ------------------------------------------------------------------------------


def module_arguments(terraform: Path) -> dict[str, Any]:
    """The literal arguments catalog.tf gives the zone_tables module (not those that come from
    the stack's resources: the tests give their own)."""
    parsed = hcl2.loads((terraform / "catalog.tf").read_text(), serialization_options=PLAIN)
    (block,) = [entry[MODULE] for entry in parsed["module"] if MODULE in entry]
    return {
        name: value
        for name, value in block.items()
        if name not in ("source", "repo_root", "zone_urls", "first_day")
    }


def terraform_tables(terraform: Path, repo: Path, work: Path) -> Tables:
    """The module's tables, as Terraform computes them: a root module holding only it, applied
    (no provider, no backend, nothing leaves this machine)."""
    assert TERRAFORM_BINARY, "no terraform binary"
    root = {
        "module": {
            MODULE: {
                "source": os.path.relpath(terraform / "modules" / MODULE, work),
                "repo_root": str(repo),
                "zone_urls": ZONE_URLS,
                "first_day": FIRST_DAY,
                **module_arguments(terraform),
            }
        },
        "output": {"tables": {"value": f"${{module.{MODULE}.tables}}"}},
    }
    work.mkdir(parents=True, exist_ok=True)
    (work / "main.tf.json").write_text(json.dumps(root))
    env = os.environ | {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    for command in (
        ["init", "-backend=false", "-no-color"],
        ["apply", "-auto-approve", "-no-color"],
    ):
        done = subprocess.run(
            [TERRAFORM_BINARY, f"-chdir={work}", *command],
            env=env, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise ModuleError(f"terraform {command[0]} failed:\n{done.stderr}")
    shown = subprocess.run(
        [TERRAFORM_BINARY, f"-chdir={work}", "output", "-json", "tables"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(shown.stdout)


class ModuleError(Exception):
    """The module refuses its inputs (as `terraform plan` would)."""


def module_tables(terraform: Path, repo: Path) -> Tables:
    """The module's tables, computed in Python from the same arguments and files: its for
    expressions, line for line (descriptions and comments left out)."""
    arguments = module_arguments(terraform)
    module = hcl2.loads(
        (terraform / "modules" / MODULE / "main.tf").read_text(), serialization_options=PLAIN
    )
    (glue_types,) = [block["glue_types"] for block in module["locals"] if "glue_types" in block]

    def glue_type(postgres: str) -> str:
        glue = glue_types.get(re.sub(r"\(.*?\)", "", postgres.lower()).strip())
        if glue is None:
            raise ModuleError(f"No Glue type for the Postgres type(s) {postgres}")
        params = re.search(r"\(.*\)", postgres)
        if glue == "decimal":
            return f"decimal{params[0].replace(' ', '') if params else ''}"
        return glue

    def table(zone: str, path: str, columns: list[tuple[str, str]], keys: list[str]) -> Any:
        location = f"{ZONE_URLS[zone]}/{path}"
        parameters = {"EXTERNAL": "TRUE", "classification": "parquet"}
        if keys:
            parameters["projection.enabled"] = "true"
            parameters["storage.location.template"] = "/".join(
                [location, *(f"{key}=${{{key}}}" for key in keys), ""]
            )
            for key in keys:
                parameters |= {
                    f"projection.{key}.type": "date",
                    f"projection.{key}.format": "yyyy-MM-dd",
                    f"projection.{key}.range": f"{FIRST_DAY},NOW",
                    f"projection.{key}.interval": "1",
                    f"projection.{key}.interval.unit": "DAYS",
                }
        return {
            "path": path,
            "location": f"{location}/",
            "columns": [{"name": name, "type": type_} for name, type_ in columns],
            "partition_keys": [{"name": key, "type": "string"} for key in keys],
            "parameters": parameters,
        }

    lake = {}
    for dataset, spec in arguments["lake_datasets"].items():
        added = sorted(spec["load_columns"].items())
        for file in spec.get("contracts", []):
            for name, columns in yaml.safe_load((repo / file).read_text())["tables"].items():
                typed = [(column, glue_type(type_)) for column, type_ in sorted(columns.items())]
                lake[f"{dataset}__{name}"] = table(
                    "lake", f"{dataset}/{name}", typed + added, [arguments["lake_partition"]]
                )
        for name, columns in spec.get("glue_tables", {}).items():
            lake[f"{dataset}__{name}"] = table(
                "lake", f"{dataset}/{name}", sorted(columns.items()) + added,
                [arguments["lake_partition"]],
            )  # fmt: skip
    processed = {}
    for file in sorted(repo.glob(arguments["mart_files"])):
        for mart in yaml.safe_load(file.read_text()).get("models", []):
            enforced = (mart.get("config") or {}).get("contract", {}).get("enforced", False)
            if not (re.search(arguments["exported_marts"], mart["name"]) and enforced):
                continue
            columns = [(c["name"], glue_type(c["data_type"])) for c in mart["columns"]]
            is_fact = any(name.endswith("_record_id") for name, _ in columns)
            keys = [arguments["fact_partition"]] if is_fact else []
            kept = [(name, type_) for name, type_ in columns if name not in keys]
            processed[mart["name"]] = table("processed", mart["name"], kept, keys)
    return {"lake": lake, "processed": processed}


def schemas(tables: Tables) -> Tables:
    """The tables without their descriptions and comments."""

    def schema(table: dict[str, Any]) -> dict[str, Any]:
        return {
            "path": table["path"],
            "location": table["location"],
            "columns": [{"name": c["name"], "type": c["type"]} for c in table["columns"]],
            "partition_keys": [
                {"name": k["name"], "type": k["type"]} for k in table["partition_keys"]
            ],
            "parameters": table["parameters"],
        }

    return {zone: {name: schema(t) for name, t in named.items()} for zone, named in tables.items()}


def catalog_tables(terraform: Path, repo: Path, work: Path) -> Tables:
    """Terraform's tables where it is installed, otherwise the Python reading of them."""
    if TERRAFORM_BINARY:
        return schemas(terraform_tables(terraform, repo, work))
    return module_tables(terraform, repo)


# --- the zones' files -------------------------------------------------------------------------


def athena_type(arrow: pa.DataType) -> str:
    """The Glue type Athena reads a parquet column of this arrow type as."""
    if pa.types.is_dictionary(arrow):
        return athena_type(arrow.value_type)
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_time64(arrow):  # parquet TIME(MICROS/NANOS): Athena tables have no TIME
        return "bigint"
    simple = {
        pa.bool_(): "boolean",
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.string(): "string",
        pa.large_string(): "string",
        pa.binary(): "binary",
        pa.large_binary(): "binary",
        pa.date32(): "date",
    }
    return simple.get(arrow, f"unknown to this test ({arrow})")


def zone_files(url: str) -> dict[str, dict[str, str] | None]:
    """Every file of a zone Athena would read (not _ or . ones, nor in such folders), by its path
    under the zone: its columns and their Athena types, or None when it is not parquet."""
    fs, root = filesystem(url)
    files: dict[str, dict[str, str] | None] = {}
    for path in sorted(fs.find(root)):
        relative = path[len(root) :].lstrip("/")
        if any(part.startswith(("_", ".")) for part in relative.split("/")):
            continue
        if not relative.endswith(".parquet"):
            files[relative] = None
            continue
        schema = pq.read_schema(path, filesystem=arrow_filesystem(fs))
        files[relative] = {field.name: athena_type(field.type) for field in schema}
    return files


# --- the comparison ---------------------------------------------------------------------------


def differences(
    tables: dict[str, dict[str, Any]], zone_url: str, files: dict[str, dict[str, str] | None]
) -> list[str]:
    """Where a zone's Glue tables and its files disagree, one line each (empty: nowhere)."""
    found = []
    claimed: set[str] = set()
    for name, table in sorted(tables.items()):
        path = table["path"]
        own = {file: columns for file, columns in files.items() if file.startswith(f"{path}/")}
        claimed |= own.keys()
        if not own:
            found.append(f"{name}: no file under {path}/ to check its columns against")
        for file, columns in own.items():
            if columns is None:
                found.append(f"{name}: {file} is not parquet, but Athena reads it as parquet")
                continue
            found += [f"{name}: {file} {line}" for line in column_problems(table, columns)]
            found += partition_problems(name, table, zone_url, file.rsplit("/", 1)[0])
    for file in sorted(files.keys() - claimed):
        if files[file] is not None:
            found.append(f"{file}: no Glue table reads it")
    return found


def column_problems(table: dict[str, Any], columns: dict[str, str]) -> list[str]:
    glue = {column["name"]: column["type"] for column in table["columns"]}
    keys = [key["name"] for key in table["partition_keys"]]
    return [
        *(f"holds {c} ({t}), which Glue lacks" for c, t in columns.items() if c not in glue),
        *(f"lacks the Glue column {c} ({t})" for c, t in glue.items() if c not in columns),
        *(
            f"holds {c} as {columns[c]}, Glue says {t}"
            for c, t in glue.items()
            if c in columns and columns[c] != t
        ),
        *(f"holds the partition key {key} as a column" for key in keys if key in columns),
    ]


def partition_problems(name: str, table: dict[str, Any], zone_url: str, folder: str) -> list[str]:
    """Whether Athena's projection finds the folder `folder` (under the zone) of a table."""
    keys = [key["name"] for key in table["partition_keys"]]
    template = table["parameters"].get("storage.location.template", "")
    below = folder[len(table["path"]) :].strip("/")
    parts = [part.split("=", 1) for part in below.split("/")] if below else []
    if [part[0] for part in parts] != keys or any(len(part) != 2 for part in parts):
        return [f"{name}: folder {folder}/ is not one partition {'/'.join(keys) or '(none)'}"]
    problems, projected = [], template
    for key, value in parts:
        if table["parameters"].get(f"projection.{key}.format") != "yyyy-MM-dd":
            problems.append(f"{name}: partition {key} is not projected as yyyy-MM-dd days")
        first = table["parameters"].get(f"projection.{key}.range", "").split(",")[0]
        try:
            day = date.fromisoformat(value)
        except ValueError:
            problems.append(f"{name}: {folder}/: {value} is no yyyy-MM-dd day")
            continue
        if value != day.isoformat() or not first or day < date.fromisoformat(first):
            problems.append(f"{name}: {folder}/: {value} is outside the projection from {first}")
        projected = projected.replace(f"${{{key}}}", value)
    if keys and table["parameters"].get("projection.enabled") != "true":
        problems.append(f"{name}: partitioned but not projected: Athena would find no partition")
    if keys and projected != f"{zone_url}/{folder}/":
        problems.append(f"{name}: the projection points at {projected}, the files are in {folder}/")
    return problems


# --- the run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zones(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Both zones after two runs, with a file in every table of each: the lake's (a key snapshot
    on each run, delivery files good and bad) and the processed zone's (deleted_rows too: a
    payment is deleted between the runs)."""
    settings = replace(new_stack(postgres, tmp_path_factory.mktemp("catalog")), key_check_every=1)
    preflight(settings)
    init_source(settings.source_url, scale=0.01, seed=29)
    # delivery events and a file that breaks their contract (the lake's rejected_file)
    drop_deliveries(settings.source_url, settings.deliveries_url, orders=5, seed=29, bad=1)
    run(settings)
    ((payment_id,),) = query(settings.source_url, "select max(payment_id) from payment")
    execute(settings.source_url, f"delete from payment where payment_id = {payment_id}")
    run(settings)
    return settings


@pytest.fixture(scope="module")
def files(zones: Settings) -> dict[str, dict[str, Any]]:
    return {"lake": zone_files(zones.lake_url), "processed": zone_files(zones.processed_url)}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Tables:
    return catalog_tables(TERRAFORM, REPO, tmp_path_factory.mktemp("zone_tables"))


def all_differences(tables: Tables, files: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"{zone}: {line}"
        for zone in ("lake", "processed")
        for line in differences(tables[zone], ZONE_URLS[zone], files[zone])
    ]


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["lake", "processed"])
def test_every_glue_table_matches_the_files_of_its_zone(
    zone: str, catalog: Tables, files: dict[str, dict[str, Any]]
) -> None:
    assert differences(catalog[zone], ZONE_URLS[zone], files[zone]) == []


def test_the_catalog_has_a_table_per_table_of_each_zone(catalog: Tables) -> None:
    lake = {
        "totesys__sales_order",
        "totesys__source_keys",
        "fx__fx_rate",
        "deliveries__rejected_file",
    }
    assert lake <= catalog["lake"].keys()
    assert {"dim_date", "fact_sales_order", "deleted_rows"} <= catalog["processed"].keys()
    partitioned = {
        zone: {name for name, table in tables.items() if table["partition_keys"]}
        for zone, tables in catalog.items()
    }
    assert partitioned["lake"] == catalog["lake"].keys()  # every lake table, by load day
    assert partitioned["processed"] == {n for n in catalog["processed"] if n.startswith("fact_")}


@pytest.mark.skipif(
    not TERRAFORM_BINARY, reason="no terraform binary: make test needs none, CI installs one"
)
def test_terraform_computes_the_tables_this_test_reads(tmp_path: Path) -> None:
    assert schemas(terraform_tables(TERRAFORM, REPO, tmp_path)) == module_tables(TERRAFORM, REPO)


def edited_copy(tmp_path: Path, file: str, edit: Callable[[str], str]) -> tuple[Path, Path]:
    """A copy of the repository's contracts and Terraform, `file` edited: (terraform, repo)."""
    repo = tmp_path / "repo"
    skipped = shutil.ignore_patterns(".*", "__pycache__")
    for folder in ("terraform", "models", "ingestion/extract"):
        shutil.copytree(REPO / folder, repo / folder, ignore=skipped)
    text = (repo / file).read_text()
    edited = edit(text)
    assert edited != text, f"{file} no longer holds what this case edits"
    (repo / file).write_text(edited)
    return repo / "terraform", repo


def add_after(anchor: str, added: str) -> Callable[[str], str]:
    return lambda text: text.replace(anchor, anchor + added, 1)


def swap(written: str, instead: str) -> Callable[[str], str]:
    return lambda text: text.replace(written, instead, 1)


# A change on one side only: (file, edit, a line of what the comparison must report).
ONE_SIDED = {
    "a mart's contract gains a column": (
        "models/marts/_marts__models.yml",
        add_after(
            "      - name: units_sold\n        data_type: integer\n",
            "        description: Units sold.\n        constraints: [{type: not_null}]\n"
            "      - name: units_returned\n        data_type: integer\n",
        ),
        "lacks the Glue column units_returned (bigint)",
    ),
    "a mart's column changes type": (
        "models/marts/_marts__models.yml",
        swap(
            "      - name: units_sold\n        data_type: integer\n",
            "      - name: units_sold\n        data_type: numeric(10,2)\n",
        ),
        "holds units_sold as bigint, Glue says decimal(10,2)",
    ),
    "a source column changes type in the contract": (
        "ingestion/extract/contract.yml",
        swap("    units_sold: integer\n", "    units_sold: text\n"),
        "holds units_sold as bigint, Glue says string",
    ),
    "a dataset's added column is forgotten": (
        "terraform/catalog.tf",
        swap(', _dlt_id = "string" }', " }"),
        "holds _dlt_id (string), which Glue lacks",
    ),
    "a lake dataset is left out": (
        "terraform/catalog.tf",
        swap("    fx = {\n", "    fx_left_out = {\n"),
        "no Glue table reads it",
    ),
    "the lake's partition is misnamed": (
        "terraform/catalog.tf",
        swap('lake_partition = "load_date"', 'lake_partition = "load_day"'),
        "is not one partition load_day",
    ),
    "projection is off": (
        "terraform/modules/zone_tables/main.tf",
        swap('"projection.enabled" = "true"', '"projection.enabled" = "false"'),
        "partitioned but not projected",
    ),
}


# the module's own logic is read by Terraform only (the Python reading mirrors it)
TERRAFORM_ONLY = {"projection is off"}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=pytest.mark.skipif(not TERRAFORM_BINARY, reason="no terraform"))
        if case in TERRAFORM_ONLY
        else case
        for case in ONE_SIDED
    ],
)
def test_a_change_on_one_side_only_is_reported(
    case: str, tmp_path: Path, files: dict[str, dict[str, Any]]
) -> None:
    file, edit, expected = ONE_SIDED[case]
    terraform, repo = edited_copy(tmp_path, file, edit)
    reported = all_differences(catalog_tables(terraform, repo, tmp_path / "work"), files)
    assert any(expected in line for line in reported), "\n".join(reported) or "nothing reported"
    print(f"{case}: {reported[0]} (and {len(reported) - 1} more)")


def test_a_postgres_type_the_catalog_does_not_know_stops_the_plan(tmp_path: Path) -> None:
    terraform, repo = edited_copy(
        tmp_path,
        "ingestion/extract/contract.yml",
        swap("    units_sold: integer\n", "    units_sold: interval\n"),
    )
    with pytest.raises(ModuleError, match=r"No Glue type for the Postgres type\(s\) interval"):
        catalog_tables(terraform, repo, tmp_path / "work")


def test_the_comparison_sees_every_kind_of_mismatch() -> None:
    table = {
        "path": "fact_x",
        "columns": [{"name": "a", "type": "bigint"}, {"name": "b", "type": "string"}],
        "partition_keys": [{"name": "day", "type": "string"}],
        "parameters": {
            "projection.enabled": "true",
            "projection.day.format": "yyyy-MM-dd",
            "projection.day.range": "2020-01-01,NOW",
            "storage.location.template": "s3://z/fact_x/day=${day}/",
        },
    }
    files: dict[str, Any] = {
        "fact_x/day=2024-01-31/records.parquet": {"a": "bigint", "b": "string"},
        "fact_x/day=2024-02-01/records.parquet": {"a": "int", "c": "string"},
        "fact_x/day=2019-12-31/records.parquet": {"a": "bigint", "b": "string"},
        "fact_x/2024-02-02/records.parquet": {"a": "bigint", "b": "string"},
        "fact_x/day=2024-02-03/notes.txt": None,
        "fact_y/part-00000.parquet": {"a": "bigint"},
    }
    assert differences({"x": table}, "s3://z", files) == [
        "x: fact_x/day=2024-02-01/records.parquet holds c (string), which Glue lacks",
        "x: fact_x/day=2024-02-01/records.parquet lacks the Glue column b (string)",
        "x: fact_x/day=2024-02-01/records.parquet holds a as int, Glue says bigint",
        "x: fact_x/day=2019-12-31/: 2019-12-31 is outside the projection from 2020-01-01",
        "x: folder fact_x/2024-02-02/ is not one partition day",
        "x: fact_x/day=2024-02-03/notes.txt is not parquet, but Athena reads it as parquet",
        "fact_y/part-00000.parquet: no Glue table reads it",
    ]


def test_every_input_and_output_of_the_module_says_what_it_is_for() -> None:
    parsed = hcl2.loads(
        (TERRAFORM / "modules" / MODULE / "main.tf").read_text(), serialization_options=PLAIN
    )
    blocks: Iterator[tuple[str, dict[str, Any]]] = (
        (name, body)
        for kind in ("variable", "output")
        for entry in parsed[kind]
        for name, body in entry.items()
    )
    for name, body in blocks:
        assert body.get("description"), f"{name} has no description"
