{{ config(materialized='view') }}
-- Every web event with the golden customer it belongs to, stitched retroactively: the
-- anonymous page views before an identify get the customer the browser later identified as.
-- Precedence: the event's own userId; else the identity engine's mapping of its
-- anonymousId; else the userId that anonymousId last identified with (a device the
-- engine has not seen yet). visitor_id is the browser (anonymousId, else the userId).
-- A view: only int_web__events_sessionised reads it, and copying every web event costs more
-- than it saves. The SQL is `stitch_web_events` (macros/web_stitching.sql), which the
-- incremental sessionised model runs on the events of the visitors it re-sessionises.
{{ stitch_web_events(ref('stg_web__events')) }}
