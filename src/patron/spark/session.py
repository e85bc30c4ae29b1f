"""One Spark session for Patron: ``local[*]`` by default, a cluster URL in production (``PATRON_SPARK_MASTER``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from patron.errors import InvalidInputError
from patron.settings import get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Debian's libpostgresql-jdbc-java puts the PostgreSQL driver here (`make test` installs it).
DEBIAN_JDBC_DRIVER = Path("/usr/share/java/postgresql.jar")


def spark_session(master: str | None = None, *, app_name: str = "patron") -> SparkSession:
    """A Spark session whose Python workers run this interpreter (so they import the same Patron and Polars)."""
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 - an optional extra: a clear error if missing
    except ImportError as error:
        raise InvalidInputError("Spark is not installed: pip install 'patron[spark]'") from error
    settings = get_settings()
    # Workers must run the interpreter Patron is installed in, not whatever `python3` is first on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master or settings.spark_master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark_partitions))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Spark's stage progress bar helps at a terminal and clutters logs everywhere else.
        .config("spark.ui.showConsoleProgress", "true" if sys.stderr.isatty() else "false")
    )
    driver = settings.spark_jdbc_driver or (str(DEBIAN_JDBC_DRIVER) if DEBIAN_JDBC_DRIVER.exists() else "")
    if driver:
        builder = builder.config("spark.jars", driver)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
