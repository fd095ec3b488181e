"""The data contract: the source schema totes expects (contract.yml), checked before each extract.

A column the contract does not know is only a warning: dlt extracts it and the lake keeps it.
A column that is missing (dropped or renamed) or has another type breaks the table: it is not
extracted, so its cursor stays where it is, and the other tables go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ingestion.common.database import reading

CONTRACT_FILE = Path(__file__).with_name("contract.yml")

# format_type() gives the type as the DDL spells it: numeric(10,2), "PaymentTypeName", ...
_SOURCE_COLUMNS = """
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
    from pg_catalog.pg_attribute as a
    join pg_catalog.pg_class as c on c.oid = a.attrelid
    join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relname = any(%s) and a.attnum > 0 and not a.attisdropped
    order by c.relname, a.attnum
"""


@dataclass(frozen=True)
class Contract:
    version: int
    tables: dict[str, dict[str, str]]  # table -> column -> type

    @classmethod
    def load(cls, path: Path = CONTRACT_FILE) -> Contract:
        document = yaml.safe_load(path.read_text())
        return cls(int(document["version"]), document["tables"])


@dataclass
class ContractCheck:
    """What the source looks like against the contract, table by table."""

    broken: dict[str, list[str]] = field(default_factory=dict)  # table -> problems
    warnings: list[str] = field(default_factory=list)

    def usable(self, tables: tuple[str, ...]) -> list[str]:
        return [table for table in tables if table not in self.broken]

    def describe_broken(self) -> str:
        return "; ".join(
            f"{table}: {', '.join(problems)}" for table, problems in self.broken.items()
        )


def check_source(source_url: str, contract: Contract) -> ContractCheck:
    found: dict[str, dict[str, str]] = {}
    with reading(source_url) as cursor:
        cursor.execute(_SOURCE_COLUMNS, (list(contract.tables),))
        for table, column, type_ in cursor.fetchall():
            found.setdefault(table, {})[column] = type_
    return compare(contract, found)


def compare(contract: Contract, found: dict[str, dict[str, str]]) -> ContractCheck:
    check = ContractCheck()
    for table, expected in contract.tables.items():
        actual = found.get(table)
        if actual is None:
            check.broken[table] = [f"table {table} is missing from the source"]
            continue
        problems = []
        for column, type_ in expected.items():
            if column not in actual:
                problems.append(f"column {table}.{column} is missing (dropped or renamed)")
            elif actual[column] != type_:
                problems.append(
                    f"column {table}.{column} is {actual[column]}, the contract says {type_}"
                )
        if problems:
            check.broken[table] = problems
        check.warnings += [
            f"column {table}.{column} ({type_}) is new: extracted and kept in the lake, "
            f"not used by the warehouse until the contract (v{contract.version}) and models add it"
            for column, type_ in actual.items()
            if column not in expected
        ]
    return check
