{#- RFM score 1-5 from a customer's position among all scored customers, ordered so that a
    higher value is better. Rank-based (not ntile): tied customers always get the same score,
    the score of the first position of their tie group, so the result is deterministic.
    score = 1 + floor(5 * (rank - 1) / n), i.e. the bottom fifth scores 1, the top fifth 5.
    Divided in double precision on every engine (exact for any realistic n): Spark would
    divide a decimal literal in DECIMAL rounded to 6 places. -#}
{% macro quintile_score(order_by_expression) -%}
    cast(
        1 + floor(
            cast(5 * (rank() over (order by {{ order_by_expression }}) - 1) as {{ type_double() }})
            / count(*) over ()
        )
    as {{ dbt.type_int() }})
{%- endmacro %}
