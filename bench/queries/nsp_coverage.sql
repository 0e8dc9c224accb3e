-- Needle-and-syringe programme coverage per partnership over the 12 months to December 2025:
-- complete syringe sets issued per estimated person who injects drugs (2025 estimate), with
-- the WHO/UNODC/UNAIDS band (low < 100, medium 100-200, high > 200). Portable SQL: the same
-- text runs in drdsurv (DataFusion) and DuckDB.
WITH sets AS (
    SELECT partnership_code, sum(syringe_sets_issued) AS syringe_sets,
           sum(transactions) AS transactions
    FROM marts.mart_nsp
    WHERE period_start BETWEEN DATE '2025-01-01' AND DATE '2025-12-31'
    GROUP BY partnership_code
),
pwid AS (
    SELECT code, sum(estimated_pwid) AS estimated_pwid
    FROM reference.pwid
    WHERE year = 2025
    GROUP BY code
)
SELECT pwid.code AS partnership_code,
       CAST(coalesce(sets.syringe_sets, 0) AS BIGINT) AS syringe_sets,
       CAST(coalesce(sets.transactions, 0) AS BIGINT) AS transactions,
       pwid.estimated_pwid,
       CASE WHEN pwid.estimated_pwid > 0 THEN coalesce(sets.syringe_sets, 0) / pwid.estimated_pwid END AS sets_per_pwid,
       CASE WHEN pwid.estimated_pwid <= 0 THEN NULL
            WHEN coalesce(sets.syringe_sets, 0) / pwid.estimated_pwid < 100 THEN 'low'
            WHEN coalesce(sets.syringe_sets, 0) / pwid.estimated_pwid <= 200 THEN 'medium'
            ELSE 'high' END AS who_band
FROM pwid
LEFT JOIN sets ON sets.partnership_code = pwid.code
ORDER BY pwid.code
