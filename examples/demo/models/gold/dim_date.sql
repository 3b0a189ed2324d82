/*---
description: Calendar dimension, one row per day (2023-2027); date_key is YYYYMMDD.
tags: [bi]
---*/
SELECT CAST(strftime(d, '%Y%m%d') AS INTEGER) AS date_key,
       CAST(d AS DATE) AS "date",
       year(d) AS "year", quarter(d) AS "quarter", month(d) AS "month",
       strftime(d, '%Y-%m') AS year_month, strftime(d, '%B') AS month_name,
       isodow(d) AS iso_day_of_week, isodow(d) >= 6 AS is_weekend
FROM range(TIMESTAMP '2023-01-01', TIMESTAMP '2028-01-01', INTERVAL 1 DAY) AS t(d)
