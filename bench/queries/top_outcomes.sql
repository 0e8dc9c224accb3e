-- TOP episode outcome shares per partnership over the 12 months to December 2025: successful
-- completions among episodes in treatment at any time in the window, and, among episodes whose
-- latest review or exit TOP falls in the window, the share abstinent from opiates and crack,
-- no longer injecting and no longer sharing (each of those in the outcome's cohort at start).
-- Portable SQL: the same text runs in drdsurv (DataFusion) and DuckDB.
WITH e AS (
    SELECT partnership_code,
           episode_start <= DATE '2025-12-31'
               AND (exit_date IS NULL OR exit_date >= DATE '2025-01-01') AS in_treatment,
           successful_completion AND exit_date BETWEEN DATE '2025-01-01' AND DATE '2025-12-31' AS completed,
           latest_top_date BETWEEN DATE '2025-01-01' AND DATE '2025-12-31' AS reviewed,
           abstinent_opiate_crack, stopped_injecting, stopped_sharing
    FROM marts.mart_episodes
),
counts AS (
    SELECT partnership_code,
           sum(CASE WHEN in_treatment THEN 1 ELSE 0 END) AS in_treatment,
           sum(CASE WHEN in_treatment AND completed THEN 1 ELSE 0 END) AS completed,
           sum(CASE WHEN reviewed AND abstinent_opiate_crack IS NOT NULL THEN 1 ELSE 0 END) AS opiate_crack_cohort,
           sum(CASE WHEN reviewed AND abstinent_opiate_crack THEN 1 ELSE 0 END) AS abstinent,
           sum(CASE WHEN reviewed AND stopped_injecting IS NOT NULL THEN 1 ELSE 0 END) AS injecting_cohort,
           sum(CASE WHEN reviewed AND stopped_injecting THEN 1 ELSE 0 END) AS stopped_injecting,
           sum(CASE WHEN reviewed AND stopped_sharing IS NOT NULL THEN 1 ELSE 0 END) AS sharing_cohort,
           sum(CASE WHEN reviewed AND stopped_sharing THEN 1 ELSE 0 END) AS stopped_sharing
    FROM e
    GROUP BY partnership_code
)
SELECT partnership_code,
       CAST(in_treatment AS BIGINT) AS in_treatment,
       CAST(completed AS BIGINT) AS completed,
       CASE WHEN in_treatment > 0 THEN 100.0 * completed / in_treatment END AS completed_pct,
       CAST(opiate_crack_cohort AS BIGINT) AS opiate_crack_cohort,
       CAST(abstinent AS BIGINT) AS abstinent,
       CASE WHEN opiate_crack_cohort > 0 THEN 100.0 * abstinent / opiate_crack_cohort END AS abstinent_pct,
       CAST(injecting_cohort AS BIGINT) AS injecting_cohort,
       CAST(stopped_injecting AS BIGINT) AS stopped_injecting,
       CASE WHEN injecting_cohort > 0 THEN 100.0 * stopped_injecting / injecting_cohort END AS stopped_injecting_pct,
       CAST(sharing_cohort AS BIGINT) AS sharing_cohort,
       CAST(stopped_sharing AS BIGINT) AS stopped_sharing,
       CASE WHEN sharing_cohort > 0 THEN 100.0 * stopped_sharing / sharing_cohort END AS stopped_sharing_pct
FROM counts
ORDER BY partnership_code
