"""Ticket requesters and survey respondents as identity records (issue 12): one record per
ticket or response that carries a usable email or phone, none for anonymous ones, and the
first three sources resolve alone when the experience staging models do not exist."""

from __future__ import annotations

import duckdb
import pytest

from identity.records import SOURCE_TABLE, create_source_table

EMAIL_SOURCES_DDL = """
create schema staging;
create table staging.stg_email__contacts (
    contact_id varchar, email varchar, first_name varchar, last_name varchar, phone varchar,
    city varchar, country varchar, is_subscribed boolean, created_at timestamp, updated_at timestamp);
create table staging.stg_billing__customers (
    customer_id varchar, user_id varchar, email varchar, name varchar, phone varchar,
    address_line1 varchar, address_city varchar, address_postal_code varchar,
    address_country varchar, is_deleted boolean, created_at timestamp, updated_at timestamp);
create table staging.stg_web__events (
    message_id varchar, anonymous_id varchar, user_id varchar, trait_email varchar,
    trait_first_name varchar, trait_last_name varchar, trait_name varchar, trait_phone varchar,
    occurred_at timestamp);
insert into staging.stg_email__contacts values
    ('c1', 'ada@lovelace.io', 'Ada', 'Lovelace', null, null, 'GB', true,
     '2026-09-01', '2026-09-01');
"""

EXPERIENCE_DDL = """
create table staging.stg_support__tickets (
    ticket_id varchar, requester_email varchar, requester_name varchar, requester_phone varchar,
    created_at timestamp, updated_at timestamp);
create table staging.stg_surveys__responses (
    response_id varchar, respondent_email varchar, submitted_at timestamp);
insert into staging.stg_support__tickets values
    ('t-email', 'ada@lovelace.io', 'Ada Lovelace', null, '2026-10-01', '2026-10-02'),
    ('t-phone', null, 'Ada Lovelace', '+44 20 7946 0000', '2026-10-01', '2026-10-01'),
    ('t-work', 'ada@analytical-engines.co.uk', 'Ada L.', '020 7946 0000', '2026-10-01', '2026-10-01'),
    ('t-visitor', null, 'Visitor 0042', null, '2026-10-01', '2026-10-01'),
    ('t-junk', 'n/a', 'Someone', 'none', '2026-10-01', '2026-10-01');
insert into staging.stg_surveys__responses values
    ('r-named', 'ada@lovelace.io', '2026-10-03'),
    ('r-anonymous', null, '2026-10-03'),
    ('r-junk', 'no email', '2026-10-03');
"""


def read_source_records(con: duckdb.DuckDBPyConnection):
    create_source_table(con)
    return con.sql(f"select * from {SOURCE_TABLE}").df()


@pytest.fixture
def con():
    connection = duckdb.connect(":memory:")
    connection.execute(EMAIL_SOURCES_DDL)
    yield connection
    connection.close()


def test_requesters_and_respondents_with_an_identifier_become_records(con):
    con.execute(EXPERIENCE_DDL)
    records = read_source_records(con)
    experience = records[records.source_system.isin(["support", "survey"])]
    assert sorted(zip(experience.source_system, experience.source_record_id, strict=True)) == [
        ("support", "t-email"),
        ("support", "t-phone"),
        ("support", "t-work"),
        ("survey", "r-named"),
    ]
    phone_only = experience[experience.source_record_id == "t-phone"].iloc[0]
    assert (phone_only.full_name, phone_only.phone, phone_only.email) == (
        "Ada Lovelace",
        "+44 20 7946 0000",
        None,
    )
    assert phone_only.updated_at == phone_only.created_at


def test_without_the_experience_models_the_other_sources_still_resolve(con):
    records = read_source_records(con)
    assert list(zip(records.source_system, records.source_record_id, strict=True)) == [
        ("email", "c1")
    ]
