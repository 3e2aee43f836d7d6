{#- The web visitor (browser) an event belongs to: its anonymousId, else "user:<userId>".
    int_web__events_stitched names every event's visitor with it, and the incremental
    int_web__events_sessionised names the visitors of the events it finds changed. -#}
{% macro web_visitor_id(anonymous_id, user_id) -%}
    coalesce({{ anonymous_id }}, {{ dbt.concat(["'user:'", user_id]) }})
{%- endmacro %}
