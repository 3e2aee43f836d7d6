{#- RFM score 1-5 from a customer's position among all scored customers, ordered so that a
    higher value is better. Rank-based (not ntile): tied customers always get the same score,
    the score of the first position of their tie group, so the result is deterministic.
    score = 1 + floor(5 * (rank - 1) / n), i.e. the bottom fifth scores 1, the top fifth 5. -#}
{% macro quintile_score(order_by_expression) -%}
    cast(
        1 + floor(
            5.0 * (rank() over (order by {{ order_by_expression }}) - 1)
            / count(*) over ()
        )
    as {{ dbt.type_int() }})
{%- endmacro %}
