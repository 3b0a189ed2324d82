/*---
description: >
  ML feature table keyed by (customer_id, feature_ts): activity over the 30
  days before feature_ts, from transactions, web page views and LLM usage.
  feature_ts is the end of the day the activity was seen, so a row only
  holds what was known at feature_ts.
tags: [ml]
---*/
WITH daily AS (
  SELECT customer_id, CAST(booked_at AS DATE) AS day, count(*) AS txns, sum(amount_eur) AS eur,
         0 AS views, 0 AS tokens
  FROM {{ ref('gold.fact_transactions') }} f
  JOIN {{ ref('gold.dim_customer') }} c USING (customer_sk)
  GROUP BY ALL
  UNION ALL
  SELECT TRY_CAST(replace(subject_id, 'cust-', '') AS INTEGER), CAST(event_time AS DATE),
         0, 0, count(*), 0
  FROM {{ ref('bronze.web_events') }} GROUP BY ALL
  UNION ALL
  SELECT TRY_CAST(replace(subject_id, 'cust-', '') AS INTEGER), CAST(event_time AS DATE),
         0, 0, 0, sum(coalesce(gen_ai_usage_input_tokens, 0) + coalesce(gen_ai_usage_output_tokens, 0))
  FROM {{ ref('bronze.llm_calls') }} GROUP BY ALL
),
per_day AS (
  SELECT customer_id, day, sum(txns) AS txns, sum(eur) AS eur, sum(views) AS views,
         sum(tokens) AS tokens
  FROM daily WHERE customer_id IS NOT NULL GROUP BY ALL
)
SELECT customer_id,
       CAST(day AS TIMESTAMP) + INTERVAL 1 DAY AS feature_ts,
       sum(txns) OVER w AS txn_count_30d,
       CAST(sum(eur) OVER w AS DECIMAL(18,2)) AS txn_eur_30d,
       sum(views) OVER w AS web_views_30d,
       sum(tokens) OVER w AS llm_tokens_30d
FROM per_day
WINDOW w AS (PARTITION BY customer_id ORDER BY day RANGE BETWEEN INTERVAL 29 DAYS PRECEDING AND CURRENT ROW)
