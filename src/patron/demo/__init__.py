"""The demo data: real public data sets loaded through the generic importer, one mapping file each."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from patron.demo.sets import DEMO_SETS, EXAMPLE_SETS
from patron.errors import SourceFileError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from patron.cif.importer import ImportResult, ProgressCallback
    from patron.cif.mapping import Mapping


def demo_mapping(name: str) -> Mapping:
    """The packaged mapping of one demo set."""
    from patron.cif.mapping import parse_mapping  # noqa: PLC0415 - naming the sets (the CLI's help) stays light

    if name not in DEMO_SETS + EXAMPLE_SETS:
        raise SourceFileError(f"unknown demo set {name!r}; choose from {', '.join(DEMO_SETS + EXAMPLE_SETS)}")
    text = resources.files("patron.demo").joinpath("mappings", f"{name}.toml").read_text(encoding="utf-8")
    return parse_mapping(tomllib.loads(text), origin=f"demo mapping {name}")


def demo_file(name: str, data_dir: Path) -> Path:
    mapping = demo_mapping(name)
    assert mapping.file is not None
    return data_dir / mapping.file


def load_demo(
    engine: Engine,
    data_dir: Path,
    *,
    names: tuple[str, ...] = DEMO_SETS,
    rejects_dir: Path | None = None,
    progress_for: Callable[[str], ProgressCallback | None] | None = None,
) -> list[ImportResult]:
    """Import each named demo set from ``data_dir`` (the shared ``data/`` folder)."""
    # The importer (Polars) and the service layer load when data is loaded, not when the CLI names the sets.
    from patron.cif.importer import import_file  # noqa: PLC0415
    from patron.service.complaints import cases_from_complaints  # noqa: PLC0415

    missing = [name for name in names if not demo_file(name, data_dir).is_file()]
    if missing:
        raise SourceFileError(
            f"demo data not found under {data_dir} for {', '.join(missing)}; "
            "set PATRON_SHARED_DATA_DIR to the folder holding cdnow/, telco-churn/, ..."
        )
    results = []
    for name in names:
        mapping = demo_mapping(name)
        progress = progress_for(name) if progress_for else None
        results.append(
            import_file(engine, demo_file(name, data_dir), mapping, rejects_dir=rejects_dir, progress=progress)
        )
        if name == "cfpb-complaints":
            cases_from_complaints(engine, source=mapping.source.system)  # the complaints are service cases too
    return results
