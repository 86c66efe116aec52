-- Accounts held back by a problem in their reference rows, with the first problem as the reason.
with problems as (

    select * from {{ source('input_problems', 'reference_problems') }}
    where account_id is not null

),

final as (

    select
        account_id,
        min_by(problem, coalesce(line_number, 0)) as held_reason,
        count(*) as problem_count
    from problems
    group by account_id

)

select * from final
