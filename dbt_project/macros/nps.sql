{#- Net Promoter Score arithmetic, in one place so every mart counts the same way.
    A score of 9-10 is a promoter, 7-8 a passive, 0-6 a detractor; NPS is
    100 x (promoters - detractors) / responses, NULL when there are no responses. -#}
{% macro nps_category(score) -%}
    case
        when {{ score }} >= 9 then 'promoter'
        when {{ score }} >= 7 then 'passive'
        else 'detractor'
    end
{%- endmacro %}

{#- The NPS counts of a group of rows holding `nps_category`, as the columns
    responses, promoters, passives, detractors. Zeros, not NULLs, over no rows at all
    (the 'all' row of a warehouse that has no survey responses yet). -#}
{% macro nps_counts(category='nps_category') -%}
    cast(count(*) as {{ dbt.type_bigint() }}) as responses,
    cast(coalesce(sum(case when {{ category }} = 'promoter' then 1 else 0 end), 0) as {{ dbt.type_bigint() }}) as promoters,
    cast(coalesce(sum(case when {{ category }} = 'passive' then 1 else 0 end), 0) as {{ dbt.type_bigint() }}) as passives,
    cast(coalesce(sum(case when {{ category }} = 'detractor' then 1 else 0 end), 0) as {{ dbt.type_bigint() }}) as detractors
{%- endmacro %}

{#- In double precision on every engine: a decimal literal (100.0) makes Spark divide in
    DECIMAL, rounded to 6 places. -#}
{% macro nps_score(promoters='promoters', detractors='detractors', responses='responses') -%}
    case
        when {{ responses }} > 0
            then cast(100 * ({{ promoters }} - {{ detractors }}) as {{ type_double() }}) / {{ responses }}
    end
{%- endmacro %}
