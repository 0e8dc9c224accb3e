-- Indicators 7 and 8: treatment outcomes over the 12 months ending with the run period
-- (run_windows kind 'months12'), as percentages with Wilson intervals.
--
--  7. treatment_successful_completion (substance_group 'opiate' / 'non_opiate', the DOMES
--     split by opiate use at start): episodes that ended in the window with a successful
--     completion (completed, no new episode within 6 months: mart_episodes), as a % of all
--     episodes in treatment at any time in the window (started on or before its end and not
--     exited before its start).
--  8. Among episodes whose latest review or exit TOP falls in the window and that are in the
--     outcome's cohort at start: top_abstinent_opiate_crack (used opiates or crack at
--     start), top_stopped_injecting (injected at start), top_stopped_sharing (shared at start).
WITH w AS (SELECT * FROM run_windows WHERE kind = 'months12'),
areas AS (SELECT DISTINCT area_code, area_name, area_type FROM mart_areas),
in_treatment_counts AS (
    SELECT w.which, a.area_code,
           CASE WHEN e.opiate_client THEN 'opiate' ELSE 'non_opiate' END AS substance_group,
           count(*) AS n,
           count(*) FILTER (WHERE e.successful_completion AND e.exit_date BETWEEN w.window_start AND w.window_end) AS x
    FROM mart_episodes e
    JOIN w ON e.episode_start <= w.window_end AND (e.exit_date IS NULL OR e.exit_date >= w.window_start)
    JOIN mart_areas a ON a.partnership_code = e.partnership_code
    GROUP BY w.which, a.area_code, CASE WHEN e.opiate_client THEN 'opiate' ELSE 'non_opiate' END
),
-- Every area in every window and group ('no data' where nobody was in treatment).
in_treatment AS (
    SELECT w.which, w.label AS period, a.area_code, g.substance_group,
           coalesce(c.n, 0) AS n, coalesce(c.x, 0) AS x
    FROM w CROSS JOIN areas a
    CROSS JOIN (VALUES ('opiate'), ('non_opiate')) AS g(substance_group)
    LEFT JOIN in_treatment_counts c
      ON c.which = w.which AND c.area_code = a.area_code AND c.substance_group = g.substance_group
),
reviewed AS (
    SELECT w.which, w.label AS period, a.area_code, e.*
    FROM mart_episodes e
    JOIN w ON e.latest_top_date BETWEEN w.window_start AND w.window_end
    JOIN mart_areas a ON a.partnership_code = e.partnership_code
),
outcome_counts AS (
    SELECT which, area_code, 'top_abstinent_opiate_crack' AS indicator_id,
           count(*) FILTER (WHERE abstinent_opiate_crack) AS x,
           count(*) FILTER (WHERE abstinent_opiate_crack IS NOT NULL) AS n
    FROM reviewed GROUP BY which, area_code
    UNION ALL
    SELECT which, area_code, 'top_stopped_injecting',
           count(*) FILTER (WHERE stopped_injecting),
           count(*) FILTER (WHERE stopped_injecting IS NOT NULL)
    FROM reviewed GROUP BY which, area_code
    UNION ALL
    SELECT which, area_code, 'top_stopped_sharing',
           count(*) FILTER (WHERE stopped_sharing),
           count(*) FILTER (WHERE stopped_sharing IS NOT NULL)
    FROM reviewed GROUP BY which, area_code
),
outcomes AS (
    SELECT w.which, w.label AS period, a.area_code, i.indicator_id, i.indicator_name,
           coalesce(c.x, 0) AS x, coalesce(c.n, 0) AS n
    FROM w CROSS JOIN areas a
    CROSS JOIN (VALUES
        ('top_abstinent_opiate_crack', 'Abstinent from opiates and crack at review, of those using at start'),
        ('top_stopped_injecting', 'Stopped injecting at review, of those injecting at start'),
        ('top_stopped_sharing', 'Stopped sharing injecting equipment at review, of those sharing at start')
    ) AS i(indicator_id, indicator_name)
    LEFT JOIN outcome_counts c
      ON c.which = w.which AND c.area_code = a.area_code AND c.indicator_id = i.indicator_id
),
all_rows AS (
    SELECT which, 'treatment_successful_completion' AS indicator_id,
           'Successful completion of treatment without re-presentation within 6 months' AS indicator_name,
           period, area_code, substance_group, x, n
    FROM in_treatment
    UNION ALL
    SELECT which, indicator_id, indicator_name, period, area_code, 'all', x, n FROM outcomes
)
SELECT r.which, r.indicator_id, r.indicator_name, r.period, '' AS basis,
       r.area_code, a.area_name, a.area_type, 'persons' AS sex, 'all' AS age_band,
       r.substance_group, '%' AS unit, 'high_is_good' AS polarity,
       CAST(r.x AS DOUBLE) AS numerator, CAST(r.n AS DOUBLE) AS denominator,
       CASE WHEN r.n > 0 THEN 100.0 * r.x / r.n END AS value,
       CASE WHEN r.n > 0 THEN 100.0 * wilson_lower(r.x, r.n, 0.95) END AS lower95,
       CASE WHEN r.n > 0 THEN 100.0 * wilson_upper(r.x, r.n, 0.95) END AS upper95,
       CASE WHEN r.n > 0 THEN 100.0 * wilson_lower(r.x, r.n, 0.998) END AS lower998,
       CASE WHEN r.n > 0 THEN 100.0 * wilson_upper(r.x, r.n, 0.998) END AS upper998,
       false AS provisional,
       CASE WHEN r.n = 0 THEN 'no data' END AS note
FROM all_rows r
JOIN areas a ON a.area_code = r.area_code
