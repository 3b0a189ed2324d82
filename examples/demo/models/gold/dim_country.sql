/*---
description: Countries in which the investment entities operate, with their latest GDP (World Bank).
tags: [bi]
---*/
WITH gdp AS (
  SELECT country_id, arg_max(value, date) AS gdp_usd, max(date) AS gdp_year
  FROM {{ ref('bronze.worldbank__gdp') }} WHERE value IS NOT NULL GROUP BY country_id
)
SELECT DISTINCT e.country AS country_code, coalesce(n.country_name, e.country) AS country_name,
       n.region, g.gdp_usd, g.gdp_year
FROM {{ ref('silver.entity') }} e
LEFT JOIN (VALUES ('DE', 'Germany', 'DACH'), ('FR', 'France', 'Western Europe'),
                  ('LU', 'Luxembourg', 'Benelux'), ('GB', 'United Kingdom', 'British Isles'))
     AS n(country_code, country_name, region) ON n.country_code = e.country
LEFT JOIN gdp g ON g.country_id = e.country
WHERE NOT e._is_deleted
