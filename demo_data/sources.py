"""Row synthesis for the six landing tables, driven by one synthetic population.

Each `build_*` function returns the table's rows as an Arrow table in contract column
names plus the delivery day (`_dt`), and the records the truth file needs. Everything is
vectorised over numpy/Arrow arrays: a 1M-customer, 30-day run stays within minutes.

Delivery semantics follow docs/landing-contract.md: entity tables are change exports
(historic records arrive in the first day's full export, later changes re-appear with a
newer `updated_at`); event tables are at-least-once (re-deliveries of the same id in the
same or a later day) and late (event time up to 7 days before the `dt` folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo_data import behaviour as behaviour
from demo_data import vocabulary as vocab
from demo_data.habits import (
    full_names,
    misspell_domains,
    national_phone_mask,
    record_last_idx,
    swap_name_fields,
    with_middle_initials,
)
from demo_data.people import (
    CITIES,
    COUNTRY_CODES,
    CURRENCY_OF_COUNTRY,
    Population,
    render_email,
    render_phone,
    render_street,
    shows_phone,
    stream_rng,
    uses_work_email,
)
from demo_data.strings import (
    TS_MILLIS_OFFSET,
    TS_MILLIS_Z,
    TS_NAIVE_SPACE,
    TS_NAIVE_T,
    TS_OFFSET,
    TS_PLUS_ZERO,
    TS_Z,
    assemble,
    concat,
    digit_strings,
    format_timestamps,
    json_string,
    null_where,
    prefixed_ids,
    take,
    uuid_strings,
    where,
)
from demo_data.writer import DELIVERY_DAY_COLUMN
from ingestion.contract import EMAIL_EVENT_TYPES, SUBSCRIPTION_STATUSES

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
HISTORY_DAYS = 3 * 365
MAX_LATENESS_DAYS = 7
EVENT_DAY_COLUMN = "_event_day"


@dataclass(frozen=True)
class Timeline:
    """The delivery window: `days` landing days starting at `start_day` (days since epoch)."""

    start_day: int
    days: int

    @property
    def last_day(self) -> int:
        return self.start_day + self.days - 1

    @property
    def start_ms(self) -> int:
        return self.start_day * DAY_MS

    @property
    def end_ms(self) -> int:
        return (self.last_day + 1) * DAY_MS

    def window_fraction(self) -> float:
        """Scale for per-window probabilities, calibrated on a 30-day window."""
        return min(1.0, self.days / 30)


def _render_times(
    ms: np.ndarray, rng: np.random.Generator, weights: dict[int, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row timestamp style codes and offset choices, drawn once per row."""
    codes = np.array(list(weights))
    p = np.array(list(weights.values()))
    return codes[rng.choice(len(codes), size=len(ms), p=p / p.sum())], rng.integers(0, 7, len(ms))


def _format(ms: np.ndarray, styles: np.ndarray, offsets: np.ndarray) -> pa.Array:
    return format_timestamps(ms, styles, offsets)


def _created_times(
    n: int, timeline: Timeline, rng: np.random.Generator, p_in_window: float
) -> np.ndarray:
    """Creation times: most records predate the window, some are created during it."""
    in_window = rng.random(n) < p_in_window
    history = (
        timeline.start_ms - (rng.random(n) ** 0.7 * HISTORY_DAYS * DAY_MS).astype(np.int64) - 1
    )
    fresh = timeline.start_ms + (rng.random(n) * (timeline.end_ms - timeline.start_ms)).astype(
        np.int64
    )
    return np.where(in_window, fresh, history)


def _entity_delivery_day(updated_ms: np.ndarray, timeline: Timeline) -> np.ndarray:
    """Changes before the window arrive in the first day's full export."""
    return np.maximum(updated_ms // DAY_MS, timeline.start_day).astype(np.int32)


def _event_delivery_day(
    event_ms: np.ndarray, timeline: Timeline, rng: np.random.Generator, p_late: float
) -> np.ndarray:
    """Most events land the day they happen; some arrive 1-7 days late."""
    late = rng.random(len(event_ms)) < p_late
    lag = np.where(late, rng.integers(1, MAX_LATENESS_DAYS + 1, len(event_ms)), 0)
    return (event_ms // DAY_MS + lag).astype(np.int32)


def _redeliveries(
    table: pa.Table, rng: np.random.Generator, p_duplicate: float, timeline: Timeline
) -> pa.Table:
    """At-least-once delivery: copy some rows into the same or a later day's files.

    The table carries `_event_day` (the day the event happened) so that a copy never
    lands more than 7 days after its event; the column is dropped here.
    """
    n = table.num_rows
    picked = np.flatnonzero(rng.random(n) < p_duplicate)
    copies = table.take(pa.array(picked))
    days = copies.column(DELIVERY_DAY_COLUMN).to_numpy()
    latest = copies.column(EVENT_DAY_COLUMN).to_numpy() + MAX_LATENESS_DAYS
    shift = rng.choice([0, 0, 1, 2, 3], size=len(picked))
    days = np.minimum(np.minimum(days + shift, latest), timeline.last_day).astype(np.int32)
    copies = _set(copies, DELIVERY_DAY_COLUMN, pa.array(days, pa.int32()))
    return pa.concat_tables([table, copies]).drop_columns([EVENT_DAY_COLUMN])


def _set(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _mask(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) < p


def _within_window(table: pa.Table, timeline: Timeline) -> pa.Table:
    days = table.column(DELIVERY_DAY_COLUMN).to_numpy()
    return table.filter(pa.array((days >= timeline.start_day) & (days <= timeline.last_day)))


# --- email/contacts ---------------------------------------------------------------------


@dataclass
class ContactRecords:
    person: np.ndarray
    contact_id: pa.Array
    created_ms: np.ndarray
    subscribed: np.ndarray
    rows: pa.Table  # base rows, timestamps still as epoch ms


def build_contact_records(population: Population, timeline: Timeline, seed: int) -> ContactRecords:
    """One ESP contact per subscribed address: most people once, some with a second (work) address."""
    rng = stream_rng(seed, "email/contacts")
    n_people = population.size
    has_contact = rng.random(n_people) < 0.82
    has_work = population.work_email.is_valid().to_numpy(zero_copy_only=False)
    habits = population.habits
    second = has_contact & has_work & (rng.random(n_people) < habits.work_second_contact)
    person = np.concatenate([np.flatnonzero(has_contact), np.flatnonzero(second)])
    is_work = np.concatenate([np.zeros(has_contact.sum(), bool), np.ones(second.sum(), bool)])
    order = rng.permutation(len(person))
    person, is_work = person[order], is_work[order]
    n = len(person)

    habit_rng = stream_rng(seed, "habits/email/contacts")
    canonical = where(
        is_work,
        population.work_email.take(pa.array(person)),
        population.personal_email.take(pa.array(person)),
    )
    canonical = misspell_domains(canonical, habit_rng, habits.misspelt_domain)
    email = render_email(canonical, ~is_work & population.personal_is_gmail[person], rng)
    junk = _mask(n, 0.004, rng)
    email = where(junk, take(vocab.JUNK_EMAILS, rng.integers(0, len(vocab.JUNK_EMAILS), n)), email)

    first = null_where(
        _mask(n, 0.08, rng),
        population.first_names.render(population.first_idx[person], rng, 0.12, 0.03),
    )
    last = null_where(
        _mask(n, 0.10, rng),
        population.last_names.render(
            record_last_idx(population, person, habit_rng), rng, 0.0, 0.03
        ),
    )
    first = with_middle_initials(first, habit_rng, habits.middle_initial)
    first, last = swap_name_fields(first, last, habit_rng, habits.last_first / 2)
    national = national_phone_mask(population, person, habit_rng, habits.national_phone)
    phone = null_where(
        ~shows_phone(population, person, 0.35, is_work, rng),
        render_phone(population, person, rng, national),
    )
    city = take(CITIES, population.city_idx[person])
    case = rng.random(n)
    city = where(case < 0.03, pc.utf8_upper(city), where(case < 0.06, pc.utf8_lower(city), city))
    city = null_where(_mask(n, 0.4, rng), city)
    country = take(COUNTRY_CODES, population.country_idx[person])
    country = null_where(
        _mask(n, 0.3, rng), where(_mask(n, 0.1, rng), pc.utf8_lower(country), country)
    )
    country = where(national, take(COUNTRY_CODES, population.country_idx[person]), country)
    subscribed = rng.random(n) < 0.92
    created = _created_times(n, timeline, rng, p_in_window=0.12)
    touched_later = (created < timeline.start_ms) & _mask(n, 0.3, rng)
    updated = np.where(
        touched_later,
        created + ((timeline.start_ms - created) * rng.random(n)).astype(np.int64),
        created,
    )
    contact_id = prefixed_ids("", np.arange(n), seed ^ 0xC0117AC7, alphabet="hex")
    rows = pa.table(
        {
            "contact_id": contact_id,
            "email": email,
            "first_name": first,
            "last_name": last,
            "phone": phone,
            "city": city,
            "country": country,
            "subscribed": pa.array(subscribed),
            "created_at": pa.array(created),
            "updated_at": pa.array(updated),
        }
    )
    return ContactRecords(
        person=person, contact_id=contact_id, created_ms=created, subscribed=subscribed, rows=rows
    )


def build_contacts_table(
    contacts: ContactRecords,
    population: Population,
    timeline: Timeline,
    seed: int,
    unsubscribes: tuple[np.ndarray, np.ndarray],
) -> pa.Table:
    """The change export: the base rows plus a new row for every change during the window."""
    rng = stream_rng(seed, "email/contacts/changes")
    base = contacts.rows
    n = base.num_rows
    created = contacts.created_ms
    changed = np.flatnonzero(_mask(n, 0.06 * timeline.window_fraction(), rng))
    change_from = np.maximum(created[changed], timeline.start_ms)
    change_ms = change_from + ((timeline.end_ms - change_from) * rng.random(len(changed))).astype(
        np.int64
    )
    change_kind = rng.integers(0, 3, len(changed))
    changes = base.take(pa.array(changed))
    flipped = pc.invert(changes.column("subscribed"))
    changes = _set(
        changes,
        "subscribed",
        pc.if_else(pa.array(change_kind == 0), flipped, changes.column("subscribed")),
    )
    person = contacts.person[changed]
    new_phone = render_phone(population, person, rng)
    changes = _set(changes, "phone", where(change_kind == 1, new_phone, changes.column("phone")))
    canonical_first = population.first_names.render(population.first_idx[person], rng, 0.0, 0.0)
    changes = _set(
        changes,
        "first_name",
        where(change_kind == 2, canonical_first, changes.column("first_name")),
    )
    changes = _set(changes, "updated_at", pa.array(change_ms))

    unsub_contact, unsub_ms = unsubscribes
    unsub_rows = base.take(pa.array(unsub_contact))
    unsub_rows = _set(unsub_rows, "subscribed", pa.array(np.zeros(len(unsub_contact), bool)))
    unsub_rows = _set(
        unsub_rows,
        "updated_at",
        pa.array(unsub_ms + rng.integers(MINUTE_MS, 6 * HOUR_MS, len(unsub_ms))),
    )

    rows = pa.concat_tables(
        [base, changes, unsub_rows, _surname_change_rows(contacts, population, timeline, seed)]
    )
    created_all = rows.column("created_at").to_numpy()
    updated_all = rows.column("updated_at").to_numpy()
    keep = updated_all < timeline.end_ms
    rows = rows.filter(pa.array(keep))
    created_all, updated_all = created_all[keep], updated_all[keep]
    styles, offsets = _render_times(
        updated_all, rng, {TS_NAIVE_SPACE: 0.55, TS_Z: 0.3, TS_OFFSET: 0.1, TS_NAIVE_T: 0.05}
    )
    rows = _set(rows, "created_at", _format(created_all, styles, offsets))
    rows = _set(rows, "updated_at", _format(updated_all, styles, offsets))
    rows = rows.append_column(
        DELIVERY_DAY_COLUMN, pa.array(_entity_delivery_day(updated_all, timeline))
    )
    return rows


def _surname_change_rows(
    contacts: ContactRecords, population: Population, timeline: Timeline, seed: int
) -> pa.Table:
    """Contacts of people who changed their surname, updated to the new one during the
    window (a third of them): the same contact carries both names over time."""
    rng = stream_rng(seed, "habits/email/contacts/surname-changes")
    base = contacts.rows
    changed = population.maiden_last_idx[contacts.person] >= 0
    rows = np.flatnonzero(changed & (rng.random(base.num_rows) < 1 / 3))
    person = contacts.person[rows]
    change_from = np.maximum(contacts.created_ms[rows], timeline.start_ms)
    change_ms = change_from + ((timeline.end_ms - change_from) * rng.random(len(rows))).astype(
        np.int64
    )
    updated = base.take(pa.array(rows))
    new_last = population.last_names.render(population.last_idx[person], rng, 0.0, 0.0)
    updated = _set(updated, "last_name", new_last)
    return _set(updated, "updated_at", pa.array(change_ms))


# --- email/events -----------------------------------------------------------------------


def build_email_events(
    contacts: ContactRecords, timeline: Timeline, seed: int
) -> tuple[pa.Table, tuple[np.ndarray, np.ndarray]]:
    """Campaign funnels: sent -> delivered/bounce -> open -> click, unsubscribes, complaints.

    Returns the table and the (contact index, time) of every unsubscribe, which the
    contacts export then reflects as a change.
    """
    rng = stream_rng(seed, "email/events")
    n_campaigns = max(2, timeline.days // 3)
    send_day = timeline.start_day + np.linspace(0, timeline.days - 1, n_campaigns).round().astype(
        np.int64
    )
    send_ms = send_day * DAY_MS + 9 * HOUR_MS + rng.integers(0, 6 * HOUR_MS, n_campaigns)
    campaign_names = [
        f"{vocab.CAMPAIGN_NAMES[i % len(vocab.CAMPAIGN_NAMES)]} #{i + 1}"
        for i in range(n_campaigns)
    ]
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("contact", "campaign", "kind", "ms", "link")
    }

    def emit(contact, campaign, kind, ms, link=None):
        parts["contact"].append(contact)
        parts["campaign"].append(campaign)
        parts["kind"].append(np.full(len(contact), kind, np.int8))
        parts["ms"].append(ms)
        parts["link"].append(np.full(len(contact), -1, np.int64) if link is None else link)

    unsub_contact, unsub_ms = [], []
    for c in range(n_campaigns):
        eligible = (contacts.created_ms < send_ms[c]) & contacts.subscribed
        audience = np.flatnonzero(eligible & (rng.random(len(eligible)) < 0.2))
        k = len(audience)
        campaign = np.full(k, c, np.int32)
        sent = send_ms[c] + rng.integers(0, 2 * HOUR_MS, k)
        emit(audience, campaign, 0, sent)
        bounced = rng.random(k) < 0.02
        emit(
            audience[bounced],
            campaign[bounced],
            4,
            sent[bounced] + rng.integers(MINUTE_MS, 30 * MINUTE_MS, bounced.sum()),
        )
        d = ~bounced
        delivered_to, delivered_ms = (
            audience[d],
            sent[d] + rng.integers(1000, 5 * MINUTE_MS, d.sum()),
        )
        emit(delivered_to, campaign[d], 1, delivered_ms)
        m = len(delivered_to)
        opened = rng.random(m) < behaviour.open_probability(
            seed, contacts.person[delivered_to], 0.27
        )
        open_ms = delivered_ms[opened] + (rng.exponential(8 * HOUR_MS, opened.sum())).astype(
            np.int64
        )
        emit(delivered_to[opened], campaign[d][opened], 2, open_ms)
        again = rng.random(opened.sum()) < 0.15
        emit(
            delivered_to[opened][again],
            campaign[d][opened][again],
            2,
            open_ms[again] + rng.exponential(24 * HOUR_MS, again.sum()).astype(np.int64),
        )
        clicked = rng.random(opened.sum()) < 0.2
        emit(
            delivered_to[opened][clicked],
            campaign[d][opened][clicked],
            3,
            open_ms[clicked] + rng.integers(5_000, 10 * MINUTE_MS, clicked.sum()),
            rng.integers(0, len(vocab.CAMPAIGN_LINKS), clicked.sum()),
        )
        unsub = rng.random(m) < 0.008
        u_ms = delivered_ms[unsub] + rng.exponential(12 * HOUR_MS, unsub.sum()).astype(np.int64)
        emit(delivered_to[unsub], campaign[d][unsub], 5, u_ms)
        unsub_contact.append(delivered_to[unsub])
        unsub_ms.append(u_ms)
        spam = rng.random(m) < 0.001
        emit(
            delivered_to[spam],
            campaign[d][spam],
            6,
            delivered_ms[spam] + rng.exponential(12 * HOUR_MS, spam.sum()).astype(np.int64),
        )

    contact = np.concatenate(parts["contact"])
    campaign = np.concatenate(parts["campaign"])
    kind = np.concatenate(parts["kind"])
    ms = np.concatenate(parts["ms"])
    link = np.concatenate(parts["link"])
    happened = ms < timeline.end_ms
    contact, campaign, kind, ms, link = (
        contact[happened],
        campaign[happened],
        kind[happened],
        ms[happened],
        link[happened],
    )
    n = len(contact)
    styles, offsets = _render_times(ms, rng, {TS_Z: 0.7, TS_MILLIS_Z: 0.2, TS_OFFSET: 0.1})
    event_types = list(EMAIL_EVENT_TYPES)
    table = pa.table(
        {
            "event_id": prefixed_ids("evt_", np.arange(n), seed ^ 0xE7E7, alphabet="hex"),
            "contact_id": contacts.contact_id.take(pa.array(contact)),
            "campaign_id": concat("cmp_", digit_strings(campaign + 1, 4)),
            "campaign_name": take(campaign_names, campaign),
            "event_type": take(event_types, kind),
            "occurred_at": _format(ms, styles, offsets),
            "url": null_where(link < 0, take(vocab.CAMPAIGN_LINKS, np.maximum(link, 0))),
            DELIVERY_DAY_COLUMN: pa.array(_event_delivery_day(ms, timeline, rng, p_late=0.02)),
            EVENT_DAY_COLUMN: pa.array(ms // DAY_MS),
        }
    )
    table = _redeliveries(_within_window(table, timeline), rng, 0.01, timeline)
    unsubscribes = (np.concatenate(unsub_contact), np.concatenate(unsub_ms))
    in_window = unsubscribes[1] < timeline.end_ms - 6 * HOUR_MS
    return table, (unsubscribes[0][in_window], unsubscribes[1][in_window])


# --- billing/customers ------------------------------------------------------------------


@dataclass
class BillingRecords:
    person: np.ndarray
    customer_id: pa.Array
    user_id: pa.Array
    created_ms: np.ndarray
    country_idx: np.ndarray
    deleted: np.ndarray


def build_billing_customers(
    population: Population, timeline: Timeline, seed: int
) -> tuple[BillingRecords, pa.Table]:
    """Stripe-like customers: free-text names ("LAST, FIRST"), optional contact fields."""
    rng = stream_rng(seed, "billing/customers")
    has_billing = rng.random(population.size) < 0.55
    payers = np.flatnonzero(has_billing)
    duplicate_accounts = payers[rng.random(len(payers)) < 0.02]
    person = np.concatenate([payers, duplicate_accounts])
    person = person[rng.permutation(len(person))]
    n = len(person)
    customer_id = prefixed_ids("cus_", np.arange(n), seed ^ 0xB111)
    user_id = concat("usr_", digit_strings(100_000 + rng.permutation(n), 7))
    user_id = null_where(_mask(n, 0.08, rng), user_id)

    has_work = population.work_email.is_valid().to_numpy(zero_copy_only=False)[person]
    use_work = has_work & uses_work_email(population, person, 0.4, rng)
    canonical = where(
        use_work,
        population.work_email.take(pa.array(person)),
        population.personal_email.take(pa.array(person)),
    )
    habits = population.habits
    habit_rng = stream_rng(seed, "habits/billing/customers")
    canonical = misspell_domains(canonical, habit_rng, habits.misspelt_domain)
    email = render_email(canonical, ~use_work & population.personal_is_gmail[person], rng)
    email = where(
        _mask(n, 0.005, rng),
        take(vocab.JUNK_EMAILS, rng.integers(0, len(vocab.JUNK_EMAILS), n)),
        email,
    )
    email = null_where(_mask(n, 0.03, rng), email)

    first = population.first_names.render(population.first_idx[person], rng, 0.1, 0.02)
    last = population.last_names.render(
        record_last_idx(population, person, habit_rng), rng, 0.0, 0.02
    )
    first = with_middle_initials(first, habit_rng, habits.middle_initial)
    style = rng.random(n)
    name = full_names(first, last, habit_rng, habits.last_first)
    name = where(style < 0.06, concat(pc.utf8_upper(last), ", ", pc.utf8_upper(first)), name)
    name = where((style >= 0.06) & (style < 0.12), concat(last, ", ", first), name)
    name = where((style >= 0.12) & (style < 0.16), pc.utf8_lower(name), name)
    name = null_where((style >= 0.16) & (style < 0.18), name)

    national = national_phone_mask(population, person, habit_rng, habits.national_phone)
    phone = null_where(
        ~shows_phone(population, person, 0.5, use_work, rng),
        render_phone(population, person, rng, national),
    )
    no_address = ~_mask(n, 0.65, rng)
    line1 = null_where(no_address, render_street(population, person, rng))
    city = null_where(no_address, take(CITIES, population.city_idx[person]))
    postal = null_where(no_address, population.postal_code.take(pa.array(person)))
    country_idx = population.country_idx[person]
    country = null_where(
        no_address & _mask(n, 0.5, rng) & ~national, take(COUNTRY_CODES, country_idx)
    )
    created = _created_times(n, timeline, rng, p_in_window=0.15)
    deleted = np.zeros(n, bool)
    created = behaviour.engaged_open_accounts_in_window(
        seed, person, created, timeline.start_ms, timeline.end_ms, 0.15
    )
    base = pa.table(
        {
            "customer_id": customer_id,
            "user_id": user_id,
            "email": email,
            "name": name,
            "phone": phone,
            "address_line1": line1,
            "address_city": city,
            "address_postal_code": postal,
            "address_country": country,
            "created_at": pa.array(created),
            "updated_at": pa.array(created),
            "deleted": pa.array(deleted),
        }
    )

    changed = np.flatnonzero(_mask(n, 0.05 * timeline.window_fraction(), rng))
    change_from = np.maximum(created[changed], timeline.start_ms)
    change_ms = change_from + ((timeline.end_ms - change_from) * rng.random(len(changed))).astype(
        np.int64
    )
    kind = rng.integers(0, 4, len(changed))  # 0 email, 1 address, 2 phone, 3 deleted
    changes = base.take(pa.array(changed))
    p = person[changed]
    new_email = render_email(
        population.personal_email.take(pa.array(p)), population.personal_is_gmail[p], rng
    )
    changes = _set(changes, "email", where(kind == 0, new_email, changes.column("email")))
    changes = _set(
        changes,
        "address_line1",
        where(kind == 1, render_street(population, p, rng), changes.column("address_line1")),
    )
    changes = _set(
        changes,
        "address_city",
        where(kind == 1, take(CITIES, population.city_idx[p]), changes.column("address_city")),
    )
    changes = _set(
        changes,
        "address_postal_code",
        where(
            kind == 1,
            population.postal_code.take(pa.array(p)),
            changes.column("address_postal_code"),
        ),
    )
    changes = _set(
        changes,
        "phone",
        where(kind == 2, render_phone(population, p, rng), changes.column("phone")),
    )
    is_deleted = (kind == 3) & _mask(len(changed), 0.4, rng)
    changes = _set(changes, "deleted", pa.array(is_deleted))
    changes = _set(changes, "updated_at", pa.array(change_ms))
    deleted[changed[is_deleted]] = True

    rows = pa.concat_tables([base, changes])
    created_all = rows.column("created_at").to_numpy()
    updated_all = rows.column("updated_at").to_numpy()
    styles, offsets = _render_times(
        updated_all, rng, {TS_Z: 0.7, TS_PLUS_ZERO: 0.2, TS_NAIVE_T: 0.1}
    )
    rows = _set(rows, "created_at", _format(created_all, styles, offsets))
    rows = _set(rows, "updated_at", _format(updated_all, styles, offsets))
    rows = rows.append_column(
        DELIVERY_DAY_COLUMN, pa.array(_entity_delivery_day(updated_all, timeline))
    )
    records = BillingRecords(
        person=person,
        customer_id=customer_id,
        user_id=user_id,
        created_ms=created,
        country_idx=country_idx,
        deleted=deleted,
    )
    return records, rows


# --- billing/subscriptions and billing/invoices -------------------------------------------

SUB_STATUSES = list(SUBSCRIPTION_STATUSES)  # the order TRIALING..UNPAID below indexes
TRIALING, ACTIVE, PAST_DUE, CANCELED, UNPAID = range(5)
TRIAL_MS = 14 * DAY_MS


def build_subscriptions_and_invoices(
    billing: BillingRecords, timeline: Timeline, seed: int
) -> tuple[pa.Table, pa.Table]:
    """Subscriptions with plan changes and churn, and the invoices their billing cycles raise."""
    rng = stream_rng(seed, "billing/subscriptions")
    nb = len(billing.person)
    owner = np.flatnonzero(_mask(nb, 0.8, rng) & ~billing.deleted)
    n = len(owner)
    plan = rng.choice(len(vocab.PLANS), size=n, p=np.array(vocab.PLAN_WEIGHTS))
    annual = _mask(n, 0.15, rng)
    price = np.array([p[1] for p in vocab.PLANS], np.int64)
    country = billing.country_idx[owner]
    currency_idx = np.where(
        (np.array(COUNTRY_CODES)[country] == "US") | _mask(n, 0.35, rng), 0, country
    )
    currency_names = CURRENCY_OF_COUNTRY  # index 0 is US -> usd
    started = billing.created_ms[owner] + rng.exponential(3 * DAY_MS, n).astype(np.int64)
    exists = started < timeline.end_ms
    owner, plan, annual, currency_idx, started = (
        owner[exists],
        plan[exists],
        annual[exists],
        currency_idx[exists],
        started[exists],
    )
    n = len(owner)
    historic = started < timeline.start_ms

    status = np.where(historic, ACTIVE, np.where(_mask(n, 0.4, rng), TRIALING, ACTIVE))
    roll = rng.random(n)
    status = np.where(historic & (roll < 0.10), CANCELED, status)
    status = np.where(historic & (roll >= 0.10) & (roll < 0.13), PAST_DUE, status)
    status = np.where(
        historic & (started > timeline.start_ms - TRIAL_MS) & (roll >= 0.13) & (roll < 0.5),
        TRIALING,
        status,
    )
    canceled_at = np.where(
        status == CANCELED,
        started + ((timeline.start_ms - started) * rng.random(n)).astype(np.int64),
        -1,
    )
    updated = np.where(status == CANCELED, canceled_at, started)

    # One change per subscription at most during the window.
    change = np.full(n, -1)
    wf = timeline.window_fraction()
    r = rng.random(n)
    change = np.where((status == ACTIVE) & (r < 0.05 * wf) & (plan < 3), 0, change)  # upgrade
    change = np.where(
        (status == ACTIVE) & (r >= 0.05 * wf) & (r < 0.08 * wf) & (plan > 0), 1, change
    )  # downgrade
    change = np.where((status == CANCELED) & (r < 0.15 * wf), 3, change)  # reactivate
    change = np.where((status == TRIALING) & (r < 0.7), 4, change)  # converts
    change = np.where((status == TRIALING) & (r >= 0.7) & (r < 0.9), 2, change)  # cancels in trial
    change = np.where((status == PAST_DUE) & (r < 0.5), 4, change)  # pays
    change = np.where((status == PAST_DUE) & (r >= 0.5) & (r < 0.7), 5, change)  # unpaid
    change_from = np.maximum(started, timeline.start_ms)
    change_ms = change_from + ((timeline.end_ms - change_from) * rng.random(n)).astype(np.int64)
    change_ms = np.where((status == TRIALING) & (change == 4), started + TRIAL_MS, change_ms)
    change, change_ms = behaviour.plant_engagement_churn(  # cancel: engaged people stay longer
        seed,
        billing.person[owner],
        (status == ACTIVE) & (change == -1),
        change,
        change_ms,
        change_from,
        timeline.end_ms,
        stream_rng(seed, "behaviour/churn"),
        cancel_code=2,
    )
    change = np.where(change_ms < timeline.end_ms, change, -1)

    new_plan = np.where(change == 0, plan + 1, np.where(change == 1, plan - 1, plan))
    new_status = np.select(
        [change == 2, change == 3, change == 4, change == 5],
        [CANCELED, ACTIVE, ACTIVE, UNPAID],
        status,
    )
    new_canceled = np.where(change == 2, change_ms, np.where(change == 3, -1, canceled_at))

    def mrr(p):
        return np.where(annual, price[p] * 10 // 12, price[p])

    subscription_id = prefixed_ids("sub_", np.arange(n), seed ^ 0x5B5B)
    changed = np.flatnonzero(change >= 0)
    sub_rows = {
        "subscription_id": pa.concat_arrays(
            [subscription_id, subscription_id.take(pa.array(changed))]
        ),
        "customer_id": billing.customer_id.take(pa.array(np.concatenate([owner, owner[changed]]))),
        "plan": take([p[0] for p in vocab.PLANS], np.concatenate([plan, new_plan[changed]])),
        "status": take(SUB_STATUSES, np.concatenate([status, new_status[changed]])),
        "mrr_cents": pa.array(np.concatenate([mrr(plan), mrr(new_plan)[changed]])),
        "currency": take(currency_names, np.concatenate([currency_idx, currency_idx[changed]])),
    }
    started_all = np.concatenate([started, started[changed]])
    updated_all = np.concatenate([updated, change_ms[changed]])
    canceled_all = np.concatenate([canceled_at, new_canceled[changed]])
    styles, offsets = _render_times(
        updated_all, rng, {TS_Z: 0.75, TS_PLUS_ZERO: 0.15, TS_NAIVE_T: 0.1}
    )
    sub_rows["started_at"] = _format(started_all, styles, offsets)
    sub_rows["updated_at"] = _format(updated_all, styles, offsets)
    sub_rows["canceled_at"] = null_where(
        canceled_all < 0, _format(np.maximum(canceled_all, 0), styles, offsets)
    )
    sub_rows[DELIVERY_DAY_COLUMN] = pa.array(_entity_delivery_day(updated_all, timeline))
    subscriptions = pa.table(sub_rows)

    history = SubscriptionHistory(
        owner=owner,
        subscription_id=subscription_id,
        plan=plan,
        new_plan=new_plan,
        change=change,
        change_ms=change_ms,
        annual=annual,
        price=price,
        currency_idx=currency_idx,
        started=started,
        status=status,
        canceled_at=canceled_at,
    )
    invoices = _build_invoices(billing, history, timeline, seed)
    return subscriptions, invoices


@dataclass(frozen=True)
class SubscriptionHistory:
    """Every generated subscription, one array entry each, and its one change in the window:
    what the invoices are cut from (build_subscriptions_and_invoices fills it)."""

    owner: np.ndarray  # row in BillingRecords of the billing customer
    subscription_id: pa.Array
    plan: np.ndarray  # index into vocab.PLANS
    new_plan: np.ndarray  # plan after an upgrade/downgrade
    # The change in the window: -1 none, 0 upgrade, 1 downgrade, 2 cancel, 3 reactivate,
    # 4 trial converts / past-due pays, 5 becomes unpaid.
    change: np.ndarray
    change_ms: np.ndarray  # when it happens
    annual: np.ndarray  # billed yearly instead of monthly
    price: np.ndarray  # monthly price in cents of each plan (indexed by plan)
    currency_idx: np.ndarray
    started: np.ndarray  # started_at, epoch ms
    status: np.ndarray  # TRIALING..UNPAID
    canceled_at: np.ndarray  # epoch ms, -1 when not canceled


def _build_invoices(
    billing: BillingRecords, history: SubscriptionHistory, timeline: Timeline, seed: int
) -> pa.Table:
    """Cycle invoices (open -> paid, sometimes void/uncollectible, refunds) and one-off purchases."""
    (
        owner,
        subscription_id,
        plan,
        new_plan,
        change,
        change_ms,
        annual,
        price,
        currency_idx,
        started,
        status,
        canceled_at,
    ) = (
        history.owner,
        history.subscription_id,
        history.plan,
        history.new_plan,
        history.change,
        history.change_ms,
        history.annual,
        history.price,
        history.currency_idx,
        history.started,
        history.status,
        history.canceled_at,
    )
    rng = stream_rng(seed, "billing/invoices")
    period = np.where(annual, 365 * DAY_MS, 30 * DAY_MS)
    billing_from = np.where(status == TRIALING, started + TRIAL_MS, started)
    first_k = np.maximum(0, -(-(timeline.start_ms - billing_from) // period))
    stop = np.full(len(started), timeline.end_ms)
    stop = np.where(
        status == CANCELED,
        np.minimum(stop, np.where(change == 3, timeline.end_ms, canceled_at)),
        stop,
    )
    stop = np.where(change == 2, np.minimum(stop, change_ms), stop)
    stop = np.where(status == TRIALING, np.where(change == 4, stop, started), stop)
    last_k = np.where(stop > billing_from, (stop - 1 - billing_from) // period, -1)
    count = np.maximum(0, last_k - first_k + 1)
    sub = np.repeat(np.arange(len(started)), count)
    k = first_k[sub] + (np.arange(len(sub)) - np.repeat(np.cumsum(count) - count, count))
    cycle_ms = billing_from[sub] + k * period[sub]
    reactivated = (status[sub] == CANCELED) & (change[sub] == 3)
    valid = ~reactivated | (cycle_ms >= change_ms[sub])
    sub, cycle_ms = sub[valid], cycle_ms[valid]
    plan_now = np.where(
        (change[sub] <= 1) & (change[sub] >= 0) & (cycle_ms >= change_ms[sub]),
        new_plan[sub],
        plan[sub],
    )
    amount = np.where(annual[sub], price[plan_now] * 10, price[plan_now])
    plan_names = [
        f"{p[0]} ({'annual' if a else 'monthly'})" for p in vocab.PLANS for a in (False, True)
    ]
    product_idx = plan_now * 2 + annual[sub]

    # One-off purchases by billing customers.
    nb = len(billing.person)
    buyers = np.flatnonzero(_mask(nb, 0.3 * timeline.window_fraction(), rng))
    buy_from = np.maximum(billing.created_ms[buyers], timeline.start_ms)
    buy_ms = buy_from + ((timeline.end_ms - buy_from) * rng.random(len(buyers))).astype(np.int64)
    buyers, buy_ms = buyers[buy_ms < timeline.end_ms], buy_ms[buy_ms < timeline.end_ms]
    buyers, buy_ms = behaviour.add_repeat_purchases(
        seed, billing.person, buyers, buy_ms, timeline.end_ms, stream_rng(seed, "behaviour/repeat")
    )
    one_off = rng.integers(0, len(vocab.ONE_OFF_PRODUCTS), len(buyers))
    one_off_price = np.array([p[1] for p in vocab.ONE_OFF_PRODUCTS], np.int64)[one_off]
    buyer_currency = np.where(_mask(len(buyers), 0.7, rng), 0, billing.country_idx[buyers])

    n_cycle, n_one = len(sub), len(buyers)
    n = n_cycle + n_one
    customer = np.concatenate([owner[sub], buyers])
    created = np.concatenate([cycle_ms, buy_ms])
    amount = np.concatenate([amount, one_off_price])
    currency = np.concatenate([currency_idx[sub], buyer_currency])
    product = pa.concat_arrays(
        [take(plan_names, product_idx), take([p[0] for p in vocab.ONE_OFF_PRODUCTS], one_off)]
    )
    subscription = pa.concat_arrays(
        [subscription_id.take(pa.array(sub)), pa.nulls(n_one, pa.string())]
    )
    invoice_id = prefixed_ids("in_", np.arange(n), seed ^ 0x1A1A)

    outcome = rng.choice(
        4, size=n, p=[0.9, 0.06, 0.03, 0.01]
    )  # paid, stays open, uncollectible, void
    paid_ms = created + np.where(
        _mask(n, 0.8, rng),
        rng.integers(1000, 10 * MINUTE_MS, n),
        rng.integers(HOUR_MS, 4 * DAY_MS, n),
    )
    closed_ms = created + rng.integers(3 * DAY_MS, 10 * DAY_MS, n)
    refunded = (outcome == 0) & _mask(n, 0.03, rng)
    refund_ms = paid_ms + rng.integers(DAY_MS, 10 * DAY_MS, n)
    refund_amount = np.where(_mask(n, 0.7, rng), amount, amount // 2)
    drafted = _mask(n, 0.05, rng)

    # Rows: (invoice, version) -> status, paid, refunded, updated.
    versions = [
        (np.flatnonzero(drafted), "draft", created - HOUR_MS, 0, 0, False),
        (np.arange(n), "open", created, 0, 0, False),
        (np.flatnonzero(outcome == 0), "paid", paid_ms, 1, 0, True),
        (np.flatnonzero(outcome == 2), "uncollectible", closed_ms, 0, 0, False),
        (np.flatnonzero(outcome == 3), "void", closed_ms, 0, 0, False),
        (np.flatnonzero(refunded), "paid", refund_ms, 1, 1, True),
    ]
    row = np.concatenate([v[0] for v in versions])
    status_codes = np.concatenate([np.full(len(v[0]), i, np.int8) for i, v in enumerate(versions)])
    status_text = take([v[1] for v in versions], status_codes)
    updated = np.concatenate([np.asarray(v[2])[v[0]] for v in versions])
    is_paid = np.concatenate([np.full(len(v[0]), bool(v[3])) for v in versions])
    is_refund = np.concatenate([np.full(len(v[0]), bool(v[4])) for v in versions])
    has_paid_at = np.concatenate([np.full(len(v[0]), v[5]) for v in versions])
    happened = updated < timeline.end_ms
    row, status_text, updated, is_paid, is_refund, has_paid_at = (
        row[happened],
        status_text.filter(pa.array(happened)),
        updated[happened],
        is_paid[happened],
        is_refund[happened],
        has_paid_at[happened],
    )
    # Every version of an invoice shares its creation time (a draft's, when it had one).
    created_row = np.where(drafted, created - HOUR_MS, created)[row]

    styles, offsets = _render_times(updated, rng, {TS_Z: 0.75, TS_PLUS_ZERO: 0.15, TS_NAIVE_T: 0.1})
    table = pa.table(
        {
            "invoice_id": invoice_id.take(pa.array(row)),
            "customer_id": billing.customer_id.take(pa.array(customer[row])),
            "subscription_id": subscription.take(pa.array(row)),
            "status": status_text,
            "currency": take(CURRENCY_OF_COUNTRY, currency[row]),
            "amount_due_cents": pa.array(amount[row]),
            "amount_paid_cents": pa.array(np.where(is_paid, amount[row], 0)),
            "amount_refunded_cents": pa.array(np.where(is_refund, refund_amount[row], 0)),
            "product": product.take(pa.array(row)),
            "created_at": _format(created_row, styles, offsets),
            "updated_at": _format(updated, styles, offsets),
            "paid_at": null_where(~has_paid_at, _format(paid_ms[row], styles, offsets)),
            DELIVERY_DAY_COLUMN: pa.array(_event_delivery_day(updated, timeline, rng, p_late=0.02)),
            EVENT_DAY_COLUMN: pa.array(updated // DAY_MS),
        }
    )
    return _redeliveries(_within_window(table, timeline), rng, 0.015, timeline)


# --- web/events -------------------------------------------------------------------------

PAGE, TRACK, IDENTIFY = 0, 1, 2
TRACK_NAMES = [
    "Product Viewed",
    "Added to Cart",
    "Checkout Started",
    "Order Completed",
    "Signed Up",
]
SIGNED_UP = 4


@dataclass
class WebEvents:
    """Delivered web events as finished JSON lines, sorted by delivery day, plus what the
    truth file needs per delivered line."""

    lines: pa.Array  # one Segment JSON object per event, newline included
    delivery_day: np.ndarray
    anonymous_id: pa.Array  # per device
    device_person: np.ndarray  # per device, -1 for visitors who are nobody we know
    event_device: np.ndarray  # -1 for server-side events
    event_person: np.ndarray
    event_identifies: np.ndarray
    event_user_only: np.ndarray
    event_user_id: pa.Array
    event_carries_user: np.ndarray
    utm_events: int


def _json_number(cents: np.ndarray) -> pa.Array:
    return concat(pc.cast(pa.array(cents // 100), pa.string()), ".", digit_strings(cents % 100, 2))


def _scatter(n: int, mask: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.replace_with_mask(pa.nulls(n, pa.string()), pa.array(mask), values)


def build_web_events(
    population: Population,
    billing: BillingRecords,
    timeline: Timeline,
    seed: int,
    people: np.ndarray | None = None,
    chunk: int = 0,
) -> WebEvents:
    """Segment-style page/track/identify events from known people's devices and strangers.

    Visitors browse anonymously; most of those we know identify at the end of one session
    (traits with email/phone, often their billing `user_id`), after which their events
    carry `userId` too. Some purchases arrive server-side with a `userId` only.
    """
    rng = stream_rng(seed, f"web/events/{chunk}")
    id_base = chunk << 40  # keeps ids unique across chunks generated independently
    people = np.arange(population.size) if people is None else people
    n_people = len(people)
    devices = _web_devices(population, billing, people, rng)
    n_dev = len(devices.device_person)

    sessions = _browsing_sessions(devices.known, devices.device_person, timeline, seed, rng)

    # Identify at the end of one randomly chosen session of each identifying device.
    device_first_session = np.cumsum(sessions.n_sessions) - sessions.n_sessions
    id_devices = np.flatnonzero(devices.identifies)
    chosen = device_first_session[id_devices] + (
        rng.random(len(id_devices)) * sessions.n_sessions[id_devices]
    ).astype(np.int64)
    session_end = sessions.ev_ms[sessions.first_pos + sessions.n_events - 1]
    identify_ms = np.full(n_dev, np.iinfo(np.int64).max)
    identify_ms[id_devices] = session_end[chosen] + rng.integers(1000, 20_000, len(id_devices))
    person_of = np.maximum(devices.device_person, 0)
    signup_in_window = (devices.person_billing[person_of] >= 0) & (
        billing.created_ms[np.maximum(devices.person_billing[person_of], 0)] >= timeline.start_ms
    )
    signs_up = devices.identify_with_user & signup_in_window

    # Server-side purchases with a userId only.
    server_people = people[
        devices.on_web & devices.has_user_id[people] & (rng.random(n_people) < 0.3)
    ]
    n_server = 1 + rng.poisson(0.03 * timeline.days, len(server_people))
    server_person = np.repeat(server_people, n_server)
    server_ms = timeline.start_ms + (
        rng.random(len(server_person)) * (timeline.end_ms - timeline.start_ms)
    ).astype(np.int64)

    # All events: browsing, identifies, sign-ups, server-side.
    id_ms = identify_ms[id_devices]
    su_devices = np.flatnonzero(signs_up)
    device = np.concatenate(
        [sessions.ev_device, id_devices, su_devices, np.full(len(server_person), -1)]
    )
    kind = np.concatenate(
        [
            sessions.ev_type,
            np.full(len(id_devices), IDENTIFY, np.int8),
            np.full(len(su_devices) + len(server_person), TRACK, np.int8),
        ]
    )
    track = np.concatenate(
        [
            sessions.ev_track,
            np.full(len(id_devices), -1),
            np.full(len(su_devices), SIGNED_UP),
            np.full(len(server_person), 3),
        ]
    )
    page = np.concatenate(
        [sessions.ev_page, np.full(len(id_devices) + len(su_devices) + len(server_person), -1)]
    )
    ms = np.concatenate([sessions.ev_ms, id_ms, identify_ms[su_devices] + 1000, server_ms])
    session = np.concatenate(
        [
            sessions.ev_session,
            chosen,
            chosen[np.searchsorted(id_devices, su_devices)],
            np.full(len(server_person), -1),
        ]
    )
    first_in_session = np.concatenate(
        [sessions.position == 0, np.zeros(len(device) - len(sessions.ev_session), bool)]
    )
    person = np.where(
        device >= 0,
        devices.device_person[np.maximum(device, 0)],
        np.concatenate([np.full(len(device) - len(server_person), -1), server_person]),
    )
    keep = ms < timeline.end_ms
    device, kind, track, page, ms, session, first_in_session, person = (
        device[keep],
        kind[keep],
        track[keep],
        page[keep],
        ms[keep],
        session[keep],
        first_in_session[keep],
        person[keep],
    )
    n = len(device)
    is_server = device < 0
    dev = np.maximum(device, 0)

    # userId: after a device identified with one, and always on server-side events.
    billing_row = devices.person_billing[np.maximum(person, 0)]
    user_for_event = billing.user_id.take(pa.array(np.maximum(billing_row, 0)))
    carries_user = is_server | (
        devices.identify_with_user[dev] & (ms >= identify_ms[dev]) & ~is_server
    )
    user_id = null_where(~carries_user, user_for_event)
    anonymous_id = uuid_strings(np.arange(n_dev) + id_base, seed ^ 0xA0A0)

    # Page context. Everything that depends only on (page, utm campaign, referrer) is
    # rendered once per combination and picked per event, which keeps 10M events cheap.
    page_for = np.where(
        page >= 0,
        page,
        np.select(
            [
                track == 0,
                track == 1,
                (track == 2) | (track == 3),
                track == SIGNED_UP,
                kind == IDENTIFY,
            ],
            [6, 9, 13, 10, 10],
            0,
        ),
    )
    utm = np.where(
        first_in_session & (session >= 0), sessions.session_utm[np.maximum(session, 0)], -1
    )
    ref = np.where(
        first_in_session & (session >= 0), sessions.session_referrer[np.maximum(session, 0)], -2
    )
    n_pages_vocab, n_utm, n_ref = (
        len(vocab.WEB_PAGES),
        len(vocab.UTM_CAMPAIGNS) + 1,
        len(vocab.REFERRERS) + 2,
    )
    context_vocab, page_props_vocab = _page_context_vocab(n_utm, n_ref)
    page_combo = page_for * n_utm + (utm + 1)
    context_code = np.where(is_server, len(context_vocab) - 1, page_combo * n_ref + (ref + 2))
    device_context = concat(
        ',"userAgent":"',
        take(vocab.USER_AGENTS, devices.device_ua),
        '","ip":"',
        devices.ip,
        '"',
    )
    device_context = pa.concat_arrays([device_context, pa.array([""], pa.string())])
    device_anonymous = pa.concat_arrays(
        [concat(',"anonymousId":"', anonymous_id, '"'), pa.array([""], pa.string())]
    )
    device_slot = np.where(is_server, n_dev, dev)
    has_utm = utm >= 0

    is_page = kind == PAGE
    properties = _event_properties(
        n,
        kind,
        track,
        session,
        sessions.session_product,
        page_combo,
        page_props_vocab,
        rng,
        id_base,
        seed,
    )

    is_identify = kind == IDENTIFY
    traits = _identify_traits(population, person, is_identify, rng, seed, chunk)

    # "type" with the call's own name: `name` for pages, `event` for tracks.
    type_vocab = (
        [f'"type":"page","name":"{title}"' for _, title in vocab.WEB_PAGES]
        + [f'"type":"track","event":"{name}"' for name in TRACK_NAMES]
        + ['"type":"identify"']
    )
    type_code = np.where(
        is_page,
        page_for,
        np.where(kind == TRACK, n_pages_vocab + np.maximum(track, 0), len(type_vocab) - 1),
    )

    styles, offsets = _render_times(ms, rng, {TS_MILLIS_Z: 0.85, TS_MILLIS_OFFSET: 0.1, TS_Z: 0.05})
    delivery_day = _event_delivery_day(ms, timeline, rng, p_late=0.02)
    received_ms = np.maximum(
        ms + rng.integers(50, 3_000, n),
        delivery_day.astype(np.int64) * DAY_MS + rng.integers(0, HOUR_MS, n),
    )
    lines = concat(
        '{"messageId":"',
        uuid_strings(np.arange(n) + id_base, seed ^ 0x3E55),
        '",',
        take(type_vocab, type_code),
        device_anonymous.take(pa.array(device_slot)),
        ',"userId":',
        json_string(user_id),
        ',"properties":',
        properties,
        traits,
        ',"context":{',
        take(context_vocab, context_code),
        device_context.take(pa.array(device_slot)),
        '},"timestamp":"',
        _format(ms, styles, offsets),
        '","receivedAt":"',
        _format(received_ms, np.full(n, TS_MILLIS_Z, np.int8), offsets),
        '"}\n',
    )

    rows, days = _delivered_rows(delivery_day, ms, timeline, rng)
    carries = user_id.is_valid().to_numpy(zero_copy_only=False)
    return WebEvents(
        lines=lines.take(pa.array(rows)),
        delivery_day=days,
        anonymous_id=anonymous_id,
        device_person=devices.device_person,
        event_device=device[rows],
        event_person=person[rows],
        event_identifies=is_identify[rows],
        event_user_only=is_server[rows],
        event_user_id=user_id.take(pa.array(rows)),
        event_carries_user=carries[rows],
        utm_events=int(has_utm.sum()),
    )


@dataclass(frozen=True)
class WebDevices:
    """Who browses on which devices (index: person, or device), and which devices identify."""

    person_billing: np.ndarray  # per person: their billing row, -1 without one
    has_user_id: np.ndarray  # per person
    on_web: np.ndarray  # per person of `people`
    device_person: np.ndarray  # per device: its person, -1 for a stranger's
    device_ua: np.ndarray
    ip: pa.Array
    known: np.ndarray
    identifies: np.ndarray
    identify_with_user: np.ndarray


@dataclass(frozen=True)
class BrowsingSessions:
    """Sessions per device and their page/track events, sorted in time within each device."""

    n_sessions: np.ndarray  # per device
    session_product: np.ndarray  # per session
    session_utm: np.ndarray
    session_referrer: np.ndarray
    n_events: np.ndarray
    ev_session: np.ndarray  # per event
    first_pos: np.ndarray  # per session: position of its first event
    position: np.ndarray  # per event: its position within its session
    ev_ms: np.ndarray
    ev_type: np.ndarray
    ev_track: np.ndarray
    ev_page: np.ndarray
    ev_device: np.ndarray


def _web_devices(
    population: Population, billing: BillingRecords, people: np.ndarray, rng: np.random.Generator
) -> WebDevices:
    """Who browses, on how many devices (plus strangers' devices), and which devices identify.

    Draws from `rng` in the order build_web_events always did.
    """
    n_people = len(people)
    person_billing = np.full(population.size, -1)
    person_billing[billing.person[::-1]] = np.arange(len(billing.person))[::-1]
    has_user = person_billing >= 0
    has_user_id = np.zeros(population.size, bool)
    user_valid = billing.user_id.is_valid().to_numpy(zero_copy_only=False)
    has_user_id[has_user] = user_valid[person_billing[has_user]]
    on_web = rng.random(n_people) < np.where(has_user[people], 0.7, 0.3)
    web_people = people[on_web]
    n_devices_each = 1 + (rng.random(len(web_people)) < 0.2)
    device_person = np.concatenate(
        [np.repeat(web_people, n_devices_each), np.full(int(0.35 * n_people) + 3, -1)]
    )
    n_dev = len(device_person)
    device_ua = rng.integers(0, len(vocab.USER_AGENTS), n_dev)
    ip = concat(
        *[
            x
            for i in range(4)
            for x in (
                pc.cast(
                    pa.array(rng.integers(1 if i == 0 else 0, 224 if i == 0 else 256, n_dev)),
                    pa.string(),
                ),
                "." if i < 3 else "",
            )
        ][:-1]
    )
    known = device_person >= 0
    identifies = known & (rng.random(n_dev) < 0.75)
    identify_with_user = (
        identifies & has_user_id[np.maximum(device_person, 0)] & (rng.random(n_dev) < 0.85)
    )
    return WebDevices(
        person_billing=person_billing,
        has_user_id=has_user_id,
        on_web=on_web,
        device_person=device_person,
        device_ua=device_ua,
        ip=ip,
        known=known,
        identifies=identifies,
        identify_with_user=identify_with_user,
    )


def _browsing_sessions(
    known: np.ndarray,
    device_person: np.ndarray,
    timeline: Timeline,
    seed: int,
    rng: np.random.Generator,
) -> BrowsingSessions:
    """Sessions per device, sorted in time within each device, and their page/track events.

    Draws from `rng` in the order build_web_events always did.
    """
    n_dev = len(device_person)
    rate = np.where(known, 0.06, 0.03) * timeline.days
    rate = rate * behaviour.session_rate_factor(seed, device_person, known)
    n_sessions = 1 + rng.poisson(rate)
    session_device = np.repeat(np.arange(n_dev), n_sessions)
    session_start = timeline.start_ms + (
        rng.random(len(session_device)) * (timeline.end_ms - timeline.start_ms - HOUR_MS)
    ).astype(np.int64)
    order = np.lexsort((session_start, session_device))
    session_start = session_start[order]
    n_sess = len(session_device)
    n_pages = 1 + rng.poisson(1.6, n_sess)
    depth = rng.choice(5, size=n_sess, p=[0.62, 0.2, 0.09, 0.045, 0.045])
    session_product = rng.integers(0, len(vocab.WEB_PRODUCTS), n_sess)
    session_utm = np.where(
        rng.random(n_sess) < 0.25, rng.integers(0, len(vocab.UTM_CAMPAIGNS), n_sess), -1
    )
    session_referrer = np.where(
        rng.random(n_sess) < 0.4, rng.integers(0, len(vocab.REFERRERS), n_sess), -1
    )
    n_events = n_pages + depth
    ev_session = np.repeat(np.arange(n_sess), n_events)
    first_pos = np.cumsum(n_events) - n_events
    position = np.arange(len(ev_session)) - first_pos[ev_session]
    gaps = (rng.exponential(40_000, len(ev_session)) + 3_000).astype(np.int64)
    gaps[first_pos] = 0
    cum = np.cumsum(gaps)
    ev_ms = session_start[ev_session] + cum - cum[first_pos][ev_session]
    ev_type = np.where(position < n_pages[ev_session], PAGE, TRACK).astype(np.int8)
    ev_track = np.where(ev_type == TRACK, position - n_pages[ev_session], -1)
    ev_page = np.where(ev_type == PAGE, rng.integers(0, len(vocab.WEB_PAGES), len(ev_session)), -1)
    ev_device = session_device[ev_session]
    return BrowsingSessions(
        n_sessions=n_sessions,
        session_product=session_product,
        session_utm=session_utm,
        session_referrer=session_referrer,
        n_events=n_events,
        ev_session=ev_session,
        first_pos=first_pos,
        position=position,
        ev_ms=ev_ms,
        ev_type=ev_type,
        ev_track=ev_track,
        ev_page=ev_page,
        ev_device=ev_device,
    )


def _page_context_vocab(n_utm: int, n_ref: int) -> tuple[list[str], list[str]]:
    """Every `context` JSON (page x utm campaign x referrer, and server-side) and every page
    view's `properties`, rendered once; events pick theirs by code."""
    context_vocab, page_props_vocab = [], []
    for _page_i, (path, title) in enumerate(vocab.WEB_PAGES):
        for utm_i in range(-1, n_utm - 1):
            query = (
                ""
                if utm_i < 0
                else "?utm_source={}&utm_medium={}&utm_campaign={}".format(
                    *vocab.UTM_CAMPAIGNS[utm_i]
                )
            )
            url = f"{vocab.WEB_HOST}{path}{query}"
            page_props_vocab.append(
                json.dumps({"path": path, "url": url, "title": title}, separators=(",", ":"))
            )
            campaign = (
                ""
                if utm_i < 0
                else ',"campaign":'
                + json.dumps(
                    dict(
                        zip(("source", "medium", "name"), vocab.UTM_CAMPAIGNS[utm_i], strict=True)
                    ),
                    separators=(",", ":"),
                )
            )
            for ref_i in range(-2, n_ref - 2):
                referrer = (
                    None
                    if ref_i == -1
                    else (f"{vocab.WEB_HOST}/" if ref_i == -2 else vocab.REFERRERS[ref_i])
                )
                page_json = json.dumps(
                    {"path": path, "referrer": referrer, "title": title, "url": url},
                    separators=(",", ":"),
                )
                context_vocab.append(
                    f'"library":{{"name":"analytics.js","version":"2.11.1"}},"page":{page_json}{campaign}'
                )
    context_vocab.append('"library":{"name":"analytics-node","version":"6.2.0"}')  # server-side
    return context_vocab, page_props_vocab


def _event_properties(
    n: int,
    kind: np.ndarray,
    track: np.ndarray,
    session: np.ndarray,
    session_product: np.ndarray,
    page_combo: np.ndarray,
    page_props_vocab: list[str],
    rng: np.random.Generator,
    id_base: int,
    seed: int,
) -> pa.Array:
    """`properties` JSON per event type, each built only for its own rows."""
    product = np.where(
        session >= 0,
        session_product[np.maximum(session, 0)],
        rng.integers(0, len(vocab.WEB_PRODUCTS), n),
    )
    quantity = 1 + (rng.random(n) < 0.2) + (rng.random(n) < 0.05)
    unit_cents = np.array([p[2] for p in vocab.WEB_PRODUCTS], np.int64)
    product_ids = [p[0] for p in vocab.WEB_PRODUCTS]
    product_names = [p[1] for p in vocab.WEB_PRODUCTS]
    is_page = kind == PAGE
    rows = np.flatnonzero(is_page)
    property_pieces = [(rows, take(page_props_vocab, page_combo[rows]))]
    for t in (0, 1, 2, 3, SIGNED_UP):
        rows = np.flatnonzero(track == t)
        pr, q = product[rows], quantity[rows]
        if t == 0:
            text = concat(
                '{"product_id":"',
                take(product_ids, pr),
                '","name":"',
                take(product_names, pr),
                '","price":',
                _json_number(unit_cents[pr]),
                ',"currency":"usd"}',
            )
        elif t == 1:
            text = concat(
                '{"product_id":"',
                take(product_ids, pr),
                '","name":"',
                take(product_names, pr),
                '","price":',
                _json_number(unit_cents[pr]),
                ',"quantity":',
                pc.cast(pa.array(q), pa.string()),
                "}",
            )
        elif t == 2:
            text = concat('{"value":', _json_number(unit_cents[pr] * q), ',"currency":"usd"}')
        elif t == 3:
            text = concat(
                '{"order_id":"',
                prefixed_ids("ord_", rows + id_base, seed ^ 0x0D0D),
                '","revenue":',
                _json_number(unit_cents[pr] * q),
                ',"currency":"usd","products":[{"product_id":"',
                take(product_ids, pr),
                '","quantity":',
                pc.cast(pa.array(q), pa.string()),
                "}]}",
            )
        else:
            text = take(
                ['{"method":"email"}', '{"method":"google"}'],
                (rng.random(len(rows)) < 0.3).astype(np.int64),
            )
        property_pieces.append((rows, text))
    properties = pc.coalesce(assemble(n, property_pieces), pa.scalar("{}"))
    return properties


def _identify_traits(
    population: Population,
    person: np.ndarray,
    is_identify: np.ndarray,
    rng: np.random.Generator,
    seed: int,
    chunk: int,
) -> pa.Array:
    """Identify traits (identify rows only; "" elsewhere): email and/or phone, split or full name."""
    n = len(is_identify)
    rows = np.flatnonzero(is_identify)
    k = len(rows)
    p_idx = person[rows]
    use_work = uses_work_email(population, p_idx, 0.3, rng, identifies_on_web=True)
    canonical = where(
        use_work,
        population.work_email.take(pa.array(p_idx)),
        population.personal_email.take(pa.array(p_idx)),
    )
    habits = population.habits
    habit_rng = stream_rng(seed, f"habits/web/events/{chunk}")
    canonical = misspell_domains(canonical, habit_rng, habits.misspelt_domain)
    trait_email = render_email(
        canonical, ~use_work & population.personal_is_gmail[p_idx], rng, p_spaces=0.02
    )
    trait_phone = render_phone(population, p_idx, rng)
    first = population.first_names.render(population.first_idx[p_idx], rng, 0.2, 0.02)
    last = population.last_names.render(
        record_last_idx(population, p_idx, habit_rng), rng, 0.0, 0.02
    )
    first = with_middle_initials(first, habit_rng, habits.middle_initial)
    shape = rng.random(k)
    email_part = concat('"email":"', trait_email, '"')
    phone_part = concat('"phone":"', trait_phone, '"')
    name_part = where(
        rng.random(k) < 0.5,
        concat('"first_name":"', first, '","last_name":"', last, '"'),
        concat('"name":"', full_names(first, last, habit_rng, habits.last_first), '"'),
    )
    with_phone = shows_phone(population, p_idx, 0.24, use_work, rng)
    contact_part = where(
        shape < 0.08,
        phone_part,
        where(with_phone, concat(email_part, ",", phone_part), email_part),
    )
    traits = assemble(n, [(rows, concat(',"traits":{', contact_part, ",", name_part, "}"))])
    traits = pc.coalesce(traits, pa.scalar(""))
    return traits


def _delivered_rows(
    delivery_day: np.ndarray, ms: np.ndarray, timeline: Timeline, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Event rows in delivery order and their days: what lands after the window is dropped,
    about 1% is delivered again (same or a later day)."""
    delivered = np.flatnonzero(delivery_day <= timeline.last_day)
    again = delivered[rng.random(len(delivered)) < 0.01]
    again_day = np.minimum(
        np.minimum(
            delivery_day[again] + rng.choice([0, 0, 1, 2, 3], size=len(again)),
            ms[again] // DAY_MS + MAX_LATENESS_DAYS,
        ),
        timeline.last_day,
    )
    rows = np.concatenate([delivered, again])
    days = np.concatenate([delivery_day[delivered], again_day]).astype(np.int32)
    order = np.argsort(days, kind="stable")
    rows, days = rows[order], days[order]
    return rows, days
