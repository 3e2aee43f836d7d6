-- A ticket's requester: one record per ticket. A chat visitor with neither a usable email
-- (one that looks like an address) nor a usable phone (7 digits or more) - only a typed
-- name - cannot be told apart from a namesake and is no record. Columns as in
-- source_records.sql; added only when the staging model exists.
select 'support', ticket_id, requester_email, null, null, requester_name, requester_phone,
       null, null, null, null, null, 0, false, created_at, updated_at
from staging.stg_support__tickets
where coalesce(regexp_full_match(lower(trim(requester_email)), '[^@\s]+@[^@\s]+\.[^@\s]+'), false)
   or coalesce(length(regexp_replace(requester_phone, '[^0-9]', '', 'g')) >= 7, false)
