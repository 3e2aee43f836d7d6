"""Identity resolution as Dagster assets: one step writes the `identity.*` tables.

How records are matched, guarded, clustered and given stable ids lives in `identity/`;
this module only decides when it runs and what the UI shows about it.
"""

from pathlib import Path

import dagster as dg

from identity.config import IdentityConfig, IdentityConfigError
from identity.evaluate import evaluate_against_truth
from identity.overrides import OverrideError, default_overrides_file
from identity.pipeline import resolve_identities
from identity.quality_report import (
    identity_quality,
    last_resolution_time,
    record_quality_history,
    write_quality_page,
)
from orchestration.metadata import to_metadata_value
from orchestration.resources import LandingZoneResource, WarehouseResource

OWNER = "team:data-platform"
STAGING_INPUTS = [
    dg.AssetKey(["staging", "stg_email__contacts"]),
    dg.AssetKey(["staging", "stg_billing__customers"]),
    dg.AssetKey(["staging", "stg_web__events"]),
    dg.AssetKey(["staging", "stg_support__tickets"]),
    dg.AssetKey(["staging", "stg_surveys__responses"]),
]
IDENTITY_TABLES = {
    "identity_records": "One normalised identity record per source record (email contact, billing customer, web identity, ticket requester, survey respondent).",
    "customer_map": "Every identity record mapped to its golden customer_id, with the rule or match weight that linked it.",
    "golden_customers": "One row per golden customer with surviving best values and where each came from.",
    "merge_log": "Every merge of two existing customers: surviving and retired id, the pair that caused it, when.",
    "refused_merges": "Every merge an over-merging guard refused, with the guard and the values involved.",
    "shared_values": "Identifier values several people share (found from the data), which no longer link records; masked, with the statistics that gave them away.",
    "model_parameters": "The last run's learnt match model: m, u and match weight of every comparison level (`cdp explain --model`).",
    "term_frequencies": "The kept model's term frequencies (comparison, value, tf): how common each name, city, email or phone is; an incremental run scores with them as the full run that trained the model did.",
}


class IdentityRunConfig(dg.Config):
    config_file: str | None = None
    """Optional TOML/YAML file with blocked values, cardinality limits and thresholds."""
    overrides_file: str | None = None
    """Stewards' reviewable overrides CSV (default: $CDP_IDENTITY_OVERRIDES or
    identity_overrides.csv next to the warehouse)."""
    full_identity: bool = False
    """Retrain the match model and re-resolve every record (`cdp run --full-identity`);
    otherwise the run is incremental while the model is younger than
    `full_identity_every_days` (identity/incremental.py)."""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key=["identity", name],
            description=description,
            deps=STAGING_INPUTS,
            group_name="identity",
            kinds={"python", "duckdb"},
            owners=[OWNER],
            metadata={"dagster/table_name": f"identity.{name}"},
        )
        for name, description in IDENTITY_TABLES.items()
    ],
    name="resolve_identities",
    retry_policy=dg.RetryPolicy(max_retries=1, delay=15),
)
def identity_assets(
    context: dg.AssetExecutionContext,
    config: IdentityRunConfig,
    warehouse: WarehouseResource,
    landing: LandingZoneResource,
):
    """Match email, billing and web identities into golden customers with stable ids."""
    # A wrong setting or override fails the same way on a retry: the step fails at once,
    # naming the file and what to fix, instead of waiting for the retry policy's second try.
    try:
        identity_config = (
            IdentityConfig.from_file(Path(config.config_file))
            if config.config_file
            else IdentityConfig()
        )
    except IdentityConfigError as exc:
        raise dg.Failure(description=f"Identity settings: {exc}", allow_retries=False) from None
    linkage_engine, scratch = _linkage_engine(context, warehouse)
    with warehouse.connect(context.log) as con:
        try:
            summary = resolve_identities(
                con,
                identity_config,
                overrides_file=Path(config.overrides_file)
                if config.overrides_file
                else default_overrides_file(warehouse.base_file),
                full_identity=True if config.full_identity else None,
                linkage_engine=linkage_engine,
                engine_scratch_dir=scratch,
            )
        except OverrideError as exc:
            raise dg.Failure(description=f"Steward overrides: {exc}", allow_retries=False) from None
        metadata = summary.to_metadata()
        truth = landing.root / "truth.csv"
        evaluation = None
        if truth.exists():
            # the evidence ceiling is a property of the records, not of the resolution: a
            # full run reports it, a nightly one skips its cost (it grows with the history)
            evaluation = evaluate_against_truth(con, truth, evidence_ceiling=summary.mode == "full")
            context.log.info(f"Accuracy against {truth}:\n{evaluation.format()}")
        counts = {
            name: con.execute(f"select count(*) from identity.{name}").fetchone()[0]
            for name in IDENTITY_TABLES
        }
        warehouse.hand_off(con, [f"identity.{name}" for name in IDENTITY_TABLES], context.log)
    if linkage_engine is None:
        context.log.info(f"Identity resolution {warehouse.where_steps_run()}")
    else:
        context.log.info(
            f"Identity linkage (blocking, comparison, scoring, components) ran on "
            f"{warehouse.engine.describe()}; normalisation, stable ids, logs and golden "
            f"records on the local DuckDB step store; identity.* handed to Spark under "
            f"{warehouse.engine.handoff_root}"
        )
    context.log.info(
        f"{metadata.get('records_in')} identity records -> {metadata.get('customers_out')} golden customers "
        f"({summary.mode} run: {summary.records_reclustered} records re-clustered)"
    )
    for name in IDENTITY_TABLES:
        md = {"dagster/row_count": dg.MetadataValue.int(counts[name])}
        if name == "golden_customers":
            md.update({k: to_metadata_value(v) for k, v in metadata.items()})
            if evaluation is not None:
                md.update(
                    {
                        "accuracy/precision": dg.MetadataValue.float(
                            round(evaluation.precision, 5)
                        ),
                        "accuracy/recall": dg.MetadataValue.float(round(evaluation.recall, 5)),
                        "accuracy/f1": dg.MetadataValue.float(round(evaluation.f1, 5)),
                        "accuracy/over_merged_customers": dg.MetadataValue.int(
                            evaluation.over_merged_clusters
                        ),
                        "accuracy/coverage": dg.MetadataValue.float(round(evaluation.coverage, 5)),
                    }
                )
        yield dg.MaterializeResult(asset_key=["identity", name], metadata=md)


def _linkage_engine(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """With CDP_ENGINE=spark: the run's Spark session as the engine that links the records
    (a full resolution every night) and the folder the records cross in; else (None, None)."""
    settings = warehouse.engine
    if not settings.is_spark:
        return None, None
    from warehouse_engine.spark_session import pipeline_spark_session
    from warehouse_engine.sql_engines import SparkEngine

    context.log.info(
        f"Identity links records on {settings.describe()} (full resolution: the incremental "
        "nightly run is DuckDB-only)"
    )
    return SparkEngine(pipeline_spark_session(settings)), settings.spark_warehouse / "scratch"


@dg.asset(
    key=["identity", "identity_quality"],
    deps=[dg.AssetKey(["identity", name]) for name in IDENTITY_TABLES],
    group_name="identity",
    kinds={"python", "duckdb", "html"},
    owners=[OWNER],
    description="Identity QA for stewards: cluster sizes, the largest customers and their "
    "evidence, near-merges the guards refused, merges and splits per run, records by match "
    "rule (values masked). Also an offline page, identity_quality.html, in the Data Docs folder.",
)
def identity_quality_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Figures from the identity tables; the how lives in identity/quality_report.py."""
    with warehouse.connect(context.log) as con:
        resolved_at = last_resolution_time(con)
        if resolved_at is not None:
            record_quality_history(con, resolved_at)
        quality = identity_quality(con, resolved_at)
    page = write_quality_page(quality, warehouse.quality_docs_dir)
    metadata = {k: to_metadata_value(v) for k, v in quality.to_metadata().items()}
    metadata["page"] = dg.MetadataValue.path(str(page))
    return dg.MaterializeResult(metadata=metadata)
