/*---
description: >
  Grain: one row per source transaction (txn_id), as last corrected at the
  source.  Surrogate keys point to the dimension version valid at booked_at
  (resolved against gold.dim_customer, dim_account and dim_entity)
  (a transaction booked before the first known version of a CRM customer,
  whose history starts at its first extraction, takes version 1).  Amounts
  in the original currency and in EUR at the ECB reference rate of the
  booking date, or of the last business day before it.
partition_by: [booked_month]
tags: [bi, finance]
---*/
WITH t AS (
  SELECT txn_id, account_id, customer_id, entity_id, upper(trim(country)) AS country_code,
         txn_type, CAST(amount AS DECIMAL(18,2)) AS amount, upper(trim(currency)) AS currency_code,
         CAST(booked_at AS TIMESTAMP) AS booked_at
  FROM {{ ref('bronze.portfolio__core__transactions') }}
),
fx AS (
  SELECT CURRENCY AS currency_code, CAST(TIME_PERIOD AS DATE) AS rate_date, OBS_VALUE AS rate
  FROM {{ ref('bronze.ecb__exr_d') }}
  UNION ALL
  SELECT 'EUR', DATE '1999-01-01', 1.0
)
SELECT t.txn_id,
       dd.date_key,
       CAST(t.booked_at AS TIMESTAMPTZ) AS booked_at,  -- UTC; TIMESTAMPTZ keeps the table readable without the timestampNtz feature
       strftime(t.booked_at, '%Y-%m') AS booked_month,
       c.customer_sk, a.account_sk, e.entity_sk,
       t.country_code, cur.currency_code, t.txn_type,
       t.amount,
       fx.rate AS fx_rate, fx.rate_date AS fx_rate_date,
       CAST(round(t.amount / fx.rate, 2) AS DECIMAL(18,2)) AS amount_eur
FROM t
ASOF LEFT JOIN fx ON fx.currency_code = t.currency_code AND CAST(t.booked_at AS DATE) >= fx.rate_date
LEFT JOIN {{ ref('gold.dim_date') }} dd ON dd.date = CAST(t.booked_at AS DATE)
LEFT JOIN {{ ref('gold.dim_currency') }} cur ON cur.currency_code = t.currency_code
LEFT JOIN {{ ref('gold.dim_customer') }} c ON c.customer_id = t.customer_id
       AND (t.booked_at >= CAST(c.valid_from AS TIMESTAMP) OR c.version = 1)
       AND (c.valid_to IS NULL OR t.booked_at < CAST(c.valid_to AS TIMESTAMP))
LEFT JOIN {{ ref('gold.dim_account') }} a ON a.account_id = t.account_id
       AND (t.booked_at >= CAST(a.valid_from AS TIMESTAMP) OR a.version = 1)
       AND (a.valid_to IS NULL OR t.booked_at < CAST(a.valid_to AS TIMESTAMP))
LEFT JOIN {{ ref('gold.dim_entity') }} e ON e.entity_id = t.entity_id
       AND (t.booked_at >= CAST(e.valid_from AS TIMESTAMP) OR e.version = 1)
       AND (e.valid_to IS NULL OR t.booked_at < CAST(e.valid_to AS TIMESTAMP))
