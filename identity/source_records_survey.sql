-- A survey respondent: one record per response with a usable email (one that looks like an
-- address); anonymous responses and typed "n/a" are no record. Columns as in
-- source_records.sql; added only when the staging model exists.
select 'survey', response_id, respondent_email, null, null, null, null, null, null, null,
       null, null, 0, false, submitted_at, submitted_at
from staging.stg_surveys__responses
where coalesce(regexp_full_match(lower(trim(respondent_email)), '[^@\s]+@[^@\s]+\.[^@\s]+'), false)
