-- Indicators 9 and 11: needle-and-syringe programme coverage and blood-borne virus testing over
-- the 12 months ending with the run period (run_windows kind 'months12'; returns are counted
-- by their period_start), not annualised further.
--
--  9. nsp_syringes_per_pwid: complete syringe sets issued per estimated person who injects
--     drugs (ref_pwid for the window's last year, summed over an area's partnerships);
--     nsp_transactions_per_pwid: visits per PWID. No interval (they are not sampled
--     counts), so they are benchmarked by value and quintile only. mart_nsp_coverage keeps
--     the WHO band (domain.md §4.2: low < 100, medium 100-200, high > 200).
-- 11. nsp_bbv_testing_share: blood-borne virus tests done as a % of tests offered, Wilson.
WITH w AS (SELECT * FROM run_windows WHERE kind = 'months12'),
areas AS (SELECT DISTINCT area_code, area_name, area_type FROM mart_areas),
activity_sums AS (
    SELECT w.which, a.area_code,
           CAST(sum(n.syringe_sets_issued) AS DOUBLE) AS syringes,
           CAST(sum(n.transactions) AS DOUBLE) AS transactions,
           CAST(sum(n.bbv_tests_done) AS DOUBLE) AS bbv_done,
           CAST(sum(n.bbv_tests_offered) AS DOUBLE) AS bbv_offered
    FROM mart_nsp n
    JOIN w ON n.period_start BETWEEN w.window_start AND w.window_end
    JOIN mart_areas a ON a.partnership_code = n.partnership_code
    GROUP BY w.which, a.area_code
),
-- Every area in every window: an area without returns has 0 sets and transactions.
activity AS (
    SELECT w.which, w.label AS period, a.area_code,
           coalesce(s.syringes, 0) AS syringes, coalesce(s.transactions, 0) AS transactions,
           coalesce(s.bbv_done, 0) AS bbv_done, coalesce(s.bbv_offered, 0) AS bbv_offered
    FROM w CROSS JOIN areas a
    LEFT JOIN activity_sums s ON s.which = w.which AND s.area_code = a.area_code
),
pwid AS (
    SELECT w.which, a.area_code, sum(p.estimated_pwid) AS pwid
    FROM ref_pwid p
    JOIN w ON p.year = w.last_year
    JOIN mart_areas a ON a.partnership_code = p.code
    GROUP BY w.which, a.area_code
),
all_rows AS (
    SELECT t.which, 'nsp_syringes_per_pwid' AS indicator_id,
           'Needle and syringe sets issued per person who injects drugs' AS indicator_name,
           t.period, t.area_code, 'per PWID per year' AS unit, 'high_is_good' AS polarity,
           t.syringes AS numerator, p.pwid AS denominator,
           CASE WHEN p.pwid > 0 THEN t.syringes / p.pwid END AS value,
           CAST(NULL AS DOUBLE) AS lower95, CAST(NULL AS DOUBLE) AS upper95,
           CAST(NULL AS DOUBLE) AS lower998, CAST(NULL AS DOUBLE) AS upper998
    FROM activity t LEFT JOIN pwid p ON p.which = t.which AND p.area_code = t.area_code
    UNION ALL
    SELECT t.which, 'nsp_transactions_per_pwid', 'NSP transactions per person who injects drugs',
           t.period, t.area_code, 'per PWID per year', 'high_is_good',
           t.transactions, p.pwid, CASE WHEN p.pwid > 0 THEN t.transactions / p.pwid END,
           NULL, NULL, NULL, NULL
    FROM activity t LEFT JOIN pwid p ON p.which = t.which AND p.area_code = t.area_code
    UNION ALL
    SELECT which, 'nsp_bbv_testing_share', 'Blood-borne virus tests done as a share of tests offered at NSP sites',
           period, area_code, '%', 'high_is_good', bbv_done, bbv_offered,
           CASE WHEN bbv_offered > 0 THEN 100.0 * bbv_done / bbv_offered END,
           CASE WHEN bbv_offered > 0 THEN 100.0 * wilson_lower(bbv_done, bbv_offered, 0.95) END,
           CASE WHEN bbv_offered > 0 THEN 100.0 * wilson_upper(bbv_done, bbv_offered, 0.95) END,
           CASE WHEN bbv_offered > 0 THEN 100.0 * wilson_lower(bbv_done, bbv_offered, 0.998) END,
           CASE WHEN bbv_offered > 0 THEN 100.0 * wilson_upper(bbv_done, bbv_offered, 0.998) END
    FROM activity
)
SELECT r.which, r.indicator_id, r.indicator_name, r.period, '' AS basis,
       r.area_code, a.area_name, a.area_type, 'persons' AS sex, 'all' AS age_band,
       'all' AS substance_group, r.unit, r.polarity, r.numerator, r.denominator, r.value,
       r.lower95, r.upper95, r.lower998, r.upper998,
       false AS provisional,
       CASE WHEN r.value IS NULL THEN 'no data' END AS note
FROM all_rows r
JOIN areas a ON a.area_code = r.area_code
