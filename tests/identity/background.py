"""Unrelated people added to small hand-written cases, so the match model has pairs of one
person (contact + billing record on one email) and pairs of different people to learn
from, as it would in any real warehouse."""

from __future__ import annotations

FIRSTS = ["Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken",
          "Radia", "Tim", "Vint", "Leslie", "Shafi", "Judea"]  # fmt: skip
SYLLABLES = ["ka", "lo", "mi", "ren", "dar", "vel", "sto", "bri", "nax", "tul"]
CITIES = ["Chicago", "Denver", "Boston", "Austin", "Seattle", "Portland", "Miami", "Atlanta"]


def _surname(i: int) -> str:
    """A distinct made-up surname per person (up to 1,000): no accidental namesakes."""
    return "".join(SYLLABLES[(i // 10**k) % 10] for k in range(3)).capitalize()


def add_unrelated_people(staging, n: int = 400, surname_change_every: int = 0) -> None:
    """`surname_change_every=k`: every k-th person's billing record carries a new surname
    (a marriage), so the model can learn how often one person's surnames disagree."""
    from tests.identity.conftest import T0
    from tests.identity.staging_tables import insert_rows

    contacts, billing = [], []
    for i in range(n):
        first, last = FIRSTS[i % len(FIRSTS)], _surname(i)
        city = CITIES[i % len(CITIES)]
        email = f"{first}.{last}{i}@mailbox.org".lower()
        phone = f"(312) 555-{1000 + i}"
        contacts.append({"contact_id": f"ct_bg{i}", "email": email, "first_name": first,
                         "last_name": last, "phone": phone, "city": city, "country": "US",
                         "is_subscribed": True, "created_at": T0, "updated_at": T0})  # fmt: skip
        if i % 2 == 0:
            billing_last = last
            if surname_change_every and i % surname_change_every == 0:
                billing_last = _surname(999 - i)
            billing.append({"customer_id": f"cus_bg{i}", "email": email,
                            "name": f"{first} {billing_last}", "phone": phone,
                            "address_line1": f"{100 + i} Lake Shore Dr", "address_city": city,
                            "address_postal_code": f"{60611 + i}", "address_country": "US",
                            "is_deleted": False, "created_at": T0, "updated_at": T0})  # fmt: skip
    # one insert per table: row-by-row inserts took most of these tests' time
    insert_rows(staging.con, "stg_email__contacts", contacts)
    insert_rows(staging.con, "stg_billing__customers", billing)
