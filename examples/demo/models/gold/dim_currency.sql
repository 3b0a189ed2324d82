/*---
description: Currencies quoted by the ECB reference rates, plus the euro.
tags: [bi]
---*/
SELECT DISTINCT CURRENCY AS currency_code, split_part(TITLE, '/', 1) AS currency_name
FROM {{ ref('bronze.ecb__exr_d') }}
UNION ALL SELECT 'EUR', 'Euro'
