{#- An amount in minor units of its currency (cents, pence, yen) as whole US cents, with the
    rates of seeds/fx_rates_to_usd.csv joined as `rates_alias`. NULL when the currency has
    no rate (tests/assert_every_currency_has_an_fx_rate.sql fails the build then).
    Exact decimal arithmetic (no binary floating point), rounded half away from zero. -#}
{% macro to_usd_cents(amount_minor_units, rates_alias='fx_rates') -%}
    cast(round(
        {{ amount_minor_units }}
        * {{ rates_alias }}.usd_per_unit
        * cast(power(10, 2 - {{ rates_alias }}.minor_unit_decimals) as {{ dbt.type_numeric() }})
    , 0) as {{ dbt.type_bigint() }})
{%- endmacro %}
