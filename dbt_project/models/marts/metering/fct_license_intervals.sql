-- License quantities held per cycle, day interval by day interval; rating prices them.
with intervals as (

    select * from {{ ref('int_license_intervals') }}

)

select * from intervals
