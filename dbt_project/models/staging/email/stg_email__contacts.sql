-- One row per ESP contact: the latest version of each contact (latest-wins on updated_at,
-- ties broken by the later delivery partition, then file, then line).
with source as (

    select * from {{ source('email', 'contacts') }}

),

versions as (

    select
        contact_id,
        {{ clean_email('email') }} as email,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ clean_text('phone') }} as phone,
        {{ clean_text('city') }} as city,
        {{ clean_code('country') }} as country,
        subscribed as is_subscribed,
        created_at,
        updated_at,
        row_number() over (
            partition by contact_id
            order by updated_at desc, _dt desc, _source_file desc, _line_number desc
        ) as version_rank
    from source

)

select
    contact_id,
    email,
    first_name,
    last_name,
    phone,
    city,
    country,
    is_subscribed,
    created_at,
    updated_at
from versions
where version_rank = 1
