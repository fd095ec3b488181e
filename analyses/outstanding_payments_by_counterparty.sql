-- Payments not yet made, by counterparty, judged by the latest version of each payment
-- (an earlier unpaid version of a payment that is now paid does not count).

select
    counterparty.counterparty_id,
    counterparty.counterparty_legal_name,
    currency.currency_code,
    count(*) as unpaid_payments,
    sum(payment.payment_amount) as amount_outstanding
from {{ ref('fact_payment_current') }} as payment
inner join {{ ref('dim_counterparty') }} as counterparty
    on payment.counterparty_id = counterparty.counterparty_id
inner join {{ ref('dim_currency') }} as currency
    on payment.currency_id = currency.currency_id
where not payment.paid
group by counterparty.counterparty_id, counterparty.counterparty_legal_name, currency.currency_code
order by amount_outstanding desc
