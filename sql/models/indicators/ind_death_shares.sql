-- Indicators 4, 5, 6 and 10 (death shares, substances, registration delay), registration basis.
--
--  4. misuse_deaths_in_treatment_share: drug-misuse deaths of people in treatment at death or
--     within 365 days of leaving it (linked through person_id to mart_episodes), as a % of all
--     drug-misuse deaths; misuse_deaths_unlinkable_share says how many could not be linked
--     (no person_id). Wilson intervals.
--  5. misuse_deaths_after_prison_share: drug-misuse deaths within 28 days of release from
--     prison, % of drug-misuse deaths. Wilson.
--  6. deaths_by_substance: drug-poisoning deaths involving each substance group (implicated),
--     count and crude rate per 100,000 over the pooled population; NULL rate below 10 deaths.
-- 10. registration_delay_median: median days from death to inquest of drug-poisoning deaths
--     registered in the last complete year (window 'delay'); deaths_still_open_share: cases
--     that died in that year and have no inquest yet, % of all cases that died in it. These
--     flag provisional figures.
-- Every area gets a row in every window ('no data' where it has nothing to count).
WITH w AS (SELECT * FROM run_windows WHERE kind = 'deaths'),
wd AS (SELECT * FROM run_windows WHERE kind = 'delay'),
areas AS (SELECT DISTINCT area_code, area_name, area_type FROM mart_areas),
reg AS (
    SELECT w.which, w.label AS period, d.*
    FROM mart_deaths d
    JOIN w ON d.registration_year BETWEEN w.first_year AND w.last_year
),
misuse_counts AS (
    SELECT r.which, a.area_code,
           count(*) AS deaths,
           count(*) FILTER (WHERE r.linked_in_treatment) AS linked,
           count(*) FILTER (WHERE NOT r.linkable) AS unlinkable,
           count(*) FILTER (WHERE r.within_28_days_of_release) AS after_prison
    FROM reg r JOIN mart_areas a ON a.partnership_code = r.partnership_code
    WHERE r.ons_drug_misuse
    GROUP BY r.which, a.area_code
),
-- Every area in every window, with zeros where an area had no such deaths.
misuse AS (
    SELECT w.which, w.label AS period, a.area_code,
           coalesce(m.deaths, 0) AS deaths, coalesce(m.linked, 0) AS linked,
           coalesce(m.unlinkable, 0) AS unlinkable, coalesce(m.after_prison, 0) AS after_prison
    FROM w CROSS JOIN areas a
    LEFT JOIN misuse_counts m ON m.which = w.which AND m.area_code = a.area_code
),
share_rows AS (
    SELECT which, period, area_code, s.indicator_id, s.indicator_name, s.polarity,
           CASE s.indicator_id
               WHEN 'misuse_deaths_in_treatment_share' THEN linked
               WHEN 'misuse_deaths_unlinkable_share' THEN unlinkable
               ELSE after_prison END AS x,
           deaths AS n,
           'all' AS substance_group
    FROM misuse
    CROSS JOIN (VALUES
        ('misuse_deaths_in_treatment_share', 'Drug-misuse deaths in treatment or within a year of leaving it (linked)', 'none'),
        ('misuse_deaths_unlinkable_share', 'Drug-misuse deaths that could not be linked to treatment records', 'none'),
        ('misuse_deaths_after_prison_share', 'Drug-misuse deaths within 28 days of release from prison', 'low_is_good')
    ) AS s(indicator_id, indicator_name, polarity)
),
groups AS (
    SELECT * FROM (VALUES
        ('opioids'), ('heroin_morphine'), ('cocaine'), ('benzodiazepines'), ('gabapentinoids'), ('nitazenes')
    ) AS g(substance_group)
),
substance_deaths AS (
    SELECT r.which, a.area_code, g.substance_group, count(*) AS deaths
    FROM reg r
    JOIN mart_areas a ON a.partnership_code = r.partnership_code
    JOIN groups g
      ON (g.substance_group = 'opioids' AND r.grp_opioids)
      OR (g.substance_group = 'heroin_morphine' AND r.grp_heroin_morphine)
      OR (g.substance_group = 'cocaine' AND r.grp_cocaine)
      OR (g.substance_group = 'benzodiazepines' AND r.grp_benzodiazepines)
      OR (g.substance_group = 'gabapentinoids' AND r.grp_gabapentinoids)
      OR (g.substance_group = 'nitazenes' AND r.grp_nitazenes)
    WHERE r.ons_drug_poisoning
    GROUP BY r.which, a.area_code, g.substance_group
),
pop AS (
    SELECT w.which, w.label AS period, p.area_code, CAST(sum(p.population) AS DOUBLE) AS population
    FROM mart_population p JOIN w ON p.year BETWEEN w.first_year AND w.last_year
    GROUP BY w.which, w.label, p.area_code
),
substance_rows AS (
    SELECT p.which, p.period, p.area_code, g.substance_group,
           CAST(coalesce(d.deaths, 0) AS DOUBLE) AS x, p.population AS n
    FROM pop p
    CROSS JOIN groups g
    LEFT JOIN substance_deaths d
      ON d.which = p.which AND d.area_code = p.area_code AND d.substance_group = g.substance_group
),
delay_stats AS (
    SELECT wd.which, a.area_code,
           count(*) AS deaths,
           median(CAST(d.registration_delay_days AS DOUBLE)) AS median_delay
    FROM mart_deaths d
    JOIN wd ON d.registration_year BETWEEN wd.first_year AND wd.last_year
    JOIN mart_areas a ON a.partnership_code = d.partnership_code
    WHERE d.ons_drug_poisoning
    GROUP BY wd.which, a.area_code
),
delay AS (
    SELECT wd.which, wd.label AS period, a.area_code, coalesce(s.deaths, 0) AS deaths,
           s.median_delay
    FROM wd CROSS JOIN areas a
    LEFT JOIN delay_stats s ON s.which = wd.which AND s.area_code = a.area_code
),
open_stats AS (
    SELECT wd.which, a.area_code,
           count(*) AS cases,
           count(*) FILTER (WHERE d.still_open) AS open_cases
    FROM mart_deaths d
    JOIN wd ON d.occurrence_year BETWEEN wd.first_year AND wd.last_year
    JOIN mart_areas a ON a.partnership_code = d.partnership_code
    GROUP BY wd.which, a.area_code
),
still_open AS (
    SELECT wd.which, wd.label AS period, a.area_code, coalesce(s.cases, 0) AS cases,
           coalesce(s.open_cases, 0) AS open_cases
    FROM wd CROSS JOIN areas a
    LEFT JOIN open_stats s ON s.which = wd.which AND s.area_code = a.area_code
),
all_rows AS (
    SELECT which, indicator_id, indicator_name, period, area_code, substance_group,
           '%' AS unit, polarity,
           CAST(x AS DOUBLE) AS numerator, CAST(n AS DOUBLE) AS denominator,
           CASE WHEN n > 0 THEN 100.0 * x / n END AS value,
           CASE WHEN n > 0 THEN 100.0 * wilson_lower(x, n, 0.95) END AS lower95,
           CASE WHEN n > 0 THEN 100.0 * wilson_upper(x, n, 0.95) END AS upper95,
           CASE WHEN n > 0 THEN 100.0 * wilson_lower(x, n, 0.998) END AS lower998,
           CASE WHEN n > 0 THEN 100.0 * wilson_upper(x, n, 0.998) END AS upper998,
           CASE WHEN n = 0 THEN 'no data' END AS note
    FROM share_rows
    UNION ALL
    SELECT which, 'deaths_by_substance', 'Drug-poisoning deaths involving a substance group',
           period, area_code, substance_group, 'per 100,000', 'low_is_good', x, n,
           CASE WHEN x >= 10 THEN x / n * 100000 END,
           CASE WHEN x >= 10 THEN rate_lower(x, n, 0.95, 100000) END,
           CASE WHEN x >= 10 THEN rate_upper(x, n, 0.95, 100000) END,
           CASE WHEN x >= 10 THEN rate_lower(x, n, 0.998, 100000) END,
           CASE WHEN x >= 10 THEN rate_upper(x, n, 0.998, 100000) END,
           CASE WHEN n = 0 THEN 'no data'
                WHEN x < 10 THEN 'too few events for a rate'
                WHEN x < 20 THEN 'unreliable: 10-19 events' END
    FROM substance_rows
    WHERE n > 0
    UNION ALL
    SELECT which, 'registration_delay_median', 'Median registration delay of drug-poisoning deaths',
           period, area_code, 'all', 'days', 'low_is_good', CAST(deaths AS DOUBLE), NULL,
           median_delay, NULL, NULL, NULL, NULL,
           CASE WHEN deaths = 0 THEN 'no data' END
    FROM delay
    UNION ALL
    SELECT which, 'deaths_still_open_share', 'Deaths still awaiting an inquest', period, area_code,
           'all', '%', 'none', CAST(open_cases AS DOUBLE), CAST(cases AS DOUBLE),
           CASE WHEN cases > 0 THEN 100.0 * open_cases / cases END,
           CASE WHEN cases > 0 THEN 100.0 * wilson_lower(open_cases, cases, 0.95) END,
           CASE WHEN cases > 0 THEN 100.0 * wilson_upper(open_cases, cases, 0.95) END,
           CASE WHEN cases > 0 THEN 100.0 * wilson_lower(open_cases, cases, 0.998) END,
           CASE WHEN cases > 0 THEN 100.0 * wilson_upper(open_cases, cases, 0.998) END,
           CASE WHEN cases = 0 THEN 'no data' END
    FROM still_open
)
SELECT r.which, r.indicator_id, r.indicator_name, r.period, 'registration' AS basis,
       r.area_code, a.area_name, a.area_type, 'persons' AS sex, 'all' AS age_band,
       r.substance_group, r.unit, r.polarity, r.numerator, r.denominator, r.value,
       r.lower95, r.upper95, r.lower998, r.upper998,
       false AS provisional, r.note
FROM all_rows r
JOIN areas a ON a.area_code = r.area_code
