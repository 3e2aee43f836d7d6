"""Which engine runs the pipeline's SQL (DuckDB or Spark), and what Spark needs to run it.

Plain Python, no Dagster: the CLI, the Dagster resources and the tests all read the engine
through `EngineSettings`, and dbt's profile reads the variables it exports.
"""
