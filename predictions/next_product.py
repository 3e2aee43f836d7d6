"""Next best product: what customers who own what this customer owns buy next.

Learned from history as 30-day transition rates: for each product `a` owned at a
snapshot date and each product `b` not owned then, the share of owners of `a` who paid
for `b` in the next 30 days, P(b | a). A customer's score for `b` is the highest of
P(b | a) over the products `a` they own (for a customer who owns nothing yet, P(b | no
product)); the recommendation is the unowned product with the highest score, and the
score reads as the chance they buy it within 30 days. Baseline: the product most bought
as a new product overall (popularity).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

NO_PRODUCT = "(none)"
# Transition rates from fewer owners than this are not trusted (too noisy).
MIN_OWNERS = 5


@dataclass
class NextProductModel:
    transitions: pd.DataFrame  # from_product, product, rate, owners
    popularity: pd.Series  # product -> share of customers buying it as a new product

    def recommend(self, owned: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
        """customer_id -> next_best_product, next_best_product_score (NaN/None when nothing).

        Scored by DuckDB (in memory, over the frames): a customer's candidates are every
        product a product they own (or "nothing yet") leads to, so there are products x
        customers of them; pandas merges of that many rows took most of a night's scoring.
        """
        result = pd.DataFrame(index=customers)
        result["next_best_product"] = None
        result["next_best_product_score"] = float("nan")
        if self.transitions.empty:
            return result
        with duckdb.connect() as con:
            con.register("owned", owned[["customer_id", "product"]])
            con.register("transitions", self.transitions[["from_product", "product", "rate"]])
            con.register("customers", pd.DataFrame({"customer_id": customers}))
            best = con.execute(
                """
                with holdings as (
                    select customer_id, product as from_product from owned
                    union all
                    select customer_id, ? as from_product
                    from customers
                    anti join owned using (customer_id)
                ),
                candidates as (
                    select holdings.customer_id, transitions.product, max(transitions.rate) as rate
                    from holdings
                    inner join transitions using (from_product)
                    anti join owned
                        on owned.customer_id = holdings.customer_id
                        and owned.product = transitions.product
                    group by all
                )
                select customer_id, product, rate
                from candidates
                qualify row_number() over (
                    partition by customer_id order by rate desc, product
                ) = 1
                """,
                [NO_PRODUCT],
            ).df()
        best = best.set_index("customer_id").reindex(customers)
        result["next_best_product"] = best["product"].where(best["product"].notna(), None)
        result["next_best_product_score"] = best["rate"]
        return result

    def most_popular_unowned(self, owned: pd.DataFrame, customers: pd.Index) -> pd.Series:
        """Baseline: the most popular new product each customer does not own yet."""
        ranked = list(self.popularity.sort_values(ascending=False).index)
        by_customer = owned.groupby("customer_id")["product"].agg(set)
        out = {}
        for customer in customers:
            have = by_customer.get(customer, set())
            out[customer] = next((p for p in ranked if p not in have), None)
        return pd.Series(out, dtype=object)


def fit_next_product(
    examples: list[tuple[pd.DataFrame, pd.DataFrame, pd.Index]],
) -> NextProductModel:
    """`examples`: per training date, (owned at T, new products in (T, T+30], customers at T)."""
    rows, news, population = [], [], 0
    for owned, new, customers in examples:
        holdings = owned[["customer_id", "product"]].rename(columns={"product": "from_product"})
        none = customers.difference(holdings["customer_id"].unique())
        holdings = pd.concat(
            [holdings, pd.DataFrame({"customer_id": none, "from_product": NO_PRODUCT})]
        )
        owners = holdings.groupby("from_product").size().rename("owners")
        bought = holdings.merge(new, on="customer_id")
        bought = bought.groupby(["from_product", "product"]).size().rename("buyers").reset_index()
        rows.append((owners, bought))
        news.append(new)
        population += len(customers)
    owners = pd.concat([o for o, _ in rows]).groupby(level=0).sum()
    bought = (
        pd.concat([b for _, b in rows])
        .groupby(["from_product", "product"], as_index=False)["buyers"]
        .sum()
    )
    bought = bought.merge(owners.reset_index(), on="from_product")
    bought = bought[bought["owners"] >= MIN_OWNERS]
    bought["rate"] = bought["buyers"] / bought["owners"]
    all_new = pd.concat(news) if news else pd.DataFrame(columns=["customer_id", "product"])
    popularity = all_new.groupby("product").size() / max(population, 1)
    return NextProductModel(
        transitions=bought[["from_product", "product", "rate", "owners"]].reset_index(drop=True),
        popularity=popularity,
    )


__all__ = ["NextProductModel", "fit_next_product"]
