-- One row per support ticket: the latest version (latest-wins on updated_at, ties broken by
-- the later delivery partition, then file, then line), plus what the version history tells:
-- reopened or not, how many versions, the earliest first response, the last solve.
with source as (

    select * from {{ source('support', 'tickets') }}

),

versions as (

    select
        ticket_id,
        {{ clean_email('requester_email') }} as requester_email,
        {{ clean_text('requester_name') }} as requester_name,
        {{ clean_text('requester_phone') }} as requester_phone,
        {{ clean_text('subject') }} as subject,
        lower(trim(status)) as status,
        {{ lower_text(clean_text('priority')) }} as priority,
        {{ lower_text(clean_text('channel')) }} as channel,
        case
            when lower(trim(satisfaction)) in ('good', 'bad') then lower(trim(satisfaction))
        end as satisfaction,
        created_at,
        updated_at,
        first_responded_at,
        solved_at,
        _dt,
        _source_file,
        _line_number
    from source

),

ordered as (

    select
        versions.*,
        status in ('solved', 'closed') as is_solved_version,
        -- was the ticket solved or closed in any earlier version?
        max(case when status in ('solved', 'closed') then 1 else 0 end) over (
            partition by ticket_id
            order by updated_at, _dt, _source_file, _line_number
            rows between unbounded preceding and 1 preceding
        ) as was_solved_before,
        row_number() over (
            partition by ticket_id
            order by updated_at desc, _dt desc, _source_file desc, _line_number desc
        ) as version_rank
    from versions

),

history as (

    select
        ticket_id,
        max(case when was_solved_before = 1 and not is_solved_version then 1 else 0 end) as reopened_flag,
        count(distinct updated_at) as n_versions,
        min(first_responded_at) as earliest_first_responded_at,
        max(case when not is_solved_version then updated_at end) as last_unsolved_at
    from ordered
    group by ticket_id

),

last_solve as (

    -- the first solved/closed version after the last unsolved one: when it was last solved
    select
        ordered.ticket_id,
        min(ordered.updated_at) as last_solved_version_at
    from ordered
    inner join history
        on history.ticket_id = ordered.ticket_id
    where ordered.is_solved_version
        and (history.last_unsolved_at is null or ordered.updated_at > history.last_unsolved_at)
    group by ordered.ticket_id

)

select
    latest.ticket_id,
    latest.requester_email,
    latest.requester_name,
    latest.requester_phone,
    latest.subject,
    latest.status,
    latest.status in ('new', 'open', 'pending') as is_open,
    latest.priority,
    latest.channel,
    latest.satisfaction,
    latest.created_at,
    latest.updated_at,
    coalesce(history.earliest_first_responded_at, latest.first_responded_at) as first_responded_at,
    case
        when latest.is_solved_version
            then coalesce(latest.solved_at, last_solve.last_solved_version_at)
    end as solved_at,
    history.reopened_flag = 1 as is_reopened,
    cast(history.n_versions as {{ dbt.type_bigint() }}) as n_versions
from ordered as latest
inner join history
    on history.ticket_id = latest.ticket_id
left join last_solve
    on last_solve.ticket_id = latest.ticket_id
where latest.version_rank = 1
